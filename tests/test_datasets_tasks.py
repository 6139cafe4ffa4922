"""Task descriptions: every family's rewrite passes its own check, ordinary replies mostly fail
it, and the splits keep held-out families, wordings, parameters and prompts out of training."""
import random
import re
import unicodedata

import pytest

from vllm_d2l.datasets.tasks import EXTRA_FAMILIES, FAMILIES, HELD_OUT_FAMILIES, SPLITS, draw_task, families, prompts

REPLIES = [
    "Photosynthesis is how plants turn light into sugar. They take in carbon dioxide and water, and they "
    "release oxygen. It happens in the chloroplasts.",
    "Sure! The water cycle moves water between the sea, the air and the land.",
    "1. Boil water\n2. Add tea",
    "Yes.",
    "It depends on the interest rate, the time, and how often interest is added to the balance.",
]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_rewrite_follows_its_rule_and_plain_replies_mostly_do_not(name):
    rng = random.Random(name)
    plain_pass = 0
    for split in SPLITS:
        for _ in range(10):
            held = name in HELD_OUT_FAMILIES
            task = draw_task(rng, "eval" if held else split, family=name)
            for reply in REPLIES:
                assert task.check(task.comply(reply)), (task.description, reply, task.comply(reply))
                plain_pass += task.check(reply)
            assert task.description and "{" not in task.description
    if name not in ("max_words", "max_sentences", "avoid_word"):  # short replies may comply by chance
        assert plain_pass <= len(REPLIES) * 20 * 0.25, f"{name}: ordinary replies pass the check too often"


def test_splits_keep_evaluation_out_of_training():
    assert set(families("train")) | set(HELD_OUT_FAMILIES) == set(FAMILIES)
    assert not set(families("train")) & set(HELD_OUT_FAMILIES) and set(families("eval", held_out=True)) == set(HELD_OUT_FAMILIES)
    rng = random.Random(0)
    train = [draw_task(rng, "train") for _ in range(2000)]
    evals = [draw_task(rng, "eval", held_out_wording=True) for _ in range(500)]
    assert {t.family for t in train} == set(families("train"))
    assert all(t.wording < len(FAMILIES[t.family].wordings) - 1 for t in train)
    assert all(t.wording == len(FAMILIES[t.family].wordings) - 1 for t in evals)
    seen = {str(sorted(t.params.items())) for t in train if t.params}
    assert not seen & {str(sorted(t.params.items())) for t in evals if t.params}
    assert not set(prompts("train")) & set(prompts("eval")) and len(prompts("eval")) >= 60
    with pytest.raises(ValueError):
        draw_task(rng, "train", family=HELD_OUT_FAMILIES[0])
    with pytest.raises(ValueError):
        draw_task(rng, "train", held_out_wording=True)
    with pytest.raises(ValueError):
        families("test")


def test_open_parameters_are_composed_for_training_and_share_nothing_with_evaluation():
    """With `open_params` half the phrases, words and keys are composed: many more values than the
    pools hold, none an evaluation value or containing one's words, every rewrite still passing its
    check; without it the draws are exactly the pools' (a run's records do not change under it)."""
    import re

    from vllm_d2l.datasets import tasks

    names = ("opening", "signoff", "json", "include_word")
    eval_values = [v for pool in (tasks._PHRASES, tasks._SIGNOFFS, tasks._KEYS, tasks._INCLUDE) for v in pool["eval"]]
    eval_words = {w.lower().strip("!?.,:") for v in eval_values for x in (v if isinstance(v, tuple) else (v,))
                  for w in re.split(r"[ _]", x) if len(w.strip("!?.,:")) >= 4}  # content words
    for name in names:
        rng = random.Random(name)
        drawn = [draw_task(rng, "train", family=name, open_params=True) for _ in range(300)]
        values = [str(t.params) for t in drawn]
        pool_size = len({str(draw_task(random.Random(i), "train", family=name).params) for i in range(300)})
        assert len(set(values)) > 3 * pool_size, name
        train_pool = {v for pool in (tasks._PHRASES, tasks._SIGNOFFS, tasks._KEYS, tasks._INCLUDE) for v in pool["train"]}
        composed = [t for t in drawn if not set(map(lambda v: tuple(v) if isinstance(v, list) else v,
                                                    t.params.values())) & train_pool]
        assert 0.3 * len(drawn) < len(composed) < 0.7 * len(drawn)
        for t in composed:
            text = " ".join(v if isinstance(v, str) else " ".join(v) for v in t.params.values())
            assert not {w.lower().strip("!?.,:") for w in re.split(r"[ _]", text)} & eval_words, (name, text)
        for t in drawn:
            for reply in REPLIES:
                assert t.check(t.comply(reply)), (t.description, reply)
    a = [draw_task(random.Random(i), "train", composed=True) for i in range(50)]
    b = [draw_task(random.Random(i), "train", composed=True, open_params=False) for i in range(50)]
    assert [(t.family, t.description, t.params) for t in a] == [(t.family, t.description, t.params) for t in b]


def test_composed_wordings_are_training_only_and_never_the_held_out_sentence():
    """Composed wordings (a shared frame around a family's core) vary how training states a rule;
    the held-out wording of each family is never among them, and evaluation never composes."""
    from vllm_d2l.datasets.tasks import COMPOSED_SHARE, composed_wordings, make_record

    for name in families("train"):
        texts = composed_wordings(name)
        assert len(set(texts)) == len(texts) >= 40
        assert FAMILIES[name].wordings[-1] not in texts
    assert all(not composed_wordings(name) for name in HELD_OUT_FAMILIES)
    rng = random.Random(3)
    train = [draw_task(rng, "train", composed=True) for _ in range(1000)]
    share = sum(t.wording == -1 for t in train) / len(train)
    assert abs(share - COMPOSED_SHARE) < 0.05
    for t in train:  # the drawn values fill the template, and the rule's checker still applies
        assert "{" not in t.description and t.check(t.comply("Tea is a drink made from leaves. It is hot."))
    held = {FAMILIES[t.family].wordings[-1] for t in train}
    assert not {t.template for t in train if t.template} & held
    assert all(draw_task(rng, "eval", composed=True).wording >= 0 for _ in range(50))
    replies = [{"prompt": f"Tell me about {i}.", "reply": f"{i} is fine."} for i in range(6)]
    assert make_record(0, 5, replies, composed=True) == make_record(0, 5, replies, composed=True)


def test_word_limits_keep_whole_sentences_or_the_short_answer_before_cutting():
    """A word limit keeps the reply's leading sentences that fit, then the question's own short
    answer, and cuts mid-sentence only when neither fits."""
    task = draw_task(random.Random(0), "train", family="max_words")
    reply = "The capital of Germany is Berlin. It is also its largest city, with many museums."
    assert task.__class__(task.family, 0, {"n": 8}).comply(reply) == "The capital of Germany is Berlin."
    assert task.__class__(task.family, 0, {"n": 4}).comply(reply, short="Berlin.") == "Berlin."
    assert task.__class__(task.family, 0, {"n": 3}).comply(reply) == "The capital of."
    one = draw_task(random.Random(0), "train", family="one_word")
    assert one.comply(reply, short="Berlin.") == "Berlin." and one.check("Berlin.")
    assert one.comply(reply, short="Buenos Aires.") != "Buenos Aires."  # not one word: the usual rewrite


def test_records_mix_short_questions_kept_out_of_the_qa_check():
    from vllm_d2l.datasets.short_questions import questions
    from vllm_d2l.datasets.tasks import PROMPTS_PER_RECORD, QUESTIONS_PER_RECORD, make_record
    from vllm_d2l.evaluation.tasks import QA_CHECK

    qs = questions()
    assert len({q["q"] for q in qs}) == len(qs) >= 100
    assert not {q["q"] for q in qs} & {q for q, _ in QA_CHECK}
    assert all(q["short"].endswith(".") and not q["short"][0].islower() for q in qs)
    replies = [{"prompt": f"Tell me about {i}.", "reply": f"Item {i} is fine. It is a thing."} for i in range(6)]
    replies += [{"prompt": q["q"], "reply": f"It is {q['short']}", "short": q["short"]} for q in qs[:6]]
    for index in range(20):
        rec = make_record(1, index, replies)
        asked = [qa["q"] for qa in rec["qa"]]
        assert len(asked) == PROMPTS_PER_RECORD
        assert sum(a in {q["q"] for q in qs} for a in asked) == QUESTIONS_PER_RECORD
    only_open = make_record(1, 0, replies[:6])  # an older pool without questions still makes records
    assert len(only_open["qa"]) == PROMPTS_PER_RECORD


def test_wide_wordings_expand_the_grammar_and_never_hold_the_held_out_sentence():
    """The wide grammar spells every alternative once, keeps the literal "a), b)" of a list, and its
    wordings (imperatives and statements) never include a family's held-out sentence; drawn
    records still format, comply and check."""
    from vllm_d2l.datasets.tasks import STATEMENT_SHARE, expand, wide_wordings

    assert expand("(keep|hold) it (short|) now") == ["keep it short now", "keep it now", "hold it short now",
                                                      "hold it now"]
    assert expand("a list lettered a), b), c)") == ["a list lettered a), b), c)"]
    for name in families("train"):
        imperative, statements = wide_wordings(name)
        assert len(imperative) >= 500 and statements
        assert len(set(imperative)) == len(imperative)
        held = FAMILIES[name].wordings[-1]
        assert held not in imperative and held not in statements
        assert not any("  " in w or "()" in w for w in imperative + statements)
    rng = random.Random(5)
    drawn = [draw_task(rng, "train", composed=True, open_params=True, wide=True) for _ in range(2000)]
    for t in drawn:
        assert "{" not in t.description and t.check(t.comply("Tea is a drink made from leaves. It is hot."))
    statement_share = sum(t.template in wide_wordings(t.family)[1] for t in drawn if t.template) / \
        sum(t.template is not None for t in drawn)
    assert abs(statement_share - STATEMENT_SHARE) < 0.05


# ------------------------------------------------------------------------------------- extra families
# Replies of every shape a rewrite meets: plain sentences, paragraphs, lists, very short ones, and
# ones with the characters the rules are about (quotes, commas, asterisks, angle brackets, symbols).
EXTRA_REPLIES = REPLIES + [
    "Volcanoes form where magma rises through the crust.\n\nSome erupt violently, others ooze lava slowly. "
    "Scientists watch them closely, since an eruption can change the weather for years.",
    "Here are the steps:\n- Mix flour, water and salt\n- Knead the dough\n- Bake it for 40 minutes",
    "a) First point\nb) Second point",
    "42",
    "Paris.",
    "He said \"hello\" and left. The *first* word mattered, and 1,250 people heard it.",
    "Use <b> tags, or > quotes, or | pipes: all fine / all valid.",
    "   Spaces around a reply.   ",
    "The answer is yes!  It is.\n\n\n\nDone.",
]


def _extra_tasks(name: str):
    """Tasks of an extra family from every kind of draw: training pools, open values, evaluation."""
    rng = random.Random(name)
    for _ in range(8):
        yield draw_task(rng, "train", family=name)
        yield draw_task(rng, "train", family=name, composed=True, open_params=True, wide=True)
        yield draw_task(rng, "eval", family=name, held_out_wording=True)


@pytest.mark.parametrize("name", EXTRA_FAMILIES)
def test_extra_rewrites_follow_their_rule_and_keep_replies_that_already_do(name):
    for task in _extra_tasks(name):
        assert task.description and "{" not in task.description
        for reply in EXTRA_REPLIES:
            out = task.comply(reply)
            assert task.check(out), (task.description, reply, out)
            assert task.comply(out) == out.strip(), (task.description, out)  # a complying reply stays as it is
        assert not task.check(REPLIES[0]), (task.description, "an ordinary reply passes")


@pytest.mark.parametrize("name", EXTRA_FAMILIES)
def test_extra_rules_need_a_rewrite_of_most_base_replies(name):
    """The packaged base replies (the training targets' source) mostly fail each extra rule, so its
    targets teach something; and every one of them passes after the rewrite."""
    from vllm_d2l.datasets.tasks import load_replies

    rows = load_replies()
    task = draw_task(random.Random(1), "train", family=name)
    assert sum(task.check(r["reply"]) for r in rows) <= 0.2 * len(rows)
    assert all(task.check(task.comply(r["reply"], r.get("short"))) for r in rows)


def test_extra_rewrites_keep_the_content():
    from vllm_d2l.datasets.tasks import Task

    reply = "Tea is a drink, made from leaves. It is served hot or cold."
    assert Task("quoted", 0, {}).comply(reply) == f'"{reply}"'
    assert Task("tagged", 0, {"tag": "answer"}).comply(reply) == f"<answer>{reply}</answer>"
    assert Task("heading", 0, {"heading": "Summary:"}).comply(reply) == f"Summary:\n{reply}"
    assert Task("line_prefix", 0, {"symbol": ">"}).comply("One.\n\nTwo.") == "> One.\n\n> Two."
    assert Task("no_commas", 0, {}).comply("Yes, 1,000 of them, really.") == "Yes 1000 of them really."
    assert Task("separator", 0, {"sep": "|"}).comply("1. Boil water\n2. Add tea. Stir.") == "Boil water | Add tea. | Stir."
    assert Task("summary_line", 0, {"lead": "In short:"}).comply(reply) == \
        f"{reply}\n\nIn short: Tea is a drink, made from leaves."
    assert Task("bold", 0, {}).comply(reply) == "Tea is a drink, made from **leaves**. It is **served** hot or cold."
    assert Task("quoted", 0, {}).comply('He said "hi".') == "\"He said 'hi'.\""


def test_extra_families_are_drawn_only_when_asked_and_never_in_held_out_form():
    """`extra` adds the new families to training draws; off, nothing draws them. Training never
    sees their held-out wordings (fixed, composed or wide) nor their evaluation values."""
    from vllm_d2l.datasets.tasks import ALL_FAMILIES, EXTRA_FAMILIES, wide_wordings

    assert not set(EXTRA_FAMILIES) & (set(FAMILIES) | set(HELD_OUT_FAMILIES)) and 6 <= len(EXTRA_FAMILIES) <= 8
    assert not set(EXTRA_FAMILIES) & (set(families("train")) | set(families("eval", held_out=True)))
    assert families("train", extra=True) == families("train") + list(EXTRA_FAMILIES)
    assert families("eval", held_out=True, extra=True) == list(HELD_OUT_FAMILIES)
    rng = random.Random(0)
    assert not {draw_task(rng, "train", composed=True, open_params=True, wide=True).family
                for _ in range(2000)} & set(EXTRA_FAMILIES)
    drawn = [draw_task(rng, "train", composed=True, open_params=True, wide=True, extra=True) for _ in range(4000)]
    drawn += [draw_task(rng, "train", extra=True) for _ in range(2000)]
    assert {t.family for t in drawn} == set(families("train")) | set(EXTRA_FAMILIES)
    held = {name: ALL_FAMILIES[name].wordings[-1] for name in EXTRA_FAMILIES}
    for t in drawn:
        if t.family in held:
            assert t.wording < len(ALL_FAMILIES[t.family].wordings) - 1
            assert t.template != held[t.family]
    for name in EXTRA_FAMILIES:
        imperative, statements = wide_wordings(name)
        assert len(imperative) >= 500 and statements and held[name] not in imperative + statements
        assert not any("  " in w or "()" in w for w in imperative + statements)
        train = {str(t.params) for t in drawn if t.family == name}
        evals = {str(draw_task(rng, "eval", family=name, held_out_wording=True).params) for _ in range(200)}
        assert not (train & evals) or train == evals == {"{}"}, name


def _records_digest(make_record) -> str:
    """SHA-256 of flag-off records (seeds 0, 1 and 7; default options, composed wordings, and the
    trainer's composed + open values + wide grammar) over a fixed replies pool."""
    import hashlib
    import json

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad, old and useful. It has parts.\n\n"
                f"- part {i}\n- another part"} for i in range(8)]
    replies += [{"prompt": f"Question {i}?", "reply": f"The answer is answer {i}.", "short": f"Answer {i}."}
                for i in range(6)]
    options = [{}, {"composed": True}, {"composed": True, "open_params": True, "wide": True}]
    text = "\n".join(json.dumps(make_record(seed, i, replies, **kw), sort_keys=True)
                     for seed in (0, 1, 7) for kw in options for i in range(100))
    return hashlib.sha256(text.encode()).hexdigest()


def test_records_without_the_extra_families_are_unchanged():
    """Pinned before the extra families were added: with `extra` off a run's stream and task
    hold-out are byte for byte what they were. Update the digest only for a deliberate change
    (last: a word to include is quoted, from step 4000)."""
    from vllm_d2l.datasets.tasks import make_record

    digest = _records_digest(make_record)
    assert digest == _records_digest(lambda *a, **kw: make_record(*a, **kw, extra=False))
    assert digest == "70a799ef144000c2e7e4ad80cbfb49299fbb9216537ceb5f892dc077992017ce"


def test_near_miss_phrases_start_like_stock_ones_and_end_otherwise():
    """`near_miss` makes some training openings and sign-offs stock phrases with one later word
    changed: they start as a stock phrase does, are none of them, start like no eval value, and
    their rewrites pass the checks; the draws of a run without it do not change."""
    from vllm_d2l.datasets import tasks

    stock = tasks._STOCK_OPENINGS + tasks._STOCK_SIGNOFFS
    pools = set(stock + tasks._PHRASES["train"] + tasks._SIGNOFFS["train"])
    for name in ("opening", "signoff"):
        near = [draw_task(random.Random(i), "train", family=name, open_params=True, near_miss=True) for i in range(400)]
        plain = [draw_task(random.Random(i), "train", family=name, open_params=True) for i in range(400)]
        misses = [t.params["phrase"] for t in near
                  if t.params["phrase"].split()[0] in {s.split()[0] for s in stock} and t.params["phrase"] not in pools]
        assert 0.1 * len(near) < len(misses) < 0.4 * len(near), name
        assert not {m.split()[0].lower().strip("!?.,:") for m in misses} & tasks._FIRST_EVAL_WORDS
        evals = set(tasks._PHRASES["eval"] + tasks._SIGNOFFS["eval"])
        assert not set(misses) & evals
        for t in near:
            assert t.check(t.comply("Tides rise twice a day. The moon pulls them.")), t.params
        assert [t.params for t in plain] == [draw_task(random.Random(i), "train", family=name, open_params=True,
                                                        near_miss=False).params for i in range(400)]


def test_a_word_to_include_is_written_with_the_descriptions_own_tokens(default_model_dir):
    """The rewrite quotes the word as the description does, so the reply repeats the very token ids
    the adapter was written from (capitalised and leading, "pickle" became 'Pick', 'le')."""
    from transformers import AutoTokenizer

    from vllm_d2l.datasets.tasks import INCLUDE_FRAMES, Task

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    rng = random.Random(7)
    drawn = [draw_task(rng, "train", family="include_word", composed=True, open_params=True, wide=True)
             for _ in range(150)]
    drawn += [draw_task(rng, "eval", family="include_word", held_out_wording=True) for _ in range(20)]
    for task in drawn:
        desc = task.description
        start = desc.index(f'"{task.params["word"]}"') + 1
        end = start + len(task.params["word"])
        enc = tok(desc, add_special_tokens=False, return_offsets_mapping=True)
        word_ids = [i for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]) if a < end and b > start]
        for frame in range(len(INCLUDE_FRAMES)):  # wherever `include_frames` puts it
            framed = Task(task.family, task.wording, {**task.params, "frame": frame}, task.template)
            reply = tok(framed.comply(REPLIES[0]), add_special_tokens=False)["input_ids"]
            assert any(reply[k:k + len(word_ids)] == word_ids for k in range(len(reply))), (desc, frame, word_ids)


def test_include_frames_vary_where_the_word_goes_and_change_nothing_else():
    """With `include_frames` the word-to-include records' answers use several frames, before and
    after the reply, each passing the rule; every other field and record is as with it off."""
    from vllm_d2l.datasets.tasks import INCLUDE_FRAMES, Task, make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad and old. It has parts."}
               for i in range(8)]
    kw = {"composed": True, "open_params": True, "wide": True, "extra": True}
    seen, changed = set(), 0
    for i in range(600):
        plain, framed = make_record(3, i, replies, **kw), make_record(3, i, replies, **kw, include_frames=True)
        if plain["genre"] != "task:include_word":
            assert plain == framed
            continue
        frame = framed["params"]["frame"]
        seen.add(frame)
        assert {k: v for k, v in framed["params"].items() if k != "frame"} == plain["params"]
        assert framed["text"] == plain["text"] and [q["q"] for q in framed["qa"]] == [q["q"] for q in plain["qa"]]
        task = Task("include_word", -1, framed["params"])
        assert all(task.check(q["a"]) for q in framed["qa"])
        changed += plain["qa"] != framed["qa"]
    assert seen == set(range(len(INCLUDE_FRAMES))) and changed
    ends = [f for f in INCLUDE_FRAMES if f.startswith("{reply}")]
    assert ends and len(ends) < len(INCLUDE_FRAMES)


def test_pairs_give_odd_records_the_contrasting_rule_on_the_same_values_and_prompts():
    """With `pairs`, even records are as without it; an odd record holds its even neighbour's values
    and prompts under the partner family (`CONTRASTS`), its answers follow that family's rule and
    not the neighbour's, and a family without a partner is repeated as it is."""
    from vllm_d2l.datasets.tasks import ALL_FAMILIES, CONTRASTS, Task, make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad and old. It has parts."}
               for i in range(8)]
    kw = {"composed": True, "open_params": True, "wide": True, "extra": True, "include_frames": True, "labels": True}
    one_way = {"labelled"}  # its partner, the lettered list, keeps the bulleted one as its own
    assert all(CONTRASTS[b] == a for a, b in CONTRASTS.items() if a not in one_way)
    assert set(CONTRASTS) | set(CONTRASTS.values()) <= set(ALL_FAMILIES)
    paired = set()
    for i in range(0, 400, 2):
        first, second = make_record(5, i, replies, pairs=True, **kw), make_record(5, i + 1, replies, pairs=True, **kw)
        assert first == make_record(5, i, replies, **kw)
        assert [q["q"] for q in first["qa"]] == [q["q"] for q in second["qa"]]
        family, partner = first["genre"].split(":")[1], second["genre"].split(":")[1]
        if family not in CONTRASTS:
            assert second["text"] == first["text"] and second["qa"] == first["qa"]
            continue
        assert partner == CONTRASTS[family] and second["text"] != first["text"]
        paired.add(family)
        values = {v for k, v in first["params"].items() if k != "frame"}
        assert values == {v for k, v in second["params"].items() if k != "frame"}
        mine, theirs = Task(partner, -1, second["params"]), Task(family, -1, first["params"])
        assert all(mine.check(q["a"]) for q in second["qa"])
        # avoiding a word the reply lacks changes nothing; a reply in capitals is in title case too
        if family not in ("avoid_word", "include_word", "title_case"):
            assert not all(theirs.check(q["a"]) for q in second["qa"]), (first["text"], second["qa"])
    assert paired == set(CONTRASTS)


def test_free_phrases_follow_no_template_and_name_no_eval_word():
    """`free_phrases` makes some training openings and sign-offs free word sequences: two to four
    words, none of them an eval value's, in many orders; their rewrites pass the checks; the draws
    of a run without it do not change."""
    from vllm_d2l.datasets import tasks

    for name in ("opening", "signoff"):
        free = [draw_task(random.Random(i), "train", family=name, open_params=True, free_phrases=True)
                for i in range(400)]
        plain = [draw_task(random.Random(i), "train", family=name, open_params=True) for i in range(400)]
        shapes = [re.compile(re.escape(t).replace(r"\{W\}", ".+").replace(r"\{w\}", ".+").replace(r"\{N\}", ".+")
                             .replace(r"\{C\}", ".+") + "$") for t in tasks._OPEN_PHRASES + tasks._OPEN_SIGNOFFS]
        pools = set(tasks._PHRASES["train"] + tasks._SIGNOFFS["train"])
        changed = [f.params["phrase"] for f in free
                   if f.params["phrase"] not in pools and not any(r.match(f.params["phrase"]) for r in shapes)]
        assert 0.1 * len(free) < len(changed) < 0.4 * len(free), name
        assert len(set(changed)) > 0.9 * len(changed)
        for phrase in changed:
            words = [w.lower().strip("!?.,:") for w in phrase.split()]
            assert 2 <= len(words) <= 4 and phrase[0].isupper() and not set(words) & tasks._EVAL_WORDS, phrase
        assert len({" ".join(p.split()[1:2]) for p in changed}) > 50  # the second word is no template's
        for t in free:
            assert t.check(t.comply("Tides rise twice a day. The moon pulls them.")), t.params
        assert [t.params for t in plain] == [draw_task(random.Random(i), "train", family=name, open_params=True,
                                                        free_phrases=False).params for i in range(400)]


def test_respell_swaps_verbs_only_where_the_grammar_has_them_and_never_a_value():
    """A base-form verb is swapped first in the description or after a word like "never"; the same
    word as a noun ("each reply", "at the end") and a phrasal verb ("wrap up") stay; adjectives,
    adverbs and third-person forms go anywhere; placeholders, quotes and tags are never touched."""
    from vllm_d2l.datasets.synonyms import respell, table

    t = table()
    rng = random.Random(0)
    assert respell(rng, "Reply in {n} words.", 1.0, t).split()[0].lower() in t["reply"]
    out = respell(rng, "Never use \"end\" at the end of each reply.", 1.0, t)
    assert any(out == f'Never {s} "end" at the end of each reply.' for s in t["use"]), out
    assert respell(rng, "Rule: wrap up every reply with <{tag}>.", 1.0, t) == "Rule: wrap up every reply with <{tag}>."
    out = respell(rng, "The answer ends with a question, always.", 1.0, t)
    assert any(out == f"The answer {s} with a question, {a}." for s in t["ends"] for a in t["always"]), out
    for _ in range(20):
        out = respell(rng, "Start each answer", 1.0, t)
        assert any(out == f"{s[0].upper()}{s[1:]} each answer" for s in t["start"]), out
    assert respell(rng, "Say it \"{phrase}\" and \"Keep\" <b>", 1.0, t).endswith('it "{phrase}" and "Keep" <b>')
    assert respell(rng, "Start each answer", 0.0, t) == "Start each answer"
    for noun in ("answers", "replies", "marks", "stops", "limits"):  # the grammar's plural nouns
        assert noun not in t


def test_synonym_table_is_the_grammars_words_with_wordnet_synonyms():
    """Every entry is a word of the grammar with other words for it (no value, no rare word, none
    the same as the word); rebuilt from WordNet it is the committed table (where WordNet is installed)."""
    from vllm_d2l.datasets import synonyms

    t = synonyms.table()
    used = set(synonyms.vocabulary())
    assert len(t) > 40 and set(t) <= used
    for word, options in t.items():
        assert options and word not in options and not set(options) & synonyms._RARE, word
    if not (synonyms.WORDNET_DIR / "index.verb").is_file():
        pytest.skip("WordNet (Debian wordnet-base) is not installed: the rebuild is not compared")
    assert {w: tuple(s) for w, s in synonyms.build().items()} == t


def test_synonyms_respell_composed_wordings_only_and_keep_the_records_values():
    """With `synonyms` a share of composed descriptions is respelt, the rest of each record (values,
    prompts, targets) is as without it, no description becomes a wording kept for evaluation, and
    with 0 the stream is unchanged."""
    from vllm_d2l.datasets.tasks import load_replies, make_record, reserved_wordings

    replies = load_replies()
    kw = dict(composed=True, open_params=True, wide=True, extra=True, pairs=True)
    plain = [make_record(3, i, replies, **kw) for i in range(200)]
    respelt = [make_record(3, i, replies, synonyms=0.5, **kw) for i in range(200)]
    assert [make_record(3, i, replies, synonyms=0.0, **kw) for i in range(200)] == plain
    changed = 0
    for a, b in zip(plain, respelt):
        assert {k: v for k, v in a.items() if k != "text"} == {k: v for k, v in b.items() if k != "text"}
        changed += a["text"] != b["text"]
        assert b["text"] not in reserved_wordings()
    assert 0.2 * len(plain) < changed < 0.9 * len(plain)


def test_labelled_lists_continue_the_descriptions_labels_and_never_use_digits():
    """The labelled family shows its marker in the description and every target continues it;
    no style is a digit or the lettered family's "a)", no wording says "number" or "steps" (the
    numbered family stays held out), and it is drawn only with `labels`."""
    from vllm_d2l.datasets.tasks import _LABEL_STYLES, LABELLED, Task, label, wide_wordings

    assert label("(i)", 4) == "(iv)" and label("I.", 9) == "IX." and label("[a]", 3) == "[c]"
    assert label("A:", 26) == "Z:" and label("i)", 14) == "xiv)"
    styles = _LABEL_STYLES["train"] + _LABEL_STYLES["eval"]
    assert not set(_LABEL_STYLES["train"]) & set(_LABEL_STYLES["eval"])
    assert "a)" not in styles and not any(c.isdigit() for st in styles for c in st)
    imperative, statements = wide_wordings("labelled")
    for w in LABELLED.wordings + imperative + statements:
        assert not re.search(r"number|step|\d", w.format(l1="", l2="", l3=""), re.IGNORECASE), w
    assert LABELLED.wordings[-1] not in imperative + statements and len(imperative) >= 500
    rng = random.Random(0)
    assert "labelled" not in {draw_task(rng, "train", extra=True, composed=True, wide=True).family for _ in range(3000)}
    drawn = [draw_task(rng, "train", extra=True, labels=True, composed=True, wide=True) for _ in range(3000)]
    drawn = [t for t in drawn if t.family == "labelled"]
    assert len(drawn) > 50 and {t.params["style"] for t in drawn} == set(_LABEL_STYLES["train"])
    for t in drawn[:40]:
        st = t.params["style"]
        assert label(st, 1) in t.description and label(st, 3) in t.description and ".." not in t.description
        for reply in REPLIES + ["One point only."]:
            out = t.comply(reply)
            assert t.check(out), (t.description, out)
            assert out.splitlines()[1].startswith(label(st, 2) + " ")
        assert not t.check(REPLIES[0]) and not t.check(Task("lettered", 0, {}).comply(REPLIES[0]))


def test_context_sets_a_share_of_training_descriptions_among_sentences_and_changes_nothing_else():
    """With `context`, about that share of training records read a persona or a courtesy around
    the same wording; values, prompts and answers are those of the record without it, and the
    held-out records (split "eval") never change."""
    from vllm_d2l.datasets.tasks import _COURTESIES, make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad and old. It has parts."}
               for i in range(8)]
    kw = {"composed": True, "open_params": True, "wide": True, "extra": True, "pairs": True}
    changed, shapes = 0, set()
    for i in range(400):
        plain, framed = make_record(2, i, replies, **kw), make_record(2, i, replies, **kw, context=0.5)
        assert {k: v for k, v in framed.items() if k != "text"} == {k: v for k, v in plain.items() if k != "text"}
        if framed["text"] != plain["text"]:
            changed += 1
            core = plain["text"][0].lower() + plain["text"][1:]
            assert plain["text"] in framed["text"] or framed["text"].endswith(", so " + core), framed["text"]
            shapes.add("so" if ", so " in framed["text"] else "courtesy" if any(
                c in framed["text"] for c in _COURTESIES) else "persona")
    assert 150 <= changed <= 250 and shapes == {"so", "courtesy", "persona"}
    for i in range(50):
        assert make_record(2, i, replies, split="eval", context=1.0) == make_record(2, i, replies, split="eval")


def test_whole_limits_keep_every_word_limit_target_whole_and_leave_other_records_alone():
    """With `whole_limits` a word limit's record draws only replies whose rewrite is whole leading
    sentences or the short answer; without it some targets are sentences cut at the limit; records
    of other families are the same either way, and the flag-off stream is unchanged (pinned above)."""
    from vllm_d2l.datasets.tasks import make_record

    replies = [{"prompt": f"Tell me about topic {i}.",
                "reply": " ".join(["Topic"] + ["word"] * (3 + 2 * i)) + ". It has parts."} for i in range(10)]
    replies += [{"prompt": f"Question {i}?", "reply": f"The answer to that is answer {i}.", "short": f"Answer {i}."}
                for i in range(6)]
    by_prompt = {r["prompt"]: r for r in replies}
    cut = whole = 0
    for index in range(400):
        on = make_record(3, index, replies, whole_limits=True)
        off = make_record(3, index, replies)
        if not on["genre"].endswith(":max_words"):
            assert on == off
            continue
        for qa_on, qa_off in zip(on["qa"], off["qa"]):
            r = by_prompt[qa_on["q"]]
            kept = qa_on["a"] == r.get("short") or r["reply"].startswith(qa_on["a"])  # whole sentences: a prefix
            assert kept and len(qa_on["a"].split()) <= on["params"]["n"], (qa_on, on["params"])
            whole += 1
            r = by_prompt[qa_off["q"]]
            cut += not (qa_off["a"] == r.get("short") or r["reply"].startswith(qa_off["a"]))
    assert whole and cut  # the flag changed targets that were cut


def test_wide_words_spread_values_over_thousands_and_name_no_eval_word():
    """With `wide_words` half the pool's training draws are composed as well, and half the open
    words come from the wide pool: over a few hundred records hundreds of distinct words, none an
    eval pool's; the rewrites still pass their checks; the draws without it are the plain pools'."""
    from vllm_d2l.datasets import tasks

    seen, plain = set(), set()
    for i in range(800):
        with tasks._wide_words(random.Random(-i)):
            t = draw_task(random.Random(i), "train", family="include_word", open_params=True)
        seen.add(t.params["word"])
        assert t.params["word"] not in tasks._EVAL_WORDS
        assert t.check(t.comply("Tides rise twice a day. The moon pulls them.")), t.params
        plain.add(draw_task(random.Random(i), "train", family="include_word", open_params=True).params["word"])
    wide = seen - set(tasks._OPEN_WORDS) - set(tasks._INCLUDE["train"])
    assert 0.25 * 800 < len(wide) < 0.5 * 800  # about 3/8 of the draws: (1/2 + 1/4) composed, half of those wide
    assert plain <= set(tasks._OPEN_WORDS) | set(tasks._INCLUDE["train"])
    with tasks._wide_words(random.Random(1)):
        keys = [draw_task(random.Random(i), "train", family="json", open_params=True).params for i in range(400)]
        tags = [draw_task(random.Random(i), "train", family="tagged", open_params=True, extra=True).params
                for i in range(400)]
    for p in keys:
        k0, k1 = p["keys"]
        assert k0 != k1 and not {k0, k1} & tasks._EVAL_WORDS
    opened = {p["tag"] for p in tags} - set(tasks._TAGS["train"])  # the pool's own tags may be eval keys
    assert len(opened) > 50 and not opened & (tasks._EVAL_WORDS | tasks._EXTRA_EVAL_WORDS)
    assert tasks._WIDE.get() is None  # the switch is scoped to its block


def test_wide_words_change_only_the_values_of_open_draws():
    """`make_record(wide_words=True)` keeps every record's family, wording and prompts, and a pair's
    two records their shared values; records whose values come from the pools alone (the
    hold-out's: no open draws) are the same with it on or off."""
    from vllm_d2l.datasets.tasks import load_replies, make_record

    replies = load_replies()
    changed = 0
    for index in range(200):
        on = make_record(5, index, replies, open_params=True, composed=True, pairs=True, wide_words=True)
        off = make_record(5, index, replies, open_params=True, composed=True, pairs=True)
        assert on["genre"] == off["genre"] and [q["q"] for q in on["qa"]] == [q["q"] for q in off["qa"]]
        changed += on["params"] != off["params"]
        if index % 2:
            even = make_record(5, index - 1, replies, open_params=True, composed=True, pairs=True, wide_words=True)
            shared = set(on["params"]) & set(even["params"]) - {"frame"}
            assert {k: on["params"][k] for k in shared} == {k: even["params"][k] for k in shared}
        assert make_record(5, index, replies, composed=True, wide_words=True) == make_record(5, index, replies,
                                                                                            composed=True)
    assert changed > 5


def test_wide_word_pool_is_dictionary_words_of_one_token_and_of_several(default_model_dir):
    """The committed pool: tens of thousands of lower-case words, none an unwanted one, many of
    them one token of the base model after a space and more of them several (as held-out values
    are); rebuilt from the dictionary it is the same (where the dictionary is installed)."""
    from collections import Counter

    from transformers import AutoTokenizer

    from vllm_d2l.datasets import wide_words as ww

    pool = ww.wide_words()
    assert len(pool) > 40_000 and list(pool) == sorted(set(pool))
    assert all(ww._WORD.fullmatch(w) for w in pool)
    assert not set(pool) & ww._UNWANTED_WORDS and not any(w.startswith(ww._UNWANTED_STEMS) for w in pool)
    tok = AutoTokenizer.from_pretrained(default_model_dir)
    lengths = Counter(len(tok.encode(" " + w, add_special_tokens=False)) > 1 for w in pool[::100])
    assert lengths[False] > 0.15 * sum(lengths.values()) and lengths[True] > 0.5 * sum(lengths.values())
    if not ww.DICTIONARY.is_file():
        pytest.skip("no English dictionary (Debian wamerican): the rebuild is not compared")
    assert ww.build(ww.DICTIONARY.read_text()) == list(pool)


def test_more_questions_join_the_pool_only_when_asked():
    """`task_more_questions`: the replies to the added questions are in the packaged pool, after the
    others, and a pool loaded without the switch is the one before them (so every hold-out and a run
    without it draw as before); none of the questions is one of the QA check's."""
    from vllm_d2l.datasets import short_questions as SQ
    from vllm_d2l.datasets.tasks import load_replies, make_record
    from vllm_d2l.evaluation.tasks import QA_CHECK

    base, more = load_replies(), load_replies(more_questions=True)
    added = {q for q, _ in SQ.more_questions()}
    assert more[:len(base)] == base and {r["prompt"] for r in more[len(base):]} == added
    assert all(r.get("short") and r["reply"].strip() for r in more[len(base):])
    asked = [q["q"] for q in SQ.questions(more=True)]
    assert len(set(asked)) == len(asked) == len(SQ.questions()) + len(added) and len(added) >= 150
    assert not set(asked) & {q for q, _ in QA_CHECK}
    drawn = {x["q"] for i in range(200) for x in make_record(0, i, more)["qa"]}
    assert drawn & added and not {x["q"] for i in range(200) for x in make_record(0, i, base)["qa"]} & added


def test_word_phrases_are_single_words_and_pair_with_a_one_word_reply():
    """With `word_phrases` that share of training openings and sign-offs is one word, never an eval
    pool's, and its rewrite follows the rule; with `pairs` such a record's partner is a one-word
    reply on the same prompts; records of other families are the same as without it."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad. It has parts."} for i in range(8)]
    replies += [{"prompt": f"Question {i}?", "reply": f"The answer is answer {i}.", "short": f"Answer{i}."}
                for i in range(6)]
    single = partners = 0
    for index in range(600):
        on = make_record(5, index, replies, pairs=True, word_phrases=0.5, open_params=True)
        off = make_record(5, index, replies, pairs=True, open_params=True)
        family = on["genre"].split(":")[1]
        if family in ("opening", "signoff") and len(on["params"]["phrase"].split()) == 1:
            single += 1
            assert on["params"]["phrase"].lower().strip("!.,:") not in tasks._EVAL_WORDS
            task = tasks.Task(family, -1, on["params"], "{phrase}")
            assert all(task.check(qa["a"]) for qa in on["qa"]), on
            if index % 2 == 0:
                partner = make_record(5, index + 1, replies, pairs=True, word_phrases=0.5, open_params=True)
                assert partner["genre"] == "task:one_word"
                assert [qa["q"] for qa in partner["qa"]] == [qa["q"] for qa in on["qa"]]
                partners += 1
        elif off["genre"].split(":")[1] not in ("opening", "signoff") and family != "one_word":
            assert on == off
    assert single > 10 and partners > 5


def test_exclamations_swap_a_long_word_into_a_stock_phrase():
    """With `exclamations` that share of training openings and sign-offs is a stock exclamation
    with one later word swapped for a long one, never an eval word and never starting as an eval
    phrase does; the rewrite follows the rule; word phrases and other families are as without it."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad. It has parts."} for i in range(8)]
    stock = {tuple(p.split()) for p in tasks._STOCK_EXCLAMATIONS}
    swapped = 0
    for index in range(600):
        kw = {"pairs": True, "word_phrases": 0.3, "open_params": True}
        on, off = make_record(6, index, replies, exclamations=0.5, **kw), make_record(6, index, replies, **kw)
        family = on["genre"].split(":")[1]
        if on == off:
            continue
        assert family in ("opening", "signoff")
        words = on["params"]["phrase"].split()
        twins = [s for s in stock if len(s) == len(words) and s[0] == words[0]
                 and sum(a != b for a, b in zip(s, words)) == 1]
        assert twins, words
        new = next(w for s in twins for w, old in zip(words, s) if w != old).strip("!?.,:'").lower()
        assert len(new) >= tasks._LONG_LETTERS and new not in tasks._EVAL_WORDS
        assert words[0].lower().strip("!?.,:") not in tasks._FIRST_EVAL_WORDS
        task = tasks.Task(family, -1, on["params"], "{phrase}")
        assert all(task.check(qa["a"]) for qa in on["qa"]), on
        swapped += 1
    assert swapped > 10


def test_known_answers_keep_one_word_targets_to_answers_the_base_model_gave():
    """With `known_answers` a one-word or word-limit record draws only short questions whose base
    reply holds the answer; without it some targets name an answer the reply got wrong; other
    families' records are the same either way. The packaged pool knows Berlin and not Madrid."""
    from vllm_d2l.datasets.tasks import SHORT_TARGETS, knows_answer, load_replies, make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad. It has parts."} for i in range(8)]
    replies += [{"prompt": f"Question {i}?", "reply": f"The answer is {'answer' if i % 2 else 'guess'} {i}.",
                 "short": f"Answer {i}."} for i in range(8)]
    known = {r["prompt"] for r in replies if knows_answer(r)}
    assert len(known) == 8 + 4
    unknown_off = 0
    for index in range(400):
        on = make_record(4, index, replies, known_answers=True)
        off = make_record(4, index, replies)
        if on["genre"].split(":")[1] not in SHORT_TARGETS:
            assert on == off
            continue
        assert all(qa["q"] in known for qa in on["qa"]), on
        unknown_off += sum(qa["q"] not in known for qa in off["qa"])
    assert unknown_off
    pool = {r["prompt"]: r for r in load_replies()}
    assert knows_answer(pool["What is the capital of Germany?"])
    assert not knows_answer(pool["What is the capital of Spain?"])


def test_plain_wordings_share_verbs_and_stay_apart_from_reserved_wordings():
    """Every training family has plain wordings; verbs are shared (one verb names several families);
    none starts like, or shares most words with, a wording kept for evaluation of its family, so
    the held-out "Use bullets for everything you say." and its close neighbours are never drawn."""
    from vllm_d2l.datasets.plain_wordings import near, plain_wordings
    from vllm_d2l.datasets.tasks import ALL_FAMILIES, Task, families, reserved_wordings

    names = families("train", extra=True, labels=True)
    verbs: dict[str, set[str]] = {}
    for name in names:
        wordings = plain_wordings(name)
        assert len(wordings) >= 50, name
        params = ALL_FAMILIES[name].draw(random.Random(0), "train")
        for w in wordings:
            assert not any(near(w, r) for r in reserved_wordings(name)), (name, w)
            verbs.setdefault(w.split()[0], set()).add(name)
            assert "{" not in Task(name, -1, params, w).description, w  # values fill every slot
    assert len(verbs["Finish"]) >= 2 and len(verbs["Use"]) >= 8 and len(verbs["Start"]) >= 3
    bullets = plain_wordings("bullets")
    assert "Use bullets for everything you say." not in bullets
    assert not any(w.startswith("Use bullets") or w == "Use bullet points for everything you say." for w in bullets)
    assert any(w.startswith("Use bullet points") for w in bullets)
    assert not any(w.startswith("Finish with") for w in plain_wordings("signoff"))
    assert near("Use bullet points for everything you say.", "Use bullets for everything you say.")
    assert not near("Stick to bullet points in every reply.", "Use bullets for everything you say.")


def test_plain_share_of_records_is_worded_plainly_with_values_and_prompts_unchanged():
    """With `plain` that share of training descriptions is a plain wording of the record's own
    family, filled with the same values and asked the same prompts; without it, as before."""
    from vllm_d2l.datasets.plain_wordings import plain_wordings
    from vllm_d2l.datasets.tasks import Task, make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad. It has parts."} for i in range(8)]
    plain = 0
    for index in range(300):
        on = make_record(3, index, replies, composed=True, open_params=True, extra=True, plain=0.3)
        off = make_record(3, index, replies, composed=True, open_params=True, extra=True)
        assert (on["genre"], on["params"], on["qa"]) == (off["genre"], off["params"], off["qa"])
        family = on["genre"].split(":")[1]
        filled = {Task(family, -1, on["params"], w).description for w in plain_wordings(family)}
        if on["text"] != off["text"]:
            assert on["text"] in filled, on["text"]
            plain += 1
    assert 60 <= plain <= 120
    assert make_record(3, 7, replies, plain=0.0) == make_record(3, 7, replies)


def test_null_pairs_give_unpartnered_families_a_description_that_asks_nothing():
    """With `null_pairs` the partner of a family without a minimal pair is a description of no
    rule on the same prompts, its targets the replies as they are; every other record, and every
    even one, is the same as without it."""
    from vllm_d2l.datasets.tasks import CONTRASTS, NO_RULE, make_record

    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad. It has parts."} for i in range(8)]
    replies += [{"prompt": f"Question {i}?", "reply": f"The answer is {i}.", "short": f"Answer {i}."} for i in range(6)]
    by_prompt = {r["prompt"]: r["reply"] for r in replies}
    nulls = 0
    for index in range(200):
        on = make_record(6, index, replies, pairs=True, null_pairs=True, composed=True, context=0.3)
        off = make_record(6, index, replies, pairs=True, composed=True, context=0.3)
        lead = make_record(6, index - index % 2, replies, pairs=True, composed=True, context=0.3)
        unpartnered = lead["genre"].split(":")[1] not in CONTRASTS
        if index % 2 and unpartnered:
            nulls += 1
            assert on["genre"] == f"task:{NO_RULE.name}" and on["params"] == {}
            assert [qa["q"] for qa in on["qa"]] == [qa["q"] for qa in lead["qa"]]
            assert all(qa["a"] == by_prompt[qa["q"]] for qa in on["qa"])
            assert not re.search(r"\b(words?|sentences?|capital|bullet|JSON|list)\b", on["text"], re.I), on["text"]
        else:
            assert on == off
    assert nulls > 20


def test_stub_keys_put_a_one_token_word_into_json_records(default_model_dir):
    """With `stub_keys` that share of training JSON records has one key from the stub pool, one
    token between quotes that longer words begin with and never an eval word; the description
    names it, the rewrites use it and follow the rule, and the other records are as without it."""
    from transformers import AutoTokenizer

    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import make_record

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    pool = tasks.stub_words(tok)
    assert len(pool) > 500 and "head" in pool and "text" not in pool  # "text" is an eval key
    assert not set(pool) & tasks._EVAL_WORDS
    assert all(len(tok(f' "{w}"', add_special_tokens=False)["input_ids"]) == 3 for w in pool[:200])
    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is broad. It has parts."} for i in range(8)]
    stubbed = 0
    for index in range(800):
        kw = {"pairs": True, "open_params": True, "wide_words": True}
        on = make_record(3, index, replies, stub_keys=0.5, stub_pool=pool, **kw)
        off = make_record(3, index, replies, **kw)
        if on == off:
            continue
        assert on["genre"] == "task:json" and off["genre"] == "task:json"
        new = [k for k in on["params"]["keys"] if k not in off["params"]["keys"]]
        assert len(new) == 1 and new[0] in pool and f"{new[0]}" in on["text"]
        task = tasks.Task("json", -1, on["params"], "{k0} {k1}")
        assert all(task.check(qa["a"]) and f'"{new[0]}"' in qa["a"] for qa in on["qa"]), on
        stubbed += 1
    assert stubbed > 5
    with pytest.raises(ValueError, match="stub_pool"):
        make_record(3, 0, replies, stub_keys=0.5)


def test_negations_pair_a_rule_with_its_negation_on_the_same_prompts():
    """With `negations` that share of the partners of negatable rules forbids the rule itself, with
    its values, on the same prompts; the targets are the base replies as they are and keep clear of
    the rule; synonyms never respell a negation; other records are as without it."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import NEGATABLE, NEGATED, HELD_OUT_FAMILIES, load_replies, make_record

    assert not set(NEGATABLE) & set(HELD_OUT_FAMILIES)
    replies = load_replies(None, more_questions=True)
    negations = 0
    for index in range(1, 400, 2):
        kw = {"pairs": True, "open_params": True, "composed": True, "wide": True, "extra": True,
              "null_pairs": True, "synonyms": 0.5}
        on = make_record(4, index, replies, negations=0.5, **kw)
        off = make_record(4, index, replies, **kw)
        rule = make_record(4, index - 1, replies, negations=0.5, **kw)
        assert rule == make_record(4, index - 1, replies, **kw)  # the even record is untouched
        if on == off:
            continue
        assert on["genre"] == f"task:{NEGATED.name}" and on["params"]["of"] == rule["genre"].split(":")[1]
        assert on["params"]["of"] in NEGATABLE
        assert {k: v for k, v in on["params"].items() if k != "of"} == rule["params"]
        kept = [q == r for q, r in zip([qa["q"] for qa in on["qa"]], [qa["q"] for qa in rule["qa"]])]
        assert sum(kept) >= len(kept) - 1  # a base reply that breaks the negation makes way for another
        by_prompt = {r["prompt"]: r["reply"] for r in replies}
        assert all(qa["a"] == by_prompt[qa["q"]] for qa in on["qa"])
        task = tasks.Task(NEGATED.name, -1, on["params"], "{of}")
        assert all(task.check(qa["a"]) for qa in on["qa"])
        assert not any(tasks.ALL_FAMILIES[on["params"]["of"]].check(qa["a"], on["params"]) for qa in on["qa"])
        assert re.search(r"\b(not|never|don't|no)\b", on["text"], re.I), on["text"]
        negations += 1
    assert negations > 20
    with pytest.raises(ValueError, match="pairs"):
        make_record(4, 1, replies, negations=0.5)


def test_held_out_negations_are_worded_apart_and_reserved():
    """No training negation (a frame around a core) is a held-out one, every held-out negation is
    reserved and fills with eval values, and its rule's own rewrite breaks it."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import _CORES, _NEGATION_FRAMES, NEGATED, NEGATION_WORDINGS, Task

    trained = {f.format(core=c) for fam in tasks.NEGATABLE for f in _NEGATION_FRAMES for c in _CORES[fam]}
    reserved = tasks.reserved_wordings()
    rng = random.Random(0)
    for family, wordings in NEGATION_WORDINGS.items():
        assert family in tasks.NEGATABLE
        for w in wordings:
            assert w not in trained and w in reserved
            params = {**tasks.ALL_FAMILIES[family].draw(rng, "eval"), "of": family}
            task = Task(NEGATED.name, -1, params, w)
            assert "{" not in task.description
            reply = "The sky is blue because air scatters blue light. It looks brighter at noon."
            assert task.check(reply) and not task.check(tasks.ALL_FAMILIES[family].comply(reply, params))


def test_affirmations_ask_for_the_rule_through_a_not_with_targets_unchanged():
    """With `affirmations` that share of training records of negatable rules is worded through a
    negation (a double negative, or the minimal-pair neighbour forbidden first) while the values,
    prompts and targets stay the rule's; never a reserved wording; other records are as without it."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import NEGATABLE, load_replies, make_record

    replies = load_replies(None, more_questions=True)
    kw = {"pairs": True, "open_params": True, "composed": True, "wide": True, "extra": True,
          "null_pairs": True, "synonyms": 0.5, "negations": 0.3, "plain": 0.25}
    changed, instead = 0, 0
    for index in range(300):
        on = make_record(5, index, replies, affirmations=0.3, **kw)
        off = make_record(5, index, replies, **kw)
        if on == off:
            continue
        family = on["genre"].split(":")[1]
        assert family in NEGATABLE and off["genre"] == on["genre"]
        assert on["params"] == off["params"] and on["qa"] == off["qa"] and on["text"] != off["text"]
        assert re.search(r"\b(not|never|don't|no)\b", on["text"], re.I), on["text"]
        task = tasks.Task(family, -1, on["params"], "x")
        assert all(task.check(qa["a"]) for qa in on["qa"] if qa["a"].strip())
        partner = tasks.CONTRASTS.get(family)
        if partner and any(c.split("{")[0] in on["text"] for c in tasks._CORES[partner]):
            instead += 1
        changed += 1
    assert changed > 15 and instead > 2
    rng = random.Random(1)
    reserved = tasks.reserved_wordings()
    for family in NEGATABLE:
        params = tasks.ALL_FAMILIES[family].draw(rng, "train")
        for _ in range(20):
            task = tasks.affirmed(tasks.Task(family, -1, params, "x"), rng)
            assert task.unfilled not in reserved and "{" not in task.description
    with pytest.raises(ValueError, match="forbidden"):
        tasks.affirmed(tasks.Task("max_words", -1, {"n": 5}, "x"), rng)


def test_word_dropout_leaves_out_one_plain_word_and_keeps_values_and_negations():
    """With `dropout` that share of training descriptions loses exactly one plain word, never a value,
    a word of a negation or the last word; negations and descriptions that ask for nothing are whole;
    values and targets are unchanged."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import NEGATED, NO_RULE, load_replies, make_record

    replies = load_replies(None, more_questions=True)
    kw = {"pairs": True, "open_params": True, "composed": True, "wide": True, "extra": True, "null_pairs": True,
          "negations": 0.3, "affirmations": 0.15}
    dropped = 0
    for index in range(300):
        on = make_record(6, index, replies, dropout=0.5, **kw)
        off = make_record(6, index, replies, **kw)
        if on == off:
            continue
        assert on["genre"] not in (f"task:{NEGATED.name}", f"task:{NO_RULE.name}")
        assert on["params"] == off["params"] and on["qa"] == off["qa"]
        a, b = off["text"].split(), on["text"].split()
        assert len(b) == len(a) - 1 and a[-1] == b[-1], (off["text"], on["text"])
        assert [w for w in a if re.search(r'["{}\d]', w)] == [w for w in b if re.search(r'["{}\d]', w)]
        gone = {re.sub(r"\W", "", w).lower() for w in a} - {re.sub(r"\W", "", w).lower() for w in b}
        assert not gone & tasks._KEEP_WORDS
        dropped += 1
    assert dropped > 30
    task = tasks.Task("bullets", -1, {}, "Use bullet points.")  # too short to lose a word
    assert tasks.dropped_word(task, random.Random(0)) is task
    task = tasks.Task("no_commas", -1, {}, "Do not use any commas at all.")
    assert {tasks.dropped_word(task, random.Random(s)).description for s in range(30)} == {
        "Do not any commas at all.", "Do not use commas at all.", "Do not use any at all."}  # "at": too short


def test_avoid_tidy_keeps_sentence_starts_capitalised_and_line_breaks_and_changes_nothing_else():
    """With `tidy` a word to avoid that opened a sentence or a line leaves the next word capitalised,
    inside a sentence it is only removed, and line breaks stay (without it they became spaces); the
    check passes either way, and records of other rules, and the draws of avoid-word records, are
    those without the switch."""
    from vllm_d2l.datasets.tasks import FAMILIES, load_replies, make_record

    avoid = FAMILIES["avoid_word"]
    reply = "The sky is blue. the sea is too, and the rest.\n\nThe end."
    assert avoid.comply(reply, {"word": "the"}) == "sky is blue. sea is too, and rest. end."
    tidy = avoid.comply(reply, {"word": "the", "tidy": True})
    assert tidy == "Sky is blue. Sea is too, and rest.\n\nEnd." and avoid.check(tidy, {"word": "the"})
    assert avoid.comply("A cat. It is a cat.\n- a dog", {"word": "a", "tidy": True}) == "Cat. It is cat.\n- dog"
    assert avoid.comply("The.", {"word": "the", "tidy": True}) == "."
    replies = load_replies(None, more_questions=True)
    seen = 0
    for index in range(200):
        on = make_record(8, index, replies, avoid_tidy=True, extra=True)
        off = make_record(8, index, replies, extra=True)
        if on["genre"] != "task:avoid_word":
            assert on == off
            continue
        seen += 1
        assert on["text"] == off["text"] and on["params"] == {**off["params"], "tidy": True}
        assert [q["q"] for q in on["qa"]] == [q["q"] for q in off["qa"]]
        squash = lambda t: " ".join(t.lower().split())  # noqa: E731
        assert all(squash(a["a"]) == squash(b["a"]) for a, b in zip(on["qa"], off["qa"]))
    assert seen >= 3


def test_digits_come_where_they_count_nothing_and_leave_the_rest_of_the_record_alone():
    """With `digits` a training record's description gains a sentence with a number about the
    setting (the rest of its text, its values and its targets unchanged), or its opening or sign-off
    has a number in it that every target writes; no fact names what a limit or a list counts, no
    digit is a list label, and evaluation records are those without the switch."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import FAMILIES, load_replies, make_record

    assert not any(re.search(r"word|sentence|line|point|item|step|list|number|label", f, re.I) for f in tasks._FACTS)
    replies = load_replies(None, more_questions=True)
    kw = dict(extra=True, composed=True, open_params=True, free_phrases=True, pairs=True, labels=True)
    facts = phrases = 0
    for index in range(600):
        on = make_record(3, index, replies, digits=0.3, **kw)
        off = make_record(3, index, replies, **kw)
        assert [q["q"] for q in on["qa"]] == [q["q"] for q in off["qa"]]
        if on["params"] != off["params"]:  # an opening or sign-off with a number in it
            phrases += 1
            family = on["genre"].removeprefix("task:")
            assert family in ("opening", "signoff") and re.search(r"\d", on["params"]["phrase"])
            assert all(on["params"]["phrase"] in q["a"] and FAMILIES[family].check(q["a"], on["params"])
                       for q in on["qa"])
            continue
        assert [q["a"] for q in on["qa"]] == [q["a"] for q in off["qa"]]
        if on["text"] != off["text"]:
            facts += 1
            added = on["text"].replace(off["text"], "").strip()
            assert added != on["text"] and re.search(r"\d", added) and added.endswith(".")
            assert any(re.fullmatch(re.sub(r"\\\{\w+\\\}", r"\\d+", re.escape(f)), added) for f in tasks._FACTS), added
    assert facts > 120 and phrases >= 3
    assert all(make_record(3, i, replies, split="eval", digits=0.3, **kw) == make_record(3, i, replies, split="eval", **kw)
               for i in range(40))
    assert re.search(r"\d", tasks._digit_phrase(random.Random(1)))


def test_answer_cuts_end_a_word_limits_short_answer_at_the_answer_and_change_nothing_else():
    """With `answer_cuts` a word limit's short question whose reply has no whole sentence that fits
    is answered with the reply's first line cut just after it names the answer (when that fits the
    limit) instead of the bare answer; every target keeps the limit, and the draws and other rules'
    records are those without the switch."""
    from vllm_d2l.datasets.tasks import FAMILIES, _answers, answer_cut, load_replies, make_record
    from vllm_d2l.evaluation.metrics import contains

    row = {"prompt": "What language is spoken in Mexico?", "short": "Spanish.",
           "reply": "The language spoken in Mexico is Spanish, which is the official language.\n\nMore."}
    assert answer_cut(row) == "The language spoken in Mexico is Spanish."
    assert answer_cut({**row, "reply": "Mexicans speak many languages."}) is None
    assert answer_cut({**row, "reply": 'The word is "Spanish, mostly".'}) is None  # a quote left open
    assert answer_cut({**row, "short": None}) is None
    replies = load_replies(None, more_questions=True)
    kw = dict(extra=True, composed=True, open_params=True, whole_limits=True, known_answers=True)
    cut = 0
    for index in range(2000):
        on, off = make_record(5, index, replies, answer_cuts=True, **kw), make_record(5, index, replies, **kw)
        assert (on["text"], on["params"], [q["q"] for q in on["qa"]]) == (off["text"], off["params"], [q["q"] for q in off["qa"]])
        if on["genre"] != "task:max_words":
            assert on == off
            continue
        assert all(FAMILIES["max_words"].check(q["a"], on["params"]) for q in on["qa"])
        for a, b in zip(on["qa"], off["qa"]):
            if a != b:
                cut += 1
                row = next(r for r in replies if r["prompt"] == a["q"])
                assert b["a"] == row["short"] and a["a"] == answer_cut(row) and row["reply"].startswith(a["a"][:-1])
                assert len(a["a"].split()) > len(b["a"].split())
                assert any(contains(a["a"], x) for x in _answers()[a["q"]].split("|"))
    assert cut >= 5


def test_open_labels_draw_styles_of_their_own_without_digits_and_change_no_other_record():
    """With `open_labels` half the labelled lists' styles are a counter in a wrapping of its own
    ("<I>", "§α", "a -"): never a digit, the lettered family's "a)" or an evaluation style; every
    target continues the description's labels, and records of other rules are unchanged."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import load_replies, make_record

    assert tasks.label("[α]", 3) == "[γ]" and tasks.label("<I>", 4) == "<IV>" and tasks.label("{a}", 2) == "{b}"
    styles = {tasks._open_style(random.Random(s)) for s in range(3000)}
    assert len(styles) > 80 and not styles & {"a)", *tasks._LABEL_STYLES["eval"]}
    assert not any(c.isdigit() for st in styles for c in st)
    replies = load_replies(None, more_questions=True)
    kw = dict(extra=True, composed=True, open_params=True, free_phrases=True, pairs=True, labels=True)
    fixed, opened = set(tasks._LABEL_STYLES["train"]), set()
    for index in range(1200):
        on, off = make_record(2, index, replies, open_labels=True, **kw), make_record(2, index, replies, **kw)
        if on["genre"] != "task:labelled":  # a lettered partner carries its labelled neighbour's values, unused
            assert {**on, "params": {}} == {**off, "params": {}} and ("style" in on["params"] or on == off)
            continue
        style = on["params"]["style"]
        assert [q["q"] for q in on["qa"]] == [q["q"] for q in off["qa"]]
        assert tasks.label(style, 1) in on["text"] and tasks.label(style, 2) in on["text"]
        assert all(tasks.LABELLED.check(q["a"], on["params"]) and q["a"].startswith(tasks.label(style, 1) + " ")
                   for q in on["qa"])
        if style not in fixed:
            opened.add(style)
    assert len(opened) >= 5


def test_shifted_labels_count_from_letters_only_the_description_names():
    """With `shifted_labels` a share of the open styles counts from another Latin letter ("k), l),
    m)"): never from a, i, x, y or z, never a digit; a list stops at "z"; every target continues
    the description's labels; and with the share at 0 every record is the open labels' own."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import load_replies, make_record

    assert tasks.label("k)", 3) == "m)" and tasks.label("[P]", 2) == "[Q]" and tasks._capacity("w)") == 4
    assert tasks._capacity("(I)") == tasks._capacity("§α") == tasks._MAX_LABELLED
    styles = {tasks._open_style(random.Random(s), shifted=True) for s in range(3000)}
    starts = {next(c for c in st if c.isalpha()) for st in styles}
    assert len(starts) == 42 and not starts & set("aAiIxXyYzZ") and not any(c.isdigit() for st in styles for c in st)
    assert tasks.LABELLED.check("w) one\nx) two\ny) three\nz) four", {"style": "w)"})
    assert not tasks.LABELLED.check("w) one\nx) two\ny) three\nz) four\n{) five", {"style": "w)"})
    long = "First. Second. Third. Fourth. Fifth. Sixth. Seventh."
    assert tasks.LABELLED.comply(long, {"style": "v."}).splitlines()[-1].startswith("z. ")
    replies = load_replies(None, more_questions=True)
    kw = dict(extra=True, composed=True, open_params=True, free_phrases=True, pairs=True, labels=True, open_labels=True)
    shifted = 0
    for index in range(1200):
        on, off = make_record(2, index, replies, shifted_labels=0.5, **kw), make_record(2, index, replies, **kw)
        assert make_record(2, index, replies, shifted_labels=0.0, **kw) == off
        if on["genre"] != "task:labelled":  # a lettered partner carries its labelled neighbour's values, unused
            assert {**on, "params": {}} == {**off, "params": {}}
            continue
        style = on["params"]["style"]
        assert tasks.label(style, 1) in on["text"] and tasks.label(style, 2) in on["text"]
        assert all(tasks.LABELLED.check(q["a"], on["params"]) and q["a"].startswith(tasks.label(style, 1) + " ")
                   for q in on["qa"])
        shifted += next(c for c in style if c.isalpha()) in tasks._SHIFT_COUNTERS
    assert shifted >= 5
    with pytest.raises(ValueError, match="open_labels"):
        make_record(2, 0, replies, shifted_labels=0.5)


def test_open_prefixes_mark_lines_with_prefixes_only_the_description_names():
    """With `open_prefixes` a share of the line-prefix records draws a prefix of its own: hundreds
    of them, never a digit, a bullet's mark or an evaluation prefix; the description shows it, every
    target's lines start with it; other families and the share at 0 leave each record as it was."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import load_replies, make_record

    prefixes = {tasks._open_prefix(random.Random(s)) for s in range(3000)}
    assert len(prefixes) > 1000
    assert not any(c.isdigit() or unicodedata.category(c).startswith("N") for p in prefixes for c in p)
    assert not prefixes & {*tasks._PREFIXES["eval"], "-", "*"} and not any(p[0] in "-*" for p in prefixes)
    replies = load_replies(None, more_questions=True)
    kw = dict(extra=True, composed=True, open_params=True, pairs=True)
    opened = 0
    for index in range(80):
        on = make_record(3, index, replies, families=["line_prefix", "bullets"], open_prefixes=0.5, **kw)
        off = make_record(3, index, replies, families=["line_prefix", "bullets"], **kw)
        assert make_record(3, index, replies, families=["line_prefix", "bullets"], open_prefixes=0.0, **kw) == off
        if on["genre"] != "task:line_prefix" or on["params"] == off["params"]:
            assert on == off
            continue
        symbol = on["params"]["symbol"]
        assert symbol not in tasks._pool(tasks._PREFIXES, "train") and symbol in on["text"]
        assert all(tasks.ALL_FAMILIES["line_prefix"].check(q["a"], on["params"]) for q in on["qa"])
        opened += 1
    assert opened >= 10


def test_sequence_labels_mark_lines_with_the_descriptions_marks_in_order():
    """With `sequence_labels` a share of the open styles is four to six different marks in no order,
    all shown in the description: letters (never x, y, z), open words or symbols, never a digit; the
    n-th line of every target starts with the n-th mark and a list stops at the last; with the share
    at 0 every record is the open labels' own."""
    from vllm_d2l.datasets import tasks
    from vllm_d2l.datasets.tasks import load_replies, make_record

    draws = [tasks._sequence_marks(random.Random(s)) for s in range(2000)]
    assert all(4 <= len(m) <= 6 and len(set(m)) == len(m) for m in draws)
    assert len({m[0] for m in draws}) > 500
    assert not set("xyz") & set(tasks._SEQUENCE_LETTERS) and not any(c.isdigit() for m in draws for c in "".join(m))
    p = {"marks": ["k)", "q)", "b)", "m)"]}
    assert tasks.LABELLED.check("k) one\nq) two\nb) three", p)
    assert not tasks.LABELLED.check("k) one\nl) two", p) and not tasks.LABELLED.check("k) a\nq) b\nb) c\nm) d\nn) e", p)
    assert tasks.LABELLED.comply("First. Second. Third. Fourth. Fifth. Sixth.", p).splitlines()[-1].startswith("m) ")
    replies = load_replies(None, more_questions=True)
    kw = dict(extra=True, composed=True, open_params=True, free_phrases=True, pairs=True, labels=True, open_labels=True)
    sequences = 0
    for index in range(150):
        on = make_record(4, index, replies, families=["labelled", "bullets"], sequence_labels=0.5, **kw)
        off = make_record(4, index, replies, families=["labelled", "bullets"], **kw)
        assert make_record(4, index, replies, families=["labelled", "bullets"], sequence_labels=0.0, **kw) == off
        if on["genre"] != "task:labelled" or "marks" not in on["params"]:  # a lettered partner: values unused
            assert {**on, "params": {}} == {**off, "params": {}} or on["genre"] == "task:labelled"
            continue
        marks = on["params"]["marks"]
        assert all(m in on["text"] for m in marks)
        assert all(tasks.LABELLED.check(q["a"], on["params"]) and q["a"].startswith(marks[0] + " ") for q in on["qa"])
        sequences += 1
    assert sequences >= 5
