"""Train a generator (the document run or the task run) on a borrowed GPU machine that has torch
and transformers but no vLLM, no model and no network, and accepts at most 64 MiB (working tree
included) per call.

The default model ships as a 94 MiB GGUF file, so it travels in parts over consecutive calls to
the same (still warm) machine; each call stores its part in an ignored folder there, and the call
that completes the set rebuilds the file, converts the model and trains.

Here (CPU machine), once:
    python scripts/gpu_train.py pack --config C      # parts + gguf wheel into gpu_pack/, prints the calls
There, one call per part (carry gpu_pack/part-K, gpu_pack/manifest.json, gpu_pack/wheels and
gpu_pack/corpora, the public-domain prose the training stream reads, which that machine lacks):
    python3 scripts/gpu_train.py run --config C --minutes 7.5   # stores the part; trains once all are there

C is examples/train_token_gpu.yaml (the default) or examples/train_tasks_gpu.yaml. The task run
does not read the document network's weights file, so it can stay behind while the calls run
(`git rm --cached` it and list it in .git/info/exclude; `git add` it afterwards): the tree that
travels is then 21 MiB and the model three parts instead of five. On an H200 the last call took
9.4 minutes for `--minutes 7.5`: the conversion 29 s, 192 task steps of 16, the evaluation 78 s
(before the configs' `pass_rows: 64`, which cut a step's operator calls from 467,000 to 60,000).

`run` trains from the committed snapshot (`resume_from` of the config; or from the run it left on
the machine in an earlier call) and writes what a CPU session needs to continue into $OUT: the log,
the best snapshot (bf16 weights + step; only where it beats the committed one by the hold-out,
scored once when the clock runs out unless `--no-eval`), the running average of the weights at the
stop (`last/`), and `summary.json` with the device name, measured steps per second, the teacher's
share of them and hold-out scores. `--profile 3` first profiles three steps into `profile.txt`
(where a step's time goes there); `--tf32` lets fp32 matrix products use the tensor cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "gpu_pack"  # ignored by git: travels only as carried paths
STORE = ROOT / "gpu_cache"  # ignored; on the GPU machine it keeps parts and the model between calls
CARRY_LIMIT_MIB = 64
HEADROOM_MIB = 4  # for files that change between packing and the calls


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_mib() -> float:
    """Size of what travels besides carried paths: tracked and untracked-not-ignored files."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    files = [ROOT / p.decode() for p in out.split(b"\0") if p]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2 ** 20


def split_file(src: Path, out_dir: Path, part_bytes: int) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(src, "rb") as fh:
        k = 0
        while block := fh.read(part_bytes):
            name = f"part-{k}"
            (out_dir / name).write_bytes(block)
            parts.append({"name": name, "bytes": len(block), "sha256": hashlib.sha256(block).hexdigest()})
            k += 1
    return parts


def join_parts(manifest: dict, where: Path, target: Path) -> bool:
    """Rebuild the file from stored parts when all are there and intact; False if any is missing."""
    missing = [p["name"] for p in manifest["parts"] if not (where / p["name"]).is_file()
               or sha256(where / p["name"]) != p["sha256"]]
    if missing:
        print(f"parts stored: {len(manifest['parts']) - len(missing)}/{len(manifest['parts'])} "
              f"(missing {', '.join(missing)})")
        return False
    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        for p in manifest["parts"]:
            out.write((where / p["name"]).read_bytes())
    if sha256(tmp) != manifest["sha256"]:
        tmp.unlink()
        raise SystemExit("rebuilt file does not match its checksum; send the parts again")
    tmp.replace(target)
    return True


# ----------------------------------------------------------------------------- here: pack
def pack(args) -> int:
    from vllm_d2l.base_model import _gguf_path
    from vllm_d2l.datasets import corpora
    from vllm_d2l.training.config import TrainConfig

    gguf = _gguf_path()
    if PACK.exists():
        shutil.rmtree(PACK)
    corpora.require(TrainConfig.from_file(ROOT / args.config).corpora)  # here, where they can be installed
    corpora.export(PACK / "corpora")
    corpora_mib = sum(f.stat().st_size for f in (PACK / "corpora").rglob("*") if f.is_file()) / 2 ** 20
    room = CARRY_LIMIT_MIB - HEADROOM_MIB - tree_mib() - 1 - corpora_mib  # 1 MiB: wheel and manifest
    if room < 8:
        raise SystemExit(f"the working tree leaves only {room:.1f} MiB per call for parts")
    parts = split_file(gguf, PACK, int(room * 2 ** 20))
    wheels = PACK / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheels), f"gguf=={args.gguf_version}"], check=True)
    manifest = {"file": gguf.name, "bytes": gguf.stat().st_size, "sha256": sha256(gguf), "parts": parts}
    (PACK / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"{len(parts)} parts of at most {room:.1f} MiB beside a {tree_mib():.1f} MiB working tree "
          f"and {corpora_mib:.1f} MiB of corpora")
    for p in parts:
        print(f"  call: carry [gpu_pack/{p['name']}, gpu_pack/manifest.json, gpu_pack/wheels, gpu_pack/corpora]  "
              f"command: python3 scripts/gpu_train.py run --minutes {args.minutes}")
    return 0


# ----------------------------------------------------------------------------- there: run
def install_wheels() -> None:
    """The GGUF reader is the one package the GPU image lacks."""
    try:
        import gguf  # noqa: F401
        return
    except ImportError:
        pass
    site = STORE / "site"
    wheels = sorted((PACK / "wheels").glob("*.whl"))
    if wheels and not any(site.glob("gguf*")):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target",
                        str(site), *map(str, wheels)], check=True)
    sys.path.insert(0, str(site))


def run(args) -> int:
    out = Path(os.environ.get("OUT") or args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((PACK / "manifest.json").read_text())
    parts = STORE / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for p in manifest["parts"]:  # keep what this call carried for the calls after it
        if (PACK / p["name"]).is_file():
            shutil.copyfile(PACK / p["name"], parts / p["name"])
    from vllm_d2l.base_model import DEFAULT_MODEL_NAME, convert_gguf, is_model_dir

    model_dir = STORE / "models" / DEFAULT_MODEL_NAME

    if not is_model_dir(model_dir):
        gguf = STORE / manifest["file"]
        if not gguf.is_file() and not join_parts(manifest, parts, gguf):
            return 0  # this call delivered a part; the next one brings more
        install_wheels()
        t0 = time.time()
        convert_gguf(gguf, model_dir)
        print(f"model converted in {time.time() - t0:.0f} s")

    import torch
    import yaml

    from vllm_d2l.datasets.corpora import EXPORTED_ENV
    from vllm_d2l.training.config import TrainConfig
    from vllm_d2l.training.trainer import Trainer

    os.environ[EXPORTED_ENV] = str(PACK / "corpora")  # the prose this machine has no packages for

    cfg = TrainConfig.from_file(ROOT / args.config)
    cfg.model_dir = str(model_dir)
    cfg.out_dir = str(STORE / "run")
    cfg.max_minutes = args.minutes
    for item in args.set or []:  # a dry run's smaller hold-out, for one
        key, _, value = item.partition("=")
        setattr(cfg, key, yaml.safe_load(value))
    if args.device:
        cfg.device = args.device
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here")
    if args.tf32:  # fp32 matrix products on the tensor cores: faster, 10-bit mantissas inside them
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if cfg.device == "cuda" else "cpu"
    trainer = Trainer(cfg)
    if args.profile:
        profile_steps(trainer, args.profile, out / "profile.txt")
    first, teacher0 = trainer.step, trainer.teacher_seconds
    t0 = time.time()
    trainer.run(progress=False, until=first + args.steps if args.steps else None)
    seconds = time.time() - t0
    teacher = trainer.teacher_seconds - teacher0  # before the evaluation adds its own
    if not args.no_eval and trainer.heldout and (trainer.last_heldout or {}).get("step") != trainer.step:
        # the run stopped on the clock between evaluations: score where it stands, so that its best
        # snapshot is chosen (against the committed one) before the machine goes back
        t1 = time.time()
        trainer.last_heldout = trainer.evaluate_row()
        with open(Path(cfg.out_dir) / "log.jsonl", "a") as log:
            log.write(json.dumps(trainer.last_heldout) + "\n")
        trainer.save()
        print(f"evaluated in {time.time() - t1:.0f} s")
    run_dir = Path(cfg.out_dir)
    for rel in ("log.jsonl", "best/state.json", "best/hypernet/config.json", "best/hypernet/model.safetensors"):
        if (run_dir / rel).is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / rel, out / rel)
    if trainer.average is not None:  # the running average where the run stopped, better or not
        with trainer.average.swapped_in(trainer.net):
            trainer.net.save(out / "last", dtype=torch.bfloat16)
    summary = {"device": name, "tf32": bool(args.tf32), "steps": trainer.step - first, "from_step": first,
               "to_step": trainer.step,
               "seconds": round(seconds, 1), "steps_per_second": round((trainer.step - first) / seconds, 3),
               "teacher_share": round(teacher / seconds, 3), "batch_docs": cfg.batch_docs, "config": args.config}
    row = trainer.last_heldout
    if row is not None:  # the hold-out's score of the weights and of their average (lower is better)
        summary["score"] = round(trainer.score({k: v for k, v in row.items() if not k.startswith("avg_")}), 4)
        averaged = {k[4:]: v for k, v in row.items() if k.startswith("avg_")}
        if averaged:
            summary["avg_score"] = round(trainer.score(averaged), 4)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0


def profile_steps(trainer, steps: int, path: Path) -> None:
    """Where a step's time goes on this device: one step to warm up, then `steps` under the
    profiler; the table (the trainer's own labels, teacher / factors / loss / backward / optimizer,
    beside the busiest operators) goes to `path`. These are training steps like any other, but the
    log has no rows for them."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = trainer.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    trainer.train_step()
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    t0 = time.time()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step()
        sync()
    wall = (time.time() - t0) / steps
    table = prof.key_averages().table(sort_by="cuda_time_total" if cuda else "cpu_time_total", row_limit=40)
    path.write_text(f"{steps} steps of {trainer.cfg.batch_docs} on {trainer.device}, {wall:.2f} s a step "
                    f"under the profiler\n\n{table}\n")
    print(f"profiled {steps} steps: {wall:.2f} s a step; table in {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="here: split the model file and fetch the wheel into gpu_pack/")
    a.add_argument("--gguf-version", default="0.19.0")
    a.add_argument("--minutes", type=float, default=8)
    a.add_argument("--config", default="examples/train_token_gpu.yaml", help="the run whose corpora travel")
    b = sub.add_parser("run", help="there: store this call's part; once all are there, train")
    b.add_argument("--config", default="examples/train_token_gpu.yaml")
    b.add_argument("--minutes", type=float, default=8, help="training wall clock (leave room for start-up)")
    b.add_argument("--steps", type=int, help="stop after this many steps instead (for a dry run)")
    b.add_argument("--device", help="override the config's device (cpu for a dry run here)")
    b.add_argument("--profile", type=int, default=0, metavar="N",
                   help="first profile N steps (after one to warm up) into profile.txt")
    b.add_argument("--no-eval", action="store_true",
                   help="skip the closing evaluation (a later call on the same machine continues and scores)")
    b.add_argument("--tf32", action="store_true", help="let CUDA run fp32 matrix products in TF32")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (YAML value)")
    b.add_argument("--out", default="gpu_out", help="where results go when $OUT is not set")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    return pack(args) if args.cmd == "pack" else run(args)


if __name__ == "__main__":
    sys.exit(main())
