"""`python -m bench all --quick` end to end on a tiny model: the result files exist and are well
formed. Never a speed: timings on a shared machine are not a test outcome."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny import build_tiny_llama  # noqa: E402

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS = ("requests_per_s", "output_tokens_per_s", "ttft_p50_s", "ttft_p95_s", "latency_p95_s")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    model = build_tiny_llama(root / "model", heads=2, kv_heads=1)  # head_dim 32: vLLM's CPU attention needs it
    from transformers import AutoConfig

    from vllm_d2l.hypernet import Hypernet, HypernetConfig

    cfg = HypernetConfig.for_base_model(AutoConfig.from_pretrained(model), base_model="tiny",
                                        dim=32, heads=2, latent_blocks=1)
    torch.manual_seed(0)
    Hypernet(cfg).save(root / "hypernet")  # untrained (gates closed): the bench must open a copy
    from bench.__main__ import main

    out = root / "results"
    rc = main(["all", "--quick", "--model", str(model), "--hypernet", str(root / "hypernet"), "--dtype", "float32",
               "--out", str(out), "--work", str(root / "work")])
    assert rc == 0
    return out


def _json(out: Path, name: str) -> dict:
    doc = json.loads((out / name).read_text())
    assert doc["schema"] == 1 and doc["meta"]["quick"] is True
    m = doc["meta"]
    assert m["machine"]["cpus"] >= 1 and m["start"]["time_utc"] and m["end"]["time_utc"]
    assert isinstance(m["start"]["training_running"], bool) and m["command"].startswith("python -m bench")
    return doc


def _spread(s: dict, repeats: int) -> None:
    assert set(s) == {"p50", "min", "max", "runs"}
    assert len(s["runs"]) == repeats
    assert s["min"] <= s["p50"] <= s["max"]


def test_files_exist(quick_run):
    for name in ("adapters", "qa", "memory", "uploads"):
        assert (quick_run / f"{name}.json").is_file()
        png = (quick_run / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
    summary = (quick_run / "summary.md").read_text()
    for title in ("adapters in flight", "Question answering", "Memory", "uploads"):
        assert title in summary


def test_adapters_result(quick_run):
    doc = _json(quick_run, "adapters.json")
    repeats = doc["meta"]["load"]["repeats"]
    ours = doc["servers"]["ours"]
    assert list(ours["arms"]) == ["base", "1 adapter", "2 adapters"]
    for arm in ours["arms"].values():
        assert arm["errors"] == 0 and arm["completed"] > 0
        for key in ("requests_per_s", "output_tokens_per_s"):
            _spread(arm[key], repeats)
    assert set(ours["ratios_to_base"]) == {"1 adapter", "2 adapters"}
    assert all(len(b) == repeats for b in ours["batches"].values())


def test_qa_result(quick_run):
    doc = _json(quick_run, "qa.json")
    repeats = doc["meta"]["load"]["repeats"]
    arms = doc["qa"]["arms"]
    lengths = doc["meta"]["plan"]["lengths"]
    expected = {"base"} | {f"{k} {n}" for n in lengths for k in ("adapter", "context")} | {
        f"context {n} repeated" for n in lengths}
    assert set(arms) == expected
    for name, arm in arms.items():
        assert arm["errors"] == 0, (name, arm["first_error"])
        for key in METRICS:
            _spread(arm[key], repeats)
    # the in-context arms really carry the document; the adapter arms do not
    n = lengths[-1]
    assert arms[f"context {n}"]["mean_prompt_tokens"]["p50"] > n > arms[f"adapter {n}"]["mean_prompt_tokens"]["p50"]
    for n, d in doc["documents"].items():
        assert d["rank"]["p50"] >= 16 and d["bytes"]["p50"] > 0 and d["server_seconds"]["p50"] > 0


def test_memory_result(quick_run):
    doc = _json(quick_run, "memory.json")
    rows = doc["rows"]
    measured = [r for r in rows if not r.get("computed_only")]
    assert measured and rows[-1]["computed_only"] and rows[-1]["tokens"] == 131072
    for r in measured:
        assert r["kv_bytes_computed"] == doc["kv_bytes_per_token"] * r["tokens"]
        # vLLM's own per-token KV size agrees with the config formula (up to its block rounding)
        assert r["kv_bytes_per_token_vllm"] == pytest.approx(doc["kv_bytes_per_token"], rel=0.01)
        assert r["kv_bytes_vllm"] is not None and r["kv_bytes_vllm"] >= r["kv_bytes_computed"]
        assert r["kv_tokens_held_vllm"] >= r["prompt_tokens"]


def test_uploads_result(quick_run):
    doc = _json(quick_run, "uploads.json")
    u = doc["uploads"]
    assert u["uploads"]["count"] >= 1 and u["uploads"]["ok"] == u["uploads"]["count"]
    for cond in ("alone", "with_uploads"):
        assert u[cond]["errors"] == 0
        _spread(u[cond]["latency_p95_s"], doc["meta"]["load"]["repeats"])


def test_store_scenario(quick_run, tmp_path):
    """`python -m bench store --quick`: a filled store the server lists as its own, pages of it,
    and cold then warm first tokens of adapters loaded from the store."""
    from bench.__main__ import main

    root = quick_run.parent
    out = tmp_path / "results"
    assert main(["store", "--quick", "--model", str(root / "model"), "--hypernet", str(root / "hypernet"),
                 "--dtype", "float32", "--store-adapters", "60", "--store-rank", "8", "--out", str(out),
                 "--work", str(root / "work")]) == 0
    doc = _json(out, "store.json")
    assert doc["adapters"] == 60 and doc["rank"] == 8
    assert {"documents?limit=100", "models?limit=100", "documents/{id}", "documents (all)"} <= set(doc["lists"])
    assert all(s["p50_ms"] > 0 and s["bytes"] > 0 for s in doc["lists"].values())
    assert doc["lists"]["documents (all)"]["bytes"] > doc["lists"]["documents/{id}"]["bytes"] * 50
    t = doc["ttft"]
    assert len(t["rows"]) == 2 and all(r["cold_s"] > 0 and r["warm_s"] > 0 for r in t["rows"])
    assert doc["startup"]["empty_s"] > 0 and doc["startup"]["full_s"] > 0
    assert (out / "store.png").read_bytes().startswith(PNG_MAGIC)
    assert "A store of 10,000 adapters" in (out / "summary.md").read_text()


def test_priority_scenario(quick_run, tmp_path):
    """`python -m bench priority --quick`: the same chats-under-uploads load on two servers that
    differ only in the internalization thread's niceness."""
    from bench.__main__ import main

    root = quick_run.parent
    out = tmp_path / "results"
    assert main(["priority", "--quick", "--model", str(root / "model"), "--hypernet", str(root / "hypernet"),
                 "--dtype", "float32", "--out", str(out), "--work", str(root / "work")]) == 0
    doc = _json(out, "uploads-priority.json")
    assert [a["nice"] for a in doc["arms"].values()] == [0, 19]
    for arm in doc["arms"].values():
        assert arm["spec"]["env"]["VLLM_D2L_INTERNALIZE_NICE"] == str(arm["nice"])
        assert arm["uploads"]["ok"] >= 1 and arm["p95_with_over_alone"] > 0
        _spread(arm["with_uploads"]["latency_p95_s"], 2)
    assert (out / "uploads-priority.png").read_bytes().startswith(PNG_MAGIC)
