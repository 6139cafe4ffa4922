"""`vllm-d2l eval --multi 2,4`: questions asked of several documents at once, through one composite.

A user with a handful of uploaded documents asks with `"model": "doc-A+doc-B"` and does not say
which document holds the answer. This test does the same in-process: documents are taken in
groups of K (consecutive records), every question of a group is asked of the group's composite
as the server builds it for the `+` name, and the score is set beside:

- single:    the question's own document's adapter alone (what composition should keep),
- composite: the group's composite as the server builds it for `doc-A+doc-B` (`composite_of`:
             for a generator that keeps each document's memory, one adapter of the memories folded
             together; otherwise `compose.compose` of the adapters); K = 1 is the single adapter,
- summed:    the sum of the K adapters' updates (`compose.compose`), what the adapters alone give,
- context:   all K documents pasted before the question (what users do today),
- other:     the composite of another group of K documents (answer style, no content),
- none:      the bare question.

Composite - other is the content the composite still carries; composite / single is how much of
one adapter survives sharing the update with K - 1 others (the always-on block is counted once, so
only the document parts add up).

    vllm-d2l eval --multi 1,2,4 --out multi.json --plot multi.png
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from ..compose import compose
from ..lora import LoRAWeights
from ..prompts import context_messages, question_messages, render
from .generation import factors_of, generate
from .qa import _bar, _load_records, _summary, add_record_args, score, write_outputs

CONDITIONS = ("none", "single", "context", "composite", "summed", "other")
JOIN = "\n\n---\n\n"  # between pasted documents in the context condition


def composite_of(generator, parts: list) -> LoRAWeights:
    """What the server serves for several documents (`Internalized` results of `generator`): one
    adapter of their memories folded together where the generator keeps memories, else the sum of
    their adapters' updates."""
    if len(parts) == 1:
        return parts[0].weights
    if all(p.memory is not None for p in parts):
        return generator.pool([p.memory for p in parts], {"tokens": sum(p.tokens for p in parts),
                                                           "chunks": sum(p.chunks for p in parts)})
    return compose([p.weights for p in parts])


def groups_of(n_docs: int, size: int) -> list[list[int]]:
    """Consecutive groups of `size` document indices; a short remainder is left out."""
    if size < 1:
        raise ValueError(f"group size must be >= 1, got {size}")
    return [list(range(g, g + size)) for g in range(0, n_docs - size + 1, size)]


def evaluate_multi(generator, records: list[dict], sizes: Sequence[int] = (1, 2, 4),
                   conditions: Sequence[str] = CONDITIONS, max_new_tokens: int = 24, batch_size: int = 8,
                   progress: bool = False) -> dict:
    """Every question under each condition for each group size; scores per size and every output.

    "none" and "single" do not depend on the group, so they are answered once and shown under
    every size."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown conditions {unknown}; known: {', '.join(CONDITIONS)}")
    sizes = sorted(set(int(k) for k in sizes))
    plans = {k: groups_of(len(records), k) for k in sizes}
    for k, groups in plans.items():
        if not groups or ("other" in conditions and len(groups) < 2):
            raise ValueError(f"{len(records)} documents make {len(groups)} group(s) of {k}; "
                             f"the conditions asked need {'two' if 'other' in conditions else 'one'}")
    model, tok = generator.model, generator.tokenizer
    questions = [(n, qa) for n, r in enumerate(records) for qa in r["qa"]]
    t0 = time.perf_counter()
    results = generator.internalize_many([r["text"] for r in records])
    adapters = [r.weights for r in results]
    seconds = {"internalize": time.perf_counter() - t0}

    def composite(members: list[int]):
        return composite_of(generator, [results[i] for i in members])

    shared = [c for c in ("none", "single") if c in conditions]
    grouped = [c for c in ("context", "composite", "summed", "other") if c in conditions]
    total = len(questions) * (len(shared) + len(grouped) * len(sizes))
    bar = _bar(total, "answering", progress)
    tick = bar.update if bar else None

    def ask(qs: list[tuple[int, dict]], messages, adapter: LoRAWeights | None) -> list[str]:
        """Answers to `qs` (prompted by `messages(n, qa)`), with `adapter` applied or none."""
        prompts = [render(tok, messages(n, qa)) for n, qa in qs]
        factors = factors_of(adapter) if adapter is not None else None
        return generate(model, tok, prompts, max_new_tokens, batch_size, factors=factors, on_batch=tick)

    bare = lambda n, qa: question_messages(qa["q"])  # noqa: E731
    answers: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    if "none" in shared:
        answers["none"] = ask(questions, bare, None)
    if "single" in shared:
        answers["single"] = [a for n in range(len(records))
                             for a in ask([q for q in questions if q[0] == n], bare, adapters[n])]
    seconds["shared"] = time.perf_counter() - t0

    by_size = {}
    for k, groups in plans.items():
        t0 = time.perf_counter()
        kept = [q for q in questions if q[0] < len(groups) * k]  # the remainder's questions sit out
        outs: dict[str, list[str]] = {c: [] for c in grouped}
        for g, members in enumerate(groups):
            mine = [q for q in kept if q[0] in members]
            pasted = JOIN.join(records[i]["text"] for i in members)
            if "context" in outs:
                outs["context"] += ask(mine, lambda n, qa: context_messages(pasted, qa["q"]), None)
            if "composite" in outs:
                outs["composite"] += ask(mine, bare, composite(members))
            if "summed" in outs:
                outs["summed"] += ask(mine, bare, compose([adapters[i] for i in members]))
            if "other" in outs:
                outs["other"] += ask(mine, bare, composite(groups[(g + len(groups) // 2) % len(groups)]))
        items = []
        for j, (n, qa) in enumerate(kept):  # `kept` is a prefix of `questions`, both in document order
            outputs = {c: answers[c][j] for c in shared}
            outputs.update({c: outs[c][j] for c in grouped})
            item = {"id": records[n].get("id", str(n)), "group": n // k, "q": qa["q"], "a": qa["a"],
                    "outputs": outputs, "correct": {}, "f1": {}}
            for c in outputs:
                score(item, c)
            items.append(item)
        summary = _summary(items, conditions)
        by_size[str(k)] = {"groups": len(groups), "n_questions": len(items), "conditions": summary,
                           "kept": _ratio(summary, "composite", "single"),
                           "content_gap": _diff(summary, "composite", "other"),
                           "seconds": round(time.perf_counter() - t0, 2), "items": items}
    if bar:
        bar.close()
    return {"n_docs": len(records), "sizes": sizes, "by_size": by_size,
            "settings": {"max_new_tokens": max_new_tokens, "greedy": True, "scoring": "normalised answer contained",
                         "groups": "consecutive records", "context_join": JOIN},
            "seconds": {k: round(v, 2) for k, v in seconds.items()}}


def _ratio(summary: dict, num: str, den: str) -> float | None:
    if num not in summary or den not in summary or not summary[den]["accuracy"]:
        return None
    return summary[num]["accuracy"] / summary[den]["accuracy"]


def _diff(summary: dict, a: str, b: str) -> float | None:
    if a not in summary or b not in summary:
        return None
    return summary[a]["accuracy"] - summary[b]["accuracy"]


def format_table(results: dict) -> str:
    conds = [c for c in CONDITIONS if c in next(iter(results["by_size"].values()))["conditions"]]
    rows = [f"{'K':>3} {'questions':>9} " + " ".join(f"{c:>9}" for c in conds) + f" {'kept':>6}"]
    for k, s in results["by_size"].items():
        kept = "n/a" if s["kept"] is None else f"{s['kept']:.2f}"
        rows.append(f"{k:>3} {s['n_questions']:>9} " + " ".join(f"{s['conditions'][c]['accuracy']:>9.1%}" for c in conds)
                    + f" {kept:>6}")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vllm-d2l eval --multi", description=__doc__.splitlines()[0])
    p.add_argument("sizes", help="comma-separated group sizes, e.g. 1,2,4")
    add_record_args(p, CONDITIONS)
    p.add_argument("--plot", help="write a PNG chart: accuracy against the number of documents")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--multi takes comma-separated whole numbers, got {args.sizes!r}")
    if not sizes or min(sizes) < 1:
        p.error(f"--multi group sizes must be >= 1, got {args.sizes!r}")
    records, label = _load_records(args)
    from ..generator import Generator

    generator = Generator.load(args.hypernet, args.model)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    try:
        results = evaluate_multi(generator, records, sizes, conditions, args.max_new_tokens, args.batch_size,
                                 progress=not args.no_progress)
    except ValueError as e:
        p.error(str(e))
    results = {"data": label, "model": generator.base_model_name, "hypernet": generator.fingerprint, **results}
    print(format_table(results))
    from .plots import multi_chart

    write_outputs(results, args.out, args.plot, multi_chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
