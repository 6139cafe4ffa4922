"""`vllm-d2l eval`: how much of a document an adapter carries, measured by questions.

Every question is answered four ways by the same base model: with no context (what the model
already knows: ~0 on invented facts), with the document in the prompt (the teacher the adapter is
distilled from), with the document's generated adapter and the bare question (what we ship), and
with another document's adapter ("other"). Gap closure (adapter - none) / (context - none) says how
much of the in-context benefit the adapter recovers; adapter - other is what the adapter carries of
its own document rather than answer style, which any adapter teaches.

    vllm-d2l eval --data docs.jsonl --out results.json --plot results.png
    vllm-d2l eval --synthetic 50 --limit 20          # held-out genres of the synthetic generator
    vllm-d2l eval --needle --train-tokens 1024       # needle recall (see needle.py)
    vllm-d2l eval --server http://127.0.0.1:8000    # through a running server (see served.py)
    vllm-d2l eval --tasks                            # task descriptions: compliance (see tasks.py)
    vllm-d2l eval --multi 1,2,4                      # composite adapters of K documents (see multi.py)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from ..prompts import context_messages, question_messages, render
from .generation import factors_of, generate
from .metrics import contains, gap_closure, token_f1

CONDITIONS = ("none", "context", "adapter", "other")


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="q", dynamic_ncols=True)


def _summary(items: list[dict], conditions: Sequence[str]) -> dict:
    out = {}
    for c in conditions:
        n = len(items)
        out[c] = {"accuracy": sum(i["correct"][c] for i in items) / n if n else 0.0,
                  "f1": sum(i["f1"][c] for i in items) / n if n else 0.0, "n": n}
    return out


def _gaps(summary: dict) -> dict:
    if not all(c in summary for c in ("none", "context", "adapter")):
        return {}
    return {m: gap_closure(summary["adapter"][m], summary["context"][m], summary["none"][m]) for m in ("accuracy", "f1")}


def _content(summary: dict) -> dict:
    """Own adapter minus another document's: the part of the score that is the document's."""
    if "adapter" not in summary or "other" not in summary:
        return {}
    return {m: summary["adapter"][m] - summary["other"][m] for m in ("accuracy", "f1")}


def summarize(items: list[dict], conditions: Sequence[str]) -> dict:
    """Every summary of scored items: per condition, gap closure, content gap and breakdowns."""
    summary = _summary(items, conditions)
    return {"conditions": summary, "gap_closure": _gaps(summary), "content_gap": _content(summary),
            **{f"by_{k}": _breakdown(items, k, conditions) for k in ("genre", "type", "length")}}


def score(item: dict, cond: str) -> None:
    """Mark one output of an item: answer contained, token F1."""
    item["correct"][cond] = contains(item["outputs"][cond], item["a"])
    item["f1"][cond] = token_f1(item["outputs"][cond], item["a"])


def _breakdown(items: list[dict], key: str, conditions: Sequence[str]) -> dict:
    groups: dict[str, list[dict]] = {}
    for i in items:
        if i.get(key):
            groups.setdefault(i[key], []).append(i)
    return {g: {"conditions": (s := _summary(v, conditions)), "gap_closure": _gaps(s)} for g, v in sorted(groups.items())}


def evaluate(generator, records: list[dict], conditions: Sequence[str] = CONDITIONS, max_new_tokens: int = 24,
             batch_size: int = 8, progress: bool = False) -> dict:
    """Answer every question of `records` under each condition; scores, breakdowns and every output.

    Cheap enough for the trainer's periodic held-out check with a handful of records. The base
    model of `generator` answers in all conditions, so only the adapter differs between runs.
    """
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown conditions {unknown}; known: {', '.join(CONDITIONS)}")
    model, tok = generator.model, generator.tokenizer
    items = [{"id": r.get("id", str(n)), "genre": r.get("genre"), "length": r.get("length"), "type": qa.get("type"),
              "q": qa["q"], "a": qa["a"],
              "doc": n, "outputs": {}, "correct": {}, "f1": {}}
             for n, r in enumerate(records) for qa in r["qa"]]
    if "other" in conditions and len(records) < 2:
        raise ValueError("the 'other' condition needs at least two documents")
    seconds: dict[str, float] = {}
    bar = _bar(len(items) * len(conditions), "answering", progress)
    tick = bar.update if bar else None
    adapters = None

    for cond in conditions:
        t0 = time.perf_counter()
        if cond in ("adapter", "other"):
            if adapters is None:
                t_int = time.perf_counter()
                adapters = [w.weights for w in generator.internalize_many([r["text"] for r in records])]
                seconds["internalize"] = time.perf_counter() - t_int
            shift = len(records) // 2 if cond == "other" else 0
            for n in range(len(records)):  # one adapter per document: batch that document's questions
                w = adapters[(n + shift) % len(records)]
                mine = [i for i in items if i["doc"] == n]
                prompts = [render(tok, question_messages(i["q"])) for i in mine]
                for i, text in zip(mine, generate(model, tok, prompts, max_new_tokens, batch_size,
                                                  factors=factors_of(w), on_batch=tick)):
                    i["outputs"][cond] = text
        else:
            if cond == "context":
                prompts = [render(tok, context_messages(records[i["doc"]]["text"], i["q"])) for i in items]
            else:
                prompts = [render(tok, question_messages(i["q"])) for i in items]
            # similar lengths together: less padding per batch
            order = sorted(range(len(items)), key=lambda k: len(prompts[k]))
            texts = generate(model, tok, [prompts[k] for k in order], max_new_tokens, batch_size, on_batch=tick)
            for k, text in zip(order, texts):
                items[k]["outputs"][cond] = text
        seconds[cond] = time.perf_counter() - t0
        for i in items:
            score(i, cond)
    if bar:
        bar.close()

    for i in items:
        del i["doc"]
    return {
        "n_docs": len(records), "n_questions": len(items), **summarize(items, conditions),
        "settings": {"max_new_tokens": max_new_tokens, "greedy": True, "scoring": "normalised answer contained"},
        "seconds": {k: round(v, 2) for k, v in seconds.items()}, "items": items,
    }


def rescore(results: dict) -> dict:
    """Score a saved result's outputs again with the current scorer (every output is kept, so a
    scoring change needs no new generation); summaries and breakdowns follow."""
    items = results.get("items")
    if not isinstance(items, list) or not isinstance(results.get("conditions"), dict):
        raise ValueError("not a question-answer result (needs 'items' and 'conditions')")
    conditions = list(results["conditions"])
    for i in items:
        for c in conditions:
            score(i, c)
    errors = {c: s["errors"] for c, s in results["conditions"].items() if "errors" in s}  # served: refusals
    results.update(summarize(items, conditions))
    for c, n in errors.items():
        results["conditions"][c]["errors"] = n
    return results


def _load_records(args) -> tuple[list[dict], str]:
    from ..datasets import jsonl, synthetic

    if args.synthetic:
        genres = [g.strip() for g in args.genres.split(",") if g.strip()] if args.genres \
            else list(synthetic.DEFAULT_HOLDOUT_GENRES)
        unknown = sorted(set(genres) - set(synthetic.GENRES))
        if unknown:
            raise SystemExit(f"vllm-d2l eval: unknown genres {unknown}; known: {', '.join(synthetic.GENRES)}")
        records = synthetic.split(0, args.synthetic, seed=args.seed, holdout_genres=genres)[1]
        label = f"synthetic held-out genres ({','.join(genres)}), seed {args.seed}"
    elif args.realistic:
        from ..datasets import realistic

        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds \
            else list(realistic.DEFAULT_HOLDOUT_KINDS)
        try:
            records = realistic.generate(args.realistic, seed=args.seed, kinds=kinds)
        except ValueError as e:
            raise SystemExit(f"vllm-d2l eval: {e}") from None
        label = f"realistic held-out kinds ({','.join(kinds)}), seed {args.seed}"
    elif args.data is None or args.data in jsonl.HANDWRITTEN_SETS:
        label = args.data or "handwritten"
        records = jsonl.load_handwritten(label)
    else:
        records, label = jsonl.load_jsonl(args.data), str(args.data)
    records = records[:args.limit] if args.limit else records
    if getattr(args, "answer_window", None) is not None:
        from .windows import answer_windows

        asked = sum(len(r["qa"]) for r in records)
        records = answer_windows(records, args.answer_window)
        label += f", each question with only the {2 * args.answer_window + 1} sentences around its answer " \
                 f"({len(records)} of {asked} questions)"
    return records, label


def format_table(results: dict) -> str:
    rows = [f"{'condition':<10} {'accuracy':>9} {'F1':>6}"]
    for c, s in results["conditions"].items():
        rows.append(f"{c:<10} {s['accuracy']:>9.1%} {s['f1']:>6.3f}")
    gap = results.get("gap_closure") or {}
    if gap:
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        rows.append(f"gap closure: accuracy {fmt(gap['accuracy'])}, F1 {fmt(gap['f1'])}")
    own = results.get("content_gap") or {}
    if own:
        rows.append(f"own - other document's adapter: accuracy {own['accuracy']:+.1%}, F1 {own['f1']:+.3f}")
    return "\n".join(rows)


def add_record_args(p: argparse.ArgumentParser, conditions: Sequence[str]) -> None:
    """Which documents, which model and how to answer: the options `eval` and `eval --multi` share."""
    p.add_argument("--data", help="JSONL of {text, qa:[{q,a}]}, or a bundled hand-written set: handwritten "
                                 "(the default, 20 documents) or handwritten-b (24 more)")
    p.add_argument("--synthetic", type=int, metavar="N", help="instead: N synthetic documents of held-out genres")
    p.add_argument("--realistic", type=int, metavar="N", help="instead: N realistic documents of held-out kinds")
    p.add_argument("--kinds", help="for --realistic: comma-separated kinds (default: its held-out kinds)")
    p.add_argument("--seed", type=int, default=0, help="seed for --synthetic / --realistic")
    p.add_argument("--genres", help="for --synthetic: comma-separated genres, the ones the hypernetwork was "
                                    "trained without (default: the generator's default hold-out)")
    p.add_argument("--hypernet", help="hypernetwork folder (default: the shipped one)")
    p.add_argument("--model", help="base model folder (default: the default model)")
    p.add_argument("--limit", type=int, help="evaluate only the first N documents")
    p.add_argument("--answer-window", type=int, metavar="R", help="diagnostic: ask each question of only the sentence "
                   "holding its answer and R sentences either side (misses left there are not the long read's)")
    p.add_argument("--conditions", default=",".join(conditions), help="comma-separated subset of " + ",".join(conditions))
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", help="write the full results (every output) as JSON")
    p.add_argument("--no-progress", action="store_true")


def write_outputs(results: dict, out: str | None, plot: str | None, chart) -> None:
    """The `--out` JSON (every output kept) and the `--plot` PNG drawn by `chart(results, path)`."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if plot:
        chart(results, plot)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vllm-d2l eval", description=__doc__.splitlines()[0])
    add_record_args(p, CONDITIONS)
    p.add_argument("--server", metavar="URL", help="ask a running vllm-d2l server instead of the in-process model: "
                                                 "documents are uploaded, questions go through chat completions")
    p.add_argument("--api-key", help="with --server: the server's --api-key")
    p.add_argument("--plot", help="write a PNG bar chart")
    p.add_argument("--needle", action="store_true", help="run the needle test instead (see --needle --help)")
    p.add_argument("--tasks", action="store_true", help="evaluate task descriptions instead (see --tasks --help)")
    p.add_argument("--rescore", nargs="+", metavar="JSON", help="score saved results (--out files) again with the "
                                                                "current scorer, in place, and print them")
    p.add_argument("--multi", metavar="K,K", help="ask each question of K documents' composite instead "
                                                 "(see --multi 2 --help)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--needle" in argv:
        from . import needle

        return needle.main([a for a in argv if a != "--needle"])
    if "--tasks" in argv:
        from . import tasks

        return tasks.main([a for a in argv if a != "--tasks"])
    if any(a == "--multi" or a.startswith("--multi=") for a in argv):
        from . import multi

        rest = [a.split("=", 1)[1] if a.startswith("--multi=") else a for a in argv if a != "--multi"]
        return multi.main(rest)
    p = build_parser()
    args = p.parse_args(argv)
    if args.rescore:
        for path in args.rescore:
            try:
                results = rescore(json.loads(Path(path).read_text()))
            except (OSError, ValueError) as e:
                p.error(f"--rescore {path}: {e}")
            Path(path).write_text(json.dumps(results, indent=2, ensure_ascii=False))
            print(f"{path}\n{format_table(results)}")
        return 0
    records, label = _load_records(args)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    if args.server:
        if args.hypernet or args.model:
            p.error("--server evaluates what that server runs; --hypernet and --model do not apply")
        from .served import ServedClient, evaluate_served

        client = ServedClient(args.server, args.api_key)
        results = evaluate_served(client, records, conditions, args.max_new_tokens, progress=not args.no_progress)
        results = {"data": label, "model": client.base_model(), "server": args.server, **results}
    else:
        from ..generator import Generator

        generator = Generator.load(args.hypernet, args.model)
        results = evaluate(generator, records, conditions, args.max_new_tokens, args.batch_size,
                           progress=not args.no_progress)
        results = {"data": label, "model": generator.base_model_name, "hypernet": generator.fingerprint, **results}
    print(format_table(results))
    from .plots import qa_chart

    write_outputs(results, args.out, args.plot, qa_chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
