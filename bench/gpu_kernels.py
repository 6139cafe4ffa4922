"""GPU timing of the segmented LoRA kernels: true ranks vs padded to the max.

A pool of adapters with mixed ranks {8, 16, 64, 256, 1024} (assigned in
turn) serves batches spread over 1-64 distinct adapters.  The same kernels
run twice per case: at each adapter's own rank, and in padded mode where
every adapter costs the pool's maximum rank (what a padded stacked pool such
as vLLM's pays).  Each case reports the median time, the speed-up, and the
fraction of the HBM roofline: bytes of A, B and activations (x read, y read
and written) at the true ranks, divided by time and by the card's peak
bandwidth.  Before timing, every case is checked against the plain-torch
grouped path on the same device (both launch forms).

A third column times the graph-safe launch (a fixed-size ``SlotPlan`` and an
upper-bound grid, what vLLM's CUDA graphs capture).  On a GPU that launch is
also captured in a CUDA graph; the graph is replayed after the plan is
refreshed for a different batch (other slots, fewer tokens), checked against
the reference, and its replay time is reported.

Needs only torch and triton (run from a copy of the repo):

    python bench/gpu_kernels.py --out gpu_kernels.json
    TRITON_INTERPRET=1 python bench/gpu_kernels.py --smoke --out /tmp/smoke.json   # CPU check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

if "--smoke" in sys.argv and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import triton  # noqa: E402

from kernels.cpu_grouped import grouped_lora_linear  # noqa: E402
from kernels.layout import LoRABank, LoRASlice  # noqa: E402
from kernels.segments import SlotPlan, group_tokens  # noqa: E402
from kernels.triton_lora import triton_lora_linear  # noqa: E402

# Peak HBM bandwidth in bytes/s, matched against torch.cuda.get_device_name().
PEAK_BW = [
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),  # SXM (HBM3)
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),
]


def peak_bandwidth(name: str, override_tbps: float | None) -> float | None:
    if override_tbps:
        return override_tbps * 1e12
    for key, bw in PEAK_BW:
        if key.lower() in name.lower():
            return bw
    return None


def make_pool(ranks: list[int], r_max: int, d_in: int, d_out: int, dtype, device) -> LoRABank:
    """Stacked pool padded with zeros to ``r_max``, so padded mode is also exact."""
    n = len(ranks)
    a = torch.zeros(n, r_max, d_in, dtype=dtype, device=device)
    b = torch.zeros(n, d_out, r_max, dtype=dtype, device=device)
    for s, r in enumerate(ranks):
        a[s, :r].normal_(0, d_in ** -0.5)
        b[s, :, :r].normal_(0, r ** -0.5)
    return LoRABank.stacked(a, b, ranks)


def batch_slots(n_adapters: int, n_requests: int, tokens_per_request: int, device) -> torch.Tensor:
    """Requests assigned to adapters round-robin, interleaved like a real batch."""
    per_req = torch.arange(n_requests) % n_adapters
    return per_req.repeat_interleave(tokens_per_request).to(device)


def traffic_bytes(ranks_used: list[int], d_in: int, d_out: int, tokens: int, elt: int) -> int:
    """HBM bytes a perfect kernel must move: each used adapter's A and B once,
    x once, y read and written."""
    weights = sum(r * (d_in + d_out) for r in ranks_used) * elt
    return weights + tokens * d_in * elt + 2 * tokens * d_out * elt


def timer(device: torch.device):
    if device.type == "cuda":
        return lambda fn: triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") * 1e-3

    def cpu_time(fn) -> float:
        fn()
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)

    return cpu_time


def reference(y0: torch.Tensor, x: torch.Tensor, bank: LoRABank, slots: torch.Tensor) -> torch.Tensor:
    """The plain-torch grouped path in fp32, on the same device."""
    y_ref = y0.float()
    ref_bank = LoRABank.stacked(bank.a.float(), bank.b.float(), bank.ranks)
    grouped_lora_linear(y_ref, x.float(), [LoRASlice(ref_bank)], group_tokens(slots))
    return y_ref


def graph_replay(bank: LoRABank, x: torch.Tensor, y0: torch.Tensor, slots: torch.Tensor, bench) -> dict:
    """Capture the planned launch in a CUDA graph, then refresh the plan for
    another batch (slots shifted by one, the last quarter of rows without a
    mapping) and replay: error against the reference, and replay time."""
    plan = SlotPlan.allocate(x.shape[0], bank.num_adapters, 16, x.device)
    plan.update(slots)
    graph_bank = LoRABank.stacked(bank.a, bank.b)  # buffer rank on the host, true ranks on the device
    graph_bank.set_device_ranks(bank.ranks)
    sl, planned, y = [LoRASlice(graph_bank)], plan.for_rows(x.shape[0]), y0.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # compile and warm up outside the capture
        triton_lora_linear(y, x, sl, planned)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        triton_lora_linear(y, x, sl, planned)
    mapped = x.shape[0] - x.shape[0] // 4
    shifted = (slots[:mapped] + 1) % bank.num_adapters
    plan.update(shifted)
    y.copy_(y0)
    graph.replay()
    torch.cuda.synchronize()
    want = reference(y0, x, bank, torch.cat([shifted, torch.full_like(slots[mapped:], -1)]))
    err = (y.float() - want).abs().max().item()
    return dict(graph_replay_s=bench(graph.replay), graph_replay_err=err)


def run(args) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (interpreter)"
    peak = peak_bandwidth(gpu, args.peak_tbps) if device.type == "cuda" else None
    rank_set = [int(r) for r in args.ranks.split(",")]
    r_max = max(rank_set)
    elt = torch.finfo(dtype).bits // 8
    bench = timer(device)
    torch.manual_seed(0)

    max_adapters = max(int(n) for n in args.adapters.split(","))
    pool_ranks = [rank_set[i % len(rank_set)] for i in range(max_adapters)]
    bank = make_pool(pool_ranks, r_max, args.d_in, args.d_out, dtype, device)
    shapes = {
        "decode": (args.decode_requests, 1),
        "prefill": (args.prefill_requests, args.prefill_tokens),
    }
    rows = []
    header = (f"{'batch':8s} {'adapters':>8s} {'tokens':>7s} {'true us':>9s} {'padded us':>10s}"
              f" {'speedup':>8s} {'roof true':>10s} {'roof pad':>9s} {'max err':>8s}"
              f" {'plan us':>8s} {'graph us':>9s} {'graph err':>9s}")
    print(f"device: {gpu}; dtype {args.dtype}; d_in {args.d_in}, d_out {args.d_out};"
          f" ranks {rank_set} in turn, padded to {r_max};"
          f" peak {peak / 1e12 if peak else float('nan'):.2f} TB/s")
    print(header)
    for kind, (n_req, tok) in shapes.items():
        for n_ad in (int(n) for n in args.adapters.split(",")):
            slots = batch_slots(n_ad, max(n_req, n_ad), tok, device)
            seg = group_tokens(slots)
            T = slots.numel()
            x = torch.randn(T, args.d_in, dtype=dtype, device=device)
            y0 = torch.randn(T, args.d_out, dtype=dtype, device=device)
            sl = [LoRASlice(bank)]

            plan = SlotPlan.allocate(T, bank.num_adapters, 16, device)
            plan.update(slots)
            want = reference(y0, x, bank, slots)
            err = 0.0
            for grouping in (seg, plan.for_rows(T)):
                y_check = y0.clone()
                triton_lora_linear(y_check, x, sl, grouping)
                err = max(err, (y_check.float() - want).abs().max().item())

            y = y0.clone()
            t_true = bench(lambda: triton_lora_linear(y, x, sl, seg))
            t_pad = bench(lambda: triton_lora_linear(y, x, sl, seg, padded=True))
            t_plan = bench(lambda: triton_lora_linear(y, x, sl, plan.for_rows(T)))
            graph = graph_replay(bank, x, y0, slots, bench) if device.type == "cuda" else {}
            used = [pool_ranks[s] for s in sorted(set(slots.tolist()))]
            useful = traffic_bytes(used, args.d_in, args.d_out, T, elt)
            moved_pad = traffic_bytes([r_max] * len(used), args.d_in, args.d_out, T, elt)
            row = dict(
                batch=kind, adapters=n_ad, tokens=T, ranks=used,
                true_s=t_true, padded_s=t_pad, speedup=t_pad / t_true,
                useful_bytes=useful, padded_bytes=moved_pad, max_abs_err=err,
                roofline_true=(useful / t_true / peak) if peak else None,
                roofline_padded_useful=(useful / t_pad / peak) if peak else None,
                roofline_padded_moved=(moved_pad / t_pad / peak) if peak else None,
                plan_s=t_plan, **graph,
            )
            rows.append(row)

            def pct(v):
                return f"{100 * v:9.1f}%" if v is not None else f"{'n/a':>10s}"

            g_us = f"{graph['graph_replay_s'] * 1e6:9.1f}" if graph else f"{'n/a':>9s}"
            g_err = f"{graph['graph_replay_err']:9.1e}" if graph else f"{'n/a':>9s}"
            print(f"{kind:8s} {n_ad:8d} {T:7d} {t_true * 1e6:9.1f} {t_pad * 1e6:10.1f}"
                  f" {t_pad / t_true:7.2f}x {pct(row['roofline_true'])}"
                  f" {pct(row['roofline_padded_moved'])} {err:8.1e}"
                  f" {t_plan * 1e6:8.1f} {g_us} {g_err}", flush=True)
    return dict(
        device=gpu, peak_bytes_per_s=peak, dtype=args.dtype, d_in=args.d_in,
        d_out=args.d_out, rank_set=rank_set, padded_rank=r_max,
        torch=torch.__version__, triton=triton.__version__, rows=rows,
        note="roofline_true: useful bytes / true-rank time / peak; "
             "roofline_padded_moved: padded bytes / padded time / peak; "
             "plan_s: the graph-safe launch (fixed-size plan, upper-bound grid); "
             "graph_replay_*: that launch captured in a CUDA graph, replayed for another batch",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes; runs in the interpreter")
    ap.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default=None)
    ap.add_argument("--d-in", type=int, default=4096)
    ap.add_argument("--d-out", type=int, default=4096)
    ap.add_argument("--ranks", default="8,16,64,256,1024")
    ap.add_argument("--adapters", default="1,2,4,8,16,32,64")
    ap.add_argument("--decode-requests", type=int, default=64)
    ap.add_argument("--prefill-requests", type=int, default=16)
    ap.add_argument("--prefill-tokens", type=int, default=256)
    ap.add_argument("--peak-tbps", type=float, default=None, help="override the bandwidth table")
    args = ap.parse_args()
    if args.smoke:
        args.d_in, args.d_out, args.ranks, args.adapters = 48, 40, "1,8,20", "1,3"
        args.decode_requests, args.prefill_requests, args.prefill_tokens = 4, 2, 20
        args.dtype = args.dtype or "fp16"
    args.dtype = args.dtype or "bf16"
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
