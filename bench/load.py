"""Bounded concurrent load against an OpenAI-compatible server, one batch at a time.

Every request asks for exactly `output_tokens` tokens (`min_tokens` = `max_tokens`, `ignore_eos`),
greedy, so arms differ only in what they are meant to differ in. A batch is bounded twice: a fixed
number of requests and a deadline after which no new request starts (those in flight finish, and
rates are computed over what completed). Streaming is used where time to first token is wanted;
it costs the API server a little per token, so arms compared with each other stream alike.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx

from .stats import percentile

Body = dict


@dataclass
class RequestResult:
    ok: bool
    latency_s: float
    ttft_s: float | None = None
    output_tokens: int = 0
    prompt_tokens: int = 0
    error: str | None = None


@dataclass
class Batch:
    """One measured batch: what the harness reports is computed from these fields only."""

    wall_s: float
    results: list[RequestResult] = field(default_factory=list)

    @property
    def completed(self) -> list[RequestResult]:
        return [r for r in self.results if r.ok]

    def summary(self) -> dict:
        done = self.completed
        lat = [r.latency_s for r in done]
        ttft = [r.ttft_s for r in done if r.ttft_s is not None]
        out_tokens = sum(r.output_tokens for r in done)
        return {
            "requests": len(self.results),
            "completed": len(done),
            "errors": len(self.results) - len(done),
            "first_error": next((r.error for r in self.results if not r.ok), None),
            "wall_s": self.wall_s,
            "requests_per_s": len(done) / self.wall_s if self.wall_s > 0 else 0.0,
            "output_tokens_per_s": out_tokens / self.wall_s if self.wall_s > 0 else 0.0,
            "output_tokens": out_tokens,
            "mean_prompt_tokens": sum(r.prompt_tokens for r in done) / len(done) if done else 0.0,
            "latency_p50_s": percentile(lat, 50),
            "latency_p95_s": percentile(lat, 95),
            "ttft_p50_s": percentile(ttft, 50),
            "ttft_p95_s": percentile(ttft, 95),
        }


def chat_body(model: str, messages: list[dict], output_tokens: int, stream: bool) -> Body:
    body = {"model": model, "messages": messages, "max_tokens": output_tokens, "min_tokens": output_tokens,
            "ignore_eos": True, "temperature": 0.0, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def _one(client: httpx.AsyncClient, body: Body) -> RequestResult:
    t0 = time.perf_counter()
    try:
        if not body.get("stream"):
            r = await client.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                return RequestResult(False, time.perf_counter() - t0, error=f"{r.status_code}: {r.text[:300]}")
            usage = r.json().get("usage") or {}
            return RequestResult(True, time.perf_counter() - t0, None, usage.get("completion_tokens", 0),
                                 usage.get("prompt_tokens", 0))
        ttft, usage = None, {}
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                text = (await r.aread()).decode(errors="replace")
                return RequestResult(False, time.perf_counter() - t0, error=f"{r.status_code}: {text[:300]}")
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                choices = event.get("choices") or []
                # the first event only announces the role; the first token comes after it
                if ttft is None and choices and "role" not in (choices[0].get("delta") or {}):
                    ttft = time.perf_counter() - t0
                if event.get("usage"):
                    usage = event["usage"]
        return RequestResult(True, time.perf_counter() - t0, ttft, usage.get("completion_tokens", 0),
                             usage.get("prompt_tokens", 0))
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        return RequestResult(False, time.perf_counter() - t0, error=f"{type(e).__name__}: {e}")


async def run_batch(base_url: str, make_body: Callable[[int], Body], requests: int, concurrency: int,
                    deadline_s: float, timeout_s: float = 300.0, on_done: Callable[[], None] | None = None) -> Batch:
    """`requests` requests, at most `concurrency` in flight; none starts after `deadline_s`."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) as client:
        queue = iter(range(requests))
        results: list[RequestResult] = []
        t0 = time.perf_counter()

        async def worker() -> None:
            for i in queue:
                if time.perf_counter() - t0 > deadline_s:
                    return
                results.append(await _one(client, make_body(i)))
                if on_done:
                    on_done()

        await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
        return Batch(time.perf_counter() - t0, results)


def measure(base_url: str, make_body: Callable[[int], Body], requests: int, concurrency: int,
            deadline_s: float, on_done: Callable[[], None] | None = None) -> Batch:
    return asyncio.run(run_batch(base_url, make_body, requests, concurrency, deadline_s, on_done=on_done))
