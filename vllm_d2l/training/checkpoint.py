"""Resumable training state in safetensors + JSON (no pickles, not even for the optimizer)."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..hypernet import Hypernet


def save(folder: Path, net: Hypernet, opt: torch.optim.Optimizer, state: dict,
         average: dict[str, torch.Tensor] | None = None) -> None:
    """Write to a temp folder, then swap it in, so a kill mid-save never corrupts the last one.
    `average`: a running average of the weights, kept beside them (`average.safetensors`)."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    net.save(tmp, dtype=torch.float32)
    if average is not None:
        save_file({k: v.contiguous() for k, v in average.items()}, str(tmp / "average.safetensors"))
    tensors, meta = {}, {}
    sd = opt.state_dict()
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val) and val.dim() > 0:
                tensors[f"{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                meta[f"{idx}.{key}"] = float(val)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "optimizer_scalars": meta,
                                                "param_groups": sd["param_groups"]}, indent=2))
    swap_in(tmp, folder)


def swap_in(tmp: Path, folder: Path) -> None:
    """Replace `folder` by `tmp` through a `.old` step, so a kill at any point leaves one whole copy."""
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)


def load(folder: Path, net: Hypernet, opt: torch.optim.Optimizer, grow: bool = False) -> dict:
    """Restore weights and optimizer in place; return the saved training state.

    `grow`: `net` may have parameters the checkpoint lacks, each in an optimizer group after the
    saved ones (a branch that switches a zero-started part on); they keep their fresh values and
    start their optimizer state afresh, and everything the checkpoint has is restored as saved."""
    loaded = Hypernet.load(folder)
    missing, unexpected = net.load_state_dict(loaded.state_dict(), strict=not grow)  # copies onto net's device
    state = json.loads((folder / "state.json").read_text())
    saved_groups = state.pop("param_groups")
    tensors = load_file(str(folder / "optimizer.safetensors"))
    per_param: dict[int, dict] = {}
    for key, val in tensors.items():
        idx, name = key.split(".", 1)
        per_param.setdefault(int(idx), {})[name] = val
    for key, val in state.pop("optimizer_scalars").items():
        idx, name = key.split(".", 1)
        per_param.setdefault(int(idx), {})[name] = torch.tensor(val)
    if grow:
        saved_groups = _grown_groups(net, opt, saved_groups, missing, unexpected)
    opt.load_state_dict({"state": per_param, "param_groups": saved_groups})
    return state


def group_names(folder: Path) -> list[str]:
    """The names of a checkpoint's optimizer groups, in their saved order."""
    return [g.get("name", "") for g in json.loads((folder / "state.json").read_text())["param_groups"]]


def _grown_groups(net: Hypernet, opt: torch.optim.Optimizer, saved: list[dict], missing: list[str],
                  unexpected: list[str]) -> list[dict]:
    """The saved optimizer groups followed by the current ones that hold only the new parameters;
    anything else that differs is an error (a branch may add parts, never change them)."""
    if unexpected:
        raise ValueError(f"the checkpoint has parameters this network lacks: {unexpected[:3]}")
    current = opt.state_dict()["param_groups"]
    names = {id(p): n for n, p in net.named_parameters()}
    new_ids = {id(p) for n, p in net.named_parameters() if n in set(missing)}
    head, tail = current[:len(saved)], current[len(saved):]
    same = all(a.get("name") == b.get("name") and len(a["params"]) == len(b["params"]) for a, b in zip(saved, head))
    tail_params = [p for g in opt.param_groups[len(saved):] for p in g["params"]]
    if not same or {id(p) for p in tail_params} != new_ids:
        raise ValueError("the network's new parameters must come in optimizer groups after the saved ones; "
                         f"new: {sorted(missing)[:3]}, groups after the saved ones: "
                         f"{[names[id(p)] for p in tail_params][:3]}")
    return saved + tail


def save_snapshot(folder: Path, net: Hypernet, state: dict) -> None:
    """The small, committable form of a run: bf16 weights, config and step, no optimizer (which
    is twice the weights). A run resumes from it with a fresh optimizer (`load_snapshot`)."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    net.save(tmp / "hypernet", dtype=torch.bfloat16)
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    swap_in(tmp, folder)


# settings of how the generator reads a document, which training never uses: a snapshot taken with
# another value resumes as it is
READING = ("chunk_overlap",)

# switches that add a part starting as a no-op (the network without it, exactly: the pooled block's
# mixing map, like the others' tensors, starts at zero): a config may turn one on over a snapshot
# taken without it, as a resumed run may over its own checkpoint
SWITCHES = ("write_gate", "own_write_keys", "value_embed", "pooled_rank", "pointer_rank", "pointer_embed",
            "pointer_variants", "pointer_ahead")


def load_snapshot(folder: Path, net: Hypernet) -> int:
    """Load a snapshot's weights into `net` in place; return the step it was taken at. Parts that
    `net`'s config switches on and the snapshot lacks keep their zero start."""
    state_file = folder / "state.json"
    if not state_file.is_file():
        raise FileNotFoundError(f"{folder} is not a training snapshot (no state.json)")
    loaded = Hypernet.load(folder / "hypernet")
    mine, theirs = asdict(net.config), asdict(loaded.config)
    switched = {k for k in SWITCHES if mine.get(k) and not theirs.get(k)}
    free = ("base_model", "base_vocab_size", *READING, *switched)  # the vocabulary: checked against the model
    if {k: v for k, v in mine.items() if k not in free} != {k: v for k, v in theirs.items() if k not in free}:
        raise ValueError(f"snapshot {folder} was trained with another hypernetwork config")
    net.load_state_dict(loaded.state_dict(), strict=not switched)  # the switched parts keep their zeros
    return int(json.loads(state_file.read_text())["step"])
