"""Invented values for facts: every answer a document can be asked about comes from here.

One `Inventor` serves one document. It never hands out the same value twice, so a question about
one fact cannot be answered correctly by quoting a different sentence of the same document.
"""
from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

from . import words as W

# value kind -> answer type reported with each question (for per-type breakdowns)
ANSWER_TYPES = {
    "person": "name", "first": "name", "surname": "name", "company": "name", "team": "name",
    "codename": "name", "product": "name",
    "place": "place", "street": "place",
    "count": "number", "bignum": "number", "year": "number", "percent": "number", "temperature": "number",
    "date": "date", "weekday": "date", "month": "date",
    "time": "time", "minutes": "time",
    "money": "amount", "weight": "amount", "distance": "amount", "volume": "amount",
    "color": "color",
    "object": "object", "animal": "object", "ingredient": "object", "spice": "object", "dish": "object",
    "instrument": "object", "job": "object",
    "code": "code", "room": "code",
}

_SYSTEM_WORDS = Path("/usr/share/dict/words")


def system_code_words(path: Path = _SYSTEM_WORDS) -> list[str]:
    """Plain capitalised words from a system dictionary (Debian `wamerican`), if one is installed.

    Only used when asked for, so default output does not depend on what a machine has installed.
    """
    if not path.is_file():
        return []
    keep = []
    for line in path.read_text(errors="ignore").splitlines():
        if re.fullmatch(r"[a-z]{5,9}", line):
            keep.append(line.capitalize())
    return keep


class OpenValues:
    """Where open-vocabulary values come from, and how often.

    The word pools in `words.py` are small (190 first names, 45 objects, ...), and a generator that
    sees them for thousands of steps can learn to pick the right pool entry instead of copying
    the document: on documents written by people it then answers with a pool name close to the
    real one ("Lucia Felsenthal" for Lucinda Faraday). With `rate` > 0 that share of the pooled
    kinds is replaced by values no pool holds: coined names (two or three random syllables, so
    the tokenizer splits them in unfamiliar ways) and everyday words in unusual roles ("the cat
    is called Pudding", "a green triangle"), taken from `words` (e.g. the base model's own
    vocabulary), else coined too.
    """

    def __init__(self, rate: float, words: list[str] | None = None):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"open-value rate must be in [0, 1], got {rate}")
        self.rate = rate
        self.words = sorted(set(words or ()))


@lru_cache(maxsize=4)
def vocabulary_words(tokenizer, min_len: int = 4, max_len: int = 10) -> list[str]:
    """Whole lower-case words the tokenizer has single tokens for (a word-initial marker and
    letters only), sorted: an everyday vocabulary that ships with every model. Cached per
    tokenizer: a trainer asks for it for the stream and again for the open hold-out."""
    out = set()
    for token in tokenizer.get_vocab():
        word = tokenizer.convert_tokens_to_string([token])
        if word.startswith(" ") and re.fullmatch(r"[a-z]{%d,%d}" % (min_len, max_len), word[1:]):
            out.add(word[1:])
    return sorted(out)


_ONSETS = ("b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kl", "l", "m", "n", "p",
           "pr", "qu", "r", "s", "sh", "sk", "st", "t", "th", "tr", "v", "w", "y", "z", "", "")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ie", "ou", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "nd", "rt", "ck", "th", "sk", "ll", "nt")
_SHADES = ("light", "dark", "pale", "deep", "bright", "dusty", "soft", "faded", "warm", "cool")


def coin(rng: random.Random, syllables: int) -> str:
    """A pronounceable made-up word (lower case)."""
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))


def near_miss(rng: random.Random, name: str) -> str:
    """`name` with one letter after the first changed, added or dropped ("Tobias" -> "Tobiah",
    "Lucia" -> "Lucina"): a name the model's prior pulls toward a real one, so only an exact copy
    of the document's spelling scores. Copies of hand-written names were this kind of wrong."""
    vowels, consonants = "aeiou", "bcdfghklmnprstvwz"
    for _ in range(20):
        i = rng.randrange(1, len(name)) if len(name) > 1 else 1
        op = rng.choice(("replace", "insert", "drop")) if len(name) > 3 else "insert"
        if op == "insert" or i == len(name):
            out = name[:i] + rng.choice(vowels + consonants) + name[i:]
        elif op == "replace":  # a vowel for a vowel, a consonant for a consonant
            out = name[:i] + rng.choice(vowels if name[i].lower() in vowels else consonants) + name[i + 1:]
        else:
            out = name[:i] + name[i + 1:]
        if out.lower() != name.lower():
            return out
    return name + rng.choice(vowels)


class Inventor:
    """Draws unique fictional values from a seeded random generator."""

    def __init__(self, rng: random.Random, code_words: list[str] | None = None, open_values: OpenValues | None = None,
                 plain: bool = False):
        self.rng = rng
        # plain: numbers and sums in figures only, drawn as before written-out forms were added, so a
        # fixed test (the needle test) keeps the very values it always had
        self.plain = plain
        self.code_words = code_words or W.CODE_WORDS
        self.used: set[str] = set()
        self.open = open_values if open_values and open_values.rate > 0 else None
        # its own stream, so that a closed inventor draws exactly what it always drew
        self.open_rng = random.Random(rng.random()) if self.open else None

    def draw(self, kind: str) -> str:
        """A value of `kind` not yet used in this document."""
        make = getattr(self, f"_{kind}", None)
        if make is None:
            raise KeyError(f"unknown value kind {kind!r}")
        for _ in range(100):
            value = make()
            if value not in self.used and not any(value in u or u in value for u in self.used):
                self.used.add(value)
                return value
        raise RuntimeError(f"ran out of distinct values of kind {kind!r}")

    # -- open vocabulary (see `OpenValues`): pooled kinds (and so persons, companies, streets, teams
    # built from them) draw from here at the open rate
    def _opened(self) -> bool:
        return self.open is not None and self.open_rng.random() < self.open.rate

    def _open_word(self) -> str:
        r = self.open_rng
        return r.choice(self.open.words) if self.open.words and r.random() < 0.7 else coin(r, r.randint(1, 2))

    def _open_name(self, real: Callable[[random.Random], str] | None = None) -> str:
        """A coined name, an everyday word as a name, or (given `real`, a pool's draw) a near miss
        of a real one."""
        r = self.open_rng
        roll = r.random()
        if real is not None and roll < 0.3:
            return near_miss(r, real(r))
        if self.open.words and roll < 0.5:
            return self._open_word().capitalize()
        return coin(r, r.choice((2, 2, 3))).capitalize()

    def open_thing(self) -> str | None:
        """At the open rate, an open-vocabulary thing for a caller's own word pool (the everyday
        realistic kinds), else None; a closed inventor draws nothing here, so its stream is untouched."""
        return self._open_thing() if self._opened() else None

    def _open_color(self) -> str:
        r = self.open_rng
        return f"{r.choice(_SHADES)} {r.choice(W.COLORS)}" if r.random() < 0.6 else f"{self._open_word()} {r.choice(W.COLORS)}"

    def _open_thing(self) -> str:
        r = self.open_rng
        roll = r.random()
        if roll < 0.5:
            return self._open_word()
        if roll < 0.75:
            return f"{r.choice(W.COLORS)} {self._open_word()}"
        return f"{self._open_word()} {self._open_word()}"

    # -- names
    def _first(self) -> str:
        if self._opened():
            return self._open_name(lambda r: r.choice(W.FIRST_NAMES))
        return self.rng.choice(W.FIRST_NAMES)

    def _surname(self) -> str:
        if self._opened():
            return self._open_name(lambda r: r.choice(W.SURNAME_HEADS) + r.choice(W.SURNAME_TAILS))
        return self.rng.choice(W.SURNAME_HEADS) + self.rng.choice(W.SURNAME_TAILS)

    def _person(self) -> str:
        return f"{self._first()} {self._surname()}"

    def _place(self) -> str:
        if self._opened():
            return self._open_name()
        return self.rng.choice(W.PLACE_HEADS) + self.rng.choice(W.PLACE_TAILS)

    def _company(self) -> str:
        head = self._surname() if self.rng.random() < 0.5 else self._place()
        return f"{head} {self.rng.choice(W.COMPANY_TAILS)}"

    def _team(self) -> str:
        return f"{self._place()} {self.rng.choice(W.SPORTS_TEAMS)}"

    def _codename(self) -> str:
        if self._opened():
            return self._open_name()
        return self.rng.choice(self.code_words)

    def _product(self) -> str:
        return f"{self.rng.choice(W.CODE_WORDS)} {self.rng.choice(['X', 'S', 'Pro ', 'Mini ', ''])}{self.rng.randint(2, 99) * 10}".replace("  ", " ")

    def _street(self) -> str:
        return f"{self.rng.randint(2, 240)} {self._surname()} {self.rng.choice(W.STREET_KINDS)}"

    # -- numbers and quantities
    def _count(self) -> str:
        if not self.plain and self.rng.random() < 0.25:  # "eight", as prose writes small numbers
            return self.rng.choice(W.NUMBER_WORDS[1:])
        return str(self.rng.randint(3, 60))

    def _bignum(self) -> str:
        return f"{self.rng.randint(120, 9800):,}"

    def _year(self) -> str:
        return str(self.rng.randint(1871, 1999))

    def _percent(self) -> str:
        return f"{self.rng.randint(4, 96)} percent"

    def _temperature(self) -> str:
        if not self.plain and self.rng.random() < 0.2:
            return f"minus {self.rng.randint(1, 40)} degrees"
        return f"{self.rng.randint(3, 240)} degrees"

    def _money(self) -> str:
        if not self.plain and self.rng.random() < 0.35:
            return f"{self.rng.randint(2, 9500):,} {self.rng.choice(W.CURRENCY_WORDS)}"
        cur = self.rng.choice(W.CURRENCIES)
        if self.rng.random() < 0.3:
            return f"{cur}{self.rng.randint(2, 90)}.{self.rng.choice(['25', '50', '75', '40', '95'])}"
        return f"{cur}{self.rng.randint(12, 9500):,}"

    def _weight(self) -> str:
        return f"{self.rng.randint(2, 480)} {self.rng.choice(W.UNITS_WEIGHT)}"

    def _distance(self) -> str:
        return f"{self.rng.randint(2, 900)} {self.rng.choice(W.UNITS_LENGTH)}"

    def _volume(self) -> str:
        return f"{self.rng.randint(2, 75)} {self.rng.choice(W.UNITS_VOLUME)}"

    def _minutes(self) -> str:
        return f"{self.rng.randint(3, 95)} minutes"

    # -- dates and times
    def _date(self) -> str:
        month, day = self.rng.choice(W.MONTHS), self.rng.randint(1, 28)
        return f"{month} {day}" if self.rng.random() < 0.7 else f"{day} {month}"

    def _weekday(self) -> str:
        return self.rng.choice(W.WEEKDAYS)

    def _month(self) -> str:
        return self.rng.choice(W.MONTHS)

    def _time(self) -> str:
        h, m = self.rng.randint(1, 12), self.rng.choice(range(0, 60, 5))
        if self.rng.random() < 0.35:
            return f"{h + self.rng.choice([0, 12]) if h < 12 else h}:{m:02d}"
        return f"{h}:{m:02d} {self.rng.choice(['a.m.', 'p.m.'])}"

    # -- things
    def _color(self) -> str:
        if self._opened():
            return self._open_color()
        return self.rng.choice(W.COLORS)

    def _object(self) -> str:
        if self._opened():
            return self._open_thing()
        return self.rng.choice(W.OBJECTS)

    def _animal(self) -> str:
        if self._opened():
            return self._open_thing()
        return self.rng.choice(W.ANIMALS)

    def _ingredient(self) -> str:
        if self._opened():
            return self._open_thing()
        return self.rng.choice(W.INGREDIENTS)

    def _spice(self) -> str:
        if self._opened():
            return self._open_thing()
        return self.rng.choice(W.SPICES)

    def _dish(self) -> str:
        if self._opened():
            return self._open_thing()
        return self.rng.choice(W.DISHES)

    def _instrument(self) -> str:
        if self._opened():
            return self._open_thing()
        return self.rng.choice(W.INSTRUMENTS)

    def _job(self) -> str:
        return self.rng.choice(W.JOB_TITLES)

    # -- codes
    def _code(self) -> str:
        letters = "".join(self.rng.choice("ABCDEFGHJKLMNPRSTVWXZ") for _ in range(2))
        return f"{letters}-{self.rng.randint(100, 999)}"

    def _room(self) -> str:
        return f"{self.rng.randint(1, 9)}{self.rng.choice(W.ROOM_LETTERS)}"

    def _productkind(self) -> str:
        return self.rng.choice(W.PRODUCT_KINDS)
