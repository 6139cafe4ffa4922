"""PNG figures from the result dicts (matplotlib, Agg): medians with min-max bars over repeats."""
from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _err(s: dict) -> tuple[float, list[list[float]]]:
    p = s["p50"] or 0.0
    return p, [[p - (s["min"] if s["min"] is not None else p)], [(s["max"] if s["max"] is not None else p) - p]]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def plot_sweep(res: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = {"ours": ("o-", "grouped path (ours)"), "ours-compiled": ("^-", "grouped path, compiled (ours, the serve default)"),
              "stock": ("s--", "vLLM stock CPU LoRA ops")}
    n_of = lambda arm: 0 if arm == "base" else int(arm.split()[0])  # noqa: E731
    ticks = sorted({n_of(a) for srv in res["servers"].values() for a in srv["arms"]})
    pos = {n: i for i, n in enumerate(ticks)}  # evenly spaced: 1, 2, 4, 8, 16 read as doublings
    plain_styles = {"plain": (":", "dimgray"), "plain-eager": ("-.", "darkgray")}
    for kind, srv in res["servers"].items():
        arms = srv["arms"]
        if kind in styles:
            xs, ys, lo, hi = [], [], [], []
            for arm, s in arms.items():
                p, (l, h) = _err(s["output_tokens_per_s"])
                xs.append(pos[n_of(arm)]); ys.append(p); lo.append(l[0]); hi.append(h[0])
            fmt, label = styles[kind]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt=fmt, capsize=3, label=label)
        else:
            p = arms["base"]["output_tokens_per_s"]["p50"] or 0
            ls, color = plain_styles.get(kind, ("--", "gray"))
            ax.axhline(p, ls=ls, color=color, label=f"{kind} server (no LoRA), base traffic")
    ax.set_xticks(range(len(ticks)), ["base" if n == 0 else str(n) for n in ticks])
    ax.set(xlabel="distinct adapters in flight", ylabel="output tokens/s (median, min-max)",
           title="Output throughput vs adapters in flight")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def plot_qa(res: dict, path: Path) -> Path:
    plt = _plt()
    arms = res["qa"]["arms"]
    lengths = sorted(int(n) for n in res["documents"])
    kinds = [("adapter {n}", "adapter"), ("context {n}", "in prompt, distinct"),
             ("context {n} repeated", "in prompt, repeated (prefix cache)")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.27
    for j, (pat, label) in enumerate(kinds):
        for ax, key in ((ax1, "requests_per_s"), (ax2, "ttft_p50_s")):
            xs, ys, lo, hi = [], [], [], []
            for i, n in enumerate(lengths):
                s = arms.get(pat.format(n=n))
                if s is None:
                    continue
                p, (l, h) = _err(s[key])
                xs.append(i + (j - 1) * width); ys.append(p); lo.append(l[0]); hi.append(h[0])
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=label)
    for ax, key, ylabel in ((ax1, "requests_per_s", "requests/s"), (ax2, "ttft_p50_s", "time to first token p50 (s)")):
        base = arms["base"][key]["p50"]
        if base is not None:
            ax.axhline(base, color="k", ls=":", label="base, no document")
        ax.set_xticks(range(len(lengths)), [f"{n} tokens" for n in lengths])
        ax.set(ylabel=ylabel)
    ax1.set_title("QA throughput by document length")
    ax2.set_title("Time to first token")
    ax2.set_yscale("log")
    ax1.legend(fontsize=8)
    return _save(fig, path)


def plot_memory(res: dict, path: Path) -> Path:
    plt = _plt()
    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    n = [r["tokens"] for r in rows]
    ax.plot(n, [r["kv_bytes_computed"] / 2**20 for r in rows], "o-", label="KV cache, document in prompt (computed)")
    meas = [(r["tokens"], r["kv_bytes_vllm"] / 2**20) for r in rows if r.get("kv_bytes_vllm")]
    if meas:
        ax.plot(*zip(*meas), "x", ms=10, label="KV cache reported by vLLM (whole blocks)")
    ax.plot(n, [r["adapter_bytes"] / 2**20 for r in rows], "s-", label="adapter (true rank; capped past the cap)")
    ax.plot(n, [r["vllm_slot_bytes"] / 2**20 for r in rows], "--", color="gray",
            label=f"vLLM LoRA slot (padded to rank {res['max_lora_rank']})")
    ax.set(xscale="log", yscale="log", xlabel="document tokens", ylabel="MiB per document",
           title="Memory per document: adapter vs KV cache")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_uploads(res: dict, path: Path) -> Path:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    up = res["uploads"]
    labels, keys = ["alone", "with uploads"], ["alone", "with_uploads"]
    for j, metric in enumerate(("latency_p50_s", "latency_p95_s")):
        vals = [_err(up[k][metric]) for k in keys]
        ax1.bar([i + (j - 0.5) * 0.35 for i in range(2)], [v[0] for v in vals], 0.35,
                yerr=[[v[1][0][0] for v in vals], [v[1][1][0] for v in vals]], capsize=3, label=metric[:11])
    ax1.set_xticks(range(2), labels)
    ax1.set(ylabel="chat latency (s)", title="Chats with and without uploads in flight")
    ax1.legend(fontsize=8)
    docs = res["documents"]
    n = sorted(int(k) for k in docs)
    ax2.errorbar(n, [docs[str(k)]["server_seconds"]["p50"] for k in n],
                 yerr=[[docs[str(k)]["server_seconds"]["p50"] - docs[str(k)]["server_seconds"]["min"] for k in n],
                       [docs[str(k)]["server_seconds"]["max"] - docs[str(k)]["server_seconds"]["p50"] for k in n]],
                 fmt="o-", capsize=3, label="in the server (POST /v1/documents)")
    ax2.set(xscale="log", xlabel="document tokens", ylabel="internalization seconds",
            title="Internalization latency")
    ax2.legend(fontsize=8)
    return _save(fig, path)


def plot_store(res: dict, path: Path) -> Path:
    """Left: list/describe latency with the 50 ms target; right: time to first token, cold vs warm."""
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    names = list(res["lists"])
    p50 = [res["lists"][n]["p50_ms"] for n in names]
    p95 = [res["lists"][n]["p95_ms"] for n in names]
    ax.barh(names, p95, color="lightsteelblue", label="p95")
    ax.barh(names, p50, color="steelblue", label="p50")
    ax.axvline(50, color="crimson", ls="--", lw=1, label="50 ms target")
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log)")
    ax.set_title(f"Listing with {res['adapters']:,} stored adapters")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    t = res["ttft"]
    labels = ["base model", "adapter\nwarm", "adapter\ncold"]
    vals = [t["base_p50_s"], t["warm_p50_s"], t["cold_p50_s"]]
    bx.bar(labels, [1000 * v for v in vals], color=["gray", "steelblue", "darkorange"])
    bx.set_ylabel("time to first token, p50 (ms)")
    bx.set_title(f"First token\ncold ÷ warm = {t['cold_over_warm']:.2f}× (target ≤ 2×)", fontsize=10)
    return _save(fig, path)


def plot_priority(res: dict, path: Path) -> Path:
    """Chat p95 latency alone and with uploads, per internalization priority."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = list(res["arms"])
    width = 0.38
    for j, (key, name, color) in enumerate((("alone", "chats alone", "steelblue"),
                                            ("with_uploads", "chats while 2 clients upload", "darkorange"))):
        vals = [_err(res["arms"][l][key]["latency_p95_s"]) for l in labels]
        xs = [i + (j - 0.5) * width for i in range(len(labels))]
        ax.bar(xs, [v[0] for v in vals], width, color=color, label=name,
               yerr=[[v[1][0][0] for v in vals], [v[1][1][0] for v in vals]], capsize=3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([f"{l}\nwith/alone = {res['arms'][l]['p95_with_over_alone']:.2f}×" for l in labels])
    ax.set_ylabel("chat latency p95 (s)")
    ax.set_title("Internalization priority: chats under uploads")
    ax.legend(fontsize=8)
    return _save(fig, path)
