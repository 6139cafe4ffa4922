"""Internalization latency and peak memory vs document length, next to one plain prefill.

For each length, in the same run: (a) `Generator.internalize` of a document of that many tokens,
(b) one plain prefill of the same tokens by the same base model (transformers, logits for the last
token only, as a serving engine computes them). Beyond the model's window a single prefill is not
a meaningful baseline, so there it is the prefill of the same tokens cut into window-sized pieces.
Each measurement runs in a fresh subprocess, so peak RSS (above the loaded model) is its own.

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


def child(kind: str, n_tokens: int, repeats: int, threads: int) -> dict:
    """Runs inside the subprocess: load, warm up once, time `repeats` runs, report peak RSS."""
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

    fn = prefill if kind == "prefill" else internalize
    tiny = gen.tokenizer.decode(ids[:64])
    if kind == "prefill":
        gen.model(torch.tensor([ids[:64]]), logits_to_keep=1)
    else:
        gen.internalize(tiny)  # warm-up on a short input: allocator and kernels, not the peak
    base = rss_mb()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"kind": kind, "tokens": len(ids), "seconds": times, "peak_rss_above_model_mb": rss_mb() - base}


def measure(kind: str, n: int, repeats: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--lengths", str(n), "--repeats", str(repeats),
           "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode != 0:
        raise RuntimeError(f"{kind} at {n} tokens failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    n = [r["tokens"] for r in rows]
    ax1.plot(n, [r["internalize_s"] for r in rows], "o-", label="internalize (adapter)")
    ax1.plot(n, [r["prefill_s"] for r in rows], "s--", label="one plain prefill")
    ax1.set(xscale="log", yscale="log", xlabel="document tokens", ylabel="seconds (median)", title="Latency")
    ax1.legend()
    ax2.plot(n, [r["internalize_peak_mb"] for r in rows], "o-", label="internalize")
    ax2.plot(n, [r["prefill_peak_mb"] for r in rows], "s--", label="prefill")
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
    p.add_argument("--child", choices=["prefill", "internalize"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.child:
        print(json.dumps(child(args.child, lengths[0], args.repeats, args.threads)))
        return 0
    from tqdm.auto import tqdm

    rows = []
    for n in tqdm(lengths, desc="lengths"):
        pre = measure("prefill", n, args.repeats, args.threads)
        gen = measure("internalize", n, args.repeats, args.threads)
        row = {"tokens": n,
               "prefill_s": statistics.median(pre["seconds"]), "internalize_s": statistics.median(gen["seconds"]),
               "prefill_runs": pre["seconds"], "internalize_runs": gen["seconds"],
               "prefill_peak_mb": pre["peak_rss_above_model_mb"], "internalize_peak_mb": gen["peak_rss_above_model_mb"]}
        row["ratio"] = row["internalize_s"] / row["prefill_s"]
        rows.append(row)
        tqdm.write(f"{n:>6} tokens: internalize {row['internalize_s']:.2f}s, prefill {row['prefill_s']:.2f}s, "
                   f"ratio {row['ratio']:.2f}, peak MB {row['internalize_peak_mb']:.0f} vs {row['prefill_peak_mb']:.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import platform
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
            "repeats": args.repeats}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
