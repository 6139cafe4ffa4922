"""End to end on the real default model and hypernetwork: `vllm-d2l serve` with no model named,
the quickstart's documents uploaded and questioned through the `openai` client."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

from vllm_d2l.serving.testing import ServerProcess

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLES / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_model_end_to_end(tmp_path, default_model_dir):
    srv = ServerProcess(["--store", str(tmp_path / "store"), "--max-model-len", "1024", "--max-num-seqs", "4",
                         "--disable-log-stats"], log_path=tmp_path / "server.log", startup_timeout=500)
    with srv:
        print(f"\ndefault-model server ready in {srv.startup_seconds:.1f}s", file=sys.stderr)
        report = _quickstart().run(srv.base_url, max_tokens=16)
        assert len(report) == 4 and all(r["id"].startswith("doc-") for r in report)
        assert all(isinstance(r["adapter"], str) for r in report)
        models = httpx.get(srv.base_url + "/v1/models", timeout=30).json()["data"]
        assert models[0]["id"] == "SmolLM2-135M-Instruct"
        assert {r["id"] for r in report} <= {m["id"] for m in models}
        metrics = httpx.get(srv.base_url + "/metrics", timeout=30).text
        assert "vllm_d2l_documents_internalized_total 2.0" in metrics
        # a task adapter of the packaged task network, its copy path on the LM head included
        task = httpx.post(srv.base_url + "/v1/tasks", json={"text": 'Start every reply with "Ahoy there!"'},
                          timeout=120).json()
        from vllm_d2l.serving.store import AdapterStore
        weights = AdapterStore(tmp_path / "store").load(task["id"])[1]
        assert weights.b["lm_head"].shape == (49152, task["rank"]) and weights.b["lm_head"].any()
        r = httpx.post(srv.base_url + "/v1/chat/completions", timeout=120, json={
            "model": task["id"], "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
        assert srv.alive()
