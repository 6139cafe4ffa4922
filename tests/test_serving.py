"""The real vLLM server with our plugins, on a tiny model, driven with the `openai` client.

One server per module (startup dominates: ~25-60 s on two cores); tests share it and each uses its
own documents. Greedy decoding and token ids (not text) make every comparison exact.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from vllm_d2l.serving.ids import document_id
from vllm_d2l.serving.store import AdapterStore
from vllm_d2l.serving.testing import ServerProcess

sys.path.insert(0, str(Path(__file__).parent))
from tiny import build_servable  # noqa: E402

pytestmark = pytest.mark.slow

MAX_LORAS = 2
MAX_RANK = 32  # 8 rows per chunk + 8 always-on rows: a 4-chunk document needs 40 -> recompressed
PROMPTS = ["Paris is the capital of", "The quick brown fox", "A document becomes"]
DOC_A = "Paris is the capital of France. Berlin is the capital of Germany. " * 6
DOC_B = "The quick brown fox jumps over the lazy dog. Questions and answers about memos. " * 5
MAX_TOKENS = 10


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    model, _ = build_servable(root)
    return {"root": root, "model": model, "hypernet": root / "hypernet", "store": root / "store"}


@pytest.fixture(scope="module")
def server(env):
    srv = ServerProcess(
        ["--model", str(env["model"]), "--hypernet", str(env["hypernet"]), "--store", str(env["store"]),
         "--dtype", "float32", "--max-model-len", "256", "--max-num-seqs", "8",
         "--max-loras", str(MAX_LORAS), "--max-lora-rank", str(MAX_RANK), "--max-body-bytes", "200000",
         "--disable-log-stats"],
        env={"VLLM_D2L_CPU_COMPILE": "1"},  # what `vllm-d2l serve` runs by default
        log_path=env["root"] / "server.log", startup_timeout=600)
    srv.start()
    print(f"\nserver ready in {srv.startup_seconds:.1f}s", file=sys.stderr)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI
    return OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def base_name(client):
    return client.models.list().data[0].id


@pytest.fixture(scope="module")
def base_reference(client, base_name):
    """Base outputs taken before any adapter exists: no LoRA slot can leak into them."""
    return {p: complete(client, base_name, p) for p in PROMPTS}


@pytest.fixture(scope="module")
def docs(http, base_reference):
    a = http.post("/v1/documents", json={"text": DOC_A, "name": "capitals"})
    b = http.post("/v1/documents", json={"text": DOC_B})
    assert a.status_code == 200, a.text
    assert b.status_code == 200, b.text
    return a.json(), b.json()


def complete(client, model: str, prompt: str) -> tuple[int, ...]:
    r = client.completions.create(model=model, prompt=prompt, max_tokens=MAX_TOKENS, temperature=0,
                                  extra_body={"return_token_ids": True, "ignore_eos": True})
    return tuple(r.choices[0].model_extra["token_ids"])


def chat(client, model: str, question: str) -> tuple[int, ...]:
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                       max_tokens=MAX_TOKENS, temperature=0,
                                       extra_body={"return_token_ids": True, "ignore_eos": True})
    return tuple(r.choices[0].model_extra["token_ids"])


def assert_vllm_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"]), body
    assert body["error"]["code"] == status and body["error"]["message"]
    return body["error"]


# ------------------------------------------------------------------------------------- upload
def test_upload_returns_adapter_record(docs):
    a, b = docs
    for rec in (a, b):
        assert rec["id"].startswith("doc-") and rec["object"] == "adapter"
        assert rec["cached"] is False and rec["tokens"] > 0 and rec["chunks"] == 1
        assert rec["rank"] == 16 and rec["bytes"] > 0 and rec["created"] > 0
    assert a["name"] == "capitals" and a["id"] != b["id"]


def _counter(http, name: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_same_text_same_id_cached(http, docs):
    a, _ = docs
    computed, hits = _counter(http, "vllm_d2l_documents_internalized_total"), _counter(http, "vllm_d2l_cache_hits_total")
    again = http.post("/v1/documents", json={"text": DOC_A})
    assert again.status_code == 200
    assert again.json()["id"] == a["id"] and again.json()["cached"] is True
    # answered from the store: nothing was read through the hypernetwork again
    assert _counter(http, "vllm_d2l_documents_internalized_total") == computed
    assert _counter(http, "vllm_d2l_cache_hits_total") == hits + 1
    assert http.post("/v1/documents", json={"text": DOC_A + " "}).json()["id"] != a["id"]


def test_concurrent_identical_uploads_compute_once(http, server):
    text = "Concurrent uploads of one document are computed once. " * 4

    def metric():
        return _counter(http, "vllm_d2l_documents_internalized_total")

    before = metric()
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: httpx.post(server.base_url + "/v1/documents", json={"text": text},
                                                      timeout=120).json(), range(6)))
    assert len({r["id"] for r in results}) == 1
    assert sum(not r["cached"] for r in results) == 1
    assert metric() - before == 1


def test_text_plain_upload(http):
    r = http.post("/v1/documents?name=plain", content="Plain text bodies work too. " * 3,
                  headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "plain"


def test_over_rank_document_is_recompressed(http):
    text = " ".join(f"Fact {i}: item {i} is kept in room {i * 7 % 13}." for i in range(700))
    r = http.post("/v1/documents", json={"text": text})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["chunks"] >= 4 and rec["compressed"] is True
    assert rec["rank"] == MAX_RANK and rec["full_rank"] > MAX_RANK


# ------------------------------------------------------------------------------------- generation
def test_chat_with_each_and_base_concurrently(client, base_name, docs):
    a, b = docs
    question = "What is the capital of France?"
    with ThreadPoolExecutor(6) as pool:
        futures = {m: [pool.submit(chat, client, m, question) for _ in range(2)] for m in (base_name, a["id"], b["id"])}
        out = {m: [f.result() for f in fs] for m, fs in futures.items()}
    for m, results in out.items():
        assert results[0] == results[1], f"{m}: same request, different answers"
    assert out[a["id"]][0] != out[base_name][0]
    assert out[b["id"]][0] != out[base_name][0]
    assert out[a["id"]][0] != out[b["id"]][0]


def test_adapter_matches_vllm_loading_the_peft_folder(client, http, docs, env):
    """Our in-memory registration gives the same model as vLLM's own loader reading the store."""
    for rec in docs:
        name = "peft-" + rec["id"]
        r = http.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(env["store"] / "adapters" / rec["id"])})
        assert r.status_code == 200, r.text
        for p in PROMPTS:
            assert complete(client, rec["id"], p) == complete(client, name, p)


def test_mixed_batch_with_all_slots_full_equals_each_alone(client, base_name, base_reference, docs):
    a, b = docs
    models = [base_name, a["id"], b["id"]]
    alone = {(m, p): complete(client, m, p) for m in models for p in PROMPTS}
    for p in PROMPTS:  # base alone, after both slots hold adapters, equals base before any adapter
        assert alone[(base_name, p)] == base_reference[p]
        assert alone[(a["id"], p)] != base_reference[p]
    jobs = [(m, p) for p in PROMPTS for m in models] * 2  # 18 requests, batched up to 8 at a time
    for _ in range(2):
        with ThreadPoolExecutor(len(jobs)) as pool:
            mixed = list(pool.map(lambda job: complete(client, *job), jobs))
        for job, got in zip(jobs, mixed):
            assert got == alone[job], f"{job[0]} on {job[1]!r} changed in a mixed batch"


def test_more_adapters_than_slots(client, base_name, base_reference, docs):
    a, b = docs
    models = [base_name, a["id"], b["id"], "peft-" + a["id"]]  # 3 adapters, 2 slots: vLLM must rotate
    jobs = [(m, PROMPTS[0]) for m in models] * 2
    with ThreadPoolExecutor(len(jobs)) as pool:
        got = list(pool.map(lambda job: complete(client, *job), jobs))
    result = dict(zip(jobs, got))
    assert result[(base_name, PROMPTS[0])] == base_reference[PROMPTS[0]]
    assert result[(a["id"], PROMPTS[0])] == result[("peft-" + a["id"], PROMPTS[0])]


# ------------------------------------------------------------------------------------- listing
def test_models_and_documents_list_adapters(client, http, docs, base_name):
    ids = {m.id for m in client.models.list().data}
    assert base_name in ids and {d["id"] for d in docs} <= ids
    listed = http.get("/v1/documents").json()
    assert listed["object"] == "list" and {d["id"] for d in docs} <= {d["id"] for d in listed["data"]}
    one = http.get(f"/v1/documents/{docs[0]['id']}").json()
    assert one["id"] == docs[0]["id"] and one["loaded"] is True and one["requests"] > 0


def test_lists_page_with_limit_and_after(http, docs):
    everything = [d["id"] for d in http.get("/v1/documents").json()["data"]]
    assert len(everything) >= 3
    first = http.get("/v1/documents", params={"limit": 2}).json()
    assert [d["id"] for d in first["data"]] == everything[:2] and first["has_more"] is True
    assert first["first_id"] == everything[0] and first["last_id"] == everything[1]
    rest = http.get("/v1/documents", params={"limit": 10_000, "after": first["last_id"]}).json()
    assert [d["id"] for d in rest["data"]] == everything[2:] and rest["has_more"] is False
    models = [m["id"] for m in http.get("/v1/models").json()["data"]]
    paged = http.get("/v1/models", params={"limit": 1, "after": models[0]}).json()
    assert [m["id"] for m in paged["data"]] == models[1:2] and paged["has_more"] == (len(models) > 2)
    assert set(paged["data"][0]) >= {"id", "object", "created", "owned_by", "root", "parent", "permission"}
    for path, params, param in [("/v1/documents", {"limit": 0}, "limit"), ("/v1/models", {"limit": "x"}, "limit"),
                                ("/v1/documents", {"after": "doc-" + "0" * 32}, "after")]:
        err = assert_vllm_error(http.get(path, params=params), 400)
        assert err["param"] == param


def test_metrics_on_vllm_endpoint_with_bounded_labels(http, docs):
    text = http.get("/metrics").text
    ours = [line for line in text.splitlines() if line.startswith("vllm_d2l_")]
    names = {line.split("{")[0].split(" ")[0] for line in ours}
    for expected in ("vllm_d2l_internalize_seconds_count", "vllm_d2l_documents_internalized_total",
                     "vllm_d2l_tokens_internalized_total", "vllm_d2l_cache_hits_total",
                     "vllm_d2l_adapters_stored", "vllm_d2l_adapters_registered", "vllm_d2l_requests_total"):
        assert expected in names, expected
    assert not any("doc-" in line for line in ours), "adapter ids must never be label values"
    doc_requests = [line for line in ours if line.startswith('vllm_d2l_requests_total{kind="document"}')]
    assert doc_requests and float(doc_requests[0].split()[-1]) > 0


# ------------------------------------------------------------------------------------- resolver
def _publish_like_another_replica(env, text: str) -> str:
    """Write an adapter into the shared store the way another server would, without telling ours."""
    from vllm_d2l.generator import Generator
    from vllm_d2l.serving.store import AdapterRecord

    gen = Generator.load(env["hypernet"], env["model"])
    result = gen.internalize(text)
    doc = document_id(text, gen.fingerprint)
    w = result.weights
    AdapterStore(env["store"]).put(w, AdapterRecord(id=doc, tokens=result.tokens, chunks=result.chunks, rank=w.rank,
                                                    bytes=w.nbytes, created=int(time.time()),
                                                    fingerprint=gen.fingerprint))
    return doc


def test_resolver_serves_an_adapter_only_the_store_knows(client, env, base_reference):
    doc = _publish_like_another_replica(env, "Written by another replica sharing the store. " * 5)
    assert doc in {m.id for m in client.models.list().data}
    got = complete(client, doc, PROMPTS[0])
    assert got != base_reference[PROMPTS[0]]


def test_corrupt_store_entry_is_not_served(client, http, env):
    doc = _publish_like_another_replica(env, "This adapter file will be damaged on disk. " * 5)
    path = env["store"] / "adapters" / doc / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    r = http.post("/v1/completions", json={"model": doc, "prompt": "x", "max_tokens": 2})
    assert_vllm_error(r, 404)
    assert not (env["store"] / "adapters" / doc).exists()
    assert any(p.name.startswith(doc) for p in (env["store"] / "quarantine").iterdir())
    assert http.get("/health").status_code == 200


# ------------------------------------------------------------------------------------- errors
def test_unknown_id_is_404_in_vllm_shape(http):
    unknown = "doc-" + "0" * 32
    assert_vllm_error(http.get(f"/v1/documents/{unknown}"), 404)
    assert_vllm_error(http.delete(f"/v1/documents/{unknown}"), 404)
    err = assert_vllm_error(http.post("/v1/chat/completions", json={
        "model": unknown, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}), 404)
    assert err["type"] == "NotFoundError"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "..%2F..%2Fetc", "doc-" + "a" * 10_000, "doc-%00"])
def test_hostile_ids_are_404(http, bad, env):
    before = sorted(p.name for p in env["root"].iterdir())
    for resp in (http.get(f"/v1/documents/{bad}"), http.delete(f"/v1/documents/{bad}")):
        if "detail" in resp.json():  # the client normalised `..` away: the router itself answers 404
            assert resp.status_code == 404
        else:
            assert_vllm_error(resp, 404)
    assert sorted(p.name for p in env["root"].iterdir()) == before


@pytest.mark.parametrize("body,status", [
    ({"text": ""}, 400),
    ({"text": "   \n\t "}, 400),
    ({"text": 5}, 400),
    ({"name": "no text"}, 400),
    ([1, 2], 400),
    ({"text": "ok", "name": "x" * 1000}, 400),
])
def test_bad_uploads_are_400(http, body, status):
    assert_vllm_error(http.post("/v1/documents", json=body), status)


def test_malformed_json_is_400(http):
    assert_vllm_error(http.post("/v1/documents", content=b'{"text": "unterminated',
                                headers={"content-type": "application/json"}), 400)
    assert_vllm_error(http.post("/v1/documents", content=b"\xff\xfe",
                                headers={"content-type": "application/json"}), 400)


def test_non_utf8_text_body_is_400(http):
    assert_vllm_error(http.post("/v1/documents", content=b"caf\xe9 au lait", headers={"content-type": "text/plain"}), 400)


def test_body_over_limit_is_413(http):
    assert_vllm_error(http.post("/v1/documents", json={"text": "x" * 250_000}), 413)
    assert http.get("/health").status_code == 200


# ------------------------------------------------------------------------------------- delete
def test_delete_frees_the_id(client, http, env, base_name):
    rec = http.post("/v1/documents", json={"text": "A short-lived document. " * 4}).json()
    doc = rec["id"]
    assert complete(client, doc, PROMPTS[0])
    r = http.delete(f"/v1/documents/{doc}")
    assert r.status_code == 200 and r.json() == {"id": doc, "object": "adapter", "deleted": True}
    assert_vllm_error(http.get(f"/v1/documents/{doc}"), 404)
    assert_vllm_error(http.post("/v1/completions", json={"model": doc, "prompt": "x", "max_tokens": 2}), 404)
    assert doc not in {m.id for m in client.models.list().data}
    deadline = time.monotonic() + 30
    while (env["store"] / "adapters" / doc).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (env["store"] / "adapters" / doc).exists(), "files not purged"
    assert_vllm_error(http.delete(f"/v1/documents/{doc}"), 404)
    # the same text again is a fresh upload with the same id
    again = http.post("/v1/documents", json={"text": "A short-lived document. " * 4}).json()
    assert again["id"] == doc and again["cached"] is False
    assert complete(client, doc, PROMPTS[0])


def test_server_survived_everything(server, http):
    assert server.alive()
    assert http.get("/health").status_code == 200
