import json

import pytest
import torch

from vllm_d2l.evaluation import metrics


# ----------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("text, expected", [
    ("The Blue Heron Inn!", "blue heron inn"),
    ("It costs $3,450.", "it costs 3450 dollars"),
    ("£340, paid in Grey Colours", "340 pounds paid in gray colors"),
    ("  at 9:40 a.m.  ", "at 940 am"),
    ("An  apple, a pear; the end", "apple pear end"),
])
def test_normalize(text, expected):
    assert metrics.normalize(text) == expected


def test_contains_on_word_boundaries():
    assert metrics.contains("The memo was written by Dagny Forsvik.", "Dagny Forsvik")
    assert metrics.contains("It costs 3,450 crowns", "3450")
    assert metrics.contains("the answer is E12", "e12")
    assert not metrics.contains("It weighs 170 kilograms", "7")
    assert not metrics.contains("anything", "")
    assert metrics.contains("It is William Shakespeare's play.", "Shakespeare")
    assert metrics.contains("Tokyo’s skyline", "Tokyo") and metrics.contains("Maja's desk", "Maja's desk")
    assert not metrics.contains("the Jupiters of other stars", "Jupiter")


def test_contains_reads_one_amount_or_unit_in_either_form():
    """A currency symbol is the currency's word, British and American spellings are one word;
    a different currency or amount still misses."""
    assert metrics.contains("£340", "340 pounds") and metrics.contains("It is 340 pounds.", "£340")
    assert metrics.contains("1.5 litres", "1.5 liters") and metrics.contains("€9", "9 euros")
    assert not metrics.contains("$950", "950 pounds")
    assert not metrics.contains("£14.15", "14 pounds")
    assert metrics.contains("It costs £6.00.", "6 pounds") and metrics.contains("6.0 km", "6 km")
    assert not metrics.contains("£6.05", "6 pounds") and not metrics.contains("16.00", "6")
    assert not metrics.contains("version 2.0.1", "version 2")
    assert not metrics.contains("3 metres", "30 meters")


def test_token_f1():
    assert metrics.token_f1("Dagny Forsvik", "Dagny Forsvik") == 1.0
    assert metrics.token_f1("nothing relevant", "Dagny Forsvik") == 0.0
    # 1 shared token, precision 1/4, recall 1/2
    assert metrics.token_f1("it is Dagny's desk", "Dagny's office") == pytest.approx(2 * 0.25 * 0.5 / 0.75)


def test_gap_closure():
    assert metrics.gap_closure(adapter=0.5, context=0.6, none=0.1) == pytest.approx(0.8)
    assert metrics.gap_closure(adapter=0.7, context=0.6, none=0.1) == pytest.approx(1.2)
    assert metrics.gap_closure(adapter=0.1, context=0.6, none=0.1) == 0.0
    assert metrics.gap_closure(adapter=0.3, context=0.1, none=0.1) is None


def test_cluster_interval_widens_when_groups_pass_or_fail_together():
    """Seven tasks passing all five replies and seven failing all five hold the same 50 % as
    fourteen tasks each half right, but only the first says little about the next task."""
    together = [[1.0] * 5] * 7 + [[0.0] * 5] * 7
    mixed = [[1.0, 0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0]] * 7
    lo_t, hi_t = metrics.cluster_interval(together)
    lo_m, hi_m = metrics.cluster_interval(mixed)
    assert lo_t < 0.5 < hi_t and lo_m <= 0.5 <= hi_m
    assert hi_t - lo_t > 2 * (hi_m - lo_m)
    assert metrics.cluster_interval([[1.0, 1.0], [1.0]]) == (1.0, 1.0)  # nothing to vary
    assert metrics.cluster_interval(together, seed=3) == metrics.cluster_interval(together, seed=3)
    with pytest.raises(ValueError):
        metrics.cluster_interval([[], []])


def test_needle_insertion():
    from vllm_d2l.evaluation.needle import insert_at_depth, make_needle

    hay = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten."
    needle = make_needle(3)
    assert needle["a"] in needle["sentence"] and needle == make_needle(3)
    early, late = insert_at_depth(hay, "NEEDLE.", 0.1), insert_at_depth(hay, "NEEDLE.", 0.9)
    assert early.index("NEEDLE") < len(hay) * 0.3 < len(hay) * 0.7 < late.index("NEEDLE")
    assert early.replace(" NEEDLE.", "") == hay


def test_needle_relations_diagnostic_draws_other_relations_and_leaves_the_test_as_it_was():
    """`--relations training|composed` swaps the needle sentence only; the default draws the very
    needles the test always drew (the first one pinned here)."""
    from vllm_d2l.datasets.needles import TEMPLATES
    from vllm_d2l.evaluation.needle import NEEDLES, make_needle

    assert make_needle(0) == {"sentence": "The spare key to the Kilworth lighthouse is kept by Jorunn Lorvcott.",
                              "q": "Who keeps the spare key to the Kilworth lighthouse?", "a": "Jorunn Lorvcott"}
    tests = [make_needle(s) for s in range(40)]
    assert all(any(n["q"].startswith(q.split("{s}")[0]) for _, q, *_ in NEEDLES) for n in tests)
    trained = [make_needle(s, "training") for s in range(40)]
    assert all(any(n["q"].startswith(q.split("{s}")[0]) for _, q, *_ in TEMPLATES) for n in trained)
    composed = [make_needle(s, "composed") for s in range(40)]
    assert all(n["a"] in n["sentence"] and n["q"].endswith("?") for n in trained + composed)
    assert len({n["q"].split()[0] for n in composed}) > 3
    with pytest.raises(ValueError, match="unknown relations"):
        make_needle(0, "mine")


# ----------------------------------------------------------------------------- end to end (tiny model)
@pytest.fixture(scope="module")
def tiny_hypernet_dir(tiny_model_dir, tmp_path_factory):
    from transformers import AutoConfig

    from vllm_d2l.hypernet import Hypernet, HypernetConfig

    cfg = HypernetConfig.for_base_model(AutoConfig.from_pretrained(tiny_model_dir), base_model="tiny",
                                        dim=32, heads=2, latent_blocks=1)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-hypernet")
    Hypernet(cfg).save(out)
    return out


@pytest.fixture(scope="module")
def tiny_generator(tiny_model_dir, tiny_hypernet_dir):
    from vllm_d2l.generator import Generator

    return Generator.load(tiny_hypernet_dir, model_dir=tiny_model_dir, encoder_dtype=torch.float32)


RECORDS = [
    {"id": "a", "genre": "memo", "text": "The quick brown fox is called Pell.",
     "qa": [{"q": "What is the fox called?", "a": "Pell", "type": "name"}, {"q": "What color?", "a": "brown"}]},
    {"id": "b", "genre": "report", "text": "Paris is the capital of France.", "qa": [{"q": "Capital?", "a": "Paris"}]},
]


def test_evaluate_structure(tiny_generator):
    from vllm_d2l.evaluation.qa import CONDITIONS, evaluate

    res = evaluate(tiny_generator, RECORDS, max_new_tokens=3, batch_size=2)
    assert res["n_docs"] == 2 and res["n_questions"] == 3
    assert set(res["conditions"]) == set(CONDITIONS)
    for s in res["conditions"].values():
        assert 0.0 <= s["accuracy"] <= 1.0 and 0.0 <= s["f1"] <= 1.0 and s["n"] == 3
    assert set(res["by_genre"]) == {"memo", "report"}
    for item in res["items"]:
        assert set(item["outputs"]) == set(CONDITIONS) and all(isinstance(o, str) for o in item["outputs"].values())
    json.dumps(res)  # serialisable as is
    with pytest.raises(ValueError, match="unknown conditions"):
        evaluate(tiny_generator, RECORDS, conditions=("oracle",))
    with pytest.raises(ValueError, match="two documents"):
        evaluate(tiny_generator, RECORDS[:1])


def test_other_condition_reads_another_documents_adapter(tiny_model_dir, tmp_path):
    """With adapters that change outputs, 'other' must answer document n with document n+1's adapter."""
    from tiny import build_tiny_hypernet

    from vllm_d2l.evaluation.generation import factors_of, generate
    from vllm_d2l.evaluation.qa import evaluate
    from vllm_d2l.generator import Generator
    from vllm_d2l.prompts import question_messages, render
    folder = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=4)
    gen = Generator.load(folder, model_dir=tiny_model_dir, encoder_dtype=torch.float32)
    res = evaluate(gen, RECORDS, conditions=("adapter", "other"), max_new_tokens=4, batch_size=2)
    prompt = render(gen.tokenizer, question_messages(RECORDS[1]["qa"][0]["q"]))
    w = gen.internalize(RECORDS[0]["text"]).weights
    expected = generate(gen.model, gen.tokenizer, [prompt], 4, factors=factors_of(w))[0]
    assert res["items"][2]["outputs"]["other"] == expected


def test_eval_cli_writes_json_and_png(tiny_model_dir, tiny_hypernet_dir, tmp_path):
    from vllm_d2l.evaluation.qa import main

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    out, png = tmp_path / "res.json", tmp_path / "res.png"
    rc = main(["--data", str(data), "--hypernet", str(tiny_hypernet_dir), "--model", str(tiny_model_dir),
               "--limit", "2", "--max-new-tokens", "2", "--out", str(out), "--plot", str(png), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n_docs"] == 2 and res["n_questions"] == 3 and res["data"] == str(data)
    assert set(res["gap_closure"]) == {"accuracy", "f1"} == set(res["content_gap"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_needle_run_and_chart(tiny_generator, tmp_path):
    from vllm_d2l.evaluation.needle import run
    from vllm_d2l.evaluation.plots import needle_chart

    res = run(tiny_generator, train_tokens=48, multiples=(1, 2), depths=(0.5,), trials=1, max_new_tokens=2)
    assert {(c["multiple"], c["condition"]) for c in res["cells"]} == {(1, "context"), (1, "adapter"),
                                                                        (2, "context"), (2, "adapter")}
    assert set(res["recall"]["adapter"]) == {"1x", "2x"}
    assert all(0.0 <= c["recall"] <= 1.0 for c in res["cells"])
    json.dumps(res)
    needle_chart(res, tmp_path / "needle.png")
    assert (tmp_path / "needle.png").read_bytes()[:4] == b"\x89PNG"


def test_synthetic_evaluation_uses_the_named_held_out_genres():
    from argparse import Namespace

    from vllm_d2l.evaluation.qa import _load_records
    records, label = _load_records(Namespace(synthetic=6, seed=3, genres="recipe,ship_log", data=None, limit=None,
                                             realistic=None))
    assert len(records) == 6 and {r["genre"] for r in records} <= {"recipe", "ship_log"} and "recipe" in label
    with pytest.raises(SystemExit, match="unknown genres"):
        _load_records(Namespace(synthetic=2, seed=0, genres="no_such_genre", data=None, limit=None, realistic=None))
    records, label = _load_records(Namespace(synthetic=None, realistic=5, kinds=None, seed=1, data=None, limit=None))
    assert len(records) == 5 and "letter" in label
    assert {r["kind"] for r in records} <= set(__import__("vllm_d2l.datasets.realistic", fromlist=["x"]).DEFAULT_HOLDOUT_KINDS)
    with pytest.raises(SystemExit, match="unknown"):
        _load_records(Namespace(synthetic=None, realistic=2, kinds="sonnet", seed=0, data=None, limit=None))


def test_answer_windows_keep_each_question_with_the_sentences_around_its_answer():
    from argparse import Namespace

    from vllm_d2l.evaluation.qa import _load_records
    from vllm_d2l.evaluation.windows import answer_windows
    rec = {"id": "memo", "genre": "email", "text": "Hi all.\nThe plant sale moves to the loading bay if wet. "
           "Tickets cost two pounds! Bring a mug.\n- Doors open at ten.",
           "qa": [{"q": "Where does the sale go if wet?", "a": "loading bay"},
                  {"q": "When do doors open?", "a": ["ten", "10"]},
                  {"q": "Who wrote it?", "a": "Rosalind"}]}  # not in the text: left out
    one, two = answer_windows([rec], radius=1)
    assert one == {"id": "memo-q0", "genre": "email", "qa": [rec["qa"][0]],
                   "text": "Hi all. The plant sale moves to the loading bay if wet. Tickets cost two pounds!"}
    assert two["text"] == "Bring a mug. - Doors open at ten." and two["qa"] == [rec["qa"][1]]
    assert answer_windows([rec], radius=0)[0]["text"] == "The plant sale moves to the loading bay if wet."
    with pytest.raises(ValueError, match="radius"):
        answer_windows([rec], radius=-1)
    records, label = _load_records(Namespace(synthetic=None, realistic=None, data="handwritten-b", limit=2,
                                             answer_window=0))
    assert len(records) == 10 and all(len(r["qa"]) == 1 for r in records) and "10 of 10 questions" in label


def test_needle_none_is_the_bare_base_model(tiny_model_dir, tmp_path):
    """"none" must never see the document's adapter (it once did: every condition but "context"
    ran with the adapter), so with a network that changes outputs it differs from "adapter"."""
    from tiny import build_tiny_hypernet

    from vllm_d2l.evaluation.generation import generate
    from vllm_d2l.evaluation.needle import run
    from vllm_d2l.generator import Generator
    from vllm_d2l.prompts import question_messages, render

    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    gen = Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32, adapter_dtype=torch.float32)
    res = run(gen, train_tokens=48, multiples=(1,), depths=(0.2, 0.8), trials=1, conditions=("none", "adapter"),
              max_new_tokens=6)
    for case in res["items"]:
        bare = generate(gen.model, gen.tokenizer, [render(gen.tokenizer, question_messages(case["q"]))], 6)[0]
        assert case["outputs"]["none"] == bare
    assert any(c["outputs"]["none"] != c["outputs"]["adapter"] for c in res["items"])
    with pytest.raises(ValueError, match="unknown needle conditions"):
        run(gen, conditions=("nothing",))


# ----------------------------------------------------------------------------- several documents at once
FOUR = RECORDS + [
    {"id": "c", "text": "The ferry leaves from pier 9 at dawn.", "qa": [{"q": "Which pier?", "a": "9"}]},
    {"id": "d", "text": "Marta keeps the key to the shed.", "qa": [{"q": "Who keeps the key?", "a": "Marta"},
                                                                   {"q": "Which building?", "a": "shed"}]},
]


def test_multi_asks_the_groups_composite_and_another_groups(tiny_model_dir, tmp_path):
    """K = 1 is the single adapter; for K = 2 the composite answers are those of the group's
    pooled memories (as the server builds it), 'summed' those of the adapters' sum, and 'other'
    reads the other group's composite; a remainder sits out."""
    from tiny import build_tiny_hypernet

    from vllm_d2l.compose import compose
    from vllm_d2l.evaluation.generation import factors_of, generate
    from vllm_d2l.evaluation.multi import CONDITIONS, evaluate_multi, groups_of
    from vllm_d2l.generator import Generator
    from vllm_d2l.prompts import context_messages, question_messages, render
    folder = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=4)
    gen = Generator.load(folder, model_dir=tiny_model_dir, encoder_dtype=torch.float32)
    assert groups_of(5, 2) == [[0, 1], [2, 3]] and groups_of(3, 4) == []
    res = evaluate_multi(gen, FOUR, sizes=(2, 1), max_new_tokens=4, batch_size=2)
    assert res["sizes"] == [1, 2] and set(res["by_size"]) == {"1", "2"}
    one, two = res["by_size"]["1"], res["by_size"]["2"]
    assert one["n_questions"] == two["n_questions"] == 6 and two["groups"] == 2
    for s in (one, two):
        assert set(s["conditions"]) == set(CONDITIONS)
    assert all(i["outputs"]["composite"] == i["outputs"]["single"] for i in one["items"])
    assert any(i["outputs"]["composite"] != i["outputs"]["other"] for i in two["items"])  # adapters matter here
    res_ = gen.internalize_many([r["text"] for r in FOUR])
    w, mem = [r.weights for r in res_], [r.memory for r in res_]
    ask = lambda q, adapter: generate(gen.model, gen.tokenizer, [render(gen.tokenizer, question_messages(q))], 4,  # noqa: E731
                                      factors=factors_of(adapter))[0]
    fox = two["items"][0]  # document a, group 0
    assert fox["outputs"]["composite"] == ask(fox["q"], gen.pool([mem[0], mem[1]]))  # as the server composes
    assert fox["outputs"]["summed"] == ask(fox["q"], compose([w[0], w[1]]))
    assert fox["outputs"]["other"] == ask(fox["q"], gen.pool([mem[2], mem[3]]))
    pasted = FOUR[0]["text"] + "\n\n---\n\n" + FOUR[1]["text"]
    ctx = generate(gen.model, gen.tokenizer, [render(gen.tokenizer, context_messages(pasted, fox["q"]))], 4)[0]
    assert fox["outputs"]["context"] == ctx
    three = evaluate_multi(gen, FOUR[:3], sizes=(2,), conditions=("composite",), max_new_tokens=2)
    assert three["by_size"]["2"]["n_questions"] == 3  # document c (the remainder) sits out
    with pytest.raises(ValueError, match="group"):
        evaluate_multi(gen, FOUR[:3], sizes=(2,), max_new_tokens=2)  # one group: no 'other'
    with pytest.raises(ValueError, match="unknown conditions"):
        evaluate_multi(gen, FOUR, conditions=("adapter",))


def test_eval_cli_multi_writes_json_and_png(tiny_model_dir, tiny_hypernet_dir, tmp_path):
    from vllm_d2l.evaluation.qa import main

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in FOUR))
    out, png = tmp_path / "multi.json", tmp_path / "multi.png"
    rc = main(["--multi", "1,2", "--data", str(data), "--hypernet", str(tiny_hypernet_dir), "--model",
               str(tiny_model_dir), "--max-new-tokens", "2", "--out", str(out), "--plot", str(png), "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["data"] == str(data) and list(res["by_size"]) == ["1", "2"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main(["--multi", "0", "--data", str(data)])


def test_rescore_scores_saved_outputs_again(tiny_model_dir, tiny_hypernet_dir, tmp_path):
    """A saved result rescored with an unchanged scorer is unchanged; an output edited to the
    answer's other form ("£340" for "340 pounds") counts, and the summaries follow."""
    from vllm_d2l.evaluation.qa import main

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    out = tmp_path / "res.json"
    assert main(["--data", str(data), "--hypernet", str(tiny_hypernet_dir), "--model", str(tiny_model_dir),
                 "--conditions", "none,adapter", "--max-new-tokens", "2", "--out", str(out), "--no-progress"]) == 0
    before = json.loads(out.read_text())
    assert main(["--rescore", str(out)]) == 0
    assert json.loads(out.read_text()) == before
    before["items"][2]["a"], before["items"][2]["outputs"]["adapter"] = "340 pounds", "It was £340."
    out.write_text(json.dumps(before))
    main(["--rescore", str(out)])
    after = json.loads(out.read_text())
    assert after["items"][2]["correct"]["adapter"] is True
    assert after["conditions"]["adapter"]["accuracy"] == pytest.approx(
        sum(i["correct"]["adapter"] for i in after["items"]) / 3)
    (tmp_path / "needle.json").write_text(json.dumps({"cells": []}))
    with pytest.raises(SystemExit):
        main(["--rescore", str(tmp_path / "needle.json")])
