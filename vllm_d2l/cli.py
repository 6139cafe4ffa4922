"""`vllm-d2l`: one command with subcommands; each subcommand lives in the module that does the work.

Subcommands import lazily, so `vllm-d2l internalize` never pays for importing vLLM.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import D2LError

# name -> (module with `main(argv) -> int`, one-line help)
COMMANDS = {
    "serve": ("vllm_d2l.serving.launch", "run vLLM's OpenAI server with document adapters (takes vLLM's flags)"),
    "internalize": ("vllm_d2l.internalize", "read a document into a PEFT adapter folder"),
    "train": ("vllm_d2l.training.trainer", "meta-train the hypernetwork from a config file"),
    "eval": ("vllm_d2l.evaluation.qa", "accuracy without context / in context / with the adapter"),
    "bench": ("bench.__main__", "throughput and latency benchmarks against a real server"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = argparse.ArgumentParser(prog="vllm-d2l", description=__doc__.splitlines()[0])
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        for name, (_, help_) in COMMANDS.items():
            sub.add_parser(name, help=help_, add_help=False)
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command '{argv[0]}'")
        parser.print_help()
        return 0 if argv else 2
    module_name = COMMANDS[argv[0]][0]
    if argv[0] != "serve":
        # Idle OpenMP threads spin by default; beside a server or a second job on a small machine
        # that spinning made training steps and evaluation many times slower. Must be set before
        # torch loads, so here; an explicit setting wins. vLLM's server manages its own threads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    module = importlib.import_module(module_name)
    try:
        return int(module.main(argv[1:]) or 0)
    except D2LError as e:
        print(f"vllm-d2l {argv[0]}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
