"""`LoRAResolver` for `doc-...` and `task-...` ids: vLLM asks it when a request names an adapter it has not loaded.

That happens after a restart, on a replica other than the one that took the upload, and after an
id was dropped from this server's table. The resolver checks the store's checksums (a corrupt
folder is quarantined and reported, never served), checks that the adapter fits the served model
(a mis-shaped adapter could be copied into vLLM's buffers without an error), and hands vLLM the
folder path; vLLM then loads it with its own loader.

Over-rank adapters (stored by a server with a larger `--max-lora-rank`) are handed over too:
vLLM's own check refuses them and the client gets a 400 naming the problem class, not a 500.
"""
from __future__ import annotations

import asyncio
import functools

from vllm.lora.request import LoRARequest
from vllm.lora.resolver import LoRAResolver

from ..errors import ModelMismatch
from ..lora import LoRAWeights
from . import get_logger
from .errors import CorruptAdapter, DocumentNotFound
from .ids import is_upload_id
from .store import AdapterStore

log = get_logger(__name__)


@functools.lru_cache(maxsize=4)
def _hf_config(model_path: str):
    """The served model's config, read from its folder (never from a hub)."""
    try:
        from transformers import AutoConfig
        return AutoConfig.from_pretrained(model_path, local_files_only=True)
    except Exception as e:  # a remote name or an odd folder: skip the shape check, vLLM still checks rank
        log.warning("vllm-d2l resolver: cannot read the model config at %s (%s); shapes unchecked", model_path, e)
        return None


class StoreResolver(LoRAResolver):
    """Resolves document ids from the store named by `VLLM_D2L_STORE` (or the default).

    The endpoint plugin, when loaded, sets `hf_config` (the engine's own view of the model) and
    `on_corrupt` / `on_resolved` hooks for metrics; without it the resolver works on its own.
    """

    def __init__(self, store: AdapterStore | None = None):
        self._store = store
        self.hf_config = None
        self.on_corrupt = None
        self.on_resolved = None

    @property
    def store(self) -> AdapterStore:
        if self._store is None:
            self._store = AdapterStore()
        return self._store

    async def resolve_lora(self, base_model_name: str, lora_name: str) -> LoRARequest | None:
        if not is_upload_id(lora_name):
            return None
        try:
            path = await asyncio.to_thread(self._check, base_model_name, lora_name)
        except Exception:  # a resolver error would surface as a 500 from deep inside vLLM
            log.exception("vllm-d2l resolver: unexpected error resolving %s", lora_name)
            return None
        if path is None:
            return None
        if self.on_resolved:
            self.on_resolved(lora_name)
        return LoRARequest(lora_name=lora_name, lora_int_id=1, lora_path=path)  # vLLM sets the int id

    def _check(self, base_model_name: str, lora_name: str) -> str | None:
        store = self.store
        try:
            _, data, _config = store.read_verified(lora_name)
        except DocumentNotFound:
            return None
        except CorruptAdapter as e:
            log.error("vllm-d2l resolver: %s", e)
            if self.on_corrupt:
                self.on_corrupt(lora_name)
            return None
        hf_config = self.hf_config or _hf_config(base_model_name)
        if hf_config is not None:
            try:
                LoRAWeights.from_safetensors_bytes(data).validate(hf_config)
            except ModelMismatch as e:
                log.warning("vllm-d2l resolver: %s was made for another model: %s", lora_name, e)
                return None
        store.touch(lora_name)
        return str(store.folder(lora_name))
