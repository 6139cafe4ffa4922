"""One adapter for a question over several documents (and tasks), built from their stored adapters.

The composite's update is the sum of the parts' document updates, with each generator's always-on
block counted once (it is the same for every adapter of one checkpoint, and adding it twice would
double the answer style, not the content). How a part's document update is summed is what its
generator wrote in the adapter's `layout` meta:

- "concat" (Perceiver): the parts' document rows stack along rank, as a long document's chunks do.
- "sum" (token kind): every adapter of one checkpoint has the same A, and B is its summed memory
  over a norm of its token count (`gain V S / sqrt(n)`). Undoing each part's norm and applying the
  norm of the total gives the adapter of the pooled memory, at the same fixed rank, exactly as if
  the documents had been one (each still centred on its own mean keys).

Parts without a layout (compressed by truncated SVD, foreign adapters, or made by another
checkpoint) are concatenated whole. Composing is associative: a composite carries a layout too.

This is what the adapters alone allow. Where a generator also keeps each document's memory (the
token kind; `HypernetBase.keeps_memory`), the server composes those documents from their memories
instead (`Generator.pool`): for the whitened read, one least-squares memory over all their tokens,
which the sum of separately whitened updates is not (on the hand-written set at K = 2 documents it
kept 0.61 of one adapter's accuracy where the sum kept 0.39; README, "Several documents").
"""
from __future__ import annotations

import torch

from .lora import HEAD, LoRAWeights

_NORMS = {"sqrt": lambda n: n ** 0.5, "mean": lambda n: n, "none": lambda n: 1.0}


def compose(parts: list[LoRAWeights]) -> LoRAWeights:
    """The composite adapter of `parts` (at least one); its meta sums tokens and chunks. A module
    only some parts update (a task generator's copy path on the LM head) is a zero update in the others."""
    parts = _on_every_module(parts)
    LoRAWeights.check_addable(parts, "compose")
    groups: dict[tuple, list[LoRAWeights]] = {}
    for i, p in enumerate(parts):
        layout = _layout(p)
        key = (p.meta.get("hypernet"), layout["combine"], layout["always_on"], layout.get("norm")) \
            if layout else ("whole", i)
        groups.setdefault(key, []).append(p)
    blocks = [_compose_group(g) if _layout(g[0]) else g[0] for g in groups.values()]
    out = blocks[0] if len(blocks) == 1 else LoRAWeights.concat(blocks)
    meta = {**out.meta, "tokens": sum(int(p.meta.get("tokens", 0)) for p in parts),
            "chunks": sum(int(p.meta.get("chunks", 0)) for p in parts)}
    return LoRAWeights(out.a, out.b, out.base_model, meta)  # a new object: the parts stay as they were


def _on_every_module(parts: list[LoRAWeights]) -> list[LoRAWeights]:
    """`parts`, each given zero factors at its own rank for the modules that only others update."""
    shapes = {k: (p.a[k].shape[1], p.b[k].shape[0], p.a[k].dtype) for p in parts for k in p.a}
    out = []
    for p in parts:
        missing = shapes.keys() - p.a.keys()
        if not missing:
            out.append(p)
            continue
        a = dict(p.a) | {k: torch.zeros(p.rank, shapes[k][0], dtype=shapes[k][2]) for k in missing}
        b = dict(p.b) | {k: torch.zeros(shapes[k][1], p.rank, dtype=shapes[k][2]) for k in missing}
        out.append(LoRAWeights(a, b, p.base_model, p.meta))
    return out


def _layout(w: LoRAWeights) -> dict | None:
    """The generator's layout if it still describes these factors, else None."""
    layout = w.meta.get("layout")
    if not isinstance(layout, dict) or layout.get("combine") not in ("concat", "sum"):
        return None
    always_on = layout.get("always_on", 0)
    if not isinstance(always_on, int) or not 0 <= always_on <= w.rank:
        return None
    if layout["combine"] == "sum" and (layout.get("norm") not in _NORMS or not layout.get("tokens", 0) > 0):
        return None
    return layout


def _compose_group(group: list[LoRAWeights]) -> LoRAWeights:
    """Parts of one checkpoint with one layout: document rows combined, always-on block once."""
    layout = dict(_layout(group[0]))
    r_on = layout["always_on"]
    if not all(_same_always_on(group[0], p, r_on) for p in group[1:]):
        return LoRAWeights.concat(group)  # not one checkpoint after all: the plain sum of updates
    if layout["combine"] == "sum" and not all(_same_a(group[0], p) for p in group[1:]):
        layout["combine"] = "concat"  # not one key space after all: stacking is still the sum of updates
        layout.pop("norm", None)
        layout.pop("tokens", None)
    a, b = {}, {}
    for k in group[0].a:
        own = [(p.a[k][:p.rank - r_on], p.b[k][:, :p.rank - r_on]) for p in group]  # A [r_i, d_in], B [d_out, r_i]
        if layout["combine"] == "sum":
            norm = _NORMS[layout["norm"]]
            total = sum(float(p.meta["layout"]["tokens"]) for p in group)
            norm = norm if k != HEAD else _NORMS["none"]  # the copy path's rows are plain sums
            summed = sum(b_i.float() * (norm(float(p.meta["layout"]["tokens"])) / norm(total))
                         for p, (_, b_i) in zip(group, own))  # [d_out, r]
            a_doc, b_doc = own[0][0], summed.to(own[0][1].dtype)
        else:
            a_doc, b_doc = torch.cat([x for x, _ in own], 0), torch.cat([y for _, y in own], 1)
        first = group[0]
        a[k] = torch.cat([a_doc, first.a[k][first.rank - r_on:]], 0)
        b[k] = torch.cat([b_doc, first.b[k][:, first.rank - r_on:]], 1)
    if layout["combine"] == "sum":
        layout["tokens"] = sum(float(p.meta["layout"]["tokens"]) for p in group)
    return LoRAWeights(a, b, group[0].base_model, {**group[0].meta, "layout": layout})


def _same_a(x: LoRAWeights, y: LoRAWeights) -> bool:
    return x.rank == y.rank and all(torch.equal(x.a[k], y.a[k]) for k in x.a)


def _same_always_on(x: LoRAWeights, y: LoRAWeights, r_on: int) -> bool:
    if r_on == 0:
        return True
    if _layout(y) is None or _layout(y)["always_on"] != r_on:
        return False
    return all(torch.equal(x.a[k][x.rank - r_on:], y.a[k][y.rank - r_on:])
               and torch.equal(x.b[k][:, x.rank - r_on:], y.b[k][:, y.rank - r_on:]) for k in x.a)
