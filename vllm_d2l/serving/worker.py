"""Worker side: register an adapter from safetensors bytes, reached with `collective_rpc`.

Why: a freshly generated adapter is already in the API server's memory; sending its bytes to the
workers saves a disk round trip and works the same on every tensor-parallel rank. The store
folder is still written first and named as the adapter's path, so when vLLM evicts the adapter
from its CPU cache it reloads it from disk the stock way.

The method mirrors what vLLM 0.32's `LRUCacheWorkerLoRAManager.add_adapter` does for a path
(validate the PEFT config, check target modules, build a `LoRAModel`, make room in the LRU cache,
activate), with `LoRAModel.from_lora_tensors` in place of the file read. Activating here, as vLLM
does, means a shape problem surfaces inside this guarded call instead of in the next forward
step. It never raises: a worker exception would kill the server, so failures come back as
`{"ok": False, "error": ...}` and the API server answers the client.
"""
from __future__ import annotations

import json
from typing import Any

from . import get_logger

log = get_logger(__name__)

METHOD_NAME = "vllm_d2l_add_lora"


def _lora_manager(worker: Any):
    runner = getattr(worker, "model_runner", None)
    manager = getattr(runner, "lora_manager", None)
    if manager is None or not hasattr(manager, "_adapter_manager"):
        return None
    return manager


def _expected_modules(adapter_manager) -> set[str]:
    """The module names vLLM accepts for this model (same rule as its own loader)."""
    expected: list[str] = []
    packed = adapter_manager.packed_modules_mapping
    for module in adapter_manager.supported_lora_modules:
        expected.extend(packed.get(module, [module]))
        if module == "experts":
            expected.append(module)
    return set(expected)


def add_lora_from_bytes(worker: Any, lora_int_id: int, lora_name: str, lora_path: str,
                        data: bytes, config_json: str) -> dict:
    """Bound as a worker method; see the module docstring. Returns a small JSON-able dict."""
    try:
        manager = _lora_manager(worker)
        if manager is None:
            return {"ok": False, "error": "LoRA is not enabled on this server (start it with --enable-lora)"}
        adapters = manager._adapter_manager
        if lora_int_id in adapters.list_adapters():
            adapters.activate_adapter(lora_int_id)
            return {"ok": True, "added": False}

        import safetensors.torch
        from vllm.lora.peft_helper import PEFTHelper
        from vllm.lora.utils import parse_fine_tuned_lora_name

        config = json.loads(config_json)
        config["vllm_max_position_embeddings"] = manager.max_position_embeddings
        peft_helper = PEFTHelper.from_dict(config)
        peft_helper.validate_legal(manager.lora_config)

        tensors = safetensors.torch.load(bytes(data))
        expected = _expected_modules(adapters)
        unexpected = sorted({parse_fine_tuned_lora_name(k)[0] for k in tensors
                             if parse_fine_tuned_lora_name(k)[0].rsplit(".", 1)[-1] not in expected})
        if unexpected:
            return {"ok": False, "error": f"adapter targets modules this model cannot adapt: {unexpected[:5]}"}

        model = adapters.model
        mapper = getattr(model, "hf_to_vllm_mapper", None)
        if mapper is not None:
            mapper = mapper.get_rename_mapper()
        lora = manager._lora_model_cls.from_lora_tensors(
            lora_model_id=lora_int_id,
            tensors=tensors,
            peft_helper=peft_helper,
            device="cpu",
            dtype=manager.lora_config.lora_dtype,
            model_vocab_size=manager.vocab_size,
            weights_mapper=mapper,
            skip_prefixes=getattr(model, "lora_skip_prefixes", None),
        )
        if len(adapters) + 1 > adapters.capacity:
            adapters.remove_oldest_adapter()
        adapters.add_adapter(lora)
        try:
            adapters.activate_adapter(lora_int_id)
        except Exception:
            adapters.remove_adapter(lora_int_id)
            raise
        return {"ok": True, "added": True}
    except Exception as e:  # never let an adapter take the engine down
        log.exception("vllm-d2l: registering adapter %s failed", lora_name)
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def install_worker_methods() -> None:
    """Give every vLLM worker class the method, by name, so `collective_rpc(METHOD_NAME)` finds it.

    vLLM dispatches string RPCs with `getattr(worker, name)`; a method on `WorkerBase` is the
    smallest change that reaches CPU and GPU workers alike (vLLM's `--worker-extension-cls` would
    do the same but needs a flag the plain launcher does not set).
    """
    from vllm.v1.worker.worker_base import WorkerBase

    if getattr(WorkerBase, METHOD_NAME, None) is not add_lora_from_bytes:
        setattr(WorkerBase, METHOD_NAME, add_lora_from_bytes)
