"""Where vllm-d2l keeps things on disk.

One cache root holds the converted default model and the adapter store, so a user can move or wipe
everything with one environment variable.
"""
from __future__ import annotations

import os
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
