"""Chat latency with and without document uploads in flight, on one server.

Internalization runs in the API server process (one worker thread) while the engine decodes in
its own process, so uploads should cost chats little; this measures how little. Each repeat runs
the same chat batch twice, once alone and once while `concurrency` uploaders post new documents
back to back until the batch ends (every upload is a new text: no cache hits).
"""
from __future__ import annotations

import asyncio
import time

import httpx
from tqdm.auto import tqdm

from .config import Plan
from .load import chat_body, run_batch
from .stats import over_repeats, spread
from .texts import DocumentSource, question


async def _with_uploads(base_url: str, make_body, plan: Plan, texts) -> tuple[dict, list[dict]]:
    stop = asyncio.Event()
    uploads: list[dict] = []
    started = 0

    async def uploader(c: httpx.AsyncClient) -> None:
        nonlocal started
        while not stop.is_set() and started < plan.uploads:
            started += 1
            text = next(texts)
            t0 = time.perf_counter()
            r = await c.post("/v1/documents", json={"text": text})
            rec = {"status": r.status_code, "client_seconds": time.perf_counter() - t0}
            if r.status_code == 200:
                rec["server_seconds"] = r.json().get("seconds")
            uploads.append(rec)

    async def chats() -> dict:
        try:
            return (await run_batch(base_url, make_body, plan.load.requests, plan.load.concurrency,
                                    plan.load.deadline_s)).summary()
        finally:
            stop.set()

    async with httpx.AsyncClient(base_url=base_url, timeout=600) as c:
        tasks = [uploader(c) for _ in range(plan.upload_concurrency)]
        chat, *_ = await asyncio.gather(chats(), *tasks)
    return chat, uploads


def uploads_on(base_url: str, source: DocumentSource, docs: dict[int, list[dict]], plan: Plan) -> dict:
    length = min(docs)
    ids = [r["id"] for r in docs[length]]
    make_body = lambda i: chat_body(ids[i % len(ids)], [{"role": "user", "content": question(i)}],  # noqa: E731
                                    plan.load.output_tokens, stream=True)
    counter = iter(range(10**9))
    texts = (source.document(plan.upload_tokens, k, "u") for k in counter)
    alone, busy, uploads = [], [], []
    asyncio.run(run_batch(base_url, make_body, plan.load.warmup_requests, plan.load.concurrency, plan.load.deadline_s))
    for r in tqdm(range(plan.load.repeats), desc="chats with/without uploads", unit="repeat"):
        first_alone = r % 2 == 0  # alternate which condition runs first
        for cond in ("alone", "uploads") if first_alone else ("uploads", "alone"):
            if cond == "alone":
                alone.append(asyncio.run(run_batch(base_url, make_body, plan.load.requests, plan.load.concurrency,
                                                   plan.load.deadline_s)).summary())
            else:
                chat, ups = asyncio.run(_with_uploads(base_url, make_body, plan, texts))
                busy.append(chat)
                uploads.extend(ups)
        tqdm.write(f"  chat p95 latency alone {alone[-1]['latency_p95_s']:.2f}s, "
                   f"with uploads {busy[-1]['latency_p95_s']:.2f}s ({len(uploads)} uploads so far)")
    ok = [u for u in uploads if u["status"] == 200]
    return {"chat_model": f"{len(ids)} document adapters of {length} tokens", "upload_tokens": plan.upload_tokens,
            "upload_concurrency": plan.upload_concurrency,
            "alone": over_repeats(alone), "with_uploads": over_repeats(busy),
            "batches": {"alone": alone, "with_uploads": busy},
            "uploads": {"count": len(uploads), "ok": len(ok),
                        "client_seconds": spread(u["client_seconds"] for u in ok),
                        "server_seconds": spread(u.get("server_seconds") for u in ok)}}


PRIORITY_ARMS = (("normal priority", "0"), ("lowered priority (default)", "19"))


def run_priority(model: str, served: str | None, hypernet, plan: Plan, work, log_dir, dtype: str | None,
                 spec_for) -> dict:
    """Chats under uploads on two servers that differ only in the internalization thread's
    niceness (`VLLM_D2L_INTERNALIZE_NICE`), one after the other with the same load."""
    from transformers import AutoTokenizer

    from .qa import upload_documents
    from .servers import server

    source = DocumentSource(AutoTokenizer.from_pretrained(model))
    arms = {}
    for label, nice in PRIORITY_ARMS:
        spec = spec_for(work / f"store-priority-{nice}", (("VLLM_D2L_INTERNALIZE_NICE", nice),))
        with server(spec, log_dir) as srv:
            docs = upload_documents(srv.base_url, source, (min(plan.lengths),), plan.docs_per_length)
            arms[label] = {"nice": int(nice), "spec": spec.describe(), **uploads_on(srv.base_url, source, docs, plan)}
    for arm in arms.values():
        a, b = arm["alone"]["latency_p95_s"]["p50"], arm["with_uploads"]["latency_p95_s"]["p50"]
        arm["p95_with_over_alone"] = b / a if a else None
    return {"arms": arms}
