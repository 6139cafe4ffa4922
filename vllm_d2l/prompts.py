"""The two prompt shapes every part of the project agrees on (training, evaluation, examples).

An adapter is trained to answer the *bare question*, exactly as a user of the server would ask
it; the teacher sees the same question after the document. Changing either string changes what
the shipped hypernetwork was trained for, so both live here and nowhere else.
"""
from __future__ import annotations


def question_messages(question: str) -> list[dict]:
    """What the student (base model + adapter) and the no-context baseline see."""
    return [{"role": "user", "content": question}]


def context_messages(document: str, question: str) -> list[dict]:
    """What the teacher (and the in-context baseline) sees: the document, then the question."""
    return [{"role": "user", "content": f"{document.strip()}\n\nAnswer using the text above.\n{question}"}]


def described_messages(description: str, question: str) -> list[dict]:
    """A task description, then the question, in the user message: where the base model follows a
    description most often (the task evaluation's "user" condition, and the guided task teacher)."""
    return [{"role": "user", "content": f"{description}\n\n{question}"}]


def render(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a chat prompt, ending where the assistant starts to speak."""
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(out["input_ids"])
