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

More target layers (`--extra-layers 8-14`) let the memory write where the model still has layers
to work with what it reads (the trained run writes into layers 15-29 only). Each new layer starts
as a fresh one would: its value map V at zero, so every adapter is exactly what it was, and its
input scale measured on real text. Its Adam moments start at zero beside the second moments of
the nearest trained layer, so its first updates are small and grow as its gradients agree (zero
second moments at a late step would make them several times the rate).

    python -m vllm_d2l.training.grow runs/token/checkpoint runs/wide/checkpoint --extra-keys 128 [--eps 0.15]
    python -m vllm_d2l.training.grow runs/token/checkpoint runs/deep/checkpoint --extra-layers 8-14
"""
from __future__ import annotations

import argparse
import itertools
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


def deeper_net(net, extra_layers: list[int], rms: torch.Tensor | None = None):
    """A copy of token network `net` that also targets `extra_layers`, with adapters exactly as
    before (the new layers' V is zero). `rms` [len(extra_layers), M]: the new layers' input scales
    (`new_layer_rms`); 1 if not given."""
    c = net.config
    if c.kind != "token":
        raise ValueError("adding target layers needs the token kind")
    extra = sorted(set(extra_layers))
    taken = sorted(set(extra) & set(c.layers))
    if not extra or taken:
        raise ValueError(f"extra layers must be new target layers; already targeted: {taken}")
    layers = sorted(set(c.layers) | set(extra))
    big = build(replace(c, target_layers=layers))
    old_rows = [layers.index(i) for i in c.layers]
    state = big.state_dict()  # fresh values everywhere; the trained layers' rows are copied over
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.shape[0] != len(c.layers) or state[name].shape[1:] != t.shape[1:]:
                raise ValueError(f"{name} {tuple(t.shape)} is not stacked by layer")
            state[name][old_rows] = t
        if rms is not None:
            state["in_rms"][[layers.index(i) for i in extra]] = rms.to(state["in_rms"].dtype)
    big.load_state_dict(state)
    return big


@torch.no_grad()
def new_layer_rms(net, extra_layers: list[int], model, tokenizer, texts: list[str]) -> torch.Tensor:
    """The input scale of each new layer's modules [len(extra_layers), M], measured as a fresh
    run measures it (`calibrate_`) on `texts` read by the frozen `model`."""
    from ..encoder import Encoded, Encoder
    probe = deeper_net(net, extra_layers)
    encoder = Encoder(model, probe.config.source_layers, probe.capture)
    parts, masks = [], []
    for text in texts:
        ids = torch.tensor([tokenizer(text)["input_ids"][:probe.config.chunk_tokens]])
        mask = torch.ones_like(ids, dtype=torch.bool)
        parts.append(encoder(ids, mask.long()))
        masks.append(mask)
    probe.calibrate_(*Encoded.concat(parts, masks))
    return probe.in_rms[[probe.config.layers.index(i) for i in sorted(set(extra_layers))]].clone()


def _moments(old: torch.Tensor, shape: torch.Size, rows: list[int], nearest: list[int], second: bool):
    """One Adam moment of a tensor grown by layers: the trained rows where they were; new rows at
    zero (first moment) or the nearest trained layer's (second moment)."""
    out = old.new_zeros(shape)
    out[rows] = old
    if second:
        new = [i for i in range(shape[0]) if i not in rows]
        out[new] = old[nearest]
    return out


def grow_checkpoint(src: Path, dst: Path, extra: int = 0, eps: float = 0.15, seed: int = 0,
                    layers: list[int] = (), rms: torch.Tensor | None = None):
    """A training checkpoint (weights, optimizer, state) with `extra` more key dimensions and/or
    the target `layers` added, in `dst`; returns the grown network."""

    net = Hypernet.load(src)
    big = grown_net(net, extra, eps, seed) if extra else net
    if layers:
        big = deeper_net(big, list(layers), rms)
    if big is net:
        raise ValueError("nothing to grow: give extra key dimensions or extra layers")
    state = json.loads((src / "state.json").read_text())
    # the optimizer's parameter indices follow its groups, each in the order of named_parameters
    names = [n for g in state["param_groups"] for n, p in big.named_parameters() if group_of(n, p) == g["name"]]
    if len(names) != sum(len(g["params"]) for g in state["param_groups"]):
        raise ValueError(f"{src}: its optimizer groups do not match this network's parameters")
    new, old = dict(big.named_parameters()), net.state_dict()
    all_layers, was = big.config.layers, net.config.layers
    rows = [all_layers.index(i) for i in was]  # where each trained layer sits in the grown stack
    nearest = [min(range(len(was)), key=lambda j: abs(was[j] - i)) for i in all_layers if i not in was]
    tensors, afresh = {}, set()
    for key, val in load_file(str(src / "optimizer.safetensors")).items():
        idx, moment = key.split(".", 1)
        name = names[int(idx)]
        if new[name].shape == old[name].shape:
            tensors[key] = val
        elif not extra:  # grown by layers only: every trained row keeps its moments
            tensors[key] = _moments(val, new[name].shape, rows, nearest, second=moment == "exp_avg_sq")
        else:  # a grown key space starts its moments afresh
            afresh.add(idx)
    scalars = {k: v for k, v in state["optimizer_scalars"].items() if k.split(".", 1)[0] not in afresh}
    tmp = dst.with_name(dst.name + ".tmp")
    big.save(tmp, dtype=torch.float32)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    grown = {"key_dim": net.config.key_dim, "extra": extra} | ({"layers": was, "extra_layers": sorted(layers)}
                                                                if layers else {})
    (tmp / "state.json").write_text(json.dumps({**state, "optimizer_scalars": scalars, "grown_from": grown},
                                               indent=2))
    dst.parent.mkdir(parents=True, exist_ok=True)
    swap_in(tmp, dst)
    return big


def _layer_list(text: str) -> list[int]:
    """"8-14" or "8,10,12" -> [8, ..., 14] / [8, 10, 12]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="a training checkpoint folder (runs/X/checkpoint)")
    p.add_argument("dst", type=Path, help="where the grown checkpoint goes (e.g. runs/Y/checkpoint)")
    p.add_argument("--extra-keys", type=int, default=0, help="key dimensions to add")
    p.add_argument("--eps", type=float, default=0.15, help="norm of the new query rows")
    p.add_argument("--extra-layers", type=_layer_list, default=[], help="target layers to add, e.g. 8-14")
    p.add_argument("--texts", type=int, default=32, help="passages of public-domain text that measure the new layers' input scale")
    args = p.parse_args(argv)
    rms = None
    if args.extra_layers:
        from ..base_model import ensure_default_model, load_model_and_tokenizer
        from ..datasets.corpora import iter_passages
        model, tok = load_model_and_tokenizer(ensure_default_model())
        texts = list(itertools.islice(iter_passages(128, 256, tok, seed=0), args.texts))
        rms = new_layer_rms(Hypernet.load(args.src), args.extra_layers, model, tok, texts)
    big = grow_checkpoint(args.src, args.dst, args.extra_keys, args.eps, layers=args.extra_layers, rms=rms)
    print(f"wrote {args.dst} (key_dim {big.config.key_dim}, layers {big.config.layers})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
