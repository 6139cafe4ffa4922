"""Adapters for the benchmarks: synthetic PEFT adapters of a fixed rank, and a hypernetwork whose
adapters are not all zero.

Why a second hypernetwork: an untrained default hypernetwork has its output gates at zero, so it
generates B = 0. vLLM still serves such an adapter at full padded rank, but our grouped path finds
each slot's true rank from its last non-zero row and would skip an all-zero adapter entirely,
which would flatter our path. The benchmark copy opens the gates (and fills the always-on block)
with fixed random values: same shapes and ranks as the product's adapters, real arithmetic.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from vllm_d2l.lora import LoRAWeights, module_path, module_shapes


def synthetic_adapter(hf_config, rank: int, seed: int, modules: tuple[str, ...] = ("down_proj",),
                      base_model: str = "", dtype: torch.dtype = torch.bfloat16) -> LoRAWeights:
    """Random rank-`rank` factors on `modules` of every layer (scaled so outputs stay finite)."""
    g = torch.Generator().manual_seed(seed)
    a, b = {}, {}
    for m, (d_in, d_out) in module_shapes(hf_config, list(modules)).items():
        for layer in range(hf_config.num_hidden_layers):
            name = module_path(layer, m)
            a[name] = (torch.randn(rank, d_in, generator=g) / d_in ** 0.5).to(dtype)
            b[name] = (torch.randn(d_out, rank, generator=g) * 0.01).to(dtype)
    return LoRAWeights(a, b, base_model, {"synthetic": True, "seed": seed})


def write_synthetic_adapters(folder: Path, model_dir: str, rank: int, count: int) -> list[Path]:
    """`count` distinct PEFT folders under `folder`; existing ones with the same rank are reused."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_dir)
    paths = []
    for k in range(count):
        path = folder / f"synthetic-r{rank}-{k}"
        if not (path / "adapter_config.json").is_file() or json.loads(
                (path / "adapter_config.json").read_text()).get("r") != rank:
            synthetic_adapter(cfg, rank, seed=1000 + k, base_model=str(model_dir)).save_peft(path)
        paths.append(path)
    return paths


def gates_closed(hypernet_dir: Path) -> bool:
    """True when the checkpoint generates B = 0 whatever the document (untrained)."""
    from vllm_d2l.hypernet import Hypernet

    return Hypernet.load(hypernet_dir).is_noop()


def open_gates_copy(hypernet_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """A copy of `hypernet_dir` whose adapters are non-zero (random B heads and always-on block)."""
    from vllm_d2l.hypernet import Hypernet

    if (out_dir / "model.safetensors").is_file():
        return out_dir
    return Hypernet.load(hypernet_dir).open_(seed).save(out_dir)


def bench_hypernet(requested: str | None, cache_dir: Path) -> tuple[Path, str]:
    """The hypernetwork to serve and a note saying which it is and why."""
    from vllm_d2l.generator import default_hypernet_dir

    src = Path(requested).expanduser() if requested else default_hypernet_dir()
    if not gates_closed(src):
        return src, f"{src} (as is)"
    from vllm_d2l.hypernet import checkpoint_fingerprint

    opened = open_gates_copy(src, cache_dir / f"open-gates-{checkpoint_fingerprint(src)}")
    return opened, (f"{src} has closed gates (untrained: B = 0); served a copy with the gates opened "
                    "so adapters do real work at their true rank")
