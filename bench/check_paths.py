"""Same greedy tokens from every LoRA path: ours eager, ours compiled, and vLLM's stock ops.

    python -m bench.check_paths --model DIR [--dtype float32]

A correctness check to run next to the throughput figures (a faster path that changes outputs is
not a result). Three strong rank-8 adapters on q/gate/down, two LoRA slots (so vLLM rotates
adapters through full slots), three prompts: each request alone, then all of them mixed and
concurrent. Ours must give the same tokens alone and mixed, compiled and eager; vLLM's stock ops
must agree with ours for adapter requests sent alone (stock mixes up base rows once all slots are
full, the bug our path fixes, so base rows are not compared with it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import torch

from .adapters import synthetic_adapter
from .servers import ServerSpec, server
from .sweep import load_adapters

PROMPTS = ("Paris is the capital of", "The quick brown fox", "A document becomes")


def strong_adapters(model: str, folder: Path, count: int = 3) -> list[Path]:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model)
    paths = []
    for k in range(count):
        w = synthetic_adapter(cfg, 8, seed=k, modules=("down_proj", "q_proj", "gate_proj"), dtype=torch.float32)
        w = type(w)(w.a, {n: t * 300 for n, t in w.b.items()}, w.base_model, w.meta)  # visible on any model
        paths.append(w.save_peft(folder / f"strong-{k}"))
    return paths


def tokens(kind: str, model: str, dtype: str | None, paths: list[Path], work: Path) -> tuple[dict, dict]:
    spec = ServerSpec(kind=kind, model=model, store=str(work / f"store-{kind}"), max_loras=2, max_lora_rank=8,
                      dtype=dtype, max_model_len=512, log_stats=False)
    with server(spec, work / "logs") as srv, httpx.Client(base_url=srv.base_url, timeout=120) as c:
        names = load_adapters(srv.base_url, paths)
        base = c.get("/v1/models").json()["data"][0]["id"]

        def run(job: tuple[str, str]) -> tuple[int, ...]:
            r = c.post("/v1/completions", json={"model": job[0], "prompt": job[1], "max_tokens": 12,
                                                "temperature": 0, "ignore_eos": True, "return_token_ids": True})
            r.raise_for_status()
            return tuple(r.json()["choices"][0]["token_ids"])

        jobs = [(m, p) for m in [base, *names] for p in PROMPTS]
        alone = {j: run(j) for j in jobs}
        with ThreadPoolExecutor(len(jobs)) as pool:
            mixed = dict(zip(jobs, pool.map(run, jobs)))
        return alone, mixed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--dtype", default="float32")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vllm-d2l-check-"))
    paths = strong_adapters(args.model, work / "adapters")
    got = {k: tokens(k, args.model, args.dtype, paths, work) for k in ("ours", "ours-compiled", "stock")}
    (a, m), (ac, mc), (st, _) = got["ours"], got["ours-compiled"], got["stock"]
    base = next(iter(a))[0]
    checks = {
        "adapters change the output": all(a[j] != a[(base, j[1])] for j in a if j[0] != base),
        "ours: mixed == alone": m == a,
        "ours compiled: mixed == alone": mc == ac,
        "ours compiled == ours eager": ac == a,
        "ours == stock (adapter requests alone)": all(a[j] == st[j] for j in a if j[0] != base),
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
