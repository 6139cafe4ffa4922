"""Task descriptions: every family's rewrite passes its own check, ordinary replies mostly fail
it, and the splits keep held-out families, wordings, parameters and prompts out of training."""
import random

import pytest

from vllm_d2l.datasets.tasks import FAMILIES, HELD_OUT_FAMILIES, SPLITS, draw_task, families, prompts

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
