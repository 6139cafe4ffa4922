"""Documents cut to exact token counts, all distinct, from text every machine has.

Why distinct: vLLM's prefix cache reuses KV blocks shared from the first token on, so two requests
with the same document cost one prefill. The in-context arm is measured with a new document per
request unless it deliberately repeats one. Every document starts with its own short header, so no
two of them share even a first block, whatever the passages' offsets.

Text: CPython's `pydoc_data.topics` (the PSF-licensed help topics, ~113k tokens with the
default tokenizer), read as one token stream and cut at different offsets.
"""
from __future__ import annotations

from functools import cached_property

QUESTIONS = (
    "What is the main subject of the document?",
    "Summarise the first paragraph in one sentence.",
    "Which keyword or function does the document explain?",
    "Give one example that the document mentions.",
    "What does the document warn the reader about?",
    "List two terms defined in the document.",
    "Who would find this document useful, and why?",
    "What is the last point the document makes?",
)
_STRIDE = 997  # prime: offsets k * 997 mod N visit every position before repeating


class DocumentSource:
    """`document(tokens, k)`: the k-th distinct document of at most `tokens` tokens as the server
    will count them (the decoded text is re-encoded and trimmed, so a 2,048-token document never
    spills a one-token third chunk)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        # the corpus is tokenized as one long stream on purpose; silence the window warning
        self.tokenizer.model_max_length = 10**9

    @cached_property
    def stream(self) -> list[int]:
        from pydoc_data.topics import topics

        ids: list[int] = []
        for key in sorted(topics):
            ids += self.tokenizer(topics[key].strip() + "\n\n", add_special_tokens=False)["input_ids"]
        return ids

    def _ids(self, n: int, offset: int) -> list[int]:
        s = self.stream
        start = offset % len(s)
        out = s[start:start + n]
        while len(out) < n:
            out += s[:n - len(out)]
        return out

    def document(self, tokens: int, k: int, tag: str = "") -> str:
        header = self.tokenizer(f"[Document {tag}{tokens}-{k}]\n", add_special_tokens=False)["input_ids"]
        want = max(tokens - len(header), 1)
        body = self._ids(want, k * _STRIDE + tokens)
        text = self.tokenizer.decode(header + body)
        for _ in range(3):  # decoding then re-encoding can merge or split a token at the cuts
            extra = self.count(text) - tokens
            if extra <= 0:
                break
            body = body[:len(body) - extra]
            text = self.tokenizer.decode(header + body)
        return text

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def question(i: int) -> str:
    return QUESTIONS[i % len(QUESTIONS)]
