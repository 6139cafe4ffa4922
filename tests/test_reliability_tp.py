"""Tensor parallelism: an uploaded adapter reaches every rank and gives the same tokens as on one rank.

Opt-in (`VLLM_D2L_TEST_TP=1`): on vLLM 0.32's CPU build `-tp 2` needs a core per rank bound by
hand (`VLLM_CPU_OMP_THREADS_BIND=0|1`; automatic binding wants a NUMA node per rank), and on a
two-core machine that is shared with other work each step crawls (minutes per test). On a GPU
machine drop the binding variable and run it as is.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch

from vllm_d2l.serving.testing import ServerProcess

sys.path.insert(0, str(Path(__file__).parent))
from tiny import build_servable  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("VLLM_D2L_TEST_TP") != "1", reason="set VLLM_D2L_TEST_TP=1")]


def _setup(root: Path) -> tuple[Path, Path]:
    return build_servable(root)


def _tokens(client: httpx.Client, model: str) -> tuple[int, ...]:
    r = client.post("/v1/completions", json={"model": model, "prompt": "Paris is the capital of", "max_tokens": 4,
                                              "temperature": 0, "ignore_eos": True, "return_token_ids": True})
    assert r.status_code == 200, r.text
    return tuple(r.json()["choices"][0]["token_ids"])


def test_upload_with_tp2_matches_tp1(tmp_path):
    model, hypernet = _setup(tmp_path)
    args = ["--model", str(model), "--hypernet", str(hypernet), "--store", str(tmp_path / "store"),
            "--dtype", "float32", "--max-model-len", "128", "--max-num-seqs", "2", "--max-loras", "1",
            "--max-lora-rank", "16", "--disable-log-stats"]
    text = "Paris is the capital of France. Berlin is the capital of Germany. " * 4
    bind = {} if torch.cuda.is_available() else {"VLLM_CPU_OMP_THREADS_BIND": "0|1"}
    t0 = time.monotonic()
    with ServerProcess([*args, "-tp", "2"], env=bind, log_path=tmp_path / "tp2.log", startup_timeout=400) as srv:
        with httpx.Client(base_url=srv.base_url, timeout=300) as c:
            up = c.post("/v1/documents", json={"text": text})  # registration: collective_rpc to both ranks
            assert up.status_code == 200, up.text
            doc = up.json()["id"]
            base = c.get("/v1/models").json()["data"][0]["id"]
            tp2 = (_tokens(c, doc), _tokens(c, base))
    with ServerProcess(args, log_path=tmp_path / "tp1.log", startup_timeout=400) as srv:
        with httpx.Client(base_url=srv.base_url, timeout=300) as c:
            tp1 = (_tokens(c, doc), _tokens(c, base))  # the resolver loads the adapter TP=2 stored
    print(f"\ntp2 vs tp1 on the tiny model in {time.monotonic() - t0:.0f}s: {tp2} / {tp1}", file=sys.stderr)
    assert tp2[0] == tp1[0], "the adapter gives other tokens across two ranks"
    assert tp2[1] == tp1[1] and tp1[0] != tp1[1]
