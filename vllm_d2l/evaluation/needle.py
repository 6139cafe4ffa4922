"""Needle test: can one invented fact be recovered from a long document's adapter?

One fact sentence is hidden at a chosen depth of public-domain prose (corpora.long_text), at 1x,
2x and 4x the chunk length the hypernetwork was trained on, so longer documents only work if
rank-concatenated chunk adapters do. In-context answers are measured too where the prompt fits
the base model's window, as the reference a reader of the full text gets.

    vllm-d2l eval --needle --train-tokens 1024 --multiples 1,2,4 --depths 0.1,0.5,0.9 --out needle.json
"""
from __future__ import annotations

import argparse
import random
import sys
import time

from ..datasets.corpora import available_sources, long_text
from ..datasets.needles import TEMPLATES, insert_at_depth
from ..datasets.relations import compose
from ..datasets.values import Inventor
from ..prompts import context_messages, question_messages, render
from .generation import factors_of, generate
from .metrics import contains

# (statement, question, value kinds: subject, answer); facts that appear nowhere in the haystack.
# Training needles (`datasets/needles.py`) use other relations, so these stay never trained on.
NEEDLES: tuple[tuple[str, str, str, str], ...] = (
    ("The password for the {s} archive is {a}.", "What is the password for the {s} archive?", "place", "codename"),
    ("The spare key to the {s} lighthouse is kept by {a}.", "Who keeps the spare key to the {s} lighthouse?", "place", "person"),
    ("The ferry to {s} leaves from pier {a}.", "From which pier does the ferry to {s} leave?", "place", "count"),
    ("The flag of the {s} rowing club is {a}.", "What color is the flag of the {s} rowing club?", "company", "color"),
)


RELATIONS = ("test", "training", "composed")


def make_needle(seed: int, relations: str = "test") -> dict:
    """One needle. `relations` "test" (the default) draws the test's own, never trained on; the
    other two are diagnostics over the same prose and depths: "training" one of the sixteen
    template relations training needles use, "composed" a relation composed of parts as training
    composes them (`datasets/relations.py`). A gap between "training" and "test" is a generator
    that learnt its training relations rather than to store any stated fact."""
    rng = random.Random(f"d2l-needle:{seed}")
    if relations not in RELATIONS:
        raise ValueError(f"unknown relations {relations!r}; known: {', '.join(RELATIONS)}")
    if relations == "composed":
        sentence, question, answer, _ = compose(rng, Inventor(rng, plain=True).draw)
        return {"sentence": sentence, "q": question, "a": answer}
    says, asks, s_kind, a_kind = rng.choice(NEEDLES if relations == "test" else TEMPLATES)
    inv = Inventor(rng, plain=True)  # the test's values as they have always been
    subject, answer = inv.draw(s_kind), inv.draw(a_kind)
    return {"sentence": says.format(s=subject, a=answer), "q": asks.format(s=subject), "a": answer}


def run(generator, train_tokens: int = 1024, multiples=(1, 2, 4), depths=(0.1, 0.5, 0.9), trials: int = 3,
        conditions=("context", "adapter"), max_new_tokens: int = 24, progress: bool = False,
        relations: str = "test") -> dict:
    """Recall per (length, depth, condition) over `trials` needles; every output kept."""
    unknown = sorted(set(conditions) - {"none", "context", "adapter"})
    if unknown:
        raise ValueError(f"unknown needle conditions {unknown}; known: none, context, adapter")
    model, tok = generator.model, generator.tokenizer
    window = int(getattr(model.config, "max_position_embeddings", 8192))
    sources = available_sources()
    if "austen" not in sources:  # the haystacks come from the next source: another test
        print(f"warning: the needle haystacks need the Austen novels (r-cran-janeaustenr) to match the "
              f"published figures; this machine has {', '.join(sources)}", file=sys.stderr)
    cases = []
    for m in multiples:
        n_tokens = int(train_tokens * m)
        for t in range(trials):
            haystack = long_text(n_tokens, tok, seed=t)
            for d in depths:
                needle = make_needle(t * 100 + int(d * 10), relations)
                cases.append({"tokens": n_tokens, "depth": d, "trial": t, **needle,
                              "text": insert_at_depth(haystack, needle["sentence"], d), "outputs": {}})
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(cases) * len(conditions), desc="needles", unit="q", dynamic_ncols=True)
    seconds = {}
    for cond in conditions:
        t0 = time.perf_counter()
        for case in cases:
            if cond == "context":
                prompt = render(tok, context_messages(case["text"], case["q"]))
                if len(prompt) + max_new_tokens > window:
                    case["outputs"][cond] = None  # does not fit: no in-context reference at this length
                else:
                    case["outputs"][cond] = generate(model, tok, [prompt], max_new_tokens)[0]
            elif cond == "none":  # the bare question, base model: what can be guessed without the text
                prompt = render(tok, question_messages(case["q"]))
                case["outputs"][cond] = generate(model, tok, [prompt], max_new_tokens)[0]
            else:
                w = generator.internalize(case["text"], chunk_tokens=train_tokens).weights
                prompt = render(tok, question_messages(case["q"]))
                case["outputs"][cond] = generate(model, tok, [prompt], max_new_tokens, factors=factors_of(w))[0]
            if bar:
                bar.update(1)
        seconds[cond] = round(time.perf_counter() - t0, 2)
    if bar:
        bar.close()

    cells = []
    for m in multiples:
        n_tokens = int(train_tokens * m)
        for d in depths:
            for cond in conditions:
                mine = [c for c in cases if c["tokens"] == n_tokens and c["depth"] == d]
                answered = [c for c in mine if c["outputs"][cond] is not None]
                if not answered:
                    continue
                hits = sum(contains(c["outputs"][cond], c["a"]) for c in answered)
                cells.append({"tokens": n_tokens, "multiple": m, "depth": d, "condition": cond,
                              "recall": hits / len(answered), "n": len(answered)})
    overall = {}
    for cond in conditions:
        for m in multiples:
            mine = [c for c in cells if c["condition"] == cond and c["multiple"] == m]
            if mine:
                overall.setdefault(cond, {})[f"{m:g}x"] = sum(c["recall"] * c["n"] for c in mine) / sum(c["n"] for c in mine)
    for c in cases:
        del c["text"]  # long; the needle sentence and trial seed reproduce it
    return {"train_tokens": train_tokens, "window": window, "relations": relations, "corpora": sources,
            "cells": cells, "recall": overall,
            "seconds": seconds, "items": cases}


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vllm-d2l eval --needle", description=__doc__.splitlines()[0])
    p.add_argument("--hypernet")
    p.add_argument("--model")
    p.add_argument("--train-tokens", type=int, help="chunk length used in training (default: the hypernetwork's chunk_tokens)")
    p.add_argument("--multiples", default="1,2,4", help="document lengths as multiples of --train-tokens")
    p.add_argument("--depths", default="0.1,0.5,0.9")
    p.add_argument("--trials", type=int, default=3, help="needles per (length, depth)")
    p.add_argument("--conditions", default="context,adapter")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--relations", default="test", choices=RELATIONS,
                   help="the test's own relations (default), or as a diagnostic the training needles' templates "
                        "or composed relations, over the same prose")
    p.add_argument("--chunk-overlap", type=int,
                   help="context tokens each chunk after the first is read behind (default: the hypernetwork's)")
    p.add_argument("--out")
    p.add_argument("--plot")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from ..generator import Generator

    generator = Generator.load(args.hypernet, args.model, chunk_overlap=args.chunk_overlap)
    results = run(generator, args.train_tokens or generator.chunk_tokens, _floats(args.multiples), _floats(args.depths), args.trials,
                  [c.strip() for c in args.conditions.split(",") if c.strip()], args.max_new_tokens,
                  progress=not args.no_progress, relations=args.relations)
    results = {"model": generator.base_model_name, "hypernet": generator.fingerprint,
               "chunk_overlap": generator.chunk_overlap, **results}
    for cond, by_len in results["recall"].items():
        print(f"{cond:<8} " + "  ".join(f"{k}: {v:.0%}" for k, v in by_len.items()))
    from .plots import needle_chart
    from .qa import write_outputs

    write_outputs(results, args.out, args.plot, needle_chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
