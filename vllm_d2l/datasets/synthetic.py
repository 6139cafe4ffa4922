"""Synthetic fictional fact documents with questions, for meta-training and held-out evaluation.

Every fact is invented (names, places and codes are glued from syllables), so the base model can
only answer from the document: without it, accuracy is ~0, which is what makes the gap between
"no context" and "in context" measurable. Variety is deliberate: 17 genres, several phrasings per
statement and per question, eight answer types, lengths from ~40 to several hundred words with
distractor sentences, so the hypernetwork has to learn to internalize rather than to parse.

Each record is generated from its own random stream (seed, index), so the first k records of a
larger run equal a run of k, and a genre hold-out never changes which documents the others get
beyond their genre draw.

    python -m vllm_d2l.datasets.synthetic --n 1000 --seed 0 --out train.jsonl --holdout default
    python -m vllm_d2l.datasets.synthetic --n 50 --seed 1 --out heldout.jsonl --genres faq,biography
"""
from __future__ import annotations

import argparse
import random
import re
import sys
from typing import Iterable, Sequence

from .jsonl import choose_names, generate_to, name_list
from .genres import BY_NAME, DEFAULT_HOLDOUT, GENRE_NAMES, Genre
from .values import ANSWER_TYPES, Inventor, OpenValues, system_code_words

GENRES: tuple[str, ...] = GENRE_NAMES  # every genre name, in a stable order
DEFAULT_HOLDOUT_GENRES: tuple[str, ...] = DEFAULT_HOLDOUT  # kept out of training by default

# placeholder names that are not value kinds themselves
_ALIASES = {"org": "company", "town": "place"}

# Off-topic sentences that pad long documents and plant distractor entities; none of them states
# anything a genre question asks about.
GENERIC_FILLERS: tuple[str, ...] = (
    "The weather has been unusually windy this season.",
    "{person9} mentioned that the hallway lights flicker in the evening.",
    "A delivery from {org9} arrived a day late.",
    "Some people prefer to walk along the canal in {town9} on weekends.",
    "The old clock tower in {town8} was repainted last spring.",
    "Nobody could remember where the spare keys had been put.",
    "{person8} is collecting recipes for a small neighborhood cookbook.",
    "The printer ran out of paper twice this week.",
    "A street market sets up near the station every few weeks.",
    "{first9} says the bakery on the corner now opens earlier.",
    "Road works on the main road may cause short delays.",
    "The local choir is looking for new tenors.",
    "A lost glove was handed in at reception.",
    "Tickets for the summer concert sold out quickly.",
    "The bus timetable changes again next season.",
    "{person7} from {org8} is visiting the region for a conference.",
    "Several trees along the avenue were planted by volunteers.",
    "The library in {town7} is closed for renovation.",
    "Someone suggested adding more benches to the park.",
    "The tea in the staff kitchen is, once again, running low.",
    "Last year the same week was much quieter, according to those who remember it well.",
    "There was some debate about whether the new signs are easier to read than the old ones.",
    "{person6} brought a tray of biscuits, which disappeared before anyone else arrived.",
    "The corridor on the ground floor is being repainted, so please use the side entrance for now.",
    "A group of students from {town6} asked whether they could visit later in the year.",
    "It is worth remembering that the river path floods after heavy rain, so take the upper road.",
    "Most people agreed that the autumn fair in {town5} was better organized than the one before.",
    "The noise from the building site next door should stop by the end of the month.",
    "{first8} has offered to water the plants while the others are away.",
    "A few of the older photographs were sent to {org7} to be restored and framed.",
    "The heating in the west wing takes a long time to warm up on cold mornings.",
    "Some of the paperwork from the previous year is still stored in boxes in the basement.",
    "One visitor said the view from the hill above {town4} is the best in the whole region.",
    "Plans to widen the car park have been postponed again because of the cost.",
    "{person5} wrote a long and cheerful note about the garden party, which was pinned to the board.",
    "The shop across the road has started selling fresh flowers on weekday mornings.",
    "Everyone is reminded that the last train back tends to be crowded on Fridays.",
    "Volunteers from {org6} cleared the footpath and put up a new fence along the field.",
    "A small exhibition of children's drawings is on show in the entrance hall.",
    "The photocopier now asks for a code, which can be found on the notice board.",
    "{first7} is learning to juggle and practices during every lunch break.",
    "Nobody has yet claimed the umbrella that has been standing by the door for weeks.",
    "The annual quiz night raised more money than expected for the local shelter.",
    "Several people have asked for a second water cooler near the stairs.",
    "The swallows have returned to the barn roof, as they do every spring.",
)

LENGTHS = {  # name: (probability, facts range, filler range)
    "short": (0.35, (3, 4), (4, 6)),
    "medium": (0.40, (5, 6), (6, 12)),
    "long": (0.25, (6, 8), (18, 34)),
}


class _Context(dict):
    """Placeholder values drawn on first use: `{person2}` -> a fresh person, `{org}` -> a company."""

    def __init__(self, inventor: Inventor):
        super().__init__()
        self.inventor = inventor

    def __missing__(self, key: str) -> str:
        kind = re.sub(r"\d+$", "", key)
        value = self.inventor.draw(_ALIASES.get(kind, kind))
        self[key] = value
        return value


def _render(template: str, ctx: _Context, value: str | None = None) -> str:
    class Scope(dict):
        def __missing__(self, key: str) -> str:
            return ctx[key]

    text = template.format_map(Scope(v=value) if value is not None else Scope())
    text = _ARTICLE.sub(lambda m: m.group(1) + "n " + m.group(2), text)
    return text[:1].upper() + text[1:]  # a value opening the sentence ("eight boxes ...")


# "a olive badge" -> "an olive badge" (values are drawn after the template's article is fixed)
_ARTICLE = re.compile(r"\b([Aa]) ((?:[aeio]|u(?!ni|s[aeiu]))\w*)")


def _question(rng: random.Random, genre: Genre, asks: Sequence[str]) -> str:
    q = rng.choice(asks)
    roll = rng.random()
    if roll < 0.15:
        return f"According to the {genre.noun}, {q[0].lower()}{q[1:]}"
    if roll < 0.25:
        return f"{q} Answer briefly."
    return q


def _pick_length(rng: random.Random) -> str:
    roll, acc = rng.random(), 0.0
    for name, (p, _, _) in LENGTHS.items():
        acc += p
        if roll < acc:
            return name
    return "long"


def make_document(rng: random.Random, genre: Genre, code_words: list[str] | None = None,
                  open_values: OpenValues | None = None) -> dict:
    """One document of `genre`: facts and fillers shuffled together, a question per stated fact."""
    ctx = _Context(Inventor(rng, code_words, open_values))
    length = _pick_length(rng)
    _, (fmin, fmax), (pmin, pmax) = LENGTHS[length]
    facts = rng.sample(genre.facts, min(len(genre.facts), rng.randint(fmin, fmax)))

    body: list[str] = []
    qa: list[dict] = []
    for fact in facts:
        value = ctx.inventor.draw(fact.kind)
        body.append(_render(rng.choice(fact.says), ctx, value))
        if body[-1].startswith(value[:1].upper() + value[1:]) and value[:1].islower():
            value = value[:1].upper() + value[1:]  # opened the sentence: the answer as it is written
        qa.append({"q": _question(rng, genre, fact.asks), "a": value, "type": ANSWER_TYPES[fact.kind]})

    n_fill = rng.randint(pmin, pmax)
    own = rng.sample(genre.fillers, min(len(genre.fillers), n_fill))
    generic = rng.sample(GENERIC_FILLERS, min(len(GENERIC_FILLERS), n_fill - len(own)))
    for filler in own + generic:
        body.insert(rng.randint(0, len(body)), _render(filler, ctx))

    parts = [_render(rng.choice(genre.openers), ctx)]
    if genre.lines:
        parts.append("\n".join(body))
    else:
        paragraphs, i = [], 0
        while i < len(body):
            step = rng.randint(2, 5)
            paragraphs.append(" ".join(body[i:i + step]))
            i += step
        parts.extend(paragraphs)
    if genre.closers and rng.random() < 0.7:
        parts.append(_render(rng.choice(genre.closers), ctx))
    rng.shuffle(qa)
    return {"text": "\n\n".join(parts), "qa": qa, "genre": genre.name, "length": length}


def resolve_genres(genres: Iterable[str] | None = None, holdout_genres: Iterable[str] = ()) -> list[str]:
    """Genres to draw from: `genres` (default all) minus `holdout_genres`; unknown names are errors."""
    return choose_names(GENRE_NAMES, genres, holdout_genres, "genres")


def generate(n: int, seed: int = 0, genres: Iterable[str] | None = None, holdout_genres: Iterable[str] = (),
             system_words: bool = False) -> list[dict]:
    """`n` records `{"id", "genre", "length", "text", "qa": [{"q", "a", "type"}]}`.

    `system_words` also draws project code names from /usr/share/dict/words when present (more
    variety, but then output depends on the machine; off by default).
    """
    names = resolve_genres(genres, holdout_genres)
    code_words = system_code_words() if system_words else None
    return [make_record(seed, i, names, code_words) for i in range(n)]


def make_record(seed: int, index: int, genres: Sequence[str], code_words: list[str] | None = None,
                open_values: OpenValues | None = None) -> dict:
    """Record `index` of the stream `seed` over `genres`, without generating the ones before it."""
    rng = random.Random(f"d2l-synthetic:{seed}:{index}")
    genre = BY_NAME[rng.choice(list(genres))]
    return {"id": f"syn-{seed}-{index:06d}", **make_document(rng, genre, code_words, open_values)}


def split(n_train: int, n_eval: int, seed: int = 0,
          holdout_genres: Sequence[str] = DEFAULT_HOLDOUT) -> tuple[list[dict], list[dict]]:
    """Training records from every genre but the hold-out; evaluation records only from the hold-out
    (drawn from a different seed, so no document is shared either)."""
    train = generate(n_train, seed, holdout_genres=holdout_genres)
    evaluation = generate(n_eval, seed + 1_000_003, genres=holdout_genres)
    return train, evaluation


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.datasets.synthetic", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="number of documents")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSONL file ('-' for stdout)")
    p.add_argument("--genres", help="comma-separated genres to draw from (default: all)")
    p.add_argument("--holdout", help=f"comma-separated genres to leave out, or 'default' ({','.join(DEFAULT_HOLDOUT)})")
    p.add_argument("--system-words", action="store_true", help="also use /usr/share/dict/words for code names")
    p.add_argument("--list-genres", action="store_true")
    args = p.parse_args(argv)
    if args.list_genres:
        print("\n".join(GENRE_NAMES))
        return 0
    return generate_to(p, lambda: generate(args.n, args.seed, name_list(args.genres, DEFAULT_HOLDOUT),
                                           name_list(args.holdout, DEFAULT_HOLDOUT) or (),
                                           args.system_words), args.out)


if __name__ == "__main__":
    sys.exit(main())
