"""Synonyms for the words of the task grammar, so that training descriptions are spelt in more
words than the grammar's own (`respell`).

The adapters follow descriptions worded like the training grammar far more often than those worded
apart from it: a reader that has met "end", "close" and "finish" but never "conclude" may not
know what "conclude with ..." asks. A word-for-word swap with a thesaurus widens what training
shows, without any description written for an evaluation set. The table is built once from
WordNet 3.0 (the Debian package `wordnet-base`, `/usr/share/wordnet`) and committed beside this
file, so training needs neither the package nor the network:

    python -m vllm_d2l.datasets.synonyms [--wordnet DIR]

What goes in: the grammar's verbs, adjectives and adverbs that can be swapped without changing
what a rule asks (`SENSES`), each with the other words of the WordNet meanings it has in the grammar
(picked by hand: WordNet's first "conclude" is "reason out", its first "skip" is "jump"), and each
verb's third-person form ("ends" -> "terminates"), as statements use it. Nouns are left out: in
the grammar they name what a rule is about ("letter", "capital", "line"), which a swap would change.
Many of the verbs are nouns too ("each reply", "at the end"), so `respell` swaps a verb only where
the grammar uses verbs: first in the description, or after a word like "never", "to" or "must";
the plural nouns among the third-person forms ("answers", "full stops") never go in. Rare words
WordNet lists beside common ones ("indite", "trammel") are dropped (`_RARE`).
"""
from __future__ import annotations

import argparse
import functools
import json
import random
import re
from pathlib import Path

TABLE_FILE = Path(__file__).with_name("synonyms.json")
WORDNET_DIR = Path("/usr/share/wordnet")

# word -> (part of speech, the WordNet senses it has in the grammar, counted from 0 in the order of use)
SENSES: dict[str, tuple[str, tuple[int, ...]]] = {
    "answer": ("verb", (0,)), "reply": ("verb", (0,)), "respond": ("verb", (1,)), "write": ("verb", (0,)),
    "use": ("verb", (0,)), "keep": ("verb", (0,)), "put": ("verb", (0,)), "place": ("verb", (0,)),
    "start": ("verb", (1,)), "begin": ("verb", (1, 2)), "end": ("verb", (0,)), "finish": ("verb", (2,)),
    "close": ("verb", (4,)), "conclude": ("verb", (3,)), "add": ("verb", (1,)), "mention": ("verb", (0,)),
    "avoid": ("verb", (3,)), "skip": ("verb", (1,)), "say": ("verb", (0,)), "type": ("verb", (0,)),
    "capitalise": ("verb", (0,)), "capitalize": ("verb", (1,)), "mark": ("verb", (0,)), "label": ("verb", (1,)),
    "wrap": ("verb", (2,)), "enclose": ("verb", (0,)), "surround": ("verb", (0,)), "separate": ("verb", (3,)),
    "split": ("verb", (0,)), "join": ("verb", (4,)), "highlight": ("verb", (0,)), "ask": ("verb", (0,)),
    "produce": ("verb", (1,)), "present": ("verb", (0,)), "limit": ("verb", (0,)), "restrict": ("verb", (2,)),
    "exceed": ("verb", (1,)), "stop": ("verb", (1,)), "replace": ("verb", (3,)), "swap": ("verb", (0,)),
    "contain": ("verb", (0,)), "show": ("verb", (0,)), "want": ("verb", (0,)), "cut": ("verb", (1,)),
    "apply": ("verb", (0,)),
    "final": ("adj", (0,)), "entire": ("adj", (0,)), "important": ("adj", (1, 2)), "main": ("adj", (0,)),
    "entirely": ("adv", (0,)), "completely": ("adv", (0,)), "exactly": ("adv", (0,)), "always": ("adv", (1,)),
    "somewhere": ("adv", (0,)), "anywhere": ("adv", (0,)), "precisely": ("adv", (0,)), "briefly": ("adv", (1,)),
}

# synonyms too rare to teach anything, or misleading out of their synset ("lay off" for "stop")
_RARE = frozenset({"indite", "trammel", "dissever", "environ", "enwrap", "swop", "advert", "demo", "carve up",
                   "lay off", "throttle", "skirt", "master", "pose", "lay", "all", "whole", "top", "pass",
                   "interchange", "give up", "ring", "border", "get"})
# third-person forms that the grammar uses as plural nouns, or in a phrase of their own ("shows up")
_NOUNS = frozenset({"answers", "replies", "limits", "marks", "stops", "shows"})
# words and marks after which the grammar's next word is a verb ("never use", "to end", "Rule: begin")
_BEFORE_VERB = frozenset({"never", "not", "to", "and", "or", "must", "should", "always", "please", "then",
                          "you", "also", "just", "only", "but", ".", ":", ",", ";", "!", "?"})
_PARTICLES = frozenset({"up", "off", "out"})  # "wrap up", "kick off": a phrasal verb is kept whole

_LEMMA = re.compile(r"^[a-z][a-z -]*[a-z]$")
_WORD = re.compile(r"[A-Za-z]+")
_PROTECTED = r"\{[^}]*\}|\"[^\"]*\"|<[^>]*>"  # placeholders, quoted values, tags: never swapped
_SPAN = re.compile(f"({_PROTECTED})")
_TOKEN = re.compile(f"{_PROTECTED}|[A-Za-z]+|\\S")  # a protected span, a word or a mark


def vocabulary() -> list[str]:
    """Every lower-case word of the training grammar (imperatives, statements and their frames),
    outside placeholders and quotes, in order of first use."""
    from . import tasks
    texts: list[str] = []
    for family in tasks.families("train", extra=True):
        imperative, statements = tasks.wide_wordings(family)
        texts += [*imperative, *statements]
    words = (w.lower() for t in texts for part in _SPAN.split(t)[::2] for w in _WORD.findall(part))
    return list(dict.fromkeys(words))


def _index(folder: Path, pos: str) -> dict[str, list[int]]:
    """WordNet's index for one part of speech: lemma -> its synsets' offsets, in order of use."""
    out = {}
    for line in (folder / f"index.{pos}").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):  # the licence header
            continue
        f = line.split()
        out[f[0]] = [int(x) for x in f[6 + int(f[3]):]]  # after the pointer symbols and two counts
    return out


def _synset(folder: Path, pos: str, offset: int) -> list[str]:
    """The lemmas of the synset at `offset` of data.{pos}, spaces for underscores, markers dropped."""
    with open(folder / f"data.{pos}", "rb") as fh:
        fh.seek(offset)
        f = fh.readline().decode("latin-1").split()
    n = int(f[3], 16)
    return [re.sub(r"\(.*\)$", "", w).replace("_", " ") for w in f[4:4 + 2 * n:2]]


def third_person(verb: str) -> str:
    """"end" -> "ends", "finish" -> "finishes", "reply" -> "replies"; of a phrase, its first word."""
    head, _, rest = verb.partition(" ")
    if head.endswith(("s", "sh", "ch", "x", "z", "o")):
        head += "es"
    elif head.endswith("y") and head[-2:-1] not in "aeiou":
        head = head[:-1] + "ies"
    else:
        head += "s"
    return f"{head} {rest}" if rest else head


def build(folder: Path = WORDNET_DIR) -> dict[str, list[str]]:
    """word -> its synonyms, for the words of `SENSES` that the grammar uses (`vocabulary`), and
    the third-person forms of its verbs; see the module's docstring."""
    indexes = {pos: _index(folder, pos) for pos in {pos for pos, _ in SENSES.values()}}
    used = set(vocabulary())
    table = {}
    for word, (pos, senses) in SENSES.items():
        offsets = indexes[pos][word]
        lemmas = [lemma for i in senses for lemma in _synset(folder, pos, offsets[i])]
        synonyms = [s for s in dict.fromkeys(lemmas)
                    if s != word and _LEMMA.match(s) and len(s.split()) <= 3 and s not in _RARE]
        forms = [(word, synonyms)]
        if pos == "verb":
            forms.append((third_person(word), [third_person(s) for s in synonyms]))
        table.update({w: syn for w, syn in forms if w in used and w not in _NOUNS and syn})
    return dict(sorted(table.items()))


@functools.cache
def table() -> dict[str, tuple[str, ...]]:
    """The committed table."""
    return {w: tuple(s) for w, s in json.loads(TABLE_FILE.read_text()).items()}


def respell(rng: random.Random, text: str, share: float, synonyms: dict | None = None) -> str:
    """`text` with each word the table knows swapped for one of its synonyms with probability
    `share` (a capital first letter kept); a base-form verb only where a verb stands (see the
    module's docstring); placeholders, quoted values and tags untouched."""
    synonyms = table() if synonyms is None else synonyms
    tokens = list(_TOKEN.finditer(text))
    out, last = [], 0
    for i, m in enumerate(tokens):
        word = m.group(0)
        options = synonyms.get(word.lower()) if word.isalpha() else None
        if not options:
            continue
        if SENSES.get(word.lower(), ("",))[0] == "verb":
            prev = tokens[i - 1].group(0).lower() if i else None
            after = tokens[i + 1].group(0).lower() if i + 1 < len(tokens) else None
            if (prev is not None and prev not in _BEFORE_VERB) or after in _PARTICLES:
                continue
        if rng.random() < share:
            new = rng.choice(options)
            out += [text[last:m.start()], new[0].upper() + new[1:] if word[0].isupper() else new]
            last = m.end()
    return "".join(out) + text[last:]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the task grammar's synonym table from WordNet 3.0")
    ap.add_argument("--wordnet", default=str(WORDNET_DIR), help="folder with WordNet's index.* and data.* files")
    ap.add_argument("--out", default=str(TABLE_FILE))
    args = ap.parse_args(argv)
    folder = Path(args.wordnet)
    if not (folder / "index.verb").is_file():
        raise SystemExit(f"no WordNet database in {folder}: apt-get install wordnet-base, or pass --wordnet")
    built = build(folder)
    Path(args.out).write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")
    print(f"{len(built)} words with synonyms -> {args.out}")


if __name__ == "__main__":
    main()
