"""Load shapes for a full run and for the `--quick` smoke run, in one place so every scenario and
the README quote the same numbers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Load:
    concurrency: int = 16
    requests: int = 32  # per batch (one arm, one repeat)
    output_tokens: int = 32
    repeats: int = 3
    deadline_s: float = 40.0  # no new request starts after this; in-flight ones finish
    warmup_requests: int = 8

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """Everything a run varies; `quick()` shrinks it to a smoke test on one server."""

    load: Load = Load()
    adapter_counts: tuple[int, ...] = (1, 2, 4, 8, 16)
    stock_counts: tuple[int, ...] = (1, 2, 4, 8)
    adapter_rank: int = 8
    sweep_servers: tuple[str, ...] = ("plain", "plain-eager", "ours", "ours-compiled", "stock")
    lengths: tuple[int, ...] = (512, 2048, 4096)
    docs_per_length: int = 8
    max_model_len: int = 8192
    documents_max_lora_rank: int = 128  # `vllm-d2l serve`'s default
    # the documents server runs as `vllm-d2l serve` does by default: compiled (the eager path pays
    # per-call overhead on every small LoRA matmul, so it understated what users get)
    documents_server: str = "ours-compiled"
    uploads: int = 6  # documents uploaded while chats run, per repeat
    upload_tokens: int = 2048
    upload_concurrency: int = 2
    quick: bool = False

    @classmethod
    def quick_plan(cls) -> "Plan":
        return cls(load=Load(concurrency=4, requests=8, output_tokens=8, repeats=2, deadline_s=30.0,
                             warmup_requests=4),
                   adapter_counts=(1, 2), stock_counts=(1, 2), sweep_servers=("ours",),
                   lengths=(64, 256), docs_per_length=2, max_model_len=1024, documents_max_lora_rank=32,
                   documents_server="ours",
                   uploads=2, upload_tokens=128, upload_concurrency=2, quick=True)

    def with_load(self, **changes) -> "Plan":
        return replace(self, load=replace(self.load, **{k: v for k, v in changes.items() if v is not None}))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["load"] = self.load.as_dict()
        return d
