"""Serving generated adapters through vLLM's own OpenAI-compatible server.

Two vLLM plugins, both named ``vllm_d2l`` so one ``VLLM_PLUGINS=vllm_d2l`` enables them:

- ``vllm.general_plugins`` -> :func:`vllm_d2l.serving.plugin.register` runs in every vLLM process:
  it adds a worker method that registers an adapter from safetensors bytes, a LoRA resolver that
  reloads ``doc-...`` and ``task-...`` ids from the store, and the grouped CPU LoRA path.
- ``vllm.endpoint_plugins`` -> :class:`vllm_d2l.serving.routes.DocumentsPlugin` runs in the API
  server only: ``/v1/documents``, ``/v1/tasks`` and an adapter-aware ``/v1/models``, and builds
  composites (``doc-A+doc-B``); it owns the generators.

The store (:mod:`vllm_d2l.serving.store`) is the source of truth; worker memory is a cache of it.
"""

PLUGIN_NAME = "vllm_d2l"


def get_logger(name: str):
    """A logger under vLLM's `vllm` hierarchy, so our lines go through vLLM's handlers and format
    (process tag, level) whatever vLLM does to its logging configuration at startup."""
    import logging

    return logging.getLogger(f"vllm.{name}")
