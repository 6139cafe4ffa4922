"""A wide pool of English words for the values of training tasks (`task_wide_words`).

The open values of the training draws (`tasks._OPEN_WORDS`: 189 nouns of a few kinds) are few
enough for the generator to learn as a set, and then a value it has never seen is answered with one
it knows: at step 9400, told "Make sure "pickle" appears in your answer.", the adapters wrote the
right frame around the wrong word (`Here is "paper" for you.`, `Today's word is "crumble".`), and
"Talk soon." came out as "Talk to me.". From a pool of thousands of words of every kind no value
can be guessed; it has to be read from the description, which is what a held-out one asks.

The pool is the base model's own whole-word tokens (a leading space, then 4 to 12 lower-case
letters) that an English dictionary lists (Debian's `wamerican`, `/usr/share/dict/american-english`),
less a few words no reply should be asked to carry. Common words, then, each one or a few tokens
when quoted. It is built once and committed beside this file, so training needs neither the
dictionary nor anything but the package:

    python -m vllm_d2l.datasets.wide_words [--dict FILE]
"""
from __future__ import annotations

import argparse
import functools
import re
from pathlib import Path

WORDS_FILE = Path(__file__).with_name("wide_words.txt")
DICTIONARY = Path("/usr/share/dict/american-english")
_WORD = re.compile(r"[a-z]{4,12}")
# offensive words: these stems with whatever follows them, and these words exactly (as stems they
# would take "analysis" or "jewel" with them). A reply built around one is not worth what it teaches.
_UNWANTED_STEMS = ("fuck", "shit", "cunt", "bitch", "nigg", "fagg", "slut", "whore", "rape", "porn", "sex",
                   "nazi", "cock", "dick", "puss", "bastard", "retard", "boob", "penis", "vagin", "orgasm",
                   "erotic", "nude", "naked", "kill", "suicid", "murder", "terror", "genocid", "dildo", "masturb",
                   "semen", "sperm", "negro", "tranny", "abort", "rapist", "molest", "incest", "pedo")
_UNWANTED_WORDS = frozenset({"anal", "anus", "tits", "spic", "chink", "dyke", "kike", "homo", "jew", "jews", "fag",
                             "fags", "coon", "coons", "gook", "wank", "twat", "piss", "pissed", "crap", "damn", "hell"})


@functools.cache
def wide_words() -> tuple[str, ...]:
    """The committed pool, sorted."""
    return tuple(WORDS_FILE.read_text().split())


def build(tokenizer, dictionary: set[str]) -> list[str]:
    """The tokenizer's whole-word tokens that are dictionary words, less the unwanted ones, sorted."""
    out = set()
    for token in tokenizer.get_vocab():
        word = tokenizer.convert_tokens_to_string([token])
        if word.startswith(" ") and _WORD.fullmatch(word[1:]) and word[1:] in dictionary:
            out.add(word[1:])
    return sorted(w for w in out if w not in _UNWANTED_WORDS and not w.startswith(_UNWANTED_STEMS))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build the wide word pool of the task data from the base "
                                            "model's tokenizer and an English dictionary.")
    p.add_argument("--dict", type=Path, default=DICTIONARY, help="one word a line (Debian package wamerican)")
    p.add_argument("--out", type=Path, default=WORDS_FILE)
    args = p.parse_args(argv)
    if not args.dict.is_file():
        p.error(f"{args.dict} not found: install the Debian package wamerican or pass --dict")
    from transformers import AutoTokenizer

    from ..base_model import ensure_default_model

    tokenizer = AutoTokenizer.from_pretrained(ensure_default_model())
    words = build(tokenizer, set(args.dict.read_text().split()))
    # ten to a line keeps the file short to read and its diffs small
    args.out.write_text("".join(" ".join(words[i:i + 10]) + "\n" for i in range(0, len(words), 10)))
    print(f"{len(words)} words -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
