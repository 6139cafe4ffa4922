"""Server-side knobs, read from environment variables.

Environment variables (not flags) because vLLM's own launcher owns the command line: with
`vllm-d2l serve` the flags `--store`, `--hypernet`, `--max-document-tokens`, `--max-body-bytes`
and `--over-rank` become these variables, and a user of the plain vLLM launcher sets them
directly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..paths import default_store_dir

ENV_STORE = "VLLM_D2L_STORE"
ENV_HYPERNET = "VLLM_D2L_HYPERNET"
ENV_MAX_BODY = "VLLM_D2L_MAX_BODY_BYTES"
ENV_MAX_TOKENS = "VLLM_D2L_MAX_DOCUMENT_TOKENS"
ENV_OVER_RANK = "VLLM_D2L_OVER_RANK"
OVER_RANK_POLICIES = ("compress", "refuse")


@dataclass(frozen=True)
class Settings:
    store_dir: Path
    hypernet_dir: Path | None
    max_body_bytes: int = 32 * 2**20
    max_document_tokens: int = 131072
    # "compress": truncated SVD down to --max-lora-rank (the adapter loses the least energy);
    # "refuse": a 400 that names the rank needed.
    over_rank: str = "compress"

    @classmethod
    def from_env(cls) -> "Settings":
        policy = os.environ.get(ENV_OVER_RANK, "compress").strip().lower()
        if policy not in OVER_RANK_POLICIES:
            raise ValueError(f"{ENV_OVER_RANK} must be one of {OVER_RANK_POLICIES}, got '{policy}'")
        hyper = os.environ.get(ENV_HYPERNET)
        return cls(
            store_dir=default_store_dir(),
            hypernet_dir=Path(hyper).expanduser() if hyper else None,
            max_body_bytes=_positive_int(ENV_MAX_BODY, cls.max_body_bytes),
            max_document_tokens=_positive_int(ENV_MAX_TOKENS, cls.max_document_tokens),
            over_rank=policy,
        )


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = int(raw)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw}")
    return value
