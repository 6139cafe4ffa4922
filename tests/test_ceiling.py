"""The static-adapter ceiling: trained on a rule's own targets, scored on the QA check."""
import json

import pytest
import torch

from vllm_d2l.evaluation import ceiling
from vllm_d2l.evaluation.tasks import QA_CHECK


def test_layer_range():
    assert ceiling.layer_range("15-17") == [15, 16, 17] and ceiling.layer_range("3") == [3]


def test_rule_targets_follow_the_rule_and_leave_the_qa_check_out(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = ceiling.rule_targets(tok, "upper", {})
    assert data and all(a[-1] == tok.convert_tokens_to_ids("<|im_end|>") for _, a in data)
    text = tok.decode(data[0][1][:-1])
    assert text == text.upper() and any(c.isalpha() for c in text)
    asked = {q for q, _ in QA_CHECK}
    assert not any(q in tok.decode(p) for p, _ in data for q in asked)


def test_the_run_writes_its_result_with_a_generated_adapters_ranks_beside(tiny_model_dir, tmp_path):
    from transformers import AutoConfig

    from vllm_d2l.hypernet import Hypernet, HypernetConfig

    torch.manual_seed(0)
    hypernet = Hypernet(HypernetConfig.for_base_model(AutoConfig.from_pretrained(tiny_model_dir), base_model="tiny",
                                                      dim=32, heads=2, latent_blocks=1)).save(tmp_path / "hn")
    out = tmp_path / "ceiling.json"
    assert ceiling.main(["--family", "upper", "--layers", "0-1", "--rank", "2", "--steps", "2", "--batch", "2",
                         "--model", str(tiny_model_dir), "--out", str(out), "--hypernet", str(hypernet),
                         "--description", "Write in capitals."]) == 0
    result = json.loads(out.read_text())
    assert result["layers"] == "0-1" and len(result["outputs"]) == len(QA_CHECK)
    assert 0.0 <= result["follows"] <= 1.0 and result["training_prompts"] > 0
    ranks = result["answer_ranks"]
    assert set(ranks) == {"bare", "static", "generated"} and len(ranks["generated"]) == len(ranks["bare"])
    assert result["answers_read"] == len(ranks["bare"]) and set(result["answer_first"]) == set(ranks)
    with pytest.raises(SystemExit, match="together"):
        ceiling.main(["--hypernet", "x", "--model", str(tiny_model_dir)])
    with pytest.raises(SystemExit, match="layers"):
        ceiling.main(["--layers", "0-40", "--model", str(tiny_model_dir), "--steps", "0"])


def test_train_static_lowers_the_loss_on_its_targets(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for w in model.parameters():
        w.requires_grad_(False)
    data = ceiling.rule_targets(tok, "upper", {})[:4]
    seen = []
    factors = ceiling.train_static(model, tok, data, ["model.layers.1.mlp.down_proj"], rank=4, steps=30, batch=4,
                                   lr=1e-2, log=lambda line: seen.append(float(line.split("loss ")[1].split()[0])))
    a, b = factors["model.layers.1.mlp.down_proj"]
    assert a.shape[0] == 4 and b.shape[1] == 4 and b.abs().sum() > 0 and not a.requires_grad
    assert seen[-1] < seen[0]


def test_answer_ranks_read_the_answers_first_token_in_the_rewritten_reply(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    replies = [f"I think the answer is {gold.split('|')[0]}, surely." for _, gold in QA_CHECK]
    replies[0] = "I do not know."  # no answer in it: skipped
    rows = ceiling.answer_ranks(model, tok, "upper", {}, replies)
    assert len(rows) == len(QA_CHECK) - 1 and rows[0]["question"] == QA_CHECK[1][0]
    for row in rows:
        assert row["rank"] >= 0 and 0.0 <= row["p"] <= 1.0
        assert row["token"].strip() and row["answer"].upper().startswith(row["token"].strip())
    zero = {"model.layers.1.mlp.down_proj": (torch.zeros(2, 128), torch.zeros(64, 2))}
    same = ceiling.answer_ranks(model, tok, "upper", {}, replies, zero)  # a zero adapter changes nothing
    assert [r["rank"] for r in same] == [r["rank"] for r in rows]
