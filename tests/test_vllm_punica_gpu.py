"""The true-rank GPU punica wrapper: vLLM internals it relies on, and numbers.

Runs without a GPU.  The Triton kernels then run in Triton's interpreter (the
environment variable is set before the kernel module is imported, as in
``test_kernels.py``) and the wrapper is built on device "cpu".  vLLM's CPU
build disables Triton, so ``punica_gpu`` never imports ``LoRAKernelMeta``,
which ``PunicaWrapperGPU.__init__`` needs: the tests put vLLM's own
``LoRAKernelMeta`` into that module's namespace (the minimal path that lets
the constructor run; its metadata tensors work on CPU).  vLLM's own GPU ops
cannot run here, so where the wrapper hands a call to them the tests record
the call instead of checking its numbers.

The CUDA platform class cannot be imported on a CPU build either; its
``get_punica_wrapper`` is checked from source, and installation is exercised
on a stand-in platform whose enum says CUDA.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pathlib

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

vllm = pytest.importorskip("vllm")

import vllm.platforms  # noqa: E402
from vllm.config import LoRAConfig  # noqa: E402
from vllm.lora.layers import LoRAMapping  # noqa: E402
from vllm.lora.ops.triton_ops.lora_kernel_metadata import LoRAKernelMeta  # noqa: E402
from vllm.lora.punica_wrapper import punica_gpu, punica_selector  # noqa: E402
from vllm.lora.punica_wrapper.punica_gpu import PunicaWrapperGPU  # noqa: E402
from vllm.platforms import current_platform  # noqa: E402
from vllm.platforms.interface import Platform, PlatformEnum  # noqa: E402

from kernels import LoRABank, LoRASlice, reference_lora_linear  # noqa: E402
from tiny import stacked_lora_pool  # noqa: E402
from vllm_d2l import punica_common, vllm_punica_gpu  # noqa: E402
from vllm_d2l.punica_common import UnsupportedVLLMVersion  # noqa: E402
from vllm_d2l.vllm_punica_gpu import GroupedPunicaWrapperGPU, install_gpu_punica  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
STOCK_QUALNAME = "vllm.lora.punica_wrapper.punica_gpu.PunicaWrapperGPU"
_EMPTY = inspect.Parameter.empty
_POS, _KW, _VARKW = (
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
    inspect.Parameter.VAR_KEYWORD,
)

# PunicaWrapperGPU in vLLM 0.32: (name, kind, default) of every method we
# override or call; a change here means vllm_punica_gpu.py needs a look.
EXPECTED = {
    "__init__": [("self", _POS, _EMPTY), ("max_num_batched_tokens", _POS, _EMPTY),
                 ("max_batches", _POS, _EMPTY), ("device", _POS, _EMPTY), ("kwargs", _VARKW, _EMPTY)],
    "update_metadata": [("self", _POS, _EMPTY), ("mapping", _POS, _EMPTY),
                        ("lora_index_to_id", _POS, _EMPTY), ("max_loras", _POS, _EMPTY),
                        ("vocab_size", _POS, _EMPTY), ("kwargs", _VARKW, _EMPTY)],
    "add_shrink": [("self", _POS, _EMPTY), ("y", _POS, _EMPTY), ("x", _POS, _EMPTY),
                   ("lora_a_stacked", _POS, _EMPTY), ("scale", _POS, _EMPTY), ("kwargs", _VARKW, _EMPTY)],
    "add_expand": [("self", _POS, _EMPTY), ("y", _POS, _EMPTY), ("x", _POS, _EMPTY),
                   ("lora_b_stacked", _POS, _EMPTY), ("output_slices", _POS, _EMPTY),
                   ("offset_start", _POS, 0), ("add_inputs", _POS, True), ("kwargs", _VARKW, _EMPTY)],
    "add_lora_embedding": [("self", _POS, _EMPTY), ("y", _POS, _EMPTY), ("x", _POS, _EMPTY),
                           ("lora_b_stacked", _POS, _EMPTY), ("add_inputs", _POS, True),
                           ("kwargs", _VARKW, _EMPTY)],
    "add_lora_linear": [("self", _POS, _EMPTY), ("y", _POS, _EMPTY), ("x", _POS, _EMPTY),
                        ("lora_a_stacked", _POS, _EMPTY), ("lora_b_stacked", _POS, _EMPTY),
                        ("scale", _POS, _EMPTY), ("output_slices", _POS, _EMPTY),
                        ("buffer", _KW, None), ("kwargs", _VARKW, _EMPTY)],
    "add_lora_logits": [("self", _POS, _EMPTY), ("y", _POS, _EMPTY), ("x", _POS, _EMPTY),
                        ("lora_a_stacked", _POS, _EMPTY), ("lora_b_stacked", _POS, _EMPTY),
                        ("scale", _POS, _EMPTY), ("buffer", _KW, None), ("kwargs", _VARKW, _EMPTY)],
}
ENTRY_POINTS = sorted(set(EXPECTED) - {"__init__", "update_metadata"})


def _sig(fn) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


# ------------------------------------------------------------ vLLM contract
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vllm_gpu_wrapper_signatures_are_what_we_wrap(name):
    assert _sig(getattr(PunicaWrapperGPU, name)) == EXPECTED[name], f"vLLM changed {name}"


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_our_entry_points_keep_vllm_names(name):
    ours = [(n, k) for n, k, _ in _sig(getattr(GroupedPunicaWrapperGPU, name))]
    assert ours == [(n, k) for n, k, _ in EXPECTED[name]]


def test_vllm_gpu_internals_we_rely_on():
    root = pathlib.Path(vllm.__file__).parent
    cuda_src = (root / "platforms" / "cuda.py").read_text()
    assert "def get_punica_wrapper(cls) -> str:" in cuda_src and STOCK_QUALNAME in cuda_src
    # fallback passes add_inputs through kwargs; the constructor needs lora_config
    assert 'kwargs.pop("add_inputs", True)' in inspect.getsource(PunicaWrapperGPU.add_lora_linear)
    assert 'kwargs["lora_config"]' in inspect.getsource(PunicaWrapperGPU.__init__)
    # vLLM's own metadata stays prepared every step, for graphs that replay its ops
    assert "prepare_tensors" in inspect.getsource(PunicaWrapperGPU.update_metadata)
    # the graph-safe plan reads vLLM's persistent token-to-slot buffer, written in place each step
    assert "self._token_lora_indices[: base_indices.shape[0]].copy_(" in inspect.getsource(
        importlib.import_module("vllm.lora.punica_wrapper.punica_base").PunicaWrapperBase._update_base_metadata)
    assert GroupedPunicaWrapperGPU.__mro__[2] is PunicaWrapperGPU


# ------------------------------------------------------------ installation
class _FakeCuda(Platform):
    """Stands in for vLLM's CUDA platform, which a CPU build cannot import."""

    _enum = PlatformEnum.CUDA

    @classmethod
    def get_punica_wrapper(cls) -> str:
        return STOCK_QUALNAME


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(_FakeCuda, "get_punica_wrapper", _FakeCuda.__dict__["get_punica_wrapper"])
    platform = _FakeCuda()
    monkeypatch.setattr(vllm.platforms, "_current_platform", platform)
    monkeypatch.setattr(punica_selector, "current_platform", platform)
    monkeypatch.setattr(punica_gpu, "LoRAKernelMeta", LoRAKernelMeta, raising=False)
    return platform


def test_install_on_this_cpu_platform_returns_false_and_changes_nothing():
    cls = type(current_platform)
    assert current_platform.is_cpu()
    before = dict(cls.__dict__)
    selected = current_platform.get_punica_wrapper()
    assert install_gpu_punica() is False
    assert dict(cls.__dict__) == before
    assert current_platform.get_punica_wrapper() == selected


def test_install_on_cuda_is_idempotent_and_selects_our_wrapper(fake_cuda):
    assert install_gpu_punica() is True
    patched = _FakeCuda.__dict__["get_punica_wrapper"]
    assert install_gpu_punica() is True
    assert _FakeCuda.__dict__["get_punica_wrapper"] is patched
    cfg = LoRAConfig(max_loras=2, max_lora_rank=8)
    wrapper = punica_selector.get_punica_wrapper(16, max_batches=4, device="cpu", lora_config=cfg)
    assert type(wrapper) is GroupedPunicaWrapperGPU


def test_install_on_cuda_refuses_other_vllm(fake_cuda, monkeypatch):
    monkeypatch.setattr(vllm, "__version__", "0.40.1")
    with pytest.raises(UnsupportedVLLMVersion, match="0.40.1"):
        install_gpu_punica()
    assert fake_cuda.get_punica_wrapper() == STOCK_QUALNAME


def test_plugin_opt_out_keeps_vllm_ops(fake_cuda, monkeypatch):
    from vllm_d2l.serving import plugin

    monkeypatch.setenv("VLLM_D2L_GPU_LORA", "vllm")
    plugin._install_gpu_punica()
    assert fake_cuda.get_punica_wrapper() == STOCK_QUALNAME
    monkeypatch.delenv("VLLM_D2L_GPU_LORA")
    plugin._install_gpu_punica()
    assert fake_cuda.get_punica_wrapper() == vllm_punica_gpu.WRAPPER_QUALNAME


# ------------------------------------------------------------ numerics
SLOT_IDS = [11, 22, 33, 44]  # every slot taken
RANKS = [8, 3, 16, 1]  # true ranks, zero-padded to R_MAX in vLLM's buffers
R_MAX, D_IN, SLICES = 32, 24, (20, 12, 12)  # q, k, v
# per-token adapter id (0 = none): contiguous runs, a non-contiguous adapter
# (22) and base rows between them
TOKEN_IDS = [22, 22, 0, 0, 44, 11, 11, 11, 0, 33, 22, 0]
PROMPT_IDS = [22, 0, 44, 11, 0, 33, 22, 0]


def _slots(ids: list[int]) -> torch.Tensor:
    return torch.tensor([SLOT_IDS.index(i) if i else -1 for i in ids])


def _pool(d_out: int, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """vLLM's stacked buffers: A (S, 1, R_MAX, d_in), B (S, 1, d_out, R_MAX)."""
    a, b = stacked_lora_pool(RANKS, R_MAX, D_IN, d_out, seed)
    return a.to(dtype).to(DEVICE), b.to(dtype).to(DEVICE)


def _reference(y, x, ids, pools, scale=1.0, offsets=None) -> torch.Tensor:
    """kernels.reference at the true ranks, in fp32."""
    offsets = offsets or [sum(SLICES[:i]) for i in range(len(pools))]
    slices = [LoRASlice(LoRABank.stacked(a.float().cpu(), b.float().cpu(), RANKS), off)
              for (a, b), off in zip(pools, offsets)]
    return reference_lora_linear(y.float().cpu(), x.float().cpu(), _slots(ids), slices, scale)


@pytest.fixture(autouse=True)
def _interpreted_kernels():
    """Re-import the kernels if someone loaded them before the interpreter switch."""
    mod = importlib.import_module("kernels.triton_lora")
    if DEVICE == "cpu" and type(mod._shrink_kernel).__name__ != "InterpretedFunction":
        importlib.reload(mod)


@pytest.fixture
def make_wrapper(monkeypatch):
    monkeypatch.setattr(punica_gpu, "LoRAKernelMeta", LoRAKernelMeta, raising=False)

    def make(token_ids=TOKEN_IDS, prompt_ids=PROMPT_IDS) -> GroupedPunicaWrapperGPU:
        cfg = LoRAConfig(max_loras=len(SLOT_IDS), max_lora_rank=R_MAX)
        w = GroupedPunicaWrapperGPU(64, 8, DEVICE, lora_config=cfg)
        mapping = LoRAMapping(tuple(token_ids), tuple(prompt_ids), is_prefill=True)
        w.update_metadata(mapping, list(SLOT_IDS), len(SLOT_IDS), 100)
        return w

    return make


def _batch(dtype: torch.dtype, n: int = len(TOKEN_IDS), seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    pools = [_pool(width, i + 1, dtype) for i, width in enumerate(SLICES)]
    x = (torch.randn(n, D_IN, generator=g) * 0.5).to(dtype).to(DEVICE)
    y = torch.randn(n, sum(SLICES), generator=g).to(dtype).to(DEVICE)
    return x, y, pools


def _a(pools):
    return tuple(p[0] for p in pools)


def _b(pools):
    return tuple(p[1] for p in pools)


TOL = {torch.float32: dict(atol=1e-4, rtol=1e-4), torch.float16: dict(atol=2e-2, rtol=1e-2)}
BASE = torch.tensor(TOKEN_IDS) == 0


def test_true_ranks_are_found(make_wrapper):
    _, _, pools = _batch(torch.float32)
    w = make_wrapper()
    a, b = pools[0]
    assert w._ranks(a, 0) == tuple(RANKS)
    assert w._ranks(b, 1) == tuple(RANKS)
    assert w._bank(a, b).max_rank == max(RANKS) < R_MAX


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_add_lora_linear_qkv_matches_reference(make_wrapper, dtype):
    x, y, pools = _batch(dtype)
    got = y.clone()
    w = make_wrapper()
    w.add_lora_linear(got, x, _a(pools), _b(pools), 0.5, SLICES)
    torch.testing.assert_close(got.float().cpu(), _reference(y, x, TOKEN_IDS, pools, 0.5), **TOL[dtype])
    assert torch.equal(got.cpu()[BASE], y.cpu()[BASE])
    assert not w._fallback  # the Triton path ran (vLLM's GPU ops cannot run here anyway)


def test_add_lora_linear_lora_only_output(make_wrapper):
    """add_inputs=False (vLLM's dual-stream path) writes the LoRA delta alone;
    rows without an adapter get zero."""
    x, y, pools = _batch(torch.float32)
    got = y.clone()
    make_wrapper().add_lora_linear(got, x, _a(pools), _b(pools), 1.0, SLICES, add_inputs=False)
    want = _reference(torch.zeros_like(y), x, TOKEN_IDS, pools)
    torch.testing.assert_close(got.cpu(), want, **TOL[torch.float32])
    assert not got.cpu()[BASE].any()


def test_add_shrink_then_add_expand(make_wrapper):
    """The fully sharded layers' two calls, on vLLM's (slices, tokens, rank) fp32
    buffer; shrink clears it first, as vLLM's op does."""
    x, y, pools = _batch(torch.float32)
    w = make_wrapper()
    buf = torch.full((len(SLICES), len(TOKEN_IDS), R_MAX), 7.0, device=DEVICE)
    w.add_shrink(buf, x, _a(pools), 1.0)
    assert not buf.cpu()[:, BASE].any()
    wide = torch.cat([y[:, :4], y], 1)  # offset_start 4 into a wider output
    got = wide.clone()
    w.add_expand(got, buf, _b(pools), SLICES, offset_start=4, add_inputs=True)
    offsets = [4 + sum(SLICES[:i]) for i in range(len(SLICES))]
    torch.testing.assert_close(got.cpu(), _reference(wide, x, TOKEN_IDS, pools, offsets=offsets),
                               **TOL[torch.float32])
    assert torch.equal(got.cpu()[:, :4], wide.cpu()[:, :4])
    assert torch.equal(got.cpu()[BASE], wide.cpu()[BASE])


def test_add_lora_logits_uses_sampler_rows(make_wrapper):
    g = torch.Generator().manual_seed(9)
    a, b = _pool(SLICES[0], 1, torch.float32)
    x = torch.randn(len(PROMPT_IDS), D_IN, generator=g).to(DEVICE)
    y = torch.randn(len(PROMPT_IDS), SLICES[0] + 4, generator=g).to(DEVICE)  # logits wider than B
    got = y.clone()
    make_wrapper().add_lora_logits(got, x, a, b, 1.0)
    torch.testing.assert_close(got.cpu(), _reference(y, x, PROMPT_IDS, [(a, b)], offsets=[0]),
                               **TOL[torch.float32])


def test_add_lora_embedding(make_wrapper):
    _, y, pools = _batch(torch.float32)
    _, b = pools[0]
    g = torch.Generator().manual_seed(4)
    x = torch.randn(len(TOKEN_IDS), R_MAX, generator=g)  # looked-up A rows, zero past each rank
    for t, lora_id in enumerate(TOKEN_IDS):
        x[t, RANKS[SLOT_IDS.index(lora_id)] if lora_id else 0:] = 0
    got = y.clone()
    make_wrapper().add_lora_embedding(got, x.to(DEVICE), b, add_inputs=True)
    want = y.cpu().clone()
    for t, lora_id in enumerate(TOKEN_IDS):
        if lora_id:
            want[t, : b.shape[2]] += x[t] @ b[SLOT_IDS.index(lora_id), 0].cpu().T
    torch.testing.assert_close(got.cpu(), want, **TOL[torch.float32])


def test_rows_past_the_mapping_are_untouched(make_wrapper):
    """Batches padded past the mapping (CUDA-graph sizes): extra rows have no adapter."""
    x, y, pools = _batch(torch.float32, n=len(TOKEN_IDS) + 3)
    got = y.clone()
    make_wrapper().add_lora_linear(got, x, _a(pools), _b(pools), 1.0, SLICES)
    assert torch.equal(got.cpu()[-3:], y.cpu()[-3:])
    torch.testing.assert_close(got.cpu()[:-3], _reference(y[:-3], x[:-3], TOKEN_IDS, pools),
                               **TOL[torch.float32])


def _record_stock(monkeypatch, name: str) -> list:
    calls: list = []
    monkeypatch.setattr(PunicaWrapperGPU, name, lambda self, *a, **k: calls.append((a, k)))
    return calls


class _LaunchRecorder:
    """Stands in for a Triton kernel: launches it and remembers each launch,
    so a test can do what a CUDA graph does at replay."""

    def __init__(self, kernel, log: list):
        self.kernel, self.log = kernel, log

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.log.append((self.kernel, grid, args, kwargs))
            return self.kernel[grid](*args, **kwargs)
        return launch


def _capture(monkeypatch, w, y, x, pools, scale, **kwargs) -> list:
    """Call add_lora_linear as during a CUDA graph capture; returns the kernel launches."""
    tri = importlib.import_module("kernels.triton_lora")
    log: list = []
    monkeypatch.setattr(vllm_punica_gpu, "_capturing", lambda: True)
    for name in ("_shrink_kernel", "_expand_kernel"):
        monkeypatch.setattr(tri, name, _LaunchRecorder(getattr(tri, name), log))
    w.add_lora_linear(y, x, _a(pools), _b(pools), scale, SLICES, **kwargs)
    return log


def test_graph_capture_runs_our_kernels_from_fixed_state(make_wrapper, monkeypatch):
    x, y, pools = _batch(torch.float32)
    w = make_wrapper()
    w.add_lora_linear(y.clone(), x, _a(pools), _b(pools), 1.0, SLICES)  # the eager profiling run
    calls = _record_stock(monkeypatch, "add_lora_linear")
    monkeypatch.setattr(punica_common, "group_tokens", _no_host_grouping)  # nothing per-step on the host
    got = y.clone()
    log = _capture(monkeypatch, w, got, x, pools, 0.5, add_inputs=False)
    assert not calls and not w._fallback and len(log) == 2 * len(SLICES)
    torch.testing.assert_close(got.cpu(), _reference(torch.zeros_like(y), x, TOKEN_IDS, pools, 0.5),
                               **TOL[torch.float32])


def _no_host_grouping(*args, **kwargs):
    raise AssertionError("host-side grouping during a capture")


def test_graph_replay_follows_the_next_steps_batch_and_slots(make_wrapper, monkeypatch):
    """Record the launches of a captured call; then, as between two steps, vLLM
    moves a new adapter of another rank into slot 1, maps fewer tokens in a new
    order and writes new inputs into the captured buffers.  Replaying the
    recorded launches unchanged must give the new step's numbers."""
    x, y, pools = _batch(torch.float32)
    w = make_wrapper()
    w.add_lora_linear(y.clone(), x, _a(pools), _b(pools), 1.0, SLICES)
    y_static = y.clone()
    log = _capture(monkeypatch, w, y_static, x, pools, 0.5)

    new_rank, new_ids = 27, [11, 55, 33, 44]
    g = torch.Generator().manual_seed(21)
    for a, b in pools:  # vLLM's set_lora: the slot's padding stays zero
        a[1].zero_(); b[1].zero_()
        a[1, 0, :new_rank] = (torch.randn(new_rank, D_IN, generator=g) * 0.3).to(a.dtype)
        b[1, 0, :, :new_rank] = (torch.randn(b.shape[2], new_rank, generator=g) * 0.3).to(b.dtype)
    token_ids = [55, 0, 33, 55, 11, 11, 44, 55, 0]  # 9 of the captured 12 rows
    w.update_metadata(LoRAMapping(tuple(token_ids), tuple(token_ids), is_prefill=False),
                      new_ids, len(new_ids), 100)
    x_new, y_new, _ = _batch(torch.float32, seed=8)
    x.copy_(x_new)
    y_static.copy_(y_new)
    for kernel, grid, args, kwargs in log:  # the replay
        kernel[grid](*args, **kwargs)

    ranks = [RANKS[0], new_rank, RANKS[2], RANKS[3]]
    slots = torch.tensor([new_ids.index(i) if i else -1 for i in token_ids])
    slices = [LoRASlice(LoRABank.stacked(a.cpu(), b.cpu(), ranks), sum(SLICES[:i]))
              for i, (a, b) in enumerate(pools)]
    n = len(token_ids)
    want = reference_lora_linear(y_new[:n].cpu(), x_new[:n].cpu(), slots, slices, 0.5)
    torch.testing.assert_close(y_static[:n].cpu(), want, **TOL[torch.float32])
    assert torch.equal(y_static[n:], y_new[n:])  # padded rows of the captured size
    assert new_rank > RANKS[1]  # the replay used the rank written after the capture


def test_graph_capture_of_an_unseen_layer_records_vllm_ops(make_wrapper, monkeypatch):
    """No eager call yet, so no fixed-size ranks for this layer: vLLM's op is captured."""
    x, y, pools = _batch(torch.float32)
    w = make_wrapper()
    calls = _record_stock(monkeypatch, "add_lora_linear")
    monkeypatch.setattr(vllm_punica_gpu, "_capturing", lambda: True)
    got = y.clone()
    w.add_lora_linear(got, x, _a(pools), _b(pools), 1.0, SLICES, add_inputs=False)
    assert len(calls) == 1 and calls[0][1]["add_inputs"] is False
    assert torch.equal(got, y) and not w._fallback


def test_graph_capture_of_fewer_rows_than_the_mapping_records_vllm_ops(make_wrapper, monkeypatch):
    """The plan indexes every mapped row; a shorter tensor must not reach the kernels."""
    x, y, pools = _batch(torch.float32)
    w = make_wrapper()
    w.add_lora_linear(y.clone(), x, _a(pools), _b(pools), 1.0, SLICES)
    calls = _record_stock(monkeypatch, "add_lora_linear")
    monkeypatch.setattr(vllm_punica_gpu, "_capturing", lambda: True)
    w.add_lora_linear(y[:5].clone(), x[:5], _a(pools), _b(pools), 1.0, SLICES)
    assert len(calls) == 1 and not w._fallback


def test_failure_falls_back_instead_of_raising(make_wrapper, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(importlib.import_module("kernels.triton_lora"), "triton_lora_linear", broken)
    calls = _record_stock(monkeypatch, "add_lora_linear")
    x, y, pools = _batch(torch.float32)
    w = make_wrapper()
    w.add_lora_linear(y.clone(), x, _a(pools), _b(pools), 1.0, SLICES)
    assert w._fallback and len(calls) == 1
