"""Carry a run's best snapshot and its log into the committed snapshot folder a fresh machine resumes from.

The committed folder (`checkpoints/tasks`, `checkpoints/token`) holds the best weights (through
its `hypernet` link into the package's assets, so the served default is the same file), their
`state.json`, and the run's whole log as `log.jsonl.gz`: every row since the run began, across
the machines it ran on. Compressed because everything committed travels with each call of a
remote training job, and the log grows with every step.

    python -m vllm_d2l.training.publish runs/tasks checkpoints/tasks
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
from pathlib import Path

LOG = "log.jsonl.gz"


def read_log(path: Path) -> list[dict]:
    """Rows of a plain or gzip-compressed `log.jsonl`."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def resumed_rows(rows: list[dict]) -> list[dict]:
    """A run's log as one line of training: a run restarted from its last save appends the steps
    after that save again, and those rows replace the ones written before the restart. An
    evaluation row may come some steps late (a scorer process writes it, `eval_async`): it goes in
    at its step, and replaces only an evaluation of that step or a later one."""
    out: list[dict] = []
    for row in rows:
        if "loss" not in row and out and out[-1]["step"] > row["step"]:  # late, not a restart
            out = [r for r in out if "loss" in r or r["step"] < row["step"]]
            at = len(out)
            while at and out[at - 1]["step"] > row["step"]:
                at -= 1
            out.insert(at, row)
            continue
        while out and (out[-1]["step"] > row["step"] or
                       (out[-1]["step"] == row["step"] and ("loss" in out[-1]) == ("loss" in row))):
            out.pop()
        out.append(row)
    return out


def merge_rows(committed: list[dict], run: list[dict]) -> list[dict]:
    """The committed history up to where this run's rows start, then the run's rows.

    A machine without the run's folder resumes from the committed snapshot, which may be older than
    the committed log's last row (the best snapshot, not the last one, is committed): the rows after
    it describe a line of training whose weights are gone, and this run replaces them."""
    if not run:
        return list(committed)
    start = run[0]["step"]
    return [r for r in committed if r["step"] < start] + list(run)


def write_log(rows: list[dict], path: Path) -> None:
    """Atomically, and byte-for-byte the same for the same rows (no time stamp in the gzip header)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows).encode())
    os.replace(tmp, path)


def publish(run_dir: Path, folder: Path) -> dict:
    """Merge the run's log into the folder's; copy the run's best snapshot over the folder's when the
    run has one (a run writes `best/` only when it beats the snapshot it resumed from)."""
    run_dir, folder = Path(run_dir), Path(folder)
    if not (run_dir / "log.jsonl").is_file():
        raise FileNotFoundError(f"{run_dir} has no log.jsonl: not a training run's folder")
    log = folder / LOG
    rows = merge_rows(read_log(log) if log.is_file() else [], resumed_rows(read_log(run_dir / "log.jsonl")))
    write_log(rows, log)
    best = run_dir / "best"
    copied = None
    if (best / "state.json").is_file():
        weights = (folder / "hypernet").resolve()  # the package's assets, where the link points
        weights.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(best / "hypernet" / name, weights / name)
        shutil.copyfile(best / "state.json", folder / "state.json")
        copied = json.loads((best / "state.json").read_text())["step"]
    return {"rows": len(rows), "last_step": rows[-1]["step"] if rows else None, "snapshot_step": copied}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="the run's out_dir, e.g. runs/tasks")
    p.add_argument("folder", type=Path, help="the committed snapshot folder, e.g. checkpoints/tasks")
    args = p.parse_args(argv)
    print(json.dumps(publish(args.run_dir, args.folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
