"""Committing a run: the best snapshot reaches the package's assets through the folder's link, and
the log keeps the history before the run and replaces the line of training the run restarted."""
import json

import pytest

from vllm_d2l.training.publish import merge_rows, publish, read_log, resumed_rows


def _log(path, steps, tag):
    path.write_text("".join(json.dumps({"step": s, "tag": tag}) + "\n" for s in steps))


def test_merge_keeps_history_and_replaces_the_abandoned_line():
    old = [{"step": s, "tag": "old"} for s in (5, 10, 15, 20, 25)]
    new = [{"step": s, "tag": "new"} for s in (15, 20)]  # resumed from the snapshot at 10
    assert [(r["step"], r["tag"]) for r in merge_rows(old, new)] == [
        (5, "old"), (10, "old"), (15, "new"), (20, "new")]
    assert merge_rows(old, []) == old


def test_a_restarted_run_keeps_the_rows_written_after_the_restart():
    """Saved at 10, logged to 20 (an evaluation row at 10 beside the training row), stopped, resumed
    from 10: the rows 15 and 20 written before the stop give way to the new ones."""
    rows = [{"step": 5, "loss": 1}, {"step": 10, "loss": 1}, {"step": 10, "heldout_ce": 1},
            {"step": 15, "loss": 1}, {"step": 20, "loss": 1},
            {"step": 15, "loss": 2}, {"step": 20, "loss": 2}, {"step": 20, "heldout_ce": 2}]
    assert [(r["step"], r.get("loss", r.get("heldout_ce"))) for r in resumed_rows(rows)] == [
        (5, 1), (10, 1), (10, 1), (15, 2), (20, 2), (20, 2)]
    once = [{"step": 20, "loss": 1}, {"step": 20, "loss": 2}]  # resumed at the very step logged last
    assert resumed_rows(once) == [{"step": 20, "loss": 2}]


def test_a_late_evaluation_row_goes_in_at_its_step():
    """A scorer process writes the evaluation of step 10 after the training rows of 15 and 20: it is
    not a restart, so those stay; a restart after it still drops what it wrote past the save."""
    rows = [{"step": 5, "loss": 1}, {"step": 10, "loss": 1}, {"step": 15, "loss": 1},
            {"step": 10, "heldout_ce": 1}, {"step": 20, "loss": 1}, {"step": 20, "heldout_ce": 1}]
    assert [(r["step"], "loss" in r) for r in resumed_rows(rows)] == [
        (5, True), (10, True), (10, False), (15, True), (20, True), (20, False)]
    restarted = rows + [{"step": 15, "loss": 2}, {"step": 20, "loss": 2}, {"step": 20, "heldout_ce": 2}]
    assert [(r["step"], r.get("loss", r.get("heldout_ce"))) for r in resumed_rows(restarted)] == [
        (5, 1), (10, 1), (10, 1), (15, 2), (20, 2), (20, 2)]


def test_publish_copies_the_best_snapshot_through_the_link(tmp_path):
    assets = tmp_path / "assets" / "task_hypernet"
    assets.mkdir(parents=True)
    (assets / "model.safetensors").write_bytes(b"old weights")
    folder = tmp_path / "checkpoints" / "tasks"
    folder.mkdir(parents=True)
    (folder / "hypernet").symlink_to(assets)
    run = tmp_path / "run"
    (run / "best" / "hypernet").mkdir(parents=True)
    (run / "best" / "hypernet" / "model.safetensors").write_bytes(b"new weights")
    (run / "best" / "hypernet" / "config.json").write_text("{}")
    (run / "best" / "state.json").write_text(json.dumps({"step": 20}))
    _log(run / "log.jsonl", (5, 10, 15, 20), "run")

    assert publish(run, folder) == {"rows": 4, "last_step": 20, "snapshot_step": 20}
    assert (assets / "model.safetensors").read_bytes() == b"new weights"  # written through the link
    assert (folder / "hypernet").is_symlink()
    first = (folder / "log.jsonl.gz").read_bytes()

    # a second machine resumes from the snapshot at 20 and has not beaten it: log only
    run2 = tmp_path / "run2"
    run2.mkdir()
    _log(run2 / "log.jsonl", (25, 30), "run2")
    assert publish(run2, folder) == {"rows": 6, "last_step": 30, "snapshot_step": None}
    assert (assets / "model.safetensors").read_bytes() == b"new weights"
    assert [r["tag"] for r in read_log(folder / "log.jsonl.gz")] == ["run"] * 4 + ["run2"] * 2
    assert publish(run2, folder)["rows"] == 6  # idempotent
    assert (folder / "log.jsonl.gz").read_bytes() != first


def test_publish_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="log.jsonl"):
        publish(tmp_path, tmp_path / "checkpoints")
