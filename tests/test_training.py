"""The trainer on the tiny model: losses fall on a memorisable document, and runs resume exactly."""
import json
import math
import random
from pathlib import Path

import pytest
import torch

from vllm_d2l.errors import ModelMismatch
from vllm_d2l.hypernet import Hypernet
from vllm_d2l.training.config import TrainConfig
from vllm_d2l.training.trainer import Trainer, consecutive_passes, group_of


def write_records(path):
    recs = [{"text": f"The vault code of tower {c} is {n}. The keeper of tower {c} is {k}.",
             "qa": [{"q": f"What is the vault code of tower {c}?", "a": n}, {"q": f"Who keeps tower {c}?", "a": k}]}
            for c, n, k in [("Alder", "4471", "Mira"), ("Brook", "9032", "Tobin"), ("Cedar", "1185", "Oska")]]
    path.write_text("\n".join(json.dumps(r) for r in recs))
    return path


def config(tmp_path, model_dir, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    base = dict(out_dir=str(tmp_path / "run"), model_dir=str(model_dir), synthetic_docs=0, heldout_docs=0,
                jsonl=[str(write_records(tmp_path / "train.jsonl"))], hypernet={"dim": 32, "heads": 2, "latent_blocks": 1, "rank": 2},
                steps=6, batch_docs=2, lr=3e-3, warmup=1, log_every=1, save_every=3, eval_every=0, max_chunks=2)
    base.update(kw)
    return TrainConfig(**base)


def growing_replies(tmp_path) -> Path:
    """Six base-model replies of growing length, for the task stream of a tiny run."""
    replies = tmp_path / "replies.jsonl"
    replies.write_text("\n".join(json.dumps({"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is fine, "
                                             + "and more " * i}) for i in range(6)))
    return replies


def test_training_reduces_loss_and_writes_checkpoints(tiny_model_dir, tmp_path):
    cfg = config(tmp_path, tiny_model_dir, steps=30, pretrain_prob=0.3)
    Trainer(cfg).run(progress=False)
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    ce = [r["ce"] for r in log if "ce" in r]
    assert sum(ce[-5:]) / 5 < sum(ce[:5]) / 5
    net = Hypernet.load(tmp_path / "run" / "hypernet")
    assert not net.is_noop()  # training moved the B heads: adapters are no longer no-ops
    assert next(iter(net.state_dict().values())).dtype == torch.float32  # loaded as fp32 from the bf16 file


def test_resume_equals_uninterrupted(tiny_model_dir, tmp_path):
    straight = Trainer(config(tmp_path / "a", tiny_model_dir, steps=6))
    straight.run(progress=False)
    first = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6))
    first.run(progress=False, until=3)
    resumed = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6))
    assert resumed.step == 3
    resumed.run(progress=False)
    for (k, v), (_, w) in zip(straight.net.state_dict().items(), resumed.net.state_dict().items()):
        torch.testing.assert_close(v, w, atol=1e-5, rtol=1e-4, msg=k)


def test_stream_draws_fresh_records_and_resumes(tiny_model_dir, tmp_path):
    """A streamed run never repeats a document, and a step's records depend on its number only."""
    cfg = config(tmp_path, tiny_model_dir, jsonl=[], synthetic_docs=0, stream={"synthetic": 1.0}, steps=2,
                 hypernet={"kind": "token", "key_dim": 4, "bias_rank": 2}, max_chunks=1)
    trainer = Trainer(cfg)
    first = [trainer.stream.record(i) for i in range(8)]
    assert len({r["text"] for r in first}) == 8 and all(r["qa"] for r in first)
    again = Trainer(cfg).stream
    assert [again.record(i)["text"] for i in range(8)] == [r["text"] for r in first]
    trainer.run(progress=False)
    assert trainer.step == 2 and not trainer.teacher_cache and not trainer.lower_cache
    opened = Trainer(config(tmp_path / "open", tiny_model_dir, jsonl=[], synthetic_docs=0, stream={"synthetic": 1.0},
                            open_values=1.0, hypernet={"kind": "token", "key_dim": 4, "bias_rank": 2})).stream
    assert opened.open_values.rate == 1.0 and opened.open_values.words  # the tokenizer's vocabulary
    assert [opened.record(i)["text"] for i in range(8)] != [r["text"] for r in first]
    with pytest.raises(ValueError, match="stream"):
        Trainer(config(tmp_path, tiny_model_dir, stream={"novels": 1.0}))


def test_config_rejects_unknown_fields(tmp_path):
    import pytest
    p = tmp_path / "c.yaml"
    p.write_text("steps: 3\nstepz: 4\n")
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.from_file(p)


def test_config_extends_another_and_overrides_its_fields(tmp_path):
    (tmp_path / "base.yaml").write_text("steps: 3\nlr: 0.001\nout_dir: runs/base\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "branch.yaml").write_text("extends: ../base.yaml\nlr: 0.0005\nout_dir: runs/branch\n")
    cfg = TrainConfig.from_file(tmp_path / "sub" / "branch.yaml")
    assert (cfg.steps, cfg.lr, cfg.out_dir) == (3, 0.0005, "runs/branch")
    (tmp_path / "base.yaml").write_text("extends: sub/branch.yaml\n")
    with pytest.raises(ValueError, match="loops"):
        TrainConfig.from_file(tmp_path / "sub" / "branch.yaml")


def test_every_shipped_training_config_loads():
    """A mistyped field in an example or ablation config fails here, not an hour into a run."""
    root = Path(__file__).parent.parent / "examples"
    paths = sorted(root.glob("*.yaml")) + sorted((root / "ablations").glob("*.yaml"))
    assert len(paths) >= 10
    for path in paths:
        cfg = TrainConfig.from_file(path)
        assert cfg.out_dir.startswith("runs/"), path


def test_teacher_prefix_sharing_matches_plain_forward(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.training.objectives import teacher_topk, teacher_topk_uncached
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Who keeps tower Alder?", "a": "Mira"}, {"q": "What is the code?", "a": "4471 and more"},
          {"q": "Why?", "a": "x"}]
    doc = "The vault code of tower Alder is 4471. The keeper of tower Alder is Mira."
    plain = teacher_topk_uncached(model, tok, doc, qa, 5)
    for bucket in (None, 1, 2):  # one pass, and passes of similar length: the answers come back in order
        for (i1, v1), (i2, v2) in zip(teacher_topk(model, tok, doc, qa, 5, bucket), plain):
            assert torch.equal(i1, i2)
            torch.testing.assert_close(v1, v2, atol=1e-4, rtol=1e-4)


def test_reconstruction_can_read_corpus_passages(tiny_model_dir, tmp_path):
    from vllm_d2l.training.data import load_passages
    cfg = config(tmp_path, tiny_model_dir, steps=2, pretrain_prob=1.0, pretrain_sources=["pydoc"], pretrain_passages=5)
    trainer = Trainer(cfg)
    assert len(trainer.passages) == 5 and all(p["text"].strip() and not p["qa"] for p in trainer.passages)
    trainer.run(progress=False)
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all("rec" in r and "ce" not in r for r in log)  # every example was a reconstruction
    import pytest
    with pytest.raises(ValueError, match="not available"):
        load_passages(config(tmp_path, tiny_model_dir, pretrain_sources=["no-such-corpus"]), trainer.tok)


def test_evaluation_compares_own_and_wrong_document(tiny_model_dir, tmp_path):
    trainer = Trainer(config(tmp_path, tiny_model_dir))
    trainer.heldout = trainer.train_set
    fresh = trainer.evaluate()  # a fresh network is a no-op: whose document it reads cannot matter
    assert fresh["heldout_content_gap_ce"] == 0.0 and fresh["heldout_ce"] == fresh["heldout_wrong_doc_ce"]
    trainer.net.open_(seed=1)
    opened = trainer.evaluate()
    assert opened["heldout_ce"] != opened["heldout_wrong_doc_ce"]
    assert opened["heldout_content_gap_ce"] == opened["heldout_wrong_doc_ce"] - opened["heldout_ce"]


@pytest.mark.parametrize("probe, n", [("open", 4), ("long", 2), ("unseen", 2), ("select", 40)])
def test_probe_holdouts_are_scored_apart(tiny_model_dir, tmp_path, probe, n):
    """Open-valued, long, unseen-relation and hand-written selection records get their own figures
    and leave the overall ones as they were."""
    select = str(Path(__file__).parent.parent / "vllm_d2l" / "datasets" / "handwritten_select.jsonl")
    extra = {"open": {"heldout_open": n}, "long": {"heldout_long": n, "heldout_long_tokens": (300, 500)},
             "unseen": {"heldout_unseen": n, "heldout_unseen_tokens": (200, 400)},
             "select": {"heldout_files": [select]}}[probe]
    with_probe = Trainer(config(tmp_path / "a", tiny_model_dir, heldout_docs=2, **extra))
    assert [r["genre"].split(":")[0] for r in with_probe.heldout].count(probe) == n
    with_probe.net.open_(seed=1)
    plain = Trainer(config(tmp_path / "b", tiny_model_dir, heldout_docs=2))
    plain.net.load_state_dict(with_probe.net.state_dict())
    a, b = with_probe.evaluate(), plain.evaluate()
    assert f"heldout_{probe}_content_gap_ce" in a and f"heldout_{probe}_ce" not in b
    assert a["heldout_ce"] == pytest.approx(b["heldout_ce"]) and a["heldout_content_gap_ce"] == pytest.approx(b["heldout_content_gap_ce"])


def test_selection_documents_can_be_cut_as_the_generator_cuts_them(tiny_model_dir, tmp_path, monkeypatch):
    """`files_as_read`: people's documents are read as serving reads them (a chunk per
    `chunk_tokens`), not cut at random like the generated ones."""
    select = str(Path(__file__).parent.parent / "vllm_d2l" / "datasets" / "handwritten_select.jsonl")
    for flag in (True, False):
        trainer = Trainer(config(tmp_path / str(flag), tiny_model_dir, heldout_docs=2, heldout_files=[select],
                                 files_as_read=flag, max_chunks=4, hypernet={"kind": "token", "key_dim": 4, "chunk_tokens": 64}))
        calls = []
        real = trainer.batch_factors
        monkeypatch.setattr(trainer, "batch_factors", lambda docs, n: calls.append((docs, n)) or real(docs, n))
        files = [r for r in trainer.heldout if r["genre"].startswith("select:")]
        assert all(r["as_read"] is flag for r in files)
        trainer.batch_loss(files[:8], random.Random(0), [False] * 8)
        (docs, n_chunks), = calls
        as_served = [math.ceil(len(d) / 64) for d in docs]
        assert (n_chunks == as_served) is flag


@pytest.mark.parametrize("net", [{"dim": 32, "heads": 2, "latent_blocks": 1, "rank": 2, "center_values": False},
                                 {"dim": 32, "heads": 2, "latent_blocks": 1, "rank": 2, "center_values": True},
                                 {"kind": "token", "key_dim": 16, "bias_rank": 2}],
                         ids=["perceiver", "perceiver-centred", "token"])
def test_trained_adapters_carry_their_own_document(tiny_model_dir, tmp_path, net):
    """Lower loss alone could be answer style, which any adapter teaches; after training, each
    document's questions must be answered clearly better with its own adapter than another's."""
    trainer = Trainer(config(tmp_path, tiny_model_dir, steps=100, lr=3e-3, batch_docs=3, kl_weight=0.0, ce_weight=1.0,
                             hypernet=net))
    trainer.run(progress=False)
    trainer.heldout = trainer.train_set
    assert trainer.evaluate()["heldout_content_gap_ce"] > 0.5


def test_periodic_evaluation_logs_and_plots(tiny_model_dir, tmp_path):
    trainer = Trainer(config(tmp_path, tiny_model_dir, steps=2, eval_every=2))
    trainer.heldout = trainer.train_set
    trainer.run(progress=False)
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("heldout_content_gap_ce" in r for r in log)
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0


def test_best_snapshot_is_kept_and_a_fresh_run_resumes_from_it(tiny_model_dir, tmp_path):
    """The committable snapshot holds the best held-out evaluation; a run on a machine without
    the run folder continues from it at its step, with the same weights."""
    from vllm_d2l.training import checkpoint
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    trainer = Trainer(config(tmp_path / "a", tiny_model_dir, steps=4, eval_every=2, hypernet=net))
    trainer.heldout = trainer.train_set
    trainer.run(progress=False)
    state = json.loads((tmp_path / "a" / "run" / "best" / "state.json").read_text())
    held = [r for r in trainer._log_rows() if "heldout_ce" in r]
    assert len(held) == 2 and state["step"] == min(held, key=trainer.score)["step"]  # lower is better
    assert "heldout_content_gap_ce" in state
    fresh = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6, hypernet=net,
                           resume_from=str(tmp_path / "a" / "run" / "best")))
    assert fresh.step == fresh.warm_from == state["step"]
    assert fresh.lr_at(fresh.step) < fresh.cfg.lr or fresh.cfg.warmup == 1
    snap = Hypernet.load(tmp_path / "a" / "run" / "best" / "hypernet")
    for (k, v), (_, w) in zip(snap.state_dict().items(), fresh.net.state_dict().items()):
        assert torch.equal(v, w), k
    fresh.run(progress=False)
    assert fresh.step == 6
    with pytest.raises(ValueError, match="another hypernetwork config"):
        checkpoint.load_snapshot(tmp_path / "a" / "run" / "best", Trainer(config(tmp_path / "c", tiny_model_dir)).net)
    switched = Trainer(config(tmp_path / "d", tiny_model_dir, steps=6, hypernet={**net, "value_embed": True},
                              resume_from=str(tmp_path / "a" / "run" / "best")))
    assert switched.step == state["step"] and not switched.net.embed_value["down_proj"].any()
    assert all(torch.equal(v, switched.net.state_dict()[k]) for k, v in snap.state_dict().items())
    pooled = Trainer(config(tmp_path / "f", tiny_model_dir, steps=6, hypernet={**net, "pooled_rank": 2},
                            resume_from=str(tmp_path / "a" / "run" / "best")))
    assert pooled.step == state["step"] and not pooled.net.pool_mix["down_proj"].any()
    reading = Trainer(config(tmp_path / "e", tiny_model_dir, hypernet={**net, "chunk_overlap": 16},
                             resume_from=str(tmp_path / "a" / "run" / "best")))  # how it reads: not trained
    assert reading.step == state["step"] and reading.net.config.chunk_overlap == 16


def test_a_fresh_run_keeps_the_committed_snapshot_it_resumed_from_when_it_scores_better(tiny_model_dir, tmp_path):
    """On a machine without the run's folder, the first evaluation becomes the best only if it beats
    the snapshot the run resumed from."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    first = Trainer(config(tmp_path / "a", tiny_model_dir, steps=2, eval_every=2, hypernet=net))
    first.heldout = first.train_set
    first.run(progress=False)
    snap = tmp_path / "a" / "run" / "best"
    state = json.loads((snap / "state.json").read_text())
    for score, kept in ((-100.0, True), (100.0, False)):  # a snapshot no evaluation beats, then one any does
        (snap / "state.json").write_text(json.dumps({**state, "heldout_ce": score}))
        out = tmp_path / f"b{score}"
        fresh = Trainer(config(out, tiny_model_dir, steps=4, eval_every=2, hypernet=net, resume_from=str(snap)))
        fresh.heldout = fresh.train_set
        fresh.run(progress=False)
        assert any("heldout_ce" in r for r in fresh._log_rows())
        assert (out / "run" / "best" / "state.json").is_file() != kept


def test_training_reads_chunks_as_the_generator_does(tiny_model_dir, tmp_path):
    """With `train_overlap`, the adapter training differentiates is the one the generator serves
    for the same chunks: each chunk after the first read behind `chunk_overlap` tokens it does not
    store. Without it, training reads chunks alone and its adapter differs."""
    from vllm_d2l.generator import Generator

    net = {"kind": "token", "key_dim": 4, "bias_rank": 2, "chunk_tokens": 32, "chunk_overlap": 8}
    with pytest.raises(ValueError, match="chunk_overlap"):
        Trainer(config(tmp_path / "z", tiny_model_dir, hypernet={**net, "chunk_overlap": 0}, train_overlap=True))
    trainers = {flag: Trainer(config(tmp_path / str(flag), tiny_model_dir, hypernet=net, train_overlap=flag))
                for flag in (True, False)}
    for t in trainers.values():
        t.net.open_(seed=3)
    ids = list(range(5, 53))  # 48 tokens: three chunks of 16
    generator = Generator(trainers[True].model, trainers[True].tok, trainers[True].net, "tiny", adapter_dtype=torch.float32)
    served = generator.hypernet.emit(generator.document_parts([[ids[:16], ids[16:32], ids[32:]]])[0])
    with torch.no_grad():
        trained = {flag: t.batch_factors([ids], [3]) for flag, t in trainers.items()}
    for path, (a, b) in served.items():
        torch.testing.assert_close(trained[True][path][1][0], b, atol=1e-5, rtol=1e-4)
    assert max((trained[False][p][1][0] - b).abs().max() for p, (_, b) in served.items()) > 1e-4
    perceiver = Trainer(config(tmp_path / "p", tiny_model_dir)).net  # reads every token it is given
    with pytest.raises(ValueError, match="context-only"):
        perceiver.document_factors([(None, torch.ones(1, 4, dtype=torch.bool), torch.zeros(1, 4, dtype=torch.bool))])


def test_best_snapshot_holds_the_weights_its_row_scored(tiny_model_dir, tmp_path):
    """Saves between two evaluations must not overwrite the best snapshot with later weights under
    the earlier row's step."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    trainer = Trainer(config(tmp_path, tiny_model_dir, steps=3, eval_every=2, save_every=1, lr=3e-2, hypernet=net))
    trainer.heldout = trainer.train_set
    weights, save = {}, trainer.save

    def spy():
        weights[trainer.step] = {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}
        save()
    trainer.save = spy
    trainer.run(progress=False)
    state = json.loads((tmp_path / "run" / "best" / "state.json").read_text())
    best = Hypernet.load(tmp_path / "run" / "best" / "hypernet").state_dict()
    assert state["step"] == 2  # the one evaluation; steps 3 and the final save come after it
    for k, v in best.items():
        assert torch.equal(v, weights[state["step"]][k].to(torch.bfloat16).to(v.dtype)), k  # saved in bf16
    assert any(not torch.equal(weights[3][k], weights[state["step"]][k]) for k in best)  # the steps differ


def test_best_snapshot_ignores_scores_from_before_the_hold_out_changed(tiny_model_dir, tmp_path):
    """The best snapshot is compared with the one on disk; after `heldout_since` one from before
    (scored on other records) is replaced, even with a lower score."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    run = tmp_path / "a" / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "state.json").write_text(json.dumps({"step": 1, "heldout_ce": -100.0, "heldout_content_gap_ce": 50.0}))
    trainer = Trainer(config(tmp_path / "a", tiny_model_dir, steps=4, eval_every=2, hypernet=net, heldout_since=2))
    trainer.heldout = trainer.train_set
    trainer.run(progress=False)
    state = json.loads((run / "best" / "state.json").read_text())
    held = [r for r in trainer._log_rows() if "heldout_ce" in r]
    assert state["step"] == min(held, key=trainer.score)["step"] >= 2


def test_best_snapshot_is_kept_when_a_later_evaluation_is_worse_than_it(tiny_model_dir, tmp_path):
    """A snapshot on disk with a better score than any new evaluation stays, whatever the log says."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    run = tmp_path / "a" / "run"
    (run / "best").mkdir(parents=True)
    kept = {"step": 1, "heldout_ce": -100.0, "heldout_content_gap_ce": 50.0}
    (run / "best" / "state.json").write_text(json.dumps(kept))
    trainer = Trainer(config(tmp_path / "a", tiny_model_dir, steps=4, eval_every=2, hypernet=net))
    trainer.heldout = trainer.train_set
    trainer.run(progress=False)
    assert json.loads((run / "best" / "state.json").read_text()) == kept


@pytest.mark.parametrize("head", [False, True])
def test_shared_prefix_and_buckets_equal_one_padded_batch(tiny_model_dir, head):
    """The student runs each document's prompt header once and its questions in length buckets;
    logits and gradients must equal one padded batch with every example's full prompt (with
    `head`, a LoRA on the LM head too: the copy path, added on the answer rows)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.apply import lora_applied
    from vllm_d2l.training.objectives import pad_batch, qa_examples, student_logits, target_logits
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Who keeps tower Alder?", "a": "Mira"}, {"q": "What is the code?", "a": "4471 and more"},
          {"q": "Why?", "a": "because the quick brown fox said so"}, {"q": "Where is Paris?", "a": "France"}]
    examples = qa_examples(tok, qa[:2], 0) + qa_examples(tok, qa[2:], 1) + qa_examples(tok, qa[1:2], 2)
    g = torch.Generator().manual_seed(0)
    factors = {f"model.layers.{l}.mlp.down_proj": (torch.randn(3, 4, 128, generator=g).requires_grad_(),
                                                   torch.randn(3, 64, 4, generator=g).requires_grad_())
               for l in range(2)}
    body = dict(factors)
    if head:  # one A for every document, as the generator's
        factors["lm_head"] = (torch.randn(3, 64, generator=g).requires_grad_(),
                              torch.randn(3, model.config.vocab_size, 3, generator=g).requires_grad_())
    logits, labels, sizes = student_logits(model, tok.pad_token_id, examples, factors, bucket=2)
    ids, attn, target = pad_batch(examples, tok.pad_token_id)
    doc = torch.tensor([e.doc for e in examples])
    with lora_applied(model, {k: (a[doc], b[doc]) for k, (a, b) in body.items()}):
        ref = target_logits(model, ids, attn, target)
        if head:
            a, b = factors["lm_head"]
            hidden = model.model(input_ids=ids, attention_mask=attn).last_hidden_state  # [N, T, H]
            ref = ref + torch.cat([hidden[i][target[i]] @ a.T @ b[d].T for i, d in enumerate(doc.tolist())])
    assert sizes == target.sum(1).tolist()
    assert torch.equal(labels, ids[:, 1:][target[:, :-1]])
    torch.testing.assert_close(logits, ref, atol=1e-4, rtol=1e-4)
    w = torch.randn(ref.shape, generator=g)
    grads = torch.autograd.grad((logits * w).sum(), [t for f in factors.values() for t in f])
    ref_grads = torch.autograd.grad((ref * w).sum(), [t for f in factors.values() for t in f])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_an_a_shared_by_every_document_gives_what_its_copies_give(tiny_model_dir):
    """The fast-weight generator's A is one matrix for every document (an expanded view); the
    student takes it once rather than per pass. Logits and A's gradient must equal those of the
    same A copied out per document."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.training.objectives import qa_examples, student_logits
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Who keeps tower Alder?", "a": "Mira"}, {"q": "What is the code?", "a": "4471 and more"},
          {"q": "Why?", "a": "because"}]
    examples = qa_examples(tok, qa[:2], 0) + qa_examples(tok, qa[2:], 1)
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 128, generator=g, requires_grad=True)
    b = torch.randn(2, 64, 4, generator=g)
    path = "model.layers.1.mlp.down_proj"
    shared = student_logits(model, tok.pad_token_id, examples, {path: (a.expand(2, -1, -1), b)}, bucket=2)[0]
    copied = student_logits(model, tok.pad_token_id, examples, {path: (a.expand(2, -1, -1).clone(), b)}, bucket=2)[0]
    torch.testing.assert_close(shared, copied)
    w = torch.randn(shared.shape, generator=g)
    torch.testing.assert_close(torch.autograd.grad((shared * w).sum(), a)[0],
                               torch.autograd.grad((copied * w).sum(), a)[0], atol=1e-4, rtol=1e-4)


def test_student_from_the_first_adapted_layer_equals_the_whole_model(tiny_model_dir):
    """Given the bare teacher's states below the first adapted layer (`Example.lower`), the student
    runs only the layers from there on: logits and gradients must equal the whole model's, and the
    layers below must not run."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.training.objectives import teacher_topk_and_states, qa_examples, student_logits
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Who keeps tower Alder?", "a": "Mira"}, {"q": "What is the code?", "a": "4471 and more"},
          {"q": "Why?", "a": "because the quick brown fox said so"}, {"q": "Where is Paris?", "a": "France"}]
    _, states = teacher_topk_and_states(model, tok, None, qa, 5, bucket=3, keep_below=1)
    examples = qa_examples(tok, qa[:2], 0) + qa_examples(tok, qa[2:], 1)
    assert [len(s) for s in states] == [len(e.prompt) + len(e.answer) for e in examples]
    g = torch.Generator().manual_seed(0)
    factors = {"model.layers.1.mlp.down_proj": (torch.randn(2, 4, 128, generator=g).requires_grad_(),
                                                torch.randn(2, 64, 4, generator=g).requires_grad_())}
    whole_deltas, upper_deltas = [], []  # the updates' sizes at the answer positions, both ways
    whole = student_logits(model, tok.pad_token_id, examples, factors, bucket=2, deltas=whole_deltas)
    for e, s in zip(examples, states):
        e.lower = s
    calls = []
    hook = model.model.layers[0].register_forward_hook(lambda *a: calls.append(1))
    upper = student_logits(model, tok.pad_token_id, examples, factors, bucket=3, deltas=upper_deltas)
    hook.remove()
    assert not calls and upper[2] == whole[2] and torch.equal(upper[1], whole[1])
    torch.testing.assert_close(upper[0], whole[0], atol=1e-4, rtol=1e-4)
    assert upper_deltas[0].shape == upper[1].shape and upper_deltas[0].min() > 0
    torch.testing.assert_close(upper_deltas[0], whole_deltas[0], atol=1e-3, rtol=1e-4)
    w = torch.randn(whole[0].shape, generator=g)
    params = [t for f in factors.values() for t in f]
    for a, b in zip(torch.autograd.grad((upper[0] * w).sum(), params), torch.autograd.grad((whole[0] * w).sum(), params)):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_answer_weights_make_the_cross_entropy_a_weighted_mean(tiny_model_dir):
    """An example's weight counts each of its answer tokens that many times in the batch's mean;
    weights of one give the plain mean. Common-word answers are the ones the trainer weighs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.training.objectives import batch_loss, qa_examples
    from vllm_d2l.training.trainer import is_common_answer
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Where is the plant sale if it rains?", "a": "loading bay"},
          {"q": "Who runs the lathe?", "a": "Ingrid Sorensen"}]
    zero = {f"model.layers.{l}.mlp.down_proj": (torch.zeros(1, 2, 128), torch.zeros(1, 64, 2)) for l in range(2)}
    each = [batch_loss(model, tok.pad_token_id, [e], zero, 0.0, 1.0)[0].item() for e in qa_examples(tok, qa, 0)]
    sizes = [len(e.answer) for e in qa_examples(tok, qa, 0)]
    examples = qa_examples(tok, qa, 0)
    plain = batch_loss(model, tok.pad_token_id, examples, zero, 0.0, 1.0)[0].item()
    assert plain == pytest.approx((each[0] * sizes[0] + each[1] * sizes[1]) / sum(sizes), rel=1e-5)
    examples[0].weight = 3.0
    weighted = batch_loss(model, tok.pad_token_id, examples, zero, 0.0, 1.0)[0].item()
    assert weighted == pytest.approx((3 * each[0] * sizes[0] + each[1] * sizes[1]) / (3 * sizes[0] + sizes[1]), rel=1e-5)
    assert [is_common_answer(a) for a in ("loading bay", "fish", "Ingrid", "4 mm", "BX-20", " windowsill", "")] == \
        [True, True, False, False, False, True, False]


def test_edits_objective_scores_departures_from_the_base_model_only(tiny_model_dir):
    """With the base model as teacher, cross-entropy covers exactly the answer tokens that are not
    its first choice, and a zero adapter (the base model itself) has no KL on the rest; without the
    base model's top-k the objective refuses to run."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.training.objectives import Example, batch_loss, pad_batch, qa_examples, target_logits, teacher_topk
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Tell me about tides.", "a": "AHOY THERE! Tides rise and fall twice a day."},
          {"q": "What is tea?", "a": "A drink."}]
    examples = qa_examples(tok, qa, 0)
    for e, t in zip(examples, teacher_topk(model, tok, None, qa, 5)):
        e.teacher = t
    # a third target: the base model's own greedy reply, whose tokens are all its first choice
    greedy = model.generate(torch.tensor([examples[1].prompt]), max_new_tokens=6, do_sample=False)[0]
    own = Example(examples[1].prompt, greedy[len(examples[1].prompt):].tolist())
    ids, attn, target = pad_batch([own], tok.pad_token_id)
    with torch.no_grad():
        vals, idx = torch.log_softmax(target_logits(model, ids, attn, target), -1).topk(5, dim=-1)
    own.teacher = (idx, vals)
    examples.append(own)
    zero = {f"model.layers.{l}.mlp.down_proj": (torch.zeros(1, 2, 128), torch.zeros(1, 64, 2)) for l in range(2)}
    loss, stats = batch_loss(model, tok.pad_token_id, examples, zero, kl_weight=1.0, ce_weight=1.0, edits=True)
    labels = torch.cat([torch.tensor(e.answer) for e in examples])
    top1 = torch.cat([e.teacher[0][:, 0] for e in examples])
    edit = labels != top1
    assert 0 < edit.sum() < len(labels) and not edit[-len(own.answer):].any()
    full, _ = batch_loss(model, tok.pad_token_id, examples, zero, kl_weight=0.0, ce_weight=1.0)
    assert stats["edit_share"] == pytest.approx(edit.float().mean().item())
    assert stats["kl"] == pytest.approx(0.0, abs=1e-5)
    off = 1 - torch.cat([e.teacher[1] for e in examples]).exp().sum(-1)  # the base model's own mass off its top-5
    assert stats["off_topk"] == pytest.approx(off[~edit].mean().item(), abs=1e-4)
    tail, tail_stats = batch_loss(model, tok.pad_token_id, examples, zero, 1.0, 1.0, edits=True, kl_tail=True)
    assert tail_stats["kl"] == pytest.approx(0.0, abs=1e-4) and tail.item() == pytest.approx(loss.item(), abs=1e-4)
    assert stats["ce"] > full.item()  # the edits are the tokens the base model finds unlikely
    # the base model itself writes its own first choice at every edit: the margin term loses them all
    margin, m_stats = batch_loss(model, tok.pad_token_id, examples, zero, 1.0, 1.0, edits=True,
                                 edit_margin_weight=0.5)
    assert m_stats["edit_win"] == 0.0 and m_stats["edit_margin"] > math.log1p(math.e)
    assert margin.item() == pytest.approx(loss.item() + 0.5 * m_stats["edit_margin"], rel=1e-5)
    # the base model misses every edit (its first choice is not the target there): a miss rate of 1
    # for each example with edits, None for its own reply, which has none
    misses = []
    batch_loss(model, tok.pad_token_id, examples, zero, 1.0, 1.0, edits=True, edit_misses=misses)
    sizes = [len(e.answer) for e in examples]
    assert misses == [1.0 if own_edits.any() else None for own_edits in edit.split(sizes)] and misses[-1] is None
    with pytest.raises(ValueError, match="top-k for every example"):
        batch_loss(model, tok.pad_token_id, qa_examples(tok, qa, 0), zero, 1.0, 1.0, edits=True)


def test_delta_weight_charges_the_updates_where_the_reply_is_the_base_models_own(tiny_model_dir):
    """The "delta" stat is the mean squared size of the adapter's updates, summed over its modules,
    at the positions whose next token is the teacher's first choice (computed here over one padded
    batch with hooks of our own); the loss grows by exactly `delta_weight` times it, its gradient
    reaches the factors, and without edits the term refuses to run."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.training.objectives import Example, batch_loss, pad_batch, qa_examples, target_logits, teacher_topk
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Tell me about tides.", "a": "AHOY THERE! Tides rise and fall twice a day."},
          {"q": "What is tea?", "a": "A drink."}, {"q": "Why?", "a": "because the quick brown fox said so"}]
    examples = qa_examples(tok, qa[:2], 0) + qa_examples(tok, qa[2:], 1)
    for e, t in zip(examples, teacher_topk(model, tok, None, qa, 5)):
        e.teacher = t
    # and the base model's own greedy reply, every token its first choice: all left to the KL
    greedy = model.generate(torch.tensor([examples[1].prompt]), max_new_tokens=6, do_sample=False)[0]
    own = Example(examples[1].prompt, greedy[len(examples[1].prompt):].tolist(), doc=1)
    ids, attn, target = pad_batch([own], tok.pad_token_id)
    with torch.no_grad():
        vals, idx = torch.log_softmax(target_logits(model, ids, attn, target), -1).topk(5, dim=-1)
    own.teacher = (idx, vals)
    examples.append(own)
    g = torch.Generator().manual_seed(1)
    factors = {f"model.layers.{l}.mlp.down_proj": (torch.randn(2, 4, 128, generator=g).requires_grad_(),
                                                   0.1 * torch.randn(2, 64, 4, generator=g).requires_grad_())
               for l in range(2)}
    plain, _ = batch_loss(model, tok.pad_token_id, examples, factors, 1.0, 1.0, edits=True, bucket=2)
    loss, stats = batch_loss(model, tok.pad_token_id, examples, factors, 1.0, 1.0, edits=True,
                             delta_weight=0.5, bucket=2)
    # the reference: every update over one padded batch, read at the answer positions
    ids, attn, target = pad_batch(examples, tok.pad_token_id)
    doc = torch.tensor([e.doc for e in examples])
    squared = torch.zeros(target.shape)  # [N, T]
    modules = dict(model.named_modules())
    hooks = []
    for name, (a, b) in factors.items():
        def hook(mod, inputs, output, a=a, b=b):
            delta = torch.bmm(torch.bmm(inputs[0], a[doc].transpose(1, 2)), b[doc].transpose(1, 2))  # [N, T, H]
            squared.add_(delta.pow(2).sum(-1))
            return output + delta
        hooks.append(modules[name].register_forward_hook(hook))
    with torch.no_grad():
        model(input_ids=ids, attention_mask=attn)
    for h in hooks:
        h.remove()
    labels = ids[:, 1:][target[:, :-1]]
    first = torch.cat([e.teacher[0][:, 0] for e in examples])
    kept = labels != first
    assert 0 < (~kept).sum() < len(labels)  # some edits, some tokens left to the KL
    expected = squared[target][~kept].mean().item()
    assert stats["delta"] == pytest.approx(expected, rel=1e-4)
    assert loss.item() == pytest.approx(plain.item() + 0.5 * expected, rel=1e-5)
    grads = torch.autograd.grad(loss - plain, [b for _, b in factors.values()])
    assert all(gr.abs().sum() > 0 for gr in grads)
    with pytest.raises(ValueError, match="edits objective"):
        batch_loss(model, tok.pad_token_id, examples, factors, 1.0, 1.0, delta_weight=0.5)


def test_topk_kl_with_its_tail_bucket_sees_mass_moved_off_the_teachers_tokens():
    """Over the whole vocabulary both forms are the exact KL. Over the teacher's top-k, a student
    that keeps the teacher's proportions there but moves mass to another token costs nothing
    renormalised, and costs exactly the two-bucket KL with the tail."""
    from vllm_d2l.training.objectives import topk_kl
    torch.manual_seed(0)
    t = torch.log_softmax(torch.randn(3, 10), -1)
    s = torch.log_softmax(torch.randn(3, 10), -1)
    exact = (t.exp() * (t - s)).sum(-1).mean()
    assert topk_kl(t, s, tail=True) == pytest.approx(exact.item(), abs=1e-4)
    assert topk_kl(t, s, tail=False) == pytest.approx(exact.item(), abs=1e-5)
    t_top, idx = t.topk(4, dim=-1)
    moved = t.clone()  # the same top-4 proportions, but a third of their mass on one other token
    moved.scatter_(1, idx, t_top + math.log(2 / 3))
    rest = torch.ones_like(t, dtype=torch.bool).scatter_(1, idx, False)
    tail_t = t.exp()[rest].view(3, 6).sum(-1)
    s_top = moved.gather(1, idx)
    assert topk_kl(t_top, s_top, tail=False) == pytest.approx(0.0, abs=1e-6)
    p_top = t_top.exp().sum(-1)
    q_tail = 1 - s_top.exp().sum(-1)
    two_bucket = (p_top * math.log(3 / 2) + tail_t * (tail_t.log() - q_tail.log())).mean()
    assert topk_kl(t_top, s_top, tail=True) == pytest.approx(two_bucket.item(), rel=1e-4)
    assert two_bucket > 0.05


def test_pair_margin_scores_the_first_token_where_two_rules_part():
    """Examples sharing a prompt under different documents are compared at the first token their
    answers differ, both ways; same-document, other-prompt and identical answers are left out. The
    loss is softplus(log p(other) - log p(own) + margin) there, and falls as the own token gains."""
    from vllm_d2l.training.objectives import Example, divergences, pair_margin_loss, pair_places
    ex = [Example([1, 2], [5, 6, 7, 0], doc=0),   # "avoid": the reply as the base model starts it
          Example([1, 2], [5, 9, 7, 0], doc=1),   # "include": parts at token 1
          Example([1, 2], [5, 6, 7, 0], doc=2),   # same answer as 0: no parting token
          Example([1, 2], [8, 8, 0], doc=0),      # same document as 0
          Example([3], [9, 0], doc=1)]            # another prompt
    assert sorted(divergences(ex)) == [(0, 1, 1), (1, 0, 1), (1, 2, 1), (1, 3, 0), (2, 1, 1), (2, 3, 0),
                                      (3, 1, 0), (3, 2, 0)]
    sizes = [len(e.answer) for e in ex]
    rows, other = pair_places(ex, sizes)
    own = torch.cat([torch.tensor(e.answer) for e in ex])[rows]  # a row's own token is its label
    assert (rows[0].item(), own[0].item(), other[0].item()) == (1, 6, 9)  # example 0 at its token 1
    logp = torch.log_softmax(torch.zeros(sum(sizes), 10), -1).requires_grad_(True)  # every token equally likely
    loss, win = pair_margin_loss(logp[rows, own], logp[rows, other], margin=1.0)
    assert loss.item() == pytest.approx(math.log1p(math.e), rel=1e-5) and win == 0.0
    loss.backward()
    assert logp.grad[1, 6] < 0 and logp.grad[1, 9] > 0  # raise its own 6, lower the other rule's 9
    assert pair_places(ex[4:], sizes[4:]) is None


def test_reading_log_probabilities_at_places_equals_log_softmax_and_its_gradient():
    """`read_logprobs` reads several sets of (row, token) places in one indexing: the values and
    the logits' gradient must be those of log_softmax read place by place."""
    from vllm_d2l.training.objectives import read_logprobs
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(7, 50, generator=g, requires_grad=True)
    places = [(torch.arange(7), torch.randint(50, (7,), generator=g)),
              (torch.tensor([1, 4, 5]), torch.randint(50, (3, 4), generator=g)),
              (torch.tensor([2, 2]), torch.tensor([0, 49]))]
    got = read_logprobs(logits, places)
    lp = torch.log_softmax(logits, -1)
    want = [lp[r, t] if t.dim() == 1 else lp[r[:, None], t] for r, t in places]
    for a, b in zip(got, want):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b)
    w = [torch.randn(t.shape, generator=g) for _, t in places]
    grad = torch.autograd.grad(sum((a * x).sum() for a, x in zip(got, w)), logits)[0]
    ref = torch.autograd.grad(sum((b * x).sum() for b, x in zip(want, w)), logits)[0]
    torch.testing.assert_close(grad, ref)


def test_edit_margin_asks_the_target_to_beat_the_base_models_first_choice():
    """softplus(log p(first) - log p(target) + margin) at each edit: log(1 + e) where the two tie,
    near zero where the target leads by far more than the margin, and its gradient raises the
    target against that one competitor only."""
    from vllm_d2l.training.objectives import edit_margin_loss
    logits = torch.zeros(3, 8)
    logits[2, 4] = 20.0  # the third edit's target already leads by 20 nats
    labels, first = torch.tensor([1, 2, 4]), torch.tensor([0, 0, 0])
    logp = torch.log_softmax(logits, -1).requires_grad_(True)
    rows = torch.arange(3)
    loss, win = edit_margin_loss(logp[rows, labels], logp[rows, first], margin=1.0)
    assert loss.item() == pytest.approx(2 * math.log1p(math.e) / 3, rel=1e-4) and win == pytest.approx(1 / 3)
    loss.backward()
    assert logp.grad[0, 1] < 0 and logp.grad[0, 0] > 0 and logp.grad[0, 5] == 0
    assert abs(logp.grad[2]).max() < 1e-6


def test_resumed_run_takes_its_rates_from_the_config(tiny_model_dir, tmp_path):
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    Trainer(config(tmp_path, tiny_model_dir, steps=3, hypernet=net, value_lr_mult=1.0)).run(progress=False)
    resumed = Trainer(config(tmp_path, tiny_model_dir, steps=3, hypernet=net, value_lr_mult=0.25, bias_lr_mult=2.0))
    assert resumed.step == 3
    assert {g["name"]: g["lr_mult"] for g in resumed.opt.param_groups} == {"decay": 1.0, "value": 0.25, "bias": 2.0}
    grown = Trainer(config(tmp_path, tiny_model_dir, steps=3, hypernet={**net, "value_embed": True},
                           value_lr_mult=0.25, embed_value_lr_mult=3.0))  # E's own rate, when given
    assert {g["name"]: g["lr_mult"] for g in grown.opt.param_groups}["embed_value"] == 3.0


@pytest.mark.parametrize("part, group, zero", [({"own_write_keys": True}, ("doc_key",), "doc_key"),
                                               ({"value_embed": True}, ("embed_value",), "embed_value"),
                                               ({"pooled_rank": 2, "pooled_basis": 3}, ("pooled",), "pool_mix"),
                                               ({"pointer_rank": 2}, ("pointer", "pointer_gain"), "pointer_gain")])
def test_a_branch_adds_parts_and_keeps_the_parents_optimizer_step_and_data(tiny_model_dir, tmp_path, part, group, zero):
    """A branch continues another run's checkpoint with a part switched on that starts as a no-op
    (`zero`, the tensor that starts at zero): the parent's weights, optimizer state and step carry
    over, the new part gets its own fresh group, and at its first step it computes exactly what the
    parent computes on the same data."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2, "memory_read": "ridge", "write_gate": True}
    parent = Trainer(config(tmp_path / "p", tiny_model_dir, steps=6, hypernet=net))
    parent.run(progress=False, until=3)
    parent_ckpt = tmp_path / "p" / "run" / "checkpoint"
    branch = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6, branch_from=str(parent_ckpt),
                            hypernet={**net, **part}))
    assert branch.step == 3 and tuple(g["name"] for g in branch.opt.param_groups)[-len(group):] == group
    old = dict(parent.net.named_parameters())
    started_at_zero = lambda net: getattr(net, zero)["down_proj"] if zero != "pointer_gain" else net.pointer_gain  # noqa: E731
    for name, p in branch.net.named_parameters():
        if name not in old:
            assert group_of(name, p) in group and p not in branch.opt.state  # no optimizer state yet
            assert name.split(".")[0] != zero or not p.any()
        else:
            torch.testing.assert_close(p, old[name])
            for key, val in parent.opt.state[old[name]].items():
                torch.testing.assert_close(branch.opt.state[p][key], val)
    assert branch.train_step()["ce"] == pytest.approx(parent.train_step()["ce"], rel=1e-5)
    assert started_at_zero(branch.net).any()  # and from then on the new part learns
    parent.save()  # a run resumed with the part switched on in its own config grows the same way
    grown = Trainer(config(tmp_path / "p", tiny_model_dir, steps=6, hypernet={**net, **part}))
    assert grown.step == 4 and tuple(g["name"] for g in grown.opt.param_groups)[-len(group):] == group
    assert not started_at_zero(grown.net).any()
    branch.save()
    with pytest.raises(ModelMismatch, match="unexpected"):  # a branch may add parts, never drop them
        Trainer(config(tmp_path / "c", tiny_model_dir, steps=6, branch_from=str(tmp_path / "b" / "run" / "checkpoint"),
                       hypernet={switch: type(value)() for switch, value in list(part.items())[:1]}))


@pytest.mark.parametrize("switch, rates, lr_mult, new", [
    ("pointer_embed", {"pointer_embed_lr_mult": 4.0}, 4.0, ("pointer_key_own", "pointer_key_embed")),
    ("pointer_variants", {}, 30.0, ("pointer_variant_gain",)),
    ("pointer_ahead", {"pointer_embed_lr_mult": 4.0}, 4.0, ("pointer_key_ahead",))])
def test_a_branch_switches_a_copy_path_part_on_over_a_trained_copy_path(tiny_model_dir, tmp_path, switch, rates,
                                                                           lr_mult, new):
    """`pointer_embed` (the keys' own maps), `pointer_variants` (the spelling variants' weights) or
    `pointer_ahead` (the keys' map of the state ahead) over a run that has the copy path: the new part starts at zero in a group of its own after the
    saved ones, at its rate, the first step computes what the parent's does, and from then on the
    part learns (the variants' weights are logged each step; the trainer binds the tokenizer)."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2, "memory_read": "ridge", "write_gate": True, "pointer_rank": 2}
    parent = Trainer(config(tmp_path / "p", tiny_model_dir, steps=6, hypernet=net, pointer_gain_lr_mult=30.0))
    parent.run(progress=False, until=3)
    branch = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6, hypernet={**net, switch: True},
                            branch_from=str(tmp_path / "p" / "run" / "checkpoint"), pointer_gain_lr_mult=30.0, **rates))
    assert branch.step == 3 and branch.opt.param_groups[-1]["name"] == switch
    assert branch.opt.param_groups[-1]["lr_mult"] == lr_mult
    assert not any(getattr(branch.net, n).any() for n in new)
    row = branch.train_step()
    assert row["ce"] == pytest.approx(parent.train_step()["ce"], rel=1e-5)
    assert all(getattr(branch.net, n).any() for n in new)
    if switch == "pointer_variants":
        assert branch.net.variants_bound
        assert [row[f"variant_{k}"] for k in ("unspaced", "spaced", "unpunctuated")] == branch.net.pointer_variant_gain.tolist()


def test_a_branch_to_the_whitened_read_puts_its_new_groups_after_the_saved_ones(tiny_model_dir, tmp_path):
    """The whitening strengths and the write gate sit ahead of the value map and the always-on block
    in the network, so their groups would come first by order of appearance: a branch of a plain-sum
    run that switches them on keeps the parent's groups (and their optimizer state) in front, the
    new ones after, and resumes from its own checkpoint in that order."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    parent = Trainer(config(tmp_path / "p", tiny_model_dir, steps=6, hypernet=net))
    parent.run(progress=False, until=3)
    saved = [g["name"] for g in parent.opt.param_groups]
    whitened = {**net, "memory_read": "ridge", "write_gate": True}
    branch = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6, hypernet=whitened,
                            branch_from=str(tmp_path / "p" / "run" / "checkpoint")))
    names = [g["name"] for g in branch.opt.param_groups]
    assert branch.step == 3 and names[:len(saved)] == saved and set(names[len(saved):]) == {"ridge", "write"}
    old = dict(parent.net.named_parameters())
    for name, p in branch.net.named_parameters():
        if name in old:
            for key, val in parent.opt.state[old[name]].items():
                torch.testing.assert_close(branch.opt.state[p][key], val)
    branch.run(progress=False, until=4)
    resumed = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6, hypernet=whitened))
    assert resumed.step == 4 and [g["name"] for g in resumed.opt.param_groups] == names


def test_a_grown_checkpoint_resumes_with_its_optimizer_state(tiny_model_dir, tmp_path):
    """A checkpoint grown to more key dimensions resumes at its step; every tensor that kept its
    shape keeps its optimizer state, the grown ones start afresh, and training goes on."""
    from vllm_d2l.training.grow import grow_checkpoint
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2, "memory_read": "ridge", "write_gate": True,
           "own_write_keys": True}
    parent = Trainer(config(tmp_path / "p", tiny_model_dir, steps=6, hypernet=net))
    parent.run(progress=False, until=3)
    grow_checkpoint(tmp_path / "p" / "run" / "checkpoint", tmp_path / "w" / "run" / "checkpoint", extra=3)
    wide = Trainer(config(tmp_path / "w", tiny_model_dir, steps=6, hypernet={**net, "key_dim": 7}))
    assert wide.step == 3
    old = dict(parent.net.named_parameters())
    for name, p in wide.net.named_parameters():
        if name.startswith(("key.", "doc_key.")):
            assert p.shape[1] == 7 and p not in wide.opt.state
        elif name not in ("gain", "ridge"):  # those two are rescaled for the new key width
            torch.testing.assert_close(p, old[name])
            torch.testing.assert_close(wide.opt.state[p]["exp_avg"], parent.opt.state[old[name]]["exp_avg"])
    wide.run(progress=False)
    assert wide.step == 6 and wide.net.key["down_proj"].shape[1] == 7


def test_a_checkpoint_grown_by_layers_keeps_every_trained_moment(tiny_model_dir, tmp_path):
    """Adding target layers to a checkpoint keeps the trained layers' weights and Adam moments
    row for row; the new layers' first moments start at zero and their second moments at the
    nearest trained layer's, so their first updates are not several times the rate."""
    from vllm_d2l.training.grow import grow_checkpoint
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2, "memory_read": "ridge", "write_gate": True,
           "target_layers": [1]}
    parent = Trainer(config(tmp_path / "p", tiny_model_dir, steps=6, hypernet=net))
    parent.run(progress=False, until=3)
    grow_checkpoint(tmp_path / "p" / "run" / "checkpoint", tmp_path / "d" / "run" / "checkpoint", layers=[0])
    deep = Trainer(config(tmp_path / "d", tiny_model_dir, steps=6, hypernet={**net, "target_layers": [0, 1]}))
    assert deep.step == 3 and deep.net.config.layers == [0, 1]
    old = dict(parent.net.named_parameters())
    for name, p in deep.net.named_parameters():
        torch.testing.assert_close(p[1], old[name][0])
        st, was = deep.opt.state[p], parent.opt.state[old[name]]
        torch.testing.assert_close(st["exp_avg"][1], was["exp_avg"][0])
        assert not st["exp_avg"][0].any()
        torch.testing.assert_close(st["exp_avg_sq"][0], was["exp_avg_sq"][0])
    assert not deep.net.value["down_proj"][0].any()
    deep.run(progress=False)
    assert deep.step == 6 and deep.net.value["down_proj"][0].any()  # the new layer learns


def test_wrong_document_shares_the_genre_when_it_can():
    from vllm_d2l.training.trainer import wrong_document
    recs = [{"genre": g} for g in ["memo", "log", "memo", "faq", "log", "memo"]]
    pairs = wrong_document(recs)
    assert pairs == [2, 4, 5, 0, 1, 0]
    assert all(p != i for i, p in enumerate(pairs))
    assert wrong_document([{"genre": "a"}, {"genre": "b"}]) == [1, 0]


def test_cli_evaluates_a_run_without_training(tiny_model_dir, tmp_path, capsys):
    from vllm_d2l.training.trainer import main
    cfg = config(tmp_path, tiny_model_dir, steps=2, heldout_docs=4, synthetic_docs=8, jsonl=[],
                 hypernet={"kind": "token", "key_dim": 4, "bias_rank": 2})
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    Trainer(cfg).run(progress=False)
    assert main(["--config", str(path), "--evaluate"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 2 and "heldout_content_gap_ce" in out and "heldout_synthetic_ce" in out
    assert main(["--config", str(path), "--evaluate", str(tmp_path / "run" / "hypernet")]) == 0
    assert json.loads(capsys.readouterr().out)["hypernet"].endswith("hypernet")
    assert json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())["step"] == 2  # untouched


def test_task_descriptions_are_learnt_as_content(tiny_model_dir, tmp_path):
    """The task mode on the same trainer: records are descriptions whose answers are base replies
    rewritten to follow them. With one family whose value varies (the opening phrase), the only
    way to the targets is to read the phrase from the description: after training, a task's own
    adapter must fit its targets clearly better than another task's of the same family."""
    from vllm_d2l.datasets.tasks import make_record

    replies = tmp_path / "replies.jsonl"
    replies.write_text("\n".join(json.dumps({"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is fine."})
                                 for i in range(6)))
    cfg = config(tmp_path, tiny_model_dir, jsonl=[], stream={"tasks": 1.0}, task_replies=str(replies),
                 task_families=["opening"], heldout_tasks=6, steps=240, lr=3e-3, batch_docs=3, kl_weight=0.0,
                 ce_weight=1.0, hypernet={"kind": "token", "key_dim": 16, "bias_rank": 2})
    trainer = Trainer(cfg)
    rec = trainer.stream.record(0)
    assert rec["genre"] == "task:opening" and all(q["a"].startswith(rec["params"]["phrase"]) for q in rec["qa"])
    assert rec == {**make_record(cfg.seed, 0, [json.loads(l) for l in replies.read_text().splitlines()],
                                 families=["opening"]), "id": rec["id"], "fresh": True}
    before = trainer.evaluate()
    trainer.run(progress=False)
    after = trainer.evaluate()
    assert after["heldout_task_ce"] < before["heldout_task_ce"]
    assert after["heldout_task_content_gap_ce"] > 0.3


def test_cooldown_schedule_falls_linearly_to_its_floor_then_holds():
    """A cool-down branch of a constant run: full rate before `cooldown_from`, a straight line
    down over `cooldown_steps`, the floor after; an unknown schedule name is an error."""
    from types import SimpleNamespace
    from vllm_d2l.training.config import TrainConfig
    cfg = TrainConfig(lr=1e-3, warmup=1, lr_schedule="cooldown", cooldown_from=100, cooldown_steps=50,
                      cooldown_floor=0.1)
    t = SimpleNamespace(cfg=cfg, warm_from=0)
    rates = [Trainer.lr_at(t, s) for s in (0, 99, 100, 125, 150, 400)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 0.55e-3, 1e-4, 1e-4])
    t.cfg = TrainConfig(lr_schedule="linear")
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        Trainer.lr_at(t, 5)


def test_weight_average_follows_the_formula_and_swaps_back():
    from vllm_d2l.training.averaging import WeightAverage
    net = torch.nn.Linear(3, 2)
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    avg = WeightAverage(net, decay=0.9)
    expected = {n: t.clone() for n, t in start.items()}
    for i in range(5):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)
        avg.update(net)
        d = min(0.9, (1 + i) / (10 + i))
        for n, p in net.named_parameters():
            expected[n] = d * expected[n] + (1 - d) * p.detach()
    for n, t in expected.items():
        torch.testing.assert_close(avg.tensors[n], t)
    own = {n: p.detach().clone() for n, p in net.named_parameters()}
    with pytest.raises(RuntimeError):
        with avg.swapped_in(net):
            assert torch.equal(net.weight, avg.tensors["weight"])
            raise RuntimeError("the weights come back even when the block fails")
    assert all(torch.equal(p, own[n]) for n, p in net.named_parameters())
    with pytest.raises(ValueError, match="lacks"):
        avg.load({"other": torch.zeros(1)}, {})
    with pytest.raises(ValueError, match="shape"):
        avg.load({"weight": torch.zeros(3, 3)}, {})
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, decay=1.0)


def test_averaged_weights_resume_exactly_and_become_best_when_they_score_better(tiny_model_dir, tmp_path):
    """The running average survives an interruption unchanged, every evaluation scores it beside
    the weights, and when it scores better the best snapshot holds the average, not the weights."""
    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    straight = Trainer(config(tmp_path / "a", tiny_model_dir, steps=6, ema_decay=0.8, hypernet=net))
    straight.run(progress=False)
    first = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6, ema_decay=0.8, hypernet=net))
    first.run(progress=False, until=3)
    resumed = Trainer(config(tmp_path / "b", tiny_model_dir, steps=6, ema_decay=0.8, hypernet=net))
    assert resumed.average.count == 3
    resumed.run(progress=False)
    for k, v in straight.average.tensors.items():
        torch.testing.assert_close(v, resumed.average.tensors[k], atol=1e-5, rtol=1e-4, msg=k)
    assert any(not torch.equal(v, straight.net.state_dict()[k]) for k, v in straight.average.tensors.items())

    trainer = Trainer(config(tmp_path / "c", tiny_model_dir, steps=2, eval_every=2, ema_decay=0.8, hypernet=net))
    trainer.heldout = trainer.train_set
    row = trainer.evaluate_row()
    assert {"avg_heldout_ce", "avg_heldout_content_gap_ce", "heldout_ce"} <= set(row)
    scores = iter([{"heldout_ce": 2.0, "heldout_content_gap_ce": 0.0},   # the weights
                   {"heldout_ce": 1.0, "heldout_content_gap_ce": 0.0}])  # their average, scored second
    trainer.evaluate = lambda: next(scores)
    trainer.run(progress=False)
    state = json.loads((tmp_path / "c" / "run" / "best" / "state.json").read_text())
    assert state["step"] == 2 and state["heldout_ce"] == 1.0 and state["averaged"]["updates"] == 2
    best = Hypernet.load(tmp_path / "c" / "run" / "best" / "hypernet").state_dict()
    params = dict(trainer.net.named_parameters())
    for k, v in trainer.average.tensors.items():
        assert torch.equal(best[k], v.to(torch.bfloat16).to(best[k].dtype)), k
    assert any(not torch.equal(best[k], p.detach().to(torch.bfloat16).to(best[k].dtype)) for k, p in params.items())


def test_answers_with_a_leading_space_are_the_tokens_the_document_holds(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from vllm_d2l.training.objectives import answer_ids, qa_examples
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    doc = tok("The password of the archive is Quillbarrow, and the keeper is Basil Cromgard.",
              add_special_tokens=False)["input_ids"]

    def inside(part: list[int]) -> bool:
        return any(doc[i:i + len(part)] == part for i in range(len(doc)))
    for value in ("Quillbarrow", "Basil Cromgard"):
        spaced, plain = answer_ids(tok, value, lead_space=True), answer_ids(tok, value)
        assert inside(spaced[:-1]) and spaced[-1] == plain[-1]  # the end of turn follows either
        assert tok.decode(spaced[:-1]) == " " + value and tok.decode(plain[:-1]) == value
    qa = [{"q": "Who keeps it?", "a": "Basil Cromgard"}]
    assert qa_examples(tok, qa, 0, lead_space=True)[0].answer == answer_ids(tok, "Basil Cromgard", lead_space=True)
    with pytest.raises(ValueError, match="cross-entropy only"):
        Trainer(config(tmp_path, tiny_model_dir, answer_space=True, kl_weight=1.0))


def test_a_run_naming_corpora_refuses_to_start_without_them(tiny_model_dir, tmp_path, monkeypatch):
    from vllm_d2l.datasets import corpora
    from vllm_d2l.errors import MissingCorpora
    monkeypatch.setitem(corpora.SOURCES, "austen", lambda: [])
    with pytest.raises(MissingCorpora, match="r-cran-janeaustenr"):
        Trainer(config(tmp_path, tiny_model_dir, corpora=["austen", "pydoc"]))
    assert not (tmp_path / "run").exists()  # nothing written before the check
    Trainer(config(tmp_path, tiny_model_dir, corpora=["pydoc"]))


def test_task_hold_out_scores_its_short_questions_apart_and_the_probe_weight_counts_them(tiny_model_dir, tmp_path):
    """The task hold-out's short questions ("What is the capital of Spain?") are also scored alone
    (`task_short`, a probe outside the overall figures) under ids of their own, so the teacher
    cached for the whole record is not reused; `probe_weights` adds their loss to the choice."""
    from vllm_d2l.datasets.short_questions import questions
    from vllm_d2l.training.trainer import short_questions_only

    asked = questions()[:4]
    replies = tmp_path / "replies.jsonl"
    rows = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is fine."} for i in range(4)]
    rows += [{"prompt": q["q"], "reply": f"It is {q['short']}", "short": q["short"]} for q in asked]
    replies.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = config(tmp_path, tiny_model_dir, jsonl=[], stream={"tasks": 1.0}, task_replies=str(replies),
                 task_families=["opening"], heldout_tasks=4, edits=True, kl_weight=1.0, batch_docs=2,
                 hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2})
    trainer = Trainer(cfg)
    cut = short_questions_only(trainer.heldout)
    assert len(cut) == 4 and all(len(r["qa"]) == 2 and r["id"].endswith("#short") for r in cut)
    assert all(x["q"] in {q["q"] for q in asked} for r in cut for x in r["qa"])
    row = trainer.evaluate()
    full = trainer._evaluate_group(trainer.heldout)
    assert row["heldout_task_ce"] == pytest.approx(sum(full["ce"]) / len(full["ce"]))  # the probe adds nothing to it
    alone = trainer._evaluate_group(cut)
    assert row["heldout_task_short_ce"] == pytest.approx(sum(alone["ce"]) / len(alone["ce"]))
    assert row["heldout_task_short_ce"] != pytest.approx(row["heldout_task_ce"])
    plain = trainer.score(row)
    trainer.cfg.probe_weights = {"task_short": 2.0}
    assert trainer.score(row) == pytest.approx(plain + 2.0 * row["heldout_task_short_ce"])
    assert trainer.score({k: v for k, v in row.items() if "short" not in k}) == float("inf")  # never chosen without it
    trainer.cfg.probe_weights = {"task_short_exact": -1.0}  # a share to raise, named with its statistic
    assert trainer.score(row) == pytest.approx(plain - row["heldout_task_short_exact"])
    assert trainer.score({k: v for k, v in row.items() if "exact" not in k}) == float("inf")


def test_task_selection_wordings_are_a_probe_of_their_own(tiny_model_dir, tmp_path):
    """Descriptions worded apart from training (`heldout_task_select`): one record per template of
    every family, values from the evaluation pools, scored as the probe `task_select` and leaving the
    task hold-out's own figures as they were."""
    from vllm_d2l.datasets.select_wordings import SELECT_WORDINGS
    from vllm_d2l.datasets.tasks import _PHRASES, _pool

    replies = tmp_path / "replies.jsonl"
    replies.write_text("\n".join(json.dumps({"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is fine."})
                                  for i in range(6)))
    base = dict(jsonl=[], stream={"tasks": 1.0}, task_replies=str(replies), task_families=["opening"], heldout_tasks=2,
                edits=True, kl_weight=1.0, batch_docs=2, hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2})
    a = Trainer(config(tmp_path / "a", tiny_model_dir, heldout_task_select=True, heldout_task_comply=1,
                       task_comply_tokens=8, probe_weights={"task_select_comply": -1.0}, **base))
    chosen = [r for r in a.heldout if r["genre"].startswith("task_select:")]
    assert len(chosen) == sum(len(t) for t in SELECT_WORDINGS.values()) == len(a.heldout) - 2
    for r in chosen:
        family = r["genre"].split(":", 1)[1]
        fmt = {**r["params"], **({"k0": r["params"]["keys"][0], "k1": r["params"]["keys"][1]} if "keys" in r["params"] else {})}
        assert r["text"] in {t.format(**fmt) for t in SELECT_WORDINGS[family]}
        if family == "opening":
            assert r["params"]["phrase"] in _pool(_PHRASES, "eval")
    a.net.open_(seed=1)
    b = Trainer(config(tmp_path / "b", tiny_model_dir, **base))
    b.net.load_state_dict(a.net.state_dict())
    ra, rb = a.evaluate(), b.evaluate()
    assert "heldout_task_select_content_gap_ce" in ra and not [k for k in rb if "task_select" in k]
    assert 0.0 <= ra["heldout_task_select_comply"] <= 1.0 and math.isfinite(a.score(ra)) and a.score(rb) == math.inf
    assert ra["heldout_task_ce"] == pytest.approx(rb["heldout_task_ce"]) and ra["heldout_ce"] == pytest.approx(rb["heldout_ce"])


def test_compliance_replies_under_each_records_own_adapter(monkeypatch):
    """Each reply is written with its own record's adapter row and judged by its own family's rule."""
    from vllm_d2l.training import compliance as mod

    records = [{"genre": "task_select:opening", "params": {"phrase": "Ahoy there!"}, "qa": [{"q": "Hi?"}, {"q": "Why?"}]},
               {"genre": "task_select:upper", "params": {}, "qa": [{"q": "Name a fruit."}, {"q": "Another."}, {"q": "Skipped."}]},
               {"genre": "task_select:avoid_word", "params": {"word": "pickle"}, "qa": [{"q": "Lunch?"}]}]
    factors = {"m": (torch.arange(3.0).view(3, 1, 1), torch.zeros(3, 1, 1))}  # row d marked by its value d
    scripted = {0: ["Ahoy there! Hello.", "Hello."], 1: ["APPLE.", "pear."], 2: ["A pickle sandwich."]}
    seen = []

    def fake_generate(model, tok, prompts, max_new_tokens, batch_size, rows):
        marks = rows["m"][0].flatten().long().tolist()
        seen.extend(marks)
        return [scripted[d].pop(0) for d in marks]

    monkeypatch.setattr(mod, "generate", fake_generate)
    monkeypatch.setattr(mod, "render", lambda tok, messages: [0])
    share, verdicts = mod.compliance(None, None, records, factors, prompts_per_record=2, max_new_tokens=8, batch_size=2)
    assert seen == [0, 0, 1, 1, 2] and verdicts == [True, False, True, False, False] and share == 0.4


def test_exact_share_is_the_share_of_answers_greedy_decoding_writes(tiny_model_dir):
    """`exact` counts an answer when greedy decoding from its question writes it token for token:
    the model's own greedy reply is exact, the same reply with its last token changed is not."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.prompts import question_messages, render
    from vllm_d2l.training.objectives import Example, batch_loss
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = [render(tok, question_messages(q)) for q in ("Who runs the lathe?", "Where is the sale?")]
    greedy = [model.generate(input_ids=torch.tensor([p]), max_new_tokens=5, min_new_tokens=5, do_sample=False,
                             pad_token_id=tok.pad_token_id)[0, len(p):].tolist() for p in prompts]
    assert all(len(g) == 5 for g in greedy)
    changed = greedy[1][:-1] + [(greedy[1][-1] + 1) % len(tok)]
    zero = {f"model.layers.{l}.mlp.down_proj": (torch.zeros(1, 2, 128), torch.zeros(1, 64, 2)) for l in range(2)}
    _, own = batch_loss(model, tok.pad_token_id, [Example(p, g, 0) for p, g in zip(prompts, greedy)], zero, 0.0, 1.0)
    _, mixed = batch_loss(model, tok.pad_token_id, [Example(prompts[0], greedy[0], 0), Example(prompts[1], changed, 0)],
                          zero, 0.0, 1.0)
    assert own["exact"] == 1.0 and mixed["exact"] == 0.5


def test_guided_task_teacher_spans_the_bare_and_the_described_model(tiny_model_dir):
    """Guidance 0 is the bare model's top-k, guidance 1 the model with the description before the
    question; the first choice that marks the edits is the bare model's at any guidance, and the
    edits objective takes it from there rather than from the guided top-k."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vllm_d2l.prompts import described_messages, render
    from vllm_d2l.training.objectives import (_answer_logprobs, answer_ids, batch_loss, guided_topk,
                                              qa_examples, teacher_topk)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    qa = [{"q": "Tell me about tides.", "a": "AHOY! Tides rise and fall."}, {"q": "What is tea?", "a": ""}]
    # the second answer: the bare model's own greedy words, so that some tokens are its first choice
    prompt = qa_examples(tok, qa[1:], 0)[0].prompt
    greedy = model.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False)[0][len(prompt):]
    qa[1]["a"] = tok.decode(greedy, skip_special_tokens=True)
    desc = "Start every reply with AHOY!"
    bare = teacher_topk(model, tok, None, qa, 5)
    with torch.no_grad():
        told = _answer_logprobs(model, [render(tok, described_messages(desc, x["q"])) for x in qa],
                                [answer_ids(tok, x["a"]) for x in qa])[0]
    for (i0, v0, f0), (i1, v1, f1), (ib, vb), lp in zip(guided_topk(model, tok, desc, qa, 5, 0.0),
                                                         guided_topk(model, tok, desc, qa, 5, 1.0), bare, told):
        assert torch.equal(i0, ib) and torch.equal(f0, ib[:, 0]) and torch.equal(f1, ib[:, 0])
        torch.testing.assert_close(v0, vb, atol=1e-4, rtol=1e-4)
        vals, idx = lp.topk(5, dim=-1)
        assert torch.equal(i1, idx)
        torch.testing.assert_close(v1, vals, atol=1e-4, rtol=1e-4)
    strong = guided_topk(model, tok, desc, qa, 5, 4.0)
    assert any(not torch.equal(s[0][:, 0], s[2]) for s in strong)  # the guided first choice moved somewhere
    zero = {f"model.layers.{l}.mlp.down_proj": (torch.zeros(1, 2, 128), torch.zeros(1, 64, 2)) for l in range(2)}
    plain, guided = qa_examples(tok, qa, 0), qa_examples(tok, qa, 0)
    for e, t in zip(plain, bare):
        e.teacher = t
    for e, (idx, vals, first) in zip(guided, strong):
        e.teacher, e.first = (idx, vals), first
    _, s_plain = batch_loss(model, tok.pad_token_id, plain, zero, 1.0, 1.0, edits=True)
    _, s_guided = batch_loss(model, tok.pad_token_id, guided, zero, 1.0, 1.0, edits=True)
    assert s_guided["edit_share"] == s_plain["edit_share"] and s_guided["ce"] == pytest.approx(s_plain["ce"])
    assert s_plain["kl"] == pytest.approx(0.0, abs=1e-5) and s_guided["kl"] > 1e-3


def test_instruction_records_are_scored_by_kl_alone_to_the_guided_teacher(tiny_model_dir, tmp_path):
    """The stream's "instructions" records: their answers are the base model's own replies, so none
    of their tokens is an edit; the teacher is the base model moved toward the instruction by the
    record's guidance (`instruction_guidance`), whatever `task_teacher_guidance` says."""
    from vllm_d2l.training.objectives import guided_topk

    replies = tmp_path / "replies.jsonl"
    replies.write_text("\n".join(json.dumps({"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is fine."})
                                  for i in range(6)))
    cfg = config(tmp_path, tiny_model_dir, jsonl=[], stream={"instructions": 1.0}, task_replies=str(replies),
                 heldout_tasks=2, edits=True, kl_weight=1.0, batch_docs=2, instruction_guidance=3.0,
                 hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2})
    trainer = Trainer(cfg)
    rec = trainer.stream.record(0)
    assert rec["distill"] and rec["genre"].startswith("instruction:") and rec["guidance"] == 3.0
    for (i0, v0, f0), (i1, v1, f1) in zip(trainer.teacher(rec), guided_topk(trainer.model, trainer.tok, rec["text"],
                                                                             rec["qa"], cfg.kl_topk, 3.0)):
        assert torch.equal(i0, i1) and torch.equal(f0, f1)
        torch.testing.assert_close(v0, v1)
    recs = [trainer.stream.record(i) for i in range(2)]
    _, stats = trainer.batch_loss(recs, random.Random(0), [False, False])
    assert stats["edit_share"] == 0.0 and "ce" not in stats and stats["kl"] > 0
    with pytest.raises(ValueError, match="need `edits: true`"):
        Trainer(config(tmp_path / "plain", tiny_model_dir, jsonl=[], stream={"instructions": 1.0},
                       task_replies=str(replies), heldout_tasks=2, hypernet={"kind": "token", "key_dim": 8}))


def test_teacher_topk_and_states_reads_a_batch_of_records_in_one_pass_as_it_reads_each(tiny_model_dir, tmp_path):
    """With the edits objective and no guidance the teacher is the bare base model on the bare
    questions, so the batch's records share one pass (`Trainer.teachers`): each record must get the
    top-k it gets alone, streamed records stay out of the cache, held ones go in."""
    from unittest import mock

    from vllm_d2l.training import trainer as trainer_module
    from vllm_d2l.training.objectives import teacher_topk_and_states, teacher_topk

    replies = growing_replies(tmp_path)
    cfg = config(tmp_path, tiny_model_dir, jsonl=[], stream={"tasks": 1.0}, task_replies=str(replies),
                 heldout_tasks=2, edits=True, kl_weight=1.0, batch_docs=3,
                 hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2, "target_layers": [1]})
    trainer = Trainer(cfg)
    recs = [trainer.stream.record(i) for i in range(3)] + trainer.heldout[:1]
    with mock.patch.object(trainer_module, "teacher_topk_and_states", wraps=teacher_topk_and_states) as spy:
        together, lower = trainer.teachers(recs)
    assert spy.call_count == 1
    assert all(len(states) == len(rec["qa"]) for rec, states in zip(recs, lower))  # entering layer 1
    again, kept = trainer.teachers(recs[3:])  # held: cached, its states too
    assert again[0] is together[3] and kept[0] is lower[3]
    for rec, got in zip(recs, together):
        alone = teacher_topk(trainer.model, trainer.tok, None, rec["qa"], cfg.kl_topk)
        assert len(got) == len(rec["qa"]) == len(alone)
        for (i0, v0), (i1, v1) in zip(got, alone):
            assert torch.equal(i0, i1)
            torch.testing.assert_close(v0, v1, rtol=1e-4, atol=1e-4)
    assert set(trainer.teacher_cache) == {trainer.heldout[0]["id"]} and trainer.teacher_seconds > 0


def test_replies_taught_before_are_not_taught_again(tiny_model_dir, tmp_path):
    """The bare teacher's output for a (question, reply) is kept (`teacher_replies`, least recently
    used dropped first): a batch repeating replies sends only the new ones through the model, and
    gets for the others what it got before."""
    from unittest import mock

    from vllm_d2l.training import trainer as trainer_module
    from vllm_d2l.training.objectives import teacher_topk_and_states

    cfg = config(tmp_path, tiny_model_dir, jsonl=[], stream={"tasks": 1.0}, task_replies=str(growing_replies(tmp_path)),
                 heldout_tasks=0, edits=True, kl_weight=1.0, teacher_replies=5,
                 hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2, "target_layers": [1]})
    trainer = Trainer(cfg)
    qa = [{"q": f"Question {i}?", "a": f"Reply number {i}."} for i in range(6)]
    first = trainer.bare_replies(qa[:4])
    with mock.patch.object(trainer_module, "teacher_topk_and_states", wraps=teacher_topk_and_states) as spy:
        again = trainer.bare_replies([qa[1], qa[4], qa[4], qa[0]])
    assert [len(c.args[3]) for c in spy.call_args_list] == [1]  # only qa[4], once
    assert again[0] is first[1] and again[3] is first[0] and again[1] is again[2]
    assert list(trainer.replies_taught) == [(x["q"], x["a"]) for x in (qa[2], qa[3], qa[1], qa[0], qa[4])]
    trainer.bare_replies(qa[5:])  # a sixth: the least recently used (qa[2]) goes
    assert len(trainer.replies_taught) == 5 and (qa[2]["q"], qa[2]["a"]) not in trainer.replies_taught


def test_a_training_loss_is_the_same_with_the_unadapted_layers_skipped(tiny_model_dir, tmp_path):
    """The trainer hands each question the bare teacher's states below the first adapted layer, in
    the order its questions are drawn; the loss must be the one the whole model gives, and the
    student's passes must not run layer 0 (the teacher's and the encoder's do)."""
    from unittest import mock

    from vllm_d2l.training import trainer as trainer_module
    from vllm_d2l.training.objectives import teacher_topk_and_states

    cfg = config(tmp_path, tiny_model_dir, jsonl=[], stream={"tasks": 1.0}, task_replies=str(growing_replies(tmp_path)),
                 heldout_tasks=0, edits=True, kl_weight=1.0, batch_docs=3, max_questions=2, pass_rows=3,
                 teacher_replies=0, hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2, "target_layers": [1]})
    trainer = Trainer(cfg)
    recs = [trainer.stream.record(i) for i in range(3)]
    calls = []
    hook = trainer.model.model.layers[0].register_forward_hook(lambda *a: calls.append(1))
    skipped, _ = trainer.batch_loss(recs, random.Random(5), [False] * 3)
    teacher_only = len(calls)
    whole_model = lambda *a, keep_below=0, **k: teacher_topk_and_states(*a, **k)  # noqa: E731
    with mock.patch.object(trainer_module, "teacher_topk_and_states", whole_model):
        whole, _ = trainer.batch_loss(recs, random.Random(5), [False] * 3)
    hook.remove()
    assert len(calls) > 2 * teacher_only  # the student's passes ran layer 0 only the second time
    assert skipped.item() == pytest.approx(whole.item(), rel=1e-4)


def test_holdout_scores_do_not_depend_on_the_training_batch(tiny_model_dir, tmp_path):
    """The hold-out is a mean of per-batch means, so it is scored in batches of `eval_batch_docs`
    whatever a step's `batch_docs` is: runs at 4 and at 16 a step, and the rows of one run before
    and after it changed, stay comparable."""
    replies = growing_replies(tmp_path)
    base = dict(jsonl=[], stream={"tasks": 1.0}, task_replies=str(replies), heldout_tasks=6, edits=True,
                kl_weight=1.0, hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2})
    rows = [Trainer(config(tmp_path / f"b{b}", tiny_model_dir, batch_docs=b, **base)).evaluate() for b in (2, 5)]
    assert rows[0] == rows[1]
    regrouped = Trainer(config(tmp_path / "e3", tiny_model_dir, batch_docs=2, eval_batch_docs=3, **base)).evaluate()
    assert regrouped["heldout_ce"] != rows[0]["heldout_ce"]  # the batching does move the figure


def test_answers_per_pass_change_the_time_not_the_step(tiny_model_dir, tmp_path):
    """`pass_rows` groups the teacher's and the student's answers into forward passes (a few on a
    CPU, the whole batch on a GPU): the loss and its gradient are the same either way."""
    replies = growing_replies(tmp_path)
    base = dict(jsonl=[], stream={"tasks": 1.0}, task_replies=str(replies), heldout_tasks=2, edits=True,
                kl_weight=1.0, batch_docs=3, hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2})
    losses, grads = [], []
    for rows in (1, 64):
        trainer = Trainer(config(tmp_path / f"p{rows}", tiny_model_dir, pass_rows=rows, **base))
        recs = [trainer.stream.record(j) for j in range(3)]
        loss, _ = trainer.batch_loss(recs, random.Random(0), [False] * 3)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in trainer.net.parameters() if p.grad is not None]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)
    assert consecutive_passes([1, 1, 1, 3, 1, 5, 1], 4) == [[0, 1, 2], [3, 4], [5], [6]]


def test_whole_batch_passes_issue_fewer_operator_calls(tiny_model_dir, tmp_path):
    """What the GPU configs' `pass_rows` is for, counted as `bench/train_step_ops.py` counts it."""
    from bench.train_step_ops import count_step
    replies = growing_replies(tmp_path)
    base = dict(jsonl=[], stream={"tasks": 1.0}, task_replies=str(replies), heldout_tasks=2, edits=True,
                kl_weight=1.0, batch_docs=6, hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2})
    few, whole = (count_step(config(tmp_path / f"o{n}", tiny_model_dir, pass_rows=n, **base), 0) for n in (1, 64))
    assert whole["operator_calls"] < few["operator_calls"] / 2
    assert whole["calls_by_part"]["factors"] < 0.6 * few["calls_by_part"]["factors"]  # six encoder passes, then one


def test_a_scorer_process_writes_the_rows_and_best_snapshot_the_trainer_would(tiny_model_dir, tmp_path):
    """With `eval_async` the hold-out is scored in another process from the weights the trainer
    wrote: the same rows (weights and average) as scoring in the trainer, the same best snapshot,
    nothing left pending; a stopped run's pending weights are scored when it resumes."""
    from vllm_d2l.training import scoring

    net = {"kind": "token", "key_dim": 4, "bias_rank": 2}
    runs = {}
    for mode in (False, True):
        cfg = config(tmp_path / str(mode), tiny_model_dir, steps=4, eval_every=2, hypernet=net, ema_decay=0.8,
                     heldout_docs=2, eval_async=mode)
        runs[mode] = Trainer(cfg)
        runs[mode].run(progress=False)
    rows = {m: sorted((r for r in t._log_rows() if "heldout_ce" in r), key=lambda r: r["step"]) for m, t in runs.items()}
    assert [r["step"] for r in rows[True]] == [r["step"] for r in rows[False]] == [2, 4]
    for a, b in zip(rows[False], rows[True]):
        assert set(a) == set(b) and any(k.startswith("avg_") for k in a)
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k
    best = {m: tmp_path / str(m) / "run" / "best" for m in runs}
    assert json.loads((best[True] / "state.json").read_text())["step"] == json.loads((best[False] / "state.json").read_text())["step"]
    for k, v in Hypernet.load(best[False] / "hypernet").state_dict().items():
        assert torch.equal(v, Hypernet.load(best[True] / "hypernet").state_dict()[k]), k
    assert not any((tmp_path / "True" / "run" / scoring.PENDING).iterdir())

    # a run stopped after queuing step 6's weights: its next start scores them before going on
    trainer = Trainer(config(tmp_path / "True", tiny_model_dir, steps=6, eval_every=2, hypernet=net, ema_decay=0.8,
                             heldout_docs=2, eval_async=True))
    trainer.step = 6
    scoring.write_pending(trainer)
    trainer.run(progress=False)
    assert [r["step"] for r in trainer._log_rows() if "heldout_ce" in r] == [2, 4, 6]
    assert not any((tmp_path / "True" / "run" / scoring.PENDING).iterdir())

    # a trainer restarted while its scorer still runs starts a second one on the same folder: the
    # step is scored and logged once, and neither scorer fails
    trainer.step = 8
    folder = scoring.write_pending(trainer)
    scorers = [scoring.spawn(trainer.out, [folder]) for _ in range(2)]
    assert [s.wait() for s in scorers] == [0, 0]
    assert [r["step"] for r in trainer._log_rows() if "heldout_ce" in r] == [2, 4, 6, 8]
    assert not folder.exists()


def test_family_balance_draws_the_missed_families_more_and_resumes_with_its_rates(tiny_model_dir, tmp_path):
    """`task_balance`: each family's miss rate is a running mean of its examples' edit misses, the
    draw probabilities are (1 - share) / N + share * miss / sum, families never drawn from are
    ignored, and a run resumed from its checkpoint continues the rates it saved."""
    from vllm_d2l.datasets.tasks import families, make_record
    from vllm_d2l.training.balance import FamilyBalance

    bal = FamilyBalance(["a", "b", "c", "d"], share=0.5, decay=0.5)
    assert bal.weights() == {f: 0.25 for f in "abcd"}
    bal.update([("a", 1.0), ("b", 0.0), ("a", 0.0), ("negated", 1.0)])
    # the decayed mean from zero, corrected: a's (0.5 * 0.5 * 1 + 0.5 * 0) / (1 - 0.5 ** 2) = 1 / 3
    assert bal.miss == pytest.approx({"a": 1 / 3, "b": 0.0})  # c and d unseen: they count as the mean, 1 / 6
    w = bal.weights()
    assert w == pytest.approx({"a": 0.125 + 0.5 * 0.5, "b": 0.125, "c": 0.125 + 0.5 * 0.25, "d": 0.125 + 0.5 * 0.25})
    again = FamilyBalance(["a", "b", "c", "d"], share=0.5, decay=0.5)
    again.load(json.loads(json.dumps(bal.state())))
    assert again.weights() == w
    bal.update([("b", 1.0)] * 40)
    assert bal.miss["b"] == pytest.approx(1.0)  # many observations: the start is forgotten
    old = FamilyBalance(["a", "b"], share=0.5)
    old.load({"miss": {"a": 0.2, "zz": 1.0}})  # a state written before the correction
    assert old.miss == pytest.approx({"a": 0.2})
    with pytest.raises(ValueError, match="share"):
        FamilyBalance(["a"], share=1.5)
    # the record maker draws the family from the weights, and only from those with weight
    replies = [{"prompt": f"Tell me about topic {i}.", "reply": f"Topic {i} is fine, and more."} for i in range(6)]
    drawn = {make_record(0, i, replies, family_weights={"upper": 0.0, "bullets": 1.0})["genre"] for i in range(12)}
    assert drawn == {"task:bullets"}
    # a tiny run: the rates move, are logged, saved, and restored on resume
    cfg = dict(jsonl=[], stream={"tasks": 1.0}, task_replies=str(growing_replies(tmp_path)), heldout_tasks=0,
               edits=True, kl_weight=1.0, batch_docs=4, task_balance=0.5, steps=4, save_every=2,
               hypernet={"kind": "token", "key_dim": 8, "bias_rank": 2, "target_layers": [1]})
    first = Trainer(config(tmp_path / "b", tiny_model_dir, **cfg))
    assert first.stream.balance.families == families("train")
    first.run(progress=False, until=2)
    saved = dict(first.stream.balance.miss)
    assert saved and all(0.0 <= m <= 1.0 for m in saved.values())
    logged = [json.loads(l) for l in (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()]
    assert logged[-1]["family_miss"] == {f: round(m, 3) for f, m in sorted(saved.items())}
    resumed = Trainer(config(tmp_path / "b", tiny_model_dir, **cfg))
    assert resumed.step == 2 and resumed.stream.balance.miss == saved
    from vllm_d2l.evaluation.plots import training_chart
    training_chart(tmp_path / "b" / "run" / "log.jsonl", tmp_path / "curves.png")  # with the miss-rate panel
    assert (tmp_path / "curves.png").stat().st_size > 0
    with pytest.raises(ValueError, match="task_families"):
        Trainer(config(tmp_path / "c", tiny_model_dir, **{**cfg, "task_families": ["opening"]}))
