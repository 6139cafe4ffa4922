"""Which rule each task adapter was read as: its weight change set against training-family prototypes.

Compliance says whether a reply followed its rule, not why one did not. A miss has two causes that
call for different work: the generator read the description as another rule (a held-out "Shout:
every letter of your answer must be a capital." comes out in title case), or it read the rule and
its adapter does not carry it out (a forbidden word that still appears, a quoted phrase copied
wrong). An adapter is a weight change per module, dW = B A; here each evaluation description's
dW is compared, by cosine over all modules, with the dW of a few descriptions of every training
family (the training grammar's wordings, held-out values), and the family whose prototypes are
nearest on average is what the description was read as. Every adapter shares a large common part
(the answer style every rule keeps: raw cosines are all near 0.9), so the mean dW of the
prototypes is taken out first. No reply is generated. A description read weakly stays near that
mean, and its nearest family is then close to a guess: its similarities are all small (the JSON
keeps every one), and with other prototypes it can land elsewhere.

    vllm-d2l eval --tasks --set readings --out results/eval/tasks_readings.json --plot results/eval/tasks_readings.png
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

import torch

from ..datasets.tasks import HELD_OUT_FAMILIES, Task, draw_task, families, wide_wordings
from .generation import factors_of

READING_SETS = ("wordings", "families", "fresh")  # the evaluation sets whose descriptions are read
Factors = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module -> (A [r, in], B [out, r])


def inner(f: Factors, g: Factors) -> float:
    """<B_f A_f, B_g A_g> summed over modules, through r x r products: the dense dW is never built
    (a module's is up to 1536 x 576, two hundred of them an adapter)."""
    total = 0.0
    for k, (a_f, b_f) in f.items():
        a_g, b_g = g[k]
        total += torch.trace((b_f.T @ b_g) @ (a_g @ a_f.T)).item()  # tr([r, r] @ [r, r])
    return total


def centred_cosines(gram: torch.Tensor, cross: torch.Tensor, self_inner: float) -> torch.Tensor:
    """Cosines between one adapter and each prototype once the prototypes' mean is taken out of
    both, from inner products alone. gram [P, P]: the prototypes' inner products; cross [P]: the
    adapter's with each prototype; self_inner: its own squared norm."""
    row_mean = gram.mean(1)  # [P]: <p_i, mean>
    mean_sq = gram.mean()  # <mean, mean>
    dot = cross - cross.mean() - row_mean + mean_sq  # <x - mean, p_i - mean>
    norm_x = max(self_inner - 2 * cross.mean().item() + mean_sq.item(), 0.0) ** 0.5
    norm_p = (gram.diag() - 2 * row_mean + mean_sq).clamp_min(0).sqrt()
    return dot / (norm_x * norm_p).clamp_min(1e-12)


def _factors(generator, description: str) -> Factors:
    """The description's adapter as `generation.factors_of` gives it, in fp32 for the inner products."""
    return {k: (a.float(), b.float()) for k, (a, b) in factors_of(generator.internalize(description).weights).items()}


def prototype_descriptions(per_family: int = 8, seed: int = 0) -> list[tuple[str, str]]:
    """(family, description) for `per_family` descriptions of every training family (the extra ones
    too), worded by the training grammar and holding evaluation values: the rule as trained, with
    values the evaluation sets use."""
    rng = random.Random(f"readings/{seed}")
    out = []
    for family in families("train", extra=True):
        imperative, _ = wide_wordings(family)
        for _ in range(per_family):
            task = draw_task(rng, "eval", family=family)
            out.append((family, Task(family, -1, task.params, rng.choice(imperative)).description))
    return out


def read_as(generator, items: list[dict], per_family: int = 8, seed: int = 0, progress: bool = True) -> dict:
    """For each task of `items` (`tasks.build_items`'s, tagged with "set"), the centred cosine of its
    adapter with each training family (the mean over that family's prototypes) and the nearest."""
    protos = prototype_descriptions(per_family, seed)
    labels = [family for family, _ in protos]
    tasks = list({(it["set"], it["task"]): it for it in items}.values())
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(protos) + len(tasks), desc="adapters read", unit="adapter", dynamic_ncols=True)
    factors = []
    for _, description in protos:
        factors.append(_factors(generator, description))
        if bar:
            bar.update(1)
    n = len(factors)
    gram = torch.zeros(n, n)  # [P, P]
    for i in range(n):
        for j in range(i, n):
            gram[i, j] = gram[j, i] = inner(factors[i], factors[j])
    names = list(dict.fromkeys(labels))
    columns = {name: [i for i, l in enumerate(labels) if l == name] for name in names}
    rows = []
    for it in tasks:
        f = _factors(generator, it["description"])
        cos = centred_cosines(gram, torch.tensor([inner(f, p) for p in factors]), inner(f, f))  # [P]
        sims = {name: cos[idx].mean().item() for name, idx in columns.items()}
        nearest = max(sims, key=sims.get)
        rows.append({"set": it["set"], "family": it["family"], "description": it["description"], "similarity": sims,
                     "read_as": nearest, "own_rank": sorted(sims, key=sims.get, reverse=True).index(it["family"]) + 1
                     if it["family"] in sims else None})
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return {"prototypes_per_family": per_family, "families": names, "summary": summarize(rows), "rows": rows}


def summarize(rows: list[dict]) -> dict:
    """Per set: the share of training-family descriptions read as their own family, and for the
    held-out families what they were read as."""
    out = {}
    for which in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == which]
        trained = [r for r in mine if r["family"] not in HELD_OUT_FAMILIES]
        held: dict[str, Counter] = defaultdict(Counter)
        for r in mine:
            if r["family"] in HELD_OUT_FAMILIES:
                held[r["family"]][r["read_as"]] += 1
        out[which] = {"descriptions": len(mine), "read_as_own": sum(r["read_as"] == r["family"] for r in trained)
                      / len(trained) if trained else None, "held_out_read_as": {f: dict(c) for f, c in held.items()}}
    return out


def format_lines(results: dict) -> str:
    lines = []
    for which, s in results["summary"].items():
        own = f"{s['read_as_own']:.0%} of training-family descriptions read as their own" if s["read_as_own"] is not None else ""
        held = "; ".join(f"{fam} read as " + ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]))
                         for fam, c in s["held_out_read_as"].items())
        lines.append(f"readings, {which} ({s['descriptions']} descriptions): " + "; ".join(x for x in (own, held) if x))
    for r in results["rows"]:
        if r["read_as"] != r["family"]:
            lines.append(f"  {r['set']:<9} {r['family']:<13} read as {r['read_as']:<13} {r['description'][:70]}")
    return "\n".join(lines)


def readings_chart(results: dict, path: Path | str) -> None:
    """A heat map: one row a description, one column a training family, the own family outlined."""
    from .plots import _pyplot

    plt = _pyplot()
    names, rows = results["families"], results["rows"]
    grid = torch.tensor([[r["similarity"][n] for n in names] for r in rows])  # [D, F]
    fig, ax = plt.subplots(figsize=(1.0 + 0.32 * len(names), 1.5 + 0.17 * len(rows)))
    im = ax.imshow(grid.numpy(), cmap="viridis", aspect="auto")
    for i, r in enumerate(rows):
        if r["family"] in names:
            ax.add_patch(plt.Rectangle((names.index(r["family"]) - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.2))
        ax.text(names.index(r["read_as"]), i, "•", ha="center", va="center", color="white", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=70, fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r['set']} · {r['family']}" for r in rows], fontsize=6)
    ax.set_title("What each description's adapter was read as (centred cosine to family prototypes;\n"
                 "red: the description's own family, dot: the nearest)", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
