"""The task hold-out's compliance probe: free greedy replies under each description's adapter,
scored by the description's family checker.

Why beside the losses: every other hold-out figure is teacher-forced on replies we built, and a
snapshot can lower those losses while the replies it writes by itself still break the rule (a
sign-off half copied, a limit passed by a sentence). The targets of the task mode count replies
that follow the rule, so the choice of snapshot should too.
"""
from __future__ import annotations

import torch

from ..datasets.tasks import ALL_FAMILIES
from ..evaluation.generation import generate
from ..prompts import question_messages, render


def family_of(rec: dict) -> str:
    return str(rec["genre"]).split(":", 1)[1]


@torch.no_grad()
def compliance(model, tokenizer, records: list[dict], factors: dict, prompts_per_record: int,
               max_new_tokens: int, batch_size: int = 16) -> tuple[float, list[bool]]:
    """Share of replies that follow their record's rule, and each verdict in order (record by
    record, its first `prompts_per_record` prompts).

    `factors`: {module: (A [D, R, d_in], B [D, d_out, R])}, row d the adapter of `records[d]`;
    each reply is generated with its own record's row, several records to a batch."""
    rows = [(d, qa["q"]) for d, rec in enumerate(records) for qa in rec["qa"][:prompts_per_record]]
    verdicts: list[bool] = []
    for start in range(0, len(rows), batch_size):
        group = rows[start:start + batch_size]
        doc = torch.tensor([d for d, _ in group], device=next(iter(factors.values()))[0].device)
        mine = {k: (a.index_select(0, doc), b.index_select(0, doc)) for k, (a, b) in factors.items()}  # [n, ...]
        prompts = [render(tokenizer, question_messages(q)) for _, q in group]
        replies = generate(model, tokenizer, prompts, max_new_tokens, len(group), mine)
        for (d, _), reply in zip(group, replies):
            rec = records[d]
            verdicts.append(bool(ALL_FAMILIES[family_of(rec)].check(reply, rec["params"])))
    return sum(verdicts) / max(1, len(verdicts)), verdicts
