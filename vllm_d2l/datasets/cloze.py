"""Questions about real public-domain text: sentence completion, fill-the-blank, next sentence.

Why: documents we generate ourselves, however varied, share our habits. Passages people wrote
(Austen, the US constitution, the Jargon File, CPython's docs; see `corpora.py`) carry none of them,
and questions whose answers are cut programmatically out of the passage need no templates for
stating facts at all. What the hypernetwork must learn from them is the general skill: hold on to
the exact wording of a text it has read once.

Corpora are cut into units of consecutive paragraphs (a few thousand characters each); a unit is in
the "heldout" split or the "train" split by a hash of its name, so training and evaluation passages
never overlap and the split does not depend on which corpora a machine has installed. Record
`index` of `seed` comes from its own random stream, like `realistic.make_record`.

    python -m vllm_d2l.datasets.cloze --n 5 --seed 0 --sources pydoc
"""
from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
import sys
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import Callable, Sequence

from .jsonl import generate_to
from . import corpora

SPLITS = ("train", "heldout")
HELDOUT_PERCENT = 10  # share of units reserved for evaluation
UNIT_CHARS = 4000  # a unit is at least this long (unless its document is shorter)
MIN_TOKENS, MAX_TOKENS = 60, 250
MIN_QUESTIONS, MAX_QUESTIONS = 3, 5

_STOP = frozenset("""
about above after again against all also among an and another any are around as at be because been before being
below between both but by can could did does doing down during each either else even ever every few for from further
had has have having her here hers herself him himself his how however into its itself just least less made make many
may might more most much must neither never nor not now off once only other others ought our ours ourselves out over
own same shall she should since some such than that their theirs them themselves then there these they this those
though through thus till too under until upon very was were what whatever when where whether which while who whom
whose why will with within without would yet you your yours yourself indeed rather quite perhaps shall said says
""".split())
_NUMBER_WORDS = frozenset("""two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
seventeen eighteen nineteen twenty thirty forty fifty hundred thousand""".split())
# a full stop after these does not end a sentence
_ABBREV = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Col|Capt|Gen|Rev|Sir|Mt|vs|etc|e\.g|i\.e|cf|esp|usu|prob|approx|"
                     r"No|Nos|Art|Sec|Gk|Fr|Lat|adj|adv|vt|vi|n|v|pp|ca|U\.S|[A-Z])\.)$")
_BOUNDARY = re.compile(r"([.!?][\"”’')\]]*)\s+(?=[\"“‘(\[]?[A-Z0-9])")
_SPEAKER = re.compile(r"[\"“]([^\"“”]{12,160}?)[,!?]?[\"”]\s*(?:said|cried|replied|answered|continued)\s+"
                      r"((?:Mr\.|Mrs\.|Miss|Lady|Sir|Colonel|Captain|Dr\.) ?[A-Z][a-z]+(?: [A-Z][a-z]+)?|[A-Z][a-z]+)")
_EDGE = "\"'“”‘’()[]{}*,;:.!?-—"
_PAIRS = (("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"), ("‘", "’"))


def trim(span: str) -> str:
    """`span` without edge punctuation and without brackets or quotes left open by the cut,
    so an answer reads as a phrase; the result is still a substring of `span`."""
    prev = None
    while span != prev:
        prev = span
        span = span.strip().strip(",;:.!?-—*")
        for a, b in _PAIRS:
            if span.endswith(b) and span.count(a) < span.count(b):
                span = span[:-1]
            if span.startswith(a) and span.count(b) < span.count(a):
                span = span[1:]
            if span.count(a) > span.count(b):  # an opener whose closer was cut off: drop from it on
                span = span[:span.rfind(a)]
            elif span.count(b) > span.count(a):  # a closer whose opener was cut off: drop up to it
                span = span[span.find(b) + 1:]
        if span.count('"') % 2:
            span = span.strip('"')
            if span.count('"') % 2:
                span = span[:span.rfind('"')]
    return span.strip()


def sentences(paragraph: str) -> list[str]:
    """Sentences of one whitespace-normalised paragraph, each a substring of it."""
    out, start = [], 0
    for m in _BOUNDARY.finditer(paragraph):
        chunk = paragraph[start:m.end(1)]
        if _ABBREV.search(chunk):
            continue
        out.append(chunk.strip())
        start = m.end()
    tail = paragraph[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def is_prose(sentence: str) -> bool:
    """A sentence worth asking about: real words, not a grammar rule, heading or code sample."""
    words = sentence.split()
    if not 6 <= len(words) <= 45 or not re.match(r"[\"“‘(]?[A-Z]", sentence) or not re.search(r"[.!?][\"”’)]*$", sentence):
        return False
    if "::=" in sentence or "***" in sentence or "__" in sentence or ">>>" in sentence:
        return False
    chars = [c for c in sentence if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    symbols = sum(c in "()[]{}=_<>*/\\|#@$^~`" for c in chars)
    return letters / len(chars) >= 0.8 and symbols <= 2


def clip(words: Sequence[str], limit: int) -> str:
    """At most `limit` words, ending where a quotation closes: an answer stays inside one voice."""
    out = []
    for w in words[:limit]:
        if out and w[:1] in "\"“":  # a new quotation opens
            break
        out.append(w)
        if len(out) > 1 and re.search(r"[\"”]$|[\"”][,;.!?]$|[,;.!?][\"”]$", w):
            break
    return trim(" ".join(out))


def quoted(fragment: str) -> str:
    """A fragment fit to sit inside the question's own double quotes."""
    return fragment.strip().strip('"“”').replace('"', "'").replace("“", "'").replace("”", "'")


def _is_heldout(unit: str) -> bool:
    return int(hashlib.sha1(unit.encode()).hexdigest()[:8], 16) % 100 < HELDOUT_PERCENT


@dataclass
class Unit:
    name: str  # "<document>#<k>"
    source: str
    paragraphs: list[str]
    _sentences: list[list[str]] | None = field(default=None, repr=False)

    def sentence_lists(self) -> list[list[str]]:
        if self._sentences is None:  # split lazily: most units are never drawn in a short run
            self._sentences = [sentences(p) for p in self.paragraphs]
        return self._sentences


def cut_units(name: str, text: str, unit_chars: int = UNIT_CHARS) -> list[tuple[str, list[str]]]:
    """A document as runs of whole consecutive paragraphs of at least `unit_chars` characters
    (a short tail joins the run before it). The same document always gives the same units."""
    runs: list[list[str]] = [[]]
    size = 0
    for para in corpora.paragraphs(text):
        para = re.sub(r"\s+", " ", para).strip()
        if not para:
            continue
        runs[-1].append(para)
        size += len(para)
        if size >= unit_chars:
            runs.append([])
            size = 0
    if not runs[-1]:
        runs.pop()
    elif len(runs) > 1 and size < unit_chars // 2:
        runs[-2].extend(runs.pop())
    return [(f"{name}#{k}", run) for k, run in enumerate(runs)]


@lru_cache(maxsize=8)
def _load_units(sources: tuple[str, ...] | None) -> tuple[Unit, ...]:
    units = []
    for name, text in corpora.load_documents(list(sources) if sources else None):
        source = name.split(":")[0]
        for unit_name, paras in cut_units(name, text):
            if sum(map(len, paras)) >= MIN_TOKENS * 4:
                units.append(Unit(unit_name, source, paras))
    return tuple(units)


def _token_counter(tokenizer) -> Callable[[str], int]:
    if tokenizer is None:
        return lambda text: math.ceil(len(text) / 4)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


class ClozeMaker:
    """Loads the corpora once, then makes any record on demand from (seed, index)."""

    def __init__(self, sources: Sequence[str] | None = None, tokenizer=None, split: str = "train",
                 min_tokens: int = MIN_TOKENS, max_tokens: int = MAX_TOKENS):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.count = _token_counter(tokenizer)
        self.min_tokens, self.max_tokens = min_tokens, max_tokens
        units = [u for u in _load_units(tuple(sources) if sources else None)
                 if _is_heldout(u.name) == (split == "heldout")]
        if not units:
            raise ValueError(f"no corpus units for sources={sources or 'all'} in split {split!r}")
        self.by_source: dict[str, tuple[list[Unit], list[int]]] = {}
        for u in units:
            self.by_source.setdefault(u.source, ([], []))[0].append(u)
        for source, (us, _) in self.by_source.items():  # draw units in proportion to their length
            self.by_source[source] = (us, list(accumulate(sum(map(len, u.paragraphs)) for u in us)))
        self.sources = sorted(self.by_source)
        # sources in proportion to the square root of their size: uniform would repeat the short
        # constitution endlessly, proportional would leave pydoc almost unseen next to Austen
        self.source_cum = list(accumulate(math.sqrt(self.by_source[src][1][-1]) for src in self.sources))

    # -- passages
    def _unit(self, rng: random.Random) -> Unit:
        source = self.sources[bisect_right(self.source_cum, rng.random() * self.source_cum[-1])]
        units, cum = self.by_source[source]
        return units[bisect_right(cum, rng.randrange(cum[-1]))]

    def _passage(self, rng: random.Random, unit: Unit) -> list[list[str]] | None:
        """Consecutive sentences (grouped by paragraph) of about a drawn number of tokens."""
        flat = [(p, s) for p, ss in enumerate(unit.sentence_lists()) for s in ss]
        if not flat:
            return None
        starts = [i for i, (p, _) in enumerate(flat) if i == 0 or flat[i - 1][0] != p]
        start = rng.choice(starts) if rng.random() < 0.7 else rng.randrange(len(flat))
        target = int(rng.triangular(self.min_tokens, self.max_tokens, 0.55 * (self.min_tokens + self.max_tokens)))
        taken: list[tuple[int, str]] = []
        used = 0
        for p, s in flat[start:]:
            n = self.count(s)
            if used + n > target:
                break
            taken.append((p, s))
            used += n
        while taken:  # joins can cost or save a token or two: measure what will really be shown
            n = self.count(self._join(taken))
            if n <= self.max_tokens:
                break
            taken.pop()
        if not taken or self.count(self._join(taken)) < self.min_tokens:
            return None
        groups: dict[int, list[str]] = {}
        for p, s in taken:
            groups.setdefault(p, []).append(s)
        return list(groups.values())

    @staticmethod
    def _join(taken: list[tuple[int, str]]) -> str:
        groups: dict[int, list[str]] = {}
        for p, s in taken:
            groups.setdefault(p, []).append(s)
        return "\n\n".join(" ".join(g) for g in groups.values())

    # -- questions
    def _completion(self, rng: random.Random, s: str, nxt: str | None) -> tuple[str, str, str] | None:
        words = s.split()
        if len(words) < 8:
            return None
        k = round(len(words) * rng.uniform(0.5, 0.7))
        answer = clip(words[k:], 12)
        head = quoted(" ".join(words[:k]))
        if len(answer.split()) < 2:
            return None
        q = rng.choice(('Complete this sentence from the text: "{} ..."', 'How does this sentence from the text go on: "{} ..."?',
                        'Finish the sentence as the text has it: "{} ..."')).format(head)
        return q, answer, "completion"

    def _blank(self, rng: random.Random, s: str, nxt: str | None) -> tuple[str, str, str] | None:
        words = s.split()
        spans = []  # (start, end) word indices of candidate answers
        for i, w in enumerate(words):
            core = w.strip(_EDGE)
            if i > 0 and re.fullmatch(r"[A-Z][a-z]{2,}", core) and not (
                    re.fullmatch(r"[A-Z][a-z]+", words[i - 1].strip(_EDGE)) and words[i - 1] == words[i - 1].rstrip(_EDGE)):
                # the start of a run of capitalised words, mid-sentence: most often a name
                j = i
                while j + 1 < len(words) and re.fullmatch(r"[A-Z][a-z]+", words[j + 1].strip(_EDGE)) and words[j] == words[j].rstrip(_EDGE):
                    j += 1
                spans.append((i, j + 1, "name"))
            elif re.fullmatch(r"\d[\d,.]*", core) or core.lower() in _NUMBER_WORDS:
                spans.append((i, i + 1, "number"))
            elif re.fullmatch(r"[a-z]{5,}", core) and core not in _STOP:
                spans.append((i, i + 1, "cloze"))
        rng.shuffle(spans)
        for i, j, kind in spans:
            lead = words[i][:len(words[i]) - len(words[i].lstrip(_EDGE))]
            trail = words[j - 1][len(words[j - 1].rstrip(_EDGE)):]
            answer = " ".join(words[i:j]).strip(_EDGE)
            blanked = words[:i] + [f"{lead}____{trail}"] + words[j:]
            lo, hi = max(0, i - 14), min(len(blanked), i + 15)  # a long sentence is quoted around its blank
            shown = quoted(("... " if lo else "") + " ".join(blanked[lo:hi]) + (" ..." if hi < len(blanked) else ""))
            if answer.lower() in shown.lower():
                continue
            if kind == "name":
                q = rng.choice(('Which name is missing from this sentence of the text: "{}"?', 'Whose name fills the gap in: "{}"?'))
            elif kind == "number":
                q = rng.choice(('What number is missing from: "{}"?', 'Which number belongs in the blank: "{}"?'))
            else:
                q = rng.choice(('Which word fills the blank in: "{}"?', 'What word is missing from this sentence of the text: "{}"?',
                                'Fill in the blank as in the text: "{}"'))
            return q.format(shown), answer, kind
        return None

    def _next(self, rng: random.Random, s: str, nxt: str | None) -> tuple[str, str, str] | None:
        if not nxt or len(nxt.split()) < 3 or not re.search(r"[A-Za-z]{3}", nxt):
            return None
        words = s.split()
        shown = quoted(s if len(words) <= 25 else "... " + " ".join(words[-20:]))
        answer = clip(nxt.split(), 10)
        if len(answer.split()) < 2:
            return None
        q = rng.choice(('What comes right after "{}" in the text?', 'In the text, how does the sentence after "{}" begin?',
                        'Which words follow "{}" in the passage?')).format(shown)
        return q, answer, "next"

    def _speaker(self, rng: random.Random, s: str, nxt: str | None) -> tuple[str, str, str] | None:
        m = _SPEAKER.search(s)
        if not m:
            return None
        quote, name = m.group(1).strip(), m.group(2).strip()
        if name.split()[-1] in ("I", "The", "He", "She") or name.lower() in quote.lower():
            return None
        q = rng.choice(('Who says "{}" in the text?', 'In the passage, who is the speaker of "{}"?')).format(quoted(quote))
        return q, name, "speaker"

    def _questions(self, rng: random.Random, groups: list[list[str]], text: str) -> list[dict]:
        flat = [s for g in groups for s in g]
        pairs = [(s, flat[i + 1] if i + 1 < len(flat) else None) for i, s in enumerate(flat) if is_prose(s)]
        makers = [self._completion, self._blank, self._next, self._speaker]
        wanted = rng.randint(MIN_QUESTIONS, MAX_QUESTIONS)
        qa, answers, used = [], set(), set()
        for _ in range(4 * wanted):
            if len(qa) >= wanted or not pairs:
                break
            s, nxt = rng.choice(pairs)
            make = rng.choice(makers)
            if (s, make.__name__) in used:
                continue
            used.add((s, make.__name__))
            got = make(rng, s, nxt)
            if not got:
                continue
            q, a, kind = got
            if a in answers or a not in text or a.lower() in q.lower():
                continue
            answers.add(a)
            qa.append({"q": q, "a": a, "type": kind})
        return qa

    def record(self, seed: int, index: int) -> dict:
        """Record `index` of run `seed`: `{"id", "genre": "cloze:<source>", "source", "split", "text", "qa"}`."""
        rng = random.Random(f"d2l-cloze:{seed}:{index}:{self.split}")
        best = None
        for _ in range(40):  # a passage of code or headings gives too few questions: draw another
            unit = self._unit(rng)
            groups = self._passage(rng, unit)
            if not groups:
                continue
            text = "\n\n".join(" ".join(g) for g in groups)
            qa = self._questions(rng, groups, text)
            rec = {"id": f"cloze-{self.split}-{seed}-{index:06d}", "genre": f"cloze:{unit.source}", "source": unit.name,
                   "split": self.split, "text": text, "qa": qa}
            if len(qa) >= MIN_QUESTIONS:
                return rec
            if qa and (best is None or len(qa) > len(best["qa"])):
                best = rec
        if best is None:
            raise RuntimeError(f"no usable passage for seed {seed}, index {index} in split {self.split!r}")
        return best


@lru_cache(maxsize=8)
def _maker(sources: tuple[str, ...] | None, split: str, tokenizer=None) -> ClozeMaker:
    return ClozeMaker(sources, tokenizer, split)


def make_record(seed: int, index: int, sources: Sequence[str] | None = None, tokenizer=None,
                split: str = "train") -> dict:
    """One record; corpora are loaded on the first call and kept for the next ones."""
    return _maker(tuple(sources) if sources else None, split, tokenizer).record(seed, index)


def make_stream(seed: int, tokenizer=None, split: str = "train",
                sources: Sequence[str] | None = None) -> Callable[[int], dict]:
    """`index -> record` for a trainer that draws a fresh record every step."""
    maker = _maker(tuple(sources) if sources else None, split, tokenizer)
    return lambda index: maker.record(seed, index)


def generate(n: int, seed: int = 0, sources: Sequence[str] | None = None, split: str = "train",
             tokenizer=None) -> list[dict]:
    maker = _maker(tuple(sources) if sources else None, split, tokenizer)
    return [maker.record(seed, i) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.datasets.cloze", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=SPLITS, default="train")
    p.add_argument("--sources", help=f"comma-separated corpus sources (default: every installed one of {','.join(corpora.SOURCES)})")
    p.add_argument("--out", default="-", help="JSONL file ('-' for stdout)")
    args = p.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
    return generate_to(p, lambda: generate(args.n, args.seed, sources, args.split), args.out)


if __name__ == "__main__":
    sys.exit(main())
