"""How far an adapter moves the base model's own right answers, teacher-forced (`--qa-drift`).

The QA check's greedy figure moves in whole answers: one flipped question is 3 points of
"retained", and snapshots 50 steps apart differ by more than their real change. Here the bare
model's own replies to the questions it answers right are read back under each adapter, and two
continuous figures come out: the mean KL from the bare model's next-token distribution to the
adapted one over the reply's tokens (nats a token), and the mean log-probability the adapted model
gives those tokens. Both are zero-cost for an adapter that leaves answers alone, and both see a
drift before it flips an answer.
"""
from __future__ import annotations

import torch

from ..apply import lora_applied
from ..prompts import render
from ..training.objectives import Example, pad_batch, target_logits


def reply_logprobs(model, examples: list[Example], batch_size: int, factors: dict | None) -> list[torch.Tensor]:
    """Log-softmax [n_i, V] at the positions that predict each example's answer tokens."""
    out: list[torch.Tensor] = []
    for s in range(0, len(examples), batch_size):
        group = examples[s:s + batch_size]
        ids, attn, target = (t.to(model.device) for t in pad_batch(group, 0))  # right-padded: pads never read
        with lora_applied(model, factors or {}):
            logits = target_logits(model, ids, attn, target)  # [P, V]
        out.extend(torch.log_softmax(logits, -1).cpu().split([len(e.answer) for e in group]))
    return out


@torch.no_grad()
def answer_drift(model, tok, questions: list[str], replies: list[str], factors_by_task: dict,
                 batch_size: int = 8, max_tokens: int = 32) -> dict:
    """Per task and on average over tasks: "kl" (nats a reply token, bare -> adapted) and
    "logprob" (the adapted model's mean log-probability of the bare reply's tokens), over the
    bare model's `replies` (its first `max_tokens` tokens) to `questions`."""
    prompts = [render(tok, [{"role": "user", "content": q}]) for q in questions]
    answers = [tok(r, add_special_tokens=False)["input_ids"][:max_tokens] for r in replies]
    examples = [Example(p, a) for p, a in zip(prompts, answers) if a]
    tokens = sum(len(e.answer) for e in examples)
    if not tokens:
        return {"questions": 0, "tokens": 0, "bare_logprob": None, "kl": None, "logprob": None, "per_task": {}}
    gold = [torch.tensor(e.answer)[:, None] for e in examples]  # [n_i, 1]
    bare = reply_logprobs(model, examples, batch_size, None)
    per_task = {}
    for task, factors in factors_by_task.items():
        moved = reply_logprobs(model, examples, batch_size, factors)
        kl = sum((b.exp() * (b - a)).sum().item() for b, a in zip(bare, moved))  # summed over reply tokens
        lp = sum(a.gather(1, g).sum().item() for a, g in zip(moved, gold))
        per_task[task] = {"kl": kl / tokens, "logprob": lp / tokens}
    mean = lambda key: sum(r[key] for r in per_task.values()) / len(per_task) if per_task else None  # noqa: E731
    bare_lp = sum(b.gather(1, g).sum().item() for b, g in zip(bare, gold))
    return {"questions": len(examples), "tokens": tokens, "bare_logprob": bare_lp / tokens,
            "kl": mean("kl"), "logprob": mean("logprob"), "per_task": per_task}
