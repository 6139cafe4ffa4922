"""A training step's time with the student running only the adapted layers, against the whole model.

In the task mode the teacher is the bare base model reading the very tokens the student reads, and
an adapter changes nothing below its first layer (15 of 30 for the packaged task generator). The
teacher's pass keeps the states entering that layer, and the student starts from them
(`objectives.student_logits`). This bench times the same step both ways, side by side and
alternated so that a noisy machine hurts both alike: teacher, adapters, loss and backward (the
optimizer's update is the same either way and is left out), and counts the operator calls, which
predict a GPU's step time (`bench/train_step_ops.py`).

    python bench/student_layers.py --config examples/train_tasks.yaml --batch 16 --repeats 3 \
        --out results/student_layers.json
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vllm_d2l.training import trainer as trainer_module  # noqa: E402
from vllm_d2l.training.config import TrainConfig  # noqa: E402
from vllm_d2l.training.objectives import teacher_topk_and_states  # noqa: E402
from vllm_d2l.training.trainer import Trainer  # noqa: E402


def whole_model(*args, keep_below: int = 0, **kwargs):
    """The bare teacher without the states: the student then runs every layer, as before."""
    return teacher_topk_and_states(*args, **kwargs)


def one_step(trainer: Trainer, step: int, whole: bool) -> tuple[float, float]:
    """(seconds, loss) of one step's forward and backward at `step`'s records."""
    cfg = trainer.cfg
    recs = [trainer.stream.record(step * cfg.batch_docs + j) for j in range(cfg.batch_docs)]
    trainer.net.zero_grad(set_to_none=True)
    with mock.patch.object(trainer_module, "teacher_topk_and_states", whole_model if whole else teacher_topk_and_states):
        t0 = time.perf_counter()
        loss, _ = trainer.batch_loss(recs, random.Random(step), [False] * len(recs))
        loss.backward()
        return time.perf_counter() - t0, loss.item()


def operator_calls(trainer: Trainer, step: int, whole: bool) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        one_step(trainer, step, whole)
    return sum(1 for e in prof.events() if e.name.startswith("aten::"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("examples/train_tasks.yaml"))
    p.add_argument("--batch", type=int, default=16, help="descriptions a step")
    p.add_argument("--repeats", type=int, default=3, help="steps timed each way, alternated")
    p.add_argument("--step", type=int, default=9000, help="whose records the first step draws")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    cfg = TrainConfig.from_file(args.config)
    cfg.device, cfg.threads, cfg.out_dir = "cpu", 1, "/tmp/student_layers"
    cfg.heldout_tasks, cfg.heldout_task_select, cfg.batch_docs = 2, False, args.batch
    cfg.teacher_replies = 0  # each way teaches its step afresh, as a run does a reply it has not seen
    trainer = Trainer(cfg)
    if trainer.stream is None:
        raise SystemExit("the bench needs a streamed run (the task mode's config)")
    times: dict[str, list[float]] = {"upper": [], "whole": []}
    losses: dict[str, list[float]] = {"upper": [], "whole": []}
    for r in range(args.repeats):
        for name in ("upper", "whole") if r % 2 == 0 else ("whole", "upper"):
            seconds, loss = one_step(trainer, args.step + r, name == "whole")
            times[name].append(seconds)
            losses[name].append(loss)
            print(f"step {args.step + r} {name}: {seconds:.1f} s, loss {loss:.5f}", flush=True)
    calls = {name: operator_calls(trainer, args.step, name == "whole") for name in times}
    result = {
        "config": str(args.config), "batch_docs": args.batch, "pass_rows": cfg.pass_rows,
        "first_adapted_layer": min(trainer.net.config.layers), "layers": trainer.model.config.num_hidden_layers,
        "device": platform.processor() or platform.machine(), "threads": 1, "torch": torch.__version__,
        "dtype": str(trainer.model.dtype),
        "seconds": times, "median_s": {k: statistics.median(v) for k, v in times.items()},
        "ratio_whole_over_upper": statistics.median(times["whole"]) / statistics.median(times["upper"]),
        "loss_largest_difference": max(abs(a - b) for a, b in zip(losses["upper"], losses["whole"])),
        "operator_calls": calls,
    }
    print(json.dumps({k: result[k] for k in ("median_s", "ratio_whole_over_upper", "loss_largest_difference",
                                             "operator_calls")}))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
