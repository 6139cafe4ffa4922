"""Fast checks without a server: the launcher's command line, settings, and the vLLM internals
our serving code relies on (so a vLLM upgrade fails here, loudly, instead of in production)."""
from __future__ import annotations

import inspect

import pytest

from vllm_d2l.serving import PLUGIN_NAME
from vllm_d2l.serving.launch import build
from vllm_d2l.serving.settings import Settings


def _value(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def test_launch_fills_in_lora_flags_and_env(tmp_path):
    cmd, env, _ = build(["--model", "/m", "--port", "9", "--store", str(tmp_path / "s"), "--over-rank", "refuse",
                         "--max-document-tokens", "100", "--max-body-bytes", "1000"], environ={})
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert "--enable-lora" in cmd and _value(cmd, "--max-lora-rank") == "128"
    assert int(_value(cmd, "--max-cpu-loras")) > int(_value(cmd, "--max-loras"))
    assert _value(cmd, "--port") == "9" and _value(cmd, "--model") == "/m"
    assert _value(cmd, "--host") == "127.0.0.1"  # loopback unless the user asks otherwise
    assert "--store" not in cmd and "--over-rank" not in cmd  # ours never reach vLLM's parser
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert PLUGIN_NAME in env["VLLM_PLUGINS"].split(",")
    assert env["VLLM_D2L_STORE"] == str((tmp_path / "s").resolve())
    assert env["VLLM_D2L_OVER_RANK"] == "refuse" and env["VLLM_D2L_MAX_DOCUMENT_TOKENS"] == "100"
    assert env["VLLM_D2L_MAX_BODY_BYTES"] == "1000" and env["VLLM_CPU_KVCACHE_SPACE"]


def test_launch_user_flags_win():
    cmd, env, _ = build(["some/model", "--max-lora-rank=64", "--max_loras", "8", "--max-cpu-loras", "9",
                         "--host", "0.0.0.0"],
                        environ={"VLLM_PLUGINS": "other", "VLLM_CPU_KVCACHE_SPACE": "2"})
    assert cmd[3] == "some/model" and "--model" not in cmd
    assert "--max-lora-rank=64" in cmd and cmd.count("--max-lora-rank") == 0
    assert _value(cmd, "--max_loras") == "8" and "--max-loras" not in cmd
    assert _value(cmd, "--max-cpu-loras") == "9" and cmd.count("--max-cpu-loras") == 1
    assert _value(cmd, "--host") == "0.0.0.0" and cmd.count("--host") == 1
    assert env["VLLM_PLUGINS"] == f"other,{PLUGIN_NAME}" and env["VLLM_CPU_KVCACHE_SPACE"] == "2"


def test_launch_wraps_only_the_hypernetwork_modules(tmp_path):
    (tmp_path / "config.json").write_text('{"target_modules": ["down_proj", "o_proj"]}')
    cmd, _, _ = build(["--model", "/m", "--hypernet", str(tmp_path)], environ={})
    i = cmd.index("--lora-target-modules")
    assert cmd[i + 1:i + 3] == ["down_proj", "o_proj"]
    cmd, _, _ = build(["--model", "/m", "--hypernet", str(tmp_path), "--lora-target-modules", "q_proj"], environ={})
    assert cmd.count("--lora-target-modules") == 1 and _value(cmd, "--lora-target-modules") == "q_proj"
    cmd, _, _ = build(["--model", "/m", "--hypernet", str(tmp_path / "missing")], environ={})
    assert "--lora-target-modules" not in cmd  # unknown: vLLM's default (every module) is the safe one


def test_launch_slot_rank_holds_what_the_hypernetworks_write(tmp_path):
    from vllm_d2l.hypernet import HypernetConfig
    for name, key_dim in (("narrow", 120), ("wide", 248), ("widest", 500)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(HypernetConfig(kind="token", key_dim=key_dim).to_json())
    rank = lambda *flags: _value(build(["--model", "/m", *flags], environ={})[0], "--max-lora-rank")
    assert rank("--hypernet", str(tmp_path / "narrow"), "--task-hypernet", str(tmp_path / "narrow")) == "128"
    assert rank("--hypernet", str(tmp_path / "wide"), "--task-hypernet", str(tmp_path / "narrow")) == "256"
    assert rank("--hypernet", str(tmp_path / "narrow"), "--task-hypernet", str(tmp_path / "widest")) == "512"
    cmd, _, _ = build(["--model", "/m", "--hypernet", str(tmp_path / "wide"), "--max-lora-rank", "64"], environ={})
    assert _value(cmd, "--max-lora-rank") == "64" and cmd.count("--max-lora-rank") == 1  # the user's flag wins


def test_launch_defaults_to_the_converted_model(monkeypatch, tmp_path):
    import vllm_d2l.base_model as bm
    monkeypatch.setattr(bm, "ensure_default_model", lambda: tmp_path)
    cmd, _, _ = build(["--port", "1"], environ={})
    assert _value(cmd, "--model") == str(tmp_path) and _value(cmd, "--served-model-name") == bm.DEFAULT_MODEL_NAME


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("VLLM_D2L_OVER_RANK", "bogus")
    with pytest.raises(ValueError):
        Settings.from_env()
    monkeypatch.setenv("VLLM_D2L_OVER_RANK", "Refuse")
    monkeypatch.setenv("VLLM_D2L_MAX_BODY_BYTES", "10")
    s = Settings.from_env()
    assert s.over_rank == "refuse" and s.max_body_bytes == 10


def test_entry_points_are_installed():
    from importlib.metadata import entry_points
    general = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    endpoint = {ep.name: ep.value for ep in entry_points(group="vllm.endpoint_plugins")}
    assert general.get(PLUGIN_NAME) == "vllm_d2l.serving.plugin:register"
    assert endpoint.get(PLUGIN_NAME) == "vllm_d2l.serving.routes:DocumentsPlugin"


# ------------------------------------------------------------------------------------- vLLM pins
def test_vllm_version_is_the_one_we_read():
    import vllm
    assert vllm.__version__.startswith("0.32."), "re-check serving/worker.py, service.py and routes.py"


def test_vllm_internals_we_touch_still_exist():
    from vllm.entrypoints.openai.models.serving import OpenAIServingModels
    from vllm.lora.lora_model import LoRAModel
    from vllm.lora.model_manager import LRUCacheLoRAModelManager
    from vllm.lora.peft_helper import PEFTHelper
    from vllm.lora.worker_manager import LRUCacheWorkerLoRAManager
    from vllm.plugins.endpoint_plugins.interface import EndpointPlugin
    from vllm.v1.engine.output_processor import OutputProcessor, RequestState
    from vllm.v1.worker.lora_model_runner_mixin import LoRAModelRunnerMixin

    # worker.py: registration from bytes, mirroring LRUCacheWorkerLoRAManager.add_adapter
    assert {"lora_model_id", "tensors", "peft_helper", "device", "dtype", "model_vocab_size", "weights_mapper",
            "skip_prefixes"} <= set(inspect.signature(LoRAModel.from_lora_tensors).parameters)
    for name in ("add_adapter", "activate_adapter", "remove_adapter", "remove_oldest_adapter", "list_adapters",
                 "capacity", "__len__"):
        assert hasattr(LRUCacheLoRAModelManager, name), name
    src = inspect.getsource(LRUCacheWorkerLoRAManager) + inspect.getsource(LRUCacheWorkerLoRAManager.__mro__[1])
    for attr in ("self._adapter_manager", "self._lora_model_cls", "self.max_position_embeddings",
                 "self.vocab_size", "self.lora_config", "supported_lora_modules", "packed_modules_mapping"):
        assert attr in src, attr
    assert hasattr(PEFTHelper, "from_dict") and hasattr(PEFTHelper, "validate_legal")
    assert "self.lora_manager" in inspect.getsource(LoRAModelRunnerMixin)
    # service.py: vLLM's table of served adapters and its per-name locks and id counter
    init = inspect.getsource(OpenAIServingModels.__init__)
    for attr in ("self.lora_requests", "self.lora_resolver_lock", "self.lora_id_counter"):
        assert attr in init, attr
    assert "in self.lora_requests" in inspect.getsource(OpenAIServingModels.resolve_lora)
    # service.py: running requests per adapter, for purge-when-idle
    assert "self.request_states" in inspect.getsource(OutputProcessor.__init__)
    assert "self.lora_name" in inspect.getsource(RequestState.__init__)
    # routes.py: the endpoint plugin contract
    assert {"attach_router", "init_state"} <= set(dir(EndpointPlugin))


def test_worker_method_is_installed_and_never_raises():
    from vllm.v1.worker.worker_base import WorkerBase

    from vllm_d2l.serving.plugin import register
    from vllm_d2l.serving.worker import METHOD_NAME

    register()
    assert callable(getattr(WorkerBase, METHOD_NAME))

    class NoLoRA:
        model_runner = object()

    out = getattr(WorkerBase, METHOD_NAME)(NoLoRA(), 1, "doc-x", "/nowhere", b"junk", "{}")
    assert out["ok"] is False and "enable-lora" in out["error"]

    class Broken:
        class model_runner:
            class lora_manager:
                _adapter_manager = None

    out = getattr(WorkerBase, METHOD_NAME)(Broken(), 1, "doc-x", "/nowhere", b"junk", "{}")
    assert out["ok"] is False and out["error"]


def test_resolver_is_registered_and_ignores_foreign_names(tmp_path):
    import asyncio

    from vllm.lora.resolver import LoRAResolverRegistry

    from vllm_d2l.serving.plugin import register
    from vllm_d2l.serving.resolver import StoreResolver
    from vllm_d2l.serving.store import AdapterStore

    register()
    assert PLUGIN_NAME in LoRAResolverRegistry.get_supported_resolvers()
    r = StoreResolver(AdapterStore(tmp_path))
    for name in ("my-lora", "../doc", "doc-" + "0" * 32):
        assert asyncio.run(r.resolve_lora("/m", name)) is None
