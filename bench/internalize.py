"""Internalization latency and peak memory vs document length, next to one plain prefill.

For each length, in the same run: (a) `Generator.internalize` of a document of that many tokens,
(b) one plain prefill of the same tokens by the same base model (transformers, logits for the last
token only, as a serving engine computes them). Beyond the model's window a single prefill is not
a meaningful baseline, so there it is the prefill of the same tokens cut into window-sized pieces.
Timings alternate prefill and internalize runs in one process, so a noisy neighbour slows both
alike; each peak-memory figure comes from a fresh subprocess of its own (peak RSS above the loaded
model).

    python bench/internalize.py [--lengths 256,1024,4096,8192,32768] [--repeats 3] [--out results/internalize.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_text(tokenizer, n_tokens: int) -> str:
    """Public-domain text (Python's own documentation topics) cut to exactly `n_tokens` tokens."""
    from pydoc_data.topics import topics

    ids: list[int] = []
    for key in sorted(topics):
        ids += tokenizer(topics[key] + "\n\n", add_special_tokens=False)["input_ids"]
        if len(ids) >= n_tokens:
            break
    while len(ids) < n_tokens:
        ids += ids
    return tokenizer.decode(ids[:n_tokens])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, n_tokens: int, repeats: int, threads: int) -> dict:
    """Runs inside a subprocess. mode: "time" (both kinds, alternating) or "prefill"/"internalize"
    (one run of that kind, for its peak memory)."""
    import torch

    torch.set_num_threads(threads)
    from vllm_d2l.generator import Generator

    gen = Generator.load()
    text = make_text(gen.tokenizer, n_tokens)
    ids = gen.tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    window = gen.model.config.max_position_embeddings

    @torch.no_grad()
    def prefill():
        for i in range(0, len(ids), window):
            gen.model(torch.tensor([ids[i:i + window]]), logits_to_keep=1, use_cache=True)

    def internalize():
        gen.internalize(text)

    kinds = {"prefill": prefill, "internalize": internalize}
    if mode == "internalize-time":
        kinds.pop("prefill")
    # warm-up on a short input: allocator and kernels, not the peak
    gen.model(torch.tensor([ids[:64]]), logits_to_keep=1)
    gen.internalize(gen.tokenizer.decode(ids[:64]))
    if mode in kinds and mode != "time":
        base = rss_mb()
        kinds[mode]()
        return {"tokens": len(ids), "peak_rss_above_model_mb": rss_mb() - base}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(repeats):
        for name, fn in kinds.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {"tokens": len(ids), "seconds": times}


def measure(mode: str, n: int, repeats: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--lengths", str(n), "--repeats", str(repeats),
           "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode != 0:
        raise RuntimeError(f"{mode} at {n} tokens failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    n = [r["tokens"] for r in rows]
    ax1.plot(n, [r["internalize_s"] for r in rows], "o-", label="internalize (adapter)")
    pre = [r for r in rows if r["prefill_s"] is not None]
    ax1.plot([r["tokens"] for r in pre], [r["prefill_s"] for r in pre], "s--", label="one plain prefill")
    ax1.set(xscale="log", yscale="log", xlabel="document tokens", ylabel="seconds (median)", title="Latency")
    ax1.legend()
    ax2.plot(n, [r["internalize_peak_mb"] for r in rows], "o-", label="internalize")
    ax2.plot([r["tokens"] for r in pre], [r["prefill_peak_mb"] for r in pre], "s--", label="prefill")
    ax2.set(xscale="log", xlabel="document tokens", ylabel="peak RSS above loaded model (MB)", title="Memory")
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="256,1024,4096,8192,32768")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (vLLM's CPU worker uses one)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "internalize.json")
    p.add_argument("--prefill-max-tokens", type=int, default=8192,
                   help="skip the prefill baseline above this length (window-sized prefills get slow on CPU)")
    p.add_argument("--append", action="store_true", help="add rows to an existing --out file")
    p.add_argument("--child", choices=["time", "internalize-time", "prefill", "internalize"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.child:
        print(json.dumps(child(args.child, lengths[0], args.repeats, args.threads)))
        return 0
    from tqdm.auto import tqdm

    import platform
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
            "repeats": args.repeats}
    rows = json.loads(args.out.read_text())["rows"] if args.append and args.out.is_file() else []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for n in tqdm(lengths, desc="lengths"):
        with_prefill = n <= args.prefill_max_tokens
        runs = measure("time" if with_prefill else "internalize-time", n, args.repeats, args.threads)["seconds"]
        row = {"tokens": n, "internalize_s": statistics.median(runs["internalize"]), "internalize_runs": runs["internalize"],
               "internalize_peak_mb": measure("internalize", n, 1, args.threads)["peak_rss_above_model_mb"],
               "prefill_s": None, "prefill_runs": None, "prefill_peak_mb": None, "ratio": None}
        if with_prefill:
            row.update(prefill_s=statistics.median(runs["prefill"]), prefill_runs=runs["prefill"],
                       prefill_peak_mb=measure("prefill", n, 1, args.threads)["peak_rss_above_model_mb"])
            row["ratio"] = row["internalize_s"] / row["prefill_s"]
        rows = [r for r in rows if r["tokens"] != n] + [row]
        rows.sort(key=lambda r: r["tokens"])
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))  # after every length
        tqdm.write(f"{n:>6} tokens: internalize {row['internalize_s']:.2f}s, prefill {row['prefill_s']}, "
                   f"ratio {row['ratio']}, peak MB {row['internalize_peak_mb']:.0f} vs {row['prefill_peak_mb']}")
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
