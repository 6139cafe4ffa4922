"""Build the document service when the API server starts (endpoint plugin `init_state`).

A server that cannot internalize (LoRA disabled, no hypernetwork for this model) still serves
everything else: the reason is logged once and every upload answers 503 with it.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from . import get_logger, metrics
from .service import DocumentService
from .settings import Settings
from .store import AdapterStore

# Read here only to hand over to the test-support module; see `testing.install_faults`.
ENV_FAULTS = "VLLM_D2L_TEST_FAULTS"


log = get_logger(__name__)


async def build_service(engine_client, state) -> DocumentService:
    import vllm.envs as envs

    from ..generator import Generator, default_task_hypernet_dir
    from .plugin import get_resolver

    settings = Settings.from_env()
    store = AdapterStore(settings.store_dir)
    models = state.openai_serving_models
    model_config = engine_client.model_config
    hf_config = getattr(model_config, "hf_config", None)
    lora_config = engine_client.vllm_config.lora_config

    generator, task_generator, reason = None, None, None
    if lora_config is None:
        reason = "this server was started without --enable-lora"
    else:
        try:
            generator = await asyncio.to_thread(
                Generator.load, settings.hypernet_dir, Path(model_config.model))
        except Exception as e:
            reason = f"the hypernetwork could not be loaded for {model_config.model}: {e}"
    if generator is not None:
        task_dir = settings.task_hypernet_dir or default_task_hypernet_dir()
        try:
            task_generator = generator if task_dir is None else await asyncio.to_thread(generator.with_hypernet, task_dir)
        except Exception as e:
            log.error("vllm-d2l: the task hypernetwork %s could not be loaded (%s); POST /v1/tasks will answer 503",
                      task_dir, e)
    if reason:
        log.error("vllm-d2l: %s; POST /v1/documents will answer 503", reason)
    if not envs.VLLM_ALLOW_RUNTIME_LORA_UPDATING:
        log.warning("vllm-d2l: VLLM_ALLOW_RUNTIME_LORA_UPDATING is not set, so vLLM will not ask the store "
                    "for adapters it has not loaded (after a restart, or uploaded on another replica)")

    svc = DocumentService(engine_client, models, settings, store, generator,
                          max_lora_rank=lora_config.max_lora_rank if lora_config else 0,
                          hf_config=hf_config, not_ready_reason=reason, task_generator=task_generator)

    resolver = get_resolver()
    if resolver is not None:
        resolver.hf_config = hf_config
        resolver.on_corrupt = lambda _id: metrics.CORRUPT.inc()
        resolver.on_resolved = lambda _id: metrics.RESOLVED.inc()
    else:
        log.warning("vllm-d2l: the LoRA resolver is not registered (general plugin not loaded?)")

    stale = await asyncio.to_thread(store.clean_staging)
    if stale:
        log.info("vllm-d2l: removed %d stale staging entries (writes cut short by a crash)", stale)
    faults = os.environ.get(ENV_FAULTS)
    if faults:
        from .testing import install_faults
        install_faults(svc, faults)

    metrics.ACTIVE.set_function(svc.registered_documents)
    metrics.STORED.set_function(store.count)
    log.info("vllm-d2l: documents ready (store %s, max rank %s, over-rank policy %s, at most %d stored%s)",
             store.root, svc.max_lora_rank, settings.over_rank, settings.max_stored_documents,
             f", generator {generator.fingerprint}" if generator else "")
    return svc
