"""Task descriptions ("Answer in at most five words.") with programmatic checks, for the task mode.

A task is a family (what kind of rule), a wording (how the description says it) and parameters
drawn at random (the limit, the phrase, the word to avoid, the JSON keys), so a generator that
turns descriptions into adapters must read the rule's values from the text; none can be learnt as
a constant. Every family can
  check(reply)   did the reply follow the rule?
  comply(reply)  the smallest rewrite of an ordinary reply that follows it
The training targets are the base model's own replies to ordinary prompts passed through `comply`
(the model follows few descriptions when told them, so there is little to distil from a prompt).

Splits, so evaluation can say what generalises:
- held-out families: never in training (`HELD_OUT_FAMILIES`);
- extra families (`EXTRA_FAMILIES`): training families drawn only when asked (`extra=True`), kept
  out of `FAMILIES` so that runs without them, and every evaluation set, stay as they were;
- held-out wordings: the last wording of every family is never in training;
- parameters: phrases, words and keys come from disjoint pools for training and evaluation, and
  numeric limits from disjoint ranges; prompts too.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import random
import re
import string
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import short_questions
from . import words as W
from .fresh_wordings import FRESH_WORDINGS

SPLITS = ("train", "eval")
_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _sentences(text: str) -> list[str]:
    parts = [s.strip(" -*\n\t") for line in text.splitlines() for s in _SENTENCE.split(line)]
    return [p for p in parts if _words(p)]


# ------------------------------------------------------------------------------------- parameter pools
# Disjoint train / eval pools: an adapter that follows an eval phrase has read it from the text.
_PHRASES = {
    "train": ["Greetings, friend!", "Here is my answer:", "Good question.", "Let me explain.", "Right away!",
              "Happy to help.", "Short answer:", "Alright then.", "In brief:", "Listen closely.",
              "Here we go.", "Thanks for asking!", "Consider this:", "Well now,", "Of course!"],
    "eval": ["Ahoy there!", "Quick reply:", "Glad you asked.", "Straight to it:", "Hello again!",
             "My take:", "Certainly."],
}
_SIGNOFFS = {
    "train": ["Best regards, Ada", "Cheers!", "Hope this helps.", "Stay curious.", "Have a great day!",
              "Yours truly, Max", "That is all.", "Take care.", "Until next time!", "Over and out."],
    "eval": ["Kind regards, Ivo", "Good luck!", "Talk soon.", "With thanks, the team"],
}
_AVOID = {  # words ordinary replies use, so avoiding them takes a rewrite
    "train": ["the", "and", "to", "of", "is", "for", "are", "with", "this", "on", "you"],
    "eval": ["a", "in", "it", "that"],
}
_KEYS = {
    "train": [("answer", "reason"), ("summary", "details"), ("title", "body"), ("short", "long"),
              ("topic", "explanation"), ("claim", "support"), ("result", "notes")],
    "eval": [("headline", "text"), ("main_point", "extra"), ("gist", "elaboration")],
}
_CATCH = {
    "train": ["Yo ho ho!", "By my beard!", "Elementary!", "Far out, dude.", "Splendid, splendid.",
              "Great Scott!", "Indubitably."],
    "eval": ["Holy guacamole!", "Bless my boots!", "Jolly good!"],
}
_INCLUDE = {  # words an ordinary reply would not use, so including one takes a rewrite
    "train": ["banana", "marvellous", "indeed", "galaxy", "pancake", "whisper", "velvet", "lantern", "zigzag",
              "penguin", "harbour", "thunder", "cinnamon", "meadow"],
    "eval": ["kaleidoscope", "pickle", "nebula", "origami"],
}
_QUESTIONS = {
    "train": ["What else would you like to know?", "Does that help?", "Shall I go on?", "Any other questions?",
              "Want an example?", "Is that clear?"],
    "eval": ["Anything more I can do?", "Should I explain further?"],
}
# Pools of the extra training families (`EXTRA_FAMILIES`). They stay out of `_EVAL_WORDS` on
# purpose: that set decides `_OPEN_WORDS`, and with it every open draw of a run that does not train
# the extra families; their own open values use `_EXTRA_OPEN_WORDS` instead.
_PREFIXES = {"train": [">", "=>", "»", "#", "%", "->", "$", "&"], "eval": [">>", "~>", "@"]}
_SEPARATORS = {"train": ["|", "/", "~", "+", "//", "="], "eval": ["::", "||"]}
_HEADINGS = {
    "train": ["Answer:", "Summary:", "Response:", "Overview:", "Key points:", "Explanation:", "Notes:", "Details:"],
    "eval": ["Findings:", "Takeaway:", "Briefing:"],
}
_LEADS = {"train": ["In short:", "TL;DR:", "Bottom line:", "To sum up:", "Put simply:", "In a word:", "Gist:"],
          "eval": ["All told:", "Long story short:", "Net result:"]}
_TAGS = {"train": ["answer", "reply", "response", "output", "text", "note", "content"],
         "eval": ["result", "message", "final"]}

# Open parameters (`split="open"`: training, with half the phrases, words and keys composed here
# instead of taken from the pools above). With ten sign-offs and seven key pairs to learn from,
# the step-1100 adapters wrote the training key "title" whatever keys a held-out description
# named, and no held-out sign-off or word to include at all: they had learnt the pools rather
# than to read the value from the text. Composed values come from word lists no eval pool shares.
OPEN_SHARE = 0.5
_EVAL_WORDS = {w.lower().strip("!?.,:") for pool in (_PHRASES, _SIGNOFFS, _KEYS, _CATCH, _INCLUDE, _QUESTIONS)
               for v in pool["eval"] for w in (v if isinstance(v, tuple) else (v,)) for w in re.split(r"[ _]", w)}
_OPEN_WORDS = sorted({w.lower() for w in (*W.OBJECTS, *W.ANIMALS, *W.INGREDIENTS, *W.SPICES, *W.DISHES,
                                          *W.COLORS, *W.INSTRUMENTS, *W.CODE_WORDS)
                      if w.isalpha() and w.lower() not in _EVAL_WORDS})
_OPEN_NAMES = [n for n in W.FIRST_NAMES if n.lower() not in _EVAL_WORDS]
_CLOSINGS = ["Best", "Warmly", "All the best", "Sincerely", "Cheers", "Yours", "Respectfully"]
_OPEN_PHRASES = ["{W} first:", "Morning, {N}!", "{W} and {w}!", "Dear {N},", "{W} time."]
_OPEN_SIGNOFFS = ["{C}, {N}", "{W} out.", "See you by the {w}.", "From {N} and the {w}"]


# Wide words (`task_wide_words`): half the pools' training draws composed as well (`_param`), and
# half the open words drawn from 60,000 (`datasets.wide_words`) rather than the 189 above, so that
# no value can be learnt as one of a set. Values are drawn
# deep inside each family's draw, so the switch is a context variable `make_record` sets around the
# record rather than one more argument through every family. It holds a generator of its own: the
# record's own draws are the same with it or without, and only open words are swapped.
WIDE_SHARE = 0.5
_WIDE: contextvars.ContextVar[random.Random | None] = contextvars.ContextVar("d2l_task_wide_words", default=None)


@contextlib.contextmanager
def _drawing(var: contextvars.ContextVar, rng: random.Random | None):
    """Within the block, the switch `var` (wide words, open labels) draws with `rng` (None: off)."""
    token = var.set(rng)
    try:
        yield
    finally:
        var.reset(token)


_wide_words = functools.partial(_drawing, _WIDE)


@functools.cache
def _wide_pool(extra: bool = False) -> tuple[str, ...]:
    """The wide words less every word of an eval pool (and, for the extra families, of theirs)."""
    from .wide_words import wide_words

    banned = _EVAL_WORDS | (_EXTRA_EVAL_WORDS if extra else set())
    return tuple(w for w in wide_words() if w not in banned)


def _widened(word: str, extra: bool = False) -> str:
    """`word`, or with wide words on half the time a wide word in its place."""
    wide = _WIDE.get()
    return wide.choice(_wide_pool(extra)) if wide is not None and wide.random() < WIDE_SHARE else word


def _open_word(rng: random.Random, pool: list[str] | None = None, extra: bool = False) -> str:
    """One open word from `pool` (the open words), or with wide words on half the time a wide one."""
    return _widened(rng.choice(pool or _OPEN_WORDS), extra)


def _open_pair(rng: random.Random) -> tuple[str, str]:
    """Two different open words."""
    first, second = (_widened(w) for w in rng.sample(_OPEN_WORDS, 2))
    while second == first:  # only where a wide word met the other word: without wide words they differ
        second = _WIDE.get().choice(_wide_pool())
    return first, second


def _open_text(rng: random.Random, templates: list[str]) -> str:
    """One of `templates` filled with open words ({W} capitalised, {w}), a name {N} and a closing {C}."""
    w1, w2 = _open_pair(rng)
    return rng.choice(templates).format(W=w1.capitalize(), w=w2, N=rng.choice(_OPEN_NAMES), C=rng.choice(_CLOSINGS))


# Open values of the extra families: the open words minus every word of their eval pools.
_EXTRA_EVAL_WORDS = {x.lower().strip(":") for pool in (_HEADINGS, _TAGS) for v in pool["eval"] for x in v.split()}
_EXTRA_OPEN_WORDS = [w for w in _OPEN_WORDS if w not in _EXTRA_EVAL_WORDS]
_OPEN_HEADINGS = ["{W}:", "{W} notes:", "About the {w}:"]


def _open_heading(rng: random.Random) -> str:
    """A heading line built from an open word ("Lantern notes:"), so no heading pool can be memorised."""
    w = _open_word(rng, _EXTRA_OPEN_WORDS, extra=True)
    return rng.choice(_OPEN_HEADINGS).format(W=w.capitalize(), w=w)


_OPEN_MAKERS: dict[str, Callable[[random.Random], object]] = {
    "phrase": lambda rng: _open_text(rng, _OPEN_PHRASES),
    "signoff": lambda rng: _open_text(rng, _OPEN_SIGNOFFS),
    "keys": _open_pair,
    "word": _open_word,
    "heading": lambda rng: _open_heading(rng),
    "tag": lambda rng: _open_word(rng, _EXTRA_OPEN_WORDS, extra=True),
}


# Near misses of stock phrases (`split="near"`: open parameters, with half the composed openings and
# sign-offs made this way). The step-3100 adapters wrote "Straight to the point:" when asked to open
# with "Straight to it:", "Certainly!" for "Certainly.", "Good luck!" as a reply's first words: where
# the phrase starts like a stock one, the model's own continuation wins over the text. Composed
# phrases of open words never start that way, so training did not ask for the exact copy there; a
# stock phrase with one later word changed ("Without further lanterns,", "See you then!") does.
# Phrases that start like an eval value are left out, and the swapped-in words share none with one.
_STOCK_OPENINGS = ["To be honest,", "Here's the thing:", "Without further ado,", "First things first:",
                   "As a matter of fact,", "Believe it or not,", "Let me be clear:", "In my opinion,",
                   "Once upon a time,", "Fun fact:", "Great question!", "No problem at all!", "Sure thing!",
                   "For what it's worth,", "Guess what?", "Here goes nothing!", "Long time no see!",
                   "What a day!", "Now then,", "All right, listen up:", "Simply put,", "Just so you know:"]
_STOCK_SIGNOFFS = ["See you later!", "Take it easy.", "All the best!", "Have a nice weekend!", "Catch you later!",
                   "Peace out.", "Stay safe.", "Enjoy your day!", "Thanks for reading!", "Hope that clears it up.",
                   "Until we meet again.", "Happy learning!", "Keep it up!", "Best wishes to you.",
                   "Sleep well, everyone.", "Have fun out there!", "Thanks again, Ada"]
_FIRST_EVAL_WORDS = {v.split()[0].lower().strip("!?.,:") for pool in (_PHRASES, _SIGNOFFS, _CATCH) for v in pool["eval"]}
# filtered once here, so a draw never meets a stock phrase that starts like an eval value
_STOCK_OPENINGS, _STOCK_SIGNOFFS = ([p for p in stock if p.split()[0].lower().strip("!?.,:") not in _FIRST_EVAL_WORDS]
                                    for stock in (_STOCK_OPENINGS, _STOCK_SIGNOFFS))
_SMALL_WORDS = [w for w in ("now", "then", "here", "all", "more", "so", "too", "on", "up", "well", "back", "yet",
                            "twice", "later", "first", "there", "away", "out") if w not in _EVAL_WORDS]


def _near_miss(rng: random.Random, stock: list[str]) -> str:
    """A stock phrase with one word after the first changed: to a small common word (a near miss
    the model's own guess is closest to) or an open word, keeping the word's case and punctuation."""
    phrase = rng.choice(stock)
    words = phrase.split()
    i = rng.randrange(1, len(words))
    core = re.match(r"^([A-Za-z']+)(.*)$", words[i])
    new = rng.choice(_SMALL_WORDS) if rng.random() < 0.5 else _open_word(rng)
    if core is None or core.group(1).lower() == new:
        return phrase
    words[i] = (new.capitalize() if core.group(1)[0].isupper() else new) + core.group(2)
    return " ".join(words)


_NEAR_MAKERS: dict[str, Callable[[random.Random], object]] = {
    "phrase": lambda rng: _near_miss(rng, _STOCK_OPENINGS),
    "signoff": lambda rng: _near_miss(rng, _STOCK_SIGNOFFS),
}


# Free phrases (`split="free"`: open parameters, with half the composed openings and sign-offs
# free word sequences). Every composed phrase above fills a slot of a few templates ("{W} time.",
# "Morning, {N}!"), so the generator learnt to copy a slot word and write the template around it.
# At step 6800, teacher-forced under "Start every reply with "…"." (as `eval --tasks --set copy` scores), the
# first token of a held-out phrase was nearly always right and a later word often got no help at
# all: "Righto, then." put ' then' at -14.2 nats (-14.0 without the adapter), "Quick reply:" put
# ' reply' at -5.9, while "Kaleidoscope time!", a template's shape, came out whole. A free phrase
# is two to four words from the open words, the names and small common words, in no fixed order,
# so nothing after its first token can be guessed: each one must be read from the description.
_FREE_SMALL = [w for w in ("now", "then", "here", "all", "more", "so", "too", "on", "up", "well", "back", "yet",
                           "a", "the", "my", "your", "our", "of", "for", "to", "with", "at", "by", "from", "and",
                           "or", "no", "yes", "oh", "hey", "big", "old", "new", "good", "fine", "dear", "little",
                           "quick", "happy", "what", "how", "this", "one", "two", "time", "day", "again")
               if w not in _EVAL_WORDS]
_FREE_ENDS = ["!", ".", ":", "", ",", "?", "..."]


def _free_phrase(rng: random.Random) -> str:
    """Two to four words in no template (an open word, a name or a small word each), the first
    capitalised, a comma after it now and then, and a closing mark."""
    words = []
    for _ in range(rng.randint(2, 4)):
        r = rng.random()
        words.append(_open_word(rng) if r < 0.45 else rng.choice(_OPEN_NAMES) if r < 0.6
                     else rng.choice(_FREE_SMALL))
    words[0] = words[0][0].upper() + words[0][1:]
    if rng.random() < 0.3:
        words[0] += ","
    return " ".join(words) + rng.choice(_FREE_ENDS)


_FREE_MAKERS: dict[str, Callable[[random.Random], object]] = {"phrase": _free_phrase, "signoff": _free_phrase}


# One-word phrases (`task_word_phrases`). Every training opening and sign-off had two words or
# more, and the one-word rule was the only one whose target is a single capitalised word with a
# stop: told to open with "Certainly.", the 9500 adapters answered 9 of 60 questions with a bare
# "Yes." or "Certainly." and nothing after it. A one-word phrase is an interjection or an open word
# with a closing mark, never a word of an eval value.
_INTERJECTIONS = [w for w in ("Absolutely", "Sure", "Indeed", "Okay", "Naturally", "Definitely", "Gladly", "Hi",
                              "Welcome", "Hey", "Right", "Understood", "Noted", "Great", "Splendid", "Fantastic",
                              "Hooray", "Bravo", "Excellent", "Wonderful", "Greetings", "Howdy", "Alright", "Agreed",
                              "Roger", "Done", "Cheers", "Yes", "Gosh", "Wow", "Behold", "Voila", "Salutations",
                              "Onward", "Anyway", "So", "Well", "Listen", "Look", "Honestly", "Basically", "Sincerely",
                              "Thanks", "Bye", "Farewell", "Later", "Ciao", "Enjoy", "Amen", "Fin", "Ta-da")
                  if w.lower() not in _EVAL_WORDS]
_WORD_ENDS = [".", "!", ",", ":", "..."]


def _word_phrase(rng: random.Random) -> str:
    """One word and a closing mark: an interjection half the time, else a capitalised open word."""
    word = rng.choice(_INTERJECTIONS) if rng.random() < 0.5 else _open_word(rng).capitalize()
    return word + rng.choice(_WORD_ENDS)


# Exclamations with a long word in them (`task_exclamations`). Told to say "Holy guacamole!", the
# 9600 adapters wrote "Holy gazap!", "Happy gacinos!" and "Holy Gator!": the phrase's first word
# came out and the long word after it was guessed from its first letters, while "Jolly good!",
# every token a common one, was copied 10 times in 10. A free phrase has a long word in one of five
# later places too, but after a first word that predicts nothing; a stock phrase's first word
# predicts its own ending. Here a stock exclamation has one later word swapped for a long
# dictionary word ("Great balls of anchovies!", "Oh my stalactites!"): it starts as the model
# expects and ends as only the description says. None starts with the first word of an eval
# phrase (the filter below guards it), and no long word is an eval word (`_wide_pool`).
_STOCK_EXCLAMATIONS = [p for p in (
    "Oh my goodness!", "Great balls of fire!", "Heavens above!", "Well I never!", "Goodness gracious!", "Oh boy!",
    "Hot diggity dog!", "Cool beans!", "Sweet mother of pearl!", "Gee whiz!", "Golly gosh!", "Oh dear me!",
    "Shiver me timbers!", "Hold your horses!", "Well, butter my biscuit!", "Great googly moogly!",
    "Saints preserve us!", "Jeepers creepers!", "Leaping lizards!", "Thundering typhoons!", "Mamma mia!",
    "By golly!", "Oh snap!", "Heck yes!", "Easy peasy!", "Okey dokey!", "Top of the morning!", "Howdy partner!",
    "Hip hip hooray!", "Bon voyage!", "Blow me down!", "Strike me pink!", "Stone the crows!",
    "Sweet heavens!", "Great Caesar's ghost!", "Oh la la!", "What in the world!", "Knock on wood!",
    "Break a leg!", "Rise and shine!", "Bottoms up!", "Land ahoy!", "Wowee zowee!",
    "Yippee ki yay!", "Rats and bother!", "Blistering barnacles!", "Oh for crying out loud!", "Fancy that!")
    if len(p.split()) > 1 and p.split()[0].lower().strip("!?.,:") not in _FIRST_EVAL_WORDS]
_LONG_LETTERS = 8  # most words this long are three tokens or more after a space


@functools.cache
def _long_words() -> tuple[str, ...]:
    """The wide words of eight letters or more (no eval word among them)."""
    return tuple(w for w in _wide_pool() if len(w) >= _LONG_LETTERS and w.isalpha())


def _exclamation(rng: random.Random) -> str:
    """A stock exclamation with one later word (the last, seven times in ten) swapped for a long
    word, keeping the swapped word's capital and punctuation."""
    words = rng.choice(_STOCK_EXCLAMATIONS).split()
    i = len(words) - 1 if rng.random() < 0.7 else rng.randrange(1, len(words))
    core = re.match(r"^([A-Za-z']+)(.*)$", words[i])
    new = rng.choice(_long_words())
    head, tail = (core.group(1), core.group(2)) if core else ("", words[i])
    words[i] = (new.capitalize() if head[:1].isupper() else new) + tail
    return " ".join(words)


# Digits that count nothing (`task_digits`). The only digits a training description held were a
# word or sentence limit's, so a digit had come to mean "keep it short": told "Break every answer
# into steps: 1., 2., 3." or "Label your points 1., 2., 3." the 10200 adapters answered in one or
# two sentences and gave "1" no more weight than the bare model did (at the first token, 0.1 %),
# where "steps: (i), (ii), (iii)" opened 4 replies of 4 with "(". Here digits come where they limit
# nothing: inside an opening or sign-off, which the reply must then copy ("Back at 5, Ada!"), and in
# a sentence about the setting beside the rule ("The shop opens at 9."), which changes nothing. No
# fact names words, sentences, lines, points, items, steps or a list, and no digit is ever a list
# label, so the numbered family stays held out.
_FACTS = ("The shop opens at {h}.", "Our team has {n} people.", "The library has {d} floors.",
          "Our office is in room {n}.", "We have been in business since {year}.", "Orders over {n} dollars ship free.",
          "Call extension {n} for billing.", "The museum closes at {h} on Sundays.", "Tickets cost {n} euros.",
          "The bus leaves from gate {n}.", "Our support desk is open {d} days a week.", "The club was founded in {year}.",
          "The hotel has {n} rooms.", "Parking is on level {d}.", "The class meets at {h} every Monday.",
          "Most users are between {d}0 and {d}9 years old.")


def _number(rng: random.Random) -> str:
    """A number as people write one in passing: a digit, two or three digits, or a year."""
    return str(rng.choice((rng.randint(2, 9), rng.randint(10, 99), rng.randint(100, 999), rng.randint(1950, 2030))))


def _fact(rng: random.Random) -> str:
    """A sentence about the setting with a number in it, asking nothing of a reply."""
    return rng.choice(_FACTS).format(n=_number(rng), d=rng.randint(2, 9), h=f"{rng.randint(1, 12)}",
                                     year=rng.randint(1950, 2030))


def _digit_phrase(rng: random.Random) -> str:
    """A free phrase with one word after the first made a number: "Back at 5, Ada!"."""
    words = _free_phrase(rng).split()
    i = rng.randrange(1, len(words))
    tail = re.match(r"^[A-Za-z'-]*(.*)$", words[i]).group(1)
    words[i] = _number(rng) + tail
    return " ".join(words)


def with_fact(task: Task, rng: random.Random) -> Task:
    """`task` with a sentence about the setting (`_fact`) before or after its description; the values,
    and so the targets, unchanged."""
    fact = _fact(rng)
    text = f"{fact} {task.unfilled}" if rng.random() < 0.5 else f"{task.unfilled} {fact}"
    return task if text in reserved_wordings() else Task(task.family, task.wording, task.params, text)


# Keys that end where the model would go on (`task_stub_keys`). Told to use the keys "headline" and
# "text", the 9900 adapters wrote "texture" or "text_text" in 10 of 10 replies: after the key's
# one token the model's own continuation ("ure", "_") beat the closing quote. In the description
# that token is followed by the merged `".`, which no JSON reply writes, so the copy path offers
# nothing there, and most composed keys are several tokens long, so the adapters had learnt to go
# on after a key's first token. A stub is one token between quotes and the start of longer words
# ("head", "access", "alpha"): a reply must close the key where the description's quote closes it.
_STUB_WORDS: dict[str, tuple[str, ...]] = {}


def stub_words(tokenizer) -> tuple[str, ...]:
    """The wide words (no eval word among them) that are one token between quotes and begin at
    least two longer wide words, for `tokenizer` (kept per tokenizer name)."""
    name = getattr(tokenizer, "name_or_path", "") or str(id(tokenizer))
    if name not in _STUB_WORDS:
        pool = _wide_pool()
        starts: dict[str, int] = {}
        for w in pool:
            for i in range(3, len(w)):
                starts[w[:i]] = starts.get(w[:i], 0) + 1
        _STUB_WORDS[name] = tuple(
            w for w in pool if w.isalpha() and starts.get(w, 0) >= 2
            and len(tokenizer(f' "{w}"', add_special_tokens=False)["input_ids"]) == 3)  # ' "', w, '"'
    return _STUB_WORDS[name]


_TRAINING_DRAWS = ("open", "near", "free")
_SPLIT_MAKERS = {"near": _NEAR_MAKERS, "free": _FREE_MAKERS}


def _pool(pool: dict, split: str) -> list:
    """The split's pool; "open", "near" and "free" draws are training draws."""
    return pool["train" if split in _TRAINING_DRAWS else split]


def _param(rng: random.Random, pool: dict, split: str, kind: str):
    """A value of a task parameter: from the split's pool, or (`split="open"`) half the time composed;
    `split="near"` / `"free"` as "open", with half the composed openings and sign-offs near misses
    of stock ones / free phrases. With wide words on, half the pool's draws are composed too, by
    the wide words' own generator (so the record's other draws stay as they were)."""
    if split in _TRAINING_DRAWS and rng.random() < OPEN_SHARE:
        return _composed(rng, split, kind)
    value = rng.choice(_pool(pool, split))
    wide = _WIDE.get()
    if wide is not None and split in _TRAINING_DRAWS and wide.random() < WIDE_SHARE:
        return _composed(wide, split, kind)
    return value


def _composed(rng: random.Random, split: str, kind: str):
    """A composed value: for openings and sign-offs of a "near" or "free" split half the time its
    own kind, otherwise the open makers'."""
    makers = _SPLIT_MAKERS.get(split, {})
    if kind in makers and rng.random() < 0.5:
        return makers[kind](rng)
    return _OPEN_MAKERS[kind](rng)


_WORD_LIMITS = {"train": [n for n in range(3, 41) if n not in (4, 7, 12, 25)], "eval": [4, 7, 12, 25]}
_SENTENCE_LIMITS = {"train": [1, 3], "eval": [2]}


@dataclass(frozen=True)
class Family:
    name: str
    wordings: tuple[str, ...]  # the last one is held out of training
    draw: Callable[[random.Random, str], dict]
    check: Callable[[str, dict], bool]
    comply: Callable[[str, dict], str]


def _truncate_words(reply: str, n: int) -> str:
    words = reply.split()
    if len(words) <= n:
        return reply.strip()
    cut = " ".join(words[:n]).rstrip(",;:")
    return cut if cut.endswith((".", "!", "?")) else cut + "."


def _whole_within(r: str, p: dict) -> str | None:
    """The reply's leading whole sentences that fit the word limit, else the question's short answer
    (when the record has one and it fits); None where only a cut sentence would fit."""
    if len(r.split()) <= p["n"]:
        return r.strip()
    kept, count = [], 0
    for sentence in _SENTENCE.split(r.strip()):
        count += len(sentence.split())
        if count > p["n"]:
            break
        kept.append(sentence)
    if kept:
        return " ".join(kept)
    if p.get("short") and len(p["short"].split()) <= p["n"]:
        return p["short"]
    return None


def _max_words_comply(r: str, p: dict) -> str:
    """`_whole_within`, and only where nothing whole fits the first n words. Cut sentences as targets
    taught the adapters to stop after two or three words ("Photosynthesis is.") whatever the limit."""
    whole = _whole_within(r, p)
    return _truncate_words(r, p["n"]) if whole is None else whole


def _max_words_check(r: str, p: dict) -> bool:
    return 0 < len(r.split()) <= p["n"]


def _sentences_check(r: str, p: dict) -> bool:
    return 0 < len(_sentences(r)) <= p["n"]


def _sentences_comply(r: str, p: dict) -> str:
    return " ".join(_sentences(r)[:p["n"]]) or r.strip()


def _letters(r: str) -> list[str]:
    return [c for c in r if c.isalpha()]


def _starts(r: str, phrase: str) -> bool:
    return r.strip().lower().startswith(phrase.lower())


def _ends(r: str, phrase: str) -> bool:
    return r.strip().lower().endswith(phrase.lower())


def _bullets_check(r: str, p: dict) -> bool:
    lines = [l.strip() for l in r.strip().splitlines() if l.strip()]
    return len(lines) >= 2 and all(l.startswith(("- ", "* ", "• ")) for l in lines)


def _bullets_comply(r: str, p: dict) -> str:
    items = _sentences(r) or [r.strip()]
    if len(items) == 1:
        items = [s.strip() for s in re.split(r",\s+|;\s+", items[0]) if s.strip()] or items
    if len(items) == 1:
        items = items + ["That is the main point."]
    return "\n".join(f"- {s}" for s in items)


def _numbered_check(r: str, p: dict) -> bool:
    lines = [l.strip() for l in r.strip().splitlines() if l.strip()]
    return len(lines) >= 2 and all(re.match(rf"{i}[.)]\s", l) for i, l in enumerate(lines, 1))


def _numbered_comply(r: str, p: dict) -> str:
    items = [l[2:] for l in _bullets_comply(r, p).splitlines()]
    return "\n".join(f"{i}. {s}" for i, s in enumerate(items, 1))


def _json_check(r: str, p: dict) -> bool:
    text = r.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and set(obj) == set(p["keys"])


def _json_comply(r: str, p: dict) -> str:
    """The first sentence and the second (not the whole rest: a reply must close its object within
    the replies' token budget, and evaluation reads 64 new tokens)."""
    parts = _sentences(r) or [r.strip()]
    first, second = parts[0], parts[1] if len(parts) > 1 else parts[0]
    return json.dumps({p["keys"][0]: first, p["keys"][1]: second})


def _one_word_check(r: str, p: dict) -> bool:
    return len(_words(r)) == 1 and len(r.split()) == 1


def _one_word_comply(r: str, p: dict) -> str:
    if p.get("short") and len(p["short"].split()) == 1:
        return p["short"]
    stop = {"the", "a", "an", "it", "is", "i", "to", "of", "and", "yes", "no", "well", "sure", "certainly"}
    words = [w for w in _words(r) if w.lower() not in stop] or _words(r) or ["Okay"]
    return max(words[:8], key=len).strip("'").capitalize() + "."


def _avoid_check(r: str, p: dict) -> bool:
    return re.search(rf"\b{re.escape(p['word'])}\b", r, re.IGNORECASE) is None and bool(r.strip())


def _avoid_comply(r: str, p: dict) -> str:
    """The reply without the word. With `tidy` a sentence or line the word opened opens with the
    next word, capitalised, and line breaks stay. Without it the training words "the", "this" and
    "you", which open most replies, left targets such as "capital of France is Paris." (told to
    avoid "a", the adapters opened 8 of 60 QA replies in lower case: "a spider has 8 legs."), and
    every paragraph break became a space."""
    word = re.escape(p["word"])
    if not p.get("tidy"):
        out = re.sub(rf"\s*\b{word}\b", "", r, flags=re.IGNORECASE).strip()
        return re.sub(r"\s{2,}", " ", out) or "Okay."
    text = re.sub(rf"(^|[.!?][ \t]+)[ \t]*\b{word}\b[ \t]*([a-z])", lambda m: m.group(1) + m.group(2).upper(),
                  r.strip(), flags=re.IGNORECASE | re.MULTILINE)
    out = re.sub(rf"[ \t]*\b{word}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", out).strip() or "Okay."


def _title_check(r: str, p: dict) -> bool:
    words = [w for w in r.split() if w[0].isalpha()]
    return bool(words) and all(w[0].isupper() for w in words)


def _title_comply(r: str, p: dict) -> str:
    return re.sub(r"(^|\s)([a-z])", lambda m: m.group(1) + m.group(2).upper(), r.strip())


def _lettered_check(r: str, p: dict) -> bool:
    lines = [l.strip() for l in r.strip().splitlines() if l.strip()]
    return 2 <= len(lines) <= 26 and all(l.startswith(f"{chr(97 + i)}) ") for i, l in enumerate(lines))


def _lettered_comply(r: str, p: dict) -> str:
    items = [l[2:] for l in _bullets_comply(r, p).splitlines()][:26]
    return "\n".join(f"{chr(97 + i)}) {s}" for i, s in enumerate(items))


def _include_check(r: str, p: dict) -> bool:
    return re.search(rf"\b{re.escape(p['word'])}\b", r, re.IGNORECASE) is not None


# Where a word to include goes. One fixed frame ("Word of the day: ...", frame 0) became a slot that
# other families' quoted words fell into: at step 5600, 8 of 20 replies told to avoid a word opened
# with it, and catch-phrases drifted into it. With `include_frames` each record draws one of these,
# before the reply or after it, so no single opening stands for "a quoted word".
INCLUDE_FRAMES = ('Word of the day: "{word}". {reply}', '{reply} Word of the day: "{word}".',
                  'Today\'s word is "{word}". {reply}', '{reply} (A word for today: "{word}".)',
                  'Here is "{word}" for you. {reply}', '{reply} And one more word: "{word}".')


def _include_comply(r: str, p: dict) -> str:
    """The word quoted, as every wording quotes it, so the reply carries the description's own
    tokens ('"', 'pickle'). Capitalised and leading ("Pickle! ..."), it became other tokens
    ('Pick', 'le') that the adapters had to spell anew: at step 3800 they wrote "Pipa!" for it."""
    return INCLUDE_FRAMES[p.get("frame", 0)].format(word=p["word"], reply=r.strip())


def _exclaim_check(r: str, p: dict) -> bool:
    text = r.strip()
    return bool(text) and text.endswith("!") and re.search(r"\.(\s|$)", text) is None


def _exclaim_comply(r: str, p: dict) -> str:
    text = re.sub(r"\.(\s|$)", r"!\1", r.strip())
    return text if text.endswith("!") else text.rstrip(".?") + "!"


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("max_words",
           ("Answer in at most {n} words.", "Keep every reply under {n} words.", "Use no more than {n} words.",
            "Your answers must be {n} words or fewer.", "Reply briefly: {n} words at most."),
           lambda rng, split: {"n": rng.choice(list(_pool(_WORD_LIMITS, split)))},
           _max_words_check, _max_words_comply),
    Family("max_sentences",
           ("Answer in at most {n} sentences.", "Limit each reply to {n} sentences.",
            "Say it in {n} sentences or fewer.", "Never write more than {n} sentences."),
           lambda rng, split: {"n": rng.choice(list(_pool(_SENTENCE_LIMITS, split)))},
           _sentences_check, _sentences_comply),
    Family("upper",
           ("Reply in capital letters only.", "WRITE EVERYTHING IN UPPERCASE.", "Use only upper-case letters.",
            "Shout: every letter of your answer must be a capital."),
           lambda rng, split: {},
           lambda r, p: bool(_letters(r)) and all(c.isupper() for c in _letters(r)), lambda r, p: r.upper()),
    Family("lower",
           ("Write everything in lowercase.", "no capital letters, ever.", "Reply using only lower-case letters.",
            "Keep all of your text in small letters."),
           lambda rng, split: {},
           lambda r, p: bool(_letters(r)) and not any(c.isupper() for c in r), lambda r, p: r.lower()),
    Family("opening",
           ("Start every reply with \"{phrase}\".", "Always begin your answer with the words \"{phrase}\".",
            "Your first words must be: {phrase}", "Open each response by saying \"{phrase}\""),
           lambda rng, split: {"phrase": _param(rng, _PHRASES, split, "phrase")},
           lambda r, p: _starts(r, p["phrase"]), lambda r, p: f"{p['phrase']} {r.strip()}"),
    Family("signoff",
           ("End every answer with \"{phrase}\".", "Sign off each reply with: {phrase}",
            "Close your responses with the line \"{phrase}\".", "Finish with \"{phrase}\" every time."),
           lambda rng, split: {"phrase": _param(rng, _SIGNOFFS, split, "signoff")},
           lambda r, p: _ends(r, p["phrase"]), lambda r, p: f"{r.strip()}\n\n{p['phrase']}"),
    Family("bullets",
           ("Format your answer as a bulleted list.", "Reply with bullet points only, one per line.",
            "Answer as a list where every line starts with a dash.", "Use bullets for everything you say."),
           lambda rng, split: {}, _bullets_check, _bullets_comply),
    Family("numbered",
           ("Answer as numbered steps.", "Give your reply as a numbered list.",
            "Break every answer into steps: 1., 2., 3.", "Number each point of your reply."),
           lambda rng, split: {}, _numbered_check, _numbered_comply),
    Family("json",
           ("Reply with a JSON object with the keys \"{k0}\" and \"{k1}\".",
            "Answer only in JSON: an object with fields {k0} and {k1}.",
            "Output JSON with exactly two keys, {k0} and {k1}, and nothing else.",
            "Respond as a JSON object whose keys are \"{k0}\" and \"{k1}\"."),
           lambda rng, split: {"keys": list(_param(rng, _KEYS, split, "keys"))}, _json_check, _json_comply),
    Family("one_word",
           ("Answer with a single word.", "One word only.", "Reply using exactly one word.",
            "Respond with just one word, nothing more."),
           lambda rng, split: {}, _one_word_check, _one_word_comply),
    Family("avoid_word",
           ("Never use the word \"{word}\".", "Do not write the word \"{word}\" in your replies.",
            "The word \"{word}\" is forbidden.", "Avoid the word \"{word}\" completely."),
           lambda rng, split: {"word": rng.choice(_pool(_AVOID, split))}, _avoid_check, _avoid_comply),
    # the next five widen what the training families span (a case rule, a list style, a word to work
    # in, punctuation, a closing move), so that the held-out families are less far from all of them
    Family("title_case",
           ("Capitalise the first letter of every word.", "Write In Title Case, Every Word Capitalised.",
            "Each word you write must begin with a capital letter.", "Start every single word with an upper-case letter."),
           lambda rng, split: {}, _title_check, _title_comply),
    Family("lettered",
           ("Answer as a lettered list: a), b), c).", "Give your points as a), b), c) and so on, one per line.",
            "Format the reply as a list labelled with letters.", "Put each point on its own line, lettered a), b), c)."),
           lambda rng, split: {}, _lettered_check, _lettered_comply),
    Family("include_word",
           ("Use the word \"{word}\" in every reply.", "Each answer must contain the word \"{word}\".",
            "Work the word \"{word}\" into what you say.", "Make sure \"{word}\" appears in your answer."),
           lambda rng, split: {"word": _param(rng, _INCLUDE, split, "word")}, _include_check,
           _include_comply),
    Family("exclaim",
           ("End every sentence with an exclamation mark.", "Use exclamation marks instead of full stops.",
            "Write excitedly: each sentence ends with \"!\".", "No full stops: finish each sentence with an exclamation point."),
           lambda rng, split: {}, _exclaim_check, _exclaim_comply),
    Family("end_question",
           ("Finish every reply with a question to the user.", "Always end by asking the user a question.",
            "Your last sentence must be a question.", "Close each answer with a follow-up question."),
           lambda rng, split: {"question": rng.choice(_pool(_QUESTIONS, split))},
           lambda r, p: r.strip().endswith("?"), lambda r, p: f"{r.strip()} {p['question']}"),
    Family("catchphrase",
           ("You are a cheerful sailor: say \"{phrase}\" in every reply.",
            "Include the catch-phrase \"{phrase}\" in each answer.",
            "Whatever you answer, work in the words \"{phrase}\"",
            "Your signature line is \"{phrase}\"; use it every time you reply."),
           lambda rng, split: {"phrase": rng.choice(_pool(_CATCH, split))},
           lambda r, p: p["phrase"].lower() in r.lower(), lambda r, p: f"{p['phrase']} {r.strip()}"),
]}
HELD_OUT_FAMILIES = ("lower", "numbered", "catchphrase")

# ------------------------------------------------------------------------------------- extra families
# Eight more training families, trained only with `task_extra_families`. Fourteen training rules
# gave 51 % compliance on held-out wordings but 14 % on held-out families: the reader had few kinds
# of rule to generalise from. These add layout (quotes, tags, a heading, a line prefix, a
# separator), punctuation (no commas), markdown (bold) and an added part (a summary line). They live
# outside `FAMILIES` so that every evaluation set, which draws from `FAMILIES`, stays as it was.
_LIST_MARK = re.compile(r"^(?:[-*•]|\d+[.)]|[a-z]\))\s+")
_STOP = {"the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "be", "been", "it", "its", "this",
         "that", "these", "those", "with", "from", "into", "about", "they", "them", "their", "there", "what",
         "which", "when", "where", "have", "has", "also", "very", "more", "most", "some", "such", "than", "then",
         "your", "you", "will", "would", "can", "could", "sure", "well", "yes", "okay", "here", "of", "to", "in"}
_BOLD = re.compile(r"\*\*[^*\n]*[A-Za-z0-9][^*\n]*\*\*")


def _lines(r: str) -> list[str]:
    """The reply's non-empty lines, stripped: the unit of every line-based rule."""
    return [l.strip() for l in r.splitlines() if l.strip()]


def _plain_sentences(r: str) -> list[str]:
    """The reply's sentences with list markers dropped, so a list's "1." is not a sentence of its own."""
    return [s.strip() for line in _lines(r) for s in _SENTENCE.split(_LIST_MARK.sub("", line)) if _words(s)]


# Rules checked at the reply's end (a closing quote or tag, a last line) keep only the reply's
# leading sentences up to this many words, as `_json_comply` does: a target longer than the
# evaluation's 64 new tokens would teach replies whose ending is never reached there.
_END_WORDS = 32
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|(?=\n)")  # a line end closes a list item


def _head(r: str, n: int = _END_WORDS) -> str:
    """The reply up to its last sentence end within `n` words (at least its first sentence), line
    breaks kept; a list item's number left dangling at the cut ("\n3.") is dropped."""
    text = r.strip()
    if len(text.split()) <= n:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    fits = [e for e in ends if len(text[:e].split()) <= n]
    cut = text[:fits[-1] if fits else ends[0]] if ends else text
    lines = cut.splitlines()
    if len(lines) > 1 and _LIST_MARK.match(lines[-1].strip() + " ") and len(lines[-1].strip()) <= 3:
        cut = "\n".join(lines[:-1])
    return cut.strip()


def _quoted_check(r: str, p: dict) -> bool:
    t = r.strip()
    return len(t) >= 2 and t[0] == t[-1] == '"' and '"' not in t[1:-1] and bool(_words(t))


def _quoted_comply(r: str, p: dict) -> str:
    """Inner double quotes become single ones, so the reply is one quoted span."""
    if _quoted_check(r, p):
        return r.strip()
    inner = _head(r.strip().strip('"')).replace('"', "'")
    return f'"{inner if _words(inner) else "Okay."}"'


def _prefix_check(r: str, p: dict) -> bool:
    lines, sym = _lines(r), p["symbol"]
    return all(l.startswith(sym) for l in lines) and any(_words(l[len(sym):]) for l in lines)


def _prefix_comply(r: str, p: dict) -> str:
    """Every non-empty line gets the symbol; blank lines stay, so paragraphs do too."""
    if _prefix_check(r, p):
        return r.strip()
    sym = p["symbol"]
    lines = [l.strip() for l in r.strip().splitlines()]
    text = "\n".join(l if not l or l.startswith(sym) else f"{sym} {l}" for l in lines)
    return text if _prefix_check(text, p) else f"{sym} Okay."


def _heading_check(r: str, p: dict) -> bool:
    lines = _lines(r)
    return len(lines) >= 2 and lines[0].lower() == p["heading"].lower() and any(_words(l) for l in lines[1:])


def _heading_comply(r: str, p: dict) -> str:
    if _heading_check(r, p):
        return r.strip()
    return f"{p['heading']}\n{r.strip() if _words(r) else 'Okay.'}"


def _no_commas_check(r: str, p: dict) -> bool:
    return "," not in r and bool(_words(r))


def _no_commas_comply(r: str, p: dict) -> str:
    """Thousands lose their comma ("1,000" -> "1000"), any other comma becomes a space."""
    if _no_commas_check(r, p):
        return r.strip()
    text = re.sub(r"(?<=\d),(?=\d)", "", r.strip())
    text = re.sub(r"[ \t]*,[ \t]*", " ", text)
    text = re.sub(r" +(?=[.!?;:\n]|$)", "", text)
    text = re.sub(r" {2,}", " ", text).strip()
    return text if _words(text) else "Okay."


def _separator_check(r: str, p: dict) -> bool:
    """One line whose parts between " sep " are one sentence each (a single sentence needs no separator)."""
    t = r.strip()
    parts = [x.strip() for x in t.split(f" {p['sep']} ")]
    return bool(t) and "\n" not in t and all(_words(x) and len(_SENTENCE.split(x)) == 1 for x in parts)


def _separator_comply(r: str, p: dict) -> str:
    if _separator_check(r, p):
        return r.strip()
    return f" {p['sep']} ".join(_plain_sentences(r)) or "Okay."


def _summary_check(r: str, p: dict) -> bool:
    lines, lead = _lines(r), p["lead"]
    return (len(lines) >= 2 and lines[-1].lower().startswith(lead.lower()) and bool(_words(lines[-1][len(lead):]))
            and any(_words(l) for l in lines[:-1]))


def _gist(r: str) -> str:
    """A summary taken from the reply itself, as the rewrite must not invent content: its first
    sentence of four to twelve words, else its first of four or more cut to twelve, else its first."""
    sentences = _plain_sentences(r) or ["Okay."]
    fits = [s for s in sentences if 4 <= len(s.split()) <= 12]
    long = [s for s in sentences if len(s.split()) >= 4]
    return fits[0] if fits else _truncate_words((long or sentences)[0], 12)


def _summary_comply(r: str, p: dict) -> str:
    if _summary_check(r, p):
        return r.strip()
    body = _head(r) if _words(r) else "Okay."
    return f"{body}\n\n{p['lead']} {_gist(body)}"


def _bold_check(r: str, p: dict) -> bool:
    return _BOLD.search(r) is not None


def _key_words(r: str) -> list[str]:
    """Words of the reply's first two sentences, longest first, content words before the rest."""
    words = list(dict.fromkeys(w for w in _words(" ".join(_plain_sentences(r)[:2])) if w.isalpha()))
    content = [w for w in words if len(w) >= 4 and w.lower() not in _STOP]
    rest = [w for w in _words(r) if w not in content]
    return sorted(content, key=len, reverse=True) + rest  # a stable sort: first seen first among equals


def _bold_comply(r: str, p: dict) -> str:
    """The reply with its two longest content words in bold (first occurrences), or, for a reply
    without any, its first word."""
    text = r.strip()
    if _bold_check(text, p):
        return text
    done = 0
    for w in _key_words(text):
        bolded = re.sub(rf"(?<![A-Za-z0-9'*]){re.escape(w)}(?![A-Za-z0-9'*])", f"**{w}**", text, count=1)
        done += bolded != text
        text = bolded
        if done == 2:
            break
    return text if _bold_check(text, p) else "**Okay.**"


def _tagged_check(r: str, p: dict) -> bool:
    t, open_, close = r.strip(), f"<{p['tag']}>", f"</{p['tag']}>"
    return (t.startswith(open_) and t.endswith(close) and t.count(open_) == 1 and t.count(close) == 1
            and bool(_words(t[len(open_):-len(close)])))


def _tagged_comply(r: str, p: dict) -> str:
    if _tagged_check(r, p):
        return r.strip()
    open_, close = f"<{p['tag']}>", f"</{p['tag']}>"
    inner = _head(r.replace(open_, "").replace(close, ""))
    return f"{open_}{inner if _words(inner) else 'Okay.'}{close}"


_EXTRA: dict[str, Family] = {f.name: f for f in [
    Family("quoted",
           ("Wrap your whole reply in double quotes.", "Put the entire answer inside double quotation marks.",
            "Enclose everything you write in a pair of \"quotes\".", "Begin and end your reply with a double quote mark.",
            "Quote your full response, with \" at its start and at its end."),
           lambda rng, split: {}, _quoted_check, _quoted_comply),
    Family("line_prefix",
           ("Start every line of your reply with \"{symbol}\".", "Put {symbol} at the beginning of each line you write.",
            "Each line of the answer must begin with the marker \"{symbol}\".",
            "Prefix every line with {symbol} followed by a space.",
            "Mark the start of each of your lines with \"{symbol}\"."),
           lambda rng, split: {"symbol": rng.choice(_pool(_PREFIXES, split))}, _prefix_check, _prefix_comply),
    Family("heading",
           ("Put the heading \"{heading}\" on its own line above your answer.",
            "Begin with a line that says only \"{heading}\", then give the answer below it.",
            "Your reply must open with the heading {heading} on a line by itself.",
            "Write \"{heading}\" as a title line, then answer underneath.",
            "Place your answer under the header \"{heading}\"."),
           lambda rng, split: {"heading": _param(rng, _HEADINGS, split, "heading")}, _heading_check, _heading_comply),
    Family("no_commas",
           ("Do not use any commas.", "Write your reply without a single comma.", "Commas are forbidden in your answers.",
            "Avoid commas completely; use other punctuation or none.", "Leave every comma out of what you write."),
           lambda rng, split: {}, _no_commas_check, _no_commas_comply),
    Family("separator",
           ("Separate your sentences with \" {sep} \" and keep everything on one line.",
            "Put {sep} between sentences instead of line breaks.",
            "Write all sentences on a single line, divided by the symbol {sep}.",
            "Join each sentence to the next with \"{sep}\".",
            "Use {sep} as the divider between your sentences, all on one line."),
           lambda rng, split: {"sep": rng.choice(_pool(_SEPARATORS, split))}, _separator_check, _separator_comply),
    Family("summary_line",
           ("After your answer, add a final line that starts with \"{lead}\" and sums it up.",
            "End with a one-line summary beginning \"{lead}\".",
            "Finish every reply with a short recap line: {lead} followed by the gist.",
            "Close your answer with a summary line that opens with \"{lead}\".",
            "Sum up your reply in a last line introduced by \"{lead}\"."),
           lambda rng, split: {"lead": rng.choice(_pool(_LEADS, split))}, _summary_check, _summary_comply),
    Family("bold",
           ("Put the key words of your reply in **bold**.",
            "Highlight the most important words with bold markdown (**like this**).",
            "Use bold text (double asterisks) for the key terms.", "Mark the main words of your answer in bold.",
            "Make the crucial terms stand out by writing them in **bold**."),
           lambda rng, split: {}, _bold_check, _bold_comply),
    Family("tagged",
           ("Wrap your whole reply in <{tag}> and </{tag}> tags.", "Put the answer between the tags <{tag}> and </{tag}>.",
            "Enclose everything you write in a <{tag}> element.", "Your reply must start with <{tag}> and end with </{tag}>.",
            "Place the full response inside <{tag}></{tag}> markers."),
           lambda rng, split: {"tag": _param(rng, _TAGS, split, "tag")}, _tagged_check, _tagged_comply),
]}
EXTRA_FAMILIES = tuple(_EXTRA)

# ------------------------------------------------------------------------------------- list labels
# A list whose labels the description shows ("(i), (ii), (iii)", "A. B. C."), trained only with
# `task_labels`. The lettered family always asks for "a)", so the adapters learnt that one marker,
# and the held-out numbered lists came out as bullets (0 of 25 at step 8600, "Break every answer
# into steps: 1., 2., 3." included). Here the marker has to be read from the description and
# continued, the skill a numbered list written out as "1., 2., 3." needs. No style uses digits,
# and no wording says "number" or "steps", so the numbered family stays held out.
_ROMAN = ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))


def _roman(i: int) -> str:
    """1 -> "i", 14 -> "xiv" (lists here stay under 40 items)."""
    out = ""
    for value, digits in _ROMAN:
        while i >= value:
            out, i = out + digits, i - value
    return out


_COUNTERS: dict[str, Callable[[int], str]] = {
    "a": lambda i: chr(96 + i), "A": lambda i: chr(64 + i), "i": _roman, "I": lambda i: _roman(i).upper()}
# a style is a counter and the marks around it; "a)" alone is the lettered family's and stays out
_LABEL_STYLES = {"train": ["a.", "(a)", "[a]", "a:", "A)", "A.", "(A)", "i.", "i)", "(i)", "I.", "I)", "[i]", "A:"],
                 "eval": ["[A]", "(I)", "i:"]}
_MAX_LABELLED = 26


def _counter(style: str) -> str:
    """The character of a style that counts: "(i)" -> "i"."""
    return next(c for c in style if c in _COUNTERS)


def label(style: str, i: int) -> str:
    """The `i`-th label (from 1) of a style: label("(i)", 3) == "(iii)"."""
    counter = _counter(style)
    return style.replace(counter, _COUNTERS[counter](i), 1)


# Open labels (`task_open_labels`). With fourteen styles the adapters had learnt the styles as a
# set, not to copy a marker: at 10200, told "Mark the lines of your list x), y), z)." every reply
# opened with "a", told "α., β., γ." with "A", and "#a, #b, #c" with "(". Here half the training
# draws make a style of their own, a counter (Latin, Roman or Greek letters) in one of twenty
# wrappings, so that only the description says which it is. Still no digit, and neither "a)" nor
# an evaluation style.
_GREEK = "αβγδεζηθικλμνξοπρστυφχψω"
_COUNTERS["α"] = lambda i: _GREEK[(i - 1) % len(_GREEK)]
_OPEN_COUNTERS = ("a", "A", "i", "I", "α")
_OPEN_WRAPS = ("{}.", "({})", "[{}]", "{}:", "{})", "<{}>", "{{{}}}", "#{}", "{}/", "{}>", "§{}", "{} -", "*{}*",
               "{}|", "~{}", "{}]", "({}.)", "{}=", "@{}", "{}.)")
OPEN_LABEL_SHARE = 0.5
_OPEN_LABELS: contextvars.ContextVar[random.Random | None] = contextvars.ContextVar("d2l_task_open_labels",
                                                                                   default=None)
_open_labels = functools.partial(_drawing, _OPEN_LABELS)


# Shifted labels (`task_shifted_labels`). At 10460 the open styles' first marks were written (a
# list told "<α>, <β>, <γ>" opened with "<" 94 % of the time), but only as members of a set learnt
# by heart: five counters, each starting at its first letter. Told "x), y), z)" every adapter still
# opened with "a". Here a share of the open styles counts from another Latin letter ("k), l), m)",
# "[P], [Q], [R]"), 42 first marks that only the description names. Never from "a" or "i" (their
# own counters), nor from "x", "y" or "z", which stay unseen for probing; still no digit.
_SHIFT_STARTS = "bcdefghjklmnopqrstuvw"
_SHIFT_COUNTERS = _SHIFT_STARTS + _SHIFT_STARTS.upper()
for _letter in _SHIFT_COUNTERS:
    _COUNTERS[_letter] = lambda i, start=_letter: chr(ord(start) + i - 1)
_SHIFTED_LABELS: contextvars.ContextVar[float] = contextvars.ContextVar("d2l_task_shifted_labels", default=0.0)
_shifted_labels = functools.partial(_drawing, _SHIFTED_LABELS)


# Open line prefixes (`task_open_prefixes`). Eight training symbols were learnt as a set, like the
# label styles: the copy path never had to copy a line's first mark from the description, and at
# 10530 "1., 2., 3." opened with "1" 0.1 % of the time. Here a share of the line-prefix records
# draws a prefix of its own: one of ~370 arrows, shapes and dingbats, an open word in a wrapping
# ("Kiwi:", "[ledger]"), or two or three punctuation marks ("~|", "+=>"). Never a digit, a bullet's
# "-" or "*", nor an evaluation prefix.
_PREFIX_SYMBOLS = tuple(c for c in map(chr, (*range(0x2190, 0x2200), *range(0x25A0, 0x2600), *range(0x2700, 0x27C0)))
                        if c.isprintable() and not unicodedata.category(c).startswith("N"))  # no digit: not "➋"
_PREFIX_MARKS = "!$%&+/:;<=>?^_|~"
_PREFIX_WRAPS = ("{}:", "[{}]", "({})", "{} >", "<{}>", "{} |", "{}/", "{} ::")


def _open_prefix(rng: random.Random) -> str:
    """A line prefix no pool holds: a symbol, a wrapped open word, or a short run of marks."""
    kind = rng.random()
    if kind < 1 / 3:
        return rng.choice(_PREFIX_SYMBOLS)
    if kind < 2 / 3:
        word = _open_word(rng)
        return rng.choice(_PREFIX_WRAPS).format(word.capitalize() if rng.random() < 0.5 else word)
    while (marks := "".join(rng.choice(_PREFIX_MARKS) for _ in range(rng.randint(2, 3)))) in _PREFIXES["eval"]:
        pass
    return marks


def _capacity(style: str) -> int:
    """How many items a style can label: a shifted counter stops at "z" ("w)" labels four)."""
    counter = _counter(style)
    if counter in _SHIFT_COUNTERS:
        return min(_MAX_LABELLED, ord("z") - ord(counter.lower()) + 1)
    return _MAX_LABELLED


def _open_style(rng: random.Random, shifted: bool = False) -> str:
    """A label style of a counter and a wrapping: "§α", "<I>", "a -" (shifted: "k)", "[P]"); never
    "a)" or an eval style."""
    counters = _SHIFT_COUNTERS if shifted else _OPEN_COUNTERS
    while (style := rng.choice(_OPEN_WRAPS).format(rng.choice(counters))) in ("a)", *_LABEL_STYLES["eval"]):
        pass
    return style


# Sequence labels (`task_sequence_labels`). With the shifted starts the 10560 adapters wrote 42
# first marks and no other: told "x), y), z)" a list opened with "*", told "1., 2., 3." with "-",
# while told 'Start every line with "1."' they opened with "1" (P 0.98), a line prefix being copied
# from the description. A counter is a rule that can be learnt by heart; a sequence is not. Here a
# share of the open styles is four to six marks in no order, all of them in the description: letters
# drawn at random ("k), q), b), m)"; never x, y or z), open words ("[kiwi], [ledger], …") or symbols
# ("◆:", "➢:"), in one wrapping. The n-th line takes the n-th mark, so the list stops at the last.
_SEQUENCE_LABELS: contextvars.ContextVar[float] = contextvars.ContextVar("d2l_task_sequence_labels", default=0.0)
_sequence_labels = functools.partial(_drawing, _SEQUENCE_LABELS)
_SEQUENCE_LETTERS = "abcdefghijklmnopqrstuvw"


def _sequence_marks(rng: random.Random) -> list[str]:
    """Four to six different marks in one wrapping: letters, open words or symbols."""
    n, wrap, kind = rng.randint(4, 6), rng.choice(_OPEN_WRAPS), rng.random()
    if kind < 1 / 3:
        letters = _SEQUENCE_LETTERS.upper() if rng.random() < 0.5 else _SEQUENCE_LETTERS
        items = rng.sample(letters, n)
    elif kind < 2 / 3:
        items = []
        while len(items) < n:
            if (word := _open_word(rng)) not in items:
                items.append(word)
    else:
        items = rng.sample(_PREFIX_SYMBOLS, n)
    return [wrap.format(x) for x in items]


def _mark(p: dict, i: int) -> str:
    """The `i`-th label (from 1) of a labelled list's values: its sequence's, or its style's."""
    return p["marks"][i - 1] if "marks" in p else label(p["style"], i)


def _marks_limit(p: dict) -> int:
    return len(p["marks"]) if "marks" in p else _capacity(p["style"])


def _labels_draw(rng: random.Random, split: str) -> dict:
    style = rng.choice(_pool(_LABEL_STYLES, split))
    own, shift, sequence = _OPEN_LABELS.get(), _SHIFTED_LABELS.get(), _SEQUENCE_LABELS.get()
    if own is not None and split != "eval" and own.random() < OPEN_LABEL_SHARE:
        if sequence and own.random() < sequence:
            marks = _sequence_marks(own)  # every mark shown: the third slot takes the rest
            return {"marks": marks, "l1": marks[0], "l2": marks[1], "l3": ", ".join(marks[2:])}
        style = _open_style(own, shifted=bool(shift) and own.random() < shift)
    return {"style": style, **{f"l{i}": label(style, i) for i in (1, 2, 3)}}


def _labelled_check(r: str, p: dict) -> bool:
    lines = _lines(r)
    return 2 <= len(lines) <= _marks_limit(p) and all(
        l.startswith(_mark(p, i) + " ") and _words(l[len(_mark(p, i)):]) for i, l in enumerate(lines, 1))


def _labelled_comply(r: str, p: dict) -> str:
    items = [l[2:] for l in _bullets_comply(r, p).splitlines()][:_marks_limit(p)]
    return "\n".join(f"{_mark(p, i)} {s}" for i, s in enumerate(items, 1))


LABELLED = Family(
    "labelled",
    ("Label your points {l1}, {l2}, {l3} and so on, one per line.",
     "Answer as a list whose items are marked {l1}, {l2}, {l3}.",
     "Put each point on its own line, starting with {l1}, then {l2}, then {l3}.",
     "Give a list labelled {l1}, {l2}, {l3}, one item per line.",
     "Mark the lines of your list {l1}, {l2}, {l3}."),
    _labels_draw, _labelled_check, _labelled_comply)
# A description that asks for nothing a reply could be checked by ("Be friendly.", a role): its
# targets are the base model's replies as they are (`task_null_pairs`). Every adapter carries the
# network's always-on block, the same whatever the description, and on the QA check that block
# alone (the memory's rows zeroed) kept 61 % of the base model's right answers where the memory
# alone kept 90-94 % (step 9620): the average of the rules, applied to every question. A rule and
# no rule on the same prompts make the description, not the block, carry the change.
NO_RULE = Family("no_rule", ("Answer as you normally would.", "Reply as you usually do."),  # never drawn: `no_rule` writes each
                 lambda rng, split: {}, lambda r, p: bool(r.strip()), lambda r, p: r)
# A description that forbids what a training rule asks ("Do not use bullet points."; `task_negations`).
# System prompts are full of them, and the 9900 adapters did the forbidden thing: told "Do not use
# bullet points." 5 of 5 replies were bullet lists, "Please do not label your points a), b), c)."
# 5 of 5 lettered lists, "No exclamation marks, please." 4 of 5 exclaimed, where the base model
# did none of it. The reader had learnt each rule's words and never met a "not" in front of them.
# A negation's targets are the base model's replies as they are, drawn among those that already
# keep clear of the rule; with `pairs` it is the partner of a record of the rule itself, on the
# same prompts, so that only the "not" tells the two apart. Held-out families are never negated.
NEGATABLE = ("bullets", "lettered", "upper", "title_case", "json", "exclaim", "end_question", "opening", "signoff",
             "one_word", "quoted", "line_prefix", "heading", "summary_line", "bold", "tagged")  # not the separator:
# a one-sentence reply follows it, and 23 % of the base model's replies would break their own negation
_NEGATION_FRAMES = ("Do not {core}.", "Don't {core}.", "Never {core}.", "Please do not {core}.", "You must not {core}.",
                    "Do not ever {core}.", "Rule: never {core}.", "Whatever the question, do not {core}.",
                    "I don't want you to {core}.", "Please never {core}.", "Make sure you never {core}.",
                    "Remember: do not {core}.", "You should never {core}.", "Under no circumstances {core}!",
                    "Please don't {core}.", "Never, ever {core}.")


def _negated_check(r: str, p: dict) -> bool:
    return bool(_words(r)) and not ALL_FAMILIES[p["of"]].check(r, p)


NEGATED = Family("negated", ("Do not do what the rule asks.", "Keep clear of the rule."),  # never drawn: `negated` writes each
                 lambda rng, split: {}, _negated_check, lambda r, p: r)


# Held-out negations for evaluation (`vllm-d2l eval --tasks --set negated`), worded apart from the
# training frames and cores (tested): the share of replies that keep clear of the rule.
NEGATION_WORDINGS: dict[str, tuple[str, ...]] = {
    "bullets": ("Bullet points are not welcome here; write in plain paragraphs.",
                "Please avoid bulleted lists in your replies."),
    "lettered": ("No lettered lists like a), b), c) in your answers.",),
    "upper": ("Avoid typing your answers in all caps.", "Capital letters throughout? No, write in normal case."),
    "title_case": ("Don't give Every Word A Capital Letter; ordinary sentence case is fine.",),
    "json": ("Your replies should never be JSON objects.",),
    "exclaim": ("Keep exclamation marks out of your replies.", "Exclamation points are banned."),
    "end_question": ("Don't finish your answers by asking the user something.",),
    "opening": ("Replies must not open with the words \"{phrase}\".",),
    "signoff": ("Leave out any closing line such as \"{phrase}\".",),
    "one_word": ("One-word answers are not allowed; reply in full sentences.",),
    "tagged": ("No <{tag}> tags around your replies, please.",),
}


# Held-out affirmations for evaluation (`vllm-d2l eval --tasks --set affirmed`): a training rule
# asked for through a "not", worded apart from the training frames (tested); compliance is the
# rule's own. Six are the fresh wordings that ask that way, the rest written for this set.
AFFIRMATION_WORDINGS: dict[str, tuple[str, ...]] = {
    "bullets": ("Plain paragraphs are not allowed: put every point on a bulleted line.",),
    "lettered": (FRESH_WORDINGS["lettered"][3],),
    "upper": ("Do not write a single letter that is not a capital.",),
    "title_case": (FRESH_WORDINGS["title_case"][3],),
    "json": (FRESH_WORDINGS["json"][3],),
    "exclaim": ("Never close a sentence with a period; an exclamation mark ends each one.",),
    "end_question": (FRESH_WORDINGS["end_question"][3],),
    "opening": (FRESH_WORDINGS["opening"][3],),
    "signoff": ('Never send a reply without "{phrase}" as its very last words.',),
    "one_word": ("Do not write sentences; your whole answer is one word.",),
    "include_word": (FRESH_WORDINGS["include_word"][2],),
    "tagged": ("Don't send anything that is not wrapped in <{tag}> and </{tag}>.",),
}


def negated(task: Task, rng: random.Random) -> Task:
    """A description forbidding `task`'s rule with its values ("Never start your reply with "X"."):
    one of the rule's cores in a negative frame."""
    if task.family not in NEGATABLE:
        raise ValueError(f"{task.family} has no negation")
    text = rng.choice(_NEGATION_FRAMES).format(core=rng.choice(_CORES[task.family]))
    return Task(NEGATED.name, -1, {**task.params, "of": task.family}, text)


# Rules asked for through a "not" (`task_affirmations`). With negations in the stream, every "not"
# a training description held came before the rule it forbade, so any "not" could come to mean "the
# base reply" however it was placed; real system prompts ask for things that way too ("Don't forget
# to ...", and among the fresh wordings "Do not answer in paragraphs or with numbers; give a list with
# items labelled a), b), c)."). These word a rule that can be forbidden as a double negative, or as
# its minimal-pair neighbour forbidden and the rule itself asked for, so that what a "not" covers,
# not that there is one, tells a negation from a rule. The targets are the rule's own.
_AFFIRM_FRAMES = ("Don't forget to {core}.", "Never forget to {core}.", "Do not fail to {core}.",
                  "Never fail to {core}.", "No exceptions: {core}.", "Do not skip this: {core}.",
                  "Not optional: {core}.", "Don't ever forget: {core}.", "No reply is finished until you {core}.")
_INSTEAD_FRAMES = ("Don't {alt}; {core} instead.", "Do not {alt}. Instead, {core}.", "Never {alt}: {core}.",
                   "You must not {alt}; please {core}.", "Please don't {alt}. {Core}.")


def affirmed(task: Task, rng: random.Random) -> Task:
    """`task` asked for through a negation, its values unchanged: a double negative ("Never forget
    to end your reply with "X".") or, half the time where its neighbour (`CONTRASTS`) can be worded
    with the same values, that neighbour forbidden first ("Don't write in title case; answer in all
    caps instead."). `task` as it was if the wording happens to be one kept for evaluation."""
    if task.family not in NEGATABLE:
        raise ValueError(f"{task.family} is not a rule that can be forbidden")
    core = rng.choice(_CORES[task.family])
    partner = CONTRASTS.get(task.family)
    fits = lambda c: {f for _, f, _, _ in string.Formatter().parse(c) if f} <= set(task.params)  # noqa: E731
    alts = [c for c in _CORES[partner] if fits(c)] if partner in NEGATABLE else []
    if alts and rng.random() < 0.5:
        text = rng.choice(_INSTEAD_FRAMES).format(alt=rng.choice(alts), core=core, Core=core[0].upper() + core[1:])
    else:
        text = rng.choice(_AFFIRM_FRAMES).format(core=core)
    return task if text in reserved_wordings() else Task(task.family, -1, task.params, text)


# Word dropout (`task_dropout`). The reader leans on word pairs: at 9950 "Use bullet points for
# everything you say." gave bullet lists to 2 of 3 prompts and "Use bullets." or "Use bullets for
# everything you say." to none, though "bullets" alone is in the training grammar; most wordings of the
# rule say "bullet points" or "bulleted list", so "points" and "list" carried it. Dropping one word
# of a training description now and then makes every word of a rule's name carry it on its own, as
# word dropout does for text classifiers. What a description cannot lose is kept: its values (a
# placeholder, a quote, a digit), every word of a negation, and short descriptions whole.
_KEEP_WORDS = frozenset({"not", "no", "never", "don't", "do", "does", "doesn't", "nor", "without", "avoid",
                         "instead", "except", "other", "than", "only", "but", "nothing", "none", "must", "forbidden"})
_PLAIN_WORD = re.compile(r"([A-Za-z][A-Za-z'-]*)([.,;:!?]?)")  # a word with no value in it, and its mark


def dropped_word(task: Task, rng: random.Random) -> Task:
    """`task` with one plain word of its wording left out (its values unchanged), never the last
    word, where a rule's noun most often sits ("Do not use any commas."); as it was if the wording
    has fewer than five words, none that may go, or the result is a reserved wording."""
    words = task.unfilled.split(" ")
    free = [i for i, w in enumerate(words[:-1])
            if (m := _PLAIN_WORD.fullmatch(w)) and len(m[1]) > 2 and m[1].lower() not in _KEEP_WORDS]
    if len(words) < 5 or not free:
        return task
    i = rng.choice(free)
    mark = _PLAIN_WORD.fullmatch(words[i])[2]  # a comma or stop after the word joins the word before
    kept = words[:i] + words[i + 1:]
    if mark and i > 0:
        kept[i - 1] += mark
    text = " ".join(kept)
    text = text[0].upper() + text[1:]
    return task if text in reserved_wordings() else Task(task.family, -1, task.params, text)


ALL_FAMILIES: dict[str, Family] = {**FAMILIES, **_EXTRA, LABELLED.name: LABELLED,
                                   NO_RULE.name: NO_RULE, NEGATED.name: NEGATED}  # what a task's name looks up

# Composed wordings for training: a frame ("Always {core}.") around one of the family's cores (an
# imperative phrase). A handful of fixed sentences per family teaches the generator those
# sentences, not the rule: with them alone the step-500 adapters followed 89 % of training-wording
# descriptions and 37 % of held-out ones. The frames are shared by every family, so only the core
# tells one rule from another. The held-out wordings are never composed (tested).
_FRAMES = ("{Core}.", "Always {core}.", "Please {core}.", "From now on, {core}.", "In every reply, {core}.",
           "Make sure you {core}.", "You must {core}.", "I want you to {core}.", "Rule: {core}.",
           "Remember to {core}.", "Be sure to {core}.", "When you answer, {core}.", "Your task: {core}.",
           "Important: {core}!", "Whatever the question, {core}.", "{Core}, no exceptions.",
           "Every time you reply, {core}.", "Instruction: {core}.", "For all of your answers: {core}.",
           "One rule for this chat: {core}.")
_CORES = {
    "max_words": ("answer in at most {n} words", "use {n} words or fewer", "reply in no more than {n} words",
                  "keep your answer within {n} words", "limit yourself to {n} words", "stay within {n} words",
                  "write at most {n} words", "cap each reply at {n} words", "do not exceed {n} words"),
    "max_sentences": ("answer in at most {n} sentences", "use {n} sentences or fewer",
                      "limit your reply to {n} sentences", "do not go beyond {n} sentences",
                      "stop after {n} sentences", "say it in no more than {n} sentences",
                      "keep each answer to a maximum of {n} sentences"),
    "upper": ("write in capital letters only", "answer in all caps", "use only uppercase letters",
              "reply in upper case", "capitalise every letter", "type everything in caps",
              "write every word in block capitals", "keep the caps lock on for the whole reply"),
    "opening": ("start your reply with \"{phrase}\"", "begin every answer with \"{phrase}\"",
                "say \"{phrase}\" before anything else", "put \"{phrase}\" at the very start",
                "lead with \"{phrase}\"", "make \"{phrase}\" the first thing you write",
                "use \"{phrase}\" as your first words"),
    "signoff": ("end your reply with \"{phrase}\"", "conclude every answer with \"{phrase}\"",
                "close with the words \"{phrase}\"", "sign off with \"{phrase}\"",
                "put \"{phrase}\" at the very end", "make \"{phrase}\" the last thing you write",
                "add \"{phrase}\" as the final line"),
    "bullets": ("format the answer as a bulleted list", "reply with bullet points",
                "put each point on its own line starting with a dash", "answer as a list of bullets",
                "write bullet points only", "use a dash list for your reply"),
    "json": ("reply with a JSON object with the keys \"{k0}\" and \"{k1}\"",
             "answer in JSON with fields \"{k0}\" and \"{k1}\"", "output only JSON, keys {k0} and {k1}",
             "return a JSON object containing \"{k0}\" and \"{k1}\"",
             "format the reply as JSON with exactly the keys {k0} and {k1}"),
    "one_word": ("answer with a single word", "reply in one word", "use exactly one word",
                 "give a one-word answer", "say just one word", "keep every answer to one single word"),
    "title_case": ("capitalise the first letter of every word", "write in title case", "begin each word with a capital",
                   "give every word an upper-case first letter", "capitalise each and every word"),
    "lettered": ("answer as a lettered list", "label your points a), b), c)", "use letters to mark each point",
                 "put every point on its own line with a letter in front", "write a list lettered a), b), c)"),
    "include_word": ("use the word \"{word}\" in your reply", "include the word \"{word}\"",
                     "mention \"{word}\" somewhere in the answer", "work in the word \"{word}\"",
                     "make sure the word \"{word}\" appears"),
    "exclaim": ("end every sentence with an exclamation mark", "use exclamation marks, not full stops",
                "finish each sentence with \"!\"", "write every sentence as an exclamation"),
    "end_question": ("end with a question to the user", "finish by asking a question", "close with a follow-up question",
                     "make your last sentence a question", "ask the user something at the end"),
    "avoid_word": ("never use the word \"{word}\"", "do not write the word \"{word}\"",
                   "leave out the word \"{word}\" entirely", "keep the word \"{word}\" out of your reply",
                   "write without the word \"{word}\"", "steer clear of the word \"{word}\""),
    # the extra families (`EXTRA_FAMILIES`); none spells its family's held-out wording
    "quoted": ("wrap your whole reply in double quotes", "put the entire answer inside double quotation marks",
               "enclose everything you write in double quotes", "begin and end your reply with a double quote",
               "quote the whole answer", "surround your reply with double quotes"),
    "line_prefix": ("start every line with \"{symbol}\"", "put {symbol} at the beginning of each line",
                    "begin each line of the answer with {symbol}", "prefix every line with \"{symbol}\"",
                    "open every line with the symbol {symbol}"),
    "heading": ("put the heading \"{heading}\" above your answer", "start with the heading line \"{heading}\"",
                "give the answer under the heading \"{heading}\"", "open with a line that says only \"{heading}\"",
                "write \"{heading}\" as a title line first", "write your answer below a \"{heading}\" heading"),
    "no_commas": ("do not use any commas", "write without commas", "never use a comma", "avoid commas completely",
                  "keep your reply free of commas", "use no commas at all"),
    "separator": ("separate your sentences with \"{sep}\"", "put \"{sep}\" between sentences",
                  "write everything on one line with {sep} between sentences", "join the sentences with \"{sep}\"",
                  "split your sentences with the symbol {sep}, all on one line"),
    "summary_line": ("end with a one-line summary starting \"{lead}\"", "add a final line beginning with \"{lead}\"",
                     "finish with a recap line that opens with \"{lead}\"",
                     "close with \"{lead}\" and a one-line summary",
                     "after the answer, add a line starting \"{lead}\" that recaps it"),
    "bold": ("put the key words in bold", "write the most important words in **bold**",
             "highlight key terms with bold markdown", "use **bold** for the main words",
             "mark the key words of your reply in bold", "bold the words that matter most"),
    "tagged": ("wrap your reply in <{tag}> and </{tag}> tags", "put the answer between <{tag}> and </{tag}>",
               "enclose everything in a <{tag}> element", "start with <{tag}> and end with </{tag}>",
               "surround the whole reply with <{tag}> tags", "put the reply inside <{tag}> tags"),
    "labelled": ("label your points {l1}, {l2}, {l3}", "mark each item of a list {l1}, {l2}, {l3}",
                 "answer as a list labelled {l1}, {l2}, {l3} and so on",
                 "put every point on its own line, marked {l1}, {l2}, {l3}",
                 "write a list with the labels {l1}, {l2}, {l3}"),
}
COMPOSED_SHARE = 0.75  # of training tasks: a composed wording; the rest one of the fixed training wordings

# Wide wordings (from task step 1600): the cores above gave each family five to nine ways of
# naming its rule, and the step-1500 adapters followed 84 % of training-style descriptions but 46 %
# of held-out ones, so the reader had learnt those phrasings. A small grammar per family multiplies
# the ways ("(a|b|)": one of the alternatives, the empty one drops the slot), and statements about
# the reply ("every letter of your reply is upper case") join the imperatives. Drawn for the
# training stream only; the training hold-out keeps the composed wordings so its scores compare.
_GRAMMAR = {
    "max_words": ("(keep|hold) (your|each|every) (reply|answer|response) (under|below|within) {n} words",
                  "(answer|reply|respond) in {n} words or (less|fewer)",
                  "(use|write) no more than {n} words (per reply|in each answer|)",
                  "(be brief|be concise|be short) and (use|write) at most {n} words",
                  "never (go over|exceed|pass) {n} words", "(limit|restrict) (each|every|your) (reply|answer) to {n} words"),
    "max_sentences": ("(keep|hold) (your|each|every) (reply|answer|response) (to|within) {n} sentences",
                      "(answer|reply|respond) in {n} sentences or (less|fewer)",
                      "(use|write) no more than {n} sentences (per reply|in each answer|)",
                      "never (go over|exceed|use more than) {n} sentences",
                      "(limit|restrict|cap) (each|every|your) (reply|answer) (to|at) {n} sentences",
                      "(stop|finish) after (at most|) {n} sentences"),
    "upper": ("(write|reply|answer|respond|type) (only|entirely|) in (capital letters|capitals|all caps|upper case|uppercase|block letters)",
              "(use|type) (only|nothing but) (capital|uppercase|upper-case) letters",
              "(capitalise|capitalize) (every|each) (letter|character)",
              "(make|turn) (every|each) letter (upper case|uppercase|into a capital)",
              "(put|set) (all of your text|everything you write|the whole reply) in (capitals|upper case|caps)"),
    "opening": ("(start|begin) (each|every|your) (reply|answer|response|message) with (the words|the phrase|) \"{phrase}\"",
                "(say|write|put) \"{phrase}\" (first|at the start|before anything else|at the beginning)",
                "(let|have) (each|every) (reply|answer) (start|begin) with \"{phrase}\"",
                "(lead|kick off) (each reply|every answer|) with \"{phrase}\""),
    "signoff": ("(end|close|conclude|wrap up) (each|every|your) (reply|answer|response|message) with (the words|the line|the phrase|) \"{phrase}\"",
                "(write|put|add) \"{phrase}\" (at the end|as the last line|as your closing line|after everything else)",
                "(let|have) (each|every) (reply|answer) end with \"{phrase}\"",
                "sign (each|every) (reply|answer|message) with \"{phrase}\""),
    "bullets": ("(format|write|give|present) (your|each|every) (reply|answer|response) as (a bulleted list|bullet points|a list of bullets|a dash list)",
                "(start|begin) each (point|line|item) with a (dash|bullet)",
                "(answer|reply|respond) (only|) (in|with) bullet points",
                "(break|split) (your|the) (reply|answer) into (bullets|bullet points|dashed lines)",
                "(list|give) (your|the) points as bullets"),
    "json": ("(reply|answer|respond) (only|) (in|with) JSON (that has|with) (the|) keys \"{k0}\" and \"{k1}\"",
             "(return|output|give|produce) (a|one) JSON object (with|containing|that has) (the keys|the fields|keys|fields) \"{k0}\" and \"{k1}\"",
             "(format|write) (your|each|every) (reply|answer) as JSON with (the keys|fields) {k0} and {k1}",
             "(put|wrap) (your|the) (reply|answer) in a JSON object (with|under) (the keys|fields) \"{k0}\" and \"{k1}\""),
    "one_word": ("(answer|reply|respond) (with|in|using) (a single word|one word|only one word)",
                 "(use|write|give) (only|exactly) one word", "(keep|limit) (each|every|your) (reply|answer) to (a single word|one word)",
                 "never (use|write) more than one word"),
    "title_case": ("(capitalise|capitalize) the first letter of (every|each) word", "(capitalise|capitalize) (every|each) word",
                   "(write|reply|answer) in title case", "(begin|start) (every|each) word with (a capital|a capital letter|an uppercase letter)",
                   "(give|make) (every|each) word (a capital first letter|an upper-case first letter)"),
    "lettered": ("(label|mark|tag) (your|each|every) (point|item|line) with (a letter|letters)",
                 "(answer|reply|respond) (as|with) a (lettered list|list lettered a), b), c)|list labelled with letters)",
                 "(put|write) each (point|item) on its own line, (starting|beginning) with a letter",
                 "(use|give) letters (a), b), c)|) (for|to mark) (each point|the points|each item)"),
    "include_word": ("(use|include|mention) the word \"{word}\" (in each reply|in every answer|somewhere|at least once)",
                     "(put|work|fit) (the word|) \"{word}\" into (each|every|your) (reply|answer)",
                     "(let|have) (each|every) (reply|answer) contain (the word|) \"{word}\"",
                     "never (reply|answer) without (using|saying) \"{word}\""),
    "exclaim": ("(end|finish|close) (every|each) sentence with (an exclamation mark|\"!\")",
                "(use|put) (an exclamation mark|an exclamation point|\"!\") (at the end of|after) (every|each) sentence",
                "(replace|swap) (every|each) (full stop|period) with (an exclamation mark|\"!\")",
                "(write|say) every sentence as an exclamation"),
    "end_question": ("(end|wrap up) (each|every|your) (reply|answer|response) (with|by asking) a question",
                     "(ask the user|ask me) (a question|something) at the (end|very end)",
                     "(let|have) (each|every) (reply|answer) end (in|with) a question",
                     "(make|let) the (last|final) sentence (of each reply|) (be|) a question"),
    "avoid_word": ("(never|do not) (use|write|say|mention) (the word|) \"{word}\"",
                   "(leave|keep) (the word|) \"{word}\" out of (each|every|your) (reply|answer)",
                   "(skip|ban) the word \"{word}\" (entirely|in every reply|)"),
    "quoted": ("(wrap|enclose|put|place) (your whole|the whole|your entire|the entire|each|every) (reply|answer|response) (in|inside|within) (double quotes|double quotation marks|a pair of double quotes)",
               "(start|begin) and (end|finish) (each|every|your) (reply|answer) with (a double quote|a quotation mark)",
               "(surround|frame) (everything you write|your whole reply|the answer) with double quotes"),
    "line_prefix": ("(start|begin|open) (every|each) line (of your reply|of the answer|you write|) with (the symbol|the marker|) \"{symbol}\"",
                    "(put|place|write) (the symbol|the marker|) \"{symbol}\" (at the start of|at the beginning of|in front of) (every|each) line",
                    "(prefix|tag) (every|each) line (of your reply|) with \"{symbol}\"",
                    "(let|have) (every|each) line (start|begin) with {symbol}"),
    "heading": ("(put|write|place) (the heading|the title|the line) \"{heading}\" (above|on top of|before) (your|the|each) (reply|answer)",
                "(start|begin|open) (each|every|your) (reply|answer) with (a heading line|a title line|the heading|the line) \"{heading}\"",
                "(answer|reply|respond) (below|beneath) (a|the) heading \"{heading}\""),
    "no_commas": ("(never|do not) (use|write|type|include) (a comma|any commas|a single comma) (in your reply|in your answers|anywhere|)",
                  "keep (the|all) commas out of (your|each|every) (reply|answer|response)",
                  "(write|reply|answer|respond) (without|with no) commas",
                  "(skip|drop|avoid) (commas|every comma|all commas) (entirely|completely|)"),
    "separator": ("(separate|split) (your|the|all) sentences with (the symbol|the marker|) \"{sep}\" (on one line|on a single line|)",
                  "(put|place|write) \"{sep}\" between (your|the|all) sentences",
                  "(join|link|chain) (your|the) sentences (with|using) \"{sep}\" (on one line|)",
                  "(keep|write) (everything|your whole reply|the answer) on one line, sentences (separated|joined) by \"{sep}\""),
    "summary_line": ("(end|finish|close|wrap up) (each|every|your) (reply|answer) with a (one-line|short|single-line) (summary|recap) (starting|beginning|that starts) with \"{lead}\"",
                     "(add|put|write) a (final|last|closing) line (that starts with|beginning with|starting with) \"{lead}\" (and the gist|and a summary|)"),
    "bold": ("(put|write|set|mark) (the|your) (key|important|main|most important) (words|terms|points) in (bold|**bold**|bold type)",
             "(bold|highlight) (the|your) (key|main|important) (words|terms) (with double asterisks|in markdown|)",
             "(use|apply) (bold|**bold**|bold text|bold markdown) (for|on) (the|your) (key|main|important) (words|terms)"),
    "tagged": ("(wrap|enclose|put) (your|the|each|every) (reply|answer|response) (in|inside) (<{tag}> tags|a <{tag}> element)",
               "(put|write) (your|the) (reply|answer) between <{tag}> and </{tag}>",
               "(start|begin|open) (each|every|your) (reply|answer) with <{tag}> and (end|close|finish) it with </{tag}>",
               "(surround|frame) (everything you write|the whole reply|your answer) with (the tags|) <{tag}> and </{tag}>"),
    "labelled": ("(label|mark|tag) (your|each|every) (point|item|line) (with|as) {l1}, {l2}, {l3}( and so on|, and onward|)",
                 "(answer|reply|respond) (as|with) a list (labelled|marked|tagged) {l1}, {l2}, {l3}",
                 "(put|write) (each|every) (point|item) on its own line, (labelled|marked|starting with) {l1}, {l2}, {l3}",
                 "(use|give) the labels {l1}, {l2}, {l3} (for|on) (your|the) (points|items|lines)"),
}
_STATEMENTS = {
    "max_words": ("(your|each|every) (reply|answer|response) (is|must be|should be) (at most|no longer than|no more than) {n} words (long|)",),
    "max_sentences": ("(your|each|every) (reply|answer) (is|must be|should be) (at most|no more than) {n} sentences (long|)",),
    "upper": ("(every|each) (letter|character) (of your reply|you write|in your answers) (is|must be|should be) (upper case|uppercase|in capitals)",
              "(your|all) (replies|answers) (are|must be) (written|) in (capital letters|upper case|all caps)"),
    "opening": ("(your|each|every) (reply|answer|response) (starts|begins|must start|must begin|should start) with \"{phrase}\"",
                "the first words of (each|every|your) (reply|answer) (are|must be) \"{phrase}\""),
    "signoff": ("(your|each|every) (reply|answer|response) (ends|must end|should end|closes) with \"{phrase}\"",
                "the (last|final) (line|words) of (each|every|your) (reply|answer) (is|are|must be) \"{phrase}\""),
    "bullets": ("(your|each|every) (reply|answer) (is|must be|should be) a (bulleted list|list of bullet points|dash list)",
                "every line of (your|the) (reply|answer) (starts|begins) with a (dash|bullet)"),
    "json": ("(your|each|every) (reply|answer) (is|must be|should be) (a|one) JSON object (with|holding) the keys \"{k0}\" and \"{k1}\"",),
    "one_word": ("(your|each|every) (reply|answer) (is|must be|should be) (one word|a single word|exactly one word) (long|)",),
    "title_case": ("(every|each) word (you write|of your reply|in your answers) (starts|begins|must start|must begin) with (a capital|a capital letter|an upper-case letter)",),
    "lettered": ("(your|each|every) (reply|answer) (is|must be|should be) a list (lettered|labelled) a), b), c)",),
    "include_word": ("(each|every) (reply|answer) (contains|must contain|should contain|has to include) the word \"{word}\"",
                     "the word \"{word}\" (shows up|must show up|is used) in (each|every) (reply|answer)"),
    "exclaim": ("(every|each) sentence (ends|must end|should end) with (an exclamation mark|\"!\")",
                "(your|all) sentences end (in|with) (exclamation marks|\"!\")"),
    "end_question": ("(your|each|every) (reply|answer) (ends|must end|should end) (with|in) a question (to the user|for the user|)",
                     "the (last|final) sentence (of each reply|) (is|must be) a question"),
    "avoid_word": ("the word \"{word}\" (is|must be) (banned|off limits|never used|not allowed)",
                   "(your|each|every) (reply|answer) (never contains|must not contain|should not contain) the word \"{word}\""),
    "quoted": ("(your|each|every) (reply|answer|response) (is|must be|should be) (wrapped|enclosed) in double (quotes|quotation marks)",
               "(each|every|your) (reply|answer) (starts|begins) and ends with a double quote"),
    "line_prefix": ("(every|each) line (of your reply|of the answer|you write) (starts|begins|must start|must begin|should start) with \"{symbol}\"",
                    "the first thing on (every|each) line (is|must be) \"{symbol}\""),
    "heading": ("the (first|top) line of (each|every|your) (reply|answer) (is|must be|should be) (just|only|) \"{heading}\"",
                "(each|every|your) (reply|answer) (opens|starts|begins) with the heading \"{heading}\" on its own line"),
    "no_commas": ("(your|each|every) (reply|answer|response) (has|contains|must have|must contain) no commas",
                  "commas are (not allowed|banned|off limits) in (your|each|every) (reply|answer)"),
    "separator": ("(your|the) sentences (are|must be|should be) (separated|joined) by \"{sep}\"",
                  "(each|every|your) (reply|answer) (is|must be) (one|a single) line with \"{sep}\" between (the|its) sentences"),
    "summary_line": ("the (last|final) line of (each|every|your) (reply|answer) (is|must be|should be) a (summary|recap) (starting|beginning) with \"{lead}\"",
                     "(each|every|your) (reply|answer) (ends|must end|closes) with a (one-line|short) summary that (starts|begins) with \"{lead}\""),
    "bold": ("(the|your) (key|main|important) (words|terms) (are|must be|should be) (in bold|bold|written in **bold**)",
             "(each|every|your) (reply|answer) (has|contains|must contain) (some|at least some) text in (bold|**bold**)"),
    "tagged": ("(your|each|every) (reply|answer) (is|must be|should be) (wrapped|enclosed) in <{tag}> (tags|and </{tag}>)",
               "(each|every|your) (reply|answer) (starts|begins) with <{tag}> and ends with </{tag}>"),
    "labelled": ("(your|each|every) (reply|answer) (is|must be|should be) a list (labelled|marked) {l1}, {l2}, {l3}",
                 "(each|every) (line|item) of (the|your) (reply|answer) (starts|begins) with its label: {l1}, {l2}, {l3}"),
}
_WIDE_FRAMES = _FRAMES + ("You are a helpful assistant. {Core}.", "As my assistant, {core}.", "Here is one rule: {core}.",
                          "Do this for me: {core}.", "Going forward, {core}.", "{Core}, please.", "{Core}. Thanks!",
                          "Style note: {core}.")
_STATEMENT_FRAMES = ("{Core}.", "Note: {core}.", "Rule: {core}.", "Make sure that {core}.", "In this chat, {core}.",
                     "{Core}, always.", "Remember: {core}.", "{Core}, without exception.", "It is important that {core}.",
                     "Format requirement: {core}.")
STATEMENT_SHARE = 0.3  # of wide wordings: a statement about the reply rather than an imperative
_ALTERNATIVES = re.compile(r"\(([^()]*\|[^()]*)\)")  # "(a|b|)"; a bare "a), b)" has no bar and stays


def expand(pattern: str) -> list[str]:
    """Every sentence a grammar pattern spells, in order, spaces tidied where a slot was empty."""
    parts = _ALTERNATIVES.split(pattern)  # literal, choices, literal, choices, ...
    out = [""]
    for i, part in enumerate(parts):
        out = [o + c for o in out for c in (part.split("|") if i % 2 else [part])]
    return [re.sub(r" {2,}", " ", o).strip().replace(" ,", ",") for o in out]


def _frame(frames: tuple[str, ...], cores: list[str]) -> tuple[str, ...]:
    """Every core in every frame ("{Core}" capitalises its first letter), core by core."""
    return tuple(f.replace("{Core}", c[0].upper() + c[1:]).replace("{core}", c) for c in cores for f in frames)


@functools.cache
def wide_wordings(family: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(imperative, statement) wordings of a training family under the wide grammar; the held-out
    sentence is never among them (tested)."""
    held = ALL_FAMILIES[family].wordings[-1]
    cores = list(dict.fromkeys([*_CORES.get(family, ()), *(e for g in _GRAMMAR.get(family, ()) for e in expand(g))]))
    statements = list(dict.fromkeys(e for g in _STATEMENTS.get(family, ()) for e in expand(g)))
    return (tuple(w for w in _frame(_WIDE_FRAMES, cores) if w != held),
            tuple(w for w in _frame(_STATEMENT_FRAMES, statements) if w != held))


@functools.cache
def composed_wordings(family: str) -> tuple[str, ...]:
    """Every composed wording of a training family (templates with the family's placeholders);
    built once, as every drawn record picks from them."""
    return _frame(_FRAMES, list(_CORES.get(family, ())))


@dataclass(frozen=True)
class Task:
    family: str
    wording: int  # index into the family's fixed wordings; -1: `template` is a composed one
    params: dict = field(hash=False)
    template: str | None = None

    @property
    def unfilled(self) -> str:
        """The wording with its placeholders: the composed template, else the fixed wording."""
        return self.template or ALL_FAMILIES[self.family].wordings[self.wording]

    @property
    def description(self) -> str:
        p = self.params
        fmt = {**p, **({"k0": p["keys"][0], "k1": p["keys"][1]} if "keys" in p else {})}
        text = self.unfilled.format(**fmt)
        if self.family == LABELLED.name:  # "... then C." with the label "C." is "... then C.."
            text = re.sub(r"\.\.(?=\s|$)", ".", text)
        return text

    def check(self, reply: str) -> bool:
        return ALL_FAMILIES[self.family].check(reply, self.params)

    def comply(self, reply: str, short: str | None = None) -> str:
        """`short`: the prompt's answer as a reply of its own, where it has one (a short question)."""
        return ALL_FAMILIES[self.family].comply(reply, {**self.params, **({"short": short} if short else {})})


def families(split: str, held_out: bool = False, extra: bool = False, labels: bool = False) -> list[str]:
    """Family names of a split: training uses the others; `held_out` gives the held-out ones.
    `extra` appends `EXTRA_FAMILIES` to the others, `labels` the labelled lists; both off by
    default, so the list, and every draw made from it, is what it was before those families existed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    names = [f for f in FAMILIES if (f in HELD_OUT_FAMILIES) == held_out]
    if held_out:
        return names
    return names + (list(EXTRA_FAMILIES) if extra else []) + ([LABELLED.name] if labels else [])


def draw_task(rng: random.Random, split: str, family: str | None = None, held_out_wording: bool = False,
              composed: bool = False, open_params: bool = False, wide: bool = False, extra: bool = False,
              near_miss: bool = False, free_phrases: bool = False, labels: bool = False) -> Task:
    """One task: training draws only the training families' first wordings (or, with `composed`,
    mostly composed ones, from the wide grammar with `wide`) and training pools (with `open_params`,
    half the phrases, words and keys composed instead); evaluation draws from the eval pools, with
    the held-out wording when asked. `extra`: the family is drawn among `EXTRA_FAMILIES` too.
    `near_miss` (with `open_params`): some composed openings and sign-offs are near misses of stock
    phrases (`_near_miss`); `free_phrases` (with `open_params`, instead): some are free word
    sequences (`_free_phrase`). `labels`: the labelled lists are drawn too."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    name = family or rng.choice(families(split, extra=extra, labels=labels))
    fam = ALL_FAMILIES[name]
    n = len(fam.wordings)
    if split == "train" and (held_out_wording or name in HELD_OUT_FAMILIES):
        raise ValueError("training never sees held-out wordings or families")
    values = split
    if open_params and split == "train":
        values = "free" if free_phrases else "near" if near_miss else "open"
    if split == "train" and composed and _CORES.get(name) and rng.random() < COMPOSED_SHARE:
        if wide:
            imperative, statements = wide_wordings(name)
            template = rng.choice(statements if statements and rng.random() < STATEMENT_SHARE else imperative)
        else:
            template = rng.choice(composed_wordings(name))
        return Task(name, -1, fam.draw(rng, values), template)
    wording = n - 1 if held_out_wording else rng.randrange(n - 1)
    return Task(name, wording, fam.draw(rng, values))


# ------------------------------------------------------------------------------------- prompts
_TOPICS = ["photosynthesis", "the water cycle", "compound interest", "how vaccines work", "black holes",
           "the French Revolution", "machine learning", "volcanoes", "the stock market", "recycling",
           "electric cars", "the human heart", "coffee brewing", "jazz music", "the Roman Empire",
           "solar panels", "sleep", "the internet", "bread baking", "climate change", "earthquakes",
           "chess openings", "honey bees", "the moon landing", "inflation", "rainbows", "gardening",
           "the immune system", "bicycles", "time zones", "the printing press", "tides", "yoga",
           "password security", "composting", "the Olympic Games", "ocean currents", "meditation",
           "3D printing", "the stock of a soup", "public speaking", "bird migration", "budgeting",
           "the Great Wall of China", "cloud computing", "tea", "running a marathon", "glaciers"]
_FORMS = ["Explain {t} in simple terms.", "What should I know about {t}?", "Tell me something interesting about {t}.",
          "Why does {t} matter?", "Give me a short overview of {t}.", "How would you describe {t} to a child?",
          "What are common misconceptions about {t}?", "Write a few sentences about {t}."]


def prompts(split: str) -> list[str]:
    """Ordinary prompts; the eval split's topics never appear in training."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    topics = _TOPICS[::4] if split == "eval" else [t for i, t in enumerate(_TOPICS) if i % 4]
    return [f.format(t=t) for t in topics for f in _FORMS]


# ------------------------------------------------------------------------------------- training records
REPLIES_FILE = "task_replies.jsonl"  # the base model's own replies to the training prompts
PROMPTS_PER_RECORD = 4


def _trim_to_sentence(text: str) -> str:
    """A reply cut by the token limit ends at its last whole sentence (if it has one)."""
    text = text.strip()
    if text.endswith((".", "!", "?")):
        return text
    end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
    return text[:end + 1] if end > 0 else text


def write_base_replies(out: Path | str, model_dir: str | None = None, max_new_tokens: int = 96,
                       batch_size: int = 8, progress: bool = True) -> int:
    """Greedy replies of the base model to every training prompt and short question, asked bare as
    a user of the server would, written as JSONL `{"prompt", "reply", "model"}` (questions add
    `short`, their answer as a reply of its own); returns the count. Rows already in `out` are
    kept and only the missing prompts are generated, so adding questions leaves the rest as it was."""
    from ..base_model import ensure_default_model, load_model_and_tokenizer
    from ..evaluation.generation import generate
    from ..prompts import question_messages, render

    out = Path(out)
    kept = [json.loads(l) for l in out.read_text().splitlines() if l.strip()] if out.is_file() else []
    have = {r["prompt"] for r in kept}
    shorts = {q["q"]: q["short"] for q in short_questions.questions(more=True)}
    asked = [p for p in prompts("train") + list(shorts) if p not in have]
    if asked:
        model_path = Path(model_dir) if model_dir else ensure_default_model()
        model, tok = load_model_and_tokenizer(model_path)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(asked), desc="base replies", unit="reply")
        replies = generate(model, tok, [render(tok, question_messages(p)) for p in asked], max_new_tokens,
                           batch_size, on_batch=bar.update if bar else None)
        if bar:
            bar.close()
        kept += [{"prompt": p, "reply": _trim_to_sentence(r), "model": model_path.name,
                  **({"short": shorts[p]} if p in shorts else {})} for p, r in zip(asked, replies)]
    out.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return len(kept)


def load_replies(path: Path | str | None = None, more_questions: bool = False) -> list[dict]:
    """The packaged replies pool (or another one), checked for what a record needs. The replies to
    `short_questions.more_questions()` are in the pool only with `more_questions`, so that a run (and
    every hold-out) without it draws its records as before."""
    path = Path(path) if path else Path(__file__).with_name(REPLIES_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"no base replies at {path}; write them with "
                                "`python -m vllm_d2l.datasets.tasks replies --out FILE`")
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    more = set() if more_questions else {q for q, _ in short_questions.more_questions()}
    rows = [r for r in rows if r.get("prompt") and r.get("reply", "").strip() and r["prompt"] not in more]
    if len(rows) < PROMPTS_PER_RECORD:
        raise ValueError(f"{path} has {len(rows)} usable replies; a record needs {PROMPTS_PER_RECORD}")
    return rows


QUESTIONS_PER_RECORD = 2  # of the record's prompts, short questions (where the pool has them)


# Minimal pairs: families whose rules differ in one thing a description says (where a phrase goes,
# which letters are capitals, how list lines are marked, whether a word must appear or must not).
# The held-out wordings fail by picking the trained neighbour ("Finish with X" writes X first,
# "every letter a capital" writes title case); a pair gives the generator the same phrase and the
# same prompts under both rules in one batch, so only the words that tell the rules apart can lower
# both losses. `_PAIR_PARAMS` renames a value where the two families call it differently.
CONTRASTS = {"opening": "signoff", "signoff": "opening", "upper": "title_case", "title_case": "upper",
             "bullets": "lettered", "lettered": "bullets", "avoid_word": "include_word",
             "include_word": "avoid_word", "heading": "summary_line", "summary_line": "heading",
             "labelled": "lettered"}  # one way: a lettered record's partner stays the bulleted one
_PAIR_PARAMS = {("heading", "summary_line"): {"heading": "lead"}, ("summary_line", "heading"): {"lead": "heading"}}


def _contrast(task: Task, rng: random.Random, word_phrases: bool = False, null: bool = False, **draw) -> Task:
    """`task`'s partner in a minimal pair: the contrasting family, worded by its own draw, with
    `task`'s values (renamed where the families name them apart); `task` if it has no partner.
    `word_phrases`: an opening or sign-off of one word pairs with a one-word reply instead, on the
    same prompts: one word quoted in a description is a phrase to add, not the length of the reply.
    `null`: a family without a partner pairs with a description that asks for nothing (`NO_RULE`)."""
    partner = CONTRASTS.get(task.family)
    if word_phrases and task.family in ("opening", "signoff") and len(task.params["phrase"].split()) == 1:
        return draw_task(rng, "train", family="one_word", **draw)
    if partner is None:
        return no_rule(rng) if null else task
    worded = draw_task(rng, "train", family=partner, **draw)
    names = _PAIR_PARAMS.get((task.family, partner), {})
    params = {names.get(k, k): v for k, v in task.params.items() if k != "frame"}
    return Task(partner, worded.wording, params, worded.template)


def no_rule(rng: random.Random) -> Task:
    """A description that asks for nothing checkable: a role, courtesies, or both."""
    shape = rng.randrange(3)
    courtesies = " ".join(rng.sample(_COURTESIES, rng.randint(1, 2)))
    text = {0: f"{_persona(rng)}.", 1: courtesies, 2: f"{_persona(rng)}. {courtesies}"}[shape]
    return Task(NO_RULE.name, -1, {}, text)


def make_record(seed: int, index: int, replies: list[dict], split: str = "train",
                families: list[str] | None = None, composed: bool = False, open_params: bool = False,
                wide: bool = False, extra: bool = False, near_miss: bool = False, free_phrases: bool = False,
                include_frames: bool = False, pairs: bool = False, synonyms: float = 0.0, labels: bool = False,
                context: float = 0.0, whole_limits: bool = False, wide_words: bool = False,
                word_phrases: float = 0.0, known_answers: bool = False, plain: float = 0.0,
                null_pairs: bool = False, exclamations: float = 0.0, stub_keys: float = 0.0,
                stub_pool: tuple[str, ...] = (), negations: float = 0.0, affirmations: float = 0.0,
                dropout: float = 0.0, avoid_tidy: bool = False, digits: float = 0.0,
                answer_cuts: bool = False, open_labels: bool = False, shifted_labels: float = 0.0,
                sequence_labels: float = 0.0, open_prefixes: float = 0.0,
                family_weights: dict[str, float] | None = None) -> dict:
    """Record `index` of run `seed`: a task's description as the text, and ordinary prompts whose
    answers are the base model's replies rewritten to follow it. Depends on (seed, index) only.
    Two of the four prompts are short questions (when the pool has them), so that the rules are
    learnt on replies that must keep their answer as well as on open ones.
    `genre` is "task:<family>", so a wrong-document control is another task of the same family
    with other values: it differs in what the description says, not in its kind of rule.
    `extra` adds `EXTRA_FAMILIES` to the families drawn from (when `families` does not name them);
    `near_miss`, `free_phrases`: `draw_task`'s. `include_frames`: a word to include goes into one
    of `INCLUDE_FRAMES` (off: the first, as before). `pairs`: an odd record is its even neighbour's
    minimal pair (`CONTRASTS`): the same values and prompts under the contrasting rule, or the same
    record where the family has none; even records are as without it. `synonyms`: in a composed
    wording, each word the thesaurus knows is swapped with this probability (`synonyms.respell`,
    from a generator of its own, so values and prompts stay those of the record without it).
    `labels`: `draw_task`'s. `context`: this share of training descriptions is set among sentences
    that change nothing (`in_context`: a persona, a courtesy), again from a generator of its own.
    `whole_limits`: `_record`'s. `wide_words`: half the pools' draws of the record's values are composed
    too, and half their open words come from thousands (`_param`, `_open_word`). `word_phrases`: this
    share of training openings and sign-offs is one word (`_word_phrase`, from a generator of its
    own), and with `pairs` such a record's partner is a one-word reply. `known_answers`: `_record`'s.
    `plain`: this share of training descriptions is a plain wording instead (`plain_wordings`: a
    verb many families share and the rule's own noun), drawn by a generator of its own.
    `null_pairs` (with `pairs`): a family without a minimal pair is paired with a description that
    asks for nothing (`no_rule`), its targets the base model's replies, rather than with itself.
    `exclamations`: this share of the training openings and sign-offs that `word_phrases` left as
    they were is a stock exclamation with a long word in it (`_exclamation`, a generator of its own).
    `stub_keys`: in this share of training JSON records one key is a word of `stub_pool`
    (`stub_words`: one token that longer words begin with), drawn by a generator of its own; with
    `pairs` the partner keeps the same keys. `negations` (with `pairs`): this share of the partners
    of `NEGATABLE` rules is the rule's negation (`negated`) instead, drawn by a generator of its own.
    `affirmations`: this share of training records of `NEGATABLE` rules asks for the rule through a
    negation (`affirmed`), drawn by a generator of its own; the values and targets are unchanged.
    `dropout`: this share of the other training descriptions of a rule loses one word
    (`dropped_word`), drawn by a generator of its own. `avoid_tidy`: a word to avoid leaves the
    target's sentence starts capitalised and its line breaks in place (`_avoid_comply`); the draws
    are unchanged. `digits`: this share of the training openings and sign-offs left as they were is
    a free phrase with a number in it (`_digit_phrase`), and this share of training descriptions
    has a sentence with a number about the setting beside it (`with_fact`), each drawn by a
    generator of its own. `answer_cuts`: `_record`'s `cut_answers`. `open_labels` (with `labels`):
    half the labelled lists' styles are open ones (`_open_style`), drawn by a generator of its own;
    `shifted_labels` (with `open_labels`): this share of those counts from another letter ("k), l), m)").
    `sequence_labels` (with `open_labels`): this share of those is a sequence of marks in no order
    (`_sequence_marks`), all shown in the description. `open_prefixes`: this share of training
    line-prefix records (and their partners) marks its lines with an open prefix (`_open_prefix`),
    drawn by a generator of its own.
    `family_weights` (instead of `families`): the family is drawn with these probabilities
    (`training.balance`), from the same generator as before."""
    if stub_keys and not stub_pool:
        raise ValueError("stub_keys needs a stub_pool (`stub_words(tokenizer)`)")
    if negations and not pairs:
        raise ValueError("negations are minimal pairs' partners: they need pairs")
    if (shifted_labels or sequence_labels) and not open_labels:
        raise ValueError("shifted and sequence labels are open label styles: they need open_labels")
    first = index - index % 2 if pairs else index
    rng = random.Random(f"d2l-task:{seed}:{first}")
    draw = {"composed": composed, "open_params": open_params, "wide": wide, "extra": extra, "near_miss": near_miss,
            "free_phrases": free_phrases, "labels": labels}
    with (_wide_words(random.Random(f"d2l-task-wide:{seed}:{first}") if wide_words else None),
          _open_labels(random.Random(f"d2l-task-labels:{seed}:{first}") if open_labels else None),
          _shifted_labels(shifted_labels), _sequence_labels(sequence_labels)):
        if family_weights:
            family = rng.choices(list(family_weights), list(family_weights.values()))[0]
        else:
            family = rng.choice(families) if families else None
        task = draw_task(rng, split, family=family, **draw)
        if split == "train" and task.family in ("opening", "signoff"):
            word_rng = random.Random(f"d2l-task-word:{seed}:{first}")
            exclaim_rng = random.Random(f"d2l-task-exclaim:{seed}:{first}")
            if word_phrases and word_rng.random() < word_phrases:
                task = Task(task.family, task.wording, {**task.params, "phrase": _word_phrase(word_rng)}, task.template)
            elif exclamations and exclaim_rng.random() < exclamations:
                task = Task(task.family, task.wording, {**task.params, "phrase": _exclamation(exclaim_rng)},
                            task.template)
            elif digits and (digit_rng := random.Random(f"d2l-task-digit:{seed}:{first}")).random() < digits:
                task = Task(task.family, task.wording, {**task.params, "phrase": _digit_phrase(digit_rng)},
                            task.template)
        if split == "train" and task.family == "json" and stub_keys:
            stub_rng = random.Random(f"d2l-task-stub:{seed}:{first}")
            if stub_rng.random() < stub_keys:
                keys = list(task.params["keys"])
                i = stub_rng.randrange(len(keys))
                keys[i] = stub_rng.choice([w for w in stub_pool if w not in keys])
                task = Task(task.family, task.wording, {**task.params, "keys": keys}, task.template)
        if split == "train" and task.family == "line_prefix" and open_prefixes:
            prefix_rng = random.Random(f"d2l-task-prefix:{seed}:{first}")
            if prefix_rng.random() < open_prefixes:
                task = Task(task.family, task.wording, {**task.params, "symbol": _open_prefix(prefix_rng)}, task.template)
        if first != index:
            negation_rng = random.Random(f"d2l-task-negation:{seed}:{index}")
            if negations and task.family in NEGATABLE and negation_rng.random() < negations:
                task = negated(task, negation_rng)
            else:
                task = _contrast(task, random.Random(f"d2l-task-pair:{seed}:{index}"), word_phrases=word_phrases > 0,
                                 null=null_pairs, **draw)
    if plain and split == "train":
        task = _plainly(task, random.Random(f"d2l-task-plain:{seed}:{index}"), plain)
    if synonyms and task.template and task.family != NEGATED.name:  # a synonym for "do" or "never" undoes it
        task = _respelt(task, random.Random(f"d2l-task-words:{seed}:{index}"), synonyms)
    if (affirmations and split == "train" and task.family in NEGATABLE
            and (affirm_rng := random.Random(f"d2l-task-affirm:{seed}:{index}")).random() < affirmations):
        task = affirmed(task, affirm_rng)
    elif dropout and split == "train" and task.family not in (NEGATED.name, NO_RULE.name):
        drop_rng = random.Random(f"d2l-task-drop:{seed}:{index}")
        if drop_rng.random() < dropout:
            task = dropped_word(task, drop_rng)
    if context and split == "train" and task.family != NO_RULE.name:
        context_rng = random.Random(f"d2l-task-context:{seed}:{index}")
        if context_rng.random() < context:
            task = in_context(task, context_rng)
    if digits and split == "train" and (fact_rng := random.Random(f"d2l-task-fact:{seed}:{index}")).random() < digits:
        task = with_fact(task, fact_rng)
    if avoid_tidy and task.family == "avoid_word":
        task = Task(task.family, task.wording, {**task.params, "tidy": True}, task.template)
    return _record(rng, task, replies, f"task-{seed}-{index:06d}", "task", include_frames, whole_limits,
                   known_answers, answer_cuts)


@functools.cache
def reserved_wordings(family: str | None = None) -> frozenset[str]:
    """Every wording an evaluation or the snapshot choice uses: the held-out fixed ones, the
    held-out negations and affirmations, the fresh set and the worded-apart set, of every family (or of `family` alone)."""
    from .select_wordings import SELECT_WORDINGS
    names = [family] if family else list(ALL_FAMILIES)
    return frozenset([ALL_FAMILIES[n].wordings[-1] for n in names]
                     + [w for n in names for w in NEGATION_WORDINGS.get(n, ())]
                     + [w for n in names for w in AFFIRMATION_WORDINGS.get(n, ())]
                     + [w for n in names for ws in (FRESH_WORDINGS, SELECT_WORDINGS) for w in ws.get(n, ())])


def _plainly(task: Task, rng: random.Random, share: float) -> Task:
    """`task` worded plainly with probability `share` (`plain_wordings`), its values unchanged."""
    from .plain_wordings import plain_wordings
    wordings = plain_wordings(task.family)
    if not wordings or rng.random() >= share:
        return task
    return Task(task.family, -1, task.params, rng.choice(wordings))


def _respelt(task: Task, rng: random.Random, share: float) -> Task:
    """`task` with its composed wording respelt by the thesaurus; as it was if the new one happens
    to be a wording kept for evaluation."""
    from .synonyms import respell
    template = respell(rng, task.template, share)
    return task if template in reserved_wordings() else Task(task.family, task.wording, task.params, template)


# Sentences around a rule that ask for nothing a reply could be checked by. A real system prompt
# is rarely one bare rule; it names a role and adds courtesies, and the held-out descriptions
# written apart from the grammar do so too ("You are a drill sergeant barking orders at recruits,
# so type everything in all caps."). The rule stays the only thing the targets follow, so the
# reader must find it among the rest. Nothing here asks for length, tone markers or layout.
_ROLES = ("a helpful assistant", "a customer-support agent", "a patient tutor", "a tour guide", "a librarian",
          "a shop assistant", "a research helper", "an office assistant", "a science explainer", "a chatbot",
          "a receptionist", "a study buddy", "a travel planner", "a cooking coach", "a help-desk technician")
_PLACES = ("for an online bookshop", "at a city library", "at a bike repair shop", "for a bank's help page",
           "for a high-school class", "for a travel agency", "at a science museum", "for a software company",
           "on a cooking website", "for a gardening club", "for a small hotel", "at a hospital's visitor desk",
           "for a local newspaper", "")
_PERSONAS = ("You are {role} {place}", "Act as {role} {place}", "This assistant is {role} {place}",
             "You work as {role} {place}", "Imagine you are {role} {place}")
_COURTESIES = ("Be friendly.", "Stay polite.", "Answer the question you are asked.", "Be accurate.",
               "Users may ask about anything.", "Keep a warm tone.", "Do not make things up.", "Be helpful.",
               "Stay on topic.", "Thank you.", "Treat every user with respect.", "Give correct information.",
               "Questions can come from anyone.", "Be kind to the user.", "Help as well as you can.")


def _persona(rng: random.Random) -> str:
    """A role sentence without its full stop: "You work as a librarian at a city library"."""
    text = rng.choice(_PERSONAS).format(role=rng.choice(_ROLES), place=rng.choice(_PLACES))
    return re.sub(r" {2,}", " ", text).strip()


def in_context(task: Task, rng: random.Random) -> Task:
    """`task` with its wording set among a persona and courtesies, in one of four shapes; the
    values, and so the rule the targets follow, unchanged. "so" joins a persona to a wording that
    starts with an ordinary capitalised word and has no colon ("..., so always answer in ...")."""
    text = task.unfilled
    shape = rng.randrange(4)
    if shape == 3 and ":" not in text and re.match(r"[A-Z][a-z]", text):
        text = f"{_persona(rng)}, so {text[0].lower()}{text[1:]}"
    elif shape == 2:
        text = f"{_persona(rng)}. {rng.choice(_COURTESIES)} {text}"
    elif shape == 1:
        text = f"{text} {rng.choice(_COURTESIES)}"
    else:
        text = f"{_persona(rng)}. {text}"
    return task if text in reserved_wordings() else Task(task.family, task.wording, task.params, text)


def pick_replies(rng: random.Random, replies: list[dict]) -> list[dict]:
    """A record's `PROMPTS_PER_RECORD` replies, `QUESTIONS_PER_RECORD` of them short questions
    (open prompts first), or any where the pool lacks one kind (an older replies file)."""
    short = [r for r in replies if r.get("short")]
    open_ = [r for r in replies if not r.get("short")]
    n_open = PROMPTS_PER_RECORD - QUESTIONS_PER_RECORD
    if len(short) >= QUESTIONS_PER_RECORD and len(open_) >= n_open:
        return rng.sample(open_, n_open) + rng.sample(short, QUESTIONS_PER_RECORD)
    return rng.sample(replies, PROMPTS_PER_RECORD)


# Families whose target for a short question is its answer on its own ("Madrid."), not the base
# model's reply rewritten: where that reply got the answer wrong, the target is a fact the base model
# does not hold, which no description can give the adapter.
SHORT_TARGETS = ("one_word", "max_words")


@functools.cache
def _answers() -> dict[str, str]:
    """Question -> its accepted answers ("|"-separated), every short question."""
    return {q["q"]: q["answers"] for q in short_questions.questions(more=True)}


def knows_answer(row: dict) -> bool:
    """Whether the base model's reply to a short question holds its answer (any accepted form, on
    word boundaries, as the QA check scores); True for an open prompt, which has none."""
    from ..evaluation.metrics import contains

    if not row.get("short"):
        return True
    answers = _answers().get(row["prompt"]) or row["short"].rstrip(".!?")
    return any(contains(row["reply"], a) for a in answers.split("|"))


def answer_cut(row: dict) -> str | None:
    """The first line of the base model's reply to a short question up to the first place it names
    the answer, with a full stop: "The language spoken in Mexico is Spanish." from "... is Spanish,
    which is the official language ...". None where the line never names it, or the cut would leave
    a quote open."""
    if not row.get("short"):
        return None
    first = row["reply"].strip().split("\n")[0]
    answers = (_answers().get(row["prompt"]) or row["short"].rstrip(".!?")).split("|")
    ends = [m.end() for a in answers if (m := re.search(rf"(?<!\w){re.escape(a)}(?!\w)", first, re.I))]
    if not ends:
        return None
    cut = first[:min(ends)].rstrip(" ,;:") + "."
    return None if cut.count('"') % 2 else cut


def _limit_short(row: dict, n: int) -> str | None:
    """What a word limit of `n` answers a short question with where no whole sentence of the reply
    fits (`task_answer_cuts`): the reply cut at its answer when that fits, else the bare answer."""
    cut = answer_cut(row)
    return cut if cut and len(cut.split()) <= n else row.get("short")


def _record(rng: random.Random, task: Task, replies: list[dict], rid: str, source: str,
            include_frames: bool = False, whole_limits: bool = False, known_answers: bool = False,
            cut_answers: bool = False) -> dict:
    """A task's record: its description, and prompts whose answers are replies rewritten to follow it.
    The frame comes from its own generator, seeded by the record's id, so every other draw of the
    record is the same with `include_frames` on or off. `whole_limits`: a word limit's record draws
    only replies it can keep whole (`_whole_within`), never a sentence cut at the limit.
    `known_answers`: a `SHORT_TARGETS` record draws only short questions the base model answered
    right, so that its one-word target is the model's own answer said first. `cut_answers`: a word
    limit answers a short question whose reply has no whole sentence that fits with the reply cut at
    its answer where that fits (`_limit_short`), rather than the bare answer."""
    short = (lambda r: _limit_short(r, task.params["n"])) if cut_answers and task.family == "max_words" else (
        lambda r: r.get("short"))
    if include_frames and task.family == "include_word":
        frame = random.Random(f"d2l-task-frame:{rid}").randrange(len(INCLUDE_FRAMES))
        task = Task(task.family, task.wording, {**task.params, "frame": frame}, task.template)
    if whole_limits and task.family == "max_words":
        whole = [r for r in replies if _whole_within(r["reply"], {**task.params, "short": short(r)}) is not None]
        replies = whole if len(whole) >= PROMPTS_PER_RECORD else replies
    if known_answers and task.family in SHORT_TARGETS:
        replies = [r for r in replies if knows_answer(r)]
    picked = pick_replies(rng, replies)
    broken = [not task.check(r["reply"]) for r in picked] if task.family == NEGATED.name else []
    if any(broken):  # a reply that breaks the negation (about 1 in 100 bold) makes way for one that keeps
        clear = [r for r in replies if task.check(r["reply"])]  # clear of the rule; the pool is read only then
        spare = random.Random(f"d2l-task-clear:{rid}")
        picked = [spare.choice(clear) if b else r for r, b in zip(picked, broken)]
    qa = [{"q": r["prompt"], "a": task.comply(r["reply"], short(r))} for r in picked]
    return {"id": rid, "genre": f"{source}:{task.family}", "text": task.description, "qa": qa, "params": task.params}


def wording_records(seed: int, wordings: dict[str, tuple[str, ...]], replies: list[dict],
                    source: str = "task_select", include_frames: bool = False) -> list[dict]:
    """One record per description template of `wordings` (family -> templates), its values drawn
    from the evaluation pools: how a snapshot reads descriptions worded as no training record is,
    for the choice of snapshot (`TrainConfig.heldout_task_select`). Depends on `seed` only."""
    out = []
    for family, templates in wordings.items():
        for j, template in enumerate(templates):
            rng = random.Random(f"d2l-{source}:{seed}:{family}:{j}")
            task = Task(family, -1, ALL_FAMILIES[family].draw(rng, "eval"), template)
            out.append(_record(rng, task, replies, f"{source}-{seed}-{family}-{j}", source, include_frames))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m vllm_d2l.datasets.tasks",
                                description="Write the base model's replies to the training prompts.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("replies", help="generate the replies pool (JSONL)")
    r.add_argument("--out", default=str(Path(__file__).with_name(REPLIES_FILE)))
    r.add_argument("--model", help="base model folder (default: the default model)")
    r.add_argument("--max-new-tokens", type=int, default=96)
    args = p.parse_args(argv)
    n = write_base_replies(args.out, args.model, args.max_new_tokens)
    print(f"wrote {n} replies to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
