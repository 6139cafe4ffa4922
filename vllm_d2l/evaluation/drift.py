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


def _reply_logprobs(model, sequences: list[list[int]], starts: list[int], batch_size: int,
                    factors: dict | None) -> list[torch.Tensor]:
    """Log-softmax [n_i, V] at the positions that predict each sequence's tokens from `starts[i]` on."""
    out: list[torch.Tensor] = []
    pad = 0  # right-padded and causal: no position read sees a pad, so its id does not matter
    for s in range(0, len(sequences), batch_size):
        group, first = sequences[s:s + batch_size], starts[s:s + batch_size]
        width = max(len(q) for q in group)
        ids = torch.full((len(group), width), pad, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for i, q in enumerate(group):  # right-padded: positions are the sequence's own
            ids[i, :len(q)] = torch.tensor(q)
            mask[i, :len(q)] = 1
        with lora_applied(model, factors or {}):
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        for i, (q, f) in enumerate(zip(group, first)):
            out.append(torch.log_softmax(logits[i, f - 1:len(q) - 1].float(), -1).cpu())  # [n_i, V]
    return out


@torch.no_grad()
def answer_drift(model, tok, questions: list[str], replies: list[str], factors_by_task: dict,
                 batch_size: int = 8, max_tokens: int = 32) -> dict:
    """Per task and on average over tasks: "kl" (nats a reply token, bare -> adapted) and
    "logprob" (the adapted model's mean log-probability of the bare reply's tokens), over the
    bare model's `replies` (its first `max_tokens` tokens) to `questions`."""
    prompts = [render(tok, [{"role": "user", "content": q}]) for q in questions]
    answers = [tok(r, add_special_tokens=False)["input_ids"][:max_tokens] for r in replies]
    keep = [i for i, a in enumerate(answers) if a]
    sequences = [prompts[i] + answers[i] for i in keep]
    starts = [len(prompts[i]) for i in keep]
    bare = _reply_logprobs(model, sequences, starts, batch_size, None)
    per_task = {}
    tokens = sum(len(answers[i]) for i in keep)
    if not tokens:
        return {"questions": 0, "tokens": 0, "bare_logprob": None, "kl": None, "logprob": None, "per_task": {}}
    for task, factors in factors_by_task.items():
        kl, lp, n = 0.0, 0.0, 0
        for b, a, i in zip(bare, _reply_logprobs(model, sequences, starts, batch_size, factors), keep):
            kl += (b.exp() * (b - a)).sum().item()  # summed over the reply's tokens
            lp += a.gather(1, torch.tensor(answers[i])[:, None]).sum().item()
            n += len(answers[i])
        per_task[task] = {"kl": kl / n, "logprob": lp / n}
    mean = lambda key: sum(r[key] for r in per_task.values()) / len(per_task) if per_task else None  # noqa: E731
    bare_lp = sum(b.gather(1, torch.tensor(answers[i])[:, None]).sum().item() for b, i in zip(bare, keep))
    return {"questions": len(keep), "tokens": tokens, "bare_logprob": bare_lp / tokens,
            "kl": mean("kl"), "logprob": mean("logprob"), "per_task": per_task}
