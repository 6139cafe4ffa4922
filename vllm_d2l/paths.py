"""Where vllm-d2l keeps things on disk.

One cache root holds the converted default model and the adapter store, so a user can move or wipe
everything with one environment variable.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """`VLLM_D2L_CACHE`, else `$XDG_CACHE_HOME/vllm-d2l`, else `~/.cache/vllm-d2l`."""
    env = os.environ.get("VLLM_D2L_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vllm-d2l"


def default_store_dir() -> Path:
    """The adapter store: `VLLM_D2L_STORE` if set, else `<cache>/store`."""
    env = os.environ.get("VLLM_D2L_STORE")
    return Path(env).expanduser() if env else cache_root() / "store"


def package_data_dir() -> Path:
    """Files shipped inside the package (the default hypernetwork, example documents)."""
    return Path(__file__).resolve().parent / "assets"


@contextmanager
def atomic_folder(target: Path):
    """Yield a temporary folder beside `target`; on success it replaces `target` with one rename.

    Readers (vLLM, other replicas, a second process converting the same model) therefore see the
    old folder or the complete new one, never half of one; on an error nothing is left behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
