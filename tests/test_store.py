"""The adapter store and ids: atomic publish, checksums, tombstones, LRU order, path safety."""
from __future__ import annotations

import json
import os
import threading

import pytest
import torch

from vllm_d2l.lora import CONFIG_NAME, WEIGHTS_NAME, LoRAWeights
from vllm_d2l.serving.errors import CorruptAdapter, DocumentNotFound
from vllm_d2l.serving.ids import document_id, is_document_id
from vllm_d2l.serving.store import RECORD_NAME, AdapterRecord, AdapterStore


def _weights(seed: int = 0, rank: int = 4) -> LoRAWeights:
    g = torch.Generator().manual_seed(seed)
    a = {f"model.layers.{i}.mlp.down_proj": torch.randn(rank, 128, generator=g) for i in range(2)}
    b = {k: torch.randn(64, rank, generator=g) for k in a}
    return LoRAWeights(a, b, "tiny", {"tokens": 10})


def _record(doc_id: str, w: LoRAWeights) -> AdapterRecord:
    return AdapterRecord(id=doc_id, tokens=10, chunks=1, rank=w.rank, bytes=w.nbytes, created=1, fingerprint="fp")


def test_ids_are_content_addressed_and_strict():
    a = document_id("hello", "fp1")
    assert a == document_id("hello", "fp1")
    assert a != document_id("hello ", "fp1") and a != document_id("hello", "fp2")
    assert is_document_id(a) and a.startswith("doc-") and len(a) == 36
    for bad in ["doc-../../etc", "../" + a, a + "/x", a.upper(), a + "\x00", "doc-" + "a" * 10_000, None, 5, ""]:
        assert not is_document_id(bad)


def test_put_read_roundtrip_and_layout(tmp_path):
    store = AdapterStore(tmp_path)
    w = _weights()
    rec, ours = store.put(w, _record(document_id("x", "fp"), w))
    assert ours
    folder = store.folder(rec.id)
    assert {p.name for p in folder.iterdir()} >= {CONFIG_NAME, WEIGHTS_NAME, RECORD_NAME}
    got, data, config = store.read_verified(rec.id)
    assert got.sha256 == rec.sha256 and got.rank == 4
    back = LoRAWeights.from_safetensors_bytes(data)
    assert json.loads(config)["r"] == 4
    for k in w.a:
        torch.testing.assert_close(back.delta(k), w.delta(k))
    _, loaded = store.load(rec.id)
    assert loaded.rank == 4
    assert [r.id for r in store.list()] == [rec.id]
    assert not list(store.tmp.iterdir()), "staging leftovers"
    # vLLM/PEFT read the folder as-is
    cfg = json.loads((folder / CONFIG_NAME).read_text())
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 4


def test_second_writer_keeps_first_copy(tmp_path):
    store = AdapterStore(tmp_path)
    doc = document_id("same", "fp")
    results = []

    def put(seed):
        w = _weights(seed)
        results.append(store.put(w, _record(doc, w)))

    threads = [threading.Thread(target=put, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(ours for _, ours in results) >= 1
    store.read_verified(doc)  # whichever won, the folder is whole and consistent
    assert not list(store.tmp.iterdir())


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupt_adapter_is_quarantined(tmp_path, damage):
    store = AdapterStore(tmp_path)
    w = _weights()
    rec, _ = store.put(w, _record(document_id("c", "fp"), w))
    path = store.folder(rec.id) / WEIGHTS_NAME
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        path.unlink()
    with pytest.raises(CorruptAdapter, match="checksum"):
        store.read_verified(rec.id)
    assert store.record(rec.id) is None
    assert len(list(store.quarantine_dir.iterdir())) == 1
    with pytest.raises(DocumentNotFound):
        store.read_verified(rec.id)


def test_tombstone_then_purge(tmp_path):
    store = AdapterStore(tmp_path)
    w = _weights()
    rec, _ = store.put(w, _record(document_id("t", "fp"), w))
    assert store.purge(rec.id) is False  # not tombstoned: purge refuses
    assert store.mark_deleted(rec.id)
    assert store.record(rec.id) is None and store.record(rec.id, include_deleted=True) is not None
    assert store.list() == []
    assert store.undelete(rec.id) and store.record(rec.id) is not None
    store.mark_deleted(rec.id)
    assert store.purge(rec.id)
    assert not store.folder(rec.id).exists()
    assert store.mark_deleted(rec.id) is False


def test_reupload_replaces_tombstoned_folder(tmp_path):
    store = AdapterStore(tmp_path)
    w = _weights()
    doc = document_id("r", "fp")
    store.put(w, _record(doc, w))
    store.mark_deleted(doc)
    rec, ours = store.put(w, _record(doc, w))
    assert ours and store.record(doc) is not None and not store.is_deleted(doc)


def test_bad_ids_never_touch_the_disk(tmp_path):
    store = AdapterStore(tmp_path / "s")
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / RECORD_NAME).write_text("{}")
    for bad in ["../victim", "..", "/etc/passwd", "doc-\x00", "x" * 10_000]:
        assert store.record(bad) is None
        assert store.purge(bad, only_if_deleted=False) is False
        assert store.mark_deleted(bad) is False
        with pytest.raises(DocumentNotFound):
            store.folder(bad)
    assert (outside / RECORD_NAME).exists()


def test_lru_order_skips_adapters_in_use(tmp_path):
    store = AdapterStore(tmp_path)
    ids = []
    for i in range(4):
        w = _weights(i)
        rec, _ = store.put(w, _record(document_id(str(i), "fp"), w))
        ids.append(rec.id)
        os.utime(store.folder(rec.id) / "last_used", (1000 + i, 1000 + i))
    store.touch(ids[0])  # now the most recent
    assert store.least_recently_used(keep=2) == [ids[1], ids[2]]
    assert store.least_recently_used(keep=2, in_use={ids[1]}) == [ids[2], ids[3]]
    assert store.least_recently_used(keep=10) == []


def test_record_public_fields():
    rec = AdapterRecord(id="doc-" + "0" * 32, tokens=5, chunks=1, rank=8, bytes=10, created=3, full_rank=16)
    out = rec.public(cached=True)
    assert out["object"] == "adapter" and out["compressed"] and out["full_rank"] == 16 and out["cached"]
    assert set(out) >= {"id", "tokens", "chunks", "rank", "bytes", "created", "cached"}


def test_listing_follows_changes_made_by_another_replica(tmp_path, monkeypatch):
    """The in-memory listing is trusted only while the folder's mtime holds still (and not within
    the racy window after a change): uploads, tombstones and undeletes from another process's
    store object all show up in the next listing."""
    import vllm_d2l.serving.store as store_module

    ours, theirs = AdapterStore(tmp_path), AdapterStore(tmp_path)
    ids = []
    for i in range(3):
        w = _weights(i)
        ids.append(theirs.put(w, _record(document_id(str(i), "fp"), w))[0].id)
    assert sorted(r.id for r in ours.list()) == sorted(ids) and ours.count() == 3
    monkeypatch.setattr(store_module, "RACY_NS", -10**18)  # trust any listing: only mtime changes count
    reads = []
    real = AdapterStore.record
    monkeypatch.setattr(AdapterStore, "record", lambda self, *a, **k: reads.append(a[0]) or real(self, *a, **k))
    ours._listing = None
    ours.list()
    reads.clear()
    assert ours.count() == 3 and not reads  # unchanged: no file read at all
    theirs.mark_deleted(ids[0])
    reads.clear()
    assert sorted(r.id for r in ours.list()) == sorted(ids[1:]) and not reads  # known records are not re-read
    theirs.undelete(ids[0])
    assert ours.count() == 3
    w = _weights(9)
    new = theirs.put(w, _record(document_id("9", "fp"), w))[0].id
    reads.clear()
    assert new in {r.id for r in ours.list()} and reads == [new]


def test_memory_is_kept_beside_the_adapter_and_checked(tmp_path):
    """A document's memory is published with its adapter (large sums in bf16, counts in fp32);
    a memory that fails its checksum is None and leaves the adapter servable; adapters stored
    without one have none."""
    from vllm_d2l.serving.store import MEMORY_NAME
    store = AdapterStore(tmp_path)
    w = _weights()
    memory = {"S": torch.randn(1, 2, 64, 600), "n": torch.tensor(17.0), "nw": torch.rand(1, 2)}
    rec, _ = store.put(w, _record(document_id("x", "fp"), w), memory=memory)
    assert MEMORY_NAME in rec.sha256
    got = store.load_memory(rec.id)
    assert got["S"].dtype == torch.bfloat16 and got["n"].dtype == torch.float32 and float(got["n"]) == 17.0
    torch.testing.assert_close(got["S"].float(), memory["S"], atol=0.05, rtol=0.01)
    torch.testing.assert_close(got["nw"], memory["nw"])
    (store.folder(rec.id) / MEMORY_NAME).write_bytes(b"not a memory")
    assert store.load_memory(rec.id) is None
    assert store.load(rec.id)[0].id == rec.id  # the adapter itself is untouched
    plain, _ = store.put(w, _record(document_id("y", "fp"), w))
    assert store.load_memory(plain.id) is None and store.load_memory("doc-" + "0" * 32) is None
