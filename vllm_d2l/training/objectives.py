"""Losses. Each takes the generated per-document factors and returns a scalar to minimise.

Context distillation: the teacher is the base model with the document in its prompt, the student
is the same model with the adapter and no document; on the answer positions the student matches
the teacher's top-k distribution (renormalised over those k tokens), plus an optional
cross-entropy on the gold answer because a 135M teacher is often wrong.
Reconstruction (pretraining, no questions needed): the student with the adapter must reproduce the
start of the chunk it was generated from, given only a fixed instruction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..apply import lora_applied
from ..prompts import context_messages, question_messages, render

RECONSTRUCT_PROMPT = "Repeat the document you have memorised, word for word."


@dataclass
class Example:
    """One (prompt, answer) pair, tokenized; the answer includes the end-of-turn token."""

    prompt: list[int]
    answer: list[int]


def pad_batch(examples: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask, and a mask of positions whose *next* token is an answer token."""
    width = max(len(e.prompt) + len(e.answer) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    target = torch.zeros_like(ids, dtype=torch.bool)
    for i, e in enumerate(examples):
        seq = e.prompt + e.answer
        ids[i, :len(seq)] = torch.tensor(seq)
        attn[i, :len(seq)] = 1
        target[i, len(e.prompt) - 1:len(seq) - 1] = True
    return ids, attn, target


def answer_ids(tokenizer, answer: str) -> list[int]:
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if end is None or end == tokenizer.unk_token_id:
        end = tokenizer.eos_token_id
    return tokenizer(answer.strip(), add_special_tokens=False)["input_ids"] + [end]


@torch.no_grad()
def teacher_topk(model, tokenizer, document: str, qa: list[dict], k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Teacher's top-k (token ids, log-probs) at each answer position, per question."""
    examples = [Example(render(tokenizer, context_messages(document, x["q"])), answer_ids(tokenizer, x["a"])) for x in qa]
    ids, attn, target = pad_batch(examples, tokenizer.pad_token_id or 0)
    logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits.float()
    out = []
    for i in range(len(examples)):
        lp = F.log_softmax(logits[i][target[i]], dim=-1)
        vals, idx = lp.topk(k, dim=-1)
        out.append((idx, vals))
    return out


def student_loss(model, tokenizer, factors: dict, qa: list[dict], teacher: list | None,
                 kl_weight: float, ce_weight: float) -> tuple[torch.Tensor, dict]:
    """KL to the teacher's top-k plus CE on the gold answer, for the questions of one document.

    `factors` are one document's (A [r, d_in], B [d_out, r]) pairs, differentiable.
    """
    examples = [Example(render(tokenizer, question_messages(x["q"])), answer_ids(tokenizer, x["a"])) for x in qa]
    ids, attn, target = pad_batch(examples, tokenizer.pad_token_id or 0)
    with lora_applied(model, factors):
        logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits.float()
    labels = ids[:, 1:][target[:, :-1]]
    pos_logits = logits[target]  # [P, V] in example order
    logp = F.log_softmax(pos_logits, dim=-1)
    ce = F.nll_loss(logp, labels)
    loss = ce_weight * ce
    stats = {"ce": ce.item()}
    if teacher is not None and kl_weight > 0:
        idx = torch.cat([t[0] for t in teacher])
        t_lp = torch.cat([t[1] for t in teacher])
        t_p = F.softmax(t_lp, dim=-1)  # renormalised over the teacher's top-k
        s_lp = torch.gather(logp, 1, idx)
        s_lp = s_lp - torch.logsumexp(s_lp, dim=-1, keepdim=True)
        kl = (t_p * (t_p.clamp_min(1e-12).log() - s_lp)).sum(-1).mean()
        loss = loss + kl_weight * kl
        stats["kl"] = kl.item()
    return loss, stats


def reconstruct_loss(model, tokenizer, factors: dict, chunk_ids: list[int], n_tokens: int) -> tuple[torch.Tensor, dict]:
    """CE of the chunk's first `n_tokens` tokens under base model + adapter, from a fixed prompt."""
    ex = Example(render(tokenizer, question_messages(RECONSTRUCT_PROMPT)), list(chunk_ids[:n_tokens]))
    ids, attn, target = pad_batch([ex], tokenizer.pad_token_id or 0)
    with lora_applied(model, factors):
        logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits.float()
    ce = F.cross_entropy(logits[target], ids[:, 1:][target[:, :-1]])
    return ce, {"rec": ce.item()}
