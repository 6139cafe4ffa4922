"""Answer scoring: normalised containment (the headline number) and token F1.

Containment is lenient on purpose: a weak chat model wraps short answers in sentences ("The memo
was written by Dagny Forsvik."), and we want to know whether it *knows* the fact, not whether it
is terse. F1 is reported next to it because containment alone rewards rambling.
"""
from __future__ import annotations

import random
import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "‘’“”–—€£")
# "Shakespeare's play" names Shakespeare; with the apostrophe merely dropped it would read
# "shakespeares" and miss the answer on word boundaries, so the possessive ending goes first.
_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b")
# "£340" and "340 pounds" state one amount; so do "1.5 litres" and "1.5 liters". Both sides of a
# comparison go through the same forms, so no condition gains over another.
_CURRENCY = re.compile(r"([£€$])\s?(\d[\d,.]*)")
_WHOLE = re.compile(r"(?<![\d.])(\d+)\.00?(?![\d.]?\d)")  # "6.00" is the amount 6 ("3.000" may be 3000)
_SYMBOL_WORD = {"£": "pounds", "€": "euros", "$": "dollars"}
_SPELLING = {"pound": "pounds", "euro": "euros", "dollar": "dollars", "litre": "liter", "litres": "liters",
             "metre": "meter", "metres": "meters", "kilometre": "kilometer", "kilometres": "kilometers",
             "centimetre": "centimeter", "centimetres": "centimeters", "millilitre": "milliliter",
             "millilitres": "milliliters", "colour": "color", "colours": "colors", "grey": "gray",
             "centre": "center"}


def normalize(text: str) -> str:
    """Lowercase, currency symbols as words after the amount, whole amounts without their zero
    decimals ("£6.00" == "6 pounds"), one spelling of units and colours, drop possessive endings,
    punctuation (so "3,450" == "3450") and articles, collapse whitespace."""
    text = _WHOLE.sub(r"\1", text)
    text = _CURRENCY.sub(lambda m: f"{m.group(2).rstrip('.,')} {_SYMBOL_WORD[m.group(1)]}", text.lower())
    text = _ARTICLES.sub(" ", _POSSESSIVE.sub("", text).translate(_PUNCT))
    return " ".join(_SPELLING.get(w, w) for w in text.split())


def contains(output: str, answer: str) -> bool:
    """The normalised answer occurs in the normalised output on word boundaries ("7" not in "170")."""
    a = normalize(answer)
    return bool(a) and f" {a} " in f" {normalize(output)} "


def token_f1(output: str, answer: str) -> float:
    pred, gold = normalize(output).split(), normalize(answer).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def gap_closure(adapter: float, context: float, none: float) -> float | None:
    """(adapter - none) / (context - none): 1.0 means the adapter matches the document in context.

    Undefined (None) when the document in context does not help at all; then there is no gap.
    """
    gap = context - none
    if gap <= 1e-9:
        return None
    return (adapter - none) / gap


def cluster_interval(groups: list[list[float]], level: float = 0.95, draws: int = 2000,
                     seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval for the mean over every score in `groups`, resampling whole
    groups. Replies to one description share its adapter, so they pass or fail together more often
    than independent replies would: a binomial interval over replies would be too narrow, and two
    checkpoints a few replies apart would look different when they are not."""
    groups = [g for g in groups if g]
    if not groups:
        raise ValueError("no scores to resample")
    rng = random.Random(seed)
    means = []
    for _ in range(draws):
        pick = [groups[rng.randrange(len(groups))] for _ in groups]
        means.append(sum(map(sum, pick)) / sum(map(len, pick)))
    means.sort()
    tail = (1 - level) / 2
    return means[int(tail * (draws - 1))], means[int(round((1 - tail) * (draws - 1)))]
