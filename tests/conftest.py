import os
from pathlib import Path

import pytest
import torch

# Triton decides when triton.language is first imported whether its own library functions
# (tl.zeros, ...) run in the interpreter, and vLLM imports it as soon as any test imports vLLM;
# so the switch the kernel tests need on a machine without a GPU has to be set here, before
# test modules are collected in whatever order.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Servers started by tests run eager (compiled start-up costs a minute or more on two cores);
# tests/test_serving.py opts back in so the served default, compiled, is covered too.
os.environ.setdefault("VLLM_D2L_CPU_COMPILE", "0")

from tiny import build_tiny_llama  # noqa: E402  (tests/ is on sys.path via rootdir conftest)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer random Llama (hidden 64) with a real BPE tokenizer and chat template."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The real default model (converted once into the user's cache)."""
    from vllm_d2l.base_model import ensure_default_model
    return ensure_default_model()


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Every test gets its own adapter store, never the user's."""
    monkeypatch.setenv("VLLM_D2L_STORE", str(tmp_path / "store"))
    yield
