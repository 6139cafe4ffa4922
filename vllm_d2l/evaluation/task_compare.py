"""Two runs of `vllm-d2l eval --tasks` side by side, reply for reply.

Two checkpoints a few replies apart on 70 replies are usually not different at all: the replies to
one description rise and fall together, and the same weights on two kinds of machine write
different greedy replies.
So the difference is scored on the replies both runs wrote (the same task, prompt and condition),
and its interval comes from resampling whole tasks (`metrics.cluster_interval`) over the paired
differences, which cancels what the two runs share.
"""
from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

from .metrics import cluster_interval


def load_results(path: str | Path) -> dict:
    """An `--out` file, plain or gzipped (as the archived ones under results/eval are)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def compare_sets(old: dict, new: dict, condition: str = "adapter") -> dict[str, dict]:
    """For every compliance set both results hold: old and new compliance on the replies both
    wrote, the difference and its 95 % interval, and the difference per family."""
    out = {}
    for name in sorted(set(old) & set(new)):
        a, b = old[name], new[name]
        if not isinstance(a, dict) or "items" not in a or "items" not in b:
            continue  # the QA checks, the copy set, a note
        key = lambda it: (it["task"], it["description"], it["prompt"])  # noqa: E731
        olds = {key(it): it for it in a["items"] if condition in it.get("complied", {})}
        pairs = [(olds[key(it)], it) for it in b["items"] if key(it) in olds and condition in it.get("complied", {})]
        if not pairs:
            continue
        by_task: dict[int, list[float]] = defaultdict(list)
        by_family: dict[str, list[float]] = defaultdict(list)
        for x, y in pairs:
            d = float(y["complied"][condition]) - float(x["complied"][condition])
            by_task[y["task"]].append(d)
            by_family[y["family"]].append(d)
        n = len(pairs)
        machines = [{k: r.get(k) for k in ("dtype", "cpu_capability")} for r in (a, b)]
        same = machines[0] == machines[1] and machines[0]["cpu_capability"] is not None
        out[name] = {"replies": n, "tasks": len(by_task), "same_machine": same,
                     "old": sum(x["complied"][condition] for x, _ in pairs) / n,
                     "new": sum(y["complied"][condition] for _, y in pairs) / n,
                     "difference": sum(map(sum, by_task.values())) / n,
                     "interval": list(cluster_interval(list(by_task.values()))),
                     "families": {f: sum(ds) / len(ds) for f, ds in sorted(by_family.items())}}
    return out


def format_comparison(rows: dict[str, dict], old_name: str, new_name: str) -> str:
    if not rows:
        return f"no compliance set with the same replies in {old_name} and {new_name}"
    lines = [f"{old_name} -> {new_name}"]
    for name, r in rows.items():
        lo, hi = r["interval"]
        lines.append(f"{name} ({r['tasks']} tasks, {r['replies']} replies): {r['old']:.1%} -> {r['new']:.1%}, "
                     f"{100 * r['difference']:+.1f} points (95 %: {100 * lo:+.0f} to {100 * hi:+.0f})")
        if not r["same_machine"]:
            lines.append("  not known to be the same kind of machine and dtype (`machine` in each result): "
                         "greedy replies differ by machine as well as by weights")
        moved = {f: d for f, d in r["families"].items() if d}
        if moved:
            lines.append("  " + ", ".join(f"{f} {100 * d:+.0f}" for f, d in moved.items()))
    return "\n".join(lines)
