"""Spelling variants of a token: the ids the same text takes at another place in a sentence.

A byte-level BPE spells a word differently after a space and at the start of a line: a
description says "Mark the lines of your list x), y), z)." and stores " x" and "),", while the
list it asks for opens with "x" and ")". The copy path (`HypernetConfig.pointer_variants`) raises
a stored token's variants beside the token, so what a description shows in mid-sentence can be
written where a line starts, and the reverse.
"""
from __future__ import annotations

import torch

# the kinds of variant, one column each of `variant_table`; the copy path weighs each kind apart
KINDS = ("unspaced", "spaced", "unpunctuated")
_SPACE_MARKS = ("Ġ", "▁")  # byte-level BPE (GPT-2, Llama 3, SmolLM) and SentencePiece


def variants_of(token: str, vocab: dict[str, int]) -> tuple[int, int, int]:
    """The ids of `token`'s variants in `KINDS` order, -1 where the vocabulary has none:
    without its leading space, with one, and without a closing "," or "." (")," -> ")")."""
    mark = next((m for m in _SPACE_MARKS if token.startswith(m)), None)
    unspaced = vocab.get(token[1:], -1) if mark and len(token) > 1 else -1
    spaced = max((vocab.get(m + token, -1) for m in _SPACE_MARKS), default=-1) if not mark else -1
    unpunctuated = vocab.get(token[:-1], -1) if len(token) > 1 and token[-1] in ",." and token[:-1] not in _SPACE_MARKS else -1
    return unspaced, spaced, unpunctuated


def variant_table(tokenizer, vocab_size: int) -> torch.Tensor:
    """[vocab_size, len(KINDS)] int64: row v holds the ids of token v's variants (-1: none).
    Ids past the tokenizer's vocabulary (the head's padding rows) have none."""
    vocab = {t: i for t, i in tokenizer.get_vocab().items() if i < vocab_size}
    rows = [(-1,) * len(KINDS)] * vocab_size
    for token, i in vocab.items():
        rows[i] = variants_of(token, vocab)
    return torch.tensor(rows, dtype=torch.long)
