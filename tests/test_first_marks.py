"""The first-marks probe: probabilities of a description's mark at a reply's start, on the tiny model."""
import json

import pytest

from vllm_d2l.evaluation import first_marks
from tiny import build_tiny_hypernet


def test_the_probe_reads_each_marks_first_two_tokens_and_can_zero_the_variants(tiny_model_dir, tmp_path):
    hn = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6, pointer_rank=3,
                             pointer_variants=True)
    runs = {}
    for name, extra in (("as trained", []), ("zeroed", ["--variant-weights", "0"]), ("doubled", ["--variant-weights", "2"])):
        out = tmp_path / f"{name}.json"
        assert first_marks.main([str(hn), "--model", str(tiny_model_dir), "--out", str(out), *extra]) == 0
        runs[name] = json.loads(out.read_text())
    rows = runs["as trained"]["cases"]
    assert [r["mark"] for r in rows] == [m for _, m in first_marks.CASES]
    assert all(0.0 <= r["p_first"] <= 1.0 and len(r["preferred"]) == len(first_marks.PROMPTS) for r in rows)
    assert runs["zeroed"]["variant_weights"] == [0.0, 0.0, 0.0] == runs["as trained"]["variant_weights"]  # an open_ net's are 0
    assert runs["doubled"]["variant_weights"] == [2.0, 2.0, 2.0]
    assert [r["p_first"] for r in runs["zeroed"]["cases"]] == [r["p_first"] for r in rows]
    assert [r["p_first"] for r in runs["doubled"]["cases"]] != [r["p_first"] for r in rows]  # the weights reach the head
    # the copy path's own share of the first token's logit: the head's update, which the variants feed
    assert all(isinstance(r["copy_first"], float) for r in rows)
    assert [r["copy_first"] for r in runs["doubled"]["cases"]] != [r["copy_first"] for r in rows]
    uncopied = build_tiny_hypernet(tiny_model_dir, tmp_path / "uncopied", opened=True, kind="token", key_dim=6)
    assert first_marks.main([str(uncopied), "--model", str(tiny_model_dir), "--out", str(tmp_path / "u.json")]) == 0
    assert all(r["copy_first"] is None for r in json.loads((tmp_path / "u.json").read_text())["cases"])
    plain = build_tiny_hypernet(tiny_model_dir, tmp_path / "plain", opened=True, kind="token", key_dim=6, pointer_rank=3)
    with pytest.raises(SystemExit, match="pointer_variants"):
        first_marks.main([str(plain), "--model", str(tiny_model_dir), "--variant-weights", "0"])
