"""Where the model worker's time goes under LoRA traffic: py-spy samples the process that runs the
model in a real server while the benchmark's load runs, and the samples are bucketed by code area.

    python -m bench.profile_lora [--kind ours|stock|plain-eager] [--adapters 0|4] [--seconds 20]

Needs `py-spy` (PyPI) on PATH. Sampling is read-only (no pausing: `--nonblocking`), so the
profiled server runs at almost full speed. Each sample goes to the bucket of its innermost
matching frame (see `bucket`).
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .config import Load
from .load import chat_body, measure
from .servers import ServerSpec, model_name, server
from .sweep import load_adapters
from .texts import question

BUCKETS = (
    ("grouped LoRA path (ours)", ("vllm_punica.py", "punica_common.py", "kernels/cpu_grouped.py",
                                  "kernels/segments.py", "kernels/layout.py")),
    ("vLLM CPU LoRA ops", ("lora/ops/torch_ops", "punica_cpu.py")),
    ("base linear layers (GEMM)", ("UnquantizedLinearMethod.apply", "cpu_unquantized_gemm")),
    ("attention", ("attention", "cpu_attn")),
    ("LoRA layer glue (vLLM)", ("vllm/lora/layers/",)),
    ("LoRA manager / mapping", ("vllm/lora/", "lora_model_runner_mixin")),
    ("sampler / logits", ("sample/", "logits")),
    ("other model code (norms, activations, rotary)", ("model_executor/", "torch/nn/")),
    ("engine / runner / scheduling", ("vllm/v1/",)),
)


def bucket(stack: str) -> str:
    """The bucket of the frame nearest the leaf that matches one: time inside a base GEMM called
    from a LoRA layer counts as GEMM, time in the layer's own Python counts as LoRA glue."""
    for frame in reversed(stack.split(";")):
        for name, needles in BUCKETS:
            if any(n in frame for n in needles):
                return name
    return "other (idle, IPC, interpreter)"


def model_worker_pid(server_pid: int) -> int | None:
    """The busiest descendant of the API server: the worker that runs the model (on vLLM's CPU
    platform the engine core hands each step to a worker process and waits)."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,args", "--no-headers"], capture_output=True, text=True).stdout
    children = collections.defaultdict(list)
    rows = {}
    for line in out.splitlines():
        pid, ppid, cpu, args = line.split(None, 3)
        children[int(ppid)].append(int(pid))
        rows[int(pid)] = (float(cpu), args)
    todo, found = [server_pid], []
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            found.append(c)
            todo.append(c)
    return max(found, key=lambda p: rows[p][0]) if found else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", default="ours", choices=("ours", "stock", "plain-eager", "plain"))
    p.add_argument("--adapters", type=int, default=0, help="distinct rank-8 adapters in the traffic (0: base)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--model", help="model folder (default: the default model)")
    p.add_argument("--out", type=Path, default=Path("results") / "profile")
    p.add_argument("--work", type=Path, default=Path("/tmp") / "vllm-d2l-profile")
    args = p.parse_args(argv)
    if not shutil.which("py-spy"):
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    from .adapters import write_synthetic_adapters

    if args.model:
        model, served = args.model, None
    else:
        from vllm_d2l.base_model import DEFAULT_MODEL_NAME, ensure_default_model
        model, served = str(ensure_default_model()), DEFAULT_MODEL_NAME
    spec = ServerSpec(kind=args.kind, model=model, served_name=served, store=str(args.work / "store"),
                      max_loras=max(args.adapters, 1), max_lora_rank=8, log_stats=False)
    load = Load()
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"{args.kind}-{args.adapters}.txt"
    with server(spec, args.work / "logs") as srv:
        base = model_name(srv.base_url)
        names = [base]
        if args.adapters:
            paths = write_synthetic_adapters(args.work / "adapters", model, 8, args.adapters)
            names = load_adapters(srv.base_url, paths)
        body = lambda i: chat_body(names[i % len(names)], [{"role": "user", "content": question(i)}],  # noqa: E731
                                   load.output_tokens, stream=False)
        measure(srv.base_url, body, load.warmup_requests, load.concurrency, 60)
        pid = model_worker_pid(srv.proc.pid)
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(int(args.seconds)),
                                "--format", "raw", "--nonblocking", "--rate", "200", "--output", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stop = time.monotonic() + args.seconds
        done = []

        def drive() -> None:
            while time.monotonic() < stop:
                done.append(measure(srv.base_url, body, load.requests, load.concurrency, 30).summary())

        t = threading.Thread(target=drive)
        t.start()
        t.join()
        spy.wait(timeout=args.seconds + 60)
    summary = summarize(raw)
    summary.update(kind=args.kind, pid_profiled=pid, adapters=args.adapters,
                   output_tokens_per_s_while_profiled=sum(d["output_tokens_per_s"] for d in done) / max(len(done), 1))
    (args.out / f"{args.kind}-{args.adapters}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


def summarize(raw: Path) -> dict:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            counts[bucket(stack)] += int(n)
    total = sum(counts.values()) or 1
    return {"samples": total, "shares": {k: round(v / total, 4) for k, v in counts.most_common()}, "raw": str(raw)}


if __name__ == "__main__":
    sys.exit(main())
