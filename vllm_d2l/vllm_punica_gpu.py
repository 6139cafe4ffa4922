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

When vLLM's own ops run instead:

* while a CUDA graph is being captured: our launch grids and segment tensors
  are computed per step on the host, and a captured graph would replay the
  capture step's.  vLLM's ops are graph-safe (fixed-size metadata buffers,
  refreshed in place), so the graph records them; steps replayed from a
  graph therefore use vLLM's kernels, eager steps (batches above the capture
  sizes, ``--enforce-eager``) ours;
* ``add_shrink``/``add_expand`` (fully sharded LoRAs) and ``add_lora_logits``
  while ``torch.compile`` traces: they have no op form, and tracing our
  host-side grouping would freeze it (``add_lora_linear`` and
  ``add_lora_embedding`` are traced as our custom op and stay ours);
* after any error in our path (logged once).

Host reads: grouping reads the slot indices (and sizes the launch grid) once
per step, where vLLM's own metadata preparation already syncs, and a slot's
true rank is read once per buffer when an adapter enters the slot; they are
declared to vLLM's sync checker (``VLLM_GPU_SYNC_CHECK``) as deliberate.

``VLLM_D2L_GPU_LORA=vllm`` (read by the serving plugin) keeps vLLM's ops.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import ContextManager

import torch

from kernels.cpu_grouped import PackedSlices
from kernels.layout import LoRABank
from kernels.segments import Segments

from .punica_common import (
    GroupedPunicaMixin,
    UnsupportedVLLMVersion,
    check_vllm_version,
    select_wrapper,
)

__all__ = ["GroupedPunicaWrapperGPU", "install_gpu_punica"]

logger = logging.getLogger(__name__)

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

    def _can_run_ours(self) -> bool:
        return not torch.compiler.is_compiling() and not _capturing()

    def _host_reads_allowed(self) -> ContextManager:
        from vllm.utils.gpu_sync_debug import gpu_sync_allowed

        return gpu_sync_allowed()

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
