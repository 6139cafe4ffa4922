"""`vllm-d2l eval --tasks`: how often replies follow a task description, by where the description is.

Each task (a family's rule with drawn values, see `vllm_d2l.datasets.tasks`) is asked ordinary
prompts four ways by the same base model: with no description ("none"), with the description as
the system message ("system"), with the description before the prompt in the user message
("user"), and with the adapter the hypernetwork generates from the description and the bare
prompt ("adapter"). Every reply is scored by the family's checker. Two sets, as the task mode's
targets are set: held-out wordings (training families, a wording and values never trained on) and
held-out families; and on request two more: seen wordings (training families, wordings and
values; only the prompts new), to tell a rule not learnt from a rule not recognised in new words,
and fresh wordings (`datasets.fresh_wordings`: three or four per family, every family, written apart from
the training grammar and never trained on), a held-out wording set nobody shaped training around.

    vllm-d2l eval --tasks --out results/eval/tasks.json --plot results/eval/tasks.png
    vllm-d2l eval --tasks --set families --n-tasks 12 --prompts 10
    vllm-d2l eval --tasks --set copy   # how exactly held-out phrases are copied, teacher-forced (`copying`)
    vllm-d2l eval --tasks --set readings --plot r.png  # which rule each adapter was read as (`readings`)
    vllm-d2l eval --tasks --set qa --qa-check 14 --qa-null  # do answers stay answers under adapters
    vllm-d2l eval --tasks --set qa --qa-check 14 --qa-drift  # ... and how far they drift, teacher-forced
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

from ..datasets.fresh_wordings import FRESH_WORDINGS
from ..datasets.tasks import (AFFIRMATION_WORDINGS, ALL_FAMILIES, FAMILIES, HELD_OUT_FAMILIES, NEGATED, NEGATION_WORDINGS,
                              Task, draw_task, families, prompts)
from ..prompts import described_messages, render
from .copying import copy_fidelity, copy_items, format_line, value_fidelity, value_items
from .generation import factors_of, generate, generated_factors
from .metrics import cluster_interval

CONDITIONS = ("none", "system", "user", "adapter")
SETS = ("wordings", "families")  # what `--set both` runs: the targets' sets
DIAGNOSTIC_SETS = ("seen", "fresh", "negated", "affirmed")
ALL_SETS = SETS + DIAGNOSTIC_SETS


def task_messages(condition: str, description: str, prompt: str) -> list[dict]:
    """The chat each condition sends; "none" and "adapter" send the bare prompt."""
    if condition == "system":
        return [{"role": "system", "content": description}, {"role": "user", "content": prompt}]
    if condition == "user":
        return described_messages(description, prompt)
    return [{"role": "user", "content": prompt}]


# Ordinary questions with short, well-known answers: a task adapter should change how the model
# answers, not whether it knows the answer ("answers stay answers").
QA_CHECK = [
    ("What is the capital of France?", "Paris"), ("How many days are in a week?", "seven|7"),
    ("What color is the sky on a clear day?", "blue"), ("What is the largest planet in our solar system?", "Jupiter"),
    ("What do bees make?", "honey"), ("How many legs does a spider have?", "eight|8"),
    ("What is the opposite of hot?", "cold"), ("Which animal is known as the king of the jungle?", "lion"),
    ("What is frozen water called?", "ice"), ("How many hours are in a day?", "24|twenty-four"),
    ("What gas do plants take in from the air?", "carbon dioxide|CO2"), ("What is the capital of Japan?", "Tokyo"),
    ("Which planet is known as the Red Planet?", "Mars"), ("What is 5 plus 3?", "8|eight"),
    ("What is the boiling point of water in degrees Celsius?", "100"), ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("What is the chemical symbol for gold?", "Au"), ("How many continents are there?", "seven|7"),
    ("What is the main language spoken in Brazil?", "Portuguese"), ("What is the capital of Italy?", "Rome"),
    # 40 more (from step 9500): the base model answers 12 of the first 20, so one question more or less
    # under an adapter moved "kept" by 8 points; the first 20 stay first, so their figure can be read
    # apart for comparison with earlier snapshots
    ("What is the capital of the United States?", "Washington"), ("What is the capital of India?", "New Delhi|Delhi"),
    ("What is the capital of Mexico?", "Mexico City"), ("What is the capital of Australia?", "Canberra"),
    ("How many legs does an insect have?", "six|6"), ("How many wheels does a bicycle have?", "two|2"),
    ("How many sides does a hexagon have?", "six|6"), ("How many planets are in our solar system?", "eight|8"),
    ("How many days are in a year?", "365"), ("What is 10 minus 4?", "six|6"),
    ("What is 6 plus 6?", "twelve|12"), ("What is 9 times 3?", "twenty-seven|27"),
    ("What color is a fire truck?", "red"), ("What color is chocolate?", "brown"),
    ("What color do you get by mixing blue and yellow?", "green"), ("What is the opposite of night?", "day"),
    ("What is the opposite of north?", "south"), ("Who wrote The Odyssey?", "Homer"),
    ("Who wrote the Harry Potter books?", "Rowling"), ("Who wrote The Adventures of Tom Sawyer?", "Mark Twain|Twain"),
    ("What is the chemical formula for water?", "H2O"), ("What is the chemical symbol for copper?", "Cu"),
    ("What is the largest animal on Earth?", "blue whale|whale"), ("What is the fastest land animal?", "cheetah"),
    ("What do cows produce that people drink?", "milk"), ("What do spiders spin?", "web|webs"),
    ("Which planet is closest to the Sun?", "Mercury"), ("What is the Earth's natural satellite called?", "Moon"),
    ("Which gas do humans need to breathe?", "oxygen"), ("What is the currency of Japan?", "yen"),
    ("What language is mainly spoken in France?", "French"), ("What language is mainly spoken in Italy?", "Italian"),
    ("What is the square root of 81?", "nine|9"), ("What is the tallest animal?", "giraffe"),
    ("In which country are the pyramids of Giza?", "Egypt"), ("Which continent is Kenya in?", "Africa"),
    ("Who was the first person to walk on the Moon?", "Armstrong"), ("What do pandas mainly eat?", "bamboo"),
    ("Which shape has three sides?", "triangle"), ("Which metal is liquid at room temperature?", "mercury"),
]
FIRST_QA = 20  # the check's size up to step 9500

# Descriptions that ask for nothing a reply could be checked by: who the assistant is and whom it
# serves, as a real system prompt says before (or instead of) its rules. An adapter read from one
# should leave the answers as the bare model gives them. Written apart from training's roles,
# places and courtesies (`datasets.tasks.no_rule`, `in_context`; tested), so `--qa-null` scores
# descriptions of a kind the reader may have seen but never these words.
NULL_DESCRIPTIONS = (
    "This assistant answers questions from visitors to a railway museum.",
    "You are talking with people who are planning a vegetable patch for the first time.",
    "Our company makes accounting software; whoever writes to you may be a customer or a colleague.",
    "You are the voice of a regional weather service's telephone line.",
    "Most people who use this chat are students revising for their exams.",
    "You represent a family-run bakery, and customers ask you all sorts of things.",
    "The person you are chatting with is a retired engineer who enjoys trivia.",
    "You support the front-desk staff of a veterinary clinic.",
)


def answered(model, tok, questions: list[tuple[str, str]], factors: dict | None = None,
             max_new_tokens: int = 32, batch_size: int = 8, condition: str = "none",
             description: str = "") -> tuple[list[bool], list[str]]:
    """Greedy replies to the questions (bare, with one adapter's factors, or with a description as
    `condition` sends it) and whether each contains its answer (any "|"-separated form,
    case-insensitive, on word boundaries)."""
    from .metrics import contains

    prompts = [render(tok, task_messages(condition, description, q)) for q, _ in questions]
    outputs = generate(model, tok, prompts, max_new_tokens, batch_size, factors)
    return [any(contains(o, a) for a in gold.split("|")) for o, (_, gold) in zip(outputs, questions)], outputs


def qa_check(generator, factors_by_task: dict, max_new_tokens: int = 32, batch_size: int = 8,
             described: dict[str, str] | None = None, conditions: tuple[str, ...] = (),
             checks: dict | None = None, base: tuple[list[bool], list[str]] | None = None) -> dict:
    """Accuracy on `QA_CHECK` without an adapter and with each task's adapter, and the adapters'
    mean as a share of the base model's. With `described` (task -> description) and prompted
    `conditions` ("system", "user"), the same figures for the base model told each description
    that way, under "prompted": a prompt changes answers too, and that is what an adapter replaces.
    With `checks` (task -> its rule's checker), also the share of these replies that follow the
    rule: an answer kept by ignoring the rule is no better than the bare model's. `base`: the bare
    model's `answered` result when the caller has it already (it is the same for every check)."""
    model, tok = generator.model, generator.tokenizer
    base = base or answered(model, tok, QA_CHECK, None, max_new_tokens, batch_size)
    runs = {"base": base}
    runs.update({t: answered(model, tok, QA_CHECK, f, max_new_tokens, batch_size) for t, f in factors_by_task.items()})
    result = _summary(runs, checks)
    prompted = {}
    for condition in conditions:
        told = {"base": base}
        told.update({t: answered(model, tok, QA_CHECK, None, max_new_tokens, batch_size, condition, d)
                     for t, d in (described or {}).items()})
        prompted[condition] = _summary(told, checks)
    return {**result, "prompted": prompted} if prompted else result


def _summary(runs: dict, checks: dict | None = None) -> dict:
    """Accuracies, kept and retained of every run against runs["base"], on all questions and on
    the first `FIRST_QA`, with the replies; with `checks`, the share of each run's replies that
    follow its task's rule."""
    known = [i for i, ok in enumerate(runs["base"][0]) if ok]
    # "kept" compares accuracies, so an adapter that gets right what the base model got wrong makes up
    # for one it breaks; "retained" counts only the base model's right answers that stay right
    retained = {t: sum(ok[i] for i in known) / len(known) for t, (ok, _) in runs.items() if t != "base" and known}
    first = _accuracies(runs, FIRST_QA)  # the figures earlier snapshots were measured on
    first.pop("per_task")
    out = {**_accuracies(runs), "retained": sum(retained.values()) / len(retained) if retained else None,
           "retained_per_task": retained, "first": first}
    if checks:
        follows = {t: [bool(checks[t](o)) for o in outs] for t, (_, outs) in runs.items() if t in checks}
        complied = {t: sum(f) / len(f) for t, f in follows.items()}
        # of the base model's right answers, the share that stay right in a reply that follows the
        # rule: a prompt the model ignores retains much and follows little, an adapter the reverse
        both = {t: sum(runs[t][0][i] and f[i] for i in known) / len(known) for t, f in follows.items() if known}
        out |= {"complied": sum(complied.values()) / len(complied) if complied else None, "complied_per_task": complied,
                "retained_complying": sum(both.values()) / len(both) if both else None}
    return out | {"outputs": {t: outs for t, (_, outs) in runs.items()}}


def _accuracies(runs: dict, n: int | None = None) -> dict:
    """On the first n questions (None: all), the base model's accuracy, each adapter's, their mean,
    and the mean as a share of the base model's ("kept")."""
    acc = {t: sum(ok[:n]) / len(ok[:n]) for t, (ok, _) in runs.items()}
    base = acc.pop("base")
    mean = sum(acc.values()) / len(acc) if acc else None
    return {"questions": len(runs["base"][0][:n]), "base_accuracy": base, "adapter_accuracy": mean,
            "kept": mean / base if mean is not None and base else None, "per_task": acc}


def default_tasks(which: str) -> int:
    """Tasks per set unless asked: one per training family; the fresh set, two wordings of every
    family; the negated and affirmed sets, one per held-out wording."""
    if which in ("negated", "affirmed"):
        return sum(len(w) for w in (NEGATION_WORDINGS if which == "negated" else AFFIRMATION_WORDINGS).values())
    return 2 * len(FAMILIES) if which == "fresh" else len(families("train"))


def build_items(which: str, n_tasks: int, prompts_per_task: int, seed: int = 0) -> list[dict]:
    """`n_tasks` evaluation tasks of one set, spread over its families, each with its own prompts."""
    if which not in ALL_SETS:
        raise ValueError(f"set must be one of {ALL_SETS}, got {which!r}")
    rng = random.Random(f"tasks/{which}/{seed}")
    if which in ("negated", "affirmed"):
        return _worded_items(rng, n_tasks, prompts_per_task, negate=which == "negated")
    split = "train" if which == "seen" else "eval"  # seen: training wordings and values
    names = list(FAMILIES) if which == "fresh" else families(split, held_out=which == "families")
    pool = prompts("eval")
    items = []
    for i in range(n_tasks):
        task = draw_task(rng, split, family=names[i % len(names)], held_out_wording=which == "wordings")
        if which == "fresh":  # the same values, said in the i-th round's fresh wording
            fresh = FRESH_WORDINGS[task.family]
            task = Task(task.family, -1, task.params, fresh[(i // len(names)) % len(fresh)])
        for prompt in rng.sample(pool, prompts_per_task):
            items.append({"task": i, "family": task.family, "description": task.description,
                          "params": task.params, "wording": task.wording, "prompt": prompt, "_task": task})
    return items


def _worded_items(rng: random.Random, n_tasks: int, prompts_per_task: int, negate: bool) -> list[dict]:
    """Tasks of held-out wordings in turn, with values from the eval pools: the held-out negations
    ("Please avoid bulleted lists in your replies."; compliance is keeping clear of the rule) or,
    without `negate`, the held-out affirmations ("Do not write a single letter that is not a
    capital."; a training rule asked for through a "not", compliance the rule's own)."""
    table = NEGATION_WORDINGS if negate else AFFIRMATION_WORDINGS
    wordings = [(f, w) for f, ws in table.items() for w in ws]
    pool = prompts("eval")
    items = []
    for i in range(n_tasks):
        family, wording = wordings[i % len(wordings)]
        params = ALL_FAMILIES[family].draw(rng, "eval")
        task = Task(NEGATED.name, -1, {**params, "of": family}, wording) if negate else Task(family, -1, params, wording)
        for prompt in rng.sample(pool, prompts_per_task):
            items.append({"task": i, "family": f"not_{family}" if negate else family, "description": task.description,
                          "params": task.params, "wording": -1, "prompt": prompt, "_task": task})
    return items


# Long enough for a whole reply and its closing part: the training replies run to 96 new tokens and
# a sign-off or closing question comes after them, so at 64 the end-placed rules were cut off
# (step 3000: seen wordings 81 % at 64 tokens, 99 % at 160).
MAX_NEW_TOKENS = 160


def evaluate_tasks(generator, items: list[dict], conditions=CONDITIONS, max_new_tokens: int = MAX_NEW_TOKENS,
                   batch_size: int = 8, progress: bool = True, adapter=None) -> dict:
    """Replies and compliance per condition; the adapter of each description is generated once, by
    `adapter` (description -> LoRA factors; default: the generator's, as generated), so that every
    set and the QA check shape their adapters the one way the command line asks."""
    model, tok = generator.model, generator.tokenizer
    adapter = adapter or generated_factors(generator)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(items) * len(conditions), desc="task replies", unit="reply", dynamic_ncols=True)
    tick = (lambda n: bar.update(n)) if bar else None
    for cond in conditions:
        if cond == "adapter":
            by_task: dict[int, list[dict]] = defaultdict(list)
            for it in items:
                by_task[it["task"]].append(it)
            for group in by_task.values():
                factors = adapter(group[0]["description"])
                ps = [render(tok, task_messages(cond, "", it["prompt"])) for it in group]
                for it, out in zip(group, generate(model, tok, ps, max_new_tokens, batch_size, factors, tick)):
                    it.setdefault("outputs", {})[cond] = out
        else:
            ps = [render(tok, task_messages(cond, it["description"], it["prompt"])) for it in items]
            for it, out in zip(items, generate(model, tok, ps, max_new_tokens, batch_size, None, tick)):
                it.setdefault("outputs", {})[cond] = out
    if bar:
        bar.close()
    for it in items:
        task = it.pop("_task")
        it["complied"] = {c: bool(task.check(it["outputs"][c])) for c in conditions}
    return summarize(items, conditions)


def summarize(items: list[dict], conditions) -> dict:
    """Compliance per condition (with a 95 % interval from resampling whole tasks) and per family."""
    n = len(items)
    per_family: dict[str, dict] = defaultdict(lambda: {c: 0 for c in conditions} | {"n": 0})
    by_task: dict[int, list[dict]] = defaultdict(list)
    for it in items:
        by_task[it["task"]].append(it)
        row = per_family[it["family"]]
        row["n"] += 1
        for c in conditions:
            row[c] += it["complied"][c]

    def condition(c: str) -> dict:
        if not n:
            return {"compliance": 0.0}
        groups = [[float(it["complied"][c]) for it in group] for group in by_task.values()]
        return {"compliance": sum(it["complied"][c] for it in items) / n, "interval": list(cluster_interval(groups))}
    return {"n_replies": n, "n_tasks": len(by_task),
            "conditions": {c: condition(c) for c in conditions},
            "families": {f: {c: row[c] / row["n"] for c in conditions} | {"n": row["n"]}
                         for f, row in sorted(per_family.items())},
            "items": items}


def _interval(row: dict) -> str:
    lo_hi = row.get("interval")  # absent from results written before it was kept
    return f" ({lo_hi[0]:.0%}-{lo_hi[1]:.0%})" if lo_hi else ""


def format_table(results: dict) -> str:
    conds = list(results["conditions"])
    lines = [f"{results['set']} ({results['n_tasks']} tasks, {results['n_replies']} replies): "
             + ", ".join(f"{c} {results['conditions'][c]['compliance']:.1%}{_interval(results['conditions'][c])}"
                         for c in conds)]
    for fam, row in results["families"].items():
        lines.append(f"  {fam:<14} " + "  ".join(f"{c} {row[c]:.0%}" for c in conds) + f"  (n={row['n']})")
    return "\n".join(lines)


def tasks_chart(all_results: dict, path: Path | str) -> None:
    """Compliance per condition for each set, one group of bars per set."""
    from .plots import _pyplot

    plt = _pyplot()
    sets = list(all_results)
    conds = list(next(iter(all_results.values()))["conditions"])
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(conds)
    labels = {"none": "no description", "system": "as system message", "user": "in the user message",
              "adapter": "generated adapter"}
    for j, c in enumerate(conds):
        rows = [all_results[s]["conditions"][c] for s in sets]
        vals = [r["compliance"] for r in rows]
        xs = [i + (j - (len(conds) - 1) / 2) * width for i in range(len(sets))]
        ax.bar(xs, vals, width, label=labels.get(c, c))
        if all("interval" in r for r in rows):  # 95 %, resampling whole tasks
            err = [[v - r["interval"][0] for v, r in zip(vals, rows)],
                   [r["interval"][1] - v for v, r in zip(vals, rows)]]
            ax.errorbar(xs, vals, yerr=err, fmt="none", ecolor="0.25", elinewidth=0.8, capsize=2)
        for x, v in zip(xs, vals):
            ax.text(x, v + 0.01, f"{v:.0%}", ha="center", fontsize=7)
    names = {"seen": "seen wordings", "negated": "held-out negations",  # a negation followed: kept clear of its rule
             "affirmed": "held-out affirmations"}
    ax.set_xticks(range(len(sets)), [f"{names.get(s, 'held-out ' + s)}\n({all_results[s]['n_replies']} replies)"
                                     for s in sets])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("replies that follow the description\n(bars: 95 %, resampling tasks)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Task descriptions: compliance by where the description is", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_results(results: dict, path: Path | str) -> None:
    """The `--plot` PNG: the readings heat map for `--set readings`, else the compliance bars."""
    if "readings" in results:
        from .readings import readings_chart

        readings_chart(results["readings"], path)
    else:
        tasks_chart({k: v for k, v in results.items() if k in ALL_SETS}, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vllm-d2l eval --tasks", description=__doc__.splitlines()[0])
    p.add_argument("--set", choices=ALL_SETS + ("both", "all", "copy", "readings", "qa"), default="both",
                   help="held-out wordings, families, both, seen wordings (training wordings and values), fresh "
                   "wordings (written apart from training, every family), negated (held-out descriptions that forbid a "
                   "training rule: compliance is keeping clear of it), affirmed (held-out descriptions that ask for a training "
                   "rule through a \"not\"), all, only the copy scores (--copy), "
                   "which training rule each held-out description's adapter is nearest to (`evaluation.readings`), "
                   "or only the QA check (--qa-check)")
    p.add_argument("--n-tasks", type=int, help="tasks per set (default: one per training family; fresh: two "
                   "wordings of every family; negated, affirmed: one per held-out wording)")
    p.add_argument("--prompts", type=int, default=10, help="prompts per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hypernet", help="hypernetwork folder for the adapter condition (default: the task one)")
    p.add_argument("--model", help="base model folder (default: the default model)")
    p.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated subset of " + ",".join(CONDITIONS))
    p.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS,
                   help="reply length cap (default %(default)s: room for a full reply and its closing part)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", help="write every reply and score as JSON")
    p.add_argument("--plot", help="write a PNG bar chart")
    p.add_argument("--qa-check", type=int, default=0, metavar="N",
                   help="also ask N tasks' adapters (held-out wordings) the ordinary questions of QA_CHECK")
    p.add_argument("--qa-null", action="store_true",
                   help="also ask the QA questions under the adapters of descriptions that ask for nothing "
                        "(NULL_DESCRIPTIONS, a role or an audience only): what an adapter costs the answers "
                        "when there is no rule to follow")
    p.add_argument("--qa-drift", action="store_true",
                   help="with --qa-check / --qa-null, also read the base model's own right answers back under "
                        "each adapter, teacher-forced: the KL it adds a token and their log-probability "
                        "(`evaluation.drift`; continuous, where the greedy check moves in whole answers)")
    p.add_argument("--qa-conditions", default="adapter", metavar="LIST",
                   help="conditions of the QA check: adapter, and system or user (the base model told each "
                        "description that way; default %(default)s)")
    p.add_argument("--copy", action="store_true",
                   help="also score, teacher-forced, how exactly the adapters write held-out phrases "
                   "(`evaluation.copying`)")
    p.add_argument("--adapter-scale", type=float, default=1.0, metavar="S",
                   help="multiply each generated update by S (the QA check's too): how compliance and kept "
                        "answers trade as adapters are turned up or down")
    p.add_argument("--always-on-scale", type=float, default=1.0, metavar="S",
                   help="multiply each adapter's always-on block (the rows every description shares) by S, "
                        "the QA check's too: what that block does, apart from what the description's own rows do")
    p.add_argument("--head-scale", type=float, default=1.0, metavar="S",
                   help="multiply each adapter's update on the LM head (the copy path) by S, the QA check's "
                        "too: what copying the description's words does, apart from the rest (0: none)")
    p.add_argument("--drop-layers", type=_layer_range, default=(), metavar="LO-HI",
                   help="leave out each adapter's updates in decoder layers LO..HI (the QA check's too): "
                        "where an effect lives, e.g. 25-29")
    p.add_argument("--guidance", type=float, default=1.0, metavar="S",
                   help="guided adapters (`Generator.guidance`): what each description adds over descriptions "
                        "that ask for nothing, times S (1: as generated)")
    p.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                   help="read two --out files (plain or .gz) and print, for each compliance set both hold, the "
                        "difference on the replies both wrote with a 95 %% interval from resampling tasks; "
                        "generates nothing")
    p.add_argument("--no-progress", action="store_true")
    return p


def machine(generator) -> dict:
    """What greedy replies depend on beside the weights: the base model's dtype, and the CPU's
    vector instructions and threads. The same fp32 base model answered 23 of the 60 QA questions
    differently on two machines (base accuracy 52 and 57 %), so results from two machines differ
    by more than their weights."""
    import torch

    return {"dtype": str(generator.model.dtype).removeprefix("torch."),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.compare:
        from .task_compare import compare_sets, format_comparison, load_results

        try:
            old, new = (load_results(f) for f in args.compare)
        except (OSError, ValueError) as e:
            p.error(f"--compare: {e}")
        print(format_comparison(compare_sets(old, new), *args.compare))
        return 0
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = set(conditions) - set(CONDITIONS)
    if unknown or not conditions:
        p.error(f"unknown conditions {sorted(unknown)}; choose from {', '.join(CONDITIONS)}")
    if (args.n_tasks is not None and args.n_tasks < 1) or args.prompts < 1 or args.prompts > len(prompts("eval")):
        p.error(f"--n-tasks must be >= 1 and --prompts from 1 to {len(prompts('eval'))}")
    qa_conditions = [c.strip() for c in args.qa_conditions.split(",") if c.strip()]
    if set(qa_conditions) - {"adapter", "system", "user"} or not qa_conditions:
        p.error("--qa-conditions takes adapter, system and user")
    if args.set in ("copy", "qa") and args.plot:
        p.error(f"--plot draws the compliance sets, and --set {args.set} runs none")
    if args.set == "qa" and not (args.qa_check or args.qa_null):
        p.error("--set qa runs only the QA check: give --qa-check N or --qa-null")
    if args.qa_drift and not (args.qa_check or args.qa_null):
        p.error("--qa-drift reads the QA check's answers: give --qa-check N or --qa-null")
    from ..generator import Generator, default_task_hypernet_dir

    generator = Generator.load(args.hypernet or default_task_hypernet_dir(), args.model, guidance=args.guidance)
    results = {}
    chosen = {"both": SETS, "all": ALL_SETS, "copy": (), "readings": (), "qa": ()}.get(args.set, (args.set,))
    adapter = lambda d: factors_of(generator.internalize(d).weights, args.adapter_scale,  # noqa: E731
                                     args.always_on_scale, args.head_scale, args.drop_layers)
    for which in chosen:
        items = build_items(which, args.n_tasks or default_tasks(which), args.prompts, args.seed)
        res = evaluate_tasks(generator, items, conditions, args.max_new_tokens, args.batch_size,
                             progress=not args.no_progress, adapter=adapter)
        results[which] = {"set": which, "model": generator.base_model_name, "hypernet": generator.fingerprint,
                          "adapter_scale": args.adapter_scale, "always_on_scale": args.always_on_scale,
                          "head_scale": args.head_scale, "drop_layers": list(args.drop_layers),
                          "guidance": generator.guidance, **machine(generator),
                          "held_out_families": list(HELD_OUT_FAMILIES), **res}
        print(format_table(results[which]))
    if args.set == "readings":
        from .readings import READING_SETS, format_lines, read_as

        # the same draws as the compliance sets at the same --prompts, so a task's reading and its
        # replies can be set side by side; each description is read once
        items = [{**it, "set": which} for which in READING_SETS
                 for it in build_items(which, args.n_tasks or default_tasks(which), args.prompts, args.seed)]
        results["readings"] = {"model": generator.base_model_name, "hypernet": generator.fingerprint,
                               **read_as(generator, items, seed=args.seed, progress=not args.no_progress)}
        print(format_lines(results["readings"]))
    if args.copy or args.set == "copy":
        results["copy"] = copy_fidelity(generator, copy_items(seed=args.seed), adapter=adapter)
        results["copy"]["values"] = value_fidelity(generator, value_items(seed=args.seed), adapter=adapter)
        print(format_line(results["copy"], "copy, phrases first"))
        print(format_line(results["copy"]["values"], "copy, values inside", "values"))
        for family, r in results["copy"]["values"]["families"].items():
            print("  " + format_line(r, family, "values"))
    pct = lambda x: "n/a" if x is None else f"{x:.0%}"  # noqa: E731 (None: nothing to compare with)
    bare = answered(generator.model, generator.tokenizer, QA_CHECK, batch_size=args.batch_size) \
        if args.qa_check or args.qa_null else None  # once for both checks
    if args.qa_check:
        items = build_items("wordings", args.qa_check, 1, args.seed)
        named = {f"{it['task']}: {it['description']}": it for it in items}
        described = {t: it["description"] for t, it in named.items()}
        checks = {t: it["_task"].check for t, it in named.items()}
        factors = {t: adapter(d) for t, d in described.items()} if "adapter" in qa_conditions else {}
        check = qa_check(generator, factors, batch_size=args.batch_size, described=described,
                         conditions=tuple(c for c in qa_conditions if c != "adapter"), checks=checks, base=bare)
        print(f"answers stay answers ({check['questions']} questions): base {check['base_accuracy']:.0%}")
        for name, r in [("with a task adapter", check)] + [(f"told the description ({c})", r)
                                                            for c, r in check.get("prompted", {}).items()]:
            if r["adapter_accuracy"] is not None:
                print(f"  {name}: {pct(r['adapter_accuracy'])} on average ({pct(r['kept'])} kept; "
                      f"{pct(r['retained'])} of the base model's right answers stay right; the first "
                      f"{r['first']['questions']} questions alone {pct(r['first']['kept'])} kept); "
                      f"{pct(r['complied'])} of the replies follow the rule, and {pct(r['retained_complying'])} "
                      f"of the base model's right answers stay right in a reply that does")
        results["qa_check"] = {**check, **machine(generator)}
        if args.qa_drift and factors:
            results["qa_check"]["drift"] = _drift(generator, bare, factors, args.batch_size, "rules")
    if args.qa_null:
        factors = {d: adapter(d) for d in NULL_DESCRIPTIONS}
        check = qa_check(generator, factors, batch_size=args.batch_size, base=bare)
        print(f"answers under descriptions that ask for nothing ({len(factors)} adapters, {check['questions']} "
              f"questions): base {pct(check['base_accuracy'])}, adapters {pct(check['adapter_accuracy'])} on average "
              f"({pct(check['kept'])} kept; {pct(check['retained'])} of the base model's right answers stay right)")
        results["qa_null"] = {**check, **machine(generator)}
        if args.qa_drift:
            results["qa_null"]["drift"] = _drift(generator, bare, factors, args.batch_size, "no rule")
    from .qa import write_outputs

    write_outputs(results, args.out, args.plot, draw_results)
    return 0


def _layer_range(text: str) -> tuple[int, ...]:
    """"25-29" -> (25, 26, 27, 28, 29); "22" -> (22,)."""
    lo, _, hi = text.partition("-")
    try:
        first, last = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO-HI or one layer, got {text!r}") from None
    if first < 0 or last < first:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO <= HI, got {text!r}")
    return tuple(range(first, last + 1))


def _drift(generator, bare: tuple[list[bool], list[str]], factors: dict, batch_size: int, label: str) -> dict:
    """`drift.answer_drift` over the QA questions the bare model answers right, printed."""
    from .drift import answer_drift

    right = [i for i, ok in enumerate(bare[0]) if ok]
    drift = answer_drift(generator.model, generator.tokenizer, [QA_CHECK[i][0] for i in right],
                         [bare[1][i] for i in right], factors, batch_size)
    if not drift["tokens"]:
        print(f"  drift under {label}: the base model answers none of the questions right, nothing to read back")
    else:
        print(f"  drift under {label}, teacher-forced on the base model's {drift['questions']} right answers "
              f"({drift['tokens']} tokens): KL {drift['kl']:.3f} nats a token; log-prob {drift['logprob']:.3f} "
              f"against the base model's {drift['bare_logprob']:.3f}")
    return drift


if __name__ == "__main__":
    sys.exit(main())
