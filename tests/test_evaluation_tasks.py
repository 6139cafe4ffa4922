"""`vllm-d2l eval --tasks` on the tiny model: the four conditions send what they say, every reply
is scored by its family's checker, and the two held-out sets draw what they promise."""
import json

import pytest
import torch

from vllm_d2l.datasets.tasks import _PHRASES, _SIGNOFFS, FAMILIES, HELD_OUT_FAMILIES
from vllm_d2l.evaluation.generation import factors_of
from vllm_d2l.evaluation.tasks import (CONDITIONS, build_items, evaluate_tasks, format_table, main, task_messages,
                                      tasks_chart)
from vllm_d2l.generator import Generator
from tiny import build_tiny_hypernet


def test_sets_draw_held_out_wordings_and_families():
    words = build_items("wordings", 6, 3, seed=1)
    fams = build_items("families", 6, 3, seed=1)
    assert len(words) == len(fams) == 18
    assert all(it["wording"] == len(FAMILIES[it["family"]].wordings) - 1 for it in words)
    assert {it["family"] for it in words}.isdisjoint(HELD_OUT_FAMILIES)
    assert {it["family"] for it in fams} == set(HELD_OUT_FAMILIES)
    assert build_items("wordings", 6, 3, seed=1)[0]["description"] == words[0]["description"]  # seeded
    seen = build_items("seen", len(FAMILIES) - len(HELD_OUT_FAMILIES), 2, seed=1)  # the diagnostic set: training wordings and values
    assert {it["family"] for it in seen} == {f for f in FAMILIES if f not in HELD_OUT_FAMILIES}
    assert all(0 <= it["wording"] < len(FAMILIES[it["family"]].wordings) - 1 for it in seen)
    assert {it["params"].get("phrase") for it in seen} - {None} <= set(_PHRASES["train"] + _SIGNOFFS["train"])
    fresh = build_items("fresh", 2 * len(FAMILIES), 1, seed=1)
    assert {it["family"] for it in fresh} == set(FAMILIES)
    assert {it["description"] for it in fresh[:len(FAMILIES)]}.isdisjoint(it["description"] for it in fresh[len(FAMILIES):])
    assert all("{" not in it["description"] for it in fresh)
    with pytest.raises(ValueError):
        build_items("genres", 1, 1)


@pytest.mark.parametrize("which", ["fresh", "select"])
def test_written_wordings_are_never_trained_on(which):
    """The fresh set (reported) and the selection set (the task run's choice of snapshot) are written
    apart from the training grammar: none of their templates is a fixed, composed or wide training
    wording, the selection set shares none with the reported ones, and each names its family's values."""
    import string
    from vllm_d2l.datasets.fresh_wordings import FRESH_WORDINGS
    from vllm_d2l.datasets.select_wordings import SELECT_WORDINGS
    from vllm_d2l.datasets.tasks import composed_wordings, families, wide_wordings

    written = {"fresh": FRESH_WORDINGS, "select": SELECT_WORDINGS}[which]
    norm = lambda ws: {w.strip().lower() for w in ws}  # noqa: E731
    assert set(written) == set(FAMILIES)
    for name, mine in written.items():
        trained = set(FAMILIES[name].wordings[:-1])
        if name in families("train"):
            trained |= set(composed_wordings(name)) | set(wide_wordings(name)[0]) | set(wide_wordings(name)[1])
        assert norm(trained).isdisjoint(norm(mine)) and len(mine) >= (3 if which == "fresh" else 2)
        if which == "select":
            assert norm(mine).isdisjoint(norm(FRESH_WORDINGS[name]) | norm(FAMILIES[name].wordings[-1:]))
        want = {f for _, f, _, _ in string.Formatter().parse(FAMILIES[name].wordings[0]) if f}
        assert all({f for _, f, _, _ in string.Formatter().parse(w) if f} == want for w in mine), name


def test_conditions_place_the_description():
    d, q = "Answer in at most 4 words.", "What is tea?"
    assert task_messages("none", d, q) == task_messages("adapter", d, q) == [{"role": "user", "content": q}]
    assert task_messages("system", d, q)[0] == {"role": "system", "content": d}
    assert task_messages("user", d, q)[0]["content"].startswith(d) and q in task_messages("user", d, q)[0]["content"]


def test_evaluate_scores_every_reply(tiny_model_dir, tmp_path):
    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    items = build_items("wordings", 2, 2)
    res = evaluate_tasks(gen, items, CONDITIONS, max_new_tokens=6, batch_size=4, progress=False)
    assert res["n_replies"] == 4 and res["n_tasks"] == 2 and set(res["conditions"]) == set(CONDITIONS)
    for it in res["items"]:
        assert set(it["outputs"]) == set(it["complied"]) == set(CONDITIONS)
        assert "_task" not in it
    json.dumps(res)  # everything it returns can be written out
    assert all(v["interval"][0] <= v["compliance"] <= v["interval"][1] for v in res["conditions"].values())
    assert "%" in format_table({"set": "wordings", **res}).splitlines()[0].split("(")[2]  # the interval printed
    tasks_chart({"wordings": {"set": "wordings", **res}}, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_adapter_scale_zero_is_the_bare_model_and_one_is_the_adapter(tiny_model_dir, tmp_path):
    """`--adapter-scale` multiplies each generated update: at 0 the replies are the bare model's."""
    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    with torch.no_grad():  # an update large enough to change greedy replies
        for p in gen.hypernet.parameters():
            p.mul_(30.0)
    run = lambda cond, scale: [it["outputs"][cond] for it in evaluate_tasks(  # noqa: E731
        gen, build_items("wordings", 2, 2), [cond], max_new_tokens=6, batch_size=4, progress=False,
        adapter=lambda d: factors_of(gen.internalize(d).weights, scale))["items"]]
    assert run("adapter", 0.0) == run("none", 1.0)
    assert run("adapter", 1.0) != run("none", 1.0)


def test_always_on_scale_touches_only_the_block_every_description_shares(tiny_model_dir, tmp_path):
    """`--always-on-scale` multiplies the last `always_on` rank rows of B alone: at 0 they are zero
    and the description's own rows are as generated; at 1 the factors are the adapter's."""

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    w = gen.internalize("Answer in capitals.").weights
    r = w.meta["layout"]["always_on"]
    assert r > 0
    for k, (a, b) in factors_of(w, always_on=0.0).items():
        assert torch.equal(a, w.a[k]) and torch.equal(b[:, :-r], w.b[k][:, :-r])
        assert not b[:, -r:].any() and w.b[k][:, -r:].any()
    halved = factors_of(w, scale=2.0, always_on=0.5)
    for k, (a, b) in factors_of(w).items():
        assert torch.equal(b, w.b[k])
        assert torch.allclose(halved[k][1][:, -r:], b[:, -r:]) and torch.allclose(halved[k][1][:, :-r], 2 * b[:, :-r])


def test_head_scale_touches_only_the_copy_path(tiny_model_dir, tmp_path):
    """`--head-scale` multiplies the LM head's update alone: at 0 copying is off and every other
    module is as generated; an adapter without a copy path refuses it."""
    from vllm_d2l.lora import HEAD

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6, pointer_rank=3)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    w = gen.internalize("Always open with 'Quite so.'").weights
    assert w.b[HEAD].any()
    off, tripled = factors_of(w, head=0.0), factors_of(w, scale=2.0, head=1.5)
    assert not off[HEAD][1].any()
    assert torch.allclose(tripled[HEAD][1], 3 * w.b[HEAD])
    for k in w.b:
        if k != HEAD:
            assert torch.equal(off[k][1], w.b[k]) and torch.allclose(tripled[k][1], 2 * w.b[k])
    plain = build_tiny_hypernet(tiny_model_dir, tmp_path / "plain", opened=True, kind="token", key_dim=6)
    bare = Generator.load(plain, tiny_model_dir, encoder_dtype=torch.float32).internalize("Be brief.").weights
    with pytest.raises(ValueError, match="copy path"):
        factors_of(bare, head=0.5)


def test_drop_layers_leaves_out_those_layers_updates_only(tiny_model_dir, tmp_path):
    """`--drop-layers` removes the modules of the named decoder layers and keeps the rest (the copy
    path on the LM head included) as generated; naming only layers the adapter does not update, or a
    range upside down, is refused."""
    from vllm_d2l.evaluation.tasks import _layer_range
    from vllm_d2l.lora import HEAD

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6, pointer_rank=3)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    w = gen.internalize("Always open with 'Quite so.'").weights
    layer1 = [k for k in w.a if ".layers.1." in k]
    assert layer1 and len(layer1) < len(w.a) - 1
    kept = factors_of(w, drop_layers=_layer_range("1"))
    assert set(kept) == set(w.a) - set(layer1) and HEAD in kept
    assert all(torch.equal(b, w.b[k]) for k, (_, b) in kept.items())
    assert _layer_range("25-29") == (25, 26, 27, 28, 29)
    with pytest.raises(ValueError, match="none of layers"):
        factors_of(w, drop_layers=(40,))
    with pytest.raises(SystemExit):
        main(["--drop-layers", "29-25"])


def test_cli_refuses_bad_arguments():
    with pytest.raises(SystemExit):
        main(["--conditions", "none,teacher"])
    with pytest.raises(SystemExit):
        main(["--prompts", "0"])
    with pytest.raises(SystemExit):
        main(["--qa-check", "2", "--qa-conditions", "adapter,none"])
    with pytest.raises(SystemExit):
        main(["--set", "qa"])  # the QA check alone, without saying how many tasks


def test_qa_check_scores_base_and_each_adapter(tiny_model_dir, tmp_path):
    from vllm_d2l.evaluation.tasks import QA_CHECK, qa_check

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    factors = {"brief": factors_of(gen.internalize("Answer in at most 4 words.").weights)}
    res = qa_check(gen, factors, max_new_tokens=4)
    assert res["questions"] == len(QA_CHECK) and set(res["per_task"]) == {"brief"}
    assert 0 <= res["base_accuracy"] <= 1 and res["adapter_accuracy"] == res["per_task"]["brief"]
    assert set(res["outputs"]) == {"base", "brief"} and all(len(o) == len(QA_CHECK) for o in res["outputs"].values())
    assert all("|" not in q and a for q, a in QA_CHECK) and len({q for q, _ in QA_CHECK}) == len(QA_CHECK)
    assert 0 <= res["first"]["base_accuracy"] <= 1 and res["first"]["questions"] == 20 < len(QA_CHECK)
    assert res["retained"] is None or 0 <= res["retained"] == res["retained_per_task"]["brief"] <= 1
    told = qa_check(gen, {}, max_new_tokens=4, described={"brief": "Answer in at most 4 words."},
                    conditions=("system",))["prompted"]["system"]
    assert told["outputs"]["base"] == res["outputs"]["base"] and len(told["outputs"]["brief"]) == len(QA_CHECK)


def test_cli_runs_the_qa_check_alone_under_adapters_and_prompts(tiny_model_dir, tmp_path, capsys):
    from vllm_d2l.evaluation.tasks import main

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    out = tmp_path / "qa.json"
    assert main(["--set", "qa", "--qa-check", "2", "--qa-conditions", "adapter,user", "--hypernet", str(hn),
                 "--model", str(tiny_model_dir), "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert set(res) == {"qa_check"}  # no compliance set was run
    qa = res["qa_check"]
    assert len(qa["per_task"]) == 2 and set(qa["prompted"]) == {"user"}
    for r in (qa, qa["prompted"]["user"]):
        assert set(r["complied_per_task"]) == set(qa["per_task"]) and 0 <= r["complied"] <= 1
    assert "told the description (user)" in capsys.readouterr().out


def test_null_descriptions_are_written_apart_from_trainings_roles_and_courtesies():
    import random

    from vllm_d2l.datasets import tasks as D
    from vllm_d2l.evaluation.tasks import NULL_DESCRIPTIONS

    assert len(set(NULL_DESCRIPTIONS)) == len(NULL_DESCRIPTIONS) >= 8
    pieces = [*D._ROLES, *(p for p in D._PLACES if p), *D._COURTESIES]
    for text in NULL_DESCRIPTIONS:
        assert not [p for p in pieces if p.lower() in text.lower()], text
        assert text not in D.reserved_wordings()
    rng = random.Random(0)
    drawn = {D.no_rule(rng).description for _ in range(3000)}
    assert not drawn & set(NULL_DESCRIPTIONS)


def test_cli_runs_the_qa_check_under_descriptions_that_ask_for_nothing(tiny_model_dir, tmp_path, capsys):
    from vllm_d2l.evaluation.tasks import NULL_DESCRIPTIONS, main

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    out = tmp_path / "qa.json"
    assert main(["--set", "qa", "--qa-null", "--qa-drift", "--hypernet", str(hn), "--model", str(tiny_model_dir),
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert set(res) == {"qa_null"}
    assert set(res["qa_null"]["per_task"]) == set(NULL_DESCRIPTIONS)
    printed = capsys.readouterr().out
    assert "descriptions that ask for nothing" in printed and "drift under no rule" in printed
    null = res["qa_null"]  # read back: exactly the questions the bare model got right
    assert null["drift"]["questions"] == round(null["base_accuracy"] * null["questions"])


def test_qa_check_retained_counts_only_what_the_base_model_got_right(monkeypatch):
    from vllm_d2l.evaluation import tasks as T

    questions = [(f"q{i}?", "a") for i in range(T.FIRST_QA + 4)]
    base_ok = [i % 2 == 0 for i in range(len(questions))]  # the base model gets the even ones right
    adapter_ok = [i % 4 == 0 or i % 2 == 1 for i in range(len(questions))]  # half of those, and every odd one
    monkeypatch.setattr(T, "QA_CHECK", questions)
    monkeypatch.setattr(T, "answered", lambda m, t, qs, f, *a: ((adapter_ok if f else base_ok), ["x"] * len(qs)))

    class Gen:
        model = tokenizer = None

    res = T.qa_check(Gen(), {"rule": object()})
    assert res["base_accuracy"] == 0.5 and res["adapter_accuracy"] == 0.75 and res["kept"] == 1.5
    assert res["retained"] == 0.5  # it broke half the base model's right answers, whatever it gained
    assert res["first"]["questions"] == T.FIRST_QA and res["first"]["kept"] == 1.5


def test_qa_check_scores_the_base_model_told_each_description(monkeypatch):
    """The prompted conditions ask the same questions with the description in the chat, and are
    scored against the same bare base run as the adapters."""
    from vllm_d2l.evaluation import tasks as T

    questions = [(f"q{i}?", "a") for i in range(8)]
    monkeypatch.setattr(T, "QA_CHECK", questions)
    seen = []

    def answered(m, t, qs, f, n, b, condition="none", description=""):
        seen.append((condition, description, f is not None))
        if condition == "user":  # told in the user message: the base model's right answers, one lost
            return [i % 2 == 0 and i != 0 for i in range(len(qs))], [description] * len(qs)
        return [i % 2 == 0 for i in range(len(qs))], ["x"] * len(qs)

    monkeypatch.setattr(T, "answered", answered)

    class Gen:
        model = tokenizer = None

    res = T.qa_check(Gen(), {}, described={"r": "Be brief."}, conditions=("user",),
                     checks={"r": lambda reply: reply.endswith(".")})
    assert res["adapter_accuracy"] is None and res["kept"] is None  # no adapters asked
    told = res["prompted"]["user"]
    assert told["base_accuracy"] == 0.5 and told["adapter_accuracy"] == 0.375 and told["retained"] == 0.75
    assert told["complied"] == 1.0 and told["complied_per_task"] == {"r": 1.0}  # the base run has no rule
    assert told["retained_complying"] == 0.75
    assert told["outputs"]["r"] == ["Be brief."] * 8
    assert seen == [("none", "", False), ("user", "Be brief.", False)]  # the bare run is asked once
    plain = T.qa_check(Gen(), {"r": object()}, checks={"r": lambda reply: reply == "y"})
    assert "prompted" not in plain and plain["complied"] == 0.0 and plain["retained_complying"] == 0.0
    half = T.qa_check(Gen(), {"r": object()}, checks={"r": lambda reply: reply == "y"},
                      described={"r": "Be brief."}, conditions=("user",))["prompted"]["user"]
    assert half["retained_complying"] == 0.0  # right but never following: nothing counts


def test_copy_set_is_every_held_out_phrase_in_every_held_out_wording_that_puts_it_first():
    from vllm_d2l.datasets import tasks
    from vllm_d2l.evaluation.copying import copy_items

    items = copy_items(prompts_per_description=2)
    phrases = tasks._PHRASES["eval"] + tasks._CATCH["eval"]
    descriptions = {it["description"] for it in items}
    assert len(descriptions) == len({it["task"] for it in items}) == len(items) // 2
    assert {it["params"]["phrase"] for it in items} == set(phrases)
    assert {it["family"] for it in items} == {"opening", "catchphrase"}
    trained = {w.format(phrase=p) for w in FAMILIES["opening"].wordings[:-1] for p in phrases}
    assert all(it["params"]["phrase"] in it["description"] for it in items) and not descriptions & trained
    assert {it["prompt"] for it in items} <= set(tasks.prompts("eval"))


def test_copy_scores_every_phrase_token_under_the_tasks_own_adapter(tiny_model_dir, tmp_path):
    from vllm_d2l.apply import lora_applied
    from vllm_d2l.evaluation.copying import copy_fidelity, summarize
    from vllm_d2l.prompts import render

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    items = build_items("families", 3, 2)  # one task of each held-out family: only the catch-phrase quotes one
    res = copy_fidelity(gen, items)
    assert res["n"] == 2 and {r["family"] for r in res["rows"]} == {"catchphrase"}
    row = res["rows"][0]
    phrase = gen.tokenizer(row["phrase"], add_special_tokens=False)["input_ids"]
    assert len(row["logprob"]) == len(row["top"]) == len(phrase) > 1
    prompt = render(gen.tokenizer, task_messages("adapter", "", row["prompt"]))
    with torch.no_grad(), lora_applied(gen.model, factors_of(gen.internalize(row["description"]).weights)):
        lp = gen.model(torch.tensor([prompt + phrase])).logits[0].float().log_softmax(-1)
    by_hand = [lp[len(prompt) - 1 + i] for i in range(len(phrase))]
    assert row["logprob"] == pytest.approx([p[t].item() for p, t in zip(by_hand, phrase)], abs=1e-4)
    assert row["top"] == [int(p.argmax()) == t for p, t in zip(by_hand, phrase)]
    json.dumps(res)
    # the command line's adapter knobs reach these scores: scaled to nothing, the bare model's
    with torch.no_grad():
        bare = gen.model(torch.tensor([prompt + phrase])).logits[0].float().log_softmax(-1)
    off = copy_fidelity(gen, items, adapter=lambda d: factors_of(gen.internalize(d).weights, scale=0.0))["rows"][0]
    assert off["logprob"] == pytest.approx([bare[len(prompt) - 1 + i, t].item() for i, t in enumerate(phrase)],
                                           abs=1e-4)
    assert row["logprob"] != pytest.approx(off["logprob"], abs=1e-4)  # and the adapter had changed them

    rows = [{"logprob": [-1.0, -2.0, -4.0], "top": [True, False, True]}, {"logprob": [-3.0], "top": [True]}]
    assert summarize(rows) == {"first_logprob": -2.0, "first_top": 1.0, "later_logprob": -3.0, "later_top": 0.5,
                               "whole_top": 0.5}


def test_value_set_is_every_held_out_value_in_every_held_out_wording_and_finds_it_in_the_rewrite():
    """The values part: every eval word, sign-off and key pair in the held-out and fresh wordings
    of its rule; the spans it scores are the values themselves, where the rule's rewrite puts them."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.fresh_wordings import FRESH_WORDINGS
    from vllm_d2l.evaluation.copying import VALUE_RULES, _rewrites, value_items, value_spans

    items = value_items(prompts_per_description=2)
    assert {it["family"] for it in items} == set(VALUE_RULES)
    n_values = {"include_word": len(tasks._INCLUDE["eval"]), "signoff": len(tasks._SIGNOFFS["eval"]),
                "json": len(tasks._KEYS["eval"])}
    assert len(items) == 2 * sum(n * (1 + len(FRESH_WORDINGS[f])) for f, n in n_values.items())
    reply = "Tides rise twice a day. The moon pulls them."
    for it in items[::2]:
        task = it["_task"]
        assert task.description == it["description"] and not task.description in tasks.reserved_wordings()
        for frame, target in _rewrites(task):
            text, spans = value_spans(target, reply)
            values = [v for k in VALUE_RULES[task.family] for v in
                      (task.params[k] if isinstance(task.params[k], list) else [task.params[k]])]
            assert [text[a:b] for a, b in spans] == values and target.check(text)
            if task.family == "signoff":
                assert spans[-1][1] == len(text.rstrip())
            assert (frame is None) == (task.family != "include_word")
    assert len(_rewrites(items[0]["_task"])) == len(tasks.INCLUDE_FRAMES)


def test_value_scores_are_the_value_tokens_after_the_rewrite_before_them(tiny_model_dir, tmp_path):
    from vllm_d2l.apply import lora_applied
    from vllm_d2l.evaluation.copying import value_fidelity, value_items, value_spans
    from vllm_d2l.evaluation.generation import generate
    from vllm_d2l.prompts import render

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32)
    items = [it for it in value_items(prompts_per_description=1) if it["family"] == "json"][:1]
    res = value_fidelity(gen, items, base_tokens=12)
    assert res["n"] == 2 and res["families"]["json"]["n"] == 2 and res["families"]["signoff"]["n"] == 0
    tok, task = gen.tokenizer, items[0]["_task"]
    reply = generate(gen.model, tok, [render(tok, task_messages("none", "", items[0]["prompt"]))], 12)[0]
    text, spans = value_spans(task, reply)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    prompt = render(tok, task_messages("adapter", "", items[0]["prompt"]))
    with torch.no_grad(), lora_applied(gen.model, factors_of(gen.internalize(task.description).weights)):
        lp = gen.model(torch.tensor([prompt + ids])).logits[0].float().log_softmax(-1)
    for row, (start, end) in zip(res["rows"], spans):  # the first key, then the second after the first's value
        assert row["phrase"] == text[start:end] and "".join(row["tokens"]).strip('"') == row["phrase"]
        first = len(tok(text[:start], add_special_tokens=False)["input_ids"])  # the value starts a token here
        targets = ids[first:first + len(row["tokens"])]
        by_hand = [lp[len(prompt) + first - 1 + i] for i in range(len(targets))]
        assert row["logprob"] == pytest.approx([p[t].item() for p, t in zip(by_hand, targets)], abs=1e-4)
        assert row["top"] == [int(p.argmax()) == t for p, t in zip(by_hand, targets)]
    json.dumps(res)


def test_cli_writes_the_copy_scores_alone_when_asked(tiny_model_dir, tmp_path):
    from vllm_d2l.evaluation.copying import copy_items

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    out = tmp_path / "t.json"
    assert main(["--set", "copy", "--hypernet", str(hn), "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {"copy"} and results["copy"]["n"] == len(copy_items())
    assert results["copy"]["values"]["n"] > 0 and set(results["copy"]["values"]["families"]) == {
        "include_word", "signoff", "json"}
    with pytest.raises(SystemExit):
        main(["--set", "copy", "--plot", str(tmp_path / "t.png")])


def test_cli_records_the_dtype_its_replies_were_written_in(tiny_model_dir, tmp_path):
    """Greedy replies move with the base model's dtype (bf16 where the CPU has it, else fp32), so
    each set's result says which one wrote them."""
    from vllm_d2l.base_model import preferred_dtype

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    out = tmp_path / "t.json"
    assert main(["--set", "families", "--n-tasks", "1", "--prompts", "1", "--conditions", "adapter",
                 "--max-new-tokens", "4", "--no-progress", "--hypernet", str(hn), "--model", str(tiny_model_dir),
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())["families"]
    assert result["dtype"] == str(preferred_dtype()).removeprefix("torch.") and result["n_replies"] == 1

def _random_factors(gen: torch.Generator, rank: int = 3) -> dict:
    shapes = {"q": (7, 5), "down": (4, 9)}  # module -> (out, in)
    return {k: (torch.randn(rank, i, generator=gen), torch.randn(o, rank, generator=gen)) for k, (o, i) in shapes.items()}


def test_readings_inner_products_and_centred_cosines_match_the_dense_weight_changes():
    from vllm_d2l.evaluation.readings import centred_cosines, inner

    gen = torch.Generator().manual_seed(0)
    protos = [_random_factors(gen) for _ in range(5)]
    query = _random_factors(gen)
    dense = lambda f: torch.cat([(b @ a).flatten() for a, b in f.values()])  # every module's dW, one vector
    assert inner(query, protos[0]) == pytest.approx(float(dense(query) @ dense(protos[0])), rel=1e-4)
    gram = torch.tensor([[inner(p, q) for q in protos] for p in protos])
    cross = torch.tensor([inner(query, p) for p in protos])
    got = centred_cosines(gram, cross, inner(query, query))
    stack = torch.stack([dense(p) for p in protos])  # [P, D]
    mean = stack.mean(0)
    want = torch.nn.functional.cosine_similarity((dense(query) - mean)[None], stack - mean, dim=1)
    assert got.tolist() == pytest.approx(want.tolist(), abs=1e-4)
    # a prototype read against its own set is nearest to itself
    own = centred_cosines(gram, gram[2], gram[2, 2].item())
    assert int(own.argmax()) == 2 and own[2].item() == pytest.approx(1.0, abs=1e-5)


def test_cli_reads_every_held_out_description_against_the_training_families(tiny_model_dir, tmp_path):
    from vllm_d2l.datasets.tasks import families
    from vllm_d2l.evaluation.readings import READING_SETS, prototype_descriptions

    protos = prototype_descriptions(per_family=2)
    assert {f for f, _ in protos} == set(families("train", extra=True)) and len(protos) == 2 * len({f for f, _ in protos})
    trained = {d for _, d in protos}
    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["--set", "readings", "--n-tasks", "3", "--hypernet", str(hn), "--model", str(tiny_model_dir),
                 "--out", str(out), "--plot", str(png), "--no-progress"]) == 0
    res = json.loads(out.read_text())["readings"]
    assert [r["set"] for r in res["rows"]] == [s for s in READING_SETS for _ in range(3)]
    assert not trained & {r["description"] for r in res["rows"]}
    for r in res["rows"]:
        assert set(r["similarity"]) == set(res["families"]) and r["read_as"] == max(r["similarity"], key=r["similarity"].get)
        assert all(-1.0001 <= v <= 1.0001 for v in r["similarity"].values())
        assert (r["own_rank"] is None) == (r["family"] in HELD_OUT_FAMILIES)
    assert res["summary"]["families"]["read_as_own"] is None
    assert sum(res["summary"]["families"]["held_out_read_as"]["lower"].values()) == 1
    assert png.stat().st_size > 0


def test_compare_pairs_replies_and_reads_gzipped_results(tmp_path, capsys):
    """`--compare` scores the difference on the replies both runs wrote (a reply only one holds
    is left out), per family too, and reads archived .gz results beside plain ones."""
    import gzip

    def run(passes: dict[tuple[int, str], bool]) -> dict:
        items = [{"task": t, "family": f"fam{t % 2}", "description": f"d{t}", "prompt": p,
                  "complied": {"adapter": ok}} for (t, p), ok in passes.items()]
        return {"note": "x", "wordings": {"set": "wordings", "items": items}, "qa_check": {"kept": 0.7}}

    old = run({(t, p): t < 2 for t in range(4) for p in "ab"})
    new = run({(t, p): t < 3 for t in range(4) for p in "ab"} | {(9, "a"): True})  # task 9: only in new
    with gzip.open(tmp_path / "old.json.gz", "wt") as f:
        json.dump(old, f)
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert main(["--compare", str(tmp_path / "old.json.gz"), str(tmp_path / "new.json")]) == 0
    out = capsys.readouterr().out
    assert "wordings (4 tasks, 8 replies): 50.0% -> 75.0%, +25.0 points" in out and "fam0 +50" in out
    assert "fam1" not in out  # tasks 1 and 3: unchanged
    assert "not known to be the same kind of machine" in out  # neither says where it ran
    for run_ in (old, new):
        run_["wordings"] |= {"dtype": "float32", "cpu_capability": "AVX2"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    main(["--compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    assert "not known to be the same" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--compare", str(tmp_path / "old.json.gz"), str(tmp_path / "missing.json")])


def test_negated_set_forbids_training_rules_in_held_out_wordings():
    """`--set negated`: one task per held-out negation, grouped by the rule it forbids; a plain
    reply keeps clear of every one of them and the rule's own rewrite of it does not."""
    from vllm_d2l.datasets.tasks import ALL_FAMILIES, NEGATION_WORDINGS, reserved_wordings
    from vllm_d2l.evaluation.tasks import build_items, default_tasks

    n = default_tasks("negated")
    assert n == sum(len(w) for w in NEGATION_WORDINGS.values())
    items = build_items("negated", n, 2)
    assert len(items) == 2 * n and len({it["task"] for it in items}) == n
    assert {it["family"] for it in items} == {f"not_{f}" for f in NEGATION_WORDINGS}
    plain = "Tides rise and fall twice a day. The moon pulls the water toward it."
    for it in items:
        task = it["_task"]
        assert "{" not in it["description"] and task.unfilled in reserved_wordings()
        assert task.check(plain)
        assert not task.check(ALL_FAMILIES[task.params["of"]].comply(plain, task.params))


def test_affirmed_set_asks_for_training_rules_through_a_not_in_held_out_wordings():
    """`--set affirmed`: one task per held-out affirmation, each a training rule's wording with a
    "not" in it that training never writes; a plain reply breaks it and the rule's rewrite keeps it."""
    import re

    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import AFFIRMATION_WORDINGS, NEGATABLE, reserved_wordings
    from vllm_d2l.evaluation.tasks import build_items, default_tasks

    n = default_tasks("affirmed")
    assert n == sum(len(w) for w in AFFIRMATION_WORDINGS.values())
    items = build_items("affirmed", n, 2)
    assert len(items) == 2 * n and {it["family"] for it in items} == set(AFFIRMATION_WORDINGS)
    assert not set(AFFIRMATION_WORDINGS) & set(tasks.HELD_OUT_FAMILIES)
    trained = {f.format(core=c, alt=a, Core=c[0].upper() + c[1:]) for fam in NEGATABLE for c in tasks._CORES[fam]
               for a in tasks._CORES.get(tasks.CONTRASTS.get(fam, ""), ("",))
               for f in tasks._AFFIRM_FRAMES + tasks._INSTEAD_FRAMES}
    plain = "Tides rise and fall twice a day. The moon pulls the water toward it."
    for it in items:
        task = it["_task"]
        assert task.unfilled in reserved_wordings() and task.unfilled not in trained
        assert "{" not in it["description"] and re.search(r"\b(not|never|no|don't)\b", it["description"], re.I)
        assert not task.check(plain) and task.check(task.comply(plain))


def test_answer_drift_is_zero_for_no_update_and_the_kl_of_the_read_back_replies(tiny_model_dir):
    """Read back under an adapter that adds nothing, the bare replies drift by nothing; under a
    random one, the KL equals the bare -> adapted KL summed over the reply's positions (computed here
    one question at a time) over its tokens, and the log-probability is the adapted model's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.apply import lora_applied
    from vllm_d2l.evaluation.drift import answer_drift
    from vllm_d2l.prompts import render

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    questions, replies = ["What is tea?", "Why is the sky blue?"], ["A drink made from leaves.", "Light scatters."]
    g = torch.Generator().manual_seed(0)
    zero = {"model.layers.1.mlp.down_proj": (torch.zeros(2, 128), torch.zeros(64, 2))}
    noisy = {"model.layers.1.mlp.down_proj": (torch.randn(2, 128, generator=g), torch.randn(64, 2, generator=g))}
    res = answer_drift(model, tok, questions, replies, {"zero": zero, "noisy": noisy}, batch_size=1)
    assert res["questions"] == 2 and res["per_task"]["zero"]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert res["per_task"]["zero"]["logprob"] == pytest.approx(res["bare_logprob"], abs=1e-5)
    kl, lp, n = 0.0, 0.0, 0
    for q, r in zip(questions, replies):
        prompt, answer = render(tok, [{"role": "user", "content": q}]), tok(r, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + answer])
        with torch.no_grad():
            bare = torch.log_softmax(model(ids).logits[0, len(prompt) - 1:-1], -1)
            with lora_applied(model, noisy):
                moved = torch.log_softmax(model(ids).logits[0, len(prompt) - 1:-1], -1)
        kl += (bare.exp() * (bare - moved)).sum().item()
        lp += moved.gather(1, torch.tensor(answer)[:, None]).sum().item()
        n += len(answer)
    assert res["tokens"] == n and res["per_task"]["noisy"]["kl"] == pytest.approx(kl / n, rel=1e-4) and kl > 0
    assert res["per_task"]["noisy"]["logprob"] == pytest.approx(lp / n, rel=1e-4)
    assert res["kl"] == pytest.approx((kl / n) / 2, rel=1e-4)  # the mean over the two adapters
