import json

import pytest

from vllm_d2l.datasets import synthetic
from vllm_d2l.datasets.genres import DEFAULT_HOLDOUT, GENRE_NAMES


def test_deterministic_and_prefix_stable():
    a = synthetic.generate(40, seed=3)
    b = synthetic.generate(40, seed=3)
    assert a == b
    assert synthetic.generate(10, seed=3) == a[:10]
    assert synthetic.generate(10, seed=4) != a[:10]


def test_enough_genres_and_answer_types():
    assert len(GENRE_NAMES) >= 12
    records = synthetic.generate(400, seed=0)
    assert {r["genre"] for r in records} == set(GENRE_NAMES)
    types = {qa["type"] for r in records for qa in r["qa"]}
    assert {"name", "number", "date", "place", "color", "object", "time", "amount"} <= types
    words = [len(r["text"].split()) for r in records]
    assert min(words) < 80 and max(words) > 300


def test_answers_appear_in_their_documents():
    for r in synthetic.generate(300, seed=1):
        assert r["qa"], r["id"]
        for qa in r["qa"]:
            assert qa["a"] and qa["a"] in r["text"], (r["id"], qa)
        answers = [qa["a"] for qa in r["qa"]]
        assert len(set(answers)) == len(answers), r["id"]


def test_holdout_is_disjoint():
    train, evaluation = synthetic.split(200, 50, seed=0)
    assert {r["genre"] for r in train}.isdisjoint(DEFAULT_HOLDOUT)
    assert {r["genre"] for r in evaluation} <= set(DEFAULT_HOLDOUT)
    assert {r["text"] for r in train}.isdisjoint({r["text"] for r in evaluation})
    only = synthetic.generate(30, seed=0, holdout_genres=["memo", "recipe"])
    assert not {"memo", "recipe"} & {r["genre"] for r in only}


def test_unknown_genre_is_an_error():
    with pytest.raises(ValueError, match="unknown genres"):
        synthetic.generate(1, genres=["haiku"])
    with pytest.raises(ValueError, match="no genres left"):
        synthetic.generate(1, genres=["memo"], holdout_genres=["memo"])


def test_cli_writes_jsonl(tmp_path):
    out = tmp_path / "train.jsonl"
    assert synthetic.main(["--n", "5", "--seed", "2", "--out", str(out), "--holdout", "default"]) == 0
    lines = out.read_text().splitlines()
    assert [json.loads(l) for l in lines] == synthetic.generate(5, 2, holdout_genres=DEFAULT_HOLDOUT)
