"""The token-level generator served end to end on the tiny model: fixed rank whatever the length,
served greedy tokens equal to the Hugging Face model with the same adapter, composites, task
descriptions (`/v1/tasks`, their own hypernetwork), and the server evaluation mode
(`vllm-d2l eval --server`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
import torch

from vllm_d2l.serving.store import AdapterStore
from vllm_d2l.serving.testing import ServerProcess

sys.path.insert(0, str(Path(__file__).parent))
from tiny import build_tiny_hypernet, build_tiny_llama  # noqa: E402

pytestmark = pytest.mark.slow

KEY_DIM, BIAS = 8, 2
SHORT = "The vault code of tower Alder is 4471."
LONG = "The keeper of tower Brook is Tobin, and the vault code there is 9032. " * 12
N_TOKENS = 8


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving-token")
    model = build_tiny_llama(root / "model", heads=2, kv_heads=1)
    hypernet = build_tiny_hypernet(model, root / "hypernet", opened=True, kind="token", key_dim=KEY_DIM,
                                   bias_rank=BIAS, chunk_tokens=32, memory_read="ridge")
    task_hypernet = build_tiny_hypernet(model, root / "task-hypernet", opened=False, kind="token", key_dim=KEY_DIM,
                                        bias_rank=BIAS, chunk_tokens=32, pointer_rank=4)  # with the copy path
    from vllm_d2l.hypernet import HypernetBase
    HypernetBase.load(task_hypernet).open_(seed=5).save(task_hypernet)  # other weights than the document one
    return {"root": root, "model": model, "hypernet": hypernet, "task_hypernet": task_hypernet, "store": root / "store"}


@pytest.fixture(scope="module")
def server(env):
    srv = ServerProcess(
        ["--model", str(env["model"]), "--hypernet", str(env["hypernet"]), "--store", str(env["store"]),
         "--task-hypernet", str(env["task_hypernet"]),
         "--dtype", "float32", "--max-model-len", "256", "--max-num-seqs", "8", "--max-loras", "2",
         "--max-lora-rank", "16", "--disable-log-stats"],
        log_path=env["root"] / "server.log", startup_timeout=600)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=300) as c:
        yield c


def served_tokens(http, model: str, prompt: list[int]) -> list[int]:
    r = http.post("/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": N_TOKENS,
                                           "temperature": 0, "ignore_eos": True, "return_token_ids": True})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["token_ids"]


@torch.no_grad()
def reference_tokens(model, prompt: list[int], factors: dict | None) -> list[int]:
    from vllm_d2l.apply import lora_applied

    ids = torch.tensor([prompt])
    out = []
    for _ in range(N_TOKENS):
        if factors:
            with lora_applied(model, factors):
                logits = model(ids).logits
        else:
            logits = model(ids).logits
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    return out


def test_rank_is_fixed_and_served_tokens_equal_the_reference(env, http):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    short, long = (http.post("/v1/documents", json={"text": t}).json() for t in (SHORT, LONG))
    assert long["chunks"] >= 4 and short["chunks"] == 1
    assert short["rank"] == long["rank"] == KEY_DIM + BIAS and not long.get("compressed")

    model = AutoModelForCausalLM.from_pretrained(env["model"], dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(env["model"])
    prompt = tok("The quick brown fox", add_special_tokens=False)["input_ids"]
    base = served_tokens(http, http.get("/v1/models").json()["data"][0]["id"], prompt)
    assert base == reference_tokens(model, prompt, None)
    for doc in (short, long):
        _, weights = AdapterStore(env["store"]).load(doc["id"])
        factors = {k: (weights.a[k].float(), weights.b[k].float()) for k in weights.a}
        expected = reference_tokens(model, prompt, factors)
        assert expected != base  # the adapter changes the answer, so the comparison means something
        assert served_tokens(http, doc["id"], prompt) == expected


def test_eval_server_mode(server, tmp_path):
    import json

    from vllm_d2l.evaluation.qa import main

    records = [{"id": "a", "text": SHORT, "qa": [{"q": "What is the vault code?", "a": "4471"}]},
               {"id": "b", "text": LONG, "qa": [{"q": "Who keeps tower Brook?", "a": "Tobin"},
                                                {"q": "What is the code?", "a": "9032"}]}]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "served.json"
    assert main(["--server", server.base_url, "--data", str(data), "--max-new-tokens", "4", "--no-progress",
                 "--out", str(out), "--plot", str(tmp_path / "served.png")]) == 0
    res = json.loads(out.read_text())
    assert res["n_questions"] == 3 and set(res["conditions"]) == {"none", "context", "adapter", "other"}
    assert all(a.startswith("doc-") for a in res["adapters"]) and len(set(res["adapters"])) == 2
    assert all(set(i["outputs"]) == set(res["conditions"]) for i in res["items"])
    # LONG in the prompt is longer than this server's 256-token window: recorded, scored wrong, not fatal
    assert res["conditions"]["context"]["errors"] == 2 and res["conditions"]["adapter"]["errors"] == 0
    assert "maximum context length" in res["items"][1]["errors"]["context"]
    with pytest.raises(SystemExit):
        main(["--server", server.base_url, "--hypernet", "x"])


def test_composite_is_served_exactly_and_follows_its_parts(env, http):
    """`doc-A+doc-B` answers with the composed adapter (token kind: one adapter of the documents'
    stored memories folded together, same fixed rank), token for token as the Hugging Face model
    with those factors; it is stored once for any order, refused with a 4xx naming a bad or missing
    part, and dropped when a part is deleted."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.compose import compose
    from vllm_d2l.generator import Generator
    from vllm_d2l.serving.ids import composite_id

    third = "Tower Cedar has no keeper; its vault code is 1180 and its door is green."
    ids = [http.post("/v1/documents", json={"text": t}).json()["id"] for t in (SHORT, LONG, third)]
    store = AdapterStore(env["store"])
    memories = [store.load_memory(i) for i in ids[:2]]
    assert all(m is not None for m in memories)
    gen = Generator.load(env["hypernet"], env["model"], encoder_dtype=torch.float32)
    weights = gen.pool(memories)
    summed = compose([store.load(i)[1] for i in ids[:2]])  # what the adapters alone would give
    assert weights.rank == summed.rank == KEY_DIM + BIAS
    assert any((weights.delta(k).float() - summed.delta(k).float()).abs().max() > 1e-3 for k in weights.a)
    model = AutoModelForCausalLM.from_pretrained(env["model"], dtype=torch.float32).eval()
    prompt = AutoTokenizer.from_pretrained(env["model"])("The quick brown fox", add_special_tokens=False)["input_ids"]
    expected = reference_tokens(model, prompt, {k: (weights.a[k].float(), weights.b[k].float()) for k in weights.a})
    from vllm_d2l.apply import lora_applied

    def logits(w):  # the composite is neither part: a comparison of tokens alone could not tell
        with torch.no_grad(), lora_applied(model, {k: (w.a[k].float(), w.b[k].float()) for k in w.a}):
            return model(torch.tensor([prompt])).logits[0, -1]
    for part in (store.load(ids[0])[1], store.load(ids[1])[1]):
        assert (logits(weights) - logits(part)).abs().max() > 1e-3
    name = f"{ids[0]}+{ids[1]}"
    assert served_tokens(http, name, prompt) == expected
    assert served_tokens(http, f"{ids[1]}+{ids[0]}", prompt) == expected  # order-free
    mix = composite_id(ids[:2])
    rec = store.record(mix)
    assert rec is not None and rec.parts == sorted(ids[:2]) and rec.rank == KEY_DIM + BIAS
    assert {name, f"{ids[1]}+{ids[0]}"} <= {m["id"] for m in http.get("/v1/models").json()["data"]}
    assert all(d["id"].startswith("doc-") for d in http.get("/v1/documents").json()["data"])

    body = {"prompt": prompt, "max_tokens": 2}
    missing = "doc-" + "0" * 32
    r = http.post("/v1/completions", json={**body, "model": f"{ids[0]}+{missing}"})
    assert r.status_code == 404 and missing in r.json()["error"]["message"]
    r = http.post("/v1/completions", json={**body, "model": f"{ids[0]}+../etc"})
    assert r.status_code == 400 and "not a document or task id" in r.json()["error"]["message"]
    r = http.post("/v1/completions", json={**body, "model": f"{ids[0]}+{ids[0]}"})
    assert r.status_code == 400 and "two different" in r.json()["error"]["message"]

    three = f"{ids[2]}+{ids[0]}+{ids[1]}"
    assert len(served_tokens(http, three, prompt)) == N_TOKENS
    assert http.delete(f"/v1/documents/{ids[2]}").status_code == 200
    r = http.post("/v1/completions", json={**body, "model": three})
    assert r.status_code == 404 and ids[2] in r.json()["error"]["message"]
    assert store.is_deleted(composite_id(ids)) or store.record(composite_id(ids)) is None
    assert served_tokens(http, name, prompt) == expected  # composites without the deleted part stay
    metrics = http.get("/metrics").text
    assert 'vllm_d2l_requests_total{kind="composite"}' in metrics and "vllm_d2l_composites_built_total 2.0" in metrics


def test_task_routes_and_served_task_adapter(env, http):
    """`/v1/tasks` reads descriptions with the task hypernetwork into `task-…` adapters that are
    stored, listed, served (equal to the Hugging Face reference), composed and deleted like
    documents, and kept apart from them in every listing and lookup."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    text = "Answer in at most four words."
    r = http.post("/v1/tasks", json={"text": text, "name": "brief"})
    assert r.status_code == 200, r.text
    task = r.json()
    assert task["id"].startswith("task-") and task["kind"] == "task" and task["cached"] is False
    assert task["rank"] == KEY_DIM + BIAS and task["name"] == "brief"
    again = http.post("/v1/tasks", json={"text": text}).json()
    assert again["id"] == task["id"] and again["cached"] is True
    doc = http.post("/v1/documents", json={"text": text}).json()  # the same text as a document
    assert doc["id"].startswith("doc-") and doc["kind"] == "document"

    store = AdapterStore(env["store"])
    tw, dw = store.load(task["id"])[1], store.load(doc["id"])[1]
    assert any(not torch.equal(tw.b[k], dw.b[k]) for k in dw.b)  # each kind has its own hypernetwork
    assert tw.b["lm_head"].shape[1] == KEY_DIM + BIAS and tw.b["lm_head"].any()  # the copy path, padded
    written = json.loads((store.folder(task["id"]) / "adapter_config.json").read_text())
    assert written["rank_pattern"] == {"lm_head": 4}  # on disk and in vLLM at the path's own rank

    assert [t["id"] for t in http.get("/v1/tasks").json()["data"]] == [task["id"]]
    assert task["id"] not in {d["id"] for d in http.get("/v1/documents").json()["data"]}
    assert http.get(f"/v1/tasks/{task['id']}").json()["kind"] == "task"
    assert http.get(f"/v1/documents/{task['id']}").status_code == 404
    assert http.get(f"/v1/tasks/{doc['id']}").status_code == 404
    assert task["id"] in {m["id"] for m in http.get("/v1/models").json()["data"]}
    for body in ({"name": "x"}, {"text": "   "}, {"text": 5}):
        assert http.post("/v1/tasks", json=body).status_code == 400

    model = AutoModelForCausalLM.from_pretrained(env["model"], dtype=torch.float32).eval()
    prompt = AutoTokenizer.from_pretrained(env["model"])("The quick brown fox", add_special_tokens=False)["input_ids"]
    expected = reference_tokens(model, prompt, {k: (tw.a[k].float(), tw.b[k].float()) for k in tw.a})
    assert served_tokens(http, task["id"], prompt) == expected
    assert len(served_tokens(http, f"{doc['id']}+{task['id']}", prompt)) == N_TOKENS  # mixed composite

    metrics = http.get("/metrics").text
    assert 'vllm_d2l_uploads_total{kind="task",outcome="created"} 1.0' in metrics
    assert 'vllm_d2l_requests_total{kind="task"} 1.0' in metrics

    assert http.delete(f"/v1/documents/{task['id']}").status_code == 404  # each kind deletes its own
    assert http.delete(f"/v1/tasks/{task['id']}").json() == {"id": task["id"], "object": "adapter", "deleted": True}
    assert http.get(f"/v1/tasks/{task['id']}").status_code == 404
    r = http.post("/v1/completions", json={"model": task["id"], "prompt": prompt, "max_tokens": 2})
    assert r.status_code == 404
