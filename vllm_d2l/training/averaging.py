"""A running average of the network's weights, evaluated beside the weights themselves.

At a constant rate with batches of four documents, each step moves the weights by as much noise as
signal: the hold-out score of successive evaluations wanders within a band (-1.07 to -1.21 over a
thousand steps) without a trend. An exponential moving average of the weights (Polyak averaging)
sits near the middle of that band's basin rather than at a random point on its rim, which is what
a falling rate would buy, without slowing the run that keeps learning."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


class WeightAverage:
    """w̄ ← d·w̄ + (1 − d)·w after every step, with d = min(decay, (1 + n) / (10 + n)) over the n
    updates so far, so that a fresh average forgets its starting point quickly."""

    def __init__(self, net: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"an averaging decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.count = 0
        self.tensors = {n: p.detach().float().clone() for n, p in net.named_parameters()}

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        d = min(self.decay, (1 + self.count) / (10 + self.count))
        for n, p in net.named_parameters():
            self.tensors[n].lerp_(p.detach().float(), 1.0 - d)
        self.count += 1

    @contextmanager
    def swapped_in(self, net: torch.nn.Module) -> Iterator[None]:
        """Let `net` compute with the averaged weights inside the block; its own come back after."""
        own = {n: p.detach().clone() for n, p in net.named_parameters()}
        with torch.no_grad():
            for n, p in net.named_parameters():
                p.copy_(self.tensors[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in net.named_parameters():
                    p.copy_(own[n])

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return dict(self.tensors), {"decay": self.decay, "count": self.count}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Continue a saved average. Parameters it lacks (a part switched on since) start from
        the network's current values, which is what a fresh average of them would hold."""
        unknown = set(tensors) - set(self.tensors)
        if unknown:
            raise ValueError(f"the saved average has parameters this network lacks: {sorted(unknown)[:3]}")
        for n, t in tensors.items():
            if t.shape != self.tensors[n].shape:
                raise ValueError(f"the saved average's {n} has shape {tuple(t.shape)}, the network's "
                                 f"{tuple(self.tensors[n].shape)}")
            self.tensors[n] = t.float().clone()
        self.count = int(meta.get("count", 0))
