"""A store of 10,000 adapters: list and describe latency, a cold adapter's first token against a
warm one's, and server start-up with the full store against an empty one.

The store is filled without the generator: one real adapter (the served model's shapes, the
server's generator fingerprint, so the server lists it as its own) is published once, and every
other folder hard-links its files under its own id and record. That takes seconds and no disk
beyond the records, and every folder passes the same checksums as an uploaded one.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from vllm_d2l.generator import fingerprint_of

from .adapters import synthetic_adapter
from .servers import ServerSpec, model_name, server
from .stats import percentile

LINKED = ("adapter_model.safetensors", "adapter_config.json", "vllm_d2l.json")


def fill_store(store_dir: Path, model: str, fingerprint: str, count: int, rank: int) -> list[str]:
    """`count` live adapters in `store_dir`, newest first as the store lists them; reuses a store
    already filled the same way."""
    from transformers import AutoConfig

    from vllm_d2l.serving.ids import document_id
    from vllm_d2l.serving.store import RECORD_NAME, USED_NAME, AdapterRecord, AdapterStore

    store = AdapterStore(store_dir)
    ids = [document_id(f"bench store adapter {i}", fingerprint) for i in range(count)]
    if store.count() == count and all(store.record(i) is not None for i in (ids[0], ids[-1])):
        return ids[::-1]
    weights = synthetic_adapter(AutoConfig.from_pretrained(model), rank, seed=7, base_model=model)
    now = int(time.time())
    first = AdapterRecord(id=ids[0], tokens=512, chunks=1, rank=rank, bytes=weights.nbytes, created=now - count,
                          fingerprint=fingerprint, base_model=model)
    store.put(weights, first)
    src = store.folder(ids[0])
    record = json.loads((src / RECORD_NAME).read_text())
    for i, doc_id in enumerate(ids[1:], 1):
        folder = store.folder(doc_id)
        folder.mkdir(exist_ok=True)
        for name in LINKED:
            if not (folder / name).exists():
                os.link(src / name, folder / name)
        rec = {**record, "id": doc_id, "created": now - count + i}
        (folder / RECORD_NAME).write_text(json.dumps(rec))
        (folder / USED_NAME).touch()
    return ids[::-1]


def _timed_get(http: httpx.Client, path: str, params: dict | None, calls: int) -> dict:
    times, size = [], 0
    for _ in range(calls):
        t0 = time.perf_counter()
        r = http.get(path, params=params)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        size = len(r.content)
    return {"p50_ms": 1000 * percentile(times, 50), "p95_ms": 1000 * percentile(times, 95), "bytes": size,
            "calls": calls}


def _ttft(http: httpx.Client, model: str) -> float:
    """Seconds to the first streamed token of a one-token chat."""
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 1,
            "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: ") and '"content"' in line:
                return time.perf_counter() - t0
    raise RuntimeError(f"no token streamed for {model}")


def latencies_on(base_url: str, ids: list[str], calls: int, cold: int) -> dict:
    """List/describe latencies and cold-vs-warm time to first token on a running server."""
    with httpx.Client(base_url=base_url, timeout=300) as http:
        mid = ids[len(ids) // 2]
        lists = {
            "documents?limit=100": _timed_get(http, "/v1/documents", {"limit": 100}, calls),
            "documents?limit=100&after=(middle)": _timed_get(http, "/v1/documents", {"limit": 100, "after": mid},
                                                             calls),
            "models?limit=100": _timed_get(http, "/v1/models", {"limit": 100}, calls),
            "documents/{id}": _timed_get(http, f"/v1/documents/{mid}", None, calls),
            "documents (all)": _timed_get(http, "/v1/documents", None, max(3, calls // 10)),
            "models (all)": _timed_get(http, "/v1/models", None, max(3, calls // 10)),
        }
        base = model_name(base_url)
        _ttft(http, base)  # warm-up
        rows = []
        for doc_id in ids[1:1 + cold]:  # never asked for: the resolver loads each from the store
            rows.append({"id": doc_id, "base_s": _ttft(http, base), "cold_s": _ttft(http, doc_id),
                         "warm_s": _ttft(http, doc_id)})
    cold_p50 = percentile([r["cold_s"] for r in rows], 50)
    warm_p50 = percentile([r["warm_s"] for r in rows], 50)
    return {"lists": lists, "ttft": {"rows": rows, "cold_p50_s": cold_p50, "warm_p50_s": warm_p50,
                                     "base_p50_s": percentile([r["base_s"] for r in rows], 50),
                                     "cold_over_warm": cold_p50 / warm_p50 if warm_p50 else None}}


def run_store(model: str, served: str | None, hypernet: Path, work: Path, log_dir: Path, dtype: str | None,
              count: int, rank: int, calls: int, cold: int) -> dict:
    fingerprint = fingerprint_of(hypernet, model)  # the one the server's generator will have
    t0 = time.monotonic()
    ids = fill_store(work / "store-10k", model, fingerprint, count, rank)
    fill_s = time.monotonic() - t0

    def spec(store: Path) -> ServerSpec:
        return ServerSpec(kind="ours", model=model, served_name=served, hypernet=str(hypernet), store=str(store),
                          max_lora_rank=max(8, rank), max_loras=4, dtype=dtype)

    with server(spec(work / "store-empty"), log_dir) as srv:
        empty_s = srv.startup_seconds
    with server(spec(work / "store-10k"), log_dir) as srv:
        full_s = srv.startup_seconds
        measured = latencies_on(srv.base_url, ids, calls, cold)
    return {"adapters": count, "rank": rank, "fill_seconds": fill_s,
            "startup": {"empty_s": empty_s, "full_s": full_s, "difference_s": full_s - empty_s},
            "server": spec(work / "store-10k").describe(), **measured}
