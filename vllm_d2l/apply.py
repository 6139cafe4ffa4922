"""Run a Hugging Face model with LoRA factors added on the fly (our reference forward).

Used by training (factors carry gradients back into the hypernetwork) and by tests (the same
answer as PEFT and vLLM must come out). Forward hooks add `x @ A^T @ B^T` to each target module's
output; factors may be batched per sequence ([N, r, d_in] / [N, d_out, r]) or shared ([r, d_in] /
[d_out, r]), or A shared and B per sequence.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

Factors = dict[str, tuple[torch.Tensor, torch.Tensor]]


def _lora_delta(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dim() == 2:  # one A for every sequence; B shared [d_out, r] or per sequence [N, d_out, r]
        return (x @ a.T.to(x.dtype)) @ (b.T if b.dim() == 2 else b.transpose(1, 2)).to(x.dtype)
    # per-sequence factors: x [N, T, d_in], a [N, r, d_in], b [N, d_out, r]
    return torch.bmm(torch.bmm(x, a.transpose(1, 2).to(x.dtype)), b.transpose(1, 2).to(x.dtype))


@contextmanager
def lora_applied(model, factors: Factors, record: list | None = None):
    """Within the block, `model(...)` behaves as base model + adapter. With `record`, every update
    the adapter adds is appended to it as computed (with its graph), one tensor per module call."""
    modules = dict(model.named_modules())
    missing = [k for k in factors if k not in modules]
    if missing:
        raise KeyError(f"model has no modules {missing[:3]}")
    handles = []
    for name, (a, b) in factors.items():
        def hook(mod, inputs, output, a=a, b=b):
            delta = _lora_delta(inputs[0], a, b)
            if record is not None:
                record.append(delta)
            return output + delta
        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
