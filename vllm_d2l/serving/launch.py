"""`vllm-d2l serve`: vLLM's OpenAI server with our plugins, the default model and LoRA settings.

Everything here could be done by hand with the plain launcher; this command only fills in what a
document server needs and vLLM does not default to:

    VLLM_PLUGINS=vllm_d2l VLLM_ALLOW_RUNTIME_LORA_UPDATING=True \\
    python -m vllm.entrypoints.openai.api_server --model DIR --enable-lora --max-lora-rank 128 ...

Our own flags (`--store`, `--hypernet`, `--task-hypernet`, `--max-document-tokens`, `--max-body-bytes`,
`--max-stored-documents`, `--over-rank`) become `VLLM_D2L_*` environment variables; every other
flag goes to vLLM untouched, and a flag the user gives always wins over our defaults. LoRA is
limited to the hypernetwork's target modules (`--lora-target-modules`); to also serve foreign
adapters that touch other modules, list those modules yourself. The process
is replaced by vLLM's (exec), so signals and exit codes are vLLM's own.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from . import PLUGIN_NAME
from .settings import (ENV_HYPERNET, ENV_MAX_BODY, ENV_MAX_STORED, ENV_MAX_TOKENS, ENV_OVER_RANK, ENV_STORE,
                       ENV_TASK_HYPERNET,
                       OVER_RANK_POLICIES, Settings)

VLLM_MODULE = "vllm.entrypoints.openai.api_server"
# The least slot rank a server gets; raised to the rank the serving hypernetworks write (key_dim +
# always-on rows for the token kind, whatever the document's length), so their adapters are served
# as written rather than recompressed. The grouped CPU path computes at each adapter's true rank,
# so the headroom costs buffer memory (~16 MB per slot at 128 on the default model), not time.
DEFAULT_MAX_LORA_RANK = 128
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts
DEFAULT_MAX_LORAS = 4
DEFAULT_CPU_KVCACHE_GIB = "4"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vllm-d2l serve", add_help=False,
        description="Run vLLM's OpenAI-compatible server with document adapters. "
                    "Takes every vLLM flag; the ones below are ours.")
    p.add_argument("--store", help="adapter store directory (env VLLM_D2L_STORE)")
    p.add_argument("--hypernet", help="hypernetwork checkpoint folder (env VLLM_D2L_HYPERNET)")
    p.add_argument("--task-hypernet", help="hypernetwork for task descriptions, /v1/tasks (env VLLM_D2L_TASK_HYPERNET; "
                                           "default: the packaged task checkpoint, else the document one)")
    p.add_argument("--max-document-tokens", type=_positive, metavar="N",
                   help=f"longest document accepted, in tokens (default {Settings.max_document_tokens})")
    p.add_argument("--max-body-bytes", type=_positive, metavar="N",
                   help=f"largest POST /v1/documents body, in bytes (default {Settings.max_body_bytes})")
    p.add_argument("--max-stored-documents", type=_positive, metavar="N",
                   help="adapters kept in the store; beyond it the least recently used are deleted "
                        f"(default {Settings.max_stored_documents})")
    p.add_argument("--over-rank", choices=OVER_RANK_POLICIES,
                   help="adapters above --max-lora-rank: recompress (default) or refuse with a 400")
    p.add_argument("--dry-run", action="store_true", help="print the command and environment, run nothing")
    p.add_argument("-h", "--help", action="store_true")
    return p


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {raw}")
    return value


def _has_flag(argv: list[str], *names: str) -> bool:
    """True if any of `names` (e.g. `--max-loras`) appears, as `--x v`, `--x=v`, or with underscores."""
    wanted = {n.replace("_", "-") for n in names}
    for arg in argv:
        if arg.startswith("--"):
            key = arg.split("=", 1)[0].replace("_", "-")
            if key in wanted:
                return True
    return False


def _flag_value(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        key, eq, value = arg.partition("=")
        if key.replace("_", "-") == name:
            if eq:
                return value
            return argv[i + 1] if i + 1 < len(argv) else None
    return None


def _plugins_env(current: str | None) -> str:
    """`VLLM_PLUGINS` naming ours plus every general plugin already installed.

    vLLM loads endpoint plugins only when `VLLM_PLUGINS` names them, but setting the variable also
    filters general plugins; listing the installed ones keeps them loading as before.
    """
    names: list[str] = [n.strip() for n in current.split(",") if n.strip()] if current else [
        ep.name for ep in entry_points(group="vllm.general_plugins")]
    if PLUGIN_NAME not in names:
        names.append(PLUGIN_NAME)
    return ",".join(dict.fromkeys(names))


def build(argv: list[str], environ: dict[str, str] | None = None) -> tuple[list[str], dict[str, str], argparse.Namespace]:
    """The vLLM command line and environment `serve` would exec; pure, for tests and --dry-run."""
    ours, vllm_args = _parser().parse_known_args(argv)
    env = dict(os.environ if environ is None else environ)
    args = list(vllm_args)

    env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    env["VLLM_PLUGINS"] = _plugins_env(env.get("VLLM_PLUGINS"))
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", DEFAULT_CPU_KVCACHE_GIB)
    # keep torch.compile on with LoRA (vLLM's CPU platform turns it off); see vllm_d2l/vllm_punica.py
    env.setdefault("VLLM_D2L_CPU_COMPILE", "1")
    if ours.store:
        env[ENV_STORE] = str(Path(ours.store).expanduser().resolve())
    if ours.hypernet:
        env[ENV_HYPERNET] = str(Path(ours.hypernet).expanduser().resolve())
    if ours.task_hypernet:
        env[ENV_TASK_HYPERNET] = str(Path(ours.task_hypernet).expanduser().resolve())
    if ours.max_document_tokens:
        env[ENV_MAX_TOKENS] = str(ours.max_document_tokens)
    if ours.max_body_bytes:
        env[ENV_MAX_BODY] = str(ours.max_body_bytes)
    if ours.max_stored_documents:
        env[ENV_MAX_STORED] = str(ours.max_stored_documents)
    if ours.over_rank:
        env[ENV_OVER_RANK] = ours.over_rank

    model_given = _has_flag(args, "--model") or (bool(args) and not args[0].startswith("-"))
    if not model_given:
        from ..base_model import DEFAULT_MODEL_NAME, ensure_default_model
        args = ["--model", str(ensure_default_model())] + args
        if not _has_flag(args, "--served-model-name"):
            args += ["--served-model-name", DEFAULT_MODEL_NAME]
    if not _has_flag(args, "--host"):  # loopback unless asked: the routes have no key unless --api-key is set
        args += ["--host", "127.0.0.1"]
    if not _has_flag(args, "--enable-lora"):
        args.append("--enable-lora")
    if not _has_flag(args, "--max-lora-rank"):
        args += ["--max-lora-rank", str(default_max_lora_rank(env))]
    if not _has_flag(args, "--max-loras"):
        args += ["--max-loras", str(DEFAULT_MAX_LORAS)]
    if not _has_flag(args, "--max-cpu-loras"):
        # room to keep recently used adapters in worker memory beyond the active slots; we never
        # pin adapters, so vLLM's pinned-cache KeyError (max_cpu_loras == max_loras) cannot occur
        max_loras = int(_flag_value(args, "--max-loras") or DEFAULT_MAX_LORAS)
        args += ["--max-cpu-loras", str(max(4 * max_loras, 16))]
    if not _has_flag(args, "--lora-target-modules"):
        # vLLM wraps every supported linear layer for LoRA unless told otherwise, and each wrapped
        # layer costs every row of every step, adapter or not. Our adapters touch only the
        # hypernetwork's target modules, so only those are wrapped.
        modules = _hypernet_target_modules(env)
        if modules:
            args += ["--lora-target-modules", *modules]
    return [sys.executable, "-m", VLLM_MODULE, *args], env, ours


def _served_configs(env: dict[str, str]) -> list[dict] | None:
    """The config.json of each hypernetwork the server will use (documents, then tasks), or None
    when one cannot be read (then every default that depends on them falls back to vLLM's or ours)."""
    from ..generator import default_hypernet_dir, default_task_hypernet_dir
    from ..hypernet import CONFIG_NAME

    folders = [Path(env[ENV_HYPERNET]) if env.get(ENV_HYPERNET) else default_hypernet_dir()]
    task = Path(env[ENV_TASK_HYPERNET]) if env.get(ENV_TASK_HYPERNET) else default_task_hypernet_dir()
    if task is not None:
        folders.append(task)
    try:
        return [json.loads((folder / CONFIG_NAME).read_text()) for folder in folders]
    except (OSError, ValueError):
        return None


def _hypernet_target_modules(env: dict[str, str]) -> list[str]:
    """The modules the served hypernetworks write ([] when unknown: then vLLM wraps every module it can)."""
    modules: list[str] = []
    for config in _served_configs(env) or []:
        if "target_modules" not in config:
            return []
        modules += [str(m) for m in config["target_modules"] if str(m) not in modules]
    return modules


def default_max_lora_rank(env: dict[str, str]) -> int:
    """The smallest rank vLLM accepts that holds what the served hypernetworks write.

    Why not a constant: a wider checkpoint (`--hypernet`, or a later packaged one) would otherwise
    have every adapter recompressed by truncated SVD, silently losing part of the document.
    """
    from ..errors import ModelMismatch
    from ..hypernet import HypernetConfig

    needed = DEFAULT_MAX_LORA_RANK
    for config in _served_configs(env) or []:
        try:
            needed = max(needed, HypernetConfig.from_json(json.dumps(config)).adapter_rank())
        except (TypeError, ValueError, ModelMismatch):  # a partial or foreign config: it says nothing about rank
            continue
    return next((r for r in VLLM_LORA_RANKS if r >= needed), VLLM_LORA_RANKS[-1])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd, env, ours = build(argv)
    if ours.help:
        _parser().print_help()
        print("\nAll other flags are vLLM's; see: python -m vllm.entrypoints.openai.api_server --help")
        return 0
    if ours.dry_run:
        for key in sorted(k for k in env if k.startswith(("VLLM_D2L_", "VLLM_PLUGINS", "VLLM_ALLOW_RUNTIME",
                                                          "VLLM_CPU_KVCACHE"))):
            print(f"{key}={env[key]}")
        print(" ".join(cmd))
        return 0
    if env.get(ENV_STORE):
        Path(env[ENV_STORE]).mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], cmd, env)
    return 1  # not reached
