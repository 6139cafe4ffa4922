"""The document service: upload, look up, delete, compose; owns the generators (documents, task
descriptions) and talks to the engine.

HTTP-free on purpose (routes.py maps its errors to responses), so the policy lives in one place:

- Generation runs on one dedicated thread, never on the event loop, so chat traffic keeps
  flowing while a long document is read. Uploads of the same document share one computation
  (an in-flight table keyed by id), and a client that disconnects does not cancel it for others.
  The generation thread looks in the store once more before computing, so an upload that raced
  past the in-flight table (or one another replica just finished) is not computed twice.
- A generator failure (out of memory on a huge document, any exception) fails that upload with
  a message naming the cause; nothing reaches the engine, and the thread serves the next upload.
- Store first, engine second: the adapter is published in the store, then registered in the
  workers from its bytes (`collective_rpc`), then added to vLLM's table of served adapters. A
  failed registration removes the store entry it just wrote.
- Rank: vLLM pads every adapter to `--max-lora-rank` and refuses larger ones. By default an
  adapter that needs more rank is recompressed by truncated SVD (`LoRAWeights.cap_rank`: the best
  approximation at that rank) and reported as `"compressed": true`; with `VLLM_D2L_OVER_RANK=refuse`
  the upload gets a 400 naming the rank it needs.
- Delete: tombstone in the store (the id is gone for clients at once), drop it from vLLM's table,
  then, once no running request uses it, unload it from the workers and purge the files. Files
  outlive running requests because vLLM may reload an evicted adapter from disk mid-request.
- Store limit: after each new adapter, the least recently used ones beyond
  `--max-stored-documents` are deleted the same way; never one a running request or an upload
  uses, nor one used within `VLLM_D2L_EVICT_MIN_IDLE_S` (requests on other replicas are invisible
  here, the recent-use clock in the shared store is not).
"""
from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vllm.lora.request import LoRARequest

from ..compose import compose
from ..errors import D2LError
from ..generator import Generator, decode_text
from . import get_logger, metrics
from .errors import (CorruptAdapter, DocumentNotFound, DocumentTooLong, GeneratorOutOfMemory, InternalizeFailed,
                     NotReady, OverRank, RegistrationFailed, ServingError)
from .ids import MAX_PARTS, composite_id, is_upload_id, kind_of, split_composite, upload_id
from .settings import Settings
from .store import AdapterRecord, AdapterStore, _shorten
from .worker import METHOD_NAME


log = get_logger(__name__)

PURGE_POLL_S = 0.25
PURGE_MAX_WAIT_S = 600.0
RPC_TIMEOUT_S = 120.0


class DocumentService:
    def __init__(self, engine_client: Any, models: Any, settings: Settings, store: AdapterStore,
                 generator: Generator | None, max_lora_rank: int, hf_config: Any = None,
                 not_ready_reason: str | None = None, task_generator: Generator | None = None):
        self.engine_client = engine_client
        self.models = models  # vLLM's OpenAIServingModels: its table is what requests are checked against
        self.settings = settings
        self.store = store
        self.generator = generator
        self.max_lora_rank = max_lora_rank
        self.hf_config = hf_config
        self.not_ready_reason = not_ready_reason
        self.fingerprint = generator.fingerprint if generator else ""
        # documents and task descriptions: one generator each (they share the base model's weights)
        self.generators = {"document": generator, "task": task_generator}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vllm-d2l-internalize",
                                            initializer=_lower_priority, initargs=(settings.internalize_nice,))
        self._inflight: dict[str, asyncio.Future] = {}
        self._purges: dict[str, asyncio.Task] = {}
        self._evict_lock = asyncio.Lock()
        self.request_counts: Counter[str] = Counter()
        # adapter names with a completion request somewhere between our middleware and its last
        # byte: vLLM sends a streamed response's headers before the request reaches the engine, so
        # the engine's own table alone leaves a window in which a named adapter could be evicted
        self._open_requests: Counter[str] = Counter()
        self.computed = 0  # documents this server actually ran through the generator

    # ----------------------------------------------------------------------------- upload
    async def upload(self, text: str | bytes, name: str | None = None, kind: str = "document") -> dict:
        gen = self.generators[kind]
        if gen is None:
            raise NotReady(f"{kind} upload is unavailable: {self.not_ready_reason or 'no ' + kind + ' hypernetwork'}")
        text = decode_text(text)
        doc_id = upload_id(text, gen.fingerprint, kind)

        cached = await self._cached(doc_id)
        if cached is not None:
            metrics.CACHE_HITS.inc()
            return cached.public(cached=True)

        fut = self._inflight.get(doc_id)
        joined = fut is not None
        if fut is None:
            fut = asyncio.ensure_future(self._create(doc_id, text, name, kind))
            self._inflight[doc_id] = fut
            fut.add_done_callback(lambda _f, i=doc_id: self._inflight.pop(i, None))
        record, seconds, ours = await asyncio.shield(fut)
        if joined or not ours:
            metrics.CACHE_HITS.inc()
            return record.public(cached=True)
        return record.public(cached=False, seconds=round(seconds, 4))

    async def _cached(self, doc_id: str) -> AdapterRecord | None:
        """A stored adapter for this id, registered with the engine; None if it must be computed."""
        rec = await asyncio.to_thread(self.store.record, doc_id, True)
        if rec is None:
            return None
        if self.store.is_deleted(doc_id):
            self.store.undelete(doc_id)  # same text again after a DELETE: the files are still whole
        self.store.touch(doc_id)
        try:
            rec2, data, config = await asyncio.to_thread(self.store.read_verified, doc_id)
        except CorruptAdapter as e:  # quarantined: compute afresh
            log.error("vllm-d2l: %s", e)
            metrics.CORRUPT.inc()
            return None
        except DocumentNotFound:  # purged in between
            return None
        if rec2.rank > self.max_lora_rank:
            raise OverRank(f"the stored adapter {doc_id} has rank {rec2.rank} (made by a server with a larger "
                           f"--max-lora-rank); this server holds at most rank {self.max_lora_rank}: restart it with "
                           f"--max-lora-rank {rec2.rank} or more, or send the document to a server that has it")
        await self.ensure_registered(doc_id, data, config)
        return rec2

    async def _create(self, doc_id: str, text: str, name: str | None,
                      kind: str = "document") -> tuple[AdapterRecord, float, bool]:
        metrics.QUEUE.inc()
        try:
            loop = asyncio.get_running_loop()
            record, data, config, seconds, ours = await loop.run_in_executor(
                self._executor, self._compute, doc_id, text, name, kind)
        finally:
            metrics.QUEUE.dec()
        try:
            await self.ensure_registered(doc_id, data, config, replace=True)
        except Exception:
            if ours:  # roll back only what this call published
                await asyncio.to_thread(self.store.remove, doc_id)
                log.warning("vllm-d2l: registration of %s failed; its store entry was removed", doc_id)
            raise
        if ours:
            metrics.INTERNALIZE_SECONDS.observe(seconds)
            metrics.DOCUMENTS.inc()
            metrics.TOKENS.inc(record.tokens)
            log.info("vllm-d2l: internalized %s (%s tokens, %s chunks, rank %s) in %.2fs",
                     doc_id, record.tokens, record.chunks, record.rank, seconds)
            await self.enforce_store_limit(keep=doc_id)
        return record, seconds, ours

    def _compute(self, doc_id: str, text: str, name: str | None,
                 kind: str = "document") -> tuple[AdapterRecord, bytes, bytes, float, bool]:
        """Runs on the generation thread: text -> adapter -> store. Returns what is stored and
        whether this call computed and published it."""
        t0 = time.perf_counter()
        existing = self._stored_copy(doc_id)
        if existing is not None:
            return (*existing, time.perf_counter() - t0, False)
        gen = self.generators[kind]
        result = self._internalize(text, gen)
        weights, full_rank = self._fit_rank(
            result.weights, f"this {kind} needs an adapter of rank {result.weights.rank} ({result.chunks} chunks)",
            f"send a shorter {kind}")
        if self.hf_config is not None:
            weights.validate(self.hf_config)
        record = AdapterRecord(
            id=doc_id, tokens=result.tokens, chunks=result.chunks, rank=weights.rank, bytes=weights.nbytes,
            created=int(time.time()), name=name, full_rank=full_rank if full_rank != weights.rank else None,
            fingerprint=gen.fingerprint, base_model=str(gen.base_model_name), kind=kind)
        _, ours = self.store.put(weights, record, memory=result.memory)
        if ours:
            self.computed += 1
        stored, data, config = self.store.read_verified(doc_id)
        return stored, data, config, time.perf_counter() - t0, ours

    def _fit_rank(self, weights, needs: str, or_else: str, param: str | None = None):
        """`(weights, full rank)` within `--max-lora-rank`: recompressed, or refused as `--over-rank`
        says (the message: what `needs` that rank, and `or_else` as the client's other way out)."""
        full_rank = weights.rank
        if full_rank <= self.max_lora_rank:
            return weights, full_rank
        if self.settings.over_rank == "refuse":
            raise OverRank(f"{needs} but the server holds at most rank {self.max_lora_rank}; restart it with a "
                           f"larger --max-lora-rank, {or_else}, or allow compression (--over-rank compress)",
                           param=param)
        metrics.COMPRESSED.inc()
        return weights.cap_rank(self.max_lora_rank), full_rank

    def _stored_copy(self, doc_id: str) -> tuple[AdapterRecord, bytes, bytes] | None:
        """A whole, live copy already in the store (published since this upload looked), or None."""
        if self.store.record(doc_id) is None:
            return None
        try:
            return self.store.read_verified(doc_id)
        except (CorruptAdapter, DocumentNotFound):
            return None

    def _internalize(self, text: str, gen: Generator):
        """The generator call, with its failures turned into errors a client can act on."""
        limit = self.settings.max_document_tokens
        try:
            n_tokens = len(gen.tokenize(text))
            if n_tokens > limit:
                raise DocumentTooLong(
                    f"document has {n_tokens} tokens; this server accepts at most {limit} "
                    "(--max-document-tokens / VLLM_D2L_MAX_DOCUMENT_TOKENS); split it into several documents",
                    param="text")
            return gen.internalize(text)
        except (ServingError, D2LError):
            raise
        except MemoryError as e:  # torch.OutOfMemoryError (CUDA and CPU allocators) is a RuntimeError
            self._release_memory()
            raise GeneratorOutOfMemory(self._oom_message(text, e)) from None
        except Exception as e:
            if _is_out_of_memory(e):
                self._release_memory()
                raise GeneratorOutOfMemory(self._oom_message(text, e)) from None
            log.exception("vllm-d2l: the generator failed")
            raise InternalizeFailed(f"internalizing the document failed ({type(e).__name__}: "
                                    f"{_shorten(str(e), 200)}); the server is still serving, the upload "
                                    "was not stored") from None

    def _oom_message(self, text: str, e: BaseException) -> str:
        log.error("vllm-d2l: out of memory internalizing a %d-character document: %s", len(text), e)
        return (f"the server ran out of memory reading this document ({len(text)} characters); send a shorter "
                "document (or split it), or lower --max-document-tokens so such uploads are refused early")

    @staticmethod
    def _release_memory() -> None:
        gc.collect()
        try:
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:
            pass

    # ----------------------------------------------------------------------------- store limit
    async def enforce_store_limit(self, keep: str | None = None) -> list[str]:
        """Evict least recently used adapters beyond `max_stored_documents`; returns the evicted ids.

        Never raises: an upload that succeeded stays a success even if housekeeping fails.
        """
        limit = self.settings.max_stored_documents
        try:
            async with self._evict_lock:
                if await asyncio.to_thread(self.store.count) <= limit:
                    return []
                protected = set(self._inflight) | ({keep} if keep else set())
                in_use = self.adapters_in_use() or self.open_adapters()
                victims, deferred = await asyncio.to_thread(self.store.eviction_plan, limit, protected,
                                                            self.settings.evict_min_idle_s, in_use)
                metrics.DEFERRED.inc(len(deferred))  # growing: the limit is too tight for the traffic
                for doc_id in victims:
                    await self._evict(doc_id)
                if victims:
                    log.info("vllm-d2l: store over %d adapters; evicted %d least recently used: %s",
                             limit, len(victims), ", ".join(victims[:5]) + (" ..." if len(victims) > 5 else ""))
                return victims
        except Exception:
            log.exception("vllm-d2l: enforcing the store limit failed")
            return []

    async def _evict(self, doc_id: str) -> None:
        known = await asyncio.to_thread(self.store.mark_deleted, doc_id)
        if not known:  # a folder without a readable record cannot be served anyway
            await asyncio.to_thread(self.store.remove, doc_id)
        requests = await self._unregister(doc_id)
        metrics.EVICTED.inc()
        self._schedule_purge(doc_id, requests)
        await self._drop_composites_of(doc_id)

    async def _unregister(self, adapter_id: str) -> list[LoRARequest]:
        """Take an adapter out of vLLM's table under every name that serves its folder (a document
        under its id; a composite under each ordering of its parts that was asked for)."""
        path = str(self.store.folder(adapter_id))
        names = [n for n, r in list(self.models.lora_requests.items()) if n == adapter_id or r.lora_path == path]
        requests = []
        for name in names:
            async with self.models.lora_resolver_lock[name]:
                request = self.models.lora_requests.pop(name, None)
            self.request_counts.pop(name, None)
            if request is not None:
                requests.append(request)
        return requests

    async def _drop_composites_of(self, doc_id: str) -> None:
        """A composite is served only while all its parts are: a deleted or evicted document's
        content must not live on inside one."""
        for mix_id in await asyncio.to_thread(self.store.composites_of, doc_id):
            await asyncio.to_thread(self.store.mark_deleted, mix_id)
            self._schedule_purge(mix_id, await self._unregister(mix_id))

    def _schedule_purge(self, adapter_id: str, requests: list[LoRARequest]) -> None:
        if adapter_id in self._purges:
            return
        task = asyncio.ensure_future(self._purge_when_idle(adapter_id, requests))
        self._purges[adapter_id] = task
        task.add_done_callback(lambda _t, i=adapter_id: self._purges.pop(i, None))

    # ----------------------------------------------------------------------------- engine
    async def ensure_registered(self, doc_id: str, data: bytes, config: bytes, replace: bool = False,
                                folder_id: str | None = None) -> bool:
        """Make `doc_id` (a model name) servable by this server's engine from the stored folder
        `folder_id` (default: the same id); True if it was registered now."""
        table = self.models.lora_requests
        if doc_id in table and not replace:
            return False
        async with self.models.lora_resolver_lock[doc_id]:
            if doc_id in table and not replace:
                return False
            previous = table.get(doc_id)
            int_id = previous.lora_int_id if previous is not None else self.models.lora_id_counter.inc(1)
            path = str(self.store.folder(folder_id or doc_id))
            await self._register_in_workers(int_id, doc_id, path, data, config)
            table[doc_id] = LoRARequest(lora_name=doc_id, lora_int_id=int_id, lora_path=path)
            return True

    async def _register_in_workers(self, int_id: int, doc_id: str, path: str, data: bytes, config: bytes) -> None:
        try:
            results = await self.engine_client.collective_rpc(
                METHOD_NAME, timeout=RPC_TIMEOUT_S, args=(int_id, doc_id, path, data, config.decode()))
        except Exception as e:
            if "not implemented" not in str(e).lower():
                raise RegistrationFailed(f"the engine could not register adapter {doc_id}: {e}") from e
            # the general plugin is not loaded in the workers: let vLLM load the folder itself
            log.warning("vllm-d2l: worker method missing (is VLLM_PLUGINS excluding vllm_d2l?); loading from disk")
            try:
                await self.engine_client.add_lora(LoRARequest(lora_name=doc_id, lora_int_id=int_id, lora_path=path))
            except Exception as e2:
                raise RegistrationFailed(f"the engine could not load adapter {doc_id}: {e2}") from e2
            return
        failures = [r.get("error", "unknown error") if isinstance(r, dict) else repr(r)
                    for r in (results or []) if not (isinstance(r, dict) and r.get("ok"))]
        if failures:
            raise RegistrationFailed(f"the engine could not register adapter {doc_id}: {failures[0]}")

    def registered_documents(self) -> int:
        return sum(1 for k in list(self.models.lora_requests) if is_upload_id(k))

    def adapters_in_use(self) -> set[str] | None:
        """Adapter names of requests the engine is running now, or that this server has accepted
        and not yet finished answering; None if this vLLM hides the engine's side.

        Reads vLLM 0.32's `AsyncLLM.output_processor.request_states` (no public API exists);
        tests pin this so a vLLM change shows up as a failure, not a silent early purge.
        """
        states = getattr(getattr(self.engine_client, "output_processor", None), "request_states", None)
        if states is None:
            return None
        return self.open_adapters() | {name for s in list(states.values()) if (name := getattr(s, "lora_name", None))}

    def open_adapters(self) -> set[str]:
        """Adapter names held by completion requests this server has not finished answering."""
        return {name for name, n in list(self._open_requests.items()) if n > 0}

    def request_opened(self, model: str | None) -> tuple[str, ...]:
        """Hold the adapters `model` names until `request_closed` is called with the result; a
        composite holds its name, its parts and its stored folder."""
        if not model:
            return ()
        if is_upload_id(model):
            names: tuple[str, ...] = (model,)
        elif (pieces := split_composite(model)) and all(is_upload_id(p) for p in pieces):
            names = (model, *pieces, composite_id(pieces))
        else:
            return ()
        self._open_requests.update(names)
        return names

    def request_closed(self, names: tuple[str, ...]) -> None:
        self._open_requests.subtract(names)
        for name in names:
            if self._open_requests[name] <= 0:
                del self._open_requests[name]

    # ----------------------------------------------------------------------------- read
    async def get(self, doc_id: str, kind: str = "document") -> dict:
        rec = await asyncio.to_thread(self.store.record, doc_id) if kind_of(doc_id) == kind else None
        if rec is None:
            raise DocumentNotFound(f"no {kind} adapter named '{_shorten(doc_id)}'", param="id")
        return self.describe(rec)

    async def list(self, kind: str = "document") -> list[dict]:
        return [self.describe(r) for r in await asyncio.to_thread(self.documents, kind)]

    def documents(self, kind: str = "document") -> list[AdapterRecord]:
        """Stored records of one kind made by this server's generator for it, newest first."""
        gen = self.generators.get(kind)
        fp = gen.fingerprint if gen is not None else ""
        return [r for r in self.store.list()
                if not r.parts and kind_of(r.id) == kind and (not fp or r.fingerprint == fp)]

    def adapters(self) -> list[AdapterRecord]:
        """Stored documents and tasks of this server's generators, newest first (for /v1/models)."""
        fps = {g.fingerprint for g in self.generators.values() if g is not None}
        return [r for r in self.store.list() if not r.parts and (not fps or r.fingerprint in fps)]

    def describe(self, rec: AdapterRecord) -> dict:
        return rec.public(loaded=rec.id in self.models.lora_requests, requests=self.request_counts.get(rec.id, 0))

    # ----------------------------------------------------------------------------- delete
    async def delete(self, doc_id: str, kind: str = "document") -> dict:
        if kind_of(doc_id) != kind:
            raise DocumentNotFound(f"no {kind} adapter named '{_shorten(doc_id)}'", param="id")
        known = await asyncio.to_thread(self.store.mark_deleted, doc_id)
        requests = await self._unregister(doc_id)
        if not known and not requests:
            raise DocumentNotFound(f"no {kind} adapter named '{doc_id}'", param="id")
        self._schedule_purge(doc_id, requests)
        await self._drop_composites_of(doc_id)
        return {"id": doc_id, "object": "adapter", "deleted": True}

    async def _purge_when_idle(self, adapter_id: str, requests: list[LoRARequest]) -> None:
        names = {adapter_id} | {r.lora_name for r in requests}
        try:
            deadline = time.monotonic() + PURGE_MAX_WAIT_S
            while time.monotonic() < deadline:
                in_use = self.adapters_in_use()
                if in_use is None:
                    await asyncio.sleep(30.0)  # cannot see running requests: give them a grace period
                    break
                if not names & in_use:
                    break
                await asyncio.sleep(PURGE_POLL_S)
            path = str(self.store.folder(adapter_id))
            if any(n == adapter_id or r.lora_path == path for n, r in list(self.models.lora_requests.items())):
                return  # uploaded (or composed) again meanwhile
            for request in requests:
                try:
                    await self.engine_client.remove_lora(request.lora_int_id)
                except Exception as e:
                    log.warning("vllm-d2l: unloading %s from the workers failed: %s", request.lora_name, e)
            await asyncio.to_thread(self.store.purge, adapter_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("vllm-d2l: purging %s failed", adapter_id)

    # ----------------------------------------------------------------------------- traffic
    def note_request(self, model: str | None) -> None:
        """Count a completion request by model kind (bounded labels) and per document (in memory)."""
        if not model or self.models.is_base_model(model):
            metrics.REQUESTS.labels(kind="base").inc()
        elif is_upload_id(model):
            metrics.REQUESTS.labels(kind=kind_of(model)).inc()
            self.request_counts[model] += 1
            self.store.touch(model)
        elif (pieces := split_composite(model)) and all(is_upload_id(p) for p in pieces):
            metrics.REQUESTS.labels(kind="composite").inc()
            self.request_counts[model] += 1
            for adapter_id in (*pieces, composite_id(pieces)):  # parts stay warm while their composite is used
                self.store.touch(adapter_id)
        else:
            metrics.REQUESTS.labels(kind="other").inc()

    def refusal_for(self, model: str) -> ServingError | None:
        """An error naming the fix for a stored adapter this engine cannot load, else None.

        Only a stored adapter above `--max-lora-rank` (made by a server with a larger one) today:
        vLLM would refuse it with a bare "could not be loaded". Checked only for ids not yet in
        vLLM's table, so served adapters cost nothing here.
        """
        if model in self.models.lora_requests:
            return None
        rec = self.store.record(model)
        if rec is None or rec.rank <= self.max_lora_rank:
            return None
        return OverRank(f"adapter {model} has rank {rec.rank} (made by a server with a larger --max-lora-rank); "
                        f"this server holds at most rank {self.max_lora_rank}: restart it with --max-lora-rank "
                        f"{rec.rank} or more, or send the request to a server that has it", param="model")

    def forget_if_gone(self, model: str | None) -> None:
        """If another replica deleted this document, stop serving it here too.

        Dropping it from vLLM's table sends the request to the resolver, which finds the tombstone
        and answers 404, instead of letting vLLM later reload files that are about to vanish.
        """
        if not isinstance(model, str) or model not in self.models.lora_requests:
            return
        pieces = split_composite(model)
        if pieces and all(is_upload_id(p) for p in pieces):  # a composite goes with any of its parts
            folder, watched = composite_id(pieces), [*pieces, composite_id(pieces)]
        elif is_upload_id(model):
            folder, watched = model, [model]
        else:
            return
        if any(self.store.is_deleted(i) or not self.store.folder(i).is_dir() for i in watched):
            request = self.models.lora_requests.pop(model, None)
            if request is not None:
                self._schedule_purge(folder, [request])

    # ----------------------------------------------------------------------------- composites
    async def ensure_composite(self, model: str) -> None:
        """Make `doc-A+doc-B+...` servable: compose the parts' stored adapters (no document is
        read again), store the composite under its `mix-` id and register it under this name.

        Raises a 4xx `ServingError` naming the bad or missing part, or the rank flag.
        """
        pieces = split_composite(model)
        if pieces is None or model in self.models.lora_requests:
            return
        if self.generator is None:
            raise NotReady(f"composing adapters is unavailable: {self.not_ready_reason}", param="model")
        bad = [p for p in pieces if not is_upload_id(p)]
        if bad:
            raise ServingError(f"'{_shorten(bad[0])}' in model '{_shorten(model)}' is not a document or task id; "
                               "a composite names stored adapters joined by '+', e.g. doc-…+doc-…+task-…",
                               param="model")
        parts = sorted(set(pieces))
        if len(parts) < 2:
            raise ServingError("a composite needs at least two different adapters", param="model")
        if len(parts) > MAX_PARTS:
            raise ServingError(f"a composite may join at most {MAX_PARTS} adapters, got {len(parts)}", param="model")
        mix_id = composite_id(parts)
        fut = self._inflight.get(mix_id)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(self._compose_stored, mix_id, parts))
            self._inflight[mix_id] = fut
            fut.add_done_callback(lambda _f, i=mix_id: self._inflight.pop(i, None))
        record, data, config, ours = await asyncio.shield(fut)
        await self.ensure_registered(model, data, config, folder_id=mix_id)
        if ours:
            metrics.COMPOSED.inc()
            log.info("vllm-d2l: composed %s from %d documents (rank %s)", mix_id, len(parts), record.rank)
            await self.enforce_store_limit(keep=mix_id)

    def _compose_stored(self, mix_id: str, parts: list[str]) -> tuple[AdapterRecord, bytes, bytes, bool]:
        """Runs off the event loop: the stored composite, or one built from the parts now."""
        for part in parts:  # a missing part is the client's to fix, whatever else is stored
            if self.store.record(part) is None:
                raise DocumentNotFound(f"no {kind_of(part)} adapter named '{part}' (a part of the requested "
                                       "composite); upload it first", param="model")
        existing = self._stored_copy(mix_id)
        if existing is not None:
            self.store.touch(mix_id)
            return (*existing, False)
        weights = compose(self._pooled_groups(parts))
        weights, full_rank = self._fit_rank(
            weights, f"the composite of these {len(parts)} adapters needs rank {weights.rank}", "join fewer adapters",
            param="model")
        weights.meta["parts"] = parts
        record = AdapterRecord(
            id=mix_id, tokens=int(weights.meta.get("tokens", 0)), chunks=int(weights.meta.get("chunks", 0)),
            rank=weights.rank, bytes=weights.nbytes, created=int(time.time()),
            full_rank=full_rank if full_rank != weights.rank else None, fingerprint=self.fingerprint,
            base_model=str(self.generator.base_model_name), parts=parts)
        _, ours = self.store.put(weights, record)
        stored, data, config = self.store.read_verified(mix_id)
        return stored, data, config, ours

    def _pooled_groups(self, parts: list[str]) -> list:
        """The parts as adapters to compose: two or more parts made by one of this server's
        generators, each with its memory kept, become one adapter of their folded memories (as if
        they were one document); every other part comes as stored."""
        groups: dict[str, list[tuple[Generator, str, AdapterRecord, dict]]] = {}
        loose = []
        for part in parts:
            rec = self.store.record(part)
            gen = next((g for g in self.generators.values()
                        if g is not None and rec is not None and g.fingerprint == rec.fingerprint), None)
            memory = self.store.load_memory(part) if gen is not None else None  # kept only by kinds that pool
            if memory is None:
                loose.append(part)
            else:
                groups.setdefault(gen.fingerprint, []).append((gen, part, rec, memory))
        pooled = []
        for group in groups.values():
            if len(group) == 1:
                loose.append(group[0][1])
                continue
            pooled.append(group[0][0].pool([m for *_, m in group],
                                           {"tokens": sum(r.tokens for _, _, r, _ in group),
                                            "chunks": sum(r.chunks for _, _, r, _ in group)}))
        return [self.store.load(part)[1] for part in loose] + pooled

    async def close(self) -> None:
        for task in list(self._purges.values()):
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _lower_priority(nice: int) -> None:
    """Raise this thread's niceness (Linux keeps one per thread). Threads it starts inherit it,
    and torch starts its intra-op pool from the thread that first runs a parallel op, so the
    generator's pool runs at the same low priority."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError as e:
        log.warning("vllm-d2l: could not lower the internalization thread's priority: %s", e)


def _is_out_of_memory(e: BaseException) -> bool:
    """torch raises `torch.OutOfMemoryError` (a RuntimeError) on CUDA, and plain RuntimeErrors
    whose message says so from some CPU allocators."""
    try:
        import torch
        if isinstance(e, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                           or "failed to allocate" in msg)
