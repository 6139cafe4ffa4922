"""Hypernetwork and generator on the tiny model: no-op at init, checkpoints, chunking, bad input."""
import json

import pytest
import torch

from vllm_d2l.apply import lora_applied
from vllm_d2l.errors import BadDocument, MissingModel, ModelMismatch
from vllm_d2l.generator import GUIDANCE_ANCHORS, Generator, default_hypernet_dir
from tiny import build_tiny_hypernet as tiny_hypernet
from vllm_d2l.hypernet import Hypernet, HypernetBase
from vllm_d2l.paths import package_data_dir

TEXT = "Paris is the capital of France. Berlin is the capital of Germany. " * 12


@pytest.fixture
def gen(tiny_model_dir, tmp_path):
    folder = tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, rank=4, bias_rank=2)
    return Generator.load(folder, tiny_model_dir, encoder_dtype=torch.float32, chunk_tokens=32, batch_tokens=64)


def test_fresh_hypernetwork_is_exact_noop(tiny_model_dir, tmp_path):
    g = Generator.load(tiny_hypernet(tiny_model_dir, tmp_path / "hn"), tiny_model_dir,
                       encoder_dtype=torch.float32, adapter_dtype=torch.float32)
    assert g.hypernet.is_noop()
    w = g.internalize(TEXT).weights
    assert all(torch.count_nonzero(b) == 0 for b in w.b.values())
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        base = g.model(ids).logits
        with lora_applied(g.model, {k: (w.a[k], w.b[k]) for k in w.a}):
            adapted = g.model(ids).logits
    assert torch.equal(base, adapted)


def test_rank_is_chunks_times_rank_plus_bias(gen):
    r = gen.internalize(TEXT)
    n_tokens = len(gen.tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    assert r.tokens == n_tokens and r.chunks == -(-n_tokens // 32)
    assert r.weights.rank == 4 * r.chunks + 2
    assert r.weights.meta["chunks"] == r.chunks
    r.weights.validate(gen.model.config)
    assert r.weights.cap_rank(5).rank == 5


def test_chunk_length_defaults_to_the_trained_one(tiny_model_dir, tmp_path):
    folder = tiny_hypernet(tiny_model_dir, tmp_path / "hn", chunk_tokens=40)
    g = Generator.load(folder, tiny_model_dir, encoder_dtype=torch.float32)
    assert g.chunk_tokens == 40 and g.batch_tokens == 40
    assert g.internalize(TEXT).chunks == -(-len(g.tokenize(TEXT)) // 40)
    assert Generator.load(folder, tiny_model_dir, chunk_tokens=16).chunk_tokens == 16  # an explicit length wins


def test_deterministic_and_batched_matches_single(gen):
    one = gen.internalize(TEXT).weights
    again = gen.internalize(TEXT).weights
    many = gen.internalize_many([TEXT, "Another short note about Berlin."])
    for k in one.a:
        assert torch.equal(one.a[k], again.a[k]) and torch.equal(one.b[k], again.b[k])
        torch.testing.assert_close(one.b[k].float(), many[0].weights.b[k].float(), atol=2e-2, rtol=2e-2)
    assert many[1].chunks == 1


def test_micro_batches_fill_the_token_budget(gen):
    assert gen.batch_tokens == 64
    assert gen.micro_batches([[1] * 20, [1] * 30, [1] * 40, [1] * 5, [1] * 9]) == [[0, 1], [2], [3, 4]]


def test_long_document_streams_one_batch_at_a_time(gen, monkeypatch):
    """A document 4x the model's window never puts more than one micro-batch through the encoder."""
    window = gen.model.config.max_position_embeddings
    text = "The quick brown fox jumps over the lazy dog. " * 1000
    n_tokens = len(gen.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert n_tokens >= 4 * window
    seen = []
    real = gen.encoder.__call__
    monkeypatch.setattr(type(gen.encoder), "__call__", lambda self, ids, mask=None: seen.append(ids.shape) or real(ids, mask))
    r = gen.internalize(text, chunk_tokens=512, progress=True)
    assert r.chunks == -(-n_tokens // 512)
    assert max(s[0] * s[1] for s in seen) <= max(gen.batch_tokens, 512)


@pytest.mark.parametrize("bad, message", [
    ("", "empty"), ("   \n\t ", "empty"), (b"\xff\xfeabc", "UTF-8"), ("a\x00b", "NUL"), (42, "text"),
])
def test_bad_documents_are_named(gen, bad, message):
    with pytest.raises(BadDocument, match=message):
        gen.internalize(bad)


def test_token_limit(gen):
    with pytest.raises(BadDocument, match="limit is 5"):
        gen.internalize(TEXT, max_tokens=5)


def test_checkpoint_for_another_model_is_refused(tiny_model_dir, tmp_path):
    folder = tiny_hypernet(tiny_model_dir, tmp_path / "hn")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["base_hidden_size"], cfg["base_num_layers"] = 576, 30
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelMismatch, match="hidden_size: hypernetwork 576, model 64"):
        Generator.load(folder, tiny_model_dir)


def test_missing_folders_are_named(tiny_model_dir, tmp_path):
    with pytest.raises(MissingModel, match="hypernetwork folder not found"):
        Generator.load(tmp_path / "nope", tiny_model_dir)
    with pytest.raises(MissingModel, match="model folder not found"):
        Generator.load(tiny_hypernet(tiny_model_dir, tmp_path / "hn"), tmp_path / "no-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingModel, match="not a hypernetwork checkpoint"):
        Hypernet.load(tmp_path / "empty")


def test_hypernetwork_round_trip(tiny_model_dir, tmp_path):
    folder = tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True)
    net = Hypernet.load(folder)
    again = Hypernet.load(net.save(tmp_path / "hn2"))
    for (k, v), (_, w) in zip(net.state_dict().items(), again.state_dict().items()):
        assert torch.equal(v, w), k


def test_packaged_hypernetwork_is_trained_and_fits_the_package_budget(monkeypatch):
    """The package ships a trained token-level checkpoint for SmolLM2-135M (the default when no
    other is named), within 40 MB, and it is not a no-op."""
    monkeypatch.delenv("VLLM_D2L_HYPERNET", raising=False)
    folder = default_hypernet_dir()
    assert folder == package_data_dir() / "hypernet"
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 40e6
    net = HypernetBase.load(folder)
    assert net.config.kind == "token" and net.config.base_model == "SmolLM2-135M-Instruct"
    assert not net.is_noop()


def test_centred_values_read_nothing_from_a_uniform_chunk(tiny_model_dir, tmp_path):
    """With `center_values`, a chunk whose tokens all look the same carries no content: the
    factors are those of any other such chunk, whatever its hidden state."""
    net = Hypernet.load(tiny_hypernet(tiny_model_dir, tmp_path / "hn", rank=2, center_values=True))
    net = net.open_(seed=1).eval()
    cfg = net.config
    layers, hidden = len(cfg.source_layers), cfg.base_hidden_size
    one = torch.randn(1, layers, 1, hidden).expand(1, layers, 5, hidden)
    other = torch.randn(1, layers, 1, hidden).expand(1, layers, 5, hidden)
    with torch.no_grad():
        fa, fb = net(one), net(other)
        varied = net(torch.randn(1, layers, 5, hidden))
    for k in fa:
        torch.testing.assert_close(fa[k][1], fb[k][1])
    assert any(not torch.allclose(fa[k][1], varied[k][1]) for k in fa)


@pytest.mark.parametrize("native", [True, False])
def test_the_encoder_reads_in_bf16_only_where_the_cpu_multiplies_in_it(native, monkeypatch, tiny_model_dir, tmp_path):
    """bf16 on a CPU without native bf16 matmuls is tens of times slower than fp32, so a
    generator loaded without a dtype picks fp32 there and bf16 where oneDNN has it (or on a GPU)."""
    from vllm_d2l.base_model import preferred_dtype

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    want = torch.bfloat16 if native else torch.float32
    assert preferred_dtype() == want and preferred_dtype("cuda") == torch.bfloat16
    g = Generator.load(tiny_hypernet(tiny_model_dir, tmp_path / "hn"), tiny_model_dir)
    assert next(g.model.parameters()).dtype == want


def test_guided_adapter_turns_up_what_a_text_adds_over_the_anchors(tiny_model_dir, tmp_path):
    """Guidance s writes B_anchor + s (B - B_anchor) with the shared A: one adapter of the same
    rank, its always-on block untouched, under an id of its own."""
    folder = tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6, bias_rank=2)
    kw = dict(encoder_dtype=torch.float32, adapter_dtype=torch.float32)
    plain = Generator.load(folder, tiny_model_dir, **kw)
    guided = Generator.load(folder, tiny_model_dir, guidance=2.5, **kw)
    anchors = [r.weights for r in plain.internalize_many(list(GUIDANCE_ANCHORS))]
    one, two = plain.internalize(TEXT).weights, guided.internalize(TEXT).weights
    assert two.rank == one.rank and two.meta["guidance"] == 2.5 and "guidance" not in one.meta
    for k in one.a:
        anchor = torch.stack([w.b[k] for w in anchors]).mean(0)
        assert torch.equal(two.a[k], one.a[k])
        torch.testing.assert_close(two.b[k], anchor + 2.5 * (one.b[k] - anchor))
        torch.testing.assert_close(two.b[k][:, -2:], one.b[k][:, -2:])  # the always-on block
        assert not torch.allclose(two.b[k], one.b[k])
    assert guided.fingerprint != plain.fingerprint and plain.fingerprint in guided.fingerprint
    assert Generator.load(folder, tiny_model_dir, guidance=1.0, **kw).fingerprint == plain.fingerprint


def test_guidance_is_refused_where_it_cannot_apply(tiny_model_dir, tmp_path):
    token = tiny_hypernet(tiny_model_dir, tmp_path / "token", kind="token", key_dim=6)
    with pytest.raises(ValueError, match="guidance must be > 0"):
        Generator.load(token, tiny_model_dir, encoder_dtype=torch.float32, guidance=0.0)
    perceiver = tiny_hypernet(tiny_model_dir, tmp_path / "perceiver")  # writes A per text
    with pytest.raises(ModelMismatch, match="cannot be guided"):
        Generator.load(perceiver, tiny_model_dir, encoder_dtype=torch.float32, guidance=2.0)
