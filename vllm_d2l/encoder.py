"""The encoder: the frozen base model reading one chunk, returning chosen layers' hidden states.

It runs the transformer body only (no LM head: its 49k-wide projection is a fifth of the model's
FLOPs and we never need logits here), and keeps just the layers the hypernetwork reads.
"""
from __future__ import annotations

import torch


class Encoder:
    def __init__(self, model, source_layers: list[int]):
        self.model = model
        self.source_layers = list(source_layers)
        n = model.config.num_hidden_layers
        bad = [i for i in self.source_layers if not 0 <= i <= n]
        if bad:
            raise ValueError(f"source layers {bad} outside 0..{n} for this model")

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[N, T] token ids -> [N, L, T, H] hidden states (L = len(source_layers))."""
        out = self.model.model(input_ids=input_ids, attention_mask=attention_mask,
                               output_hidden_states=True, use_cache=False)
        hs = out.hidden_states
        return torch.stack([hs[i] for i in self.source_layers], dim=1)
