"""The `vllm.general_plugins` entry point: runs in every vLLM process (API server, engine, workers).

vLLM calls `register()` with no error handling of its own, possibly more than once, and in
processes where half of vLLM is not imported yet; so each step is idempotent, cheap, and guarded:
a failing step is logged and the server comes up without it rather than not at all. The one
exception is the vLLM version check (`compat.py`): on an untested vLLM the plugin stops the server
at start-up with a message saying what to install, unless `VLLM_D2L_SKIP_VERSION_CHECK=1`.
"""
from __future__ import annotations

import os

from . import PLUGIN_NAME, get_logger
from .compat import check_vllm_version

log = get_logger(__name__)

_done = False


def register() -> None:
    global _done
    if _done:
        return
    check_vllm_version()  # raises on an untested vLLM, before anything is patched
    _done = True
    _step("worker method", _install_worker_method)
    _step("LoRA resolver", _register_resolver)
    _step("grouped CPU LoRA path", _install_cpu_punica)
    _step("true-rank GPU LoRA kernels", _install_gpu_punica)


def _step(what: str, fn) -> None:
    try:
        fn()
    except Exception:
        log.exception("vllm-d2l: could not install the %s; continuing without it", what)


def _install_worker_method() -> None:
    from .worker import install_worker_methods
    install_worker_methods()


def _register_resolver() -> None:
    from vllm.lora.resolver import LoRAResolverRegistry

    from .resolver import StoreResolver

    if PLUGIN_NAME not in LoRAResolverRegistry.get_supported_resolvers():
        LoRAResolverRegistry.register_resolver(PLUGIN_NAME, StoreResolver())


def get_resolver():
    """This process's resolver instance (the endpoint plugin wires metrics and the model into it)."""
    from vllm.lora.resolver import LoRAResolverRegistry

    if PLUGIN_NAME in LoRAResolverRegistry.get_supported_resolvers():
        return LoRAResolverRegistry.get_resolver(PLUGIN_NAME)
    return None


def _kept_stock(env: str, platform: str, caveat: str = "") -> bool:
    """Whether the diagnostic switch `env=vllm` asks for vLLM's own LoRA ops (said in the log)."""
    if os.environ.get(env, "").strip().lower() != "vllm":
        return False
    log.warning("vllm-d2l: %s=vllm: using vLLM's %s LoRA ops%s", env, platform, caveat)
    return True


def _install_cpu_punica() -> None:
    """vLLM 0.32's CPU LoRA ops give base rows the last slot's adapter once every slot is full;
    the grouped path fixes that (and is faster). Only the CPU platform is touched.

    `VLLM_D2L_CPU_LORA=vllm` keeps vLLM's own ops: a diagnostic switch, to reproduce the bug or
    rule the grouped path out when chasing a problem."""
    if _kept_stock("VLLM_D2L_CPU_LORA", "CPU", " (wrong for mixed batches once all --max-loras slots are full)"):
        return
    try:
        from ..vllm_punica import install_cpu_punica
    except ImportError as e:
        log.warning("vllm-d2l: grouped CPU LoRA path unavailable (%s); mixed batches on CPU may be "
                    "wrong once all --max-loras slots are full", e)
        return
    if install_cpu_punica():
        log.debug("vllm-d2l: grouped CPU LoRA path installed")


def _install_gpu_punica() -> None:
    """On CUDA, vLLM's LoRA kernels compute every adapter at `--max-lora-rank`; ours stop at each
    slot's true rank. Other platforms are left untouched.

    `VLLM_D2L_GPU_LORA=vllm` keeps vLLM's own GPU ops: a diagnostic switch, to compare against
    them or rule our kernels out when chasing a problem."""
    if _kept_stock("VLLM_D2L_GPU_LORA", "GPU"):
        return
    from ..vllm_punica_gpu import install_gpu_punica

    if install_gpu_punica():
        log.debug("vllm-d2l: true-rank GPU LoRA kernels installed")
