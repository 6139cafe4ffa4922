"""The run's hold-out scored in a process of its own (`eval_async`), so training never waits for it.

On the two-core CPU machine a step of the task run takes about 45 s on one core, and an evaluation
of the weights and of their running average about 11 minutes: inside the trainer, every 50 steps,
that was a fifth of the wall clock. With `eval_async` the trainer writes the weights it would have
scored (and their average) to `pending/<step>/` and goes on; a scorer process, on the other core,
builds a `Trainer` from the run's config around them and scores them with the same
`Trainer.evaluate`, appends the row to the log, redraws the curves, keeps the best snapshot as the
trainer would (`Trainer.keep_if_best`) and removes the folder.

One scorer at a time, in step order: the trainer waits for the last one before it starts the next
(when evaluations are tens of steps apart it has long finished). A run stopped with folders still
pending has them scored when it resumes, so no evaluated step is lost with a stop. A trainer stopped
and restarted while its scorer still runs starts a second scorer on the same folders: each scorer
holds the run's `scoring.lock` while it works and skips a folder the other has already scored, so no
step is scored (and logged) twice.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import torch

from ..hypernet import HypernetBase
from . import checkpoint
from .config import TrainConfig

PENDING = "pending"


def write_pending(trainer) -> Path:
    """The trainer's weights, their average (if it keeps one) and its step, under `pending/<step>`:
    written to a temporary folder and swapped in, so a scorer never reads half of one."""
    folder = trainer.out / PENDING / str(trainer.step)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    trainer.net.save(tmp / "weights", dtype=torch.float32)
    meta: dict = {"step": trainer.step}
    if trainer.average is not None:
        with trainer.average.swapped_in(trainer.net):
            trainer.net.save(tmp / "average", dtype=torch.float32)
        meta["average"] = trainer.average.state()[1]
    (tmp / "state.json").write_text(json.dumps(meta))
    checkpoint.swap_in(tmp, folder)
    return folder


def spawn(out: Path, folders: list[Path]) -> subprocess.Popen:
    """A scorer process for `folders`, in that order; its output goes to `scorer.out` in the run."""
    cmd = [sys.executable, "-m", "vllm_d2l.training.scoring", "--config", str(out / "config.json"),
           *map(str, folders)]
    with open(out / "scorer.out", "a") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def queue(trainer, previous: subprocess.Popen | None) -> subprocess.Popen:
    """Write the trainer's weights for scoring and start their scorer once `previous` is done."""
    folder = write_pending(trainer)
    if previous is not None:
        previous.wait()
    return spawn(trainer.out, [folder])


def resume(out: Path) -> subprocess.Popen | None:
    """A scorer for whatever a stopped run left pending (None if nothing)."""
    root = out / PENDING
    folders = sorted((p for p in root.iterdir() if p.name.isdigit() and (p / "state.json").is_file()),
                     key=lambda p: int(p.name)) if root.is_dir() else []
    return spawn(out, folders) if folders else None


def _load(trainer, weights: Path) -> None:
    trainer.net.load_state_dict(HypernetBase.load(weights, trainer.model.config).state_dict())


@contextlib.contextmanager
def _holding(trainer, folder: Path, averaged: bool) -> Iterator[None]:
    """`trainer.net` holds the folder's average or its weights inside the block."""
    _load(trainer, folder / ("average" if averaged else "weights"))
    yield


@contextlib.contextmanager
def _locked(run: Path) -> Iterator[None]:
    """Hold the run's scoring lock (waiting for another scorer to let go of it)."""
    with open(run / "scoring.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def score(cfg: TrainConfig, folders: list[Path]) -> list[dict]:
    """Score each pending folder as the trainer would have at its step; return the rows written."""
    if not folders:
        return []
    with _locked(folders[0].parent.parent):  # run/pending/<step>
        return _score(cfg, [f for f in folders if (f / "state.json").is_file()])


def _score(cfg: TrainConfig, folders: list[Path]) -> list[dict]:
    from ..evaluation.plots import training_chart
    from .trainer import Trainer

    trainer, rows = None, []
    for folder in folders:
        meta = json.loads((folder / "state.json").read_text())
        if trainer is None:
            trainer = Trainer(cfg, scoring_weights=folder / "weights")
        else:
            _load(trainer, folder / "weights")
        trainer.step = meta["step"]
        row = {"step": meta["step"], **trainer.evaluate()}
        if (folder / "average").is_dir():
            _load(trainer, folder / "average")
            row.update({f"avg_{k}": v for k, v in trainer.evaluate().items()})
        with open(trainer.out / "log.jsonl", "a") as log:  # one line in one write: the trainer appends too
            log.write(json.dumps(row) + "\n")
        training_chart(trainer.out / "log.jsonl", trainer.out / "curves.png")
        trainer.keep_if_best(row, lambda averaged: _holding(trainer, folder, averaged), meta.get("average"))
        shutil.rmtree(folder)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.training.scoring", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, type=Path, help="the run's config (its config.json)")
    p.add_argument("folders", nargs="+", type=Path, help="pending folders, scored in this order")
    args = p.parse_args(argv)
    for row in score(TrainConfig.from_file(args.config), args.folders):
        print(json.dumps({"step": row["step"], "heldout_ce": row.get("heldout_ce")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
