"""Triton kernels for segmented multi-adapter LoRA at heterogeneous ranks.

Work is laid out per (segment, row block): a segment is the run of tokens
that share an adapter (see :mod:`kernels.segments`), so every program knows
its adapter's rank and exits as soon as a rank block lies past it.  An
adapter of rank 8 next to one of rank 1024 costs rank 8: no compute and no
weight bytes are spent on padding, which is the whole point for document
adapters whose rank grows with the document.

* shrink: ``h[t, :r_s] = scale * x[t] @ A_s^T`` (fp32 ``h``), grid
  (tiles, rank blocks, K splits); split-K keeps enough programs in flight for
  decode-sized batches, where a few rows would otherwise leave most SMs idle.
* expand: ``y[t, off:off+d_out] (+)= h[t, :r_s] @ B_s^T``, grid
  (tiles, output blocks).

Both take the adapter pool as a :class:`kernels.layout.LoRABank`, so the
same kernels run on vLLM's stacked per-slot buffers and on flat,
rank-concatenated storage.  ``padded=True`` makes every adapter count at the
pool's maximum rank: the cost model of a padded pool, kept for benchmarks.

The launchers take the grouping either as :class:`kernels.segments.Segments`
(exact grid, sized on the host per step) or as
:class:`kernels.segments.PlannedRows` (fixed-size device buffers and an
upper-bound grid, which a CUDA graph can record once and replay).

Set ``TRITON_INTERPRET=1`` before importing this module to run it on CPU
(fp32 and fp16; the interpreter's bf16 ``tl.dot`` is not reliable).
"""

from __future__ import annotations

from typing import Sequence

import torch
import triton
import triton.language as tl

from .layout import LoRABank, LoRASlice
from .segments import PlannedRows, Segments

__all__ = ["triton_shrink", "triton_expand", "triton_lora_linear"]


@triton.jit
def _shrink_kernel(
    x_ptr, a_ptr, h_ptr,
    order_ptr, seg_slot_ptr, seg_start_ptr, seg_len_ptr,
    tile_seg_ptr, tile_row_ptr,
    rank_ptr, a_off_ptr,
    d_in, k_per_split, fixed_rank,
    stride_xm, stride_xk, stride_ar, stride_ak, stride_hm, stride_hr,
    scale,
    BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr,
    ATOMIC: tl.constexpr, PADDED: tl.constexpr,
):
    tile = tl.program_id(0)
    r_blk = tl.program_id(1)
    k_split = tl.program_id(2)

    seg = tl.load(tile_seg_ptr + tile)
    row0 = tl.load(tile_row_ptr + tile)
    slot = tl.load(seg_slot_ptr + seg)
    seg_start = tl.load(seg_start_ptr + seg)
    seg_len = tl.load(seg_len_ptr + seg)
    if row0 >= seg_len:  # a surplus block of a fixed-size grid (see SlotPlan)
        return
    if PADDED:
        rank = fixed_rank
    else:
        rank = tl.load(rank_ptr + slot)
    if r_blk * BLOCK_R >= rank:
        return

    offs_m = row0 + tl.arange(0, BLOCK_M)
    m_mask = offs_m < seg_len
    tok = tl.load(order_ptr + seg_start + offs_m, mask=m_mask, other=0)
    offs_r = r_blk * BLOCK_R + tl.arange(0, BLOCK_R)
    r_mask = offs_r < rank
    a_base = a_ptr + tl.load(a_off_ptr + slot)

    k_lo = k_split * k_per_split
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for k0 in range(k_lo, k_lo + k_per_split, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_mask = offs_k < d_in
        x_tile = tl.load(
            x_ptr + tok[:, None] * stride_xm + offs_k[None, :] * stride_xk,
            mask=m_mask[:, None] & k_mask[None, :],
            other=0.0,
        )
        a_tile = tl.load(
            a_base + offs_r[None, :] * stride_ar + offs_k[:, None] * stride_ak,
            mask=r_mask[None, :] & k_mask[:, None],
            other=0.0,
        )
        acc += tl.dot(x_tile, a_tile)
    acc = acc * scale

    h_ptrs = h_ptr + tok[:, None] * stride_hm + offs_r[None, :] * stride_hr
    mask = m_mask[:, None] & r_mask[None, :]
    if ATOMIC:
        tl.atomic_add(h_ptrs, acc, mask=mask)
    else:
        tl.store(h_ptrs, acc, mask=mask)


@triton.jit
def _expand_kernel(
    h_ptr, b_ptr, y_ptr,
    order_ptr, seg_slot_ptr, seg_start_ptr, seg_len_ptr,
    tile_seg_ptr, tile_row_ptr,
    rank_ptr, b_off_ptr,
    d_out, out_offset, fixed_rank,
    stride_hm, stride_hr, stride_bo, stride_br, stride_ym, stride_yn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ADD: tl.constexpr, PADDED: tl.constexpr,
):
    tile = tl.program_id(0)
    n_blk = tl.program_id(1)

    seg = tl.load(tile_seg_ptr + tile)
    row0 = tl.load(tile_row_ptr + tile)
    slot = tl.load(seg_slot_ptr + seg)
    seg_start = tl.load(seg_start_ptr + seg)
    seg_len = tl.load(seg_len_ptr + seg)
    if row0 >= seg_len:
        return
    if PADDED:
        rank = fixed_rank
    else:
        rank = tl.load(rank_ptr + slot)

    offs_m = row0 + tl.arange(0, BLOCK_M)
    m_mask = offs_m < seg_len
    tok = tl.load(order_ptr + seg_start + offs_m, mask=m_mask, other=0)
    offs_n = n_blk * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = offs_n < d_out
    b_base = b_ptr + tl.load(b_off_ptr + slot)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, rank, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_mask = offs_k < rank
        h_tile = tl.load(
            h_ptr + tok[:, None] * stride_hm + offs_k[None, :] * stride_hr,
            mask=m_mask[:, None] & k_mask[None, :],
            other=0.0,
        )
        b_tile = tl.load(
            b_base + offs_k[:, None] * stride_br + offs_n[None, :] * stride_bo,
            mask=k_mask[:, None] & n_mask[None, :],
            other=0.0,
        )
        # Tensor cores want both operands in the weights' precision; the
        # accumulator stays fp32.
        acc += tl.dot(h_tile.to(b_tile.dtype), b_tile)

    y_ptrs = y_ptr + tok[:, None] * stride_ym + (out_offset + offs_n)[None, :] * stride_yn
    mask = m_mask[:, None] & n_mask[None, :]
    if ADD:
        acc += tl.load(y_ptrs, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------ launchers
def _block_m(segments: Segments | PlannedRows) -> int:
    """Small row blocks for decode (one or a few rows per adapter), larger
    ones when segments are long so each weight tile is reused across rows; a
    fixed-shape plan fixed its block size when it was allocated."""
    if isinstance(segments, PlannedRows):
        return segments.block_m
    return 16 if segments.max_segment_len <= 16 else 64


def _pow2_at_least(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, triton.next_power_of_2(max(n, 1))))


def _default_split_k(n_programs: int, d_in: int, block_k: int, device: torch.device) -> int:
    """Split the reduction until there are about two programs per SM."""
    if device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    max_split = max(1, triton.cdiv(d_in, block_k))
    split = 1
    while split < max_split and n_programs * split < 2 * sms:
        split *= 2
    return min(split, max_split)


def triton_shrink(
    h: torch.Tensor,
    x: torch.Tensor,
    bank: LoRABank,
    segments: Segments | PlannedRows,
    scale: float = 1.0,
    *,
    padded: bool = False,
    split_k: int | None = None,
    block_k: int = 64,
) -> None:
    """``h[t, :r_s] = scale * x[t] @ A_s^T`` for adapter rows (fp32 ``h``).

    With ``split_k > 1`` partial sums are added atomically, so ``h`` must be
    zero on the adapter rows beforehand (the launcher does not clear it).
    """
    if h.dtype != torch.float32:
        raise TypeError("the shrink output must be fp32 (it is the accumulator)")
    if x.dtype != bank.a.dtype:
        raise TypeError(f"x is {x.dtype} but A is {bank.a.dtype}")
    max_rank = bank.max_rank
    if segments.num_segments == 0 or max_rank == 0:
        return
    if h.shape[1] < max_rank:
        raise ValueError(f"h has {h.shape[1]} columns, pool rank is {max_rank}")
    bm = _block_m(segments)
    sched = segments.schedule(bm)
    block_r = _pow2_at_least(max_rank, 16, 64)
    r_blocks = triton.cdiv(max_rank, block_r)
    if split_k is None:
        split_k = _default_split_k(sched.num_tiles * r_blocks, bank.d_in, block_k, x.device)
    k_per_split = triton.cdiv(triton.cdiv(bank.d_in, split_k), block_k) * block_k
    ranks, a_offs, _ = bank.device_meta()
    grid = (sched.num_tiles, r_blocks, split_k)
    _shrink_kernel[grid](
        x, bank.a, h,
        segments.order, segments.seg_slot, segments.seg_start, segments.seg_len,
        sched.tile_segment, sched.tile_row,
        ranks, a_offs,
        bank.d_in, k_per_split, max_rank,
        x.stride(0), x.stride(1), bank.a_strides[0], bank.a_strides[1],
        h.stride(0), h.stride(1),
        scale,
        BLOCK_M=bm, BLOCK_R=block_r, BLOCK_K=block_k,
        ATOMIC=split_k > 1, PADDED=padded,
    )


def triton_expand(
    y: torch.Tensor,
    h: torch.Tensor,
    bank: LoRABank,
    segments: Segments | PlannedRows,
    out_offset: int = 0,
    add: bool = True,
    *,
    padded: bool = False,
    block_n: int = 64,
    block_k: int = 32,
) -> None:
    """``y[t, off:off+d_out] (+)= h[t, :r_s] @ B_s^T`` for adapter rows."""
    if segments.num_segments == 0 or bank.max_rank == 0:
        return
    if out_offset + bank.d_out > y.shape[1]:
        raise ValueError("slice runs past the output's columns")
    bm = _block_m(segments)
    sched = segments.schedule(bm)
    ranks, _, b_offs = bank.device_meta()
    grid = (sched.num_tiles, triton.cdiv(bank.d_out, block_n))
    _expand_kernel[grid](
        h, bank.b, y,
        segments.order, segments.seg_slot, segments.seg_start, segments.seg_len,
        sched.tile_segment, sched.tile_row,
        ranks, b_offs,
        bank.d_out, out_offset, bank.max_rank,
        h.stride(0), h.stride(1), bank.b_strides[0], bank.b_strides[1],
        y.stride(0), y.stride(1),
        BLOCK_M=bm, BLOCK_N=block_n, BLOCK_K=block_k,
        ADD=add, PADDED=padded,
    )


def triton_lora_linear(
    y: torch.Tensor,
    x: torch.Tensor,
    slices: Sequence[LoRASlice],
    segments: Segments | PlannedRows,
    scale: float = 1.0,
    *,
    padded: bool = False,
    split_k: int | None = None,
) -> None:
    """Add every slice's LoRA into ``y`` in place (adapter rows only)."""
    for sl in slices:
        width = max(sl.bank.max_rank, 1)
        h = torch.zeros(x.shape[0], width, dtype=torch.float32, device=x.device)
        triton_shrink(h, x, sl.bank, segments, scale, padded=padded, split_k=split_k)
        triton_expand(y, h, sl.bank, segments, sl.out_offset, padded=padded)
