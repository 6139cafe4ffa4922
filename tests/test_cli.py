"""`vllm-d2l internalize` end to end on the tiny model, and its one-line errors."""
import subprocess
import sys

import torch

from tiny import build_tiny_hypernet as tiny_hypernet
from vllm_d2l.lora import LoRAWeights


def run_cli(*args, input=None):
    return subprocess.run([sys.executable, "-m", "vllm_d2l.cli", *map(str, args)], capture_output=True,
                          text=input is None or isinstance(input, str), input=input, timeout=300)


def test_internalize_writes_peft_folder(tiny_model_dir, tmp_path):
    hn = tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, rank=2, bias_rank=0)
    doc = tmp_path / "doc.txt"
    doc.write_text("The museum opens at nine. " * 40)
    out = tmp_path / "adapter"
    res = run_cli("internalize", doc, "--out", out, "--chunk-tokens", 64, "--max-rank", 3,
                  "--hypernet", hn, "--model", tiny_model_dir)
    assert res.returncode == 0, res.stderr
    assert "tokens=" in res.stdout and "rank=3" in res.stdout
    w = LoRAWeights.load_peft(out)
    assert w.rank == 3 and w.meta["chunks"] >= 2
    assert any(torch.count_nonzero(b) for b in w.b.values())


def test_internalize_errors_are_one_line(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00")
    res = run_cli("internalize", bad)
    assert res.returncode == 1 and "not valid UTF-8" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("internalize", tmp_path / "missing.txt")
    assert res.returncode == 1 and "no such file" in res.stderr
    res = run_cli("internalize", "-", "--hypernet", tmp_path / "nope", "--model", tiny_model_dir, input="hello")
    assert res.returncode == 1 and "hypernetwork folder not found" in res.stderr
    res = run_cli("nonsense")
    assert res.returncode == 2


def test_every_subcommand_has_its_module():
    import importlib

    from vllm_d2l.cli import COMMANDS
    for module, _ in COMMANDS.values():
        assert callable(importlib.import_module(module).main)


def test_internalize_a_task_description(tiny_model_dir, tmp_path, monkeypatch):
    """`--task` takes the text itself or a file, and reads it with the task hypernetwork."""
    hn = tiny_hypernet(tiny_model_dir, tmp_path / "task-hn", opened=True, kind="token", key_dim=6)
    out = tmp_path / "task"
    res = run_cli("internalize", "--task", "Answer in at most five words.", "--out", out, "--model", tiny_model_dir,
                  "--hypernet", hn)
    assert res.returncode == 0, res.stderr
    assert LoRAWeights.load_peft(out).rank == 6 + 8
    desc = tmp_path / "style.txt"
    desc.write_text("Reply in capital letters only.")
    res = run_cli("internalize", "--task", desc, "--model", tiny_model_dir, "--hypernet", hn, "--out", tmp_path / "b")
    assert res.returncode == 0, res.stderr
    res = run_cli("internalize", "--task", desc.read_text(), "--model", tiny_model_dir, "--hypernet", hn,
                  "--out", tmp_path / "c")
    from_file, from_text = (LoRAWeights.load_peft(tmp_path / x) for x in ("b", "c"))
    assert from_file.meta["tokens"] == from_text.meta["tokens"]  # the file's content was read, not its path
    assert all(torch.equal(from_file.b[k], from_text.b[k]) for k in from_file.b)
    res = run_cli("internalize", desc, "--task", "x")
    assert res.returncode == 2 and "one of them" in res.stderr
    res = run_cli("internalize", "--task", desc, "--model", tiny_model_dir, "--hypernet", hn, "--out", tmp_path / "g",
                  "--guidance", 2)
    assert res.returncode == 0, res.stderr
    guided = LoRAWeights.load_peft(tmp_path / "g")
    assert guided.meta["guidance"] == 2.0 and any(not torch.equal(guided.b[k], from_file.b[k]) for k in guided.b)
    res = run_cli("internalize", "--task", desc, "--hypernet", hn, "--guidance", 0)
    assert res.returncode == 2 and "--guidance must be > 0" in res.stderr
