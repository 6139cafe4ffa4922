"""How well a token generator's memory reads back what it stored, as it fills.

A document's memory in each layer is a rank-k map from keys to values. Reading it with a stored
token's own key gives back that token's value only as far as the other tokens allow: once there
are more tokens than key dimensions they interfere. This measures it without any question: the
first `probe` tokens of a document are stored together with n - probe more tokens of other text,
and for each probe token the read-back (its key as stored, centred, through the whitened memory,
before V) is compared
with its own value (cosine) and with the other probe tokens' values. Falling own-cosine as n grows
is the memory's capacity running out; it is what a wider key space (`key_dim`) buys.

    python -m vllm_d2l.evaluation.fidelity --hypernet runs/token/best/hypernet --out results/eval/fidelity.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


LENGTHS = (40, 80, 120, 160, 240, 480, 960)


@torch.no_grad()
def read_back(net, enc, mask: torch.Tensor, probe: int) -> dict[str, list[float]]:
    """Per layer, the mean cosine of each of the first `probe` tokens' read-back with its own
    value ("own") and with the other probe tokens' values ("other"), for one encoded document
    (enc from the generator's encoder, batch of one)."""
    c = net.config
    if c.kind != "token" or c.memory_read != "ridge":
        raise ValueError("read-back is defined for the token kind with the whitened read")
    mem = net.memory(enc, mask)
    s, n = net.read_map(mem)  # [1, M, L, H, k], [1, M, L, 1, 1]
    m_in = enc.inputs.float()[0]  # [M*L, T, d_in]
    shift = 1 if c.value_from == "next" else 0
    h = net.values_from(enc.hidden.float()[:, :, shift:])[0]  # [L, T - shift, H (2H)], as stored
    h = h - h.mean(1, keepdim=True)  # the read of centred keys answers with centred values
    own, other = [], []
    for i in range(len(c.layers)):
        keys = m_in[i, :probe] @ (net.write_keys(c.target_modules[0])[i] / (net.in_rms[i, 0] * c.key_dim ** 0.5)).T
        if c.center_keys:  # [P, k], as stored: a query's part along the mean key reads the same for all
            keys = keys - mem["sk"][0, 0, i] / n[0, 0, i, 0]
        read = torch.nn.functional.normalize(keys @ s[0, 0, i].T, dim=-1)  # [P, H]
        sim = read @ torch.nn.functional.normalize(h[i, :probe], dim=-1).T  # [P, P]
        own.append(sim.diagonal().mean().item())
        other.append(((sim.sum() - sim.diagonal().sum()) / (probe * probe - probe)).item())
    return {"own": own, "other": other}


def measure(generator, first: str, filler: list[str], lengths=LENGTHS, probe: int = 40) -> dict:
    """`first`'s first `probe` tokens stored with more and more of `filler` after them."""
    ids = generator.tokenize(first)
    rest = [t for text in filler for t in generator.tokenize("\n\n" + text)]
    if len(ids) <= probe or len(ids) + len(rest) < max(lengths):
        raise ValueError(f"need a first document of more than {probe} tokens and {max(lengths)} tokens in all")
    # the encoder is causal: a prefix of one long encoding is what encoding the prefix alone gives
    x = torch.tensor([(ids + rest)[:max(lengths)]])
    full = generator.encoder(x, torch.ones_like(x))
    rows = []
    for n in lengths:
        t = max(n, probe + 1)
        enc = full.cut(slice(None), t)
        r = read_back(generator.hypernet, enc, torch.ones(1, t, dtype=torch.bool), probe)
        rows.append({"tokens": t, "own": sum(r["own"]) / len(r["own"]),
                     "other": sum(r["other"]) / len(r["other"]), "own_by_layer": r["own"]})
    return {"probe": probe, "key_dim": generator.hypernet.config.key_dim, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    from ..datasets.jsonl import load_handwritten
    from ..generator import Generator

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hypernet", nargs="+", default=[None], help="one or more hypernetwork folders (default: packaged)")
    p.add_argument("--doc", type=int, default=0, help="which hand-written document holds the probe tokens")
    p.add_argument("--probe", type=int, default=40)
    p.add_argument("--out", type=Path)
    p.add_argument("--plot", type=Path)
    args = p.parse_args(argv)
    texts = [r["text"] for r in load_handwritten()]
    first, filler = texts[args.doc], texts[:args.doc] + texts[args.doc + 1:]
    torch.set_num_threads(1)
    results = {}
    generator = None
    for folder in args.hypernet:
        generator = Generator.load(folder, encoder_dtype=torch.float32) if generator is None or folder is None \
            else generator.with_hypernet(folder)
        res = measure(generator, first, filler, probe=args.probe)
        results[str(folder or "packaged")] = res
        for row in res["rows"]:
            print(f"{folder or 'packaged'}  k={res['key_dim']}  tokens {row['tokens']:4d}  "
                  f"own {row['own']:.3f}  other {row['other']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    if args.plot:
        from .plots import fidelity_chart
        fidelity_chart(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
