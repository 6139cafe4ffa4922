"""The encoder: the frozen base model reading chunks, returning what the hypernetwork reads.

It runs the transformer body only (no LM head: its 49k-wide projection is a fifth of the model's
FLOPs and we never need logits here), and keeps just the layers the hypernetwork reads: residual
streams (`hidden_states[i]`) and, for the token-level generator, the inputs of chosen layers'
`down_proj` (what a LoRA on that module sees at query time, hence the natural key).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Encoded:
    """One micro-batch of chunks as the frozen model saw them."""

    hidden: torch.Tensor  # [N, L_src, T, H] residual streams at the source layers
    inputs: torch.Tensor | None = None  # [N, L_cap, T, d_in] inputs of the captured modules
    ids: torch.Tensor | None = None  # [N, T] the tokens read (the copy path stores which token came next)

    def cut(self, rows, width: int) -> "Encoded":
        """Some chunks' rows, their first `width` tokens."""
        pick = lambda t: None if t is None else t[rows][..., :width, :]  # noqa: E731
        return Encoded(self.hidden[rows][..., :width, :], pick(self.inputs),
                       None if self.ids is None else self.ids[rows][:, :width])

    @staticmethod
    def concat(parts: list["Encoded"], masks: list[torch.Tensor]) -> tuple["Encoded", torch.Tensor]:
        """Batches encoded separately, right-padded with zeros to a common length, as one."""
        width = max(m.shape[1] for m in masks)
        grow = lambda t: torch.nn.functional.pad(t, (0, 0, 0, width - t.shape[-2]))  # noqa: E731
        hidden = torch.cat([grow(p.hidden) for p in parts])
        inputs = torch.cat([grow(p.inputs) for p in parts]) if parts[0].inputs is not None else None
        ids = torch.cat([torch.nn.functional.pad(p.ids, (0, width - p.ids.shape[1])) for p in parts]) \
            if parts[0].ids is not None else None
        mask = torch.cat([torch.nn.functional.pad(m, (0, width - m.shape[1])) for m in masks])
        return Encoded(hidden, inputs, ids), mask


def read_behind(doc: list[list[int]], overlap: int) -> list[tuple[list[int], int]]:
    """One document's chunks as they are encoded: each after the first behind the `overlap` tokens
    before it (context, read and not stored), with how many tokens lead as context."""
    flat = [t for c in doc for t in c] if overlap else []
    out, start = [], 0
    for c in doc:
        lead = flat[max(0, start - overlap):start]
        out.append((lead + c, len(lead)))
        start += len(c)
    return out


def pack_chunks(chunks: list[tuple[list[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`read_behind`'s chunks right-padded into one batch: ids [N, T], mask [N, T] (real tokens) and
    write [N, T] (the tokens stored: the mask less each chunk's leading context)."""
    width = max(len(c) for c, _ in chunks)
    ids = torch.full((len(chunks), width), pad, dtype=torch.long)
    mask = torch.zeros((len(chunks), width), dtype=torch.bool)
    write = torch.zeros_like(mask)
    for i, (c, lead) in enumerate(chunks):
        ids[i, :len(c)] = torch.tensor(c)
        mask[i, :len(c)] = True
        write[i, lead:len(c)] = True
    return ids, mask, write


class Encoder:
    def __init__(self, model, source_layers: list[int], capture: list[str] | None = None):
        """`capture`: module paths (e.g. `model.layers.15.mlp.down_proj`) whose inputs are kept."""
        self.model = model
        self.source_layers = list(source_layers)
        self.capture = list(capture or [])
        n = model.config.num_hidden_layers
        bad = [i for i in self.source_layers if not 0 <= i <= n]
        if bad:
            raise ValueError(f"source layers {bad} outside 0..{n} for this model")
        modules = dict(model.named_modules())
        missing = [p for p in self.capture if p not in modules]
        if missing:
            raise ValueError(f"model has no modules {missing[:3]}")
        self._modules = [modules[p] for p in self.capture]

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Encoded:
        """[N, T] token ids -> `Encoded` (hidden [N, L, T, H], inputs [N, L_cap, T, d_in])."""
        seen: list[torch.Tensor | None] = [None] * len(self._modules)
        handles = [m.register_forward_pre_hook(lambda mod, args, i=i: seen.__setitem__(i, args[0]))
                   for i, m in enumerate(self._modules)]
        try:
            out = self.model.model(input_ids=input_ids, attention_mask=attention_mask,
                                   output_hidden_states=True, use_cache=False)
        finally:
            for h in handles:
                h.remove()
        hs = out.hidden_states
        hidden = torch.stack([hs[i] for i in self.source_layers], dim=1)
        inputs = torch.stack(seen, dim=1) if self._modules else None  # type: ignore[arg-type]
        return Encoded(hidden, inputs, input_ids)
