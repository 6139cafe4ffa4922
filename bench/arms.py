"""Run several arms against one server, interleaved: repeat 1 runs every arm, then repeat 2, ...

Interleaving (rather than all repeats of one arm, then the next) is what lets ratios between arms
hold on a shared machine: a slow minute hits every arm of that repeat alike. The order of arms is
rotated from repeat to repeat so no arm always runs first after a warm-up or last before the end.
"""
from __future__ import annotations

from typing import Callable

from tqdm.auto import tqdm

from .config import Load
from .load import Body, measure
from .stats import over_repeats

# an arm makes the body of its i-th request; i counts up across warm-up and repeats, never reused
BodyMaker = Callable[[int], Body]


def run_arms(base_url: str, arms: dict[str, BodyMaker], load: Load, desc: str,
             deadlines: dict[str, float] | None = None) -> dict:
    """{"arms": {name: spread of each metric}, "batches": {name: [per-repeat summaries]}}."""
    names = list(arms)
    counters = {n: 0 for n in names}

    def batch(name: str, n: int, bar: tqdm | None) -> dict:
        start = counters[name]
        counters[name] += n
        deadline = (deadlines or {}).get(name, load.deadline_s)
        b = measure(base_url, lambda i: arms[name](start + i), n, load.concurrency, deadline,
                    on_done=bar.update if bar is not None else None)
        return b.summary()

    warm = {}
    for name in tqdm(names, desc=f"{desc}: warm-up", unit="arm", leave=False):
        warm[name] = batch(name, load.warmup_requests, None)
    batches: dict[str, list[dict]] = {n: [] for n in names}
    total = load.repeats * len(names) * load.requests
    with tqdm(total=total, desc=desc, unit="req") as bar:
        for r in range(load.repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                bar.set_postfix_str(f"repeat {r + 1}/{load.repeats} {name}")
                s = batch(name, load.requests, bar)
                batches[name].append(s)
                bar.update(load.requests - s["requests"])  # requests skipped by the deadline
                tqdm.write(f"  {desc} r{r + 1} {name:<28} {s['requests_per_s']:6.2f} req/s "
                           f"{s['output_tokens_per_s']:7.1f} tok/s  errors {s['errors']}")
    return {"arms": {n: over_repeats(batches[n]) for n in names}, "batches": batches,
            "warmup": warm}
