"""Needle records for training: a few invented facts hidden in real prose, and questions about them.

Why: in the other sources nearly every sentence is a fact that some question asks about, so a
memory that weighs all tokens alike is hardly punished. Here the facts are one to three sentences
among 80-1,000 tokens of a novel, a constitution or a manual, and only they are asked about: the
generator must write the few tokens that matter more strongly than the prose around them, which
style cannot do (another document's adapter knows nothing of them).

The prose comes from the corpora's training split (`cloze.py`), the values from `values.Inventor`
(open vocabulary if asked), and the statements from the sixteen templates below or, at the
`composed` rate, from relations composed of parts (`relations.py`: thousands, so that no relation
is worth learning by heart). Neither shares a relation with the needle test's
(`evaluation/needle.py`), so that test stays one of facts never trained on.

    python -m vllm_d2l.datasets.needles --n 3
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from functools import lru_cache
from typing import Callable, Sequence

from . import cloze
from .relations import compose
from .values import ANSWER_TYPES, Inventor, OpenValues

# (statement, question, subject kind, answer kind); subject and answer are drawn fresh per record
TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    ("The gate code for the {s} depot is {a}.", "What is the gate code for the {s} depot?", "place", "code"),
    ("The night porter at the {s} hotel is {a}.", "Who is the night porter at the {s} hotel?", "place", "person"),
    ("The {s} choir rehearses on {a}.", "On which day does the {s} choir rehearse?", "place", "weekday"),
    ("The bell of the {s} chapel was cast in {a}.", "In which year was the bell of the {s} chapel cast?", "place", "year"),
    ("{s} keeps the spare tickets in a {a}.", "Where does {s} keep the spare tickets?", "person", "object"),
    ("The boat of the {s} club is painted {a}.", "What colour is the boat of the {s} club painted?", "place", "color"),
    ("The recipe {s} inherited calls for {a}.", "What does the recipe {s} inherited call for?", "person", "ingredient"),
    ("The mill at {s} was sold for {a}.", "For how much was the mill at {s} sold?", "place", "money"),
    ("The {s} bus leaves the square at {a}.", "When does the {s} bus leave the square?", "place", "time"),
    ("{s} named the old horse {a}.", "What did {s} name the old horse?", "person", "first"),
    ("The well behind the {s} farm is {a} deep.", "How deep is the well behind the {s} farm?", "place", "distance"),
    ("The orchard at {s} has {a} pear trees.", "How many pear trees does the orchard at {s} have?", "place", "count"),
    ("The letters for {s} are left with {a}.", "With whom are the letters for {s} left?", "person", "person"),
    ("The {s} fair is held every year on {a}.", "On what date is the {s} fair held every year?", "place", "date"),
    ("The ledger of {s} is stored in room {a}.", "In which room is the ledger of {s} stored?", "company", "room"),
    ("At {s} the first frost came on {a}.", "When did the first frost come at {s}?", "place", "date"),
)
# Relations held out of training and of the needle test alike (tested): the training hold-out's
# `unseen` probe (`TrainConfig.heldout_unseen`) hides them in held-out prose, so that the choice of
# a snapshot sees how well facts of relations never trained on are stored. The hold-out had only
# the training relations, which every snapshot of the plateau stores almost perfectly (the long
# documents' probe: 0.02-0.03 nats), while recall of the needle test's relations swung between
# snapshots (step 16200: 100 / 90 / 87 % at 1x / 2x / 4x; 16600, better by the hold-out: 83 / 80 / 73 %).
VALIDATION: tuple[tuple[str, str, str, str], ...] = (
    ("The quarry at {s} blasts only on {a}.", "On which day does the quarry at {s} blast?", "place", "weekday"),
    ("The ship's cat aboard the {s} is called {a}.", "What is the ship's cat aboard the {s} called?", "company", "first"),
    ("The {s} signal box is staffed by {a}.", "Who staffs the {s} signal box?", "place", "person"),
    ("The vineyard at {s} was planted in {a}.", "In which year was the vineyard at {s} planted?", "place", "year"),
    ("The {s} curling league awards its trophy in {a}.", "When does the {s} curling league award its trophy?", "place", "month"),
    ("The tunnel under {s} runs for {a}.", "How far does the tunnel under {s} run?", "place", "distance"),
    ("The awning of the {s} ice rink is {a}.", "What colour is the awning of the {s} ice rink?", "place", "color"),
    ("The kiln at {s} fires {a} pots a week.", "How many pots a week does the kiln at {s} fire?", "place", "count"),
    ("The strongbox at the {s} tollhouse opens with {a}.", "What opens the strongbox at the {s} tollhouse?", "place", "code"),
    ("The {s} beekeepers sell their honey for {a} a jar.", "For how much do the {s} beekeepers sell a jar of honey?", "place", "money"),
)
# up to four training chunks of prose: with 600 at most, a fact among 1,024 tokens (the needle
# test's 4x) was recalled a third of the time against 78 % among 256
MIN_TOKENS, MAX_TOKENS = 80, 1000


def insert_at_depth(haystack: str, sentence: str, depth: float) -> str:
    """Put `sentence` at the sentence boundary nearest to `depth` (0 = start, 1 = end) of the text."""
    target = int(len(haystack) * depth)
    cuts = [i + 1 for i, ch in enumerate(haystack) if ch in ".!?\n" and (i + 1 == len(haystack) or haystack[i + 1].isspace())]
    cut = min([0, *cuts, len(haystack)], key=lambda c: abs(c - target))
    return f"{haystack[:cut].rstrip()} {sentence} {haystack[cut:].lstrip()}".strip()


class NeedleMaker:
    """`split` "heldout" takes the prose from the corpora's held-out units (a training hold-out of
    long documents); the token range bounds the prose before the facts go in; `composed` is the
    share of facts from composed relations (0: the templates only, as every record drew before
    composed relations existed); `everyday`: composed facts draw the ordinary-word attributes too;
    `templates`: the relations drawn otherwise (the hold-out's `unseen` probe passes `VALIDATION`)."""

    def __init__(self, tokenizer=None, sources: Sequence[str] | None = None, open_values: OpenValues | None = None,
                 split: str = "train", min_tokens: int = MIN_TOKENS, max_tokens: int = MAX_TOKENS,
                 label: str = "needle", composed: float = 0.0, everyday: bool = False,
                 templates: Sequence[tuple[str, str, str, str]] = TEMPLATES):
        self.prose = cloze.ClozeMaker(sources, tokenizer, split, min_tokens, max_tokens)
        self.templates = tuple(templates)
        self.open_values = open_values
        self.label = label
        self.composed = composed
        self.everyday = everyday

    def record(self, seed: int, index: int) -> dict:
        """Record `index` of run `seed`: `{"id", "genre": "<label>:<source>", "text", "qa"}`."""
        rng = random.Random(f"d2l-needles:{seed}:{index}")
        for _ in range(40):
            unit = self.prose._unit(rng)
            groups = self.prose._passage(rng, unit)
            if groups:
                break
        else:
            raise RuntimeError(f"no usable passage for seed {seed}, index {index}")
        text = "\n\n".join(" ".join(g) for g in groups)
        inv = Inventor(rng, open_values=self.open_values)
        qa = []
        for says, asks, s_kind, a_kind in rng.sample(self.templates, rng.choice((1, 1, 2, 3))):
            if self.composed > 0 and rng.random() < self.composed:
                sentence, question, answer, a_kind = compose(rng, inv.draw, self.everyday)
            else:
                subject, answer = inv.draw(s_kind), inv.draw(a_kind)
                sentence, question = says.format(s=subject, a=answer), asks.format(s=subject)
            text = insert_at_depth(text, sentence, rng.random())
            qa.append({"q": question, "a": answer, "type": ANSWER_TYPES[a_kind]})
        return {"id": f"{self.label}-{seed}-{index:06d}", "genre": f"{self.label}:{unit.source}", "text": text, "qa": qa}


@lru_cache(maxsize=4)
def _maker(tokenizer=None, open_values: OpenValues | None = None, composed: float = 0.0,
           everyday: bool = False) -> NeedleMaker:
    return NeedleMaker(tokenizer, open_values=open_values, composed=composed, everyday=everyday)


def make_stream(seed: int, tokenizer=None, open_values: OpenValues | None = None,
                composed: float = 0.0, everyday: bool = False) -> Callable[[int], dict]:
    """`index -> record` for a trainer that draws a fresh record every step."""
    maker = _maker(tokenizer, open_values, composed, everyday)
    return lambda index: maker.record(seed, index)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.datasets.needles", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--composed", type=float, default=0.75, help="share of facts from composed relations")
    args = p.parse_args(argv)
    maker = NeedleMaker(composed=args.composed)
    for i in range(args.n):
        print(json.dumps(maker.record(args.seed, i), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
