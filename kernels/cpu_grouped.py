"""Multi-adapter LoRA on CPU: one matmul per adapter group.

vLLM's CPU ops gather a full weight matrix per token (``W[indices]``) and run
an einsum over the copies, so their cost grows with tokens times the padded
rank, and an index of -1 silently picks the last slot.  Here the batch is
grouped by adapter once per step (:func:`kernels.segments.group_tokens`) and
each group does ``x_g @ A_s^T`` then ``h_g @ B_s^T`` on views of the weights,
at the adapter's own rank; rows without an adapter are never read or written.
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import torch

from .layout import LoRABank, LoRASlice
from .segments import Rows, Segments

__all__ = ["PackedSlices", "DenseWeights", "grouped_shrink", "grouped_expand", "grouped_lora_linear"]

# Batches of several adapters whose rows × total live rank stay below this take the dense masked form
# (see `_dense_lora_linear`): at decode sizes its few large calls beat a gather, a matmul pair per
# adapter group and a scatter, and the FLOPs it wastes on other adapters' columns are negligible.
DENSE_MAX_WORK = 16384

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


class PackedSlices:
    """A layer's slices packed so each adapter group costs one matmul pair.

    q/k/v (or gate/up) share the input and write adjacent output columns, so
    per slot the slices' A matrices stack into one ``(sum r, d_in)`` and the
    B matrices into one block-diagonal ``(width, sum r)``: the shrink reads
    the group's rows once and the expand writes all slices' columns at once.
    The block-diagonal zeros cost ``n_slices`` times the expand FLOPs, which
    is noise at the ranks where per-call overhead dominates; above
    ``max_packed_rank`` slices are handled one by one.  Packed copies are
    built lazily per slot and dtype; keep the object while the weights stay
    put (the vLLM wrapper caches it per layer and slot layout).
    """

    def __init__(self, slices: Sequence[LoRASlice], max_packed_rank: int = 64):
        self.slices = tuple(slices)
        self.col0 = min((sl.out_offset for sl in self.slices), default=0)
        # columns from the first slice's start to the last one's end (gaps included)
        self.width = max((sl.out_offset + sl.out_width for sl in self.slices), default=0) - self.col0
        ordered = sorted(self.slices, key=lambda sl: sl.out_offset)
        adjacent = all(
            p.out_offset + p.out_width == q.out_offset for p, q in zip(ordered, ordered[1:])
        )
        self.slices = tuple(ordered)
        self.packable = adjacent
        self.max_packed_rank = max_packed_rank
        self._cache: dict[tuple, tuple | None] = {}

    def weights(
        self, slot: int, dtype: torch.dtype | None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(A^T (d_in, R), B^T (R, width))`` for ``slot``, or None when the
        slot has no rank or cannot be packed."""
        key = (slot, dtype)
        if key not in self._cache:
            self._cache[key] = self._pack(slot, dtype)
        return self._cache[key]

    @cached_property
    def live_slots(self) -> frozenset[int]:
        """Slots with rank in any slice: adapters usually target a few modules, so in the other
        layers every slot has rank 0 and there is nothing to compute."""
        if not self.slices:
            return frozenset()
        return frozenset(s for s in range(len(self.slices[0].bank.ranks)) if any(
            sl.bank.ranks[s] for sl in self.slices))

    def dense(self, slots: tuple[int, ...]) -> DenseWeights | None:
        """The slots with rank among ``slots`` side by side, in fp32 (:class:`DenseWeights`); None
        when one of them cannot be packed. Cached per slot set."""
        key = ("dense", slots)
        if key not in self._cache:
            slots = tuple(s for s in slots if s in self.live_slots)
            parts = [self.weights(s, torch.float32) for s in slots]
            self._cache[key] = None if not parts or any(p is None for p in parts) else DenseWeights.of(slots, parts)
        return self._cache[key]

    def _pack(self, slot: int, dtype: torch.dtype | None):
        ranks = [sl.bank.ranks[slot] for sl in self.slices]
        total = sum(ranks)
        if total == 0 or not self.packable:
            return None
        if len(self.slices) == 1:  # views, no copy
            bank = self.slices[0].bank
            at, bt = bank.a_of(slot).t(), bank.b_of(slot).t()
        else:
            if total > self.max_packed_rank:
                return None
            first = self.slices[0].bank
            at = torch.cat([sl.bank.a_of(slot) for sl in self.slices], 0).t()
            bt = first.b.new_zeros(total, self.width)
            r0 = c0 = 0
            for sl, r in zip(self.slices, ranks):
                bt[r0 : r0 + r, c0 : c0 + sl.out_width] = sl.bank.b_of(slot).t()
                r0, c0 = r0 + r, c0 + sl.out_width
        if dtype is not None and dtype != at.dtype:
            at, bt = at.to(dtype).contiguous(), bt.to(dtype).contiguous()
        return at, bt


class DenseWeights:
    """Several slots' packed weights side by side: ``at`` (d_in, R_u), ``bt`` (R, width), the slot
    of each of the R columns, and ``cols`` (R,) mapping them onto ``at``'s columns, or None.

    Adapters written by one fixed-rank generator share their A (the generator's query map is the
    same for every document; only B carries the document), so identical A blocks are stored once:
    the shrink, most of the FLOPs at d_in > width, then runs once for all of them and its columns
    are repeated for each slot's B (``cols``).
    """

    def __init__(self, at: torch.Tensor, bt: torch.Tensor, col_slot: torch.Tensor, cols: torch.Tensor | None):
        self.at, self.bt, self.col_slot, self.cols = at, bt, col_slot, cols

    @classmethod
    def of(cls, slots: tuple[int, ...], parts: list[tuple[torch.Tensor, torch.Tensor]]) -> "DenseWeights":
        unique: list[torch.Tensor] = []
        offsets: list[int] = []  # first column of each unique block
        starts: list[int] = []  # each slot's first column among the unique blocks
        for at, _ in parts:
            same = next((i for i, u in enumerate(unique) if u.shape == at.shape and torch.equal(u, at)), None)
            if same is None:
                offsets.append(offsets[-1] + unique[-1].shape[1] if unique else 0)
                unique.append(at)
                same = len(unique) - 1
            starts.append(offsets[same])
        device = parts[0][0].device
        col_slot = torch.cat([torch.full((at.shape[1],), s, dtype=torch.int64, device=device)
                              for s, (at, _) in zip(slots, parts)])
        shared = len(unique) < len(parts)
        cols = torch.cat([torch.arange(st, st + at.shape[1], device=device)
                          for st, (at, _) in zip(starts, parts)]) if shared else None
        return cls(torch.cat(unique, 1), torch.cat([bt for _, bt in parts], 0), col_slot, cols)


def _compute_dtype(rows: int, weights_dtype: torch.dtype) -> torch.dtype | None:
    if rows <= _SMALL_GROUP_ROWS and weights_dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return None


def grouped_lora_linear(
    y: torch.Tensor,
    x: torch.Tensor,
    slices: Sequence[LoRASlice] | PackedSlices,
    segments: Segments,
    scale: float = 1.0,
) -> None:
    """Add every slice's LoRA into ``y`` in place, one matmul pair per group.

    Small batches of several adapters (decode) run as one dense masked matmul
    pair over all of them (:func:`_dense_lora_linear`).  Otherwise, when all
    groups are contiguous row ranges (prefill) the matmuls read and
    write views of ``x`` and ``y``.  Otherwise (interleaved decode rows) the
    adapter rows are gathered once in slot order, every group works on a
    contiguous block, and one ``index_add_`` scatters the result back: two
    gathers per call instead of two per group and slice.
    """
    packed = slices if isinstance(slices, PackedSlices) else PackedSlices(slices)
    if not segments.groups or not packed.slices:
        return
    wdtype = packed.slices[0].bank.a.dtype
    cols = slice(packed.col0, packed.col0 + packed.width)
    if len(segments.groups) > 1 and _dense_lora_linear(y, x, packed, segments, cols, scale):
        return
    contiguous = all(isinstance(rows, slice) for _, rows in segments.groups)
    if contiguous:
        for slot, rows in segments.groups:
            _group_linear(y, x, packed, slot, rows, rows.stop - rows.start, cols, scale, wdtype)
        return
    order = segments.order
    xs = x[order]
    out = torch.empty(order.numel(), packed.width, dtype=torch.float32, device=y.device)
    start = 0
    for slot, rows in segments.groups:
        n = _n(rows)
        span = slice(start, start + n)
        _group_linear(out, xs, packed, slot, span, n, slice(0, packed.width), scale, wdtype,
                      x_rows=span, overwrite=True)
        start += n
    y[:, cols].index_add_(0, order, out.to(y.dtype))


def _dense_lora_linear(
    y: torch.Tensor, x: torch.Tensor, packed: PackedSlices, segments: Segments, cols: slice, scale: float,
) -> bool:
    """All adapters of the batch in one matmul pair: ``h = x @ [A_1; ...; A_S]^T``, each row's
    ``h`` masked to its own adapter's columns, then ``y += h @ [B_1 ... B_S]^T``.

    Rows without an adapter get exactly zero added. Returns False (nothing done) when the batch is
    too large for this to pay, or a slot's slices cannot be packed.
    """
    slots = tuple(sorted({slot for slot, _ in segments.groups}))
    dense = packed.dense(slots)
    n = segments.num_tokens
    if dense is None or n * dense.bt.shape[0] > DENSE_MAX_WORK:
        return False
    h = x[:n].float() @ dense.at  # [n, R_u]
    if dense.cols is not None:  # shared A blocks: one shrink, its columns repeated per slot
        h = h[:, dense.cols]  # [n, R]
    h = h * (segments.row_slots[:, None] == dense.col_slot[None, :])
    if scale != 1.0:
        h = h * scale
    y[:n, cols].add_((h @ dense.bt).to(y.dtype))
    return True


def _group_linear(
    y: torch.Tensor,
    x: torch.Tensor,
    packed: PackedSlices,
    slot: int,
    rows: slice,
    n: int,
    cols: slice,
    scale: float,
    wdtype: torch.dtype,
    x_rows: slice | None = None,
    overwrite: bool = False,
) -> None:
    """``y[rows, cols] += scale * x[rows] @ A^T @ B^T`` for one group (all
    slices); with ``overwrite`` the block is written instead (a scratch
    buffer that needs no clearing)."""
    xg = x[rows if x_rows is None else x_rows]
    cdtype = _compute_dtype(n, wdtype)
    w = packed.weights(slot, cdtype)
    if w is not None:
        at, bt = w
        h = xg.to(at.dtype) @ at
        if scale != 1.0:
            h = h * scale
        prod = h.to(bt.dtype) @ bt
        if overwrite:
            y[rows, cols].copy_(prod)
        else:
            y[rows, cols].add_(prod.to(y.dtype))
        return
    if overwrite:
        y[rows, cols].zero_()
    base = cols.start
    for sl in packed.slices:  # large ranks or scattered slices: one by one
        r = sl.bank.ranks[slot]
        if r == 0:
            continue
        h = _matmul(xg, sl.bank.a_of(slot).t())
        if scale != 1.0:
            h = h * scale
        c0 = base + sl.out_offset - packed.col0
        y[rows, c0 : c0 + sl.out_width].add_(_matmul(h, sl.bank.b_of(slot).t()).to(y.dtype))


def _n(rows: Rows) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else int(rows.numel())
