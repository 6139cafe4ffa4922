"""The server configurations the benchmarks compare, each started on 127.0.0.1 and always stopped.

- `ours`: `vllm-d2l serve` with `VLLM_D2L_CPU_COMPILE=0` (LoRA on, our plugins, the grouped CPU
  LoRA path, eager as vLLM runs any LoRA server on CPU).
- `ours-compiled`: `vllm-d2l serve` as it runs by default (`VLLM_D2L_CPU_COMPILE=1`): torch.compile
  stays on with LoRA; our LoRA entry points run as one opaque op inside the compiled graph.
- `stock`: the same as `ours` with `VLLM_D2L_CPU_LORA=vllm`, i.e. vLLM's own CPU LoRA ops; documents still
  work, only the LoRA arithmetic differs.
- `plain`: vLLM's own server with no LoRA and no plugins of ours (`VLLM_PLUGINS=""`): what a user
  gets without this project. vLLM compiles the model when LoRA is off, so this one starts slowly;
  `plain-eager` is the same with compilation off, to separate the two costs of enabling LoRA.
"""
from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vllm_d2l.serving.testing import ServerProcess

KINDS = ("ours", "ours-compiled", "stock", "plain", "plain-eager")
KV_CACHE_GIB = "4"  # room for 16 concurrent 4,096-token prompts (23 KB/token on the default model)


@dataclass(frozen=True)
class ServerSpec:
    kind: str
    model: str
    served_name: str | None = None
    hypernet: str | None = None
    store: str | None = None
    max_model_len: int = 2048
    max_num_seqs: int = 32
    max_loras: int = 4
    max_lora_rank: int = 8
    dtype: str | None = None
    log_stats: bool = True
    extra: tuple[str, ...] = field(default_factory=tuple)
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"server kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def lora(self) -> bool:
        return self.kind in ("ours", "ours-compiled", "stock")

    def args(self) -> list[str]:
        a = ["--model", self.model, "--max-model-len", str(self.max_model_len),
             "--max-num-seqs", str(self.max_num_seqs)]
        if self.served_name:
            a += ["--served-model-name", self.served_name]
        if self.dtype:
            a += ["--dtype", self.dtype]
        if not self.log_stats:
            a.append("--disable-log-stats")
        if self.lora:
            a += ["--max-loras", str(self.max_loras), "--max-lora-rank", str(self.max_lora_rank)]
            if self.hypernet:
                a += ["--hypernet", self.hypernet]
            if self.store:
                a += ["--store", self.store]
        if self.kind == "plain-eager":
            a += ["--compilation-config", '{"mode": 0}']
        return a + list(self.extra)

    def env(self) -> dict[str, str]:
        env = {"VLLM_CPU_KVCACHE_SPACE": KV_CACHE_GIB, "TOKENIZERS_PARALLELISM": "false"}
        if self.kind == "stock":
            env["VLLM_D2L_CPU_LORA"] = "vllm"
        if self.lora:  # explicit either way: `vllm-d2l serve` compiles unless told not to
            env["VLLM_D2L_CPU_COMPILE"] = "1" if self.kind == "ours-compiled" else "0"
        if not self.lora:
            env["VLLM_PLUGINS"] = ""
        return {**env, **dict(self.extra_env)}

    def describe(self) -> dict:
        return {"kind": self.kind, "args": self.args(), "env": self.env()}


class PlainServerProcess(ServerProcess):
    """vLLM's own OpenAI server (no `vllm-d2l serve` defaults, so no LoRA), same lifecycle."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *self.args]


def server(spec: ServerSpec, log_dir: Path, startup_timeout: float = 600.0) -> ServerProcess:
    """A not-yet-started server for `spec`; use as a context manager (stops its process group)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    cls = ServerProcess if spec.lora else PlainServerProcess
    return cls(spec.args(), env=spec.env(), log_path=log_dir / f"server-{spec.kind}.log",
               startup_timeout=startup_timeout)


def model_name(base_url: str) -> str:
    """The base model's name as the server lists it (first entry of /v1/models)."""
    import json

    with urllib.request.urlopen(base_url + "/v1/models", timeout=30) as r:
        return json.load(r)["data"][0]["id"]
