"""Output tok/s against the number of distinct adapters in flight, vs base traffic, per server kind.

Issue 5's CPU end-to-end comparison (base vs 1/2/4/8 rank-8 adapters; our grouped path vs vLLM's
stock CPU LoRA ops; base traffic on a LoRA server vs a plain one) and issue 6's adapters-in-flight
curve come from the same batches. Adapters are synthetic rank-`r` PEFT folders on `down_proj`
(the stock figures were measured that way), loaded with vLLM's `/v1/load_lora_adapter`. Request
i of an arm with n adapters uses adapter i mod n, so all n are in every batch.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import httpx

from .arms import run_arms
from .config import Plan
from .load import chat_body
from .servers import ServerSpec, model_name, server
from .stats import paired_ratio, ratio
from .texts import question

ARM_BASE = "base"


def arm_name(n: int) -> str:
    return f"{n} adapter" + ("s" if n != 1 else "")


def load_adapters(base_url: str, paths: list[Path]) -> list[str]:
    names = []
    with httpx.Client(base_url=base_url, timeout=120) as c:
        for p in paths:
            name = "bench-" + p.name
            r = c.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(p)})
            if r.status_code != 200 and "already" not in r.text:
                raise RuntimeError(f"loading {p} failed: {r.status_code} {r.text[:300]}")
            names.append(name)
    return names


def sweep_on(base_url: str, lora: bool, counts: tuple[int, ...], plan: Plan, adapter_paths: list[Path],
             desc: str) -> dict:
    """Base traffic and, on a LoRA server, traffic over 1..n distinct adapters; one server."""
    base = model_name(base_url)
    messages = lambda i: [{"role": "user", "content": question(i)}]  # noqa: E731
    arms = {ARM_BASE: lambda i: chat_body(base, messages(i), plan.load.output_tokens, stream=False)}
    if lora and counts:
        names = load_adapters(base_url, adapter_paths[:max(counts)])
        for n in counts:
            arms[arm_name(n)] = (lambda n: lambda i: chat_body(names[i % n], messages(i),
                                                                plan.load.output_tokens, stream=False))(n)
    out = run_arms(base_url, arms, plan.load, desc)
    out["ratios_to_base"] = {a: paired_ratio(out["arms"][a], out["arms"][ARM_BASE]) for a in arms if a != ARM_BASE}
    return out


def spec_for(kind: str, model: str, served: str | None, plan: Plan, store: Path,
             dtype: str | None = None) -> ServerSpec:
    counts = plan.stock_counts if kind == "stock" else plan.adapter_counts
    return ServerSpec(kind=kind, model=model, served_name=served, store=str(store),
                      max_model_len=2048 if not plan.quick else 1024, max_num_seqs=max(32, plan.load.concurrency),
                      max_loras=max(counts) if counts else 1, max_lora_rank=plan.adapter_rank, log_stats=False,
                      dtype=dtype)


def run_sweep(model: str, served: str | None, plan: Plan, work: Path, log_dir: Path, dtype: str | None = None,
              on_server: Callable[[dict], None] | None = None) -> dict:
    """One server per kind in `plan.sweep_servers`, started and stopped in turn; `on_server` gets
    the results so far after each (a long run that is cut short keeps what it measured)."""
    from .adapters import write_synthetic_adapters

    counts_max = max(plan.adapter_counts + plan.stock_counts)
    paths = write_synthetic_adapters(work / "adapters", model, plan.adapter_rank, counts_max)
    servers = {}
    for kind in plan.sweep_servers:
        spec = spec_for(kind, model, served, plan, work / f"store-{kind}", dtype)
        t0 = time.monotonic()
        with server(spec, log_dir) as srv:
            counts = plan.stock_counts if kind == "stock" else plan.adapter_counts
            res = sweep_on(srv.base_url, spec.lora, counts if spec.lora else (), plan, paths, f"adapters[{kind}]")
            res["startup_s"] = srv.startup_seconds
        res["spec"] = spec.describe()
        res["seconds"] = time.monotonic() - t0
        servers[kind] = res
        if on_server:
            on_server({"servers": servers, "comparisons": compare(servers)})
    return {"servers": servers, "comparisons": compare(servers)}


def compare(servers: dict) -> dict:
    """The issue-5 targets as numbers: adapters vs base on the same server, LoRA server vs plain."""
    out = {}
    for kind in ("ours", "ours-compiled", "stock"):
        s = servers.get(kind)
        if not s:
            continue
        for arm, r in s["ratios_to_base"].items():
            out[f"{kind}: {arm} / base on the same server"] = r["p50"]
        for plain in ("plain", "plain-eager"):
            if plain in servers:
                p = servers[plain]["arms"][ARM_BASE]
                out[f"{kind}: base / {plain} base"] = ratio(s["arms"][ARM_BASE], p)
                four = s["arms"].get(arm_name(4))
                if four:
                    out[f"{kind}: 4 adapters / {plain} base"] = ratio(four, p)
    for mine in ("ours", "ours-compiled"):
        if mine in servers and "stock" in servers:
            for arm in servers["stock"]["arms"]:
                if arm in servers[mine]["arms"]:
                    out[f"{mine} / stock: {arm}"] = ratio(servers[mine]["arms"][arm], servers["stock"]["arms"][arm])
    return out
