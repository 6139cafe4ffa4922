"""What the grouped CPU and GPU punica wrappers share.

Both wrappers keep vLLM's metadata handling, group the batch's tokens by slot
once per mapping change, find each slot's true rank, and run one adapter at a
time at that rank; rows without an adapter are never touched.  Only the
kernels differ (plain torch on CPU, Triton on GPU), so everything else lives
here once: :class:`GroupedPunicaMixin` implements the LoRA entry points on top
of three kernel hooks, and each platform's class mixes it into vLLM's own
wrapper for that platform.

True ranks: vLLM zero-pads every adapter to ``max_lora_rank`` inside its
stacked buffers.  A slot's true rank is found once, from the last non-zero
row of A (or column of B), and cached per buffer and slot for as long as the
same adapter id occupies the slot.  That relies on an adapter id naming fixed
weights, which vLLM's own adapter cache already assumes.  Trailing zero rows
contribute exactly zero, so slicing them away never changes the result.

Compilation: ``add_lora_linear`` and ``add_lora_embedding`` run as one opaque
custom op each (``vllm_d2l::grouped_lora``) while ``torch.compile`` traces, so
the traced graph calls the op and the op does the per-step grouping eagerly.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from typing import Any, Callable, ContextManager

import torch

from kernels.cpu_grouped import PackedSlices
from kernels.layout import LoRABank, LoRASlice
from kernels.segments import Segments, group_tokens

from .serving.compat import SUPPORTED_VLLM_RANGE, is_supported

__all__ = [
    "SUPPORTED_VLLM",
    "UnsupportedVLLMVersion",
    "check_vllm_version",
    "select_wrapper",
    "GroupedPunicaMixin",
    "side_by_side",
]

logger = logging.getLogger(__name__)

#: vLLM releases whose LoRA internals the grouped wrappers were written against (one range for
#: the whole package: `vllm_d2l.serving.compat`).
SUPPORTED_VLLM = SUPPORTED_VLLM_RANGE


class UnsupportedVLLMVersion(RuntimeError):
    """The installed vLLM is outside the range whose internals we patch."""


def check_vllm_version(path: str) -> None:
    """Raise :class:`UnsupportedVLLMVersion` unless vLLM is in ``SUPPORTED_VLLM``;
    ``path`` names the grouped path in the message ("CPU", "GPU")."""
    import vllm

    version = getattr(vllm, "__version__", "unknown")
    if not is_supported(version):
        raise UnsupportedVLLMVersion(
            f"vllm-d2l's {path} LoRA path supports vLLM {SUPPORTED_VLLM}"
            f" but vLLM {version} is installed; install a supported vLLM or run without"
            f" the grouped {path} path."
        )


def select_wrapper(platform_cls: type, qualname: str) -> bool:
    """Point ``platform_cls.get_punica_wrapper`` at ``qualname``.

    vLLM's selector resolves the name each time a LoRA manager is built, so
    replacing this one classmethod is the whole installation.  Returns False
    when it already pointed there (nothing changed)."""
    current = platform_cls.__dict__.get("get_punica_wrapper")
    if getattr(getattr(current, "__func__", None), "_vllm_d2l_wrapper", None) == qualname:
        return False

    def get_punica_wrapper(cls) -> str:
        return qualname

    get_punica_wrapper._vllm_d2l_wrapper = qualname
    platform_cls.get_punica_wrapper = classmethod(get_punica_wrapper)
    return True


def _nonzero_extent(t: torch.Tensor, dim: int) -> int:
    """1 + the last index along ``dim`` whose slice is not all zero (0 if none)."""
    other = 1 - dim
    used = torch.nonzero((t != 0).any(dim=other)).flatten()
    return int(used[-1]) + 1 if used.numel() else 0


def _has_work(packed: PackedSlices, groups: Segments) -> bool:
    """Whether any adapter in the batch has rank in this layer.

    Unless ``--lora-target-modules`` limits it, vLLM wraps every linear layer
    for LoRA while an adapter usually targets a few modules; in the others the
    grouped call would only gather rows and scatter zeros back.  The packed
    object (and its set of live slots) lives as long as the slot layout."""
    return any(slot in packed.live_slots for slot, _ in groups.groups)


def side_by_side(banks: list[LoRABank], widths: tuple[int, ...]) -> list[LoRASlice]:
    """A layer's slices (q, k, v; gate, up) writing adjacent columns of its output."""
    offsets = itertools.accumulate(widths[:-1], initial=0)
    return [LoRASlice(bank, offset) for bank, offset in zip(banks, offsets)]


def _stacked3(t: torch.Tensor) -> torch.Tensor:
    """(S, 1, rows, cols) -> (S, rows, cols)."""
    return t[:, 0] if t.dim() == 4 else t


class GroupedPunicaMixin:
    """The LoRA entry points on grouped tokens and true ranks, for any platform.

    Mixed in before vLLM's platform wrapper (``class W(GroupedPunicaMixin,
    PunicaWrapperCPU)``): metadata bookkeeping is inherited unchanged; the
    compute entry points LoRA layers call (``add_shrink``, ``add_expand``,
    ``add_lora_linear``, ``add_lora_embedding``, ``add_lora_logits``) are
    replaced.  A subclass supplies the kernels (``_shrink_into``,
    ``_expand_into``, ``_linear_into``) and may refuse the grouped path for a
    call (``_can_run_ours``), which then runs vLLM's own op.  If the grouped
    path ever raises, the error is logged once and the wrapper falls back to
    vLLM's ops for good: a wrong-looking output is recoverable, a worker
    exception kills the server.
    """

    #: how the log names vLLM's ops when the wrapper falls back to them
    STOCK_LABEL = "vLLM's ops"

    def __init__(
        self,
        max_num_batched_tokens: int,
        max_batches: int,
        device: torch.device | str,
        **kwargs: Any,
    ):
        super().__init__(max_num_batched_tokens, max_batches, device, **kwargs)
        self._token_groups: Segments = group_tokens(torch.empty(0, dtype=torch.long))
        self._sampler_groups: Segments = self._token_groups
        self._regrouped: dict[tuple[str, int], Segments] = {}
        self._slot_ids: tuple[int | None, ...] = ()
        # (buffer data_ptr, rank dim) -> per-slot (adapter id, true rank)
        self._rank_cache: dict[tuple[int, int], list[tuple[int | None, int]]] = {}
        # (A data_ptr, B data_ptr, B shape) -> (slot ids it was built for, bank)
        self._bank_cache: dict[tuple, tuple[tuple, Any]] = {}
        self._fallback = False
        self._op_id = next(_OP_IDS)
        _LIVE[self._op_id] = self

    # ----------------------------------------------------------- kernel hooks
    def _shrink_into(
        self, h: torch.Tensor, x: torch.Tensor, bank: LoRABank, groups: Segments, scale: float
    ) -> None:
        """``h[rows_s, :r_s] = scale * x[rows_s] @ A_s^T`` (fp32 ``h``)."""
        raise NotImplementedError

    def _expand_into(
        self, y: torch.Tensor, h: torch.Tensor, bank: LoRABank, groups: Segments, offset: int
    ) -> None:
        """``y[rows_s, offset:offset+d_out] += h[rows_s, :r_s] @ B_s^T``."""
        raise NotImplementedError

    def _linear_into(
        self, y: torch.Tensor, x: torch.Tensor, packed: PackedSlices, groups: Segments, scale: float
    ) -> None:
        """``y[rows_s] += scale * x[rows_s] @ A_s^T @ B_s^T`` for every slice."""
        raise NotImplementedError

    def _can_run_ours(self) -> bool:
        """Whether this call may take the grouped path (else vLLM's op runs)."""
        return True

    def _host_reads_allowed(self) -> ContextManager:
        """Context for the grouped path's deliberate host reads (grouping, ranks)."""
        return contextlib.nullcontext()

    def _stock(self, name: str) -> Callable[..., Any]:
        """vLLM's own implementation of entry point ``name``."""
        return getattr(super(GroupedPunicaMixin, self), name)

    # ----------------------------------------------------------- metadata
    def update_metadata(
        self,
        mapping: Any,
        lora_index_to_id: list[int | None],
        max_loras: int,
        vocab_size: int,
        **kwargs: Any,
    ) -> None:
        super().update_metadata(mapping, lora_index_to_id, max_loras, vocab_size, **kwargs)
        try:
            with self._host_reads_allowed():
                self._token_groups = group_tokens(self.token_lora_indices)
                self._sampler_groups = group_tokens(self.sampler_indices)
                self._regrouped.clear()
                self._slot_ids = tuple(lora_index_to_id)
                self._metadata_updated(max_loras)
        except Exception:  # pragma: no cover - defensive, see class docstring
            self._give_up("update_metadata")

    def _metadata_updated(self, max_loras: int) -> None:
        """Hook run after each metadata update, outside any graph: state a subclass keeps per step."""

    def _groups(self, which: str, n_rows: int) -> Segments:
        """Groups for a tensor of ``n_rows`` rows; rows past the mapping have no adapter."""
        seg = self._token_groups if which == "token" else self._sampler_groups
        if n_rows == seg.num_tokens:
            return seg
        key = (which, n_rows)
        if key not in self._regrouped:
            idx = self.token_lora_indices if which == "token" else self.sampler_indices
            padded = torch.full((n_rows,), -1, dtype=torch.long, device=idx.device)
            m = min(n_rows, idx.numel())
            padded[:m] = idx[:m]
            self._regrouped[key] = group_tokens(padded)
        return self._regrouped[key]

    def _ranks(self, stacked: torch.Tensor, rank_dim: int) -> tuple[int, ...]:
        """True rank of every slot of a stacked buffer (rank along ``rank_dim``
        of the per-slot matrix: 0 for A's rows, 1 for B's columns)."""
        key = (stacked.data_ptr(), rank_dim)
        cached = self._rank_cache.get(key)
        t = _stacked3(stacked)
        n_slots = t.shape[0]
        if cached is None or len(cached) != n_slots:
            cached = [(None, -1)] * n_slots
        ids = self._slot_ids + (None,) * (n_slots - len(self._slot_ids))
        fresh = []
        for s, (seen_id, rank) in enumerate(cached):
            if rank < 0 or seen_id != ids[s]:
                rank = 0 if ids[s] is None else _nonzero_extent(t[s], rank_dim)
            fresh.append((ids[s], rank))
        self._rank_cache[key] = fresh
        return tuple(r for _, r in fresh)

    def _bank(self, a: torch.Tensor | None, b: torch.Tensor | None) -> LoRABank:
        """A bank over stacked buffers at true ranks; a missing side gets an
        empty stand-in (shrink needs no B, expand no A).  Cached until the
        slot layout changes, so a decode step costs a dict lookup per layer."""
        key = (
            None if a is None else a.data_ptr(),
            None if b is None else b.data_ptr(),
            None if b is None else tuple(b.shape),
        )
        hit = self._bank_cache.get(key)
        if hit is not None and hit[0] == self._slot_ids:
            return hit[1]
        bank = self._build_bank(a, b)
        self._bank_cache[key] = (self._slot_ids, bank)
        return bank

    def _packed(
        self,
        a_stacked: tuple[torch.Tensor, ...],
        b_stacked: tuple[torch.Tensor, ...],
        widths: tuple[int, ...],
    ) -> PackedSlices:
        """A layer's slices (and, on CPU, their lazily packed per-slot copies
        that make decode steps cheap), cached like banks."""
        key = ("packed",) + tuple((a.data_ptr(), b.data_ptr(), tuple(b.shape))
                                  for a, b in zip(a_stacked, b_stacked))
        hit = self._bank_cache.get(key)
        if hit is not None and hit[0] == self._slot_ids:
            return hit[1]
        packed = PackedSlices(side_by_side([self._bank(a, b) for a, b in zip(a_stacked, b_stacked)], widths))
        self._bank_cache[key] = (self._slot_ids, packed)
        return packed

    def _build_bank(self, a: torch.Tensor | None, b: torch.Tensor | None) -> LoRABank:
        if a is not None and b is not None:
            ranks = tuple(min(p, q) for p, q in zip(self._ranks(a, 0), self._ranks(b, 1)))
        elif a is not None:
            ranks = self._ranks(a, 0)
            a3 = _stacked3(a)
            b = a3.new_zeros(()).expand(a3.shape[0], 0, a3.shape[1])
        else:
            ranks = self._ranks(b, 1)
            b3 = _stacked3(b)
            a = b3.new_zeros(()).expand(b3.shape[0], b3.shape[2], 0)
        return LoRABank.stacked(a, b, ranks)

    def _give_up(self, where: str) -> None:
        if not self._fallback:
            logger.exception(
                "vllm-d2l: grouped LoRA path failed in %s; using %s from now on",
                where, self.STOCK_LABEL,
            )
        self._fallback = True

    def _guarded(self, where: str, ours: Callable[[], None], stock: Callable[[], Any]) -> None:
        if not self._fallback and self._can_run_ours():
            try:
                with self._host_reads_allowed():
                    ours()
                return
            except Exception:
                self._give_up(where)
        stock()

    # ----------------------------------------------------------- compute
    def add_shrink(
        self,
        y: tuple[torch.Tensor, ...] | torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: tuple[torch.Tensor, ...],
        scale: float,
        **kwargs: Any,
    ) -> None:
        def ours() -> None:
            x2 = x.reshape(-1, x.shape[-1])
            groups = self._groups("token", x2.shape[0])
            for out, a in zip(y, lora_a_stacked):
                self._shrink_into(out.view(-1, out.shape[-1]), x2, self._bank(a, None), groups, scale)

        self._guarded(
            "add_shrink", ours, lambda: self._stock("add_shrink")(y, x, lora_a_stacked, scale, **kwargs)
        )

    def add_expand(
        self,
        y: torch.Tensor,
        x: tuple[torch.Tensor, ...] | torch.Tensor,
        lora_b_stacked: tuple[torch.Tensor, ...],
        output_slices: tuple[int, ...],
        offset_start: int = 0,
        add_inputs: bool = True,
        **kwargs: Any,
    ) -> None:
        def ours() -> None:
            y2 = y.view(-1, y.shape[-1])
            groups = self._groups("token", y2.shape[0])
            offset = offset_start
            for h, b, width in zip(x, lora_b_stacked, output_slices):
                if not add_inputs:
                    y2[:, offset : offset + width].zero_()
                self._expand_into(y2, h.view(-1, h.shape[-1]), self._bank(None, b), groups, offset)
                offset += width

        self._guarded(
            "add_expand", ours, lambda: self._stock("add_expand")(
                y, x, lora_b_stacked, output_slices, offset_start, add_inputs, **kwargs
            )
        )

    def add_lora_embedding(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_b_stacked: torch.Tensor,
        add_inputs: bool = True,
        **kwargs: Any,
    ) -> None:
        if torch.compiler.is_compiling():  # the traced graph calls the op; it groups eagerly
            torch.ops.vllm_d2l.grouped_lora(y, x, [], [lora_b_stacked], 1.0, [], self._op_id,
                                            _KIND_EMBEDDING, add_inputs)
            return
        self._lora_embedding_eager(y, x, lora_b_stacked, add_inputs, **kwargs)

    def _lora_embedding_eager(
        self, y: torch.Tensor, x: torch.Tensor, lora_b_stacked: torch.Tensor, add_inputs: bool, **kwargs: Any
    ) -> None:
        def ours() -> None:
            y2 = y.view(-1, y.shape[-1])
            groups = self._groups("token", y2.shape[0])
            if not groups.groups and add_inputs:
                return
            bank = self._bank(None, lora_b_stacked)
            if not add_inputs:
                y2[:, : bank.d_out].zero_()
            self._expand_into(y2, x.view(-1, x.shape[-1]), bank, groups, 0)

        self._guarded(
            "add_lora_embedding", ours,
            lambda: self._stock("add_lora_embedding")(y, x, lora_b_stacked, add_inputs, **kwargs),
        )

    def add_lora_linear(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: tuple[torch.Tensor, ...],
        lora_b_stacked: tuple[torch.Tensor, ...],
        scale: float,
        output_slices: tuple[int, ...],
        *,
        buffer: tuple[torch.Tensor, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        add_inputs = kwargs.pop("add_inputs", True)
        if torch.compiler.is_compiling():  # the traced graph calls the op; it groups eagerly
            torch.ops.vllm_d2l.grouped_lora(y, x, list(lora_a_stacked), list(lora_b_stacked), float(scale),
                                            list(output_slices), self._op_id, _KIND_LINEAR, add_inputs)
            return
        self._lora_linear_eager(y, x, tuple(lora_a_stacked), tuple(lora_b_stacked), scale,
                                tuple(output_slices), add_inputs, buffer=buffer, **kwargs)

    def _lora_linear_eager(self, y: torch.Tensor, x: torch.Tensor, lora_a_stacked: tuple, lora_b_stacked: tuple,
                           scale: float, output_slices: tuple, add_inputs: bool, **kwargs: Any) -> None:
        """`add_lora_linear` outside a traced graph (and inside the custom op)."""
        def ours() -> None:
            y2 = y.view(-1, y.shape[-1])
            x2 = x.reshape(-1, x.shape[-1])
            groups = self._groups("token", x2.shape[0])
            if not groups.groups and add_inputs:  # no row has an adapter: nothing to add
                return
            packed = self._packed(lora_a_stacked, lora_b_stacked, output_slices)
            if not add_inputs:
                y2[:, : packed.width].zero_()
            elif not _has_work(packed, groups):
                return
            self._linear_into(y2, x2, packed, groups, scale)

        # vLLM's CPU op has no add_inputs (it always adds, and passing one
        # clashes inside it); its GPU op takes it from kwargs.
        extra = {} if add_inputs else {"add_inputs": False}
        self._guarded(
            "add_lora_linear", ours,
            lambda: self._stock("add_lora_linear")(
                y, x, lora_a_stacked, lora_b_stacked, scale, output_slices, **extra, **kwargs,
            ),
        )

    def add_lora_logits(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: torch.Tensor,
        lora_b_stacked: torch.Tensor,
        scale: float,
        *,
        buffer: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        def ours() -> None:
            y2 = y.view(-1, y.shape[-1])
            x2 = x.reshape(-1, x.shape[-1])
            groups = self._groups("sampler", x2.shape[0])
            b = lora_b_stacked
            if _stacked3(b).shape[1] > y2.shape[1]:  # LoRA vocab wider than the logits
                b = _stacked3(b)[:, : y2.shape[1]]
            packed = self._packed((lora_a_stacked,), (b,), (_stacked3(b).shape[1],))
            if _has_work(packed, groups):
                self._linear_into(y2, x2, packed, groups, scale)

        self._guarded(
            "add_lora_logits", ours,
            lambda: self._stock("add_lora_logits")(
                y, x, lora_a_stacked, lora_b_stacked, scale, buffer=buffer, **kwargs
            ),
        )


# ----------------------------------------------------------------- custom op
# One opaque op for the entry points a compiled model forward reaches.  The
# wrapper is named by an integer (a constant in the traced graph); its grouping
# state changes every step, which is exactly what the graph must not see.
_KIND_LINEAR, _KIND_EMBEDDING = 0, 1
_OP_IDS = itertools.count()
_LIVE: dict[int, GroupedPunicaMixin] = {}


@torch.library.custom_op("vllm_d2l::grouped_lora", mutates_args=("y",), device_types=("cpu", "cuda"))
def _grouped_lora_op(
    y: torch.Tensor,
    x: torch.Tensor,
    a: list[torch.Tensor],
    b: list[torch.Tensor],
    scale: float,
    output_slices: list[int],
    wrapper: int,
    kind: int,
    add_inputs: bool,
) -> None:
    w = _LIVE[wrapper]
    if kind == _KIND_LINEAR:
        w._lora_linear_eager(y, x, tuple(a), tuple(b), scale, tuple(output_slices), add_inputs)
    else:
        w._lora_embedding_eager(y, x, b[0], add_inputs)


@_grouped_lora_op.register_fake
def _grouped_lora_fake(y, x, a, b, scale, output_slices, wrapper, kind, add_inputs) -> None:
    return None
