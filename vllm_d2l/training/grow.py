"""Grow a trained token generator's key space, in a training checkpoint, without changing what it does.

Why: a document's memory is a rank-k least-squares map from keys to values, so with k = 120 and
a few hundred tokens each stored token is read back through the others' interference (its own
value's cosine falls from 0.76 with 40 tokens stored to 0.57 with 240 on a hand-written memo).
More key dimensions store more tokens apart; growing a trained network keeps the thousands of
steps it has had.

The new key rows of the query map G start at eps times a random matrix (rows of norm eps; the
trained rows' norms are about 1.5), and those of the write side's own map D (if any) at zero, so
the new dimensions add O(eps^2) to every adapter: eps = 0.15 moves the default network's adapters
by 1-2 %. Much smaller is exact but leaves them off: Adam grows a row by about the rate per entry
and step, and their effect goes with the square of their scale (at eps = 1e-3 the new rows were
still 23x smaller than the trained ones after 25 steps). The rest
is bookkeeping that keeps the old dimensions' read unchanged: keys are scaled by 1/sqrt(k), and
the whitened read's ridge and prefactor use the keys' mean eigenvalue t = trace(C) / k, so the
ridge strength e and the per-layer gain are rescaled to give the same numbers at the new k.
The optimizer keeps its state for every tensor whose shape did not change; the grown ones start
their moments afresh (Adam's bias correction then sizes their first steps as at step one).

    python -m vllm_d2l.training.grow runs/token/checkpoint runs/wide/checkpoint --extra-keys 128 [--eps 0.15]
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..hypernet import Hypernet, build
from .checkpoint import swap_in
from .trainer import group_of


def grown_net(net, extra: int, eps: float = 0.15, seed: int = 0):
    """A copy of token network `net` with `extra` more key dimensions that computes what it does
    (to O(eps^2))."""
    c = net.config
    if c.kind != "token" or c.memory_read != "ridge":
        raise ValueError("growing the key space needs the token kind with the whitened read (memory_read='ridge')")
    if extra < 1:
        raise ValueError("extra must be >= 1")
    k, k2 = c.key_dim, c.key_dim + extra
    big = build(replace(c, key_dim=k2))
    g = torch.Generator().manual_seed(seed)
    state = net.state_dict()  # load_state_dict below copies: nothing of net's is changed
    e = net.ridge.detach().exp()  # [L, M]
    scale = math.sqrt(k / k2)  # every key shrinks by this much (keys carry 1/sqrt(k))
    with torch.no_grad():
        for name, t in list(state.items()):
            if name.startswith(("key.", "doc_key.")):
                rows = t.new_zeros(t.shape[0], extra, t.shape[2])
                if name.startswith("key."):  # small, so the new dimensions say almost nothing yet
                    rows = eps * torch.randn(rows.shape, generator=g) / t.shape[2] ** 0.5
                state[name] = torch.cat([t, rows], 1)  # [L, k2, d_in]
        # t' = scale^2 t k / k2 and C' = scale^2 C: e' t' = scale^2 e t keeps the ridge's place
        state["ridge"] = (e * k2 / k).log()
        # the prefactor (1 + e') t' and the keys' scale leave S (C + e t I)^-1 times
        # scale (k / k2 + e) t against (1 + e) t before: the gain takes the difference
        state["gain"] = net.gain.detach() * (1 + e) / (scale * (k / k2 + e))
    big.load_state_dict(state)
    return big


def grow_checkpoint(src: Path, dst: Path, extra: int, eps: float = 0.15, seed: int = 0):
    """A training checkpoint (weights, optimizer, state) with `extra` more key dimensions in `dst`;
    returns the grown network."""

    net = Hypernet.load(src)
    big = grown_net(net, extra, eps, seed)
    state = json.loads((src / "state.json").read_text())
    # the optimizer's parameter indices follow its groups, each in the order of named_parameters
    names = [n for g in state["param_groups"] for n, p in big.named_parameters() if group_of(n, p) == g["name"]]
    if len(names) != sum(len(g["params"]) for g in state["param_groups"]):
        raise ValueError(f"{src}: its optimizer groups do not match this network's parameters")
    new, old = dict(big.named_parameters()), net.state_dict()
    grown = {str(i) for i, n in enumerate(names) if new[n].shape != old[n].shape}
    tensors = {key: val for key, val in load_file(str(src / "optimizer.safetensors")).items()
               if key.split(".", 1)[0] not in grown}
    scalars = {key: val for key, val in state["optimizer_scalars"].items() if key.split(".", 1)[0] not in grown}
    tmp = dst.with_name(dst.name + ".tmp")
    big.save(tmp, dtype=torch.float32)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "optimizer_scalars": scalars,
                                                "grown_from": {"key_dim": net.config.key_dim, "extra": extra}},
                                               indent=2))
    dst.parent.mkdir(parents=True, exist_ok=True)
    swap_in(tmp, dst)
    return big


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="a training checkpoint folder (runs/X/checkpoint)")
    p.add_argument("dst", type=Path, help="where the grown checkpoint goes (e.g. runs/Y/checkpoint)")
    p.add_argument("--extra-keys", type=int, required=True, help="key dimensions to add")
    p.add_argument("--eps", type=float, default=0.15, help="norm of the new query rows")
    args = p.parse_args(argv)
    big = grow_checkpoint(args.src, args.dst, args.extra_keys, args.eps)
    print(f"wrote {args.dst} (key_dim {big.config.key_dim})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
