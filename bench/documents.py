"""One document server for issue 6's items 1, 3 and 4: upload documents of each length (their
internalization latency), then QA throughput, the KV-cache check, and chats under uploads."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from .config import Plan
from .memory import memory_on
from .qa import qa_on, upload_documents, upload_summary
from .servers import ServerSpec, model_name, server
from .texts import DocumentSource
from .uploads import uploads_on


def documents_spec(model: str, served: str | None, hypernet: Path, store: Path, plan: Plan,
                   dtype: str | None, max_loras: int) -> ServerSpec:
    return ServerSpec(kind=plan.documents_server, model=model, served_name=served, hypernet=str(hypernet), store=str(store),
                      max_model_len=plan.max_model_len, max_num_seqs=max(32, plan.load.concurrency),
                      max_loras=max_loras, max_lora_rank=plan.documents_max_lora_rank, dtype=dtype)


def run_documents_on(base_url: str, model: str, hypernet: Path, plan: Plan, dtype: str,
                     emit: Callable[[dict], None] | None = None) -> dict:
    """Everything after startup; returns {"documents", "qa", "memory", "uploads"} result parts,
    and hands the parts so far to `emit` after each one."""
    emit = emit or (lambda parts: None)
    from transformers import AutoConfig, AutoTokenizer

    from vllm_d2l.hypernet import HypernetConfig

    hf_config = AutoConfig.from_pretrained(model)
    source = DocumentSource(AutoTokenizer.from_pretrained(model))
    hcfg = HypernetConfig.from_json((hypernet / "config.json").read_text())
    chunk_tokens = hcfg.chunk_tokens  # the generator reads documents in the chunks it was trained on
    full_rank = lambda n: hcfg.adapter_rank(math.ceil(n / chunk_tokens))  # noqa: E731
    base = model_name(base_url)

    t0 = time.monotonic()
    docs = upload_documents(base_url, source, plan.lengths, plan.docs_per_length)
    parts = {"documents": upload_summary(docs), "upload_seconds": time.monotonic() - t0}
    parts["qa"] = qa_on(base_url, base, source, docs, plan)
    emit(parts)
    parts["memory"] = memory_on(base_url, base, hf_config, dtype, source, docs, plan.documents_max_lora_rank,
                                plan.max_model_len, list(hcfg.target_modules), full_rank)
    emit(parts)
    parts["uploads"] = uploads_on(base_url, source, docs, plan)
    emit(parts)
    return parts


def model_dtype(model: str, requested: str | None) -> str:
    """The dtype vLLM will run (and keep the KV cache in): the flag, else the checkpoint's."""
    if requested and requested != "auto":
        return requested
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model)
    dt = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None) or "bfloat16"
    return str(dt).replace("torch.", "")


def run_documents(model: str, served: str | None, hypernet: Path, plan: Plan, work: Path, log_dir: Path,
                  dtype: str | None, emit: Callable[[dict], None] | None = None) -> dict:
    spec = documents_spec(model, served, hypernet, work / "store-documents", plan, dtype, plan.docs_per_length)
    with server(spec, log_dir) as srv:
        info = {"startup_s": srv.startup_seconds, "spec": spec.describe()}
        return run_documents_on(srv.base_url, model, hypernet, plan, model_dtype(model, dtype),
                                emit=(lambda parts: emit({**parts, **info})) if emit else None) | info
