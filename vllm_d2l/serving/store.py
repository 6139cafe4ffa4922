"""The adapter store: one PEFT folder per document id (and per composite), on a shared filesystem.

Why a directory of plain PEFT folders: vLLM (and PEFT, and `/v1/load_lora_adapter`) read them as
they are, several servers can share one store, and a person can inspect or copy an adapter with
`ls` and `cp`. Layout under the root:

    adapters/<id>/adapter_config.json         what vLLM and PEFT read
    adapters/<id>/adapter_model.safetensors
    adapters/<id>/vllm_d2l.json               the adapter's provenance, as `LoRAWeights.save_peft` writes it
    adapters/<id>/d2l.json                    the store's record: sizes, origin, SHA-256 of both files
    adapters/<id>/last_used                   empty; its mtime is the LRU clock
    adapters/<id>/deleted                     tombstone: gone for clients, files kept until purged
    tmp/                                      staging for atomic writes and purges
    quarantine/<id>.<time>/                   folders that failed their checksum

Durability: a folder is staged in `tmp/`, every file fsynced, then renamed into `adapters/` in one
step, and the directory fsynced; a reader sees a whole adapter or none, also after `kill -9`.
Integrity: the record carries SHA-256 digests; `read_verified` checks them and quarantines a folder
that does not match, so a corrupt file is reported and never served.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..lora import CONFIG_NAME, META_NAME, WEIGHTS_NAME, LoRAWeights
from ..paths import default_store_dir
from . import get_logger
from .errors import CorruptAdapter, DocumentNotFound
from .ids import is_adapter_id

log = get_logger(__name__)

RECORD_NAME = "d2l.json"
# A document's memory (`Internalized.memory`), kept beside its adapter where the generator has one:
# composites of such documents are built from their memories (`Generator.pool`). Optional: an
# adapter without it composes from its factors.
MEMORY_NAME = "memory.safetensors"
USED_NAME = "last_used"
TOMBSTONE_NAME = "deleted"
FORMAT = 1


@dataclass
class AdapterRecord:
    """What we know about a stored adapter; the public part is what `/v1/documents` returns."""

    id: str
    tokens: int
    chunks: int
    rank: int
    bytes: int
    created: int
    name: str | None = None
    full_rank: int | None = None  # before compression to the server's max rank, if any
    fingerprint: str = ""
    base_model: str = ""
    sha256: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT
    parts: list[str] | None = None  # a composite's stored adapters (`doc-A+doc-B`), sorted
    kind: str = "document"  # what was uploaded: "document" or "task" (composites keep the default)

    @property
    def compressed(self) -> bool:
        return self.full_rank is not None and self.full_rank > self.rank

    def public(self, **extra) -> dict:
        out = {"id": self.id, "object": "adapter", "kind": self.kind, "name": self.name, "tokens": self.tokens,
               "chunks": self.chunks, "rank": self.rank, "bytes": self.bytes, "created": self.created,
               "compressed": self.compressed}
        if self.compressed:
            out["full_rank"] = self.full_rank
        if self.parts:
            out["parts"] = list(self.parts)
        out.update(extra)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "AdapterRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


RACY_NS = 2_000_000_000


@dataclass
class _Listing:
    """Live records, newest first, as of the `adapters/` mtime they were read at."""

    mtime_ns: int
    built_ns: int
    records: list[AdapterRecord]
    inodes: list[int] = field(default_factory=list)  # of each record file: a replaced folder is re-read


def _memory_bytes(memory: dict) -> bytes:
    """A memory as safetensors: large tensors (the sums over tokens) in bf16, the adapter's own
    precision; small ones (counts, gates) in fp32."""
    import torch
    from safetensors.torch import save

    return save({k: (v.to(torch.bfloat16) if v.is_floating_point() and v.numel() >= 1 << 16 else v.float())
                 .contiguous() for k, v in memory.items()})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AdapterStore:
    """Content-addressed PEFT folders with atomic publish, checksums, tombstones and an LRU clock.

    Every method takes an id from a client at face value only after `is_adapter_id`; anything
    else is "not found" and never becomes a path.
    """

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root else default_store_dir()
        self.adapters = self.root / "adapters"
        self.tmp = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"
        for d in (self.adapters, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._listing: _Listing | None = None

    # ----------------------------------------------------------------------------- paths
    def folder(self, doc_id: str) -> Path:
        if not is_adapter_id(doc_id):
            raise DocumentNotFound(f"no document adapter named '{_shorten(doc_id)}'", param="id")
        return self.adapters / doc_id

    # ----------------------------------------------------------------------------- write
    def put(self, weights: LoRAWeights, record: AdapterRecord,
            memory: dict | None = None) -> tuple[AdapterRecord, bool]:
        """Publish an adapter (and its document's memory, if given) atomically; if another writer
        published the same id first, keep theirs.

        Returns the record now in the store and whether it is ours (False: another writer won).
        """
        final = self.folder(record.id)
        ranks = weights.stored_ranks()  # one scan of the factors for both files
        data = weights.to_safetensors_bytes(ranks)
        config = json.dumps(weights.peft_config(ranks), indent=2).encode()
        record.sha256 = {WEIGHTS_NAME: _sha256(data), CONFIG_NAME: _sha256(config)}
        record.bytes = weights.nbytes
        mem = _memory_bytes(memory) if memory else None
        if mem is not None:
            record.sha256[MEMORY_NAME] = _sha256(mem)
        stage = Path(tempfile.mkdtemp(prefix=f"put-{record.id}.", dir=self.tmp))
        try:
            _write_synced(stage / WEIGHTS_NAME, data)
            _write_synced(stage / CONFIG_NAME, config)
            if mem is not None:
                _write_synced(stage / MEMORY_NAME, mem)
            _write_synced(stage / META_NAME, json.dumps(weights.meta, indent=2).encode())
            _write_synced(stage / RECORD_NAME, json.dumps(asdict(record), indent=2).encode())
            _write_synced(stage / USED_NAME, b"")
            stage.chmod(0o755)
            _fsync_dir(stage)
            if final.exists():
                self._replace_if_unusable(final)
            try:
                os.rename(stage, final)
            except OSError:
                if not final.exists():
                    raise
                log.info("adapter %s was published concurrently; keeping the first copy", record.id)
                return self.record(record.id) or record, False
            _fsync_dir(self.adapters)
            return record, True
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)

    def _replace_if_unusable(self, final: Path) -> None:
        """A tombstoned or half-broken folder must not block a fresh upload of the same id."""
        if (final / TOMBSTONE_NAME).exists() or not (final / RECORD_NAME).is_file():
            self._remove_tree(final)

    # ----------------------------------------------------------------------------- read
    def record(self, doc_id: str, include_deleted: bool = False) -> AdapterRecord | None:
        """The record of a live adapter, or None (unknown id, tombstoned, or unreadable record)."""
        if not is_adapter_id(doc_id):
            return None
        folder = self.adapters / doc_id
        if not include_deleted and (folder / TOMBSTONE_NAME).exists():
            return None
        try:
            return AdapterRecord.from_json(json.loads((folder / RECORD_NAME).read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            log.warning("unreadable record for %s: %s", doc_id, e)
            return None

    def exists(self, doc_id: str) -> bool:
        return self.record(doc_id) is not None

    def read_verified(self, doc_id: str) -> tuple[AdapterRecord, bytes, bytes]:
        """Record, safetensors bytes and PEFT config bytes, checked against the record's digests.

        A mismatch moves the folder to `quarantine/` (kept for inspection) and raises
        `CorruptAdapter`; an unknown id raises `DocumentNotFound`.
        """
        rec = self.record(doc_id)
        if rec is None:
            raise DocumentNotFound(f"no document adapter named '{_shorten(doc_id)}'", param="id")
        folder = self.adapters / doc_id
        try:
            data = (folder / WEIGHTS_NAME).read_bytes()
            config = (folder / CONFIG_NAME).read_bytes()
        except FileNotFoundError:
            data, config = b"", b""
        problems = []
        if _sha256(data) != rec.sha256.get(WEIGHTS_NAME):
            problems.append(WEIGHTS_NAME)
        if _sha256(config) != rec.sha256.get(CONFIG_NAME):
            problems.append(CONFIG_NAME)
        if problems:
            where = self.quarantine(doc_id)
            raise CorruptAdapter(f"stored adapter {doc_id} failed its checksum ({', '.join(problems)}); "
                                 f"it was moved aside ({where.name}) and is not served; upload the "
                                 "document again to rebuild it", param="id")
        return rec, data, config

    def load(self, doc_id: str) -> tuple[AdapterRecord, LoRAWeights]:
        rec, data, config = self.read_verified(doc_id)
        return rec, LoRAWeights.from_safetensors_bytes(data)

    def load_memory(self, doc_id: str) -> dict | None:
        """The document's memory, or None: none was kept, or the file fails its checksum (logged;
        the adapter itself stays servable and composes from its factors)."""
        rec = self.record(doc_id)
        if rec is None or MEMORY_NAME not in rec.sha256:
            return None
        try:
            data = (self.adapters / doc_id / MEMORY_NAME).read_bytes()
        except OSError as e:
            log.warning("memory of %s unreadable (%s); composing from its adapter", doc_id, e)
            return None
        if _sha256(data) != rec.sha256[MEMORY_NAME]:
            log.warning("memory of %s failed its checksum; composing from its adapter", doc_id)
            return None
        from safetensors.torch import load

        return load(data)

    def list(self) -> list[AdapterRecord]:
        """Live adapters, newest first.

        Served from an in-memory listing while the `adapters/` directory is unchanged: every
        change to the set of live adapters (a folder renamed in or out, a tombstone written or
        removed, by this process or another replica) moves that directory's mtime, so one stat
        tells whether the listing still holds. A stale listing is rebuilt with two stats per
        folder, reading only records it has not seen; with 10,000 adapters a list call costs a
        stat, not 10,000 file reads.
        """
        return list(self._current().records)

    def _current(self) -> "_Listing":
        try:
            mtime = os.stat(self.adapters).st_mtime_ns
        except FileNotFoundError:
            return _Listing(0, 0, [])
        now = time.time_ns()
        old = self._listing
        # Directory timestamps are coarse (a clock tick): a listing built within RACY_NS of the
        # last change may have missed a second change in the same tick, so it is not trusted.
        if old is not None and old.mtime_ns == mtime and old.built_ns - mtime > RACY_NS:
            return old
        known = {r.id: (r, ino) for r, ino in zip(old.records, old.inodes)} if old is not None else {}
        records, inodes = [], []
        try:
            names = os.listdir(self.adapters)
        except FileNotFoundError:
            names = []
        for name in names:
            if not is_adapter_id(name) or os.path.exists(self.adapters / name / TOMBSTONE_NAME):
                continue
            try:
                ino = os.stat(self.adapters / name / RECORD_NAME).st_ino
            except OSError:
                continue
            rec = known[name][0] if name in known and known[name][1] == ino else self.record(name)
            if rec is not None:
                records.append(rec)
                inodes.append(ino)
        order = sorted(range(len(records)), key=lambda i: (records[i].created, records[i].id), reverse=True)
        self._listing = _Listing(mtime, now, [records[i] for i in order], [inodes[i] for i in order])
        return self._listing

    # ----------------------------------------------------------------------------- LRU clock
    def touch(self, doc_id: str) -> None:
        """Mark an adapter used now (its `last_used` mtime); cheap enough to call per request."""
        if is_adapter_id(doc_id):
            with contextlib.suppress(OSError):
                os.utime(self.adapters / doc_id / USED_NAME)

    def last_used(self, doc_id: str) -> float:
        try:
            return (self.adapters / doc_id / USED_NAME).stat().st_mtime
        except OSError:
            return 0.0

    def least_recently_used(self, keep: int, in_use: set[str] = frozenset(), min_idle_s: float = 0.0) -> list[str]:
        """Ids to evict so that at most `keep` adapters stay, oldest first.

        Never one in `in_use`, nor one used less than `min_idle_s` ago: so fewer than the excess
        may come back, and the limit is soft while everything is busy.
        """
        return self.eviction_plan(keep, in_use, min_idle_s)[0]

    def eviction_plan(self, keep: int, protected: set[str] = frozenset(), min_idle_s: float = 0.0,
                      in_use: set[str] = frozenset()) -> tuple[list[str], list[str]]:
        """`(victims, deferred)` in one listing: victims as `least_recently_used` with both
        `protected` and `in_use` spared; deferred, the `in_use` ids that would otherwise have been
        victims (what running requests kept)."""
        live = self.live_ids()
        excess = len(live) - keep
        if excess <= 0:
            return [], []
        idle_before = time.time() - min_idle_s
        used = {}
        for i in live:
            if i in protected:
                continue
            for path in (self.adapters / i / USED_NAME, self.adapters / i):  # a folder without a clock: its own
                try:
                    used[i] = path.stat().st_mtime
                    break
                except OSError:  # removed meanwhile (another replica's eviction or delete)
                    continue
        candidates = sorted((i for i, t in used.items() if min_idle_s <= 0 or t <= idle_before), key=used.get)
        victims = [i for i in candidates if i not in in_use][:excess]
        return victims, [i for i in candidates[:excess] if i in in_use]

    def live_ids(self) -> list[str]:
        """Ids of live adapters (not tombstoned, record readable), from the listing: a stat while
        nothing changed. The tombstone is looked at before the record when the listing is rebuilt,
        so a folder purged in between is not counted as live because its tombstone went with it."""
        return [r.id for r in self._current().records]

    def composites_of(self, doc_id: str) -> list[str]:
        """Live composites that include `doc_id`."""
        return [r.id for r in self._current().records if r.parts and doc_id in r.parts]

    def count(self) -> int:
        return len(self._current().records)

    def _changed(self) -> None:
        """Move the `adapters/` mtime after a change inside a folder (tombstone), so every
        process's listing sees it (renames in and out of `adapters/` move it by themselves)."""
        with contextlib.suppress(OSError):
            os.utime(self.adapters)

    def clean_staging(self, older_than_s: float = 3600.0) -> int:
        """Remove staging and trash left by a writer that was killed mid-write.

        Only old entries: another replica sharing the store may be writing one right now.
        """
        removed, cutoff = 0, time.time() - older_than_s
        try:
            entries = list(os.scandir(self.tmp))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed += 1
            except OSError:
                continue
        return removed

    # ----------------------------------------------------------------------------- delete
    def mark_deleted(self, doc_id: str) -> bool:
        """Tombstone: clients stop seeing the adapter now; files stay until `purge`.

        Files outlive the tombstone because a request already running may need vLLM to reload
        them from disk, and a reload that finds nothing would take the engine down.
        """
        if self.record(doc_id) is None:
            return False
        _write_synced(self.adapters / doc_id / TOMBSTONE_NAME, b"")
        self._changed()
        return True

    def undelete(self, doc_id: str) -> bool:
        if not is_adapter_id(doc_id):
            return False
        try:
            (self.adapters / doc_id / TOMBSTONE_NAME).unlink()
        except FileNotFoundError:
            return False
        self._changed()
        return True

    def is_deleted(self, doc_id: str) -> bool:
        return is_adapter_id(doc_id) and (self.adapters / doc_id / TOMBSTONE_NAME).exists()

    def purge(self, doc_id: str, only_if_deleted: bool = True) -> bool:
        """Remove the folder (atomically: rename away, then delete)."""
        if not is_adapter_id(doc_id):
            return False
        folder = self.adapters / doc_id
        if only_if_deleted and not (folder / TOMBSTONE_NAME).exists():
            return False
        return self._remove_tree(folder)

    def remove(self, doc_id: str) -> bool:
        """Remove unconditionally (rollback of a failed registration)."""
        return self.purge(doc_id, only_if_deleted=False)

    def quarantine(self, doc_id: str) -> Path:
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        dest = self.quarantine_dir / f"{doc_id}.{int(time.time() * 1000)}"
        try:
            os.rename(self.adapters / doc_id, dest)
        except OSError as e:
            log.warning("could not quarantine %s: %s", doc_id, e)
        else:
            log.error("stored adapter %s failed its checksum; moved to %s", doc_id, dest)
        return dest

    def _remove_tree(self, folder: Path) -> bool:
        trash = self.tmp / f"trash-{folder.name}.{os.getpid()}.{time.monotonic_ns()}"
        try:
            os.rename(folder, trash)
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True


def _shorten(value: object, limit: int = 80) -> str:
    """Echo client input safely: printable and bounded."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."
