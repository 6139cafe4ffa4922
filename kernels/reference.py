"""Plain-torch reference for batched multi-adapter LoRA.

Written for obviousness, not speed: every token is treated on its own, in
fp32, straight from the definition

    y[t, off:off+w] += scale * (x[t] @ A_s^T) @ B_s^T     with s = slot[t] >= 0

so the grouped CPU path and the Triton kernels can be checked against
something that shares none of their indexing tricks.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .layout import LoRABank, LoRASlice

__all__ = ["reference_shrink", "reference_expand", "reference_lora_linear"]


def reference_shrink(
    x: torch.Tensor,
    token_slots: torch.Tensor,
    bank: LoRABank,
    scale: float = 1.0,
    width: int | None = None,
) -> torch.Tensor:
    """``h[t, :r_s] = scale * x[t] @ A_s^T`` in fp32; other entries zero."""
    width = bank.max_rank if width is None else width
    h = torch.zeros(x.shape[0], width, dtype=torch.float32)
    for t, s in enumerate(token_slots.tolist()):
        if s < 0:
            continue
        a = bank.a_of(s).float().cpu()
        h[t, : a.shape[0]] = scale * (x[t].float().cpu() @ a.T)
    return h


def reference_expand(
    y: torch.Tensor,
    h: torch.Tensor,
    token_slots: torch.Tensor,
    bank: LoRABank,
    out_offset: int = 0,
    add: bool = True,
) -> torch.Tensor:
    """Return ``y`` (as fp32) with ``h[t, :r_s] @ B_s^T`` added (or written)
    into columns ``[out_offset, out_offset + d_out)`` of adapter rows."""
    out = y.float().cpu().clone()
    for t, s in enumerate(token_slots.tolist()):
        if s < 0:
            continue
        b = bank.b_of(s).float().cpu()
        contrib = h[t, : b.shape[1]].float().cpu() @ b.T
        cols = slice(out_offset, out_offset + bank.d_out)
        out[t, cols] = (out[t, cols] + contrib) if add else contrib
    return out


def reference_lora_linear(
    y: torch.Tensor,
    x: torch.Tensor,
    token_slots: torch.Tensor,
    slices: Sequence[LoRASlice],
    scale: float = 1.0,
) -> torch.Tensor:
    """``y`` (as fp32) plus every slice's LoRA for every adapter row."""
    out = y.float().cpu().clone()
    for sl in slices:
        h = reference_shrink(x, token_slots, sl.bank, scale)
        out = reference_expand(out, h, token_slots, sl.bank, sl.out_offset)
    return out
