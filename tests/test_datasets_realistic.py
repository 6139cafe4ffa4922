"""Fast checks of the realistic-document and cloze generators (no model, no network)."""
import json
import re
import statistics

import pytest

from vllm_d2l.datasets import cloze, realistic
from vllm_d2l.datasets import words as W
from vllm_d2l.datasets.jsonl import validate_record
from vllm_d2l.datasets.values import OpenValues

_STOP = set("""a an the of in on at to for from by with and or is are was were be been do does did what which who whom
whose when where how many much this that these those it its their there according based answer briefly keep short""".split())


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in _STOP}


def _stating_piece(text: str, answer: str) -> str:
    """The sentence or line of `text` where `answer` first appears."""
    for piece in re.split(r"(?<=[.!?])\s+|\n", text):
        if answer in piece:
            return piece
    return text


def _check_record(r: dict) -> None:
    validate_record(r, r.get("id", "?"))
    answers = [qa["a"] for qa in r["qa"]]
    assert len(set(answers)) == len(answers), r["id"]
    for qa in r["qa"]:
        assert qa["a"] in r["text"], (r["id"], qa)
        assert qa["a"].lower() not in qa["q"].lower(), (r["id"], qa)


# ------------------------------------------------------------------------------------ realistic

@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [realistic.make_record(11, i) for i in range(600)]


def test_realistic_is_deterministic_by_seed_and_index():
    a = [realistic.make_record(3, i) for i in (0, 7, 123, 99999)]
    assert a == [realistic.make_record(3, i) for i in (0, 7, 123, 99999)]
    assert realistic.generate(5, seed=3) == [realistic.make_record(3, i) for i in range(5)]
    assert [r["text"] for r in realistic.generate(5, seed=4)] != [r["text"] for r in realistic.generate(5, seed=3)]
    assert len({realistic.make_record(3, i)["text"] for i in range(200)}) == 200


def test_realistic_records_are_valid(records):
    for r in records:
        _check_record(r)
        assert realistic.MIN_QUESTIONS <= len(r["qa"]) <= realistic.MAX_QUESTIONS, r["id"]
        assert r["genre"] == f"realistic:{r['kind']}"


def test_every_kind_produces_records():
    assert len(realistic.KINDS) >= 15
    for kind in realistic.ALL_KINDS:
        made = [realistic.make_record(0, i, [kind]) for i in range(12)]
        assert {r["kind"] for r in made} == {kind}
        for r in made:
            _check_record(r)


# ------------------------------------------------------------------------- everyday kinds

def _ordinary(answer: str) -> bool:
    """An answer in ordinary words: no digit, lower-case first letter ("loading bay", "twelve")."""
    return not re.search(r"\d", answer) and answer[:1].islower()


# what counts as "a value of the same type" as an everyday answer: the pool it was drawn from
_SEEN = W.BIRDS + W.WILDLIFE + W.WILDFLOWERS
_EVERYDAY_POOLS = [tuple(W.HOME_SPOTS), W.HOUSEHOLD_THINGS, W.CHORES, W.PETS, W.FREQUENCIES, W.RELATIONS, W.STAFF_ROLES,
                   W.EVENT_ROLES, W.CLUB_ROLES, W.GEAR, W.FOODS, W.PREMISES, W.ENTRANCES, W.HABITATS, _SEEN, W.WEATHER,
                   W.DURATIONS, W.CLOCK_WORDS, W.NUMBER_WORDS,
                   [realistic._bare(c) for fault in realistic._FAULTS for c in fault[2]],
                   [realistic._bare(c) for fault in realistic._FAULTS for c in fault[3]]]


@pytest.fixture(scope="module")
def everyday() -> dict[str, list[dict]]:
    return {k: [realistic.make_record(13, i, [k]) for i in range(150)] for k in realistic.EVERYDAY_KINDS}


def test_everyday_kinds_are_valid_and_mostly_ordinary_words(everyday):
    assert len(realistic.EVERYDAY_KINDS) >= 4 and set(realistic.EVERYDAY_KINDS).isdisjoint(realistic.KINDS)
    for kind, made in everyday.items():
        answers = [qa["a"] for r in made for qa in r["qa"]]
        assert sum(map(_ordinary, answers)) / len(answers) >= 0.6, kind
        words = sorted(len(r["text"].split()) for r in made)
        assert words[len(words) // 20] >= 100 and words[-1] <= 350, (kind, words[0], words[-1])
        for r in made:
            _check_record(r)
            assert realistic.MIN_QUESTIONS <= len(r["qa"]) <= realistic.MAX_QUESTIONS, r["id"]
            assert r["genre"] == f"realistic:{kind}"


def test_everyday_answers_sit_among_values_of_their_type(everyday):
    """Each asked ordinary-word answer shares its document with at least two more of its pool, so
    its type alone does not give it away."""
    for made in everyday.values():
        for r in made:
            for qa in r["qa"]:
                pools = [p for p in _EVERYDAY_POOLS if qa["a"] in p]
                if qa["type"] == "name":
                    continue
                assert pools, (r["id"], qa)
                assert max(sum(realistic.occurs(v, r["text"]) for v in set(p)) for p in pools) >= 3, (r["id"], qa)


def test_everyday_questions_do_not_mirror_the_text(everyday):
    """A looser bound than the default kinds': with several facts of one type per document, a
    question has to name its fact's key ("the Sunday walk", "the tufted ducks"), which the stating
    line names too; the rest of the question is worded apart."""
    overlaps = []
    for r in (r for made in everyday.values() for r in made):
        for qa in r["qa"]:
            q = _content(qa["q"]) - _content(qa["a"])
            if q:
                s = _content(_stating_piece(r["text"], qa["a"])) - _content(qa["a"])
                overlaps.append(len(q & s) / len(q))
    assert statistics.mean(overlaps) < 0.42
    assert sum(o >= 0.8 for o in overlaps) / len(overlaps) < 0.08


def test_everyday_kinds_with_open_values():
    opened = OpenValues(1.0, ["pudding", "lantern", "velvet", "harbour", "thimble"])
    for i in range(40):
        r = realistic.make_record(2, i, list(realistic.EVERYDAY_KINDS), open_values=opened)
        _check_record(r)
        assert r == realistic.make_record(2, i, list(realistic.EVERYDAY_KINDS), open_values=opened)


def test_everyday_kinds_stay_out_of_the_default_stream():
    """Off, the flag leaves the trainer's realistic records exactly those of `KINDS` minus the hold-out;
    on, the everyday kinds join them."""
    from vllm_d2l.training.config import TrainConfig
    from vllm_d2l.training.data import RecordStream

    train = [k for k in realistic.KINDS if k not in realistic.DEFAULT_HOLDOUT_KINDS]
    assert {r["kind"] for r in realistic.generate(200, seed=1)} <= set(realistic.KINDS)
    assert realistic.resolve_kinds() == list(realistic.KINDS)
    assert realistic.resolve_kinds(["field_diary"]) == ["field_diary"]
    off = RecordStream(TrainConfig(stream={"realistic": 1.0}))
    for i in range(60):
        rec = off.record(i)
        assert {k: v for k, v in rec.items() if k not in ("id", "fresh")} == \
            {k: v for k, v in realistic.make_record(off.seed, i, train).items() if k != "id"}
    on = RecordStream(TrainConfig(stream={"realistic": 1.0}, realistic_everyday=True))
    kinds = {on.record(i)["kind"] for i in range(200)}
    assert kinds & set(realistic.EVERYDAY_KINDS) and kinds & set(train)
    assert kinds.isdisjoint(realistic.DEFAULT_HOLDOUT_KINDS)


def test_sums_in_thousands_keep_the_scale_on_the_number():
    """"34,000 pounds" and "£34,000", never "34 pounds,000" (a currency word before the scale)."""
    made = [realistic.make_record(s, i, kinds) for s in range(3) for i in range(150)
            for kinds in (["news"], ["letter"])]
    scaled = [qa["a"] for r in made for qa in r["qa"] if re.search(r"\d,000|million", qa["a"])]
    assert any(re.fullmatch(r"[\d,]+,000 (pounds|euros|dollars)", a) for a in scaled)  # the case that broke
    assert any(re.fullmatch(r"[^\d\s][\d,]+(,000| million)", a) for a in scaled)
    for r in made:
        assert not re.search(r"(pounds|euros|dollars)(,000| million)", r["text"]), r["id"]


def test_holdout_kinds_are_excluded():
    held = realistic.DEFAULT_HOLDOUT_KINDS
    assert len(held) == 3 and set(held) <= set(realistic.KINDS)
    kinds = {r["kind"] for r in realistic.generate(300, seed=0, holdout_kinds=held)}
    assert kinds.isdisjoint(held) and len(kinds) >= len(realistic.KINDS) - 3
    assert {r["kind"] for r in realistic.generate(30, seed=0, kinds=held)} <= set(held)
    with pytest.raises(ValueError, match="unknown kinds"):
        realistic.generate(1, kinds=["haiku"])
    with pytest.raises(ValueError, match="unknown kinds"):
        realistic.make_record(0, 0, ["haiku"])
    with pytest.raises(ValueError, match="no kinds left"):
        realistic.generate(1, kinds=["email"], holdout_kinds=["email"])


def test_questions_do_not_mirror_the_stating_sentence(records):
    overlaps = []
    for r in records:
        for qa in r["qa"]:
            q = _content(qa["q"]) - _content(qa["a"])
            if q:
                s = _content(_stating_piece(r["text"], qa["a"])) - _content(qa["a"])
                overlaps.append(len(q & s) / len(q))
    assert statistics.mean(overlaps) < 0.35
    assert sum(o >= 0.8 for o in overlaps) / len(overlaps) < 0.08


def test_answers_are_mixed_with_distractors_of_their_type(records):
    """A name answer is rarely the only name: at least one other capitalised two-word name is there."""
    with_others = 0
    named = [(r, qa) for r in records for qa in r["qa"] if qa["type"] == "name" and " " in qa["a"]]
    for r, qa in named:
        names = set(re.findall(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b", r["text"])) - {qa["a"]}
        with_others += bool(names)
    assert named and with_others / len(named) > 0.8


def test_lengths_and_variety(records):
    approx_tokens = sorted(len(r["text"]) / 4 for r in records)
    assert 60 <= statistics.median(approx_tokens) <= 260
    assert approx_tokens[int(0.05 * len(approx_tokens))] >= 30 and approx_tokens[-1] <= 500
    assert len({qa["type"] for r in records for qa in r["qa"]}) >= 8
    assert any(q["q"].startswith(("According to", "Based on")) for r in records for q in r["qa"])


def test_realistic_cli_writes_jsonl(tmp_path):
    out = tmp_path / "r.jsonl"
    assert realistic.main(["--n", "4", "--seed", "2", "--out", str(out), "--holdout", "default"]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert got == realistic.generate(4, 2, holdout_kinds=realistic.DEFAULT_HOLDOUT_KINDS)


# ---------------------------------------------------------------------------------------- cloze

class _WordTokenizer:
    """Stand-in for a Hugging Face tokenizer: one token per whitespace-separated word."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


def test_cloze_helpers():
    assert cloze.sentences("Mr. Darcy came. He left! Did she? Yes.") == ["Mr. Darcy came.", "He left!", "Did she?", "Yes."]
    assert cloze.trim("Register in a {VAX}.") == "Register in a {VAX}"
    assert cloze.trim("a destructor (see {gc") == "a destructor"
    assert cloze.clip('down, "to see your room."'.split(), 12) == "down"
    assert cloze.is_prose("The value for the built-in variable is determined when the interpreter starts.")
    assert not cloze.is_prose('if_stmt ::= "if" assignment_expression ":" suite')


def test_cloze_with_pydoc_only():
    made = [cloze.make_record(0, i, sources=["pydoc"]) for i in range(80)]
    assert made == [cloze.make_record(0, i, sources=["pydoc"]) for i in range(80)]
    assert cloze.generate(3, 0, sources=["pydoc"]) == made[:3]
    assert len({r["text"] for r in made}) > 70
    kinds = set()
    for r in made:
        _check_record(r)
        assert r["genre"] == "cloze:pydoc" and r["split"] == "train"
        assert len(r["text"]) / 4 <= cloze.MAX_TOKENS + 1
        kinds |= {qa["type"] for qa in r["qa"]}
    assert sum(len(r["qa"]) >= cloze.MIN_QUESTIONS for r in made) / len(made) > 0.9
    assert {"completion", "cloze", "next"} <= kinds


def test_cloze_respects_a_tokenizer():
    maker = cloze.ClozeMaker(["pydoc"], tokenizer=_WordTokenizer(), min_tokens=40, max_tokens=90)
    for i in range(30):
        words = len(maker.record(1, i)["text"].split())
        assert 40 <= words <= 90


def test_cloze_train_and_heldout_are_disjoint():
    stream = cloze.make_stream(5, split="heldout", sources=["pydoc"])
    held = [stream(i) for i in range(60)]
    train = cloze.generate(60, 5, sources=["pydoc"], split="train")
    assert {r["split"] for r in held} == {"heldout"}
    assert {r["source"] for r in held}.isdisjoint({r["source"] for r in train})
    train_text = "\n\n".join(r["text"] for r in train)
    assert not any(r["text"] in train_text for r in held)
    for r in held:
        _check_record(r)
    with pytest.raises(ValueError, match="split"):
        cloze.ClozeMaker(["pydoc"], split="test")
