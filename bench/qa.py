"""Question answering about documents of several lengths: the adapter vs the document in the prompt
vs no document, on one server, interleaved.

Arms, per length L: `adapter L` (the question alone, `model` = the document's adapter; request i
uses adapter i mod n), `context L` (a new document in every prompt: no prefix-cache help), and
`context L repeated` (one document in every prompt: the prefix cache's best case); once: `base`
(the question alone, base model). In-context arms run only where the document, the question and
the answer fit the server's window. All arms stream, for time to first token.
"""
from __future__ import annotations

import time

import httpx
from tqdm.auto import tqdm

from .arms import run_arms
from .config import Plan
from .load import chat_body
from .stats import paired_ratio, spread
from .texts import DocumentSource, question

QUESTION_ROOM = 64  # tokens for the chat template and the question


def upload_documents(base_url: str, source: DocumentSource, lengths: tuple[int, ...], per_length: int,
                     tag: str = "a") -> dict[int, list[dict]]:
    """Upload `per_length` distinct documents of each length; one at a time, so each upload's
    latency is the internalization's own (plus HTTP), nothing queued behind it."""
    out: dict[int, list[dict]] = {}
    with httpx.Client(base_url=base_url, timeout=600) as c, \
            tqdm(total=len(lengths) * per_length, desc="uploading documents", unit="doc") as bar:
        for n in lengths:
            out[n] = []
            for k in range(per_length):
                text = source.document(n, k, tag)
                t0 = time.perf_counter()
                r = c.post("/v1/documents", json={"text": text, "name": f"bench-{n}-{k}"})
                if r.status_code != 200:
                    raise RuntimeError(f"upload of a {n}-token document failed: {r.status_code} {r.text[:300]}")
                rec = r.json()
                rec["client_seconds"] = time.perf_counter() - t0
                out[n].append(rec)
                bar.update()
    return out


def upload_summary(docs: dict[int, list[dict]]) -> dict:
    """Internalization latency and adapter size per length, as the server reported them."""
    rows = {}
    for n, recs in docs.items():
        rows[str(n)] = {"server_seconds": spread(r.get("seconds") for r in recs),
                        "client_seconds": spread(r["client_seconds"] for r in recs),
                        "tokens": spread(r["tokens"] for r in recs), "rank": spread(r["rank"] for r in recs),
                        "bytes": spread(r["bytes"] for r in recs), "chunks": spread(r["chunks"] for r in recs),
                        "compressed": any(r.get("compressed") for r in recs)}
    return rows


def qa_on(base_url: str, base: str, source: DocumentSource, docs: dict[int, list[dict]], plan: Plan) -> dict:
    out_tokens = plan.load.output_tokens

    def ask(model: str, doc: str | None, i: int) -> dict:
        content = question(i) if doc is None else f"{doc}\n\nQuestion: {question(i)}"
        return chat_body(model, [{"role": "user", "content": content}], out_tokens, stream=True)

    arms = {"base": lambda i: ask(base, None, i)}
    skipped = []
    for n, recs in docs.items():
        ids = [r["id"] for r in recs]
        arms[f"adapter {n}"] = (lambda ids: lambda i: ask(ids[i % len(ids)], None, i))(ids)
        if n + QUESTION_ROOM + out_tokens > plan.max_model_len:
            skipped.append(n)
            continue
        arms[f"context {n}"] = (lambda n: lambda i: ask(base, source.document(n, i, "c"), i))(n)
        repeated = source.document(n, 0, "r")
        arms[f"context {n} repeated"] = (lambda d: lambda i: ask(base, d, i))(repeated)
    res = run_arms(base_url, arms, plan.load, "documents")
    res["context_skipped_lengths"] = skipped
    res["ratios"] = {}
    for n in docs:
        a = res["arms"][f"adapter {n}"]
        for other in (f"context {n}", f"context {n} repeated", "base"):
            if other in res["arms"]:
                res["ratios"][f"adapter {n} / {other} (req/s)"] = paired_ratio(a, res["arms"][other], "requests_per_s")
    return res
