"""A wide pool of English words for the values of training tasks (`task_wide_words`).

The open values of the training draws (`tasks._OPEN_WORDS`: 189 nouns of a few kinds) are few
enough for the generator to learn as a set, and then a value it has never seen is answered with one
it knows: at step 9400, told "Make sure "pickle" appears in your answer.", the adapters wrote the
right frame around the wrong word (`Here is "paper" for you.`, `Today's word is "crumble".`), and
"Talk soon." came out as "Talk to me.". From a pool of thousands of words of every kind no value
can be guessed; it has to be read from the description, which is what a held-out one asks.

The pool is every word of 4 to 12 lower-case letters in an English dictionary (SCOWL, as Debian's
`wamerican` installs it in `/usr/share/dict/american-english`; its notice is `wide_words.NOTICE`),
less a few no reply should be asked to carry: about 60,000 words, a quarter of them one token of the
base model after a space and the rest two to six, as the held-out values are ("pickle" is one,
"guacamole" four). It is built once and committed beside this file, compressed (the working tree
travels with every GPU job), so training needs neither the dictionary nor anything but the package:

    python -m vllm_d2l.datasets.wide_words [--dict FILE]
"""
from __future__ import annotations

import argparse
import functools
import gzip
import re
from pathlib import Path

WORDS_FILE = Path(__file__).with_name("wide_words.txt.gz")
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
    return tuple(gzip.decompress(WORDS_FILE.read_bytes()).decode().split())


def build(dictionary: str) -> list[str]:
    """The dictionary's words (one a line) of 4 to 12 lower-case letters, less the unwanted ones, sorted."""
    words = {w for w in dictionary.split() if _WORD.fullmatch(w)}
    return sorted(w for w in words if w not in _UNWANTED_WORDS and not w.startswith(_UNWANTED_STEMS))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build the wide word pool of the task data from an English dictionary.")
    p.add_argument("--dict", type=Path, default=DICTIONARY, help="one word a line (Debian package wamerican)")
    p.add_argument("--out", type=Path, default=WORDS_FILE)
    args = p.parse_args(argv)
    if not args.dict.is_file():
        p.error(f"{args.dict} not found: install the Debian package wamerican or pass --dict")
    words = build(args.dict.read_text())
    # mtime=0: the same words give the same bytes, so a rebuild changes nothing in the history
    args.out.write_bytes(gzip.compress("\n".join(words).encode() + b"\n", compresslevel=9, mtime=0))
    print(f"{len(words)} words -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
