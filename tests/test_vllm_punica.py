"""The grouped CPU punica wrapper: vLLM internals it relies on, and numbers.

The first group of tests pins down the parts of vLLM 0.32 the patch depends
on (names, signatures, call sites); when one fails after a vLLM upgrade,
``vllm_d2l/vllm_punica.py`` needs a look before ``SUPPORTED_VLLM`` is widened.
The second group checks the wrapper numerically on a mixed batch with every
slot taken, the case where vLLM's own CPU path applies the last adapter to
rows that have none.
"""

from __future__ import annotations

import inspect
import pathlib
import re

import pytest
import torch

vllm = pytest.importorskip("vllm")

from vllm.lora.layers import LoRAMapping  # noqa: E402
from vllm.lora.punica_wrapper import punica_selector  # noqa: E402
from vllm.lora.punica_wrapper.punica_base import PunicaWrapperBase  # noqa: E402
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU  # noqa: E402
from vllm.platforms import current_platform  # noqa: E402

from tiny import stacked_lora_pool  # noqa: E402
from vllm_d2l import vllm_punica  # noqa: E402
from vllm_d2l.vllm_punica import (  # noqa: E402
    GroupedPunicaWrapperCPU,
    UnsupportedVLLMVersion,
    install_cpu_punica,
)

OVERRIDDEN = {
    "update_metadata",
    "add_shrink",
    "add_expand",
    "add_lora_linear",
    "add_lora_embedding",
    "add_lora_logits",
}


# ------------------------------------------------------------ vLLM contract
def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_vllm_version_is_supported():
    from vllm_d2l.serving.compat import is_supported

    assert is_supported(vllm.__version__) and vllm_punica.SUPPORTED_VLLM == ">=0.32,<0.33"


def test_platform_names_the_wrapper_by_qualname():
    cls = type(current_platform)
    assert current_platform.is_cpu()
    assert isinstance(inspect.getattr_static(cls, "get_punica_wrapper"), classmethod)
    src = inspect.getsource(punica_selector.get_punica_wrapper)
    assert "current_platform.get_punica_wrapper()" in src
    assert "resolve_obj_by_qualname" in src


def test_wrapper_constructor_and_metadata_signatures():
    assert _params(PunicaWrapperCPU.__init__)[:4] == [
        "self", "max_num_batched_tokens", "max_batches", "device"
    ]
    assert _params(PunicaWrapperBase.update_metadata)[:5] == [
        "self", "mapping", "lora_index_to_id", "max_loras", "vocab_size"
    ]
    for name in ("token_lora_indices", "sampler_indices"):
        assert isinstance(inspect.getattr_static(PunicaWrapperBase, name), property)
    assert {"index_mapping", "prompt_mapping", "is_prefill"} <= set(
        LoRAMapping.__dataclass_fields__
    )


@pytest.mark.parametrize("name", sorted(OVERRIDDEN - {"update_metadata"}))
def test_overridden_methods_keep_vllm_signatures(name):
    ours = _params(getattr(GroupedPunicaWrapperCPU, name))
    theirs = _params(getattr(PunicaWrapperCPU, name))
    assert ours == theirs, f"{name}: vLLM now has {theirs}"


def test_layers_call_only_methods_we_handle():
    """Every punica method a LoRA layer calls is either ours or harmless
    inherited code (full-linear heads select rows with the index mask)."""
    root = pathlib.Path(vllm.__file__).parent / "lora"
    called = set()
    for path in root.rglob("*.py"):
        called |= set(re.findall(r"punica_wrapper\.([a-z_]+)\(", path.read_text()))
    assert called, "no punica calls found: vLLM's layout changed"
    assert called - OVERRIDDEN <= {"apply_lora_full_linear"}, called - OVERRIDDEN
    manager = (root / "model_manager.py").read_text()
    assert "get_punica_wrapper(" in manager and "max_batches=" in manager


def test_stacked_buffer_layout():
    """Linear layers stack A as (slots, 1, rank, in) and B as (slots, 1, out, rank)."""
    from vllm.lora.layers.base_linear import BaseLinearLayerWithLoRA

    src = inspect.getsource(BaseLinearLayerWithLoRA.create_lora_weights)
    compact = re.sub(r"\s+", "", src)
    assert "max_loras,1,lora_a_out_size,self.input_size" in compact
    assert "max_loras,1,lora_b_out_size,lora_config.max_lora_rank" in compact


# ------------------------------------------------------------ installation
@pytest.fixture
def restore_platform(monkeypatch):
    cls = type(current_platform)
    monkeypatch.setattr(cls, "get_punica_wrapper", cls.__dict__["get_punica_wrapper"])
    return cls


def test_install_is_idempotent_and_selects_our_wrapper(restore_platform):
    assert install_cpu_punica() is True
    patched = restore_platform.__dict__["get_punica_wrapper"]
    assert install_cpu_punica() is True
    assert restore_platform.__dict__["get_punica_wrapper"] is patched
    wrapper = punica_selector.get_punica_wrapper(16, max_batches=4, device="cpu")
    assert type(wrapper) is GroupedPunicaWrapperCPU


def test_install_refuses_other_vllm(monkeypatch, restore_platform):
    monkeypatch.setattr(vllm, "__version__", "0.40.1")
    with pytest.raises(UnsupportedVLLMVersion, match="0.40.1"):
        install_cpu_punica()


# ------------------------------------------------------------ numerics
SLOT_IDS = [11, 22, 33, 44]  # every slot taken
RANKS = [8, 3, 16, 1]
R_MAX, D_IN, SLICES = 16, 24, (20, 12)
# per-token adapter id (0 = none), requests as contiguous runs plus a
# non-contiguous adapter (22) and base rows between them
TOKEN_IDS = [22, 22, 0, 0, 44, 11, 11, 11, 0, 33, 22, 0]
PROMPT_IDS = [22, 0, 44, 11, 0, 33, 22, 0]


def _stacked_pool(d_out: int, seed: int):
    return stacked_lora_pool(RANKS, R_MAX, D_IN, d_out, seed)


def _wrapper(cls=GroupedPunicaWrapperCPU, token_ids=TOKEN_IDS, prompt_ids=PROMPT_IDS):
    w = cls(max_num_batched_tokens=64, max_batches=8, device="cpu")
    mapping = LoRAMapping(tuple(token_ids), tuple(prompt_ids), is_prefill=True)
    w.update_metadata(mapping, list(SLOT_IDS), len(SLOT_IDS) + 1, 100)
    return w


def _expected(y, x, ids, pools, offsets, scale=1.0):
    """Each row on its own: base rows unchanged, adapter rows + their LoRA."""
    out = y.clone()
    for t, lora_id in enumerate(ids):
        if lora_id == 0:
            continue
        s = SLOT_IDS.index(lora_id)
        for (a, b), off in zip(pools, offsets):
            delta = (x[t] @ a[s, 0].T) @ b[s, 0].T * scale
            out[t, off : off + b.shape[2]] += delta
    return out


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(5)
    pools = [_stacked_pool(SLICES[0], 1), _stacked_pool(SLICES[1], 2)]
    x = torch.randn(len(TOKEN_IDS), D_IN, generator=g)
    y = torch.randn(len(TOKEN_IDS), sum(SLICES), generator=g)
    return x, y, pools


def test_true_ranks_are_found(batch):
    _, _, pools = batch
    w = _wrapper()
    (a, b), _ = pools
    assert w._ranks(a, 0) == tuple(RANKS)
    assert w._ranks(b, 1) == tuple(RANKS)


def test_add_lora_linear_mixed_batch_all_slots_full(batch):
    x, y, pools = batch
    want = _expected(y, x, TOKEN_IDS, pools, (0, SLICES[0]), scale=0.5)
    got = y.clone()
    _wrapper().add_lora_linear(
        got, x, tuple(p[0] for p in pools), tuple(p[1] for p in pools), 0.5, SLICES
    )
    torch.testing.assert_close(got, want)
    base = torch.tensor(TOKEN_IDS) == 0
    assert torch.equal(got[base], y[base])

    # Adapter rows agree with vLLM's own wrapper (same reading of the
    # buffers); its base rows are where the wrap-around bug shows.
    stock = y.clone()
    _wrapper(PunicaWrapperCPU).add_lora_linear(
        stock, x, tuple(p[0] for p in pools), tuple(p[1] for p in pools), 0.5, SLICES
    )
    torch.testing.assert_close(got[~base], stock[~base])
    assert not torch.equal(stock[base], y[base]), "upstream fixed the wrap-around?"


def test_add_shrink_then_add_expand(batch):
    x, y, pools = batch
    w = _wrapper()
    buf = torch.zeros(2, len(TOKEN_IDS), R_MAX)
    w.add_shrink(buf, x, tuple(p[0] for p in pools), 1.0)
    got = y.clone()
    w.add_expand(got, buf, tuple(p[1] for p in pools), SLICES, offset_start=0, add_input=True)
    torch.testing.assert_close(got, _expected(y, x, TOKEN_IDS, pools, (0, SLICES[0])))
    base = torch.tensor(TOKEN_IDS) == 0
    assert torch.equal(got[base], y[base])


def test_add_lora_logits_uses_sampler_rows(batch):
    _, _, pools = batch
    (a, b), _ = pools
    g = torch.Generator().manual_seed(9)
    x = torch.randn(len(PROMPT_IDS), D_IN, generator=g)
    y = torch.randn(len(PROMPT_IDS), SLICES[0] + 4, generator=g)  # logits wider than B
    got = y.clone()
    _wrapper().add_lora_logits(got, x, a, b, 1.0)
    torch.testing.assert_close(got, _expected(y, x, PROMPT_IDS, [(a, b)], (0,)))


def test_add_lora_embedding(batch):
    _, y, pools = batch
    (_, b), _ = pools
    g = torch.Generator().manual_seed(4)
    x = torch.randn(len(TOKEN_IDS), R_MAX, generator=g)  # looked-up A rows
    got = y.clone()
    _wrapper().add_lora_embedding(got, x, b, add_input=True)
    want = y.clone()
    for t, lora_id in enumerate(TOKEN_IDS):
        if lora_id:
            s = SLOT_IDS.index(lora_id)
            want[t, : b.shape[2]] += x[t] @ b[s, 0].T
    torch.testing.assert_close(got, want)


def test_bf16_matches_fp32_reference(batch):
    x, y, pools = batch
    pools16 = [(a.bfloat16(), b.bfloat16()) for a, b in pools]
    got = y.bfloat16()
    _wrapper().add_lora_linear(
        got, x.bfloat16(), tuple(p[0] for p in pools16), tuple(p[1] for p in pools16),
        1.0, SLICES,
    )
    want = _expected(y.bfloat16().float(), x.bfloat16().float(),
                     TOKEN_IDS, [(a.float(), b.float()) for a, b in pools16], (0, SLICES[0]))
    torch.testing.assert_close(got.float(), want, atol=0.1, rtol=0.05)


def test_rows_past_the_mapping_are_untouched(batch):
    x, y, pools = batch
    extra_x = torch.cat([x, torch.randn(3, D_IN)])
    extra_y = torch.cat([y, torch.randn(3, sum(SLICES))])
    got = extra_y.clone()
    _wrapper().add_lora_linear(
        got, extra_x, tuple(p[0] for p in pools), tuple(p[1] for p in pools), 1.0, SLICES
    )
    assert torch.equal(got[-3:], extra_y[-3:])


def test_failure_falls_back_instead_of_raising(batch, monkeypatch):
    x, y, pools = batch

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(vllm_punica, "grouped_lora_linear", broken)
    w = _wrapper()
    got = y.clone()
    w.add_lora_linear(got, x, tuple(p[0] for p in pools), tuple(p[1] for p in pools), 1.0, SLICES)
    assert w._fallback
    stock = y.clone()
    _wrapper(PunicaWrapperCPU).add_lora_linear(
        stock, x, tuple(p[0] for p in pools), tuple(p[1] for p in pools), 1.0, SLICES
    )
    torch.testing.assert_close(got, stock)
