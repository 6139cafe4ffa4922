"""`vllm-d2l internalize FILE` (or `--task FILE_OR_TEXT`): one document or task description to one
PEFT folder, with a one-line summary."""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from .errors import BadDocument


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vllm-d2l internalize", description=__doc__)
    p.add_argument("file", nargs="?", help="UTF-8 text file, or - for standard input")
    p.add_argument("--task", metavar="FILE_OR_TEXT",
                   help="instead: a task description (a file, or the text itself) read by the task hypernetwork")
    p.add_argument("--out", type=Path, help="adapter folder (default: ./<file stem>-adapter)")
    p.add_argument("--chunk-tokens", type=int, help="tokens per chunk (default: the hypernetwork's chunk_tokens)")
    p.add_argument("--max-rank", type=int, help="recompress the adapter to at most this rank (truncated SVD)")
    p.add_argument("--hypernet", type=Path, help="hypernetwork checkpoint folder (default: the shipped one)")
    p.add_argument("--model", type=Path, help="base model folder (default: SmolLM2-135M-Instruct)")
    p.add_argument("--guidance", type=float, default=1.0, metavar="S",
                   help="write a guided adapter: what the text adds over texts that ask for nothing, times S "
                        "(token kind only; default 1: as generated)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.file is None) == (args.task is None):
        parser.error("give a document FILE or --task FILE_OR_TEXT (one of them)")
    if args.task is not None:
        path = Path(args.task)
        raw = path.read_bytes() if len(args.task) < 4096 and path.is_file() else args.task.encode()
        out = args.out or Path((path.stem if path.is_file() else "task") + "-adapter")
    elif args.file == "-":
        raw = sys.stdin.buffer.read()
        out = args.out or Path("stdin-adapter")
    else:
        path = Path(args.file)
        if not path.is_file():
            raise BadDocument(f"no such file: {path}")
        raw = path.read_bytes()
        out = args.out or Path(f"{path.stem}-adapter")
    from .generator import Generator, decode_text

    text = decode_text(raw)  # fail on bad input before paying for model loading
    hypernet = args.hypernet
    if args.task is not None and hypernet is None:
        from .generator import default_task_hypernet_dir

        hypernet = default_task_hypernet_dir()  # None: the document hypernetwork reads it
    if not args.guidance > 0:
        parser.error(f"--guidance must be > 0, got {args.guidance}")
    gen = Generator.load(hypernet, args.model, chunk_tokens=args.chunk_tokens, guidance=args.guidance)
    result = gen.internalize(text, max_rank=args.max_rank, progress=True)
    result.weights.meta["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    result.weights.save_peft(out)
    print(f"{out}: {result.summary()}")
    return 0
