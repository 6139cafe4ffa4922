"""How many of the QA check's answers a rule leaves to any adapter, not only a generated one.

A generated task adapter that loses answers under a rule (upper case kept 13 % of the base model's
right answers at 10200) could be reading the description badly, or be writing where no adapter of
its shape can keep them. This trains one static LoRA directly on the rule's own targets (the base
model's replies to the training prompts, rewritten by the family's `comply`), at the layers asked,
and answers the QA check with it: the share of right answers kept there is what the generator's
adapter, at the same place and rank, could hope to keep. It also reads, teacher-forced on each
right base reply rewritten by the rule, whether the answer's first token comes first, with the
static adapter and bare (`answer_ranks`).

    python -m vllm_d2l.evaluation.ceiling --family upper --layers 15-29 --steps 120 --out ceiling.json \
        [--hypernet DIR --description "Shout: every letter of your answer must be a capital."]

The QA check's questions are left out of the training prompts.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from ..apply import lora_applied
from ..base_model import ensure_default_model, load_model_and_tokenizer
from ..datasets.tasks import ALL_FAMILIES, load_replies
from ..prompts import render
from ..training.objectives import Example, pad_batch, target_logits
from .drift import reply_logprobs
from .tasks import QA_CHECK, answered, task_messages


def layer_range(text: str) -> list[int]:
    """"15-29" -> [15, ..., 29]; "3" -> [3]."""
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def rule_targets(tok, family: str, params: dict, max_tokens: int = 120) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) for every training prompt outside the QA check: the base reply
    rewritten to follow `family`'s rule with `params`."""
    fam = ALL_FAMILIES[family]
    asked = {q for q, _ in QA_CHECK}
    end = tok.convert_tokens_to_ids("<|im_end|>")
    out = []
    for row in load_replies(more_questions=True):
        if row["prompt"] in asked:
            continue
        target = tok(fam.comply(row["reply"], params), add_special_tokens=False).input_ids[:max_tokens]
        out.append((render(tok, task_messages("none", "", row["prompt"])), target + [end]))
    return out


def train_static(model, tok, data, modules: list[str], rank: int, steps: int, batch: int, lr: float,
                 seed: int = 0, log=print) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """One LoRA (A [rank, d_in] random, B [d_out, rank] zero) per module, trained by cross-entropy
    on the targets; returns the factors as `lora_applied` takes them."""
    torch.manual_seed(seed)
    named = dict(model.named_modules())
    factors = {m: (torch.randn(rank, named[m].in_features) / named[m].in_features ** 0.5,
                   torch.zeros(named[m].out_features, rank)) for m in modules}
    params = [t.requires_grad_(True) for ab in factors.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng, pad, t0 = random.Random(seed), tok.pad_token_id or 0, time.time()
    for step in range(steps):
        rows = [Example(p, a) for p, a in rng.sample(data, min(batch, len(data)))]
        ids, mask, target = pad_batch(rows, pad)
        with lora_applied(model, factors):
            logits = target_logits(model, ids, mask, target)  # [P, V]: the positions that predict a target token
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([t for e in rows for t in e.answer]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            log(f"step {step}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    return {m: (a.detach(), b.detach()) for m, (a, b) in factors.items()}


def answer_ranks(model, tok, family: str, params: dict, replies: list[str], factors: dict | None = None) -> list[dict]:
    """Teacher-forced on each right base reply rewritten by the rule, up to where it names the
    answer: the rank of the answer's first token (0: greedy writes it) with `factors` applied, or
    bare. Tells a description read badly from an answer the rule's text itself hides: if the bare
    model, given the rewritten words before the answer, does not put it first either, no reading of
    the description is to blame."""
    from .metrics import contains

    fam = ALL_FAMILIES[family]
    read = []  # (question, answer, the tokens before it, its first token)
    for (question, gold), reply in zip(QA_CHECK, replies):
        answer = next((a for a in gold.split("|") if contains(reply, a)), None)
        text = fam.comply(reply, params)
        at = text.lower().find(answer.lower()) if answer else -1
        if at < 0:  # a wrong base reply, or a rewrite that dropped the answer
            continue
        prompt = render(tok, task_messages("none", "", question))
        before = prompt + tok(text[:at], add_special_tokens=False).input_ids
        full = prompt + tok(text[:at + len(answer)], add_special_tokens=False).input_ids
        while full[:len(before)] != before:  # the answer's first token took in the last one before it
            before = before[:-1]
        read.append((question, answer, before, full[len(before)]))
    with torch.no_grad():
        logps = reply_logprobs(model, [Example(before, [t]) for _, _, before, t in read], 8, factors)
    return [{"question": q, "answer": a, "token": tok.decode([t]), "rank": int((lp[0] > lp[0, t]).sum()),
             "p": float(lp[0, t].exp())} for (q, a, _, t), lp in zip(read, logps)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.evaluation.ceiling", description=__doc__.splitlines()[0])
    p.add_argument("--family", default="upper", choices=sorted(ALL_FAMILIES))
    p.add_argument("--layers", default="15-29", help="decoder layers whose down_proj gets the adapter, e.g. 0-29")
    p.add_argument("--rank", type=int, default=16, help="16: the task generator's 8 rows and its 8 always-on ones")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="base model folder (default: the packaged default model)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hypernet", help="also read the answer ranks under this task hypernetwork's adapter of --description")
    p.add_argument("--description", help="the description whose generated adapter --hypernet reads")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if bool(args.hypernet) != bool(args.description):
        raise SystemExit("--hypernet and --description go together")
    torch.set_num_threads(args.threads)
    model, tok = load_model_and_tokenizer(args.model or ensure_default_model(), dtype=torch.float32)
    for w in model.parameters():
        w.requires_grad_(False)
    layers = layer_range(args.layers)
    if max(layers) >= model.config.num_hidden_layers:
        raise SystemExit(f"--layers {args.layers}: the model has {model.config.num_hidden_layers} layers")
    params = ALL_FAMILIES[args.family].draw(random.Random(args.seed), "eval")
    data = rule_targets(tok, args.family, params)
    factors = train_static(model, tok, data, [f"model.layers.{i}.mlp.down_proj" for i in layers],
                           args.rank, args.steps, args.batch, args.lr, args.seed)
    base_ok, base_outs = answered(model, tok, QA_CHECK)
    ok, outs = answered(model, tok, QA_CHECK, factors)
    ranks = {"bare": answer_ranks(model, tok, args.family, params, base_outs),
             "static": answer_ranks(model, tok, args.family, params, base_outs, factors)}
    if args.hypernet:  # the generated adapter of the description, read the same way
        from ..generator import Generator
        from .generation import factors_of

        gen = Generator.load(args.hypernet, args.model or ensure_default_model())
        ranks["generated"] = answer_ranks(gen.model, gen.tokenizer, args.family, params, base_outs,
                                          factors_of(gen.internalize(args.description).weights))
    follows = [bool(ALL_FAMILIES[args.family].check(o, params)) for o in outs]
    known = [i for i, k in enumerate(base_ok) if k]
    result = {"family": args.family, "params": params, "layers": args.layers, "rank": args.rank, "steps": args.steps,
              "batch": args.batch, "lr": args.lr, "training_prompts": len(data),
              "base_accuracy": sum(base_ok) / len(base_ok), "accuracy": sum(ok) / len(ok),
              "retained": sum(ok[i] for i in known) / len(known) if known else None,
              "follows": sum(follows) / len(follows),
              "answer_first": {k: sum(r["rank"] == 0 for r in rows) for k, rows in ranks.items()},
              "answers_read": len(ranks["bare"]), "answer_ranks": ranks, "outputs": outs}
    print(json.dumps({k: v for k, v in result.items() if k not in ("outputs", "answer_ranks")}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
