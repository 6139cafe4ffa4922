"""How exactly a task adapter writes the phrase its description quotes, scored teacher-forced.

Most replies that miss a held-out phrase rule miss it by copying: the first token of "Holy
guacamole!" comes out and the second does not ("Holy Gargamonia!"), "Jolly good!" becomes "Jolly
words". Greedy compliance counts each such reply as one miss, so a set of five prompts a task moves
in steps of 20 points and says nothing of how near the phrase was. Here the phrase is put where the
rule wants it (first, for the rules that open with it) after the bare prompt, and every one of its
tokens is scored under the description's adapter: its log-probability and whether it is the
model's first choice. The first token and the later ones are reported apart, because they fail for
different reasons (reading the rule; copying the value once it has begun). The set is every
held-out opening phrase and catch-phrase in every held-out wording that puts it first (the opening
rule's held-out and fresh wordings, the catch-phrase family's own and fresh ones): 59
descriptions and 118 replies, where the compliance sets hold 9 phrase tasks.

    vllm-d2l eval --tasks --set copy                 # the copy scores alone
    vllm-d2l eval --tasks --set all --copy           # beside the compliance sets

The values part does the same for the rules whose value sits inside or after the reply: a word to
include (in each of its six frames, `Word of the day: "pickle".` and the others), a sign-off and a
JSON object's keys, each held-out value in every held-out wording of its rule (51 descriptions).
Their compliant reply is the rule's own rewrite of the base model's greedy reply, and only the
value's tokens in it are scored, so a reply the adapter would word otherwise costs nothing here;
the greedy sets hold 5 replies of each of these rules.
"""
from __future__ import annotations

import random
from collections import defaultdict

import torch

from ..apply import lora_applied
from ..datasets.fresh_wordings import FRESH_WORDINGS
from ..datasets.tasks import _CATCH, _INCLUDE, _KEYS, _PHRASES, _SIGNOFFS, FAMILIES, INCLUDE_FRAMES, Task, prompts
from ..prompts import render
from .generation import generate, generated_factors

# Rules whose compliant reply starts with the quoted phrase (`Family.comply` puts it first).
PHRASE_FIRST = ("opening", "catchphrase")
# Rules whose quoted values sit inside the rewritten reply, and the parameters that hold them.
VALUE_RULES = {"include_word": ("word",), "signoff": ("phrase",), "json": ("keys",)}


def copy_items(prompts_per_description: int = 2, seed: int = 0) -> list[dict]:
    """Every held-out opening phrase and catch-phrase in every held-out wording of its rule, each
    with its own ordinary prompts (the held-out topics)."""
    rng = random.Random(f"copy/{seed}")
    pool = prompts("eval")
    wordings = {"opening": [FAMILIES["opening"].wordings[-1], *FRESH_WORDINGS["opening"]],
                "catchphrase": [*FAMILIES["catchphrase"].wordings, *FRESH_WORDINGS["catchphrase"]]}
    pairs = [("opening", p) for p in _PHRASES["eval"]] + [("catchphrase", p) for p in _CATCH["eval"]]
    tasks = [(family, phrase, wording) for family, phrase in pairs for wording in wordings[family]]
    return [{"task": i, "family": family, "description": wording.format(phrase=phrase), "params": {"phrase": phrase},
             "prompt": q} for i, (family, phrase, wording) in enumerate(tasks)
            for q in rng.sample(pool, prompts_per_description)]


def phrase_scores(model, prompt_ids: list[int], phrase_ids: list[int], factors: dict | None = None
                  ) -> tuple[list[float], list[bool]]:
    """Log-probability of each phrase token after the prompt (and the tokens before it), and
    whether it is the argmax there."""
    ids = torch.tensor([prompt_ids + phrase_ids])  # [1, P + K]
    target = torch.tensor(phrase_ids)  # [K]
    with torch.no_grad(), lora_applied(model, factors or {}):
        logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()  # [K, V]: the positions that predict the phrase
    lp = logits.log_softmax(-1)
    return lp.gather(-1, target[:, None])[:, 0].tolist(), (lp.argmax(-1) == target).tolist()


def copy_fidelity(generator, items: list[dict], adapter=None) -> dict:
    """Teacher-forced copy scores of the phrase-first tasks among `items` (`tasks.build_items`'s),
    one adapter per task, made by `adapter` (description -> factors; default: as generated), so that
    the command line's adapter knobs reach these scores too. Returns the per-reply rows and their means."""
    from .tasks import task_messages  # here, since `tasks` imports this module

    model, tok = generator.model, generator.tokenizer
    adapter = adapter or generated_factors(generator)
    by_task: dict[int, list[dict]] = defaultdict(list)
    for it in items:
        if it["family"] in PHRASE_FIRST:
            by_task[it["task"]].append(it)
    rows = []
    for group in by_task.values():
        phrase = group[0]["params"]["phrase"]
        phrase_ids = tok(phrase, add_special_tokens=False)["input_ids"]
        factors = adapter(group[0]["description"])
        for it in group:
            prompt_ids = render(tok, task_messages("adapter", "", it["prompt"]))
            lp, top = phrase_scores(model, prompt_ids, phrase_ids, factors)
            rows.append({"family": it["family"], "description": it["description"], "prompt": it["prompt"],
                         "phrase": phrase, "tokens": [tok.decode([t]) for t in phrase_ids], "logprob": lp, "top": top})
    return {"n": len(rows), **summarize(rows), "rows": rows}


def value_items(prompts_per_description: int = 2, seed: int = 0) -> list[dict]:
    """Every held-out value of `VALUE_RULES` in every held-out wording of its rule (the fixed
    held-out one and the fresh ones), each with its own ordinary prompts."""
    rng = random.Random(f"copy-values/{seed}")
    pool = prompts("eval")
    values = {"include_word": [{"word": w} for w in _INCLUDE["eval"]],
              "signoff": [{"phrase": p} for p in _SIGNOFFS["eval"]],
              "json": [{"keys": list(k)} for k in _KEYS["eval"]]}
    tasks = [Task(family, -1, p, wording) for family, params in values.items()
             for wording in [FAMILIES[family].wordings[-1], *FRESH_WORDINGS[family]] for p in params]
    return [{"task": i, "family": task.family, "description": task.description, "params": task.params, "_task": task,
             "prompt": q} for i, task in enumerate(tasks) for q in rng.sample(pool, prompts_per_description)]


def _rewrites(task: Task) -> list[tuple[int | None, Task]]:
    """The targets a task's value is scored in: a word to include in each of its frames (the
    adapters choose among them, and read the word better in some), another rule in its one form."""
    if task.family != "include_word":
        return [(None, task)]
    return [(f, Task(task.family, task.wording, {**task.params, "frame": f}, task.template))
            for f in range(len(INCLUDE_FRAMES))]


def value_spans(task: Task, reply: str) -> tuple[str, list[tuple[int, int]]]:
    """The rule's rewrite of `reply` and the character spans of its quoted values in it (a JSON
    key: as `json.dumps` quotes it; a sign-off: its last occurrence, at the end)."""
    text = task.comply(reply)
    spans = []
    for name in VALUE_RULES[task.family]:
        values = task.params[name] if isinstance(task.params[name], list) else [task.params[name]]
        for v in values:
            at = _value_at(text, task.family, v)
            if at < 0:
                raise ValueError(f"{v!r} not in the rewrite of {task.family}: {text[:80]!r}")
            spans.append((at, at + len(v)))
    return text, spans


def _value_at(text: str, family: str, value: str) -> int:
    """Where `value` starts in a rewrite (-1: nowhere)."""
    if family == "signoff":
        return text.rfind(value)
    if family == "json":  # the key in its quotes: quotes inside values are escaped, so only a key matches
        at = text.find(f'"{value}"')
        return at + 1 if at >= 0 else -1
    return text.find(value)


def value_fidelity(generator, items: list[dict], base_tokens: int = 96, adapter=None) -> dict:
    """Teacher-forced copy scores of the values of `value_items`: each prompt's base reply (greedy,
    no adapter), rewritten by the rule; the tokens that overlap a value are scored under the
    description's adapter (made by `adapter`, as in `copy_fidelity`), one row per value."""
    from .tasks import task_messages

    model, tok = generator.model, generator.tokenizer
    adapter = adapter or generated_factors(generator)
    prompts_ = sorted({it["prompt"] for it in items})
    replies = dict(zip(prompts_, generate(model, tok, [render(tok, task_messages("none", "", q)) for q in prompts_],
                                          base_tokens)))
    by_task: dict[int, list[dict]] = defaultdict(list)
    for it in items:
        by_task[it["task"]].append(it)
    rows = []
    for group in by_task.values():
        task = group[0]["_task"]
        factors = adapter(task.description)
        for it, (frame, target) in ((it, r) for it in group for r in _rewrites(task)):
            text, spans = value_spans(target, replies[it["prompt"]])
            enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = enc["input_ids"]
            prompt_ids = render(tok, task_messages("adapter", "", it["prompt"]))
            lp, top = phrase_scores(model, prompt_ids, ids, factors)  # one pass scores every value of the rewrite
            for start, end in spans:
                idx = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a < end and b > start]
                first, last = idx[0], idx[-1] + 1
                rows.append({"family": task.family, "description": task.description, "prompt": it["prompt"],
                             "frame": frame, "phrase": text[start:end],
                             "tokens": [tok.decode([t]) for t in ids[first:last]], "logprob": lp[first:last],
                             "top": top[first:last]})
    per_family = {f: counted([r for r in rows if r["family"] == f]) for f in VALUE_RULES}
    per_frame = {f: counted([r for r in rows if r["frame"] == f]) for f in range(len(INCLUDE_FRAMES))}
    return {"n": len(rows), **summarize(rows), "families": per_family, "include_frames": per_frame, "rows": rows}


def counted(rows: list[dict]) -> dict:
    return {"n": len(rows), **summarize(rows)}


def summarize(rows: list[dict]) -> dict:
    """Means over replies: the first token's log-probability and how often it is the top choice, the
    later tokens' (each reply's mean), and the share of replies whose every token is the top choice."""
    if not rows:
        return {"first_logprob": None, "first_top": None, "later_logprob": None, "later_top": None, "whole_top": None}
    later = [r for r in rows if len(r["logprob"]) > 1]

    def mean(xs):
        xs = list(xs)
        return sum(xs) / len(xs) if xs else None

    return {"first_logprob": mean(r["logprob"][0] for r in rows), "first_top": mean(r["top"][0] for r in rows),
            "later_logprob": mean(mean(r["logprob"][1:]) for r in later),
            "later_top": mean(mean(r["top"][1:]) for r in later),
            "whole_top": mean(all(r["top"]) for r in rows)}


def format_line(res: dict, label: str = "copy", unit: str = "replies") -> str:
    if not res["n"]:
        return f"{label}: no tasks"

    def f(x, spec):
        return "-" if x is None else format(x, spec)

    return (f"{label} ({res['n']} {unit}): first token {f(res['first_logprob'], '.2f')} nats, "
            f"top {f(res['first_top'], '.0%')}; later tokens {f(res['later_logprob'], '.2f')}, "
            f"top {f(res['later_top'], '.0%')}; whole value top {f(res['whole_top'], '.0%')}")
