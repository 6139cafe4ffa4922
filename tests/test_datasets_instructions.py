"""Free behaviour instructions for distillation: varied, reproducible, and silent about every
held-out family's rule, with the base model's own replies as answers."""
import random
import re

from vllm_d2l.datasets import instructions


def _replies():
    rows = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is fine."} for i in range(6)]
    return rows + [{"prompt": f"What is {i} plus one?", "reply": f"It is {i + 1}.", "short": str(i + 1)} for i in range(4)]


def test_instructions_never_name_a_held_out_rule_and_vary_widely():
    rng = random.Random(0)
    texts = {instructions.instruction(rng)[0] for _ in range(3000)}
    assert len(texts) > 1500
    banned = re.compile(r"lower|small letter|capital|upper|number|step|catch|signature|sailor|\b1\.", re.I)
    assert not [t for t in texts if banned.search(t)]
    assert {instructions.instruction(random.Random(i))[1] for i in range(200)} == set(instructions.KINDS)


def test_instruction_records_keep_the_base_replies_and_depend_on_their_index_only():
    replies = _replies()
    rec = instructions.make_record(3, 7, replies, guidance=2.0)
    assert rec == instructions.make_record(3, 7, replies, guidance=2.0)
    assert rec["text"] != instructions.make_record(3, 8, replies, guidance=2.0)["text"]
    assert rec["distill"] and rec["guidance"] == 2.0 and rec["genre"].startswith("instruction:")
    pool = {r["prompt"]: r["reply"] for r in replies}
    assert len(rec["qa"]) == 4 and all(pool[x["q"]] == x["a"] for x in rec["qa"])
    assert sum(x["q"].startswith("What is") for x in rec["qa"]) == 2  # half of them short questions
