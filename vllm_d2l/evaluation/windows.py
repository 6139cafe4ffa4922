"""Each question asked of only the sentences around its answer (`vllm-d2l eval --answer-window N`).

Why: a miss on a whole document is either a read that cannot pick one fact among many (the
memory's interference grows with its length) or a value the adapter cannot say even when it is
the only thing stored. Asking every question of a short window that holds its answer removes the
first cause, so what is still missed there is the second. On the second hand-written set this
split ordinary-word answers ("windowsill", "loading bay") from names and figures: the window lifted
names and figures but not ordinary words.
"""
from __future__ import annotations

from ..datasets.cloze import sentences as _paragraph_sentences


def sentences(text: str) -> list[str]:
    """Sentences of a document, lines apart (list items and headers end at the line), split as
    the cloze records split prose (abbreviations such as "Mr." do not end one)."""
    return [s for line in text.splitlines() for s in _paragraph_sentences(" ".join(line.split()))]


def _answers(qa: dict) -> list[str]:
    a = qa["a"]
    return [a] if isinstance(a, str) else list(a)


def answer_windows(records: list[dict], radius: int = 1) -> list[dict]:
    """One record per question: the first sentence holding one of its answers, with `radius`
    sentences either side. A question whose answer is in no single sentence (spread over a line
    break, or not stated verbatim) is left out; `eval` prints how many were kept."""
    if radius < 0:
        raise ValueError("the answer window's radius must be 0 or more sentences")
    out = []
    for rec in records:
        parts = sentences(rec["text"])
        for i, qa in enumerate(rec["qa"]):
            wanted = [a.lower() for a in _answers(qa)]
            hit = next((j for j, s in enumerate(parts) if any(a in s.lower() for a in wanted)), None)
            if hit is None:
                continue
            window = " ".join(parts[max(0, hit - radius):hit + radius + 1])
            out.append({**{k: v for k, v in rec.items() if k not in ("text", "qa")},
                        "id": f"{rec.get('id', 'doc')}-q{i}", "text": window, "qa": [qa]})
    return out
