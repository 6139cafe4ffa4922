"""Server-side knobs, read from environment variables.

Environment variables (not flags) because vLLM's own launcher owns the command line: with
`vllm-d2l serve` the flags `--store`, `--hypernet`, `--task-hypernet`, `--max-document-tokens`, `--max-body-bytes`,
`--max-stored-documents` and `--over-rank` become these variables, and a user of the plain vLLM
launcher sets them directly.

Defaults: a 32 MiB body holds any English document under the token limit (a token is a few
bytes); 131,072 tokens (128 chunks) bounds the time and memory one upload may take; 10,000 stored
adapters bound the disk a store takes (each adapter's size is its record's `bytes`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..paths import default_store_dir

ENV_STORE = "VLLM_D2L_STORE"
ENV_HYPERNET = "VLLM_D2L_HYPERNET"
ENV_TASK_HYPERNET = "VLLM_D2L_TASK_HYPERNET"
ENV_MAX_BODY = "VLLM_D2L_MAX_BODY_BYTES"
ENV_MAX_TOKENS = "VLLM_D2L_MAX_DOCUMENT_TOKENS"
ENV_OVER_RANK = "VLLM_D2L_OVER_RANK"
ENV_MAX_STORED = "VLLM_D2L_MAX_STORED_DOCUMENTS"
ENV_EVICT_IDLE = "VLLM_D2L_EVICT_MIN_IDLE_S"
ENV_NICE = "VLLM_D2L_INTERNALIZE_NICE"
OVER_RANK_POLICIES = ("compress", "refuse")


@dataclass(frozen=True)
class Settings:
    store_dir: Path
    hypernet_dir: Path | None
    task_hypernet_dir: Path | None = None  # None: the packaged task checkpoint, else the document one
    max_body_bytes: int = 32 * 2**20
    max_document_tokens: int = 131072
    # "compress": truncated SVD down to --max-lora-rank (the adapter loses the least energy);
    # "refuse": a 400 that names the rank needed.
    over_rank: str = "compress"
    # LRU eviction keeps at most this many live adapters in the store (all replicas sharing a
    # store should use the same value: any of them may evict).
    max_stored_documents: int = 10_000
    # An adapter used less than this many seconds ago is never evicted: requests on *other*
    # replicas, and requests not yet admitted by this engine, are invisible to the in-use check.
    evict_min_idle_s: float = 30.0
    # Niceness of the internalization thread (and the torch threads it starts): the engine runs
    # chats in another process at normal priority, so on a machine without spare cores an upload
    # takes the cycles chats leave over instead of halving theirs. 0 keeps normal priority.
    internalize_nice: int = 19

    @classmethod
    def from_env(cls) -> "Settings":
        policy = os.environ.get(ENV_OVER_RANK, "compress").strip().lower()
        if policy not in OVER_RANK_POLICIES:
            raise ValueError(f"{ENV_OVER_RANK} must be one of {OVER_RANK_POLICIES}, got '{policy}'")
        hyper = os.environ.get(ENV_HYPERNET)
        return cls(
            store_dir=default_store_dir(),
            hypernet_dir=Path(hyper).expanduser() if hyper else None,
            task_hypernet_dir=Path(task).expanduser() if (task := os.environ.get(ENV_TASK_HYPERNET)) else None,
            max_body_bytes=_positive_int(ENV_MAX_BODY, cls.max_body_bytes),
            max_document_tokens=_positive_int(ENV_MAX_TOKENS, cls.max_document_tokens),
            over_rank=policy,
            max_stored_documents=_positive_int(ENV_MAX_STORED, cls.max_stored_documents),
            evict_min_idle_s=_non_negative_float(ENV_EVICT_IDLE, cls.evict_min_idle_s),
            internalize_nice=_int_in(ENV_NICE, cls.internalize_nice, 0, 19),
        )


def _positive_int(name: str, default: int) -> int:
    return _int_in(name, default, 1, None)


def _int_in(name: str, default: int, lo: int, hi: int | None) -> int:
    """The variable `name` as an integer in lo..hi (no upper bound when hi is None), else `default`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        upper = f" and at most {hi}" if hi is not None else ""
        raise ValueError(f"{name} must be an integer of at least {lo}{upper}, got {raw}")
    return value


def _non_negative_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = float(raw)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {raw}")
    return value

