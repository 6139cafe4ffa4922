"""p50 and spread over repeats: a two-core machine shared with other work is noisy, so every
figure is reported as the median of its repeats with the min and max beside it."""
from __future__ import annotations

import statistics
from typing import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def spread(values: Iterable[float | None]) -> dict:
    """{"p50", "min", "max", "runs"} of the non-missing values."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"p50": None, "min": None, "max": None, "runs": []}
    return {"p50": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


SUMMARY_KEYS = ("requests_per_s", "output_tokens_per_s", "ttft_p50_s", "ttft_p95_s",
                "latency_p50_s", "latency_p95_s", "mean_prompt_tokens")


def over_repeats(batches: list[dict]) -> dict:
    """Per-metric spread over the repeats' batch summaries, plus the error count."""
    out = {k: spread(b.get(k) for b in batches) for k in SUMMARY_KEYS}
    out["errors"] = sum(b.get("errors", 0) for b in batches)
    out["completed"] = sum(b.get("completed", 0) for b in batches)
    out["first_error"] = next((b["first_error"] for b in batches if b.get("first_error")), None)
    return out


def ratio(num: dict, den: dict, key: str = "output_tokens_per_s") -> float | None:
    a, b = num[key]["p50"], den[key]["p50"]
    return a / b if a is not None and b else None


def paired_ratio(num: dict, den: dict, key: str = "output_tokens_per_s") -> dict:
    """Ratio of two arms measured in the same repeats: the median of the per-repeat ratios (drift
    on the machine moves both arms of a repeat together), with their spread."""
    a, b = num[key]["runs"], den[key]["runs"]
    if a and b and len(a) == len(b):
        return spread(x / y for x, y in zip(a, b) if y)
    r = ratio(num, den, key)
    return {"p50": r, "min": r, "max": r, "runs": [] if r is None else [r]}
