"""The reliability policies of the document service without a server: fault mapping, the token
limit, rollback, compute-once, LRU eviction and its protections, the new flags, store housekeeping.

A fake engine and generator stand in for vLLM and the hypernetwork, so each policy is checked in
milliseconds and in isolation; tests/test_reliability.py checks the same paths in a real server.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from vllm_d2l.generator import Internalized
from vllm_d2l.lora import LoRAWeights
from vllm_d2l.serving import metrics
from vllm_d2l.serving.errors import DocumentTooLong, GeneratorOutOfMemory, InternalizeFailed, RegistrationFailed
from vllm_d2l.serving.ids import composite_id, document_id
from vllm_d2l.serving.launch import build
from vllm_d2l.serving.service import DocumentService
from vllm_d2l.serving.settings import Settings
from vllm_d2l.serving.store import AdapterStore
from vllm_d2l.serving.testing import process_group_rss


class FakeGenerator:
    fingerprint = "fp"
    base_model_name = "tiny"

    def __init__(self):
        self.calls = 0
        self.fail: BaseException | None = None

    def tokenize(self, text, max_tokens=None):
        return text.split()

    def internalize(self, text, **kwargs):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        g = torch.Generator().manual_seed(self.calls)
        a = {"model.layers.0.mlp.down_proj": torch.randn(4, 32, generator=g)}
        b = {k: torch.randn(16, 4, generator=g) for k in a}
        return Internalized(LoRAWeights(a, b, "tiny", {}), len(text.split()), 1, 0.0)


class FakeEngine:
    def __init__(self):
        self.refuse = False
        self.output_processor = SimpleNamespace(request_states={})
        self.removed: list[int] = []

    async def collective_rpc(self, method, timeout=None, args=()):
        await asyncio.sleep(0)
        return [{"ok": False, "error": "refused"} if self.refuse else {"ok": True}]

    async def remove_lora(self, int_id):
        self.removed.append(int_id)

    def use(self, *names: str) -> None:
        self.output_processor.request_states = {i: SimpleNamespace(lora_name=n) for i, n in enumerate(names)}


class FakeModels:
    def __init__(self):
        self.lora_requests = {}
        self.lora_resolver_lock = defaultdict(asyncio.Lock)
        self._next = 0

    @property
    def lora_id_counter(self):
        return self

    def inc(self, n):
        self._next += n
        return self._next

    def is_base_model(self, name):
        return name == "base"


def _service(tmp_path, **settings) -> tuple[DocumentService, FakeEngine, FakeGenerator]:
    engine, gen = FakeEngine(), FakeGenerator()
    cfg = Settings(store_dir=tmp_path, hypernet_dir=None, **{"evict_min_idle_s": 0.0, **settings})
    svc = DocumentService(engine, FakeModels(), cfg, AdapterStore(tmp_path), gen, max_lora_rank=32)
    return svc, engine, gen


def _doc(i: int) -> str:
    return f"document number {i} " * 3


# ------------------------------------------------------------------------------------- faults
@pytest.mark.parametrize("error,expected", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 96 GiB"), GeneratorOutOfMemory),
    (MemoryError(), GeneratorOutOfMemory),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB"), GeneratorOutOfMemory),
    (RuntimeError("shape mismatch"), InternalizeFailed),
    (ValueError("odd"), InternalizeFailed),
])
def test_generator_failure_becomes_a_clear_error_and_the_next_upload_works(tmp_path, error, expected):
    async def run():
        svc, _, gen = _service(tmp_path)
        gen.fail = error
        with pytest.raises(expected) as info:
            await svc.upload(_doc(1))
        assert 400 <= info.value.status < 600 and "document" in str(info.value)
        assert svc.store.count() == 0 and not svc._inflight
        gen.fail = None
        out = await svc.upload(_doc(1))
        assert out["cached"] is False and svc.store.count() == 1
    asyncio.run(run())


def test_token_limit_is_413_before_the_generator_runs(tmp_path):
    async def run():
        svc, _, gen = _service(tmp_path, max_document_tokens=5)
        with pytest.raises(DocumentTooLong, match="--max-document-tokens") as info:
            await svc.upload("one two three four five six")
        assert info.value.status == 413 and gen.calls == 0
        assert (await svc.upload("one two three"))["tokens"] == 3
    asyncio.run(run())


def test_failed_registration_rolls_back_the_store_entry(tmp_path):
    async def run():
        svc, engine, _ = _service(tmp_path)
        engine.refuse = True
        with pytest.raises(RegistrationFailed, match="refused"):
            await svc.upload(_doc(1))
        assert svc.store.count() == 0 and not os.listdir(svc.store.adapters)
        assert not svc.models.lora_requests
        engine.refuse = False
        assert (await svc.upload(_doc(1)))["cached"] is False
    asyncio.run(run())


# ------------------------------------------------------------------------------------- compute once
def test_concurrent_identical_uploads_compute_once(tmp_path):
    async def run():
        svc, _, gen = _service(tmp_path)
        results = await asyncio.gather(*(svc.upload(_doc(i % 3)) for i in range(12)))
        assert gen.calls == 3 and svc.computed == 3
        assert sum(not r["cached"] for r in results) == 3
    asyncio.run(run())


def test_an_adapter_stored_meanwhile_is_not_recomputed(tmp_path):
    """The race past the in-flight table: the generation thread looks in the store once more."""
    async def run():
        svc, _, gen = _service(tmp_path)
        await svc.upload(_doc(1))
        doc = document_id(_doc(1), "fp")
        record, _data, _config, _s, ours = svc._compute(doc, _doc(1), None)
        assert ours is False and record.id == doc and gen.calls == 1
    asyncio.run(run())


# ------------------------------------------------------------------------------------- eviction
def _age(svc: DocumentService, ids: list[str]) -> None:
    for i, doc in enumerate(ids):
        os.utime(svc.store.adapters / doc / "last_used", (1000 + i, 1000 + i))


def test_eviction_is_lru_and_never_takes_an_adapter_in_use(tmp_path):
    async def run():
        svc, engine, _ = _service(tmp_path, max_stored_documents=3)
        ids = [(await svc.upload(_doc(i)))["id"] for i in range(3)]
        _age(svc, ids)
        engine.use(ids[0])  # the oldest is being generated with
        before, deferred = metrics.EVICTED._value.get(), metrics.DEFERRED._value.get()
        new = (await svc.upload(_doc(3)))["id"]
        live = set(svc.store.live_ids())
        assert live == {ids[0], ids[2], new}, (
            live, [svc.store.last_used(i) for i in ids], svc.adapters_in_use(), svc.settings,
            await svc.enforce_store_limit())
        assert metrics.EVICTED._value.get() == before + 1
        assert metrics.DEFERRED._value.get() == deferred + 1  # ids[0] was next in line
        assert ids[1] not in svc.models.lora_requests and svc.store.record(ids[1]) is None
        for _ in range(100):  # not in use: purged from the workers and the disk right away
            if not (svc.store.adapters / ids[1]).exists():
                break
            await asyncio.sleep(0.01)
        assert not (svc.store.adapters / ids[1]).exists() and engine.removed
        # a cached upload is a use: it moves the adapter to the front of the queue
        _age(svc, [ids[2], ids[0], new])
        engine.use()
        assert (await svc.upload(_doc(2)))["cached"] is True
        newest = (await svc.upload(_doc(4)))["id"]
        assert set(svc.store.live_ids()) == {ids[2], new, newest}
    asyncio.run(run())


def test_a_request_holds_its_adapters_before_the_engine_sees_it(tmp_path):
    """Between our middleware and the engine's table (vLLM sends a stream's headers first) a
    request's adapter is held by the server's own count, and let go when the answer ends."""
    async def run():
        svc, engine, _ = _service(tmp_path, max_stored_documents=3)
        ids = [(await svc.upload(_doc(i)))["id"] for i in range(3)]
        _age(svc, ids)
        held = svc.request_opened(ids[0])  # the engine has not seen it yet: its table is empty
        assert engine.output_processor.request_states == {} and svc.adapters_in_use() == {ids[0]}
        new = (await svc.upload(_doc(3)))["id"]
        assert set(svc.store.live_ids()) == {ids[0], ids[2], new}
        svc.request_closed(held)
        assert svc.adapters_in_use() == set() and not svc._open_requests
        _age(svc, [ids[0], ids[2], new])
        assert (await svc.upload(_doc(4)))["id"] and ids[0] not in svc.store.live_ids()

        mix = f"{ids[2]}+{new}"  # a composite holds its name, its parts and its stored folder
        held = svc.request_opened(mix)
        assert set(held) == {mix, ids[2], new, composite_id([ids[2], new])}
        svc.request_closed(held)
        assert svc.request_opened("base") == () and svc.request_opened(None) == ()
    asyncio.run(run())


def test_recently_used_adapters_make_the_limit_soft(tmp_path):
    async def run():
        svc, _, _ = _service(tmp_path, max_stored_documents=2, evict_min_idle_s=3600.0)
        for i in range(4):
            await svc.upload(_doc(i))
        assert svc.store.count() == 4  # all used within the hour: other replicas may be serving them
        _age(svc, svc.store.live_ids())
        assert len(await svc.enforce_store_limit()) == 2 and svc.store.count() == 2
    asyncio.run(run())


# ------------------------------------------------------------------------------------- flags, store
def test_store_limit_flag_and_settings(monkeypatch, tmp_path):
    _, env, _ = build(["--model", "/m", "--max-stored-documents", "7"], environ={})
    assert env["VLLM_D2L_MAX_STORED_DOCUMENTS"] == "7"
    _, env, _ = build(["--model", "/m"], environ={})
    assert "VLLM_D2L_MAX_STORED_DOCUMENTS" not in env
    with pytest.raises(SystemExit):
        build(["--model", "/m", "--max-stored-documents", "0"], environ={})
    assert Settings.from_env().max_stored_documents == Settings.max_stored_documents == 10_000
    monkeypatch.setenv("VLLM_D2L_MAX_STORED_DOCUMENTS", "12")
    monkeypatch.setenv("VLLM_D2L_EVICT_MIN_IDLE_S", "0")
    s = Settings.from_env()
    assert s.max_stored_documents == 12 and s.evict_min_idle_s == 0.0
    monkeypatch.setenv("VLLM_D2L_EVICT_MIN_IDLE_S", "-1")
    with pytest.raises(ValueError):
        Settings.from_env()


def test_live_ids_and_stale_staging_cleanup(tmp_path):
    async def run():
        svc, _, _ = _service(tmp_path)
        ids = [(await svc.upload(_doc(i)))["id"] for i in range(3)]
        svc.store.mark_deleted(ids[0])
        (svc.store.adapters / "not-an-id").mkdir()
        (svc.store.adapters / ("doc-" + "1" * 32)).mkdir()  # no record: purged mid-listing, or never whole
        assert sorted(svc.store.live_ids()) == sorted(ids[1:]) and svc.store.count() == 2
    asyncio.run(run())
    store = AdapterStore(tmp_path)
    old, fresh = store.tmp / "put-doc-old.x", store.tmp / "put-doc-new.y"
    old.mkdir()
    fresh.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert store.clean_staging(older_than_s=3600) == 1
    assert not old.exists() and fresh.exists()


def test_process_group_rss_sees_this_process():
    assert process_group_rss(os.getpgrp()) > 10 * 2**20


def test_vllm_puts_its_api_key_check_outside_our_routes_and_middleware():
    """Pinned for vLLM 0.32: endpoint plugins are attached before the authentication middleware is
    added, so it wraps them (Starlette runs the last added middleware first) and guards `/v1/...`."""
    import inspect

    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.serve.middleware.authenticate import GUARDED_PREFIX
    from vllm.entrypoints.serve.middleware.register import init_entrypoints_middleware

    src = inspect.getsource(build_app)
    assert src.index("attach_endpoint_plugins(app") < src.index("init_entrypoints_middleware(")
    assert "AuthenticationMiddleware" in inspect.getsource(init_entrypoints_middleware)
    assert "/v1/documents".startswith(GUARDED_PREFIX)


def test_over_rank_stored_adapter_is_refused_with_the_fix_named(tmp_path):
    async def run():
        svc, _, _ = _service(tmp_path)
        doc = (await svc.upload(_doc(1)))["id"]  # rank 4
        small = DocumentService(FakeEngine(), FakeModels(), svc.settings, svc.store, FakeGenerator(), max_lora_rank=2)
        err = small.refusal_for(doc)
        assert err is not None and err.status == 400 and "--max-lora-rank 4" in str(err)
        assert svc.refusal_for(doc) is None and small.refusal_for("doc-" + "0" * 32) is None
    asyncio.run(run())


def test_composite_over_rank_is_refused_or_compressed_as_the_policy_says(tmp_path):
    from vllm_d2l.serving.errors import DocumentNotFound, OverRank
    from vllm_d2l.serving.ids import composite_id

    async def run():
        for policy in ("refuse", "compress"):
            svc, _, _ = _service(tmp_path / policy, over_rank=policy)
            svc.max_lora_rank = 6
            ids = [(await svc.upload(_doc(i)))["id"] for i in range(2)]  # rank 4 each: 8 together
            name = "+".join(ids)
            if policy == "refuse":
                with pytest.raises(OverRank, match="--max-lora-rank") as info:
                    await svc.ensure_composite(name)
                assert info.value.status == 400 and svc.store.record(composite_id(ids)) is None
                assert name not in svc.models.lora_requests
            else:
                await svc.ensure_composite(name)
                rec = svc.store.record(composite_id(ids))
                assert rec.rank == 6 and rec.full_rank == 8 and rec.parts == sorted(ids)
                assert svc.models.lora_requests[name].lora_path == str(svc.store.folder(composite_id(ids)))
            with pytest.raises(DocumentNotFound, match="doc-0{32}"):
                await svc.ensure_composite(ids[0] + "+doc-" + "0" * 32)
    asyncio.run(run())


def test_evicting_a_part_drops_its_composites(tmp_path):
    from vllm_d2l.serving.ids import composite_id

    async def run():
        svc, _, _ = _service(tmp_path, max_stored_documents=3)
        ids = [(await svc.upload(_doc(i)))["id"] for i in range(2)]
        await svc.ensure_composite(f"{ids[1]}+{ids[0]}")
        mix = composite_id(ids)
        os.utime(svc.store.folder(ids[0]) / "last_used", (1, 1))  # the oldest: the next upload evicts it
        await svc.upload(_doc(2))
        await asyncio.sleep(0.05)
        assert svc.store.record(ids[0]) is None and svc.store.record(mix) is None
        assert f"{ids[1]}+{ids[0]}" not in svc.models.lora_requests
        listed = {d["id"] for d in await svc.list()}
        assert ids[1] in listed and ids[0] not in listed and len(listed) == 2  # composites are not listed
    asyncio.run(run())


def test_internalization_thread_runs_at_the_configured_niceness(tmp_path, monkeypatch):
    from vllm_d2l.serving.settings import ENV_NICE

    def niceness_seen_by_work(svc) -> int:
        import threading
        return svc._executor.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()

    svc, _, _ = _service(tmp_path)
    assert svc.settings.internalize_nice == 19 and niceness_seen_by_work(svc) == 19
    svc, _, _ = _service(tmp_path, internalize_nice=0)
    assert niceness_seen_by_work(svc) == os.getpriority(os.PRIO_PROCESS, 0)
    monkeypatch.setenv(ENV_NICE, "25")
    with pytest.raises(ValueError, match=ENV_NICE):
        Settings.from_env()
    monkeypatch.setenv(ENV_NICE, "5")
    assert Settings.from_env().internalize_nice == 5
