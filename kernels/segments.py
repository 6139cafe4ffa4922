"""Grouping a batch's tokens by adapter, once per step.

Both the CPU path and the Triton kernels work on groups ("segments") of
tokens that share an adapter, so the grouping is computed once per forward
step and reused by every layer.  Tokens whose slot is negative have no
adapter; they belong to no segment and are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

__all__ = ["Segments", "group_tokens", "TileSchedule", "SlotPlan", "PlannedRows"]

Rows = slice | torch.Tensor


@dataclass(frozen=True, eq=False)
class TileSchedule:
    """One entry per (segment, block of ``block_m`` rows): the work list of a
    kernel launch, so the grid has exactly as many programs as there are
    non-empty row blocks, however ragged the segments are."""

    block_m: int
    tile_segment: torch.Tensor  # (n_tiles,) int64, index into the segment arrays
    tile_row: torch.Tensor  # (n_tiles,) int64, first row of the tile inside its segment
    num_tiles: int


@dataclass(frozen=True, eq=False)
class Segments:
    """Tokens of one batch grouped by adapter slot.

    ``groups`` is the host-side form the CPU path iterates over: one
    ``(slot, rows)`` per adapter present, where ``rows`` is a ``slice`` when the
    adapter's tokens are contiguous (the common case: a request's prompt, or
    consecutive decode rows of one adapter), so the matmul reads a view
    instead of gathering rows; otherwise a sorted index tensor.

    ``order``/``seg_*`` are the device-side form for kernels: ``order`` lists
    token rows sorted by slot (stable), and segment ``i`` covers
    ``order[seg_start[i] : seg_start[i] + seg_len[i]]`` for slot ``seg_slot[i]``.
    """

    num_tokens: int
    groups: tuple[tuple[int, Rows], ...]
    order: torch.Tensor
    seg_slot: torch.Tensor
    seg_start: torch.Tensor
    seg_len: torch.Tensor
    _schedules: dict = field(default_factory=dict, repr=False)

    @property
    def num_segments(self) -> int:
        return len(self.groups)

    @property
    def max_segment_len(self) -> int:
        return max((_rows_len(r) for _, r in self.groups), default=0)

    @cached_property
    def row_slots(self) -> torch.Tensor:
        """``(num_tokens,)`` slot of every row, -1 for rows without an adapter."""
        slots = torch.full((self.num_tokens,), -1, dtype=torch.int64, device=self.order.device)
        for slot, rows in self.groups:
            slots[rows] = slot
        return slots

    def schedule(self, block_m: int) -> TileSchedule:
        """Row-block work list for kernels, cached per block size."""
        if block_m not in self._schedules:
            self._schedules[block_m] = _build_schedule(self, block_m)
        return self._schedules[block_m]


def _rows_len(rows: Rows) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else int(rows.numel())


def group_tokens(token_slots: torch.Tensor) -> Segments:
    """Group token rows by their adapter slot; negative slots mean "no adapter".

    One host read of the (small) index tensor per step; everything a layer
    needs afterwards is either a Python slice or an index tensor.
    """
    slots = token_slots.reshape(-1).to(torch.int64)
    device = slots.device
    n = slots.numel()
    rows_with_adapter = torch.nonzero(slots >= 0).flatten()
    sorted_slots, perm = torch.sort(slots[rows_with_adapter], stable=True)
    order = rows_with_adapter[perm]
    seg_slot, seg_len = torch.unique_consecutive(sorted_slots, return_counts=True)
    seg_start = torch.cumsum(seg_len, 0) - seg_len

    groups: list[tuple[int, Rows]] = []
    if seg_slot.numel():
        order_cpu = order.cpu()
        for slot, start, length in zip(
            seg_slot.tolist(), seg_start.tolist(), seg_len.tolist()
        ):
            rows = order_cpu[start : start + length]
            first, last = int(rows[0]), int(rows[-1])
            if last - first + 1 == length:  # sorted and unique, so contiguous
                groups.append((slot, slice(first, last + 1)))
            else:
                groups.append((slot, rows.to(device)))
    return Segments(
        num_tokens=n,
        groups=tuple(groups),
        order=order,
        seg_slot=seg_slot,
        seg_start=seg_start,
        seg_len=seg_len,
    )


def _build_schedule(seg: Segments, block_m: int) -> TileSchedule:
    device = seg.order.device
    tiles_per_seg = (seg.seg_len + block_m - 1) // block_m
    num_tiles = int(tiles_per_seg.sum()) if tiles_per_seg.numel() else 0
    if num_tiles == 0:
        empty = torch.empty(0, dtype=torch.int64, device=device)
        return TileSchedule(block_m, empty, empty, 0)
    tile_segment = torch.repeat_interleave(
        torch.arange(seg.num_segments, device=device), tiles_per_seg
    )
    first_tile = torch.cumsum(tiles_per_seg, 0) - tiles_per_seg
    tile_row = (torch.arange(num_tiles, device=device) - first_tile[tile_segment]) * block_m
    return TileSchedule(block_m, tile_segment, tile_row, num_tiles)


# ------------------------------------------------------- fixed-shape form
@dataclass(frozen=True, eq=False)
class SlotPlan:
    """The kernels' grouping in fixed-size device buffers, refreshed in place
    with device operations only.

    Why: a CUDA graph replays the kernel launches it recorded, with the same
    pointers and grid.  :func:`group_tokens` sizes its tensors and the grid by
    reading the batch on the host, so a graph would replay the capture step's
    grouping.  Here every shape depends only on the capacity and the number of
    slots: the grid is an upper bound on the row blocks, surplus blocks land
    on an empty segment and exit at once, and :meth:`update` (run before each
    step, outside the graph) rewrites the same buffers the graph reads.

    Segment ``i < num_slots`` holds slot ``i``'s rows (possibly none); segment
    ``num_slots`` collects the rows without an adapter and is always empty.
    """

    capacity: int
    num_slots: int
    block_m: int
    order: torch.Tensor  # (capacity,) rows sorted by slot
    seg_slot: torch.Tensor  # (num_slots + 1,)
    seg_start: torch.Tensor  # (num_slots + 1,)
    seg_len: torch.Tensor  # (num_slots + 1,)
    tile_segment: torch.Tensor  # (max_tiles,)
    tile_row: torch.Tensor  # (max_tiles,)
    _tile_ids: torch.Tensor = field(repr=False)

    @classmethod
    def allocate(cls, capacity: int, num_slots: int, block_m: int, device: torch.device | str) -> "SlotPlan":
        # row blocks: at most one partial block per slot beyond the full ones
        max_tiles = (capacity + block_m - 1) // block_m + num_slots
        long = dict(dtype=torch.int64, device=device)
        return cls(
            capacity=capacity, num_slots=num_slots, block_m=block_m,
            order=torch.zeros(capacity, **long),
            seg_slot=torch.arange(num_slots + 1, **long).clamp_(max=max(num_slots - 1, 0)),
            seg_start=torch.zeros(num_slots + 1, **long),
            seg_len=torch.zeros(num_slots + 1, **long),
            tile_segment=torch.full((max_tiles,), num_slots, **long),
            tile_row=torch.zeros(max_tiles, **long),
            _tile_ids=torch.arange(max_tiles, **long),
        )

    def update(self, token_slots: torch.Tensor) -> None:
        """Group ``token_slots`` (negative: no adapter) into the buffers, in place.

        No host reads: only the length of ``token_slots`` is used on the host.
        """
        slots = token_slots.reshape(-1).to(torch.int64)
        n = slots.numel()
        if n > self.capacity:
            raise ValueError(f"{n} tokens exceed the plan's capacity of {self.capacity}")
        none = self.num_slots
        key = torch.where(slots < 0, none, slots).clamp_(max=none)
        _, perm = torch.sort(key, stable=True)
        self.order[:n].copy_(perm)
        counts = torch.zeros(none + 1, dtype=torch.int64, device=slots.device)
        counts.scatter_add_(0, key, torch.ones_like(key))
        self.seg_start.copy_(torch.cumsum(counts, 0) - counts)
        counts[none] = 0  # rows without an adapter are never touched
        self.seg_len.copy_(counts)
        tiles = (counts + self.block_m - 1) // self.block_m
        last = torch.cumsum(tiles, 0)
        seg = torch.searchsorted(last, self._tile_ids, right=True).clamp_(max=none)
        self.tile_segment.copy_(seg)
        self.tile_row.copy_((self._tile_ids - (last - tiles)[seg]) * self.block_m)

    def for_rows(self, rows: int) -> "PlannedRows":
        """The plan as launch input for a tensor of ``rows`` rows (its grid bound)."""
        if rows > self.capacity:
            raise ValueError(f"{rows} rows exceed the plan's capacity of {self.capacity}")
        tiles = min(self.tile_segment.numel(), (rows + self.block_m - 1) // self.block_m + self.num_slots)
        return PlannedRows(self, TileSchedule(self.block_m, self.tile_segment[:tiles], self.tile_row[:tiles], tiles))


@dataclass(frozen=True, eq=False)
class PlannedRows:
    """What the Triton launchers read from :class:`Segments`, backed by a
    :class:`SlotPlan`: fixed block size, fixed grid, no host reads."""

    plan: SlotPlan
    tiles: TileSchedule

    order = property(lambda self: self.plan.order)
    seg_slot = property(lambda self: self.plan.seg_slot)
    seg_start = property(lambda self: self.plan.seg_start)
    seg_len = property(lambda self: self.plan.seg_len)

    @property
    def num_segments(self) -> int:
        return self.plan.num_slots + 1

    @property
    def block_m(self) -> int:
        return self.plan.block_m

    def schedule(self, block_m: int) -> TileSchedule:
        if block_m != self.plan.block_m:
            raise ValueError(f"this plan was built for row blocks of {self.plan.block_m}, not {block_m}")
        return self.tiles
