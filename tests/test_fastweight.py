"""The token-level generator on the tiny model: exact no-op at start, the compact LoRA form equals
the token-by-token form, fixed rank whatever the length, and generation equals training."""
import pytest
import torch

from vllm_d2l.apply import lora_applied
from vllm_d2l.encoder import Encoded, Encoder
from vllm_d2l.errors import ModelMismatch
from vllm_d2l.generator import Generator
from vllm_d2l.hypernet import HypernetBase, HypernetConfig, build
from tiny import build_tiny_hypernet

TEXT = "The vault code of tower Alder is 4471. The keeper of tower Alder is Mira. " * 6
PATH = "model.layers.1.mlp.down_proj"


def token_net(model_config, seed=0, **kw):
    cfg = HypernetConfig.for_base_model(model_config, base_model="tiny", **{"kind": "token", "key_dim": 6,
                                                                           "bias_rank": 2, **kw})
    torch.manual_seed(seed)
    return build(cfg)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def random_ids(lengths=(12, 9)) -> torch.Tensor:
    """The token ids `encode` stores, [len(lengths), max(lengths)]."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(3, 300, (len(lengths), max(lengths)), generator=g)


def encode(model, net, lengths=(12, 9)):
    ids = random_ids(lengths)
    mask = torch.zeros(ids.shape, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    return Encoder(model, net.config.source_layers, net.capture)(ids, mask.long()), mask


@pytest.mark.parametrize("value_from", ["next", "same"])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("norm", ["sqrt", "mean", "none"])
def test_compact_form_equals_token_level_form(model, value_from, center, norm):
    """B A x must equal gain * sum_t V h_t (a_t . q) * norm(n), written token by token."""
    net = token_net(model.config, value_from=value_from, center_keys=center, memory_norm=norm,
                    bias_rank=0).open_(seed=3)
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    with torch.no_grad():
        net.gain.uniform_(0.5, 1.5)
        a, b = net.batch_factors(enc, mask, [0, 1], 2)[PATH]
    x = torch.randn(5, model.config.intermediate_size)
    k, layer = net.config.key_dim, 1
    for d, n_tok in enumerate((12, 9)):
        m = enc.inputs[d, layer, :n_tok].float() / net.in_rms[layer, 0]
        h = enc.hidden[d, layer, :n_tok].float()
        if value_from == "next":
            m, h = m[:-1], h[1:]
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        g = net.key["down_proj"][layer]
        keys = m @ g.T / k ** 0.5
        if center:
            keys = keys - keys.mean(0)
        q = (x / net.in_rms[layer, 0]) @ g.T
        n = keys.shape[0]
        scale = {"sqrt": n ** -0.5, "mean": 1 / n, "none": 1.0}[norm]
        direct = net.gain[layer, 0] * scale * (q @ keys.T) @ (h @ net.value["down_proj"][layer].T)
        compact = x @ a[d].T @ b[d].T
        torch.testing.assert_close(compact, direct.detach(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", [{"memory_read": "ridge", "write_gate": True}, {"pooled_rank": 2}])
def test_documents_read_apart_equal_one_padded_batch(model, kind):
    """The trainer reads each document's chunks apart (no padding to the batch's longest chunk);
    that must give the factors of the padded batch, where a document's chunks are summed."""
    net = token_net(model.config, **kind).open_(seed=3)
    if "ridge" in net.state_dict():
        with torch.no_grad():
            net.ridge.uniform_(-1.0, 1.0)
    enc, mask = encode(model, net, lengths=(14, 5, 9, 3))
    owner = [0, 1, 1, 2]  # document 1 in two chunks of different lengths
    parts = []
    for rows in ([0], [1, 2], [3]):
        width = int(mask[rows].sum(1).max())
        parts.append((Encoded(enc.hidden[rows][..., :width, :], enc.inputs[rows][..., :width, :]),
                      mask[rows][:, :width]))
    with torch.no_grad():
        padded = net.batch_factors(enc, mask, owner, 3)
        apart = net.document_factors(parts)
    assert padded.keys() == apart.keys()
    for path, (a, b) in padded.items():
        torch.testing.assert_close(apart[path][0], a)
        torch.testing.assert_close(apart[path][1], b, atol=1e-5, rtol=1e-4)
    base = HypernetBase.document_factors(net, parts)  # the base class's path: pad, then batch_factors
    torch.testing.assert_close(base[PATH][1], padded[PATH][1])


def test_fresh_network_is_exact_noop(model):
    net = token_net(model.config)
    assert net.is_noop()
    enc, mask = encode(model, net)
    factors = net.batch_factors(enc, mask, [0, 1], 2)
    assert all(not b.any() for _, b in factors.values())


def next_token_pairs(net, enc, d, n_tok, layer=1):
    """Document d's keys' inputs m~_t and RMS-normalised next-token values h_t+1 at `layer`."""
    m = enc.inputs[d, layer, :n_tok - 1].float() / net.in_rms[layer, 0]
    h = enc.hidden[d, layer, 1:n_tok].float()
    return m, h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)


def whitened_direct(net, enc, x, d, n_tok, center=True, weights=None, layer=1, key_map=None):
    """The whitened read written token by token: gain * n^-1/2 * q M K^T (w * H V^T), with
    M = (1 + e) t (C + e t I)^-1 and every mean, covariance and count weighed by w (1 if None);
    keys from `key_map` (default: the query map G)."""
    m, h = next_token_pairs(net, enc, d, n_tok, layer)
    w = torch.ones(m.shape[0]) if weights is None else weights
    k, g = net.config.key_dim, net.key["down_proj"][layer]
    keys = m @ (g if key_map is None else key_map).T / k ** 0.5
    n = w.sum()
    if center:
        keys = keys - (w[:, None] * keys).sum(0) / n
    cov = keys.T @ (w[:, None] * keys) / n
    t, e = cov.trace() / k, net.ridge[layer, 0].exp()
    whiten = (1 + e) * t * torch.linalg.inv(cov + e * t * torch.eye(k))
    q = (x / net.in_rms[layer, 0]) @ g.T
    values = w[:, None] * (h @ net.value["down_proj"][layer].T)
    return (net.gain[layer, 0] * n ** -0.5 * (q @ whiten @ keys.T) @ values).detach()


@pytest.mark.parametrize("center", [True, False])
def test_ridge_read_is_the_whitened_least_squares_form(model, center):
    """B A x must equal gain * norm(n) * q M K^T H V^T with M = (1 + e) t (C + e t I)^-1, C the
    keys' covariance and t its mean eigenvalue; a very large e gives back the plain sum."""
    net = token_net(model.config, memory_read="ridge", center_keys=center, bias_rank=0).open_(seed=3)
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    with torch.no_grad():
        net.gain.uniform_(0.5, 1.5)
        net.ridge.uniform_(-1.0, 1.0)
        a, b = net.batch_factors(enc, mask, [0, 1], 2)[PATH]
    x = torch.randn(5, model.config.intermediate_size)
    for d, n_tok in enumerate((12, 9)):
        direct = whitened_direct(net, enc, x, d, n_tok, center)
        torch.testing.assert_close(x @ a[d].T @ b[d].T, direct, atol=1e-4, rtol=1e-4)

    plain = token_net(model.config, center_keys=center, bias_rank=0)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k != "ridge"})
    with torch.no_grad():
        net.ridge.fill_(30.0)  # e = 1e13: no whitening left
        for path, (a, b) in plain.batch_factors(enc, mask, [0, 1], 2).items():
            torch.testing.assert_close(net.batch_factors(enc, mask, [0, 1], 2)[path][1], b, atol=1e-4, rtol=1e-3)


def test_write_gate_weighs_each_tokens_terms_and_starts_as_no_gate(model):
    """With the gate, every sum is weighed by g_t = 2 sigmoid(u . m~_t + c): weighted mean keys,
    weighted covariance over the weighted count, and 1/sqrt of that count. At u = c = 0 it is the
    ungated network exactly, so a trained run can switch it on."""
    net = token_net(model.config, memory_read="ridge", write_gate=True, bias_rank=0).open_(seed=3)
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    plain = token_net(model.config, memory_read="ridge", bias_rank=0)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("write")})
    with torch.no_grad():
        net.ridge.uniform_(-1.0, 1.0)
        plain.ridge.copy_(net.ridge)
        net.write["down_proj"].zero_()
        for path, (_, b) in plain.batch_factors(enc, mask, [0, 1], 2).items():
            torch.testing.assert_close(net.batch_factors(enc, mask, [0, 1], 2)[path][1], b)
        net.open_(seed=3).write_bias.uniform_(-1.0, 1.0)
        gated = net.batch_factors(enc, mask, [0, 1], 2)
    a, b = gated[PATH]
    assert a.stride(0) == 0  # one A for both documents, always-on rows included: the student takes it once
    x = torch.randn(5, model.config.intermediate_size)
    layer = 1
    for d, n_tok in enumerate((12, 9)):
        m, _ = next_token_pairs(net, enc, d, n_tok, layer)
        gate = 2 * torch.sigmoid(m @ net.write["down_proj"][layer] + net.write_bias[layer, 0])  # [T]
        assert gate.std() > 0.01  # the tokens really are weighed differently
        direct = whitened_direct(net, enc, x, d, n_tok, weights=gate.detach(), layer=layer)
        torch.testing.assert_close(x @ a[d].T @ b[d].T, direct, atol=1e-4, rtol=1e-4)
    with pytest.raises(ModelMismatch, match="write_gate"):
        token_net(model.config, write_gate=True)  # the plain-sum read composes by token counts


def test_embedded_values_add_the_stored_tokens_embedding_and_start_as_without(model):
    """With `value_embed` each stored value is [h_{t+1} ; e_{t+1}], e the next token's input
    embedding, read through [V, E]: B A x = gain * sum_t (V h + E e)(a_t . q) / sqrt(n). With E = 0
    it is the network without it exactly, so a trained run can switch it on."""
    net = token_net(model.config, value_embed=True, bias_rank=0).open_(seed=3)
    assert net.config.source_layers[-1] == 0  # the encoder keeps the embeddings last
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    plain = token_net(model.config, bias_rank=0)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("embed_value")})
    with torch.no_grad():
        mixed = net.batch_factors(enc, mask, [0, 1], 2)
        saved = net.embed_value["down_proj"].clone()
        net.embed_value["down_proj"].zero_()
        without = net.batch_factors(enc, mask, [0, 1], 2)
        net.embed_value["down_proj"].copy_(saved)
        plain_enc = Encoded(enc.hidden[:, :-1], enc.inputs)
        for path, (a, b) in plain.batch_factors(plain_enc, mask, [0, 1], 2).items():
            torch.testing.assert_close(without[path][1], b)
            torch.testing.assert_close(without[path][0], a)
    a, b = mixed[PATH]
    x = torch.randn(5, model.config.intermediate_size)
    k, layer = net.config.key_dim, 1
    emb = model.get_input_embeddings()
    for d, n_tok in enumerate((12, 9)):
        m = enc.inputs[d, layer, :n_tok - 1].float() / net.in_rms[layer, 0]
        h = enc.hidden[d, layer, 1:n_tok].float()
        e = enc.hidden[d, -1, 1:n_tok].float()
        torch.testing.assert_close(e, emb.weight[random_ids()[d, 1:n_tok]])  # the next tokens' embeddings
        h, e = (v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + 1e-6) for v in (h, e))
        g = net.key["down_proj"][layer]
        keys = m @ g.T / k ** 0.5
        keys = keys - keys.mean(0)
        q = (x / net.in_rms[layer, 0]) @ g.T
        values = h @ net.value["down_proj"][layer].T + e @ net.embed_value["down_proj"][layer].T
        direct = net.gain[layer, 0] * keys.shape[0] ** -0.5 * (q @ keys.T) @ values
        torch.testing.assert_close(x @ a[d].T @ b[d].T, direct.detach(), atol=1e-4, rtol=1e-4)
    assert not net.is_noop() and token_net(model.config, value_embed=True).is_noop()


def test_own_write_keys_move_only_the_documents_keys_and_start_as_shared(model):
    """With its own write keys, a document's keys come from G + D while queries (the adapter's A)
    keep G; at D = 0 it is the network without them exactly, so a trained run can switch it on."""
    net = token_net(model.config, memory_read="ridge", write_gate=True, own_write_keys=True, bias_rank=0).open_(seed=3)
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    plain = token_net(model.config, memory_read="ridge", write_gate=True, bias_rank=0)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("doc_key")})
    with torch.no_grad():
        net.write["down_proj"].zero_()
        moved = net.batch_factors(enc, mask, [0, 1], 2)
        net.doc_key["down_proj"].zero_()
        plain.write["down_proj"].zero_()
        for path, (a, b) in plain.batch_factors(enc, mask, [0, 1], 2).items():
            same_a, same_b = net.batch_factors(enc, mask, [0, 1], 2)[path]
            torch.testing.assert_close(same_b, b)
            torch.testing.assert_close(same_a, a)
            torch.testing.assert_close(moved[path][0], a)  # the query map never moves
        net.open_(seed=3).write["down_proj"].zero_()
    a, b = moved[PATH]
    x = torch.randn(5, model.config.intermediate_size)
    layer = 1
    key_map = net.key["down_proj"][layer] + net.doc_key["down_proj"][layer]
    for d, n_tok in enumerate((12, 9)):
        direct = whitened_direct(net, enc, x, d, n_tok, layer=layer, key_map=key_map.detach())
        torch.testing.assert_close(x @ a[d].T @ b[d].T, direct, atol=1e-4, rtol=1e-4)
        shared = whitened_direct(net, enc, x, d, n_tok, layer=layer)
        assert not torch.allclose(direct, shared, atol=1e-3)


def test_pooled_block_mixes_learned_matrices_by_the_mean_value_and_starts_empty(model):
    """The pooled block's B is sum_i c_i M_i with c = W h_bar, h_bar the (gate-weighed) mean of the
    document's normalised values; with W = 0 the adapter is the network without the block,
    padded with zero rank rows."""
    net = token_net(model.config, memory_read="ridge", write_gate=True, pooled_rank=3, pooled_basis=4,
                    bias_rank=0).open_(seed=3)
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    plain = token_net(model.config, memory_read="ridge", write_gate=True, bias_rank=0)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("pool_")})
    with torch.no_grad():
        mixed = net.batch_factors(enc, mask, [0, 1], 2)
        net.pool_mix["down_proj"].zero_()
        empty = net.batch_factors(enc, mask, [0, 1], 2)
        for path, (a, b) in plain.batch_factors(enc, mask, [0, 1], 2).items():
            assert empty[path][0].shape[1] == b.shape[2] + 3 == net.config.adapter_rank()
            torch.testing.assert_close(empty[path][1][..., :6], b)
            assert not empty[path][1][..., 6:].any()
        net.open_(seed=3)
    layer = 1
    for d, n_tok in enumerate((12, 9)):
        m, h = next_token_pairs(net, enc, d, n_tok, layer)
        w = 2 * torch.sigmoid(m @ net.write["down_proj"][layer] + net.write_bias[layer, 0])  # [T]
        h_bar = (w[:, None] * h).sum(0) / w.sum()
        mix = net.pool_mix["down_proj"][layer] @ h_bar  # [basis]
        b_pool = torch.einsum("b,bhr->hr", mix, net.pool_basis["down_proj"][layer])
        torch.testing.assert_close(mixed[PATH][1][d, :, 6:], b_pool.detach(), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(mixed[PATH][0][d, 6:], net.pool_a["down_proj"][layer].detach() / net.in_rms[layer, 0])
    assert not net.is_noop()


@pytest.mark.parametrize("own_keys", [False, True])
def test_a_grown_key_space_computes_what_the_network_did(model, own_keys):
    """More key dimensions, added to a trained network, leave every adapter's update B A x as it
    was (to O(eps^2)); the adapter's rank grows by as many."""
    from vllm_d2l.training.grow import grown_net
    net = token_net(model.config, memory_read="ridge", write_gate=True, own_write_keys=own_keys).open_(seed=3)
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    with torch.no_grad():
        net.gain.uniform_(0.5, 1.5)
        net.ridge.uniform_(-1.0, 1.0)
        big = grown_net(net, extra=5, eps=1e-3)
        assert big.config.key_dim == 11 and big.config.adapter_rank() == 11 + 2
        x = torch.randn(5, model.config.intermediate_size)
        before, after = net.batch_factors(enc, mask, [0, 1], 2), big.batch_factors(enc, mask, [0, 1], 2)
        for path, (a, b) in before.items():
            a2, b2 = after[path]
            assert a2.shape[1] == a.shape[1] + 5
            torch.testing.assert_close(torch.einsum("dri,ni,dor->dno", a2, x, b2),
                                       torch.einsum("dri,ni,dor->dno", a, x, b), atol=1e-4, rtol=1e-3)
        assert (big.key["down_proj"][:, 6:].abs().max() > 0)  # the new rows are not stuck at zero
    with pytest.raises(ValueError, match="ridge"):
        grown_net(token_net(model.config), extra=4)


def test_added_target_layers_leave_every_adapter_as_it_was(model, tiny_model_dir):
    """A trained network grown to more target layers emits the same update on its old layers and
    none on the new ones (their V is zero) until they train; their input scale is measured as a
    fresh run measures it."""
    from transformers import AutoTokenizer
    from vllm_d2l.training.grow import deeper_net, new_layer_rms
    net = token_net(model.config, memory_read="ridge", write_gate=True, target_layers=[1]).open_(seed=3)
    enc, mask = encode(model, net)
    net.calibrate_(enc, mask)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = ["The ferry to Rithfield leaves from pier 10 at seven.", "Ask Nadia for the spare key."]
    rms = new_layer_rms(net, [0], model, tok, texts)
    with torch.no_grad():
        net.gain.uniform_(0.5, 1.5)
        big = deeper_net(net, [0], rms)
    assert big.config.layers == [0, 1] and not big.value["down_proj"][0].any()
    fresh = token_net(model.config, target_layers=[0, 1])  # a fresh run's calibration of both layers
    ids = [torch.tensor([tok(t)["input_ids"]]) for t in texts]
    parts = [Encoder(model, fresh.config.source_layers, fresh.capture)(i, torch.ones_like(i)) for i in ids]
    fresh.calibrate_(*Encoded.concat(parts, [torch.ones_like(i, dtype=torch.bool) for i in ids]))
    torch.testing.assert_close(big.in_rms[0], fresh.in_rms[0])
    torch.testing.assert_close(big.in_rms[1], net.in_rms[0])
    enc2, mask2 = encode(model, big)
    with torch.no_grad():
        before, after = net.batch_factors(enc, mask, [0, 1], 2), big.batch_factors(enc2, mask2, [0, 1], 2)
    (path,) = before
    torch.testing.assert_close(after[path][0], before[path][0])
    torch.testing.assert_close(after[path][1], before[path][1], atol=1e-5, rtol=1e-4)
    (new_path,) = set(after) - set(before)
    assert ".0." in new_path and not after[new_path][1].any()
    with pytest.raises(ValueError, match="already targeted"):
        deeper_net(net, [1])


def test_read_back_is_exact_below_capacity_and_falls_above_it(model):
    """With almost no ridge and fewer tokens than key dimensions the whitened memory interpolates:
    each stored token's key reads back its own value; with many more tokens it cannot."""
    from vllm_d2l.evaluation.fidelity import read_back
    net = token_net(model.config, memory_read="ridge", key_dim=16, bias_rank=0).open_(seed=3)
    enc, mask = encode(model, net, lengths=(12,))
    net.calibrate_(enc, mask)
    with torch.no_grad():
        net.ridge.fill_(-12.0)  # e = 6e-6
    few = read_back(net, enc, mask, probe=8)
    assert min(few["own"]) > 0.99 and max(few["other"]) < 0.5
    enc, mask = encode(model, net, lengths=(120,))
    many = read_back(net, enc, mask, probe=8)
    assert max(many["own"]) < 0.9


def test_a_checkpoint_loads_with_a_new_read(tiny_model_dir, tmp_path, model):
    """A run may start from a plain-sum checkpoint with the ridge read: the learnt weights carry
    over and the new strengths start at `ridge_init`."""
    folder = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    net = HypernetBase.load(folder, model.config, overrides={"memory_read": "ridge", "ridge_init": 2.0})
    old = HypernetBase.load(folder, model.config)
    assert net.config.memory_read == "ridge" and torch.allclose(net.ridge.exp(), torch.tensor(2.0))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in old.state_dict().items())
    with pytest.raises(RuntimeError):  # a setting that changes a weight's shape cannot carry it over
        HypernetBase.load(folder, model.config, overrides={"key_dim": 4})


@pytest.mark.parametrize("read, gate, pooled, embed, pointer", [
    ("sum", False, 0, False, 0), ("ridge", False, 0, False, 0), ("ridge", True, 0, False, 0),
    ("ridge", True, 3, False, 0), ("ridge", True, 0, True, 0), ("ridge", True, 0, False, 4)])
def test_generation_equals_training_path_and_rank_is_fixed(tiny_model_dir, tmp_path, read, gate, pooled, embed,
                                                           pointer):
    """The generator folds chunk memories one micro-batch at a time; training sums them in one
    batch. Both must give the same adapter, and its rank must not depend on the length (the copy
    path's factors padded with zeros to it)."""
    folder = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6, bias_rank=2,
                                 memory_read=read, write_gate=gate, pooled_rank=pooled, value_embed=embed,
                                 pointer_rank=pointer)
    gen = Generator.load(folder, tiny_model_dir, encoder_dtype=torch.float32, adapter_dtype=torch.float32,
                         chunk_tokens=16, batch_tokens=16)
    ids = gen.tokenize(TEXT)
    chunks = gen.split(ids)
    assert len(chunks) >= 4
    long = gen.internalize(TEXT)
    short = gen.internalize(gen.tokenizer.decode(chunks[0]))
    assert long.weights.rank == short.weights.rank == 6 + pooled + 2 == gen.hypernet.config.adapter_rank(len(chunks))

    width = max(len(c) for c in chunks)
    x = torch.zeros(len(chunks), width, dtype=torch.long)
    mask = torch.zeros_like(x, dtype=torch.bool)
    for i, c in enumerate(chunks):
        x[i, :len(c)] = torch.tensor(c)
        mask[i, :len(c)] = True
    with torch.no_grad():
        batched = gen.hypernet.batch_factors(gen.encoder(x, mask.long()), mask, [0] * len(chunks), 1)
    assert batched.keys() == set(long.weights.a) and ("lm_head" in batched) == bool(pointer)
    for path, (a, b) in batched.items():
        r = a.shape[1]
        torch.testing.assert_close(long.weights.a[path][:r], a[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(long.weights.b[path][:, :r], b[0], atol=1e-4, rtol=1e-3)
        assert not long.weights.a[path][r:].any() and not long.weights.b[path][:, r:].any()


def test_adapter_changes_outputs_and_checkpoint_round_trips(tiny_model_dir, tmp_path, model):
    folder = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6)
    net = HypernetBase.load(folder, model.config)
    assert net.config.kind == "token" and type(net).__name__ == "FastWeightNet"
    with torch.no_grad():
        net.in_rms.fill_(0.5)
    again = HypernetBase.load(net.save(tmp_path / "hn2"))
    assert torch.equal(again.in_rms, net.in_rms)
    gen = Generator(model, Generator.load(folder, tiny_model_dir).tokenizer, again, "tiny",
                    adapter_dtype=torch.float32)
    w = gen.internalize(TEXT).weights
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        base = model(ids).logits
        with lora_applied(model, {k: (w.a[k], w.b[k]) for k in w.a}):
            adapted = model(ids).logits
    assert not torch.allclose(base, adapted, atol=1e-3)


def test_config_refuses_modules_outside_the_residual_stream(model):
    for modules in (["q_proj"], ["down_proj", "o_proj"]):
        with pytest.raises(ModelMismatch):
            token_net(model.config, target_modules=modules)
    with pytest.raises(ModelMismatch, match="kind"):
        token_net(model.config, kind="pooled")


@pytest.mark.parametrize("read, gate", [("sum", False), ("ridge", True)])
def test_chunks_read_behind_their_context_store_every_pair_once(tiny_model_dir, tmp_path, read, gate):
    """With `chunk_overlap`, a chunk after the first is encoded behind the text before it, which it
    reads and does not store. Context as long as the document encodes every token as one pass does
    (the model is causal), so the adapter is the one-chunk adapter; plain chunks lose the pairs a
    boundary falls between."""
    folder = build_tiny_hypernet(tiny_model_dir, tmp_path / "hn", opened=True, kind="token", key_dim=6, bias_rank=2,
                                 memory_read=read, write_gate=gate)
    load = lambda **kw: Generator.load(folder, tiny_model_dir, encoder_dtype=torch.float32,  # noqa: E731
                                       adapter_dtype=torch.float32, **kw)
    n_ids = len(load().tokenize(TEXT))
    one = load(chunk_tokens=4 * n_ids).internalize(TEXT)
    behind = load(chunk_tokens=16, chunk_overlap=4 * n_ids).internalize(TEXT)
    some = load(chunk_tokens=16, chunk_overlap=8).internalize(TEXT)
    plain = load(chunk_tokens=16, chunk_overlap=0).internalize(TEXT)
    assert one.chunks == 1 and behind.chunks == some.chunks == plain.chunks >= 4
    assert float(one.memory["n"]) == float(behind.memory["n"]) == float(some.memory["n"]) == n_ids - 1
    assert float(plain.memory["n"]) == n_ids - plain.chunks
    assert behind.tokens == some.tokens == plain.tokens == n_ids and some.weights.meta["chunk_overlap"] == 8
    for path in one.weights.a:
        torch.testing.assert_close(behind.weights.b[path], one.weights.b[path], atol=1e-4, rtol=1e-3)
    assert max((plain.weights.b[p] - one.weights.b[p]).abs().max() for p in one.weights.a) > 1e-3


def test_chunk_overlap_is_checked(model):
    with pytest.raises(ModelMismatch):
        token_net(model.config, chunk_tokens=64, chunk_overlap=64)
    with pytest.raises(ModelMismatch):
        HypernetConfig.for_base_model(model.config, base_model="tiny", chunk_overlap=8).validate()  # a Perceiver
    assert token_net(model.config, chunk_tokens=64, chunk_overlap=32).config.chunk_overlap == 32


def test_copy_path_raises_exactly_the_next_tokens_logits_and_starts_as_without(model):
    """With `pointer_rank` the head gets B A with B = gain sum_t e_{x_{t+1}} (g_t (a_t - mean a))^T:
    only tokens that followed a stored state get a row, each row the sum of its own keys. The
    residual-stream adapters are those of the network without it, and a zero gain is no path."""
    net = token_net(model.config, pointer_rank=3, memory_read="ridge", write_gate=True).open_(seed=3)
    net.train()  # the scale of the head's inputs is measured by the first text training reads
    plain = token_net(model.config, memory_read="ridge", write_gate=True)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("pointer")})
    enc, mask = encode(model, net)
    with torch.no_grad():
        net.pointer_write.normal_()  # gates that differ from token to token
        net.pointer_gain.fill_(1.7)
        factors = net.batch_factors(enc, mask, [0, 1], 2)
        without = plain.batch_factors(enc, mask, [0, 1], 2)
    assert factors.keys() == without.keys() | {"lm_head"}
    for path, (a, b) in without.items():
        torch.testing.assert_close(factors[path][1], b)
    a, b = factors["lm_head"]
    ids = random_ids()
    z_all = model.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # the head's input
    rms = net.pointer_rms
    assert 0 < rms < 10
    x = torch.randn(5, model.config.hidden_size)
    for d, n_tok in enumerate((12, 9)):
        z = z_all[d, :n_tok - 1].float() / rms
        g = 2 * torch.sigmoid(z @ net.pointer_write + net.pointer_write_bias)
        keys = z @ net.pointer_key.T / net.config.pointer_rank ** 0.5
        keys = keys - (g[:, None] * keys).sum(0) / g.sum()
        q = (x / rms) @ net.pointer_key.T
        direct = torch.zeros(5, model.config.vocab_size)
        direct.index_add_(1, ids[d, 1:n_tok], 1.7 * (q @ (g[:, None] * keys).T))
        torch.testing.assert_close(x @ a[d].T @ b[d].T, direct.detach(), atol=1e-4, rtol=1e-4)
        rows = b[d].abs().sum(1).nonzero().flatten()
        assert set(rows.tolist()) == set(ids[d, 1:n_tok].tolist())  # a row per token that came next
    with torch.no_grad():
        net.pointer_gain.zero_()
        assert not net.batch_factors(enc, mask, [0, 1], 2)["lm_head"][1].any()
    assert token_net(model.config, pointer_rank=3).is_noop()


@pytest.mark.parametrize("switch, maps", [("pointer_embed", ("pointer_key_own", "pointer_key_embed")),
                                           ("pointer_ahead", ("pointer_key_ahead",))])
def test_copy_path_key_maps_start_as_without_and_match_a_direct_sum(model, switch, maps):
    """With `pointer_embed` a key is ((P + P_own) z~_t + P_emb e~_t) / sqrt(k_p), e~_t token t's
    RMS-normalised embedding (the embeddings join the encoder's states last); with `pointer_ahead`
    it is (P z~_t + P_ahead z~_{t+1}) / sqrt(k_p), z~_{t+1} the final state at the stored token
    itself. The query stays P z~: at their zero start the factors are those of the path without
    them, and with them each stored pair's key is the formula's."""
    kw = dict(pointer_rank=3, memory_read="ridge", write_gate=True)
    net = token_net(model.config, **{switch: True}, **kw).open_(seed=3)
    net.train()
    plain = token_net(model.config, **kw)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k not in maps})
    plain.train()
    assert net.config.source_layers == plain.config.source_layers + ([0] if switch == "pointer_embed" else [])
    enc, mask = encode(model, net)
    enc_plain, _ = encode(model, plain)
    with torch.no_grad():
        net.pointer_gain.fill_(1.3)
        plain.pointer_gain.fill_(1.3)
        same = net.batch_factors(enc, mask, [0, 1], 2)
        without = plain.batch_factors(enc_plain, mask, [0, 1], 2)
        for path, (a, b) in without.items():
            torch.testing.assert_close(same[path][1], b)
        for name in maps:
            getattr(net, name).normal_()
        a, b = net.batch_factors(enc, mask, [0, 1], 2)["lm_head"]
    ids = random_ids()
    z_all = model.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    e_all = model.model.embed_tokens(ids)
    x = torch.randn(5, model.config.hidden_size)
    for d, n_tok in enumerate((12, 9)):
        z = z_all[d, :n_tok].float() / net.pointer_rms  # [n_tok, H]
        g = 2 * torch.sigmoid(z[:-1] @ net.pointer_write + net.pointer_write_bias)
        if switch == "pointer_embed":
            e = e_all[d, :n_tok - 1].float()
            e = e / e.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
            keys = (z[:-1] @ (net.pointer_key + net.pointer_key_own).T + e @ net.pointer_key_embed.T) / 3 ** 0.5
        else:
            keys = (z[:-1] @ net.pointer_key.T + z[1:] @ net.pointer_key_ahead.T) / 3 ** 0.5
        keys = keys - (g[:, None] * keys).sum(0) / g.sum()
        q = (x / net.pointer_rms) @ net.pointer_key.T
        direct = torch.zeros(5, model.config.vocab_size)
        direct.index_add_(1, ids[d, 1:n_tok], 1.3 * (q @ (g[:, None] * keys).T))
        torch.testing.assert_close(x @ a[d].T @ b[d].T, direct.detach(), atol=1e-4, rtol=1e-4)
    with pytest.raises(ModelMismatch, match="pointer_rank"):
        token_net(model.config, **{switch: True})


def test_copy_path_reads_the_final_states_when_no_target_layer_does(model):
    net = token_net(model.config, pointer_rank=3, target_layers=[0]).open_(seed=3)
    n = model.config.num_hidden_layers
    assert net.config.source_layers == [1, n] and net.config.pointer_source == 1
    enc, mask = encode(model, net)
    factors = net.batch_factors(enc, mask, [0, 1], 2)
    assert factors.keys() == {"model.layers.0.mlp.down_proj", "lm_head"}
    with pytest.raises(ModelMismatch):  # the head's rows need the vocabulary's size
        HypernetConfig(kind="token", key_dim=6, pointer_rank=3).validate()


def test_token_variants_are_the_same_text_spelt_elsewhere(tiny_model_dir):
    """" x" -> "x" (unspaced), "x" -> " x" (spaced), ")," -> ")" (unpunctuated), -1 where the
    vocabulary lacks one; ids past the tokenizer's vocabulary (padding rows of the head) have none."""
    from transformers import AutoTokenizer
    from vllm_d2l.token_variants import KINDS, variant_table, variants_of
    vocab = {"Ġx": 0, "x": 1, "),": 2, ")": 3, "Ġthe": 4, "Ġ": 5, "Ġ,": 6, "a.": 7}
    assert KINDS == ("unspaced", "spaced", "unpunctuated")
    assert variants_of("Ġx", vocab) == (1, -1, -1)
    assert variants_of("x", vocab) == (-1, 0, -1)
    assert variants_of("),", vocab) == (-1, -1, 3)
    assert variants_of("Ġthe", vocab) == (-1, -1, -1)  # no "the" here
    assert variants_of("Ġ,", vocab) == (-1, -1, -1)  # "," is not in it, and a bare space is not a variant
    assert variants_of("a.", vocab) == (-1, -1, -1)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    table = variant_table(tok, len(tok) + 7)
    assert table.shape == (len(tok) + 7, 3) and (table[len(tok):] == -1).all()
    pairs = [(i, j) for t, i in tok.get_vocab().items() if t.startswith("Ġ") and (j := tok.get_vocab().get(t[1:])) is not None]
    assert pairs and all(table[i, 0] == j and table[j, 1] == i for i, j in pairs)


def test_copy_path_raises_spelling_variants_by_their_weights_and_starts_as_without(model, tiny_model_dir):
    """With `pointer_variants` a pair's key also goes into the rows of its next token's variants,
    weighed by its kind's weight λ_k (and counted so for the centring): at λ = 0 the factors are
    those of the path without; unbound to a tokenizer the path refuses to guess."""
    from transformers import AutoTokenizer
    from vllm_d2l.token_variants import variant_table
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    kw = dict(pointer_rank=3, memory_read="ridge", write_gate=True)
    net = token_net(model.config, pointer_variants=True, **kw).open_(seed=3)
    net.train()
    plain = token_net(model.config, **kw)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k != "pointer_variant_gain"})
    plain.train()
    enc, mask = encode(model, net)
    with pytest.raises(RuntimeError, match="bind_tokenizer"):
        net.batch_factors(enc, mask, [0, 1], 2)
    net.bind_tokenizer(tok)
    with torch.no_grad():
        net.pointer_write.normal_()
        plain.pointer_write.copy_(net.pointer_write)
        for n in (net, plain):
            n.pointer_gain.fill_(1.3)
        torch.testing.assert_close(net.batch_factors(enc, mask, [0, 1], 2)["lm_head"][1],
                                   plain.batch_factors(enc, mask, [0, 1], 2)["lm_head"][1])
        lam = torch.tensor([0.5, -0.3, 0.8])
        net.pointer_variant_gain.copy_(lam)
        a, b = net.batch_factors(enc, mask, [0, 1], 2)["lm_head"]
    table = variant_table(tok, model.config.vocab_size)
    ids = random_ids()
    assert (table[ids[:, 1:]] >= 0).any()  # the random documents do hold tokens with variants
    z_all = model.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    x = torch.randn(5, model.config.hidden_size)
    for d, n_tok in enumerate((12, 9)):
        z = z_all[d, :n_tok - 1].float() / net.pointer_rms
        g = 2 * torch.sigmoid(z @ net.pointer_write + net.pointer_write_bias)
        keys = (z @ net.pointer_key.T / 3 ** 0.5).detach()
        g = g.detach()
        entries = [(int(v), float(g[t]), keys[t]) for t, v in enumerate(ids[d, 1:n_tok])]  # (row, weight, key)
        entries += [(int(table[v, k]), float(lam[k] * g[t]), keys[t]) for t, v in enumerate(ids[d, 1:n_tok])
                    for k in range(3) if table[v, k] >= 0]
        mean = sum(w * key for _, w, key in entries) / sum(w for _, w, _ in entries)
        q = (x / net.pointer_rms) @ net.pointer_key.T
        direct = torch.zeros(5, model.config.vocab_size)
        for row, w, key in entries:
            direct[:, row] += 1.3 * w * (q @ (key - mean))
        torch.testing.assert_close(x @ a[d].T @ b[d].T, direct.detach(), atol=1e-4, rtol=1e-4)
    with pytest.raises(ModelMismatch, match="pointer_rank"):
        token_net(model.config, pointer_variants=True)
