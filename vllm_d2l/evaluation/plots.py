"""PNG charts of evaluation results (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_LABELS = {"none": "no context", "context": "in context", "adapter": "own adapter", "other": "another doc's\nadapter"}


def qa_chart(results: dict, path: Path | str, title: str = "") -> None:
    """Accuracy and token F1 per condition, side by side, with gap closure in the title."""
    plt = _pyplot()
    conds = list(results["conditions"])
    acc = [results["conditions"][c]["accuracy"] for c in conds]
    f1 = [results["conditions"][c]["f1"] for c in conds]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = range(len(conds))
    ax.bar([x - 0.2 for x in xs], acc, width=0.4, label="accuracy (answer contained)")
    ax.bar([x + 0.2 for x in xs], f1, width=0.4, label="token F1")
    for x, a in zip(xs, acc):
        ax.text(x - 0.2, a + 0.01, f"{a:.0%}", ha="center", fontsize=8)
    ax.set_xticks(list(xs), [_LABELS.get(c, c) for c in conds])
    ax.set_ylim(0, 1.05)
    gap = results.get("gap_closure", {}).get("accuracy")
    head = title or Path(str(results.get("data", ""))).name
    ax.set_title(f"{head[:90]}\n(n={results['n_questions']}" + (f", gap closure {gap:.2f})" if gap is not None else ")"),
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def needle_chart(results: dict, path: Path | str) -> None:
    """Recall per document length, one group of bars per (condition, depth)."""
    plt = _pyplot()
    cells = results["cells"]
    lengths = sorted({c["tokens"] for c in cells})
    series = sorted({(c["condition"], c["depth"]) for c in cells})
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(series))
    for j, (cond, depth) in enumerate(series):
        ys = []
        for n in lengths:
            hit = [c["recall"] for c in cells if c["tokens"] == n and c["condition"] == cond and c["depth"] == depth]
            ys.append(hit[0] if hit else 0.0)
        ax.bar([i + (j - (len(series) - 1) / 2) * width for i in range(len(lengths))], ys, width=width,
               label=f"{cond} @ depth {depth}")
    ax.set_xticks(range(len(lengths)), [f"{n} tok" for n in lengths])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall")
    ax.set_title("needle recall (missing bars: does not fit the window)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fidelity_chart(results: dict, path: Path | str) -> None:
    """Read-back cosine of the probe tokens against tokens stored, one line per network."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, res in results.items():
        rows = res["rows"]
        xs = [r["tokens"] for r in rows]
        line, = ax.plot(xs, [r["own"] for r in rows], marker="o", label=f"{name} (k={res['key_dim']}): own value")
        ax.plot(xs, [r["other"] for r in rows], linestyle=":", color=line.get_color(), label="other probe tokens' values")
    ax.set_xscale("log")
    ax.set_xlabel("tokens in the memory")
    ax.set_ylabel("cosine of read-back")
    ax.set_ylim(-0.1, 1.0)
    ax.set_title(f"memory read-back of the first {next(iter(results.values()))['probe']} tokens")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def multi_chart(results: dict, path: Path | str) -> None:
    """Accuracy against the number of documents asked at once, one line per condition."""
    plt = _pyplot()
    sizes = [int(k) for k in results["by_size"]]
    conds = list(next(iter(results["by_size"].values()))["conditions"])
    labels = {"single": "own adapter alone", "composite": "composite (as served)",
              "summed": "sum of the K adapters", "context": "K documents in the prompt", "other": "another group's composite", "none": "no context"}
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in conds:
        ys = [results["by_size"][str(k)]["conditions"][c]["accuracy"] for k in sizes]
        ax.plot(sizes, ys, "o-" if c == "composite" else "o--", label=labels.get(c, c))
    ax.set_xticks(sizes)
    ax.set_xlabel("documents per question (K)")
    ax.set_ylabel("accuracy (answer contained)")
    ax.set_ylim(0, 1.05)
    n = max(s["n_questions"] for s in results["by_size"].values())
    ax.set_title(f"{Path(str(results.get('data', ''))).name[:60]}: one question, K documents (n<={n})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def training_chart(log_path: Path | str, path: Path | str) -> None:
    """A run's `log.jsonl`: training losses, and held-out answer loss with the document's own
    adapter against another document's (the gap between the two is carried content); with
    `task_balance`, a third panel of each family's latest miss rate, the rules still to learn."""
    import json

    plt = _pyplot()
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    held = [r for r in rows if "heldout_ce" in r]
    balanced = [r for r in train if r.get("family_miss")]
    fig, axes = plt.subplots(1, 3 if balanced else 2, figsize=(15 if balanced else 10, 4))
    left, right = axes[:2]
    if balanced:
        last = balanced[-1]
        misses = sorted(last["family_miss"].items(), key=lambda kv: kv[1])
        axes[2].barh([f for f, _ in misses], [m for _, m in misses])
        axes[2].tick_params(axis="y", labelsize=7)
        axes[2].set_xlabel("edit tokens not the first choice (running mean)")
        axes[2].set_title(f"miss rate per family at step {last['step']}")
    for key, label in (("ce", "answer CE"), ("kl", "KL to teacher"), ("rec", "reconstruction CE")):
        pts = [(r["step"], r[key]) for r in train if key in r]
        if pts:
            left.plot(*zip(*pts), label=label)
    left.set_xlabel("step")
    left.set_title("training (per logged step)")
    left.legend(fontsize=8)
    if held:
        steps = [r["step"] for r in held]
        right.plot(steps, [r["heldout_ce"] for r in held], "o-", label="own document's adapter")
        if "heldout_wrong_doc_ce" in held[-1]:
            pts = [(r["step"], r["heldout_wrong_doc_ce"]) for r in held if "heldout_wrong_doc_ce" in r]
            right.plot(*zip(*pts), "s--", label="another document's adapter")
        pts = [(r["step"], r["avg_heldout_ce"]) for r in held if "avg_heldout_ce" in r]
        if pts:  # the running average of the weights (`ema_decay`), own document's adapter
            right.plot(*zip(*pts), "^-", label="averaged weights, own document's adapter")
        right.legend(fontsize=8)
    right.set_xlabel("step")
    right.set_title("training hold-out: answer CE")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
