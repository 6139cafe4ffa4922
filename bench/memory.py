"""Memory per document: its adapter vs the KV cache the same document occupies in the prompt.

KV bytes are computed from the model config (2 × layers × kv_heads × head_dim × bytes × tokens)
and checked against vLLM's own accounting: while one request with the document in its prompt is
decoding (and nothing else runs), `vllm:kv_cache_usage_perc` × the cache's size in bytes
(`vllm:cache_config_info`) is the KV the engine holds for it, rounded up to whole blocks.
Adapter bytes are the true-rank factors the store keeps; vLLM's slot for any adapter is padded
to `--max-lora-rank`, a fixed cost per loaded adapter that does not grow with the document.
"""
from __future__ import annotations

import asyncio
import json
import re
import time

import httpx

from .load import chat_body
from .texts import DocumentSource, question

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
LONG_DOCUMENT = 131072  # a 128K-token document: computed only (beyond the default model's window)


def kv_bytes_per_token(hf_config, dtype_bytes: int) -> int:
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // hf_config.num_attention_heads
    return 2 * hf_config.num_hidden_layers * hf_config.num_key_value_heads * head_dim * dtype_bytes


def lora_slot_bytes(hf_config, rank: int, dtype_bytes: int, modules: list[str]) -> int:
    """Bytes of one vLLM LoRA slot padded to `rank` for `modules` on every layer."""
    from vllm_d2l.lora import module_shapes

    per_layer = sum(d_in + d_out for d_in, d_out in module_shapes(hf_config, modules).values())
    return rank * per_layer * hf_config.num_hidden_layers * dtype_bytes


def _metrics(text: str) -> tuple[float | None, dict]:
    usage, info = None, {}
    for line in text.splitlines():
        if line.startswith("vllm:kv_cache_usage_perc"):
            usage = float(line.rsplit(" ", 1)[1])
        elif line.startswith("vllm:cache_config_info{"):
            info = dict(re.findall(r'(\w+)="([^"]*)"', line))
    return usage, info


async def _kv_in_flight(base_url: str, body: dict, poll_s: float = 0.05) -> tuple[float, dict, int]:
    """Peak KV usage fraction seen while `body` runs, the cache config, and its prompt tokens."""
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as c:
        done = asyncio.Event()
        prompt_tokens = 0

        async def request() -> None:
            nonlocal prompt_tokens
            try:
                async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data: {"):
                            usage = json.loads(line[6:]).get("usage")
                            if usage:
                                prompt_tokens = usage["prompt_tokens"]
            finally:
                done.set()

        task = asyncio.create_task(request())
        peak, info = 0.0, {}
        while not done.is_set():
            usage, info = _metrics((await c.get("/metrics")).text)
            peak = max(peak, usage or 0.0)
            await asyncio.sleep(poll_s)
        await task
        return peak, info, prompt_tokens


def _check_with_vllm(base_url: str, base: str, source: DocumentSource, n: int, decode_tokens: int,
                     max_model_len: int, per_token: int) -> dict:
    """KV held for one request with an n-token document in its prompt, as vLLM accounts it.

    The gauge is sampled while the request decodes; a request too quick for one sample is retried
    with a longer answer."""
    peak, info, prompt = 0.0, {}, 0
    for _ in range(3):
        time.sleep(1.0)  # let earlier requests leave the cache accounting
        body = chat_body(base, [{"role": "user", "content": f"{source.document(n, 0, 'm')}\n\n"
                                                            f"Question: {question(0)}"}], decode_tokens, True)
        peak, info, prompt = asyncio.run(_kv_in_flight(base_url, body))
        if peak > 0 or n + 64 + 2 * decode_tokens > max_model_len:
            break
        decode_tokens *= 2
    cache_bytes = float(info.get("kv_cache_memory_bytes") or 0)
    blocks = int(info.get("num_gpu_blocks") or 0)
    block = int(info.get("block_size") or 0)
    used = round(peak * blocks)
    per_block = cache_bytes / blocks if blocks else 0.0
    return {"prompt_tokens": prompt, "decode_tokens": decode_tokens, "kv_usage_peak": peak, "kv_blocks_used": used,
            "kv_tokens_held_vllm": used * block, "kv_bytes_vllm": used * per_block if used else None,
            "kv_bytes_computed_prompt": per_token * (prompt + decode_tokens),
            "kv_bytes_computed_blocks": per_token * block * -(-(prompt + decode_tokens) // block) if block else None,
            "block_size": block, "num_blocks": blocks,
            "kv_bytes_per_token_vllm": per_block / block if block else None}


def long_document_row(rows: list[dict], per_token: int, max_lora_rank: int, full_rank, slot: int) -> dict:
    """Past the window, computed only: the served adapter at min(its full rank, the cap), in the
    bytes per rank the measured adapters of this generator have (its layers and modules)."""
    per_rank = rows[-1]["adapter_bytes"] / rows[-1]["adapter_rank"]
    full = full_rank(LONG_DOCUMENT)
    rank = min(max_lora_rank, full)
    return {"tokens": LONG_DOCUMENT, "kv_bytes_computed": per_token * LONG_DOCUMENT,
            "adapter_bytes": round(per_rank * rank), "adapter_rank": rank,
            "adapter_bytes_full_rank": round(per_rank * full), "adapter_full_rank": full, "vllm_slot_bytes": slot,
            "computed_only": True, "kv_over_adapter": per_token * LONG_DOCUMENT / (per_rank * rank)}


def memory_on(base_url: str, base: str, hf_config, dtype: str, source: DocumentSource,
              docs: dict[int, list[dict]], max_lora_rank: int, max_model_len: int,
              modules: list[str], full_rank, decode_tokens: int = 128) -> dict:
    """`full_rank(tokens)`: the rank the hypernetwork gives a document before any rank cap."""
    b = DTYPE_BYTES[dtype]
    per_token = kv_bytes_per_token(hf_config, b)
    slot = lora_slot_bytes(hf_config, max_lora_rank, b, modules)
    rows = []
    for n, recs in sorted(docs.items()):
        row = {"tokens": n, "kv_bytes_computed": per_token * n, "adapter_bytes": recs[0]["bytes"],
               "adapter_rank": recs[0]["rank"], "vllm_slot_bytes": slot}
        if n + 64 + decode_tokens <= max_model_len:
            row.update(_check_with_vllm(base_url, base, source, n, decode_tokens, max_model_len, per_token))
        row["kv_over_adapter"] = row["kv_bytes_computed"] / row["adapter_bytes"]
        rows.append(row)
    rows.append(long_document_row(rows, per_token, max_lora_rank, full_rank, slot))
    return {"kv_bytes_per_token": per_token, "dtype": dtype, "max_lora_rank": max_lora_rank,
            "target_modules": modules, "rows": rows}
