"""Composition of stored adapters (`vllm_d2l.compose`): the sum of the parts' document updates,
with the always-on block once; for the token kind, exactly the adapter of the pooled memory."""
import pytest
import torch

from vllm_d2l.compose import compose
from vllm_d2l.errors import ModelMismatch
from vllm_d2l.generator import Generator
from vllm_d2l.lora import LoRAWeights
from tiny import build_tiny_hypernet

DOC_A = "The vault code of tower Alder is 4471. The keeper of tower Alder is Mira. " * 3
DOC_B = "Tower Brook has a red door, and its keeper Tobin sleeps at noon."
DOC_C = "The ferry to Lindholm leaves at seven from pier nine."


def generator(tiny_model_dir, folder, **kw) -> Generator:
    hn = build_tiny_hypernet(tiny_model_dir, folder, opened=True, **kw)
    return Generator.load(hn, tiny_model_dir, encoder_dtype=torch.float32, adapter_dtype=torch.float32,
                          chunk_tokens=16, batch_tokens=64)


def dense(w: LoRAWeights) -> dict[str, torch.Tensor]:
    return {k: w.delta(k) for k in w.a}


def test_token_kind_composite_is_the_pooled_memory(tiny_model_dir, tmp_path):
    """Summing two documents' memories through their adapters gives the adapter the generator
    makes when it reads both as one document (keys not centred: per-document centring is the
    one deliberate difference), at the same fixed rank."""
    gen = generator(tiny_model_dir, tmp_path / "hn", kind="token", key_dim=6, bias_rank=2, center_keys=False)
    wa, wb = (gen.internalize(t).weights for t in (DOC_A, DOC_B))
    both = gen.split(gen.tokenize(DOC_A)) + gen.split(gen.tokenize(DOC_B))
    pooled = gen.assemble(gen.document_parts([both])[0], {})
    mixed = compose([wa, wb])
    assert mixed.rank == wa.rank == 6 + 2
    for k in pooled.a:
        torch.testing.assert_close(mixed.delta(k), pooled.delta(k), atol=1e-5, rtol=1e-4)
    assert mixed.meta["tokens"] == wa.meta["tokens"] + wb.meta["tokens"]
    # associative, and order-free
    three = compose([compose([wa, wb]), gen.internalize(DOC_C).weights])
    again = compose([gen.internalize(DOC_C).weights, wb, wa])
    for k in three.a:
        torch.testing.assert_close(three.delta(k), again.delta(k), atol=1e-5, rtol=1e-4)


def test_whitened_token_composite_is_the_sum_of_updates_at_fixed_rank(tiny_model_dir, tmp_path):
    gen = generator(tiny_model_dir, tmp_path / "hn", kind="token", key_dim=6, bias_rank=2, memory_read="ridge")
    with torch.no_grad():
        for p in gen.hypernet.bias_b.values():
            p.normal_()
    wa, wb = (gen.internalize(t).weights for t in (DOC_A, DOC_B))
    mixed = compose([wa, wb])
    assert mixed.rank == wa.rank == 6 + 2
    bias = {k: ab[1] @ ab[0] for k, ab in gen.hypernet.bias_factors().items()}
    for k in wa.a:
        torch.testing.assert_close(mixed.delta(k), wa.delta(k) + wb.delta(k) - bias[k], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("gate", [False, True])
def test_pooled_memories_are_the_adapter_of_the_documents_read_as_one(tiny_model_dir, tmp_path, gate):
    """`Generator.pool` folds the documents' kept memories: the adapter the generator makes of
    one document whose chunks are both documents' chunks (for the whitened read, one least-squares
    memory over all tokens, which the sum of the two adapters is not), same fixed rank."""
    gen = generator(tiny_model_dir, tmp_path / "hn", kind="token", key_dim=6, bias_rank=2, memory_read="ridge",
                    write_gate=gate)
    ra, rb = gen.internalize_many([DOC_A, DOC_B])
    assert ra.memory is not None and set(ra.memory) >= {"S", "kk", "n"}
    pooled = gen.pool([ra.memory, rb.memory], {"tokens": ra.tokens + rb.tokens})
    both = gen.split(gen.tokenize(DOC_A)) + gen.split(gen.tokenize(DOC_B))
    one = gen.assemble(gen.document_parts([both])[0], {})
    summed = compose([ra.weights, rb.weights])
    assert pooled.rank == summed.rank == 6 + 2 and pooled.meta["tokens"] == ra.tokens + rb.tokens
    for k in one.a:
        torch.testing.assert_close(pooled.delta(k), one.delta(k), atol=1e-5, rtol=1e-4)
    assert max((pooled.delta(k) - summed.delta(k)).abs().max() for k in one.a) > 1e-4
    again = gen.pool([rb.memory, ra.memory])  # order-free
    for k in one.a:
        torch.testing.assert_close(again.delta(k), pooled.delta(k), atol=1e-5, rtol=1e-4)
    perceiver = generator(tiny_model_dir, tmp_path / "p", dim=32, heads=2, latent_blocks=1)
    assert perceiver.internalize(DOC_B).memory is None
    with pytest.raises(ValueError, match="keeps no memory"):
        perceiver.pool([ra.memory])


def test_perceiver_composite_stacks_documents_and_keeps_one_always_on_block(tiny_model_dir, tmp_path):
    gen = generator(tiny_model_dir, tmp_path / "hn", rank=4, bias_rank=2)
    with torch.no_grad():
        for p in gen.hypernet.bias_b.values():
            p.normal_()
    wa, wb = (gen.internalize(t).weights for t in (DOC_A, DOC_B))
    mixed = compose([wa, wb])
    assert mixed.rank == wa.rank + wb.rank - 2
    bias = {k: ab[1] @ ab[0] for k, ab in gen.hypernet.bias_factors().items()}
    for k in wa.a:  # own updates add up; the always-on update is there once
        torch.testing.assert_close(mixed.delta(k), wa.delta(k) + wb.delta(k) - bias[k], atol=1e-5, rtol=1e-4)


def test_parts_without_layout_or_from_other_checkpoints_concatenate(tiny_model_dir, tmp_path):
    one = generator(tiny_model_dir, tmp_path / "one", kind="token", key_dim=6, bias_rank=2)
    other = build_tiny_hypernet(tiny_model_dir, tmp_path / "other", opened=True, kind="token", key_dim=6,
                                bias_rank=2)
    with torch.no_grad():  # a different checkpoint: same shapes, other keys
        from vllm_d2l.hypernet import HypernetBase
        net = HypernetBase.load(other)
        net.key["down_proj"].mul_(2.0)
        net.bias_b["down_proj"].normal_()
        net.save(other)
    two = Generator.load(other, tiny_model_dir, encoder_dtype=torch.float32, adapter_dtype=torch.float32)
    wa, wb = one.internalize(DOC_A).weights, two.internalize(DOC_B).weights
    capped = one.internalize(DOC_C).weights.cap_rank(3)
    assert "layout" not in capped.meta
    mixed = compose([wa, wb, capped])
    assert mixed.rank == wa.rank + wb.rank + 3
    for k in wa.a:
        torch.testing.assert_close(mixed.delta(k), wa.delta(k) + wb.delta(k) + capped.delta(k),
                                   atol=1e-5, rtol=1e-4)


def test_compose_refuses_mismatched_parts():
    a = LoRAWeights({"m.x": torch.ones(1, 4)}, {"m.x": torch.ones(4, 1)}, "one")
    b = LoRAWeights({"m.x": torch.ones(1, 4)}, {"m.x": torch.ones(4, 1)}, "two")
    c = LoRAWeights({"m.y": torch.ones(1, 4)}, {"m.y": torch.ones(4, 1)}, "one")
    with pytest.raises(ModelMismatch):
        compose([a, b])
    with pytest.raises(ValueError):
        compose([])
    both = compose([a, c])  # other modules of one model: each part updates its own
    assert set(both.a) == {"m.x", "m.y"} and both.rank == 2
    torch.testing.assert_close(both.delta("m.x"), a.delta("m.x"))
    torch.testing.assert_close(both.delta("m.y"), c.delta("m.y"))


@pytest.mark.parametrize("read", ["sum", "ridge"])
def test_copy_path_composes_as_the_sum_of_its_parts(tiny_model_dir, tmp_path, read):
    """A task generator's copy path updates the LM head, which a document's adapter leaves alone:
    with one, the composite's head is that part's; two of one checkpoint add their rows."""
    docs = generator(tiny_model_dir, tmp_path / "docs", kind="token", key_dim=6, bias_rank=2)
    tasks = generator(tiny_model_dir, tmp_path / "tasks", kind="token", key_dim=6, bias_rank=2, memory_read=read,
                      pointer_rank=4)
    wd = docs.internalize(DOC_A).weights
    wa, wb = (tasks.internalize(t).weights for t in (DOC_B, DOC_C))
    assert "lm_head" in wa.a and "lm_head" not in wd.a
    mixed = compose([wd, wa])
    torch.testing.assert_close(mixed.delta("lm_head"), wa.delta("lm_head"))
    pair = compose([wa, wb])
    assert pair.rank == wa.rank
    torch.testing.assert_close(pair.delta("lm_head"), wa.delta("lm_head") + wb.delta("lm_head"), atol=1e-5, rtol=1e-4)
