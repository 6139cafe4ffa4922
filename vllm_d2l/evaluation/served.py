"""`vllm-d2l eval --server URL`: the same question sets, asked through a running server.

The in-process evaluation (`qa.evaluate`) runs the Hugging Face model with the adapter hooked in;
this one uploads each document to `POST /v1/documents` and asks through `/v1/chat/completions`
with `"model": "doc-…"`, so the figures cover what users get: the server's own internalization,
storage, registration in vLLM and batched LoRA kernels. The four conditions are the same:
base model with the bare question (none), the document in the prompt (context), the document's
adapter (adapter) and another document's adapter (other). Greedy decoding throughout.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from ..prompts import context_messages, question_messages
from .qa import CONDITIONS, _bar, score, summarize


class ServedClient:
    """The few calls evaluation needs, with errors that name the server's own message."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 600.0):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def _json(self, method: str, path: str, **kwargs) -> dict:
        r = self.http.request(method, path, **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    def base_model(self) -> str:
        models = [m["id"] for m in self._json("GET", "/v1/models")["data"]]
        base = [m for m in models if not m.startswith(("doc-", "task-"))]
        if not base:
            raise RuntimeError(f"the server lists no base model (models: {models[:5]})")
        return base[0]

    def upload(self, text: str, name: str | None = None) -> dict:
        body = {"text": text, **({"name": name} if name else {})}
        return self._json("POST", "/v1/documents", json=body)

    def chat(self, model: str, messages: list[dict], max_tokens: int) -> str:
        body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
        out = self._json("POST", "/v1/chat/completions", json=body)
        return (out["choices"][0]["message"]["content"] or "").strip()


def evaluate_served(client: ServedClient, records: list[dict], conditions: Sequence[str] = CONDITIONS,
                    max_new_tokens: int = 24, concurrency: int = 8, progress: bool = False) -> dict:
    """Answer every question of `records` through the server under each condition."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown conditions {unknown}; known: {', '.join(CONDITIONS)}")
    if "other" in conditions and len(records) < 2:
        raise ValueError("the 'other' condition needs at least two documents")
    base = client.base_model()
    seconds: dict[str, float] = {}
    ids: list[str] = []
    if {"adapter", "other"} & set(conditions):
        t0 = time.perf_counter()
        ids = [client.upload(r["text"], name=r.get("id"))["id"] for r in records]
        seconds["upload"] = time.perf_counter() - t0
    items = [{"id": r.get("id", str(n)), "genre": r.get("genre"), "length": r.get("length"), "type": qa.get("type"),
              "q": qa["q"], "a": qa["a"], "doc": n, "outputs": {}, "correct": {}, "f1": {}}
             for n, r in enumerate(records) for qa in r["qa"]]
    bar = _bar(len(items) * len(conditions), "asking the server", progress)

    def ask(item: dict, cond: str) -> str:
        """The answer; a refused request (e.g. a document in the prompt longer than the server's
        window) is recorded on the item and scored as wrong, and the evaluation goes on."""
        try:
            return _ask(item, cond)
        except RuntimeError as e:
            item.setdefault("errors", {})[cond] = str(e)
            return ""

    def _ask(item: dict, cond: str) -> str:
        n = item["doc"]
        if cond == "context":
            return client.chat(base, context_messages(records[n]["text"], item["q"]), max_new_tokens)
        model = {"none": base, "adapter": ids[n] if ids else base,
                 "other": ids[(n + len(records) // 2) % len(records)] if ids else base}[cond]
        return client.chat(model, question_messages(item["q"]), max_new_tokens)

    with ThreadPoolExecutor(concurrency) as pool:
        for cond in conditions:
            t0 = time.perf_counter()
            for item, text in zip(items, pool.map(lambda i, c=cond: ask(i, c), items)):
                item["outputs"][cond] = text
                score(item, cond)
                if bar:
                    bar.update(1)
            seconds[cond] = time.perf_counter() - t0
    if bar:
        bar.close()
    for i in items:
        del i["doc"]
    summaries = summarize(items, conditions)
    for c in conditions:
        summaries["conditions"][c]["errors"] = sum(c in i.get("errors", {}) for i in items)
    return {
        "n_docs": len(records), "n_questions": len(items), **summaries, "adapters": ids,
        "settings": {"max_new_tokens": max_new_tokens, "greedy": True, "scoring": "normalised answer contained",
                     "path": "served: POST /v1/documents, /v1/chat/completions"},
        "seconds": {k: round(v, 2) for k, v in seconds.items()}, "items": items,
    }
