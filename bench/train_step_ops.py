"""Operator calls in one training step, by part of the step, at several `pass_rows`.

A GPU runs a step of a small generator faster than the host can issue its operators: the H200 ran
the task run at 2.4 s a step of 16 descriptions, where its arithmetic takes milliseconds. So the
count of operator calls, which is the same on any device, is what predicts the GPU's step time,
and it can be measured here on the CPU. Wall times are printed too, but a CPU step is bound by
arithmetic and padding, not by calls: they say nothing about a GPU.

    python bench/train_step_ops.py --config examples/train_tasks_gpu.yaml --batch 16 \
        --pass-rows 4 64 --out results/train_step_ops.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vllm_d2l.training.config import TrainConfig  # noqa: E402
from vllm_d2l.training.trainer import Trainer  # noqa: E402

PARTS = ("teacher", "factors", "loss", "backward", "optimizer")  # the trainer's profiler labels


def count_step(cfg: TrainConfig, step: int) -> dict:
    """One step at `step`'s records, profiled: operator calls per labelled part and in all."""
    trainer = Trainer(cfg)
    trainer.step = step
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.time()
        trainer.train_step()
        wall = time.time() - t0
    events = prof.events()
    spans = [(e.name, e.time_range.start, e.time_range.end) for e in events if e.name in PARTS]
    calls: Counter = Counter()
    for e in events:
        if e.name.startswith("aten::"):
            start = e.time_range.start
            calls[next((name for name, a, b in spans if a <= start <= b), "other")] += 1
    matmuls = sum(1 for e in events if e.name in ("aten::mm", "aten::bmm", "aten::addmm"))
    return {"pass_rows": cfg.pass_rows, "batch_docs": cfg.batch_docs, "operator_calls": sum(calls.values()),
            "matmul_calls": matmuls, "calls_by_part": dict(calls), "cpu_wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("examples/train_tasks_gpu.yaml"))
    p.add_argument("--batch", type=int, default=16, help="descriptions (documents) a step")
    p.add_argument("--pass-rows", type=int, nargs="+", default=[4, 64])
    p.add_argument("--step", type=int, default=9000, help="whose records the step draws")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    rows = []
    for n in args.pass_rows:
        cfg = TrainConfig.from_file(args.config)
        # the step on this machine: CPU, one thread, a throwaway folder and a two-record hold-out
        cfg.device, cfg.threads, cfg.out_dir = "cpu", 1, "/tmp/train_step_ops"
        cfg.heldout_tasks, cfg.heldout_task_select = 2, False
        cfg.batch_docs, cfg.pass_rows = args.batch, n
        rows.append(count_step(cfg, args.step))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"config": str(args.config), "torch": torch.__version__, "rows": rows},
                                       indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
