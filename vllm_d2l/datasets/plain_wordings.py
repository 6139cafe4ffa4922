"""Plain wordings: a common verb and the rule's own noun, as people write short instructions.

The training grammar gives each family verbs of its own ("format ... as a bulleted list", "end
your reply with ..."), and a verb that several families share ("finish by asking", "finish each
sentence with") ended up naming the family that had it. The reader had learnt to key on the verb:
at step 9610 "Use bullets." and "Write bullets for everything you say." gave no list at all while
"Answer as a list of bullets." gave one in every reply, and "Finish with "X"" wrote no sign-off
while "End your reply with "X"" did. Here every verb is shared by many families and every family
is named by several nouns, so only the object tells one rule from another:

    Use bullet points in every reply.        Stick to all caps.
    Round off with "Lantern out."            Open with "Morning, Ada!" each time.

A plain wording never starts with the same two words as a wording kept for evaluation of its
family (`tasks.reserved_wordings`), nor shares most of its words with one ("Use bullet points for
everything you say." beside the held-out "Use bullets for everything you say."), so the held-out
sentences stay unseen in all but single words (tested).
"""
from __future__ import annotations

import difflib
import functools
import re

# Verbs shared across families, by the kind of object they take.
_USE = "(Use|Stick to|Go with|Keep to|Switch to|Only use|Always use|Rely on|Write with|Reply with|Respond with)"
_IN = "(Write|Answer|Reply|Respond|Talk|Do everything|Give your answers|Put everything)"  # "... in {object}"
_START = "(Start|Begin|Open|Lead|Kick off|Preface every reply|Head every answer)"
_END = "(Finish|End|Close|Conclude|Wrap up|Round off|Sign off)"
_NO = "(Avoid|Skip|Drop|Leave out|Steer clear of|Do without|Never use|Don't use|Cut out|No)"
# Where the rule applies; the empty alternative leaves the sentence bare.
_SCOPE = ("(every time|for everything you say|in every reply|at all times|always|without exception|"
          "whatever I ask|in all your answers|from now on|throughout|each time|for every answer|)")

_OBJECTS: dict[str, tuple[str, ...]] = {
    "bullets": (f"{_USE} (bullets|bullet points|a bulleted list|a dash list|dashes at the start of lines)",
                f"{_IN} in (bullets|bullet points|a bulleted list|dashed lines)"),
    "upper": (f"{_USE} (capitals|capital letters only|all caps|caps lock|uppercase letters|block capitals)",
              f"{_IN} in (capitals|all caps|upper case|block capitals|uppercase)"),
    "title_case": (f"{_USE} (title case|a capital at the start of every word|an initial capital on each word)",
                   f"{_IN} in title case"),
    "lettered": (f"{_USE} (a lettered list|lettered points)", f"{_USE} the letters a), b), c) for the points",
                 f"{_IN} in (a lettered list|lettered points)"),
    "json": (f'{_USE} (JSON|a JSON object) with the keys "{{k0}}" and "{{k1}}"',
             f'{_IN} in JSON with the keys "{{k0}}" and "{{k1}}"'),
    "one_word": (f"{_USE} (one word|a single word|one word only|just one word)",
                 f"{_IN} in (one word|a single word)"),
    "max_words": (f"{_USE} ({{n}} words or fewer|at most {{n}} words|no more than {{n}} words|{{n}} words at most)",
                  f"{_IN} in (at most {{n}} words|{{n}} words or fewer)"),
    "max_sentences": (f"{_USE} ({{n}} sentences or fewer|at most {{n}} sentences|no more than {{n}} sentences)",
                      f"{_IN} in (at most {{n}} sentences|{{n}} sentences or fewer)"),
    "exclaim": (f"{_USE} (exclamation marks instead of full stops|an exclamation mark after every sentence)",),
    "include_word": ('(Use|Include|Work in|Mention|Slip in|Add|Always use) the word "{word}"',),
    "avoid_word": (f'{_NO} the word "{{word}}"',),
    "opening": (f'{_START} with (the words|the phrase|) "{{phrase}}"',),
    "signoff": (f'{_END} with (the words|the line|the phrase|) "{{phrase}}"',),
    "end_question": (f"{_END} (with|on) (a question|a follow-up question|a question to the user)",),
    # the extra families
    "quoted": (f"{_USE} double quotes around (everything|the whole reply)", f"{_IN} in double quotes"),
    "line_prefix": ('(Start|Begin|Open|Lead off) (every|each) line with "{symbol}"',),
    "heading": (f'{_START} with the heading "{{heading}}"',),
    "no_commas": (f"{_NO} (commas|any commas|all commas)",),
    "separator": (f'{_USE} "{{sep}}" between (sentences|your sentences), all on one line',),
    "summary_line": (f'{_END} with a (summary|recap) line starting "{{lead}}"',),
    "bold": (f"{_USE} (bold|**bold**) for the (key|main|important) words",),
    "tagged": (f"{_USE} <{{tag}}> tags around the (reply|answer|whole reply)", f"{_IN} in <{{tag}}> tags"),
    "labelled": (f"{_USE} the labels {{l1}}, {{l2}}, {{l3}}", f"{_IN} in a list labelled {{l1}}, {{l2}}, {{l3}}"),
}


NEAR = 0.6  # word-sequence similarity to a reserved wording at which a plain one is dropped


def _words(wording: str) -> list[str]:
    return re.findall(r"[\w{}']+", wording.lower())


def near(wording: str, reserved: str) -> bool:
    """Whether `wording` starts as `reserved` does or shares most of its words, in order."""
    a, b = _words(wording), _words(reserved)
    return a[:2] == b[:2] or difflib.SequenceMatcher(None, a, b).ratio() >= NEAR


@functools.cache
def plain_wordings(family: str) -> tuple[str, ...]:
    """Every plain wording of a training family (templates with its placeholders); none is `near` a
    wording kept for evaluation of that family."""
    from .tasks import expand, reserved_wordings

    reserved = reserved_wordings(family)
    out = []
    for pattern in _OBJECTS.get(family, ()):
        for core in expand(f"{pattern} {_SCOPE}"):
            sentence = core + "."
            if not any(near(sentence, r) for r in reserved):
                out.append(sentence)
    return tuple(dict.fromkeys(out))
