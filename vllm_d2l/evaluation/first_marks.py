"""Does a task adapter open its reply with the mark its description shows?

Greedy replies say whether a list came out labelled; this says how close it was. For each
description it reads, with the description's adapter and no description in the prompt, the
probability that the reply opens with the mark's first token, and the probability of the mark's
second token once the first is given (teacher-forced), averaged over a few prompts. A mark written
in every trained style but never copied (" x)" in "x), y), z)": every 10400 adapter opened with
"a") shows here long before it changes a greedy reply.

    python -m vllm_d2l.evaluation.first_marks DIR [--variant-weights 0] [--out marks.json]

`--variant-weights W` sets the copy path's spelling-variant weights (`pointer_variants`) to W, to
tell what they carry from what the rest of the adapter does. `copy_first` is the logit the copy
path (the adapter's LM-head update) adds to the mark's first token at the reply's start, averaged
over the prompts: whether a mark comes out because it was copied or because the layers' rows write
it (at 10560 the line prefix "♠" got +1.8 from the copy, the "g" of "g), r), c), n)" +0.001).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..apply import lora_applied
from ..prompts import render
from ..lora import HEAD
from .generation import factors_of
from .tasks import task_messages

# (description, the mark a reply must open with): trained styles, styles no training draws (a
# list from "x", "X." and digits), a sequence of marks, a sign-off's first word for comparison,
# and line prefixes
CASES = (
    ("Mark the lines of your list x), y), z).", "x)"),
    ("Mark the lines of your list X., Y., Z.", "X."),
    ("Break every answer into steps: 1., 2., 3.", "1."),
    ("Label your points (I), (II), (III) and so on, one per line.", "(I)"),
    ("Label your points §α, §β, §γ and so on, one per line.", "§α"),
    ("Label your points <α>, <β>, <γ> and so on, one per line.", "<α>"),
    ("Mark the lines of your list [A], [B], [C].", "[A]"),
    ("Give a list labelled i:, ii:, iii:, one item per line.", "i:"),
    ("Answer as a list whose items are marked #a, #b, #c.", "#a"),
    ("Label your points d), e), f) and so on, one per line.", "d)"),
    ("Give a list labelled [q], [r], [s], one item per line.", "[q]"),
    ("Mark the lines of your list g), r), c), n).", "g)"),
    ('Finish with "Talk soon." every time.', "Talk soon."),
    # line prefixes: one an open prefix may draw ("⇝"), one of the evaluation pool, and three no
    # draw has (a suit, a letter's label, a digit's)
    ('Start every line of your reply with "⇝".', "⇝"),
    ('Start every line of your reply with ">>".', ">>"),
    ('Start every line of your reply with "♠".', "♠"),
    ('Begin each line you write with "Q:".', "Q:"),
    ('Start every line of your reply with "1."', "1."),
)
PROMPTS = ("Explain sleep in simple terms.", "Why does photosynthesis matter?",
           "Give me a short overview of bicycles.", "What should I know about inflation?")


def _start_logits(model, factors, contexts: list[list[int]]) -> torch.Tensor:
    """[P, 2, V] logits under `factors`: at each reply's start and after the mark's first token."""
    with lora_applied(model, factors):
        return torch.stack([model(torch.tensor([ids])).logits[0, -2:].float() for ids in contexts])


@torch.no_grad()
def first_marks(generator, cases=CASES, prompts=PROMPTS) -> list[dict]:
    """Per case: the mark's first two tokens, P(first) at the reply's start and P(second | first),
    each averaged over `prompts`, the copy path's share of the first token's logit, and the first
    tokens the adapter prefers instead."""
    model, tok = generator.model, generator.tokenizer
    starts = [render(tok, task_messages("none", "", prompt)) for prompt in prompts]
    rows = []
    for description, mark in cases:
        first, second = (tok(mark, add_special_tokens=False).input_ids + [None])[:2]  # one-token mark: no second
        weights = generator.internalize(description).weights
        contexts = [ids + [first] for ids in starts]
        logits = _start_logits(model, factors_of(weights), contexts)  # [P, 2, V]
        probs = logits.softmax(-1)
        copy = None
        if HEAD in weights.b:  # the same adapter without its LM-head update
            copy = (logits[:, 0, first] - _start_logits(model, factors_of(weights, head=0.0), contexts)[:, 0, first])
        rows.append({"description": description, "mark": mark,
                     "tokens": tok.convert_ids_to_tokens([t for t in (first, second) if t is not None]),
                     "p_first": round(float(probs[:, 0, first].mean()), 4),
                     "p_second": round(float(probs[:, 1, second].mean()), 4) if second is not None else None,
                     "copy_first": round(float(copy.mean()), 3) if copy is not None else None,
                     "preferred": [tok.decode([int(i)]) for i in probs[:, 0].argmax(-1)]})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.evaluation.first_marks", description=__doc__.splitlines()[0])
    p.add_argument("hypernet", help="a task hypernetwork folder (config.json and model.safetensors)")
    p.add_argument("--model", help="base model folder (default: the packaged default model)")
    p.add_argument("--variant-weights", type=float, help="set the copy path's spelling-variant weights to this")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from ..base_model import ensure_default_model
    from ..generator import Generator

    gen = Generator.load(args.hypernet, args.model or ensure_default_model())
    net = gen.hypernet
    if args.variant_weights is not None:
        if not getattr(net.config, "pointer_variants", False):
            raise SystemExit(f"{args.hypernet} has no spelling variants on its copy path (pointer_variants)")
        with torch.no_grad():
            net.pointer_variant_gain.fill_(args.variant_weights)
    rows = first_marks(gen)
    for r in rows:
        print(f"{r['description'][:60]:62} {' '.join(r['tokens']):12} P(first) {r['p_first']:.3f}  "
              f"P(second | first) {r['p_second'] if r['p_second'] is None else round(r['p_second'], 3)}  "
              f"copy {r['copy_first']}  preferred {r['preferred']}")
    result = {"hypernet": str(args.hypernet), "variant_weights": net.pointer_variant_gain.tolist()
              if getattr(net.config, "pointer_variants", False) else None, "cases": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
