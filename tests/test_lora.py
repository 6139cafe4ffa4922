"""LoRAWeights: PEFT round trip against our reference forward, concatenation, rank cap."""
import pytest
import torch

from vllm_d2l.apply import lora_applied
from vllm_d2l.errors import ModelMismatch
from vllm_d2l.lora import LoRAWeights, module_path, module_shapes


def random_lora(hf_config, rank: int, modules=("down_proj", "q_proj"), seed=0, scale=0.05) -> LoRAWeights:
    g = torch.Generator().manual_seed(seed)
    shapes = module_shapes(hf_config, list(modules))
    a, b = {}, {}
    for layer in range(hf_config.num_hidden_layers):
        for m, (d_in, d_out) in shapes.items():
            k = module_path(layer, m)
            a[k] = torch.randn(rank, d_in, generator=g) * scale
            b[k] = torch.randn(d_out, rank, generator=g) * scale
    return LoRAWeights(a, b, "tiny")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_peft_folder_matches_reference_forward(tiny, tiny_model_dir, tmp_path):
    """Tolerance 1e-4 absolute on fp32 logits: PEFT and our hooks do the same two matmuls."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    w = random_lora(tiny.config, rank=4)
    w.save_peft(tmp_path / "adapter")
    ids = torch.tensor([[5, 17, 42, 99, 3, 250]])
    with torch.no_grad(), lora_applied(tiny, {k: (w.a[k], w.b[k]) for k in w.a}):
        ours = tiny(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        theirs = peft_model(ids).logits
        plain = tiny(ids).logits
    assert (ours - plain).abs().max() > 1e-3  # the adapter does something
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_bytes_and_folder_round_trip(tiny, tmp_path):
    w = random_lora(tiny.config, rank=3)
    w.meta["tokens"] = 7
    for back in (LoRAWeights.from_safetensors_bytes(w.to_safetensors_bytes()),
                 LoRAWeights.load_peft(w.save_peft(tmp_path / "x"))):
        assert back.modules == w.modules and back.meta == w.meta and back.base_model == "tiny"
        for k in w.a:
            assert torch.equal(back.a[k], w.a[k]) and torch.equal(back.b[k], w.b[k])


def test_zero_padded_module_is_written_at_its_own_rank(tiny, tiny_model_dir, tmp_path):
    """A module whose last rank rows are zero (as the copy path's head block is) goes to disk at
    its used rank through `rank_pattern` / `alpha_pattern`, loads back padded and equal, and PEFT
    reads the folder to the same forward."""
    import json

    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    w = random_lora(tiny.config, rank=4)
    k = module_path(0, "q_proj")
    w.a[k][2:] = 0
    w.b[k][:, 2:] = 0
    assert w.stored_ranks() == {k: 2}
    folder = w.save_peft(tmp_path / "x")
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and list(cfg["rank_pattern"].values()) == [2] == list(cfg["alpha_pattern"].values())
    saved = load_file(folder / "adapter_model.safetensors")
    assert saved[f"base_model.model.{k}.lora_A.weight"].shape[0] == 2
    assert saved[f"base_model.model.{module_path(1, 'q_proj')}.lora_A.weight"].shape[0] == 4
    for back in (LoRAWeights.load_peft(folder), LoRAWeights.from_safetensors_bytes(w.to_safetensors_bytes())):
        assert back.rank == 4 and all(torch.equal(back.a[m], w.a[m]) and torch.equal(back.b[m], w.b[m]) for m in w.a)
    ids = torch.tensor([[5, 17, 42, 99, 3, 250]])
    with torch.no_grad(), lora_applied(tiny, {m: (w.a[m], w.b[m]) for m in w.a}):
        ours = tiny(ids).logits
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                                           folder).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours, peft_model(ids).logits, atol=1e-4, rtol=1e-4)


def test_foreign_alpha_is_folded_into_b(tiny, tmp_path):
    w = random_lora(tiny.config, rank=2)
    folder = w.save_peft(tmp_path / "x")
    import json
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["lora_alpha"] = 8  # a PEFT adapter trained elsewhere with scaling 8/2 = 4
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    back = LoRAWeights.load_peft(folder)
    k = w.modules[0]
    torch.testing.assert_close(back.delta(k), 4 * w.delta(k))


def test_concat_sums_updates(tiny):
    w1, w2 = random_lora(tiny.config, 2, seed=1), random_lora(tiny.config, 5, seed=2)
    cat = LoRAWeights.concat([w1, w2])
    assert cat.rank == 7
    for k in cat.a:
        torch.testing.assert_close(cat.delta(k), w1.delta(k) + w2.delta(k))


def test_cap_rank_exact_at_true_rank_and_monotone(tiny):
    w = random_lora(tiny.config, 4, seed=3)
    redundant = LoRAWeights.concat([w, w, w])  # rank 12, true rank 4
    capped = redundant.cap_rank(4)
    assert capped.rank == 4
    for k in w.a:
        torch.testing.assert_close(capped.delta(k), 3 * w.delta(k), atol=1e-5, rtol=1e-4)
    full = random_lora(tiny.config, 16, seed=4)
    k = full.modules[0]
    errors = [torch.linalg.norm(full.cap_rank(r).delta(k) - full.delta(k)).item() for r in (1, 2, 4, 8, 12, 16)]
    assert all(a >= b - 1e-6 for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 1e-4 < errors[0]
    # the same as the best rank-r approximation of the dense matrix (Eckart-Young)
    s = torch.linalg.svdvals(full.delta(k).double())
    assert abs(errors[2] - s[4:].square().sum().sqrt().item()) < 1e-4


def test_validate_names_mismatches(tiny):
    w = random_lora(tiny.config, 2)
    w.validate(tiny.config)
    k = next(m for m in w.modules if m.endswith("down_proj"))
    w.a[k] = torch.zeros(2, 999)
    with pytest.raises(ModelMismatch, match=r"999"):
        w.validate(tiny.config)
    bad = LoRAWeights({"model.layers.9.mlp.down_proj": torch.zeros(2, 128)},
                      {"model.layers.9.mlp.down_proj": torch.zeros(64, 2)})
    with pytest.raises(ModelMismatch, match="only 2 layers"):
        bad.validate(tiny.config)
    h, v = tiny.config.hidden_size, tiny.config.vocab_size
    LoRAWeights({"lm_head": torch.zeros(2, h)}, {"lm_head": torch.zeros(v, 2)}).validate(tiny.config)  # the copy path
    with pytest.raises(ModelMismatch, match=f"lm_head: adapter is {h}->7"):
        LoRAWeights({"lm_head": torch.zeros(2, h)}, {"lm_head": torch.zeros(7, 2)}).validate(tiny.config)


def test_rejects_inconsistent_ranks():
    with pytest.raises(ValueError, match="one rank"):
        LoRAWeights({"m": torch.zeros(2, 4)}, {"m": torch.zeros(4, 3)})
