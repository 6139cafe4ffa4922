"""What the document server survives: bad input, limits, an API key, faults, concurrency, a shared
store between replicas, `kill -9` and a restart, and LRU eviction of the store.

Three real servers on a tiny model, all on one store directory: A (with `--api-key` and injected
faults) and B (a second replica) start together; near the end A is killed with SIGKILL and
restarted as A2 with a small `--max-stored-documents` for the eviction tests. Tests run in file
order and share the servers (startup dominates the time on two cores).
"""
from __future__ import annotations

import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import torch

from vllm_d2l.serving.ids import document_id
from vllm_d2l.serving.store import AdapterRecord, AdapterStore
from vllm_d2l.serving.testing import PeakRss, ServerProcess

sys.path.insert(0, str(Path(__file__).parent))
from tiny import build_servable  # noqa: E402

pytestmark = pytest.mark.slow

API_KEY = "reliability-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_RANK = 32
MAX_BODY = 100_000
MAX_DOC_TOKENS = 2_000
MAX_STORED_AFTER_RESTART = 4
LONG_REQUEST_TOKENS = 16_000  # a request that normally outlasts an upload (A2's context is longer)
FAULTS = {"oom": "<<OOM>>", "crash": "<<CRASH>>", "register": "<<NOREG>>"}
COMMON = ["--dtype", "float32", "--max-model-len", "256", "--max-num-seqs", "8", "--max-loras", "2",
          "--max-lora-rank", str(MAX_RANK), "--disable-log-stats"]


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    model, _ = build_servable(root, max_positions=LONG_REQUEST_TOKENS + 256)
    victim = root / "victim"  # a folder next to the store that hostile ids must never reach
    victim.mkdir()
    (victim / "d2l.json").write_text("{}")
    return {"root": root, "model": model, "hypernet": root / "hypernet", "store": root / "store", "victim": victim}


def _server_a(env, *extra: str, log: str = "a.log", env_vars: dict | None = None) -> ServerProcess:
    return ServerProcess(
        ["--model", str(env["model"]), "--hypernet", str(env["hypernet"]), "--store", str(env["store"]),
         "--api-key", API_KEY, "--max-body-bytes", str(MAX_BODY), "--max-document-tokens", str(MAX_DOC_TOKENS),
         *COMMON, *extra],
        env={"VLLM_D2L_TEST_FAULTS": ",".join(f"{k}={v}" for k, v in FAULTS.items()), **(env_vars or {})},
        log_path=env["root"] / log, startup_timeout=400)


@pytest.fixture(scope="module")
def servers(env):
    """A and B on one store, started in parallel."""
    a = _server_a(env)
    b = ServerProcess(["--model", str(env["model"]), "--hypernet", str(env["hypernet"]), "--store", str(env["store"]),
                       *COMMON], log_path=env["root"] / "b.log", startup_timeout=400)
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        started = [pool.submit(s.start) for s in (a, b)]
        errors = [f.exception() for f in started]
    try:
        if any(errors):
            raise next(e for e in errors if e)
        _report(f"servers A and B ready in {time.monotonic() - t0:.1f}s (started in parallel)")
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def a(servers):
    with httpx.Client(base_url=servers[0].base_url, timeout=120, headers=AUTH) as c:
        yield c


@pytest.fixture(scope="module")
def b(servers):
    with httpx.Client(base_url=servers[1].base_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def base_name(a):
    return a.get("/v1/models").json()["data"][0]["id"]


@pytest.fixture(scope="module")
def docs(a):
    out = []
    for text in ("Rome is the capital of Italy. Madrid is the capital of Spain. " * 5,
                 "The lighthouse keeper logs every ship that passes the northern cape. " * 4):
        r = a.post("/v1/documents", json={"text": text})
        assert r.status_code == 200, r.text
        out.append(r.json()["id"])
    return out


# ------------------------------------------------------------------------------------- helpers
_CONFIG: list = []


@pytest.fixture(scope="module", autouse=True)
def _keep_config(pytestconfig):
    _CONFIG[:] = [pytestconfig]


def _report(line: str) -> None:
    """Figures worth keeping (startup, RSS, durations), shown even when output is captured."""
    capture = _CONFIG[0].pluginmanager.getplugin("capturemanager") if _CONFIG else None
    if capture is None:
        print(f"[reliability] {line}")
        return
    with capture.global_and_fixture_disabled():
        sys.stderr.write(f"\n[reliability] {line}\n")


def chat(client: httpx.Client, model: str, question: str = "Where is the capital?",
         max_tokens: int = 8) -> httpx.Response:
    return client.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": question}], "max_tokens": max_tokens,
        "temperature": 0, "ignore_eos": True, "return_token_ids": True})


def token_ids(resp: httpx.Response) -> tuple[int, ...]:
    assert resp.status_code == 200, resp.text
    return tuple(resp.json()["choices"][0]["token_ids"])


def assert_vllm_error(resp: httpx.Response, status: int, *words: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"]), body
    assert body["error"]["code"] == status and body["error"]["message"]
    for w in words:
        assert w.lower() in body["error"]["message"].lower(), (w, body["error"]["message"])
    return body["error"]


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return 0.0


def assert_serving(client: httpx.Client, model: str) -> None:
    assert client.get("/health").status_code == 200
    token_ids(chat(client, model, max_tokens=2))


def _publish(env, text: str, rank_multiplier: int = 1) -> str:
    """Write an adapter into the shared store the way another replica would, unknown to the servers."""
    from vllm_d2l.generator import Generator
    from vllm_d2l.lora import LoRAWeights

    gen = Generator.load(env["hypernet"], env["model"])
    result = gen.internalize(text)
    w = result.weights
    if rank_multiplier > 1:  # the same update, spread over more rank: what a larger --max-lora-rank server stores
        w = LoRAWeights({k: torch.cat([v] * rank_multiplier) for k, v in w.a.items()},
                        {k: torch.cat([v / rank_multiplier] * rank_multiplier, dim=1) for k, v in w.b.items()},
                        w.base_model, w.meta)
    doc = document_id(text, gen.fingerprint)
    AdapterStore(env["store"]).put(w, AdapterRecord(id=doc, tokens=result.tokens, chunks=result.chunks, rank=w.rank,
                                                    bytes=w.nbytes, created=int(time.time()),
                                                    fingerprint=gen.fingerprint))
    return doc


# ------------------------------------------------------------------------------------- security
def test_api_key_guards_document_routes(servers, a, docs, base_name):
    url = servers[0].base_url
    doc = docs[0]
    calls = [("POST", "/v1/documents", {"text": "Guarded by the key. " * 3}), ("GET", "/v1/documents", None),
             ("GET", f"/v1/documents/{doc}", None), ("DELETE", f"/v1/documents/{doc}", None)]
    before = metric(a, 'vllm_d2l_requests_total{kind="document"}')
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        with httpx.Client(base_url=url, timeout=60, headers=headers) as anon:
            for method, path, body in calls:
                r = anon.request(method, path, json=body)
                assert r.status_code == 401, (method, path, headers, r.text)
            assert chat(anon, doc).status_code == 401
    # unauthenticated traffic never reaches our middleware: it cannot move the LRU clock or counters
    assert metric(a, 'vllm_d2l_requests_total{kind="document"}') == before
    assert a.get("/v1/documents").status_code == 200
    assert a.get(f"/v1/documents/{doc}").status_code == 200
    created = a.post("/v1/documents", json={"text": "Guarded by the key. " * 3})
    assert created.status_code == 200, created.text
    assert a.delete(f"/v1/documents/{created.json()['id']}").status_code == 200
    token_ids(chat(a, doc))
    assert a.get("/health").status_code == 200  # vLLM leaves /health open for probes


# ------------------------------------------------------------------------------------- bad input
HOSTILE_IDS = ["../victim", "../../victim/d2l.json", "doc-../victim", "/etc/passwd", "doc-" + "a" * 10_000,
               "doc-\x00" + "0" * 31, "doc-" + "0" * 31 + "\x00"]


def _chunked(data: bytes, size: int = 16_384):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_bad_uploads_are_4xx_in_vllm_shape_and_server_serves_on(a, docs):
    long_doc = " ".join(f"Entry {i} lists part {i * 13 % 97} in bin {i % 11}." for i in range(900))
    assert len(long_doc.encode()) < MAX_BODY
    oversized = b'{"text": "' + b"y" * (2 * MAX_BODY) + b'"}'  # streamed without a Content-Length
    cases = [
        ("empty text", a.post("/v1/documents", json={"text": ""}), 400, ["empty"]),
        ("whitespace", a.post("/v1/documents", json={"text": " \n\t  "}), 400, ["whitespace"]),
        ("NUL in text", a.post("/v1/documents", json={"text": "a\x00b"}), 400, ["NUL"]),
        ("non-UTF-8 text/plain", a.post("/v1/documents", content=b"caf\xe9 au lait",
                                        headers={"content-type": "text/plain"}), 400, ["UTF-8"]),
        ("non-UTF-8 JSON", a.post("/v1/documents", content=b'{"text": "caf\xe9"}',
                                  headers={"content-type": "application/json"}), 400, ["JSON"]),
        ("malformed JSON", a.post("/v1/documents", content=b'{"text": "unterminated',
                                  headers={"content-type": "application/json"}), 400, ["JSON"]),
        ("body over limit", a.post("/v1/documents", json={"text": "x" * (MAX_BODY + 10)}), 413, ["max-body-bytes"]),
        ("chunked body over limit", a.post("/v1/documents", content=_chunked(oversized),
                                           headers={"content-type": "application/json"}), 413, ["max-body-bytes"]),
        ("document over token limit", a.post("/v1/documents", json={"text": long_doc}), 413,
         ["tokens", str(MAX_DOC_TOKENS), "--max-document-tokens"]),
    ]
    for what, resp, status, words in cases:
        try:
            assert_vllm_error(resp, status, *words)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from None
    assert_serving(a, docs[0])


def test_unknown_and_hostile_ids_are_404_and_touch_nothing(env, a, docs):
    store = AdapterStore(env["store"])
    before = sorted(os.listdir(store.adapters))
    unknown = "doc-" + "0" * 32
    for bad in [unknown, *HOSTILE_IDS]:
        path = "/v1/documents/" + quote(bad, safe="/.")
        for resp in (a.get(path), a.delete(path)):
            if resp.status_code == 404 and "detail" in resp.json():
                continue  # the client normalised `..` away and FastAPI's router answered 404 itself
            assert_vllm_error(resp, 404)
        err = chat(a, bad)
        assert err.status_code == 404, (bad[:40], err.text[:300])
        assert err.json()["error"]["code"] == 404
    assert (env["victim"] / "d2l.json").read_text() == "{}"
    assert sorted(os.listdir(store.adapters)) == before
    assert_serving(a, docs[0])


def test_adapter_over_the_servers_rank_is_4xx_not_500(env, a, b, docs):
    text = "Made by a server with a larger --max-lora-rank. " * 4
    doc = _publish(env, text, rank_multiplier=4)  # rank 64 > 32
    assert AdapterStore(env["store"]).record(doc).rank > MAX_RANK
    # stock vLLM loads it, fails, and answers a bare "could not be loaded"; ours names rank and flag
    assert_vllm_error(chat(b, doc), 400, "rank 64", "--max-lora-rank")
    up = a.post("/v1/documents", json={"text": text})  # the upload path names the rank and the flag
    assert_vllm_error(up, 400, "rank 64", "--max-lora-rank")
    assert_serving(a, docs[0])
    assert b.get("/health").status_code == 200
    assert a.delete(f"/v1/documents/{doc}").status_code == 200  # later tests serve every stored adapter


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_adapter_is_detected_reported_not_served(env, a, b, damage):
    text = f"This adapter file will be damaged on disk ({damage}). " * 4
    doc = _publish(env, text)
    path = env["store"] / "adapters" / doc / "adapter_model.safetensors"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data[:-9] + bytes([data[-9] ^ 0xFF]) + data[-8:])
    before = metric(b, "vllm_d2l_store_corrupt_total")
    assert_vllm_error(chat(b, doc), 404)
    assert metric(b, "vllm_d2l_store_corrupt_total") == before + 1
    assert not (env["store"] / "adapters" / doc).exists()
    assert any(p.name.startswith(doc) for p in (env["store"] / "quarantine").iterdir())
    again = a.post("/v1/documents", json={"text": text})  # uploading the text again rebuilds it
    assert again.status_code == 200 and again.json()["id"] == doc and again.json()["cached"] is False
    token_ids(chat(b, doc))


# ------------------------------------------------------------------------------------- faults
def test_generator_failures_fail_only_that_upload(a, docs, servers):
    huge = f"A document so large the generator runs out of memory {FAULTS['oom']}. " * 3
    with ThreadPoolExecutor(3) as pool:  # identical uploads share the failure, none hangs
        results = list(pool.map(lambda _: a.post("/v1/documents", json={"text": huge}), range(3)))
    for r in results:
        assert_vllm_error(r, 413, "out of memory", "shorter")
    assert_vllm_error(a.post("/v1/documents", json={"text": f"Breaks the generator {FAULTS['crash']}."}), 500,
                      "internalizing the document failed", "still serving")
    ok = a.post("/v1/documents", json={"text": "Uploads after a failure still work. " * 3})
    assert ok.status_code == 200 and ok.json()["cached"] is False
    assert servers[0].alive()
    assert_serving(a, ok.json()["id"])
    assert_serving(a, docs[0])


def test_failed_registration_rolls_back_the_store_entry(env, a, docs, servers):
    text = f"The workers will refuse this adapter {FAULTS['register']}. " * 3
    listed = {d["id"] for d in a.get("/v1/documents").json()["data"]}
    r = a.post("/v1/documents", json={"text": text})
    assert_vllm_error(r, 500, "could not register")
    after = {d["id"] for d in a.get("/v1/documents").json()["data"]}
    assert after == listed
    store = AdapterStore(env["store"])
    doc = document_id(text, store.record(docs[0]).fingerprint)
    assert not (store.adapters / doc).exists(), "the failed adapter stayed in the store"
    assert_vllm_error(a.get(f"/v1/documents/{doc}"), 404)
    assert not any(p.name.startswith("put-") for p in store.tmp.iterdir())
    assert servers[0].alive()
    assert_serving(a, docs[0])


# ------------------------------------------------------------------------------------- replicas
def test_upload_on_one_replica_chat_on_the_other(a, b):
    text = "Uploaded on replica A, asked on replica B. The vault code is 4417. " * 3
    doc = a.post("/v1/documents", json={"text": text}).json()["id"]
    resolved = metric(b, "vllm_d2l_resolver_loads_total")
    on_b = token_ids(chat(b, doc))  # B has never seen it: its resolver loads the folder
    assert metric(b, "vllm_d2l_resolver_loads_total") == resolved + 1
    assert on_b == token_ids(chat(a, doc))
    assert doc in {m["id"] for m in b.get("/v1/models").json()["data"]}
    assert a.delete(f"/v1/documents/{doc}").status_code == 200
    assert_vllm_error(chat(b, doc), 404)  # B sees the tombstone and stops serving it


# ------------------------------------------------------------------------------------- concurrency
def test_64_uploads_during_256_chats(servers, a, docs, base_name):
    distinct = [f"Concurrent document {i}: the {random.Random(i).choice(['red', 'blue', 'green'])} "
                f"box holds item {i * 31 % 101}. " * 3 for i in range(40)]
    uploads = distinct + [distinct[i % 8] for i in range(24)]  # 8 documents sent 4 times each
    random.Random(7).shuffle(uploads)
    chat_models = [base_name, *docs] * 86
    chat_models = chat_models[:256]
    documents_before = metric(a, "vllm_d2l_documents_internalized_total")
    hits_before = metric(a, "vllm_d2l_cache_hits_total")
    reference = {m: token_ids(chat(a, m)) for m in (base_name, *docs)}

    barrier = threading.Barrier(64)

    def upload(text: str) -> httpx.Response:
        barrier.wait(timeout=60)
        return a.post("/v1/documents", json={"text": text})

    t0 = time.monotonic()
    with PeakRss(servers[0]) as rss, ThreadPoolExecutor(64) as up_pool, ThreadPoolExecutor(32) as chat_pool:
        chat_futures = [chat_pool.submit(chat, a, m) for m in chat_models]
        up_futures = [up_pool.submit(upload, t) for t in uploads]
        up_results = [f.result() for f in up_futures]
        chat_results = [f.result() for f in chat_futures]
    seconds = time.monotonic() - t0

    failures = [r.text[:200] for r in up_results + chat_results if r.status_code != 200]
    assert not failures, failures[:5]
    for m, r in zip(chat_models, chat_results):
        assert token_ids(r) == reference[m], f"{m}: output changed while adapters were being added"
    by_text: dict[str, list[dict]] = {}
    for text, r in zip(uploads, up_results):
        by_text.setdefault(text, []).append(r.json())
    for text, answers in by_text.items():
        assert len({x["id"] for x in answers}) == 1
        assert sum(not x["cached"] for x in answers) == 1, "an identical document was computed twice"
    assert metric(a, "vllm_d2l_documents_internalized_total") - documents_before == len(distinct)
    assert metric(a, "vllm_d2l_cache_hits_total") - hits_before == len(uploads) - len(distinct)
    assert rss.peak < 16 * 2**30, "memory is not bounded"
    _report(f"64 uploads ({len(distinct)} distinct) + 256 chats in {seconds:.1f}s; server process-tree RSS "
            f"{rss.start / 2**20:.0f} MiB before, peak {rss.peak / 2**20:.0f} MiB")


# ------------------------------------------------------------------------------------- durability
@pytest.fixture(scope="module")
def restarted(env, servers, docs):
    """SIGKILL A while uploads are in flight, then start A2 on the same store."""
    server_a, server_b = servers
    server_b.stop()  # B is done; free the cores for the restart
    with httpx.Client(base_url=server_a.base_url, timeout=120, headers=AUTH) as c:
        before_kill = token_ids(chat(c, docs[0]))
    acked: list[str] = []
    stop = threading.Event()

    def uploader(worker: int) -> None:
        with httpx.Client(base_url=server_a.base_url, timeout=60, headers=AUTH) as c:
            for i in range(100):
                if stop.is_set():
                    return
                try:
                    r = c.post("/v1/documents", json={"text": f"Durable document {worker}-{i}: keep {i * 7}. " * 3})
                except httpx.HTTPError:
                    return  # the server died under us: this one was never acknowledged
                if r.status_code == 200:
                    acked.append(r.json()["id"])

    threads = [threading.Thread(target=uploader, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    server_a.kill()  # SIGKILL to the whole process group, uploads still in flight
    stop.set()
    for t in threads:
        t.join(timeout=70)
    assert len(acked) >= 6, "uploads too slow to test durability"
    acked_now = list(acked)

    # a longer context than A's, so one request can stay in use while the eviction test uploads
    a2 = _server_a(env, "--max-stored-documents", str(MAX_STORED_AFTER_RESTART), "--max-model-len",
                   str(LONG_REQUEST_TOKENS + 256), "--stream-interval", "32", log="a2.log",
                   env_vars={"VLLM_D2L_EVICT_MIN_IDLE_S": "0"})
    a2.start()
    _report(f"killed A after {len(acked_now)} acknowledged uploads; A2 ready in {a2.startup_seconds:.1f}s")
    try:
        with httpx.Client(base_url=a2.base_url, timeout=120, headers=AUTH) as client:
            yield {"server": a2, "client": client, "acked": acked_now, "before_kill": before_kill}
    finally:
        a2.stop()


def test_every_acknowledged_upload_survives_kill_9(restarted, docs, env):
    client = restarted["client"]
    for doc in [*restarted["acked"], *docs]:
        assert client.get(f"/v1/documents/{doc}").status_code == 200, doc
        token_ids(chat(client, doc, max_tokens=2))
    assert token_ids(chat(client, docs[0])) == restarted["before_kill"]
    store = AdapterStore(env["store"])
    for doc in store.live_ids():  # no half-written adapter became visible
        store.read_verified(doc)


# ------------------------------------------------------------------------------------- eviction
def _evict_while_streaming(client: httpx.Client, server: ServerProcess, store: AdapterStore, victim: str,
                           text: str) -> tuple[httpx.Response, dict]:
    """Upload `text` past the store limit while a long streaming request uses `victim`, which the
    clock makes the first to go; the client hangs up once the upload has answered, so the
    request's length is a margin, not a cost. Returns the upload and counter deltas."""
    started, hang_up = threading.Event(), threading.Event()
    status: dict = {}

    def stream() -> None:
        with httpx.Client(base_url=server.base_url, timeout=120, headers=AUTH) as c:
            with c.stream("POST", "/v1/completions", json={
                    "model": victim, "prompt": "Once", "max_tokens": LONG_REQUEST_TOKENS, "temperature": 0,
                    "ignore_eos": True, "stream": True}) as r:
                status["code"] = r.status_code
                started.set()
                hang_up.wait(120)  # unread: the server's writes back up instead of racing ahead

    t = threading.Thread(target=stream)
    t.start()
    try:
        # The response has started, so the server holds the request's adapter (the engine may
        # not have the request yet). The client reads nothing until the upload has answered, so
        # the server's writes back up and the response cannot end before the eviction looks.
        assert started.wait(60), status
        os.utime(store.adapters / victim / "last_used", (1, 1))  # by the clock it is now the first to go
        before = {k: metric(client, f"vllm_d2l_store_{k}_total") for k in ("evictions", "evictions_deferred")}
        t0 = time.monotonic()
        new = client.post("/v1/documents", json={"text": text})
        after = {k: metric(client, f"vllm_d2l_store_{k}_total") - v for k, v in before.items()}
        after["upload_s"] = time.monotonic() - t0
    finally:
        hang_up.set()
        t.join(timeout=60)
    assert status.get("code") == 200 and new.status_code == 200, (status, new.text)
    return new, after


def test_lru_eviction_keeps_recent_and_in_use_adapters(restarted, env, docs):
    """An upload past the limit evicts the least recently used adapters, but never the recently
    used one nor one a running request uses, from the moment the server accepts that request
    (its headers may go out before the engine has it) to its last byte."""
    client, server = restarted["client"], restarted["server"]
    store = AdapterStore(env["store"])
    recent = docs[1]
    live = store.live_ids()
    assert len(live) > MAX_STORED_AFTER_RESTART + 2
    for i, doc in enumerate(sorted(live)):  # a known order: older = smaller mtime
        os.utime(store.adapters / doc / "last_used", (1_000_000 + i, 1_000_000 + i))
    victim = sorted(set(live) - {recent})[0]
    token_ids(chat(client, recent, max_tokens=2))  # touches it: now the most recently used
    new, counted = _evict_while_streaming(client, server, store, victim, "Uploaded past the store limit. " * 3)
    kept = set(store.live_ids())
    evicted = set(live) - kept
    _report(f"eviction: upload answered in {counted['upload_s']:.1f}s while a {LONG_REQUEST_TOKENS}-token "
            f"request streamed; {len(evicted)} evicted, in-use victim deferred: {counted['evictions_deferred']:.0f}")
    assert len(kept) == MAX_STORED_AFTER_RESTART and recent in kept and new.json()["id"] in kept
    assert counted["evictions"] == len(evicted) and counted["evictions_deferred"] >= 1
    assert kept == {new.json()["id"], victim, recent, *sorted(set(live) - {victim, recent})[-1:]}, kept
    listed = {d["id"] for d in client.get("/v1/documents").json()["data"]}
    assert listed == kept
    gone = sorted(evicted)[0]
    assert_vllm_error(client.get(f"/v1/documents/{gone}"), 404)
    assert chat(client, gone).status_code == 404
    deadline = time.monotonic() + 30
    while any((store.adapters / d).exists() for d in evicted) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any((store.adapters / d).exists() for d in evicted), "evicted folders were not purged"
    token_ids(chat(client, victim, max_tokens=2))
    assert server.alive()
