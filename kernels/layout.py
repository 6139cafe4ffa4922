"""Where each adapter's A and B live in memory, whatever the storage layout.

Document adapters come in very different ranks (rank 8 per chunk, concatenated),
so a layout that forces one rank on every adapter either wastes memory or caps
the rank.  The kernels therefore never assume a shape for the adapter pool:
they only need, per adapter, the element offset of its A and B inside one
buffer, its rank, and the strides to walk rows and columns.  Two layouts map
onto that description without copies:

* *stacked*: vLLM's per-slot buffers, A ``(S, R_max, d_in)`` and
  B ``(S, d_out, R_max)`` (an extra singleton dimension after S is accepted),
  with a true rank per slot ``<= R_max``;
* *flat*: rank-concatenated adapters, A ``(sum r, d_in)`` and
  B ``(d_out, sum r)``, adapter ``s`` owning rows/columns
  ``[offset_s, offset_s + r_s)``.  No padding at all, any rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

__all__ = ["LoRABank", "LoRASlice"]


def _drop_singleton(t: torch.Tensor) -> torch.Tensor:
    """vLLM stores (S, 1, rows, cols); the middle 1 carries no information."""
    if t.dim() == 4:
        if t.shape[1] != 1:
            raise ValueError(f"expected (S, 1, rows, cols), got {tuple(t.shape)}")
        return t[:, 0]
    if t.dim() != 3:
        raise ValueError(f"expected a 3-d or 4-d stacked buffer, got {tuple(t.shape)}")
    return t


@dataclass(frozen=True, eq=False)
class LoRABank:
    """The A and B matrices of a pool of adapters for one projection.

    Adapter ``s`` has ``A_s`` of shape ``(ranks[s], d_in)`` whose element
    ``(r, k)`` is ``a.flatten()[a_offsets[s] + r*a_strides[0] + k*a_strides[1]]``
    (offsets counted from ``a``'s first element), and ``B_s`` of shape
    ``(d_out, ranks[s])`` addressed the same way through ``b``.

    Ranks and offsets are kept as Python tuples so the CPU path never has to
    read a device tensor back; kernels get device copies from
    :meth:`device_meta`, built once per bank.
    """

    a: torch.Tensor
    b: torch.Tensor
    ranks: tuple[int, ...]
    a_offsets: tuple[int, ...]
    b_offsets: tuple[int, ...]
    a_strides: tuple[int, int]
    b_strides: tuple[int, int]
    d_in: int
    d_out: int
    _meta: dict = field(default_factory=dict, repr=False, compare=False)

    # ----------------------------------------------------------- constructors
    @classmethod
    def stacked(
        cls, a: torch.Tensor, b: torch.Tensor, ranks: Sequence[int] | None = None
    ) -> "LoRABank":
        """Wrap per-slot buffers (vLLM's layout) without copying.

        ``ranks`` defaults to the buffer's padded rank, which is always
        correct (padding is zero) but computes on the padding.
        """
        a3, b3 = _drop_singleton(a), _drop_singleton(b)
        n_slots, r_max, d_in = a3.shape
        if b3.shape[0] != n_slots or b3.shape[2] != r_max:
            raise ValueError(f"A {tuple(a3.shape)} and B {tuple(b3.shape)} disagree")
        rk = tuple(int(r) for r in ranks) if ranks is not None else (r_max,) * n_slots
        if len(rk) != n_slots or any(r < 0 or r > r_max for r in rk):
            raise ValueError(f"ranks {rk} do not fit {n_slots} slots of rank {r_max}")
        return cls(
            a=a3,
            b=b3,
            ranks=rk,
            a_offsets=tuple(s * a3.stride(0) for s in range(n_slots)),
            b_offsets=tuple(s * b3.stride(0) for s in range(n_slots)),
            a_strides=(a3.stride(1), a3.stride(2)),
            b_strides=(b3.stride(1), b3.stride(2)),
            d_in=d_in,
            d_out=b3.shape[1],
        )

    @classmethod
    def flat(cls, a: torch.Tensor, b: torch.Tensor, ranks: Sequence[int]) -> "LoRABank":
        """Wrap rank-concatenated adapters: A ``(sum r, d_in)``, B ``(d_out, sum r)``."""
        rk = tuple(int(r) for r in ranks)
        total = sum(rk)
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != total or b.shape[1] != total:
            raise ValueError(
                f"flat layout needs A (sum r={total}, d_in) and B (d_out, {total}); "
                f"got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        starts, acc = [], 0
        for r in rk:
            starts.append(acc)
            acc += r
        return cls(
            a=a,
            b=b,
            ranks=rk,
            a_offsets=tuple(s * a.stride(0) for s in starts),
            b_offsets=tuple(s * b.stride(1) for s in starts),
            a_strides=(a.stride(0), a.stride(1)),
            b_strides=(b.stride(0), b.stride(1)),
            d_in=a.shape[1],
            d_out=b.shape[0],
        )

    # ------------------------------------------------------------- accessors
    @property
    def num_adapters(self) -> int:
        return len(self.ranks)

    @property
    def max_rank(self) -> int:
        return max(self.ranks, default=0)

    def a_of(self, slot: int, rank: int | None = None) -> torch.Tensor:
        """A view of adapter ``slot``'s A, ``(rank, d_in)``; no copy."""
        r = self.ranks[slot] if rank is None else rank
        return self.a.as_strided(
            (r, self.d_in), self.a_strides, self.a.storage_offset() + self.a_offsets[slot]
        )

    def b_of(self, slot: int, rank: int | None = None) -> torch.Tensor:
        """A view of adapter ``slot``'s B, ``(d_out, rank)``; no copy."""
        r = self.ranks[slot] if rank is None else rank
        return self.b.as_strided(
            (self.d_out, r), self.b_strides, self.b.storage_offset() + self.b_offsets[slot]
        )

    def set_device_ranks(self, ranks: Sequence[int]) -> None:
        """Rewrite the ranks the kernels read, in place (at most the host ``ranks``).

        For launches recorded once and replayed (a CUDA graph): a bank over
        stacked buffers keeps the buffers' full rank on the host, which sizes
        the grid for any adapter, while the device copy holds the slots'
        current true ranks, where each program stops."""
        if len(ranks) != self.num_adapters or any(r < 0 or r > h for r, h in zip(ranks, self.ranks)):
            raise ValueError(f"ranks {tuple(ranks)} do not fit {self.ranks}")
        self.device_meta()[0].copy_(torch.tensor(list(ranks), dtype=torch.int64))

    def device_meta(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ranks, a_offsets, b_offsets)`` as int64 tensors on the weights' device."""
        key = str(self.a.device)
        if key not in self._meta:
            dev = self.a.device
            self._meta[key] = tuple(
                torch.tensor(v, dtype=torch.int64, device=dev)
                for v in (self.ranks, self.a_offsets, self.b_offsets)
            )
        return self._meta[key]


@dataclass(frozen=True)
class LoRASlice:
    """One output slice of a layer (q, k or v; gate or up): its adapters and
    the columns of the layer's output it adds into."""

    bank: LoRABank
    out_offset: int = 0

    @property
    def out_width(self) -> int:
        return self.bank.d_out
