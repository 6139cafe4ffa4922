"""vLLM's CUDA LoRA path on our Triton kernels, at each slot's true rank.

Why: vLLM 0.32's ``PunicaWrapperGPU`` launches its Triton ops over the stacked
slot buffers at ``max_lora_rank``, so a rank-8 adapter next to a rank-1024
one costs rank 1024.  Document adapters grow in rank with the document, so
that padding is the common case, not the corner.  The wrapper below keeps
vLLM's metadata handling (its own kernel metadata stays prepared every step)
and runs :mod:`kernels.triton_lora`, whose programs exit at their adapter's
rank; rows without an adapter are never touched.

How: as on CPU (:mod:`vllm_d2l.vllm_punica`), the CUDA platform names its
wrapper through ``get_punica_wrapper()`` and :func:`install_gpu_punica`
points that one classmethod at :class:`GroupedPunicaWrapperGPU`.  Grouping,
true ranks and the entry points are shared (:mod:`vllm_d2l.punica_common`).

CUDA graphs: a graph replays the launches it recorded, with their pointers
and grids, so the eager path (grids and segment tensors sized on the host per
step) cannot be captured.  While a graph is being captured,
``add_lora_linear`` launches the same kernels from fixed-size state instead:

* the grouping lives in a :class:`kernels.segments.SlotPlan`, rewritten in
  place by device operations in ``update_metadata`` (which vLLM runs before
  every step, outside the graph), with an upper-bound grid whose surplus row
  blocks exit at once;
* each layer's true ranks live in a device tensor per stacked buffer,
  rewritten in place whenever the slots change hands.  Such a tensor is made
  on the layer's first eager call (vLLM's profiling run calls every layer
  before any capture); a layer first met during a capture records vLLM's op.

So graph replays, too, cost each adapter its own rank.  The replay contract
is tested without a GPU: the launches of a captured call are recorded; the
batch, the inputs and a slot's adapter change as between two steps; the
recorded launches run again unchanged (``tests/test_vllm_punica_gpu.py``).

vLLM's own ops still run for:

* ``add_shrink``/``add_expand`` (fully sharded LoRAs) and
  ``add_lora_embedding`` inside a graph capture;
* ``add_shrink``/``add_expand`` (fully sharded LoRAs) and ``add_lora_logits``
  while ``torch.compile`` traces: they have no op form, and tracing our
  host-side grouping would freeze it (``add_lora_linear`` and
  ``add_lora_embedding`` are traced as our custom op and stay ours);
* after any error in our path (logged once).

Host reads: grouping reads the slot indices (and sizes the launch grid) once
per step, where vLLM's own metadata preparation already syncs, and a slot's
true rank is read once per buffer when an adapter enters the slot (the
fixed-size plan's refresh reads nothing); they are
declared to vLLM's sync checker (``VLLM_GPU_SYNC_CHECK``) as deliberate.

``VLLM_D2L_GPU_LORA=vllm`` (read by the serving plugin) keeps vLLM's ops.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any, ContextManager

import torch

from kernels.cpu_grouped import PackedSlices
from kernels.layout import LoRABank
from kernels.segments import Segments, SlotPlan

from .punica_common import (
    GroupedPunicaMixin,
    UnsupportedVLLMVersion,
    check_vllm_version,
    select_wrapper,
    side_by_side,
)

__all__ = ["GroupedPunicaWrapperGPU", "install_gpu_punica"]

logger = logging.getLogger(__name__)

#: row block of the graph-safe launches: graphs are captured for decode-sized batches
GRAPH_BLOCK_M = 16

WRAPPER_QUALNAME = f"{__name__}.GroupedPunicaWrapperGPU"

try:  # another vLLM may have moved it; install_gpu_punica then says why
    from vllm.lora.punica_wrapper.punica_gpu import PunicaWrapperGPU
except ImportError:  # pragma: no cover - depends on the installed vLLM
    PunicaWrapperGPU = object  # type: ignore[misc,assignment]


def _triton_ops() -> ModuleType:
    """The Triton kernels, imported on first use: plugin start-up on a box
    without a GPU never pays for importing Triton, and tests that switch on
    ``TRITON_INTERPRET`` and reload the module are picked up."""
    return importlib.import_module("kernels.triton_lora")


def install_gpu_punica() -> bool:
    """Make vLLM's CUDA platform build :class:`GroupedPunicaWrapperGPU`.

    Idempotent and cheap; safe to call in every vLLM process.  Returns True
    when the CUDA platform now uses our kernels, False on other platforms
    (ROCm included: the kernels are untested there), which are left
    untouched.  Raises :class:`UnsupportedVLLMVersion` on a CUDA platform when
    vLLM is outside ``SUPPORTED_VLLM``.
    """
    from vllm.platforms import current_platform

    if not current_platform.is_cuda():
        return False
    check_vllm_version("GPU")
    if PunicaWrapperGPU is object:
        raise UnsupportedVLLMVersion("vLLM's PunicaWrapperGPU could not be imported")
    if select_wrapper(type(current_platform), WRAPPER_QUALNAME):
        logger.info("vllm-d2l: GPU LoRA layers use the true-rank Triton kernels")
    return True


def _capturing() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _as_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The kernels multiply in the weights' dtype (vLLM's ops assume it too)."""
    return x if x.dtype == dtype else x.to(dtype)


class GroupedPunicaWrapperGPU(GroupedPunicaMixin, PunicaWrapperGPU):  # type: ignore[misc]
    """``PunicaWrapperGPU`` on segmented Triton kernels at true ranks
    (see :class:`~vllm_d2l.punica_common.GroupedPunicaMixin`).

    vLLM marks its class ``@final`` for type checkers only; subclassing it
    keeps vLLM's metadata preparation, MoE and full-linear paths unchanged.
    """

    STOCK_LABEL = "vLLM's GPU ops"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._plan: SlotPlan | None = None
        # (A data_ptr, B data_ptr) -> bank over the whole stacked buffers whose
        # device ranks are rewritten in place when the slots change hands
        self._graph_banks: dict[tuple[int, int], LoRABank] = {}
        self._graph_ranks_for: tuple | None = None

    def _can_run_ours(self) -> bool:
        return not torch.compiler.is_compiling() and not _capturing()

    def _host_reads_allowed(self) -> ContextManager:
        from vllm.utils.gpu_sync_debug import gpu_sync_allowed

        return gpu_sync_allowed()

    # ----------------------------------------------------------- CUDA graphs
    def _metadata_updated(self, max_loras: int) -> None:
        if self._plan is None or self._plan.num_slots != max_loras:
            self._plan = SlotPlan.allocate(self._token_lora_indices.numel(), max_loras,
                                           GRAPH_BLOCK_M, self._token_lora_indices.device)
        self._plan.update(self.token_lora_indices)
        if self._graph_ranks_for != self._slot_ids:
            for bank in self._graph_banks.values():
                self._write_true_ranks(bank)
            self._graph_ranks_for = self._slot_ids

    def _write_true_ranks(self, bank: LoRABank) -> None:
        bank.set_device_ranks([min(p, q) for p, q in zip(self._ranks(bank.a, 0), self._ranks(bank.b, 1))])

    def _remember_for_graphs(self, a_stacked: tuple, b_stacked: tuple) -> None:
        """Give each slice's buffers their persistent bank now, outside any capture."""
        for a, b in zip(a_stacked, b_stacked):
            key = (a.data_ptr(), b.data_ptr())
            if key not in self._graph_banks:
                bank = LoRABank.stacked(a, b)  # host ranks: the buffer's; true ones on the device
                self._write_true_ranks(bank)
                self._graph_banks[key] = bank

    def _graph_linear(self, y: torch.Tensor, x: torch.Tensor, a_stacked: tuple, b_stacked: tuple,
                      scale: float, output_slices: tuple, add_inputs: bool) -> bool:
        """``add_lora_linear`` from fixed-size state only; False if that state is missing."""
        y2, x2 = y.view(-1, y.shape[-1]), x.reshape(-1, x.shape[-1])
        plan = self._plan
        # the plan indexes the mapping's rows: the captured tensor must hold them all
        if plan is None or not self.token_lora_indices.numel() <= x2.shape[0] <= plan.capacity:
            return False
        banks = [self._graph_banks.get((a.data_ptr(), b.data_ptr())) for a, b in zip(a_stacked, b_stacked)]
        if any(bank is None for bank in banks):
            return False
        if not add_inputs:
            y2[:, : sum(output_slices)].zero_()
        x2 = _as_dtype(x2, banks[0].a.dtype)
        _triton_ops().triton_lora_linear(y2, x2, side_by_side(banks, output_slices), plan.for_rows(x2.shape[0]),
                                         scale)
        return True

    def _lora_linear_eager(self, y: torch.Tensor, x: torch.Tensor, lora_a_stacked: tuple,
                           lora_b_stacked: tuple, scale: float, output_slices: tuple, add_inputs: bool,
                           **kwargs: Any) -> None:
        if not self._fallback and not torch.compiler.is_compiling():
            try:
                if not _capturing():
                    with self._host_reads_allowed():
                        self._remember_for_graphs(lora_a_stacked, lora_b_stacked)
                elif self._graph_linear(y, x, lora_a_stacked, lora_b_stacked, scale, output_slices,
                                        add_inputs):
                    return
            except Exception:
                self._give_up("add_lora_linear (CUDA-graph path)")
        super()._lora_linear_eager(y, x, lora_a_stacked, lora_b_stacked, scale, output_slices, add_inputs,
                                   **kwargs)

    # ----------------------------------------------------------- kernels
    def _shrink_into(
        self, h: torch.Tensor, x: torch.Tensor, bank: LoRABank, groups: Segments, scale: float
    ) -> None:
        # vLLM's shrink clears its whole output, so rows without an adapter
        # read zeros; split-K partial sums need the zeros too.
        h.zero_()
        _triton_ops().triton_shrink(h, _as_dtype(x, bank.a.dtype), bank, groups, scale)

    def _expand_into(
        self, y: torch.Tensor, h: torch.Tensor, bank: LoRABank, groups: Segments, offset: int
    ) -> None:
        _triton_ops().triton_expand(y, h, bank, groups, offset, add=True)

    def _linear_into(
        self, y: torch.Tensor, x: torch.Tensor, packed: PackedSlices, groups: Segments, scale: float
    ) -> None:
        x = _as_dtype(x, packed.slices[0].bank.a.dtype)
        _triton_ops().triton_lora_linear(y, x, packed.slices, groups, scale)
