import json

import re

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


# ----------------------------------------------------------------------------- user JSONL
from vllm_d2l.datasets.jsonl import BadRecord, load_handwritten, load_jsonl  # noqa: E402


def test_jsonl_loads_and_assigns_ids(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "A is B.", "qa": [{"q": "What is A?", "a": "B"}]}\n\n'
                    '{"id": "x", "text": "C.", "qa": [{"q": "C?", "a": "C"}]}\n')
    records = load_jsonl(path)
    assert [r["id"] for r in records] == ["docs-1", "x"]
    assert len(load_jsonl(path, limit=1)) == 1


@pytest.mark.parametrize("line, message", [
    ('{"text": "x", "qa": [{"q": "y"}]', "line 2: not valid JSON"),
    ('[1, 2]', "line 2: expected a JSON object"),
    ('{"text": "", "qa": [{"q": "y", "a": "z"}]}', "line 2: 'text' must be"),
    ('{"text": "x"}', "line 2: 'qa' must be"),
    ('{"text": "x", "qa": [{"q": "y", "a": 3}]}', r"line 2: qa\[0\].a must be"),
])
def test_jsonl_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "qa": [{"q": "q", "a": "a"}]}\n' + line + "\n")
    with pytest.raises(BadRecord, match=message.replace("line 2", "bad.jsonl:2")):
        load_jsonl(path)


def test_jsonl_missing_or_empty_file(tmp_path):
    with pytest.raises(BadRecord, match="no such file"):
        load_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(BadRecord, match="no records"):
        load_jsonl(tmp_path / "empty.jsonl")


@pytest.mark.parametrize("name,docs,questions", [("handwritten", 20, 4), ("handwritten-b", 24, 5)])
def test_handwritten_sets_are_well_formed(name, docs, questions):
    records = load_handwritten(name)
    assert len(records) == docs and len({r["id"] for r in records}) == docs
    for r in records:
        assert len(r["qa"]) == questions
        for qa in r["qa"]:
            assert qa["a"] in r["text"]
    with pytest.raises(ValueError, match="handwritten-b"):
        load_handwritten("nope")


# ----------------------------------------------------------------------------- corpora
from vllm_d2l.datasets import corpora  # noqa: E402


def test_corpora_passages_respect_token_bounds(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    import itertools

    passages = list(itertools.islice(corpora.iter_passages(32, 96, tok, seed=0, sources=["pydoc"]), 20))
    assert len(passages) == 20
    for p in passages:
        assert 32 <= len(tok(p, add_special_tokens=False)["input_ids"]) <= 96
    again = list(itertools.islice(corpora.iter_passages(32, 96, tok, seed=0, sources=["pydoc"]), 20))
    assert passages == again


def test_corpora_missing_sources_degrade(monkeypatch):
    monkeypatch.setattr(corpora, "_STATE_FILES", ("/nonexistent/a.gz",))
    monkeypatch.setattr(corpora, "_JARGON_FILE", "/nonexistent/j.gz")
    assert corpora.state_documents() == [] and corpora.jargon_documents() == []
    assert corpora.load_documents(["state", "pydoc"])  # pydoc is always there
    with pytest.raises(ValueError, match="unknown corpus"):
        corpora.load_documents(["bigbench"])


def test_runs_refuse_missing_corpora_and_an_exported_folder_stands_in(monkeypatch, tmp_path):
    """A run naming its sources stops on a machine without them, saying what to install; a folder
    exported where they are installed gives the same documents through VLLM_D2L_CORPORA."""
    import gzip

    from vllm_d2l.errors import MissingCorpora
    system = tmp_path / "system"
    system.mkdir()
    for name, text in (("us-constitution.gz", "We the People\n\nof the United States"),
                       ("us-declaration.gz", "When in the Course"), ("jargon.txt.gz", "hack\n\n┌──┐\n\nkludge")):
        with gzip.open(system / name, "wt") as fh:
            fh.write(text)
    monkeypatch.setattr(corpora, "_STATE_FILES", (str(system / "us-constitution.gz"), str(system / "us-declaration.gz")))
    monkeypatch.setattr(corpora, "_JARGON_FILE", str(system / "jargon.txt.gz"))
    monkeypatch.setattr(corpora, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.delenv(corpora.EXPORTED_ENV, raising=False)
    monkeypatch.setattr(corpora.shutil, "which", lambda _: None)  # no Rscript: austen is missing
    with pytest.raises(MissingCorpora, match="austen.*r-cran-janeaustenr"):
        corpora.require(["austen", "state", "pydoc"])
    books = tmp_path / "cache" / "corpora" / "austen"
    books.mkdir(parents=True)
    for book in corpora._AUSTEN_BOOKS:
        (books / f"{book}.txt").write_text(f"It is a truth about {book}.")
    corpora.require(["austen", "state", "jargon", "pydoc"])
    before = {n: corpora.SOURCES[n]() for n in ("austen", "state", "jargon")}
    assert corpora.export(tmp_path / "exported") == ["state", "jargon", "austen"]
    monkeypatch.setattr(corpora, "_STATE_FILES", ("/nonexistent/a.gz", "/nonexistent/b.gz"))
    monkeypatch.setattr(corpora, "_JARGON_FILE", "/nonexistent/j.gz")
    monkeypatch.setattr(corpora, "cache_root", lambda: tmp_path / "elsewhere")
    with pytest.raises(MissingCorpora, match="jargon-text"):
        corpora.require(["jargon"])
    monkeypatch.setenv(corpora.EXPORTED_ENV, str(tmp_path / "exported"))
    assert {n: corpora.SOURCES[n]() for n in before} == before
    with pytest.raises(ValueError, match="unset"):
        corpora.export(tmp_path / "again")


from vllm_d2l.datasets import realistic, words  # noqa: E402
from vllm_d2l.datasets.values import OpenValues, vocabulary_words  # noqa: E402

POOLS = set(words.FIRST_NAMES) | set(words.OBJECTS) | set(words.ANIMALS) | set(words.INGREDIENTS) | set(words.SPICES)


def test_open_values_leave_closed_records_unchanged_and_open_the_pools(tiny_model_dir):
    """Rate 0 draws exactly the old records (the hold-out never moves); at rate 1 the pooled kinds
    come from outside the pools, answers still appear in their documents, and the same
    (seed, index) gives the same record."""
    from transformers import AutoTokenizer

    vocab = vocabulary_words(AutoTokenizer.from_pretrained(tiny_model_dir))
    genres = synthetic.resolve_genres()
    for i in range(20):
        assert synthetic.make_record(1, i, genres, open_values=OpenValues(0.0, vocab)) == synthetic.make_record(1, i, genres)
        assert realistic.make_record(1, i, open_values=OpenValues(0.0, vocab)) == realistic.make_record(1, i)
    opened = OpenValues(1.0, vocab)
    answers = []
    for i in range(40):
        for rec in (synthetic.make_record(1, i, genres, open_values=opened), realistic.make_record(1, i, open_values=opened)):
            assert all(qa["a"] in rec["text"] for qa in rec["qa"])
            answers += [qa["a"] for qa in rec["qa"] if qa["type"] in ("name", "object")]
        assert synthetic.make_record(1, i, genres, open_values=opened) == synthetic.make_record(1, i, genres, open_values=opened)
    pooled = [a for a in answers if a in POOLS or any(part in words.FIRST_NAMES for part in a.split())]
    assert len(answers) > 50 and len(pooled) < 0.1 * len(answers)
    with pytest.raises(ValueError):
        OpenValues(1.5)


from vllm_d2l.datasets import needles  # noqa: E402
from vllm_d2l.evaluation.needle import NEEDLES  # noqa: E402


def test_needle_records_hide_facts_in_prose_and_never_use_the_test_relations():
    maker = needles.NeedleMaker(sources=["pydoc"])
    recs = [maker.record(3, i) for i in range(12)]
    assert recs[0] == maker.record(3, 0) and len({r["text"] for r in recs}) == 12
    for rec in recs:
        assert 1 <= len(rec["qa"]) <= 3 and rec["genre"] == "needle:pydoc"
        assert all(qa["a"] in rec["text"] for qa in rec["qa"])
        assert len(rec["text"]) > 250  # prose around the facts, not just the facts
    for says, asks, *_ in NEEDLES:  # the evaluation's relations (archive password, lighthouse key, ...)
        relation = says.split("{s}")[1].split("{a}")[0]
        assert all(relation not in t for t, *_ in needles.TEMPLATES)


def test_composed_relations_state_what_they_ask_and_never_touch_the_test_relations():
    """Facts from relations composed of parts: the statement holds the answer and the question the
    holder; no part uses a word of the needle test's relations; a maker without composed
    relations draws exactly the template records (the long-document hold-out stays as it was)."""
    import random

    from vllm_d2l.datasets import relations
    from vllm_d2l.datasets.values import Inventor

    parts = [h for h, _ in relations.HOLDERS] + list(relations.OPENINGS) \
        + [t for says, asks, _ in relations.ATTRIBUTES + relations.EVERYDAY for t in (*says, *asks)]
    for word in relations.FORBIDDEN:
        assert not [p for p in parts if word in p.lower()], word
    for says, *_ in NEEDLES:
        assert any(w in says.lower() for w in relations.FORBIDDEN)  # the list covers every test relation
    seen = set()
    for seed in range(300):
        rng = random.Random(seed)
        inv = Inventor(rng)
        statement, question, answer, kind = relations.compose(rng, inv.draw, everyday=seed % 2 == 1)
        assert answer in statement and statement[0].isupper() and statement.endswith(".")
        assert question.endswith("?") and answer not in question
        names = [w.rstrip("?") for w in question.split()[1:] if w[:1].isupper()]  # the holder's name
        assert names and all(w in statement for w in names)
        seen.add((question.split(" ")[0], kind))
    assert len(seen) > 20  # many relations, not a handful

    plain, mixed = needles.NeedleMaker(sources=["pydoc"]), needles.NeedleMaker(sources=["pydoc"], composed=1.0)
    again = needles.NeedleMaker(sources=["pydoc"], composed=0.0)
    assert [plain.record(5, i) for i in range(6)] == [again.record(5, i) for i in range(6)]
    recs = [mixed.record(5, i) for i in range(12)]
    assert all(qa["a"] in r["text"] for r in recs for qa in r["qa"])
    templated = [re.compile(re.escape(asks).replace(re.escape("{s}"), ".+")) for _, asks, *_ in needles.TEMPLATES]
    assert not [qa["q"] for r in recs for qa in r["qa"] if any(t.fullmatch(qa["q"]) for t in templated)]

    # the ordinary-word attributes come in only when asked for
    everyday = [re.compile(re.escape(a).replace(re.escape("{h}"), ".+")) for _, asks, _ in relations.EVERYDAY for a in asks]
    asked = lambda maker: [qa["q"] for i in range(40) for qa in maker.record(5, i)["qa"]]  # noqa: E731
    assert not [q for q in asked(mixed) if any(t.fullmatch(q) for t in everyday)]
    wide = needles.NeedleMaker(sources=["pydoc"], composed=1.0, everyday=True)
    assert [q for q in asked(wide) if any(t.fullmatch(q) for t in everyday)]


def test_long_needle_holdout_uses_held_out_prose_of_the_asked_length():
    """The training hold-out's long documents: prose from held-out corpus units only, several
    chunks long, labelled as their own source."""
    from vllm_d2l.datasets.cloze import _is_heldout
    maker = needles.NeedleMaker(sources=["pydoc"], split="heldout", min_tokens=600, max_tokens=1000, label="long")
    recs = [maker.record(30_000, i) for i in range(4)]
    assert all(r["genre"] == "long:pydoc" and r["id"].startswith("long-") for r in recs)
    assert all(_is_heldout(u.name) for us, _ in maker.prose.by_source.values() for u in us)
    count = maker.prose.count
    assert all(600 <= count(r["text"]) for r in recs) and all(qa["a"] in r["text"] for r in recs for qa in r["qa"])


def test_validation_relations_are_neither_trained_nor_tested_and_feed_the_unseen_probe():
    """The hold-out's `unseen` relations: none is a training template, a test relation, or a thing
    composition could say (each has a word no training part or test relation uses); the probe's
    records ask them only, over held-out prose."""
    from vllm_d2l.datasets import relations
    from vllm_d2l.datasets.cloze import _is_heldout

    used = " ".join([h for h, _ in relations.HOLDERS] + list(relations.OPENINGS)
                    + [t for says, asks, _ in relations.ATTRIBUTES + relations.EVERYDAY for t in (*says, *asks)]
                    + [t for rel in needles.TEMPLATES + NEEDLES for t in rel[:2]]).lower()
    words = lambda text: set(re.findall(r"[a-z']+", text.lower().replace("{s}", " ").replace("{a}", " ")))  # noqa: E731
    for says, asks, *_ in needles.VALIDATION:
        assert words(says) - set(re.findall(r"[a-z']+", used)), says  # a word nothing else has
        assert not any(says == t[0] for t in needles.TEMPLATES + NEEDLES)
    maker = needles.NeedleMaker(sources=["pydoc"], split="heldout", min_tokens=200, max_tokens=1000, label="unseen",
                                templates=needles.VALIDATION)
    recs = [maker.record(40_000, i) for i in range(6)]
    asked = [re.compile(re.escape(a).replace(re.escape("{s}"), ".+")) for _, a, *_ in needles.VALIDATION]
    assert all(r["genre"] == "unseen:pydoc" and any(t.fullmatch(qa["q"]) for t in asked) and qa["a"] in r["text"]
               for r in recs for qa in r["qa"])
    assert all(_is_heldout(u.name) for us, _ in maker.prose.by_source.values() for u in us)


def test_the_selection_set_is_written_apart_from_the_reported_hand_written_sets():
    """Documents to choose snapshots by (`TrainConfig.heldout_files`): every answer stated in its
    document, and no document, question or distinctive answer shared with the two hand-written sets
    the README reports."""
    import json
    from pathlib import Path

    root = Path(needles.__file__).parent
    load = lambda name: [json.loads(l) for l in (root / name).read_text().splitlines() if l.strip()]  # noqa: E731
    select, reported = load("handwritten_select.jsonl"), load("handwritten.jsonl") + load("handwritten_b.jsonl")
    assert len(select) >= 40 and sum(len(r["qa"]) for r in select) >= 240
    assert all(qa["a"] in r["text"] and len(r["text"].split()) >= 60 for r in select for qa in r["qa"])
    texts = " ".join(r["text"] for r in reported)
    assert not {qa["q"] for r in select for qa in r["qa"]} & {qa["q"] for r in reported for qa in r["qa"]}
    assert not [qa["a"] for r in select for qa in r["qa"] if len(qa["a"]) > 8 and qa["a"] in texts]
    assert not {r["id"] for r in select} & {r["id"] for r in reported}


def test_near_miss_names_are_one_edit_from_a_real_one():
    """Open names include near misses of pool names ("Tobias" -> "Tobiah"): one letter after the
    first changed, added or dropped, never the name itself."""
    import random

    from vllm_d2l.datasets import words as W
    from vllm_d2l.datasets.values import Inventor, OpenValues, near_miss

    def one_edit(a: str, b: str) -> bool:
        if abs(len(a) - len(b)) > 1 or a == b:
            return False
        if len(a) == len(b):
            return sum(x != y for x, y in zip(a, b)) == 1
        short, long_ = sorted((a, b), key=len)
        return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))

    rng = random.Random(0)
    for name in W.FIRST_NAMES[:60]:
        out = near_miss(rng, name)
        assert out[0] == name[0] and one_edit(name, out), (name, out)
    inv = Inventor(random.Random(1), open_values=OpenValues(1.0, ["kettle"]))
    firsts = [inv.draw("first") for _ in range(60)]
    near = [f for f in firsts if any(one_edit(f, n) for n in W.FIRST_NAMES)]
    assert 5 <= len(near) <= 35 and not set(firsts) & set(W.FIRST_NAMES)


def test_written_out_forms_and_the_plain_inventor():
    """Counts, sums and temperatures come written out at times ("eight", "340 pounds",
    "minus 4 degrees"); a plain inventor (the needle test's) draws figures only, as it always did."""
    import random

    from vllm_d2l.datasets import words as W
    from vllm_d2l.datasets.values import Inventor

    def draws(plain: bool) -> list[str]:
        inv = Inventor(random.Random(5), plain=plain)
        return [inv.draw(k) for _ in range(12) for k in ("count", "money", "temperature")]

    styled, plain = " ".join(draws(False)), " ".join(draws(True))
    assert any(w in styled.split() for w in W.NUMBER_WORDS) and "minus" in styled
    assert any(c in styled for c in W.CURRENCY_WORDS)
    assert not any(w in plain.split() for w in W.NUMBER_WORDS) and "minus" not in plain
    assert not any(c in plain for c in W.CURRENCY_WORDS)
