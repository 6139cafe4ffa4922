"""`python -m bench` / `vllm-d2l bench`: serving benchmarks against real servers on 127.0.0.1.

    python -m bench all [--quick]      every scenario below, then results/summary.md
    python -m bench adapters           output tok/s vs distinct adapters in flight; ours vs stock vs plain
    python -m bench documents          QA by document length, KV vs adapter memory, chats under uploads
    python -m bench internalize        bench/internalize.py (latency and peak memory vs length)
    python -m bench store              10,000 stored adapters: list latency, cold vs warm first token, start-up
    python -m bench priority           chats under uploads, internalization at normal vs lowered priority
    python -m bench report             rebuild results/summary.md from the JSON files

`--quick` is a smoke run: one server, tiny loads, two repeats (the tests use it with a tiny model).
Every scenario writes its JSON and PNG into `--out` (default: results/).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import meta, plots, report, results
from .config import Plan

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("all", "adapters", "documents", "internalize", "store", "priority", "report")


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split(",") if x.strip())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("scenario", choices=SCENARIOS, nargs="?", default="all")
    p.add_argument("--quick", action="store_true", help="smoke run: one server, tiny loads")
    p.add_argument("--out", type=Path, default=ROOT / "results", help="where JSON, PNG and summary.md go")
    p.add_argument("--work", type=Path, help="scratch folder (stores, synthetic adapters, server logs)")
    p.add_argument("--model", help="model folder (default: the default model)")
    p.add_argument("--hypernet", help="hypernetwork folder (default: the default one; opened if untrained)")
    p.add_argument("--dtype", help="vLLM --dtype (default: the checkpoint's)")
    g = p.add_argument_group("load (defaults: full run; --quick shrinks them)")
    g.add_argument("--concurrency", type=int)
    g.add_argument("--requests", type=int, help="requests per batch (one arm, one repeat)")
    g.add_argument("--output-tokens", type=int)
    g.add_argument("--repeats", type=int)
    g.add_argument("--deadline", type=float, help="seconds after which a batch starts no new request")
    g.add_argument("--warmup", type=int, help="warm-up requests per arm")
    s = p.add_argument_group("scenarios")
    s.add_argument("--servers", help="adapters: server kinds, from plain,plain-eager,ours,ours-compiled,stock")
    s.add_argument("--counts", type=_ints, help="adapters: distinct adapters in flight on our path, e.g. 1,2,4,8,16")
    s.add_argument("--stock-counts", type=_ints, help="adapters: the same on vLLM's stock path")
    s.add_argument("--rank", type=int, help="adapters: rank of the synthetic adapters")
    s.add_argument("--lengths", type=_ints, help="documents: document lengths in tokens")
    s.add_argument("--docs", type=int, help="documents: distinct documents (adapters) per length")
    s.add_argument("--documents-server", choices=("ours", "ours-compiled"),
                   help="documents: eager or compiled (default: compiled, as `vllm-d2l serve` runs)")
    s.add_argument("--internalize-lengths", default="512,2048,4096,16384",
                   help="internalize: lengths for bench/internalize.py")
    s.add_argument("--store-adapters", type=int, default=10_000, help="store: adapters in the filled store")
    s.add_argument("--store-rank", type=int, default=128, help="store: rank of the stored adapters")
    return p


def _plan(args) -> Plan:
    from dataclasses import replace

    plan = Plan.quick_plan() if args.quick else Plan()
    plan = plan.with_load(concurrency=args.concurrency, requests=args.requests, output_tokens=args.output_tokens,
                          repeats=args.repeats, deadline_s=args.deadline, warmup_requests=args.warmup)
    changes = {"adapter_counts": args.counts, "stock_counts": args.stock_counts, "adapter_rank": args.rank,
               "lengths": args.lengths, "docs_per_length": args.docs, "documents_server": args.documents_server,
               "sweep_servers": tuple(args.servers.split(",")) if args.servers else None}
    return replace(plan, **{k: v for k, v in changes.items() if v is not None})


def _meta(args, plan: Plan, start: dict, extra: dict | None = None) -> dict:
    return {"machine": meta.machine(), "start": start, "end": meta.snapshot(), "quick": plan.quick,
            "command": "python -m bench " + " ".join(shlex.quote(a) for a in args.argv), "load": plan.load.as_dict(),
            "plan": plan.as_dict(), **(extra or {})}


def _model(args) -> tuple[str, str | None]:
    if args.model:
        return str(Path(args.model).resolve()), None
    from vllm_d2l.base_model import DEFAULT_MODEL_NAME, ensure_default_model

    return str(ensure_default_model()), DEFAULT_MODEL_NAME


def run_adapters(args, plan: Plan, work: Path) -> None:
    from .sweep import run_sweep

    model, served = _model(args)
    start = meta.snapshot()

    def write(res: dict) -> None:
        extra = {"adapter_rank": plan.adapter_rank, "target_modules": ["down_proj"],
                 "servers_planned": list(plan.sweep_servers)}
        path = results.write(args.out, "adapters", res, _meta(args, plan, start, extra))
        plots.plot_sweep(res, args.out / "adapters.png")
        print(f"wrote {path} ({', '.join(res['servers'])})")

    run_sweep(model, served, plan, work, work / "logs", args.dtype, on_server=write)


def _write_documents(args, plan: Plan, parts: dict, start: dict, note: str) -> None:
    """Write whichever of qa / memory / uploads `parts` holds (called after each one)."""
    extra = {"hypernet": note, "server": parts.get("spec"), "startup_s": parts.get("startup_s")}
    m = _meta(args, plan, start, extra)
    if "qa" in parts:
        qa = {"documents": parts["documents"], "qa": parts["qa"]}
        results.write(args.out, "qa", qa, m)
        plots.plot_qa(qa, args.out / "qa.png")
    if "memory" in parts:
        results.write(args.out, "memory", parts["memory"], m)
        plots.plot_memory(parts["memory"], args.out / "memory.png")
    if "uploads" in parts:
        up = {"documents": parts["documents"], "uploads": parts["uploads"]}
        results.write(args.out, "uploads", up, m)
        plots.plot_uploads(up, args.out / "uploads.png")
    print(f"wrote {', '.join(k for k in ('qa', 'memory', 'uploads') if k in parts)} results to {args.out}")


def _setup(args, work: Path) -> tuple[str, str | None, Path, str, dict]:
    """What a document-server scenario starts from: model, served name, hypernetwork (opened if
    untrained) with a note saying which, and the machine snapshot at the start."""
    from .adapters import bench_hypernet

    model, served = _model(args)
    hypernet, note = bench_hypernet(args.hypernet, work / "hypernets")
    return model, served, hypernet, note, meta.snapshot()


def _write_one(args, plan: Plan, start: dict, note: str, scenario: str, res: dict, plot) -> None:
    path = results.write(args.out, scenario, res, _meta(args, plan, start, {"hypernet": note}))
    plot(res, path.with_suffix(".png"))
    print(f"wrote {path}")


def run_documents(args, plan: Plan, work: Path) -> None:
    from .documents import run_documents as run

    model, served, hypernet, note, start = _setup(args, work)
    run(model, served, hypernet, plan, work, work / "logs", args.dtype,
        emit=lambda parts: _write_documents(args, plan, parts, start, note))


def run_quick_all(args, plan: Plan, work: Path) -> None:
    """Smoke run on a single server: the sweep's base and our-path arms, then the documents."""
    from .adapters import bench_hypernet, write_synthetic_adapters
    from .documents import documents_spec, model_dtype, run_documents_on
    from .servers import server
    from .sweep import compare, sweep_on

    model, served = _model(args)
    hypernet, note = bench_hypernet(args.hypernet, work / "hypernets")
    paths = write_synthetic_adapters(work / "adapters", model, plan.adapter_rank, max(plan.adapter_counts))
    spec = documents_spec(model, served, hypernet, work / "store-quick", plan, args.dtype,
                          max(plan.docs_per_length, *plan.adapter_counts))
    start = meta.snapshot()
    with server(spec, work / "logs") as srv:
        sweep = sweep_on(srv.base_url, True, plan.adapter_counts, plan, paths, "adapters[ours]")
        sweep.update(startup_s=srv.startup_seconds, spec=spec.describe())
        parts = run_documents_on(srv.base_url, model, hypernet, plan, model_dtype(model, args.dtype))
        parts.update(startup_s=srv.startup_seconds, spec=spec.describe())
    res = {"servers": {"ours": sweep}, "comparisons": compare({"ours": sweep}),
           "skipped": "quick mode runs one server: no stock or plain servers"}
    results.write(args.out, "adapters", res, _meta(args, plan, start, {"adapter_rank": plan.adapter_rank}))
    plots.plot_sweep(res, args.out / "adapters.png")
    _write_documents(args, plan, parts, start, note)


def run_store(args, plan: Plan, work: Path) -> None:
    from .store import run_store as run

    model, served, hypernet, note, start = _setup(args, work)
    count = min(args.store_adapters, 200) if plan.quick else args.store_adapters
    res = run(model, served, hypernet, work, work / "logs", args.dtype, count, args.store_rank,
              calls=5 if plan.quick else 50, cold=2 if plan.quick else 8)
    _write_one(args, plan, start, note, "store", res, plots.plot_store)


def run_priority(args, plan: Plan, work: Path) -> None:
    from dataclasses import replace

    from .documents import documents_spec
    from .servers import ServerSpec
    from .uploads import run_priority as run

    model, served, hypernet, note, start = _setup(args, work)

    def spec_for(store: Path, env: tuple) -> ServerSpec:
        base = documents_spec(model, served, hypernet, store, plan, args.dtype, plan.docs_per_length)
        return replace(base, extra_env=env)

    res = run(model, served, hypernet, plan, work, work / "logs", args.dtype, spec_for)
    _write_one(args, plan, start, note, "priority", res, plots.plot_priority)


def run_internalize(args, plan: Plan) -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "internalize.py"), "--lengths", args.internalize_lengths,
           "--repeats", str(min(plan.load.repeats, 3)), "--out", str(args.out / "internalize.json")]
    print("running", " ".join(cmd))
    subprocess.run(cmd, check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    args.out = args.out.resolve()
    plan = _plan(args)
    work = args.work or Path(tempfile.mkdtemp(prefix="vllm-d2l-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"scratch: {work} (server logs in {work / 'logs'})")
    t0 = time.monotonic()
    if args.scenario == "report":
        pass
    elif args.quick and args.scenario == "all":
        run_quick_all(args, plan, work)
    else:
        if args.scenario in ("all", "adapters"):
            run_adapters(args, plan, work)
        if args.scenario in ("all", "documents"):
            run_documents(args, plan, work)
        if args.scenario == "internalize" or (args.scenario == "all" and not args.quick):
            run_internalize(args, plan)
        if args.scenario in ("all", "store"):
            run_store(args, plan, work)
        if args.scenario in ("all", "priority"):
            run_priority(args, plan, work)
    path = report.build(args.out)
    print(f"wrote {path} ({time.monotonic() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
