"""vLLM's CPU LoRA path, replaced by the grouped CPU kernels.

Why: vLLM 0.32's ``PunicaWrapperCPU`` gathers a full padded weight matrix
per token and, once every ``max_loras`` slot is taken, applies the last slot's
adapter to rows that have none (index -1 wraps around in ``W[indices]``).
The wrapper below keeps vLLM's metadata handling, groups the batch's tokens by
slot once per mapping change, and runs one matmul per adapter at the slot's
true rank; rows without an adapter are never touched.

How: the CPU platform names its wrapper class through
``CpuPlatform.get_punica_wrapper()`` and the selector resolves that name each
time a LoRA manager is built.  :func:`install_cpu_punica` points that one
classmethod at :class:`GroupedPunicaWrapperCPU`; nothing else in vLLM is
modified.  It must run before the model's LoRA manager is created, which is
the case for a ``vllm.general_plugins`` entry point.

True ranks, grouping and the entry points themselves are shared with the
GPU wrapper (:mod:`vllm_d2l.punica_common`); this module supplies the CPU
kernels (:mod:`kernels.cpu_grouped`) and the CPU platform's installation.

Compilation: vLLM's CPU platform turns ``torch.compile`` off whenever LoRA is
enabled, because its CPU LoRA ops slice per-step metadata with Python ints that
a graph traced once would freeze.  Our entry points can instead run as one
opaque custom op each (``vllm_d2l::grouped_lora``): the traced graph calls the
op, and the op does the per-step grouping eagerly.  With
``VLLM_D2L_CPU_COMPILE=1`` :func:`install_cpu_punica` also keeps the platform's
compilation setting when LoRA is on.  ``vllm-d2l serve`` sets it unless told
otherwise (base traffic 0.97x of a plain server compiled against 0.84x eager);
the price is start-up (70-120 s against ~25-40 s for the default model on two
cores: vLLM's compile cache does not reload on CPU), so ``=0`` trades
throughput for a fast start.  Fully sharded LoRAs go through
``add_shrink``/``add_expand``, which have no op form, so they stay uncompiled.
"""

from __future__ import annotations

import logging

import torch

from kernels.cpu_grouped import (
    PackedSlices,
    grouped_expand,
    grouped_lora_linear,
    grouped_shrink,
)
from kernels.layout import LoRABank
from kernels.segments import Segments

from .punica_common import (
    SUPPORTED_VLLM,
    GroupedPunicaMixin,
    UnsupportedVLLMVersion,
    check_vllm_version,
    select_wrapper,
)

__all__ = [
    "SUPPORTED_VLLM",
    "UnsupportedVLLMVersion",
    "GroupedPunicaWrapperCPU",
    "install_cpu_punica",
    "COMPILE_ENV",
]

logger = logging.getLogger(__name__)

WRAPPER_QUALNAME = f"{__name__}.GroupedPunicaWrapperCPU"
#: ``1`` keeps torch.compile on for LoRA servers on CPU (see the module docstring).
COMPILE_ENV = "VLLM_D2L_CPU_COMPILE"


def _compile_requested() -> bool:
    import os

    return os.environ.get(COMPILE_ENV, "").strip().lower() in ("1", "true", "yes")


def _keep_compilation(platform_cls) -> None:
    """Let the CPU platform configure compilation as if LoRA were off.

    Its ``check_and_update_config`` ends with "LoRA on -> compilation off" and
    reads the LoRA config nowhere else, so hiding the LoRA config for the
    duration of that call is the smallest change that keeps compilation.
    """
    current = platform_cls.__dict__.get("check_and_update_config")
    if getattr(current, "__func__", None) is not None and getattr(current.__func__, "_vllm_d2l", False):
        return
    original = current.__func__

    def check_and_update_config(cls, vllm_config) -> None:
        lora = vllm_config.lora_config
        if lora is None or getattr(lora, "fully_sharded_loras", False):
            return original(cls, vllm_config)
        vllm_config.lora_config = None
        try:
            original(cls, vllm_config)
        finally:
            vllm_config.lora_config = lora

    check_and_update_config._vllm_d2l = True
    platform_cls.check_and_update_config = classmethod(check_and_update_config)
    logger.info("vllm-d2l: torch.compile stays on with LoRA (%s=1)", COMPILE_ENV)


def install_cpu_punica() -> bool:
    """Make vLLM's CPU platform build :class:`GroupedPunicaWrapperCPU`.

    Idempotent and cheap (one attribute check once installed); safe to call in
    every vLLM process.  Returns True when the CPU platform now uses the
    grouped path, False on other platforms (left untouched).  Raises
    :class:`UnsupportedVLLMVersion` when vLLM is outside ``SUPPORTED_VLLM``.
    """
    check_vllm_version("CPU")
    if PunicaWrapperCPU is object:
        raise UnsupportedVLLMVersion("vLLM's PunicaWrapperCPU could not be imported")
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return False
    platform_cls = type(current_platform)
    if _compile_requested():
        _keep_compilation(platform_cls)
    if select_wrapper(platform_cls, WRAPPER_QUALNAME):
        logger.info("vllm-d2l: CPU LoRA layers use the grouped path")
    return True


try:  # another vLLM may have moved it; install_cpu_punica then says why
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU
except ImportError:  # pragma: no cover - depends on the installed vLLM
    PunicaWrapperCPU = object  # type: ignore[misc,assignment]


class GroupedPunicaWrapperCPU(GroupedPunicaMixin, PunicaWrapperCPU):
    """``PunicaWrapperCPU`` with grouped matmuls, exact -1 rows and true ranks
    (see :class:`~vllm_d2l.punica_common.GroupedPunicaMixin`)."""

    STOCK_LABEL = "vLLM's CPU ops"

    def _shrink_into(
        self, h: torch.Tensor, x: torch.Tensor, bank: LoRABank, groups: Segments, scale: float
    ) -> None:
        grouped_shrink(h, x, bank, groups, scale)

    def _expand_into(
        self, y: torch.Tensor, h: torch.Tensor, bank: LoRABank, groups: Segments, offset: int
    ) -> None:
        grouped_expand(y, h, bank, groups, offset, add=True)

    def _linear_into(
        self, y: torch.Tensor, x: torch.Tensor, packed: PackedSlices, groups: Segments, scale: float
    ) -> None:
        grouped_lora_linear(y, x, packed, groups, scale)
