"""Multi-adapter LoRA on CPU: one matmul per adapter group.

vLLM's CPU ops gather a full weight matrix per token (``W[indices]``) and run
an einsum over the copies, so their cost grows with tokens times the padded
rank, and an index of -1 silently picks the last slot.  Here the batch is
grouped by adapter once per step (:func:`kernels.segments.group_tokens`) and
each group does ``x_g @ A_s^T`` then ``h_g @ B_s^T`` on views of the weights,
at the adapter's own rank; rows without an adapter are never read or written.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .layout import LoRABank, LoRASlice
from .segments import Rows, Segments

__all__ = ["grouped_shrink", "grouped_expand", "grouped_lora_linear"]

# Below this many rows, half-precision CPU matmuls are slower than upcasting
# the few rows and the small adapter slice to fp32 (oneDNN's bf16 kernels have
# a fixed cost that only pays off on larger blocks).
_SMALL_GROUP_ROWS = 32


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` with fp32 accumulation; small half-precision problems in fp32."""
    half = (torch.float16, torch.bfloat16)
    if a.shape[0] <= _SMALL_GROUP_ROWS and (a.dtype in half or b.dtype in half):
        return a.float() @ b.float()
    if a.dtype != b.dtype:
        a = a.to(b.dtype)
    return a @ b


def _write(dst: torch.Tensor, rows: Rows, cols: slice, value: torch.Tensor, add: bool) -> None:
    """``dst[rows, cols] (+)= value`` without materialising a gathered copy of dst."""
    if isinstance(rows, slice):
        view = dst[rows, cols]
        if add:
            view.add_(value.to(dst.dtype))
        else:
            view.copy_(value)
    elif add:
        dst[:, cols].index_add_(0, rows, value.to(dst.dtype))
    else:
        dst[rows, cols] = value.to(dst.dtype)


def grouped_shrink(
    h: torch.Tensor,
    x: torch.Tensor,
    bank: LoRABank,
    segments: Segments,
    scale: float = 1.0,
) -> None:
    """``h[rows_s, :r_s] = scale * x[rows_s] @ A_s^T`` for every adapter group.

    Columns of ``h`` past ``r_s`` are zeroed for the group's rows so a later
    expand at a wider rank reads zeros, whatever the buffer held; rows
    without an adapter are left as they are.
    """
    width = h.shape[1]
    for slot, rows in segments.groups:
        r = min(bank.ranks[slot], width)
        if r:
            prod = _matmul(x[rows], bank.a_of(slot, r).t())
            if scale != 1.0:
                prod = prod * scale
            _write(h, rows, slice(0, r), prod, add=False)
        if r < width:
            _write(h, rows, slice(r, width), h.new_zeros(()).expand(_n(rows), width - r), add=False)


def grouped_expand(
    y: torch.Tensor,
    h: torch.Tensor,
    bank: LoRABank,
    segments: Segments,
    out_offset: int = 0,
    add: bool = True,
) -> None:
    """``y[rows_s, off:off+d_out] (+)= h[rows_s, :r_s] @ B_s^T`` per adapter group."""
    cols = slice(out_offset, out_offset + bank.d_out)
    for slot, rows in segments.groups:
        r = min(bank.ranks[slot], h.shape[1])
        if r == 0:
            if not add:
                _write(y, rows, cols, y.new_zeros(()).expand(_n(rows), bank.d_out), add=False)
            continue
        b = bank.b_of(slot, r)
        _write(y, rows, cols, _matmul(h[rows, :r], b.t()), add)


def grouped_lora_linear(
    y: torch.Tensor,
    x: torch.Tensor,
    slices: Sequence[LoRASlice],
    segments: Segments,
    scale: float = 1.0,
) -> None:
    """Add every slice's LoRA into ``y`` in place, one group at a time.

    Fusing shrink and expand per group keeps the ``(rows, r)`` intermediate
    tiny and gathers a non-contiguous group's rows of ``x`` only once for all
    slices (q/k/v or gate/up).
    """
    for slot, rows in segments.groups:
        xg = x[rows]
        for sl in slices:
            bank = sl.bank
            r = bank.ranks[slot]
            if r == 0:
                continue
            hg = _matmul(xg, bank.a_of(slot).t())
            if scale != 1.0:
                hg = hg * scale
            out = _matmul(hg, bank.b_of(slot).t())
            _write(y, rows, slice(sl.out_offset, sl.out_offset + bank.d_out), out, add=True)


def _n(rows: Rows) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else int(rows.numel())
