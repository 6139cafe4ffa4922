"""Greedy batched generation for evaluation, with or without an adapter applied.

Prompts are left-padded so every row's last prompt token sits in the same column and the new
tokens line up; one batch per call of `model.generate`.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..apply import lora_applied
from ..lora import HEAD, layer_of


def factors_of(weights, scale: float = 1.0, always_on: float = 1.0, head: float = 1.0,
               drop_layers: tuple[int, ...] = ()) -> dict:
    """`LoRAWeights` -> the {module: (A, B)} mapping that `lora_applied` takes; `scale` multiplies
    every update (B), to see how compliance and kept answers trade as an adapter is turned up or down.
    `always_on` multiplies the always-on block alone (the last `layout["always_on"]` rank rows, the
    same for every text), to tell what it does from what the text's own rows do; `head` multiplies
    the LM head's update alone (the copy path), to tell what copying does from what the rest does;
    `drop_layers`: decoder layers whose updates are left out, to tell where an effect lives."""
    r = weights.meta.get("layout", {}).get("always_on", 0)
    if always_on != 1.0 and not r:
        raise ValueError("this adapter has no always-on block to scale")
    if head != 1.0 and HEAD not in weights.b:
        raise ValueError("this adapter has no update on the LM head (no copy path) to scale")

    def b(k):
        out = weights.b[k] if scale == 1.0 else weights.b[k] * scale
        if k == HEAD:
            return out if head == 1.0 else out * head  # its rows past the path's rank are zero pads
        if always_on != 1.0:
            out = torch.cat([out[:, :-r], out[:, -r:] * always_on], dim=1)  # [d_out, R]
        return out
    dropped = [k for k in weights.a if layer_of(k) in drop_layers]
    if drop_layers and not dropped:
        raise ValueError(f"this adapter updates none of layers {sorted(drop_layers)}")
    return {k: (weights.a[k], b(k)) for k in weights.a if k not in dropped}


def generated_factors(generator):
    """Description -> its adapter's factors as generated: what the task evaluations' `adapter`
    argument (a description's adapter, shaped as the command line asks) is when none is given."""
    return lambda description: factors_of(generator.internalize(description).weights)


@torch.no_grad()
def generate(model, tokenizer, prompts: list[list[int]], max_new_tokens: int = 24, batch_size: int = 8,
             factors: dict | None = None, on_batch: Callable[[int], None] | None = None) -> list[str]:
    """Greedy continuations of token-id prompts, decoded and stripped, in input order."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        group = prompts[start:start + batch_size]
        width = max(len(p) for p in group)
        ids = torch.full((len(group), width), pad, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for i, p in enumerate(group):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        kwargs = dict(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                      max_new_tokens=max_new_tokens, do_sample=False,
                      pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        if factors is not None:
            with lora_applied(model, factors):
                gen = model.generate(**kwargs)
        else:
            gen = model.generate(**kwargs)
        for row in gen[:, width:]:
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
        if on_batch:
            on_batch(len(group))
    return out
