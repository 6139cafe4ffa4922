"""The GPU training job's packaging: the model file travels in parts over several calls and is
rebuilt only when every part is there and intact."""
import hashlib
import importlib.util
import math
import os
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("gpu_train", Path(__file__).parent.parent / "scripts" / "gpu_train.py")
gpu_train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_train)


def test_parts_rebuild_the_file_only_when_complete(tmp_path):
    src = tmp_path / "model.gguf"
    src.write_bytes(os.urandom(250_000))
    parts = gpu_train.split_file(src, tmp_path / "pack", 100_000)
    assert [p["bytes"] for p in parts] == [100_000, 100_000, 50_000]
    manifest = {"file": src.name, "sha256": hashlib.sha256(src.read_bytes()).hexdigest(), "parts": parts}
    store = tmp_path / "store"
    store.mkdir()
    target = tmp_path / "rebuilt.gguf"
    for k, p in enumerate(parts):  # one part per call, as the calls deliver them
        assert not target.exists()
        assert gpu_train.join_parts(manifest, store, target) is False
        (store / p["name"]).write_bytes((tmp_path / "pack" / p["name"]).read_bytes())
    assert gpu_train.join_parts(manifest, store, target) is True
    assert target.read_bytes() == src.read_bytes()
    (store / "part-1").write_bytes(b"x" * 100_000)  # a damaged part counts as missing
    assert gpu_train.join_parts(manifest, store, tmp_path / "again.gguf") is False
    manifest["sha256"] = "0" * 64
    (store / "part-1").write_bytes((tmp_path / "pack" / "part-1").read_bytes())
    with pytest.raises(SystemExit, match="checksum"):
        gpu_train.join_parts(manifest, store, tmp_path / "third.gguf")


def test_gpu_config_matches_the_cpu_run():
    """The GPU job continues the CPU run's snapshot, so both must build the same network."""
    from vllm_d2l.training.config import TrainConfig
    root = Path(__file__).parent.parent
    cpu, gpu = (TrainConfig.from_file(root / "examples" / f) for f in ("train_token.yaml", "train_token_gpu.yaml"))
    assert cpu.hypernet == gpu.hypernet and gpu.device == "cuda" and gpu.resume_from
    assert (cpu.heldout_docs, cpu.heldout_realistic, cpu.heldout_cloze, cpu.heldout_open, cpu.heldout_long,
            cpu.seed) == (gpu.heldout_docs, gpu.heldout_realistic, gpu.heldout_cloze, gpu.heldout_open,
                          gpu.heldout_long, gpu.seed)
    assert (cpu.stream, cpu.open_values, cpu.needle_composed, cpu.needle_everyday, cpu.realistic_everyday) == (
        gpu.stream, gpu.open_values, gpu.needle_composed, gpu.needle_everyday, gpu.realistic_everyday)
    # the same targets and the same hold-out rows, or the GPU run would undo a change of the CPU run's
    assert (cpu.answer_space, cpu.heldout_since, cpu.corpora, cpu.heldout_unseen, cpu.heldout_files, cpu.probe_weights,
            cpu.train_overlap, cpu.files_as_read) == (
        gpu.answer_space, gpu.heldout_since, gpu.corpora, gpu.heldout_unseen, gpu.heldout_files, gpu.probe_weights,
        gpu.train_overlap, gpu.files_as_read)


def test_committed_snapshot_resumes_the_token_run():
    """A fresh machine continues the run from the committed snapshot: it must load and match the
    config that names it."""
    import json

    from vllm_d2l.hypernet import HypernetBase
    from vllm_d2l.training.config import TrainConfig
    root = Path(__file__).parent.parent
    cfg = TrainConfig.from_file(root / "examples" / "train_token.yaml")
    snap = root / cfg.resume_from
    net = HypernetBase.load(snap / "hypernet")
    from vllm_d2l.training.checkpoint import SWITCHES
    # equal, but for a zero-started part the config switches on over it (`load_snapshot`)
    assert all(getattr(net.config, k) == v or (k in SWITCHES and v) for k, v in cfg.hypernet.items())
    assert json.loads((snap / "state.json").read_text())["step"] > 0 and not net.is_noop()


def test_the_snapshot_is_the_packaged_default_and_the_tree_leaves_room_for_the_model():
    """The resume snapshot's weights are the packaged default's file (a link, not a copy): every
    megabyte of the working tree travels with each GPU call, leaving less for the model's parts."""
    root = Path(__file__).parent.parent
    from vllm_d2l.paths import package_data_dir
    assert (root / "checkpoints" / "token" / "hypernet").resolve() == (package_data_dir() / "hypernet").resolve()
    # beside the tree, each call carries the exported corpora (about 2 MiB) and the gguf wheel
    room = gpu_train.CARRY_LIMIT_MIB - gpu_train.HEADROOM_MIB - gpu_train.tree_mib() - 1 - 2.5
    calls = math.ceil(95 / room)  # the model file is 94 MiB
    assert calls <= 5, f"only {room:.1f} MiB per call for the model's parts: {calls} calls"


def test_task_gpu_config_is_the_cpu_task_run_but_for_its_pace():
    """The task run's GPU job continues the committed task snapshot and is scored on the same
    hold-out, so that its best snapshot can replace the CPU run's: only the fields that set the
    pace, the place and the records drawn may differ."""
    import dataclasses

    from vllm_d2l.training.config import TrainConfig
    root = Path(__file__).parent.parent
    cpu, gpu = (TrainConfig.from_file(root / "examples" / f) for f in ("train_tasks.yaml", "train_tasks_gpu.yaml"))
    pace = {"out_dir", "batch_docs", "stream_seed", "threads", "eval_every", "save_every", "log_every", "device",
            "pass_rows"}
    differ = {f.name for f in dataclasses.fields(cpu) if getattr(cpu, f.name) != getattr(gpu, f.name)}
    assert differ <= pace, f"the GPU task run departs from the CPU run in {sorted(differ - pace)}"
    assert gpu.device == "cuda" and gpu.dtype == cpu.dtype == "float32" and gpu.resume_from == cpu.resume_from
    assert gpu.stream_seed not in (None, cpu.seed)  # other records than the CPU run trains on


def test_profile_writes_the_trainers_labels_and_the_step_time(tmp_path):
    """`run --profile N`: one step to warm up, then N under the profiler, the table in a file."""
    from types import SimpleNamespace

    import torch
    from torch.profiler import record_function

    calls = []

    def train_step():
        with record_function("teacher"):
            torch.randn(64, 64) @ torch.randn(64, 64)
        calls.append(1)

    trainer = SimpleNamespace(train_step=train_step, device=torch.device("cpu"), cfg=SimpleNamespace(batch_docs=3))
    gpu_train.profile_steps(trainer, 2, tmp_path / "profile.txt")
    text = (tmp_path / "profile.txt").read_text()
    assert len(calls) == 3 and text.startswith("2 steps of 3 on cpu") and "teacher" in text and "aten::mm" in text
