"""CPU LoRA layer cost: vLLM's own punica ops vs the grouped path.

Times one decoder layer's worth of LoRA work for SmolLM2-135M shapes (hidden
576, intermediate 1536, q/k/v, o, gate/up, down) through the two punica
wrappers exactly as vLLM's layers call them (``update_metadata`` once per
step, then ``add_lora_linear`` per module), both in the same process and
interleaved, on one thread (vLLM binds the CPU model to one OpenMP thread).

    python bench/cpu_lora_ops.py [--dtype bf16] [--pool-ranks 8,64] [--repeats 5] [--json out.json]

Figures are medians over repeats; the ratio is stock time / grouped time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vllm.lora.layers import LoRAMapping  # noqa: E402
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU  # noqa: E402

from vllm_d2l.vllm_punica import GroupedPunicaWrapperCPU  # noqa: E402

HIDDEN, INTER, KV = 576, 1536, 192  # SmolLM2-135M: 9 heads / 3 KV heads of 64
# module -> (input width, output slices)
MODULES = {
    "qkv_proj": (HIDDEN, (HIDDEN, KV, KV)),
    "o_proj": (HIDDEN, (HIDDEN,)),
    "gate_up_proj": (HIDDEN, (INTER, INTER)),
    "down_proj": (INTER, (HIDDEN,)),
}


@dataclass
class Scenario:
    name: str
    token_ids: list[int]  # adapter id per token, 0 = base
    prompt_ids: list[int]  # adapter id per sampled row


def scenarios(n_adapters: int) -> list[Scenario]:
    ids = list(range(1, n_adapters + 1))

    def requests(n_req: int, tokens: int, base_every: int = 0) -> Scenario:
        per_req = [
            0 if base_every and r % base_every == base_every - 1 else ids[r % len(ids)]
            for r in range(n_req)
        ]
        return [i for i in per_req for _ in range(tokens)], per_req

    out = []
    for name, (n_req, tok, base_every) in {
        "decode 16 req, 4 adapters": (16, 1, 0),
        "decode 16 req, adapters+base": (16, 1, 4),
        "decode 16 req, base only": (16, 1, 1),
        "prefill 4x128, 4 adapters": (4, 128, 0),
        "prefill 16x32, adapters+base": (16, 32, 4),
    }.items():
        token_ids, prompt_ids = requests(n_req, tok, base_every)
        out.append(Scenario(name, token_ids, prompt_ids))
    return out


def make_buffers(n_slots: int, pool_rank: int, rank: int, dtype: torch.dtype, seed: int = 0):
    """vLLM-shaped stacked buffers, every slot holding a rank-``rank`` adapter."""
    g = torch.Generator().manual_seed(seed)
    layers = {}
    for name, (d_in, outs) in MODULES.items():
        a_list, b_list = [], []
        for d_out in outs:
            a = torch.zeros(n_slots, 1, pool_rank, d_in, dtype=dtype)
            b = torch.zeros(n_slots, 1, d_out, pool_rank, dtype=dtype)
            a[:, :, :rank] = (torch.randn(n_slots, 1, rank, d_in, generator=g) * 0.05).to(dtype)
            b[:, :, :, :rank] = (torch.randn(n_slots, 1, d_out, rank, generator=g) * 0.05).to(dtype)
            a_list.append(a)
            b_list.append(b)
        layers[name] = (tuple(a_list), tuple(b_list), outs)
    return layers


def make_wrapper(cls, sc: Scenario, n_slots: int):
    w = cls(max_num_batched_tokens=4096, max_batches=256, device="cpu")
    mapping = LoRAMapping(tuple(sc.token_ids), tuple(sc.prompt_ids), is_prefill=True)
    # vLLM's v1 runner always marks the mapping as prefill (sgmv ops on CPU)
    w.update_metadata(mapping, list(range(1, n_slots + 1)), n_slots + 1, 49152)
    return w


def one_layer(w, layers, x_by_width, ys) -> None:
    for name, (a, b, outs) in layers.items():
        d_in = MODULES[name][0]
        w.add_lora_linear(ys[name], x_by_width[d_in], a, b, 1.0, outs)


def time_call(fn, repeats: int, inner: int) -> float:
    """Median seconds per call over ``repeats`` batches of ``inner`` calls."""
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def run(dtype: torch.dtype, pool_ranks: list[int], rank: int, n_adapters: int,
        repeats: int) -> list[dict]:
    rows = []
    for pool_rank in pool_ranks:
        layers = make_buffers(n_adapters, pool_rank, rank, dtype)
        for sc in scenarios(n_adapters):
            n = len(sc.token_ids)
            g = torch.Generator().manual_seed(1)
            x_by_width = {d: torch.randn(n, d, generator=g).to(dtype) for d in (HIDDEN, INTER)}
            ys = {k: torch.zeros(n, sum(v[1]), dtype=dtype) for k, v in MODULES.items()}
            stock = make_wrapper(PunicaWrapperCPU, sc, n_adapters)
            ours = make_wrapper(GroupedPunicaWrapperCPU, sc, n_adapters)
            inner = max(1, 2000 // n)
            # interleave the two so drift in machine load hits both alike
            t_stock, t_ours = [], []
            for _ in range(3):
                t_stock.append(time_call(lambda: one_layer(stock, layers, x_by_width, ys),
                                         repeats, inner))
                t_ours.append(time_call(lambda: one_layer(ours, layers, x_by_width, ys),
                                        repeats, inner))
            ts, to = statistics.median(t_stock), statistics.median(t_ours)
            meta_s = time_call(lambda: make_wrapper(PunicaWrapperCPU, sc, n_adapters), 5, 5)
            meta_o = time_call(lambda: make_wrapper(GroupedPunicaWrapperCPU, sc, n_adapters), 5, 5)
            rows.append(dict(
                scenario=sc.name, tokens=n, pool_rank=pool_rank, rank=rank,
                stock_us=ts * 1e6, grouped_us=to * 1e6, ratio=ts / to,
                stock_meta_us=meta_s * 1e6, grouped_meta_us=meta_o * 1e6,
            ))
            print(f"{sc.name:32s} {n:5d} {pool_rank:5d} {ts * 1e6:10.0f} {to * 1e6:10.0f}"
                  f" {ts / to:6.2f}x {meta_s * 1e6:9.0f} {meta_o * 1e6:9.0f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--pool-ranks", default="8",
                    help="--max-lora-rank values, e.g. 8,64 (64 takes minutes: stock is slow there)")
    ap.add_argument("--rank", type=int, default=8, help="true rank of every adapter")
    ap.add_argument("--adapters", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.dtype}, "
          f"{args.adapters} adapters of rank {args.rank}; one layer = qkv+o+gate_up+down")
    print(f"{'scenario':32s} {'tok':>5s} {'pool':>5s} {'stock us':>10s} {'ours us':>10s}"
          f" {'ratio':>7s} {'meta st':>9s} {'meta ours':>9s}")
    rows = run(dtype, [int(r) for r in args.pool_ranks.split(",")], args.rank,
               args.adapters, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(dict(dtype=args.dtype, threads=args.threads,
                                             rows=rows), indent=2))


if __name__ == "__main__":
    main()
