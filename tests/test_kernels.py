"""Grouped LoRA kernels against the plain-torch reference.

The Triton kernels run in Triton's interpreter when no GPU is present (the
environment variable must be set before the kernel module is imported), on
small ragged shapes: empty segments, one token, rank 1, ranks that are not
multiples of the block sizes, many adapters, a rank of 2048, rows without an
adapter.
"""

from __future__ import annotations

import importlib
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

from kernels import (  # noqa: E402
    LoRABank,
    LoRASlice,
    SlotPlan,
    group_tokens,
    grouped_expand,
    grouped_lora_linear,
    grouped_shrink,
    reference_expand,
    reference_lora_linear,
    reference_shrink,
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _triton_module():
    """Import the kernels, re-importing if someone loaded them before the
    interpreter switch was set."""
    mod = importlib.import_module("kernels.triton_lora")
    if DEVICE == "cpu" and type(mod._shrink_kernel).__name__ != "InterpretedFunction":
        mod = importlib.reload(mod)
    return mod


# ------------------------------------------------------------------ fixtures
def make_pool(
    ranks: list[int],
    d_in: int,
    d_out: int,
    *,
    layout: str = "stacked",
    dtype: torch.dtype = torch.float32,
    pad_to: int | None = None,
    seed: int = 0,
) -> LoRABank:
    """Random adapters at the given ranks, in either layout; stacked padding is zero."""
    g = torch.Generator().manual_seed(seed)
    mats = [
        (torch.randn(r, d_in, generator=g) * 0.3, torch.randn(d_out, r, generator=g) * 0.3)
        for r in ranks
    ]
    if layout == "flat":
        a = torch.cat([m[0] for m in mats], 0) if ranks else torch.zeros(0, d_in)
        b = torch.cat([m[1] for m in mats], 1) if ranks else torch.zeros(d_out, 0)
        return LoRABank.flat(a.to(dtype).to(DEVICE), b.to(dtype).to(DEVICE), ranks)
    r_max = pad_to or max(ranks)
    a = torch.zeros(len(ranks), 1, r_max, d_in)  # vLLM's (S, 1, R, d_in)
    b = torch.zeros(len(ranks), 1, d_out, r_max)
    for s, (ma, mb) in enumerate(mats):
        a[s, 0, : ranks[s]] = ma
        b[s, 0, :, : ranks[s]] = mb
    return LoRABank.stacked(a.to(dtype).to(DEVICE), b.to(dtype).to(DEVICE), ranks)


def make_batch(slots: list[int], d_in: int, width: int, dtype: torch.dtype, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(len(slots), d_in, generator=g) * 0.5).to(dtype).to(DEVICE)
    y = torch.randn(len(slots), width, generator=g).to(dtype).to(DEVICE)
    return torch.tensor(slots, dtype=torch.long, device=DEVICE), x, y


def tol(dtype: torch.dtype) -> dict:
    return {
        torch.float32: dict(atol=1e-4, rtol=1e-4),
        torch.float16: dict(atol=2e-2, rtol=2e-2),
        torch.bfloat16: dict(atol=8e-2, rtol=4e-2),
    }[dtype]


# Ragged cases: (ranks, token slots, d_in, d_out)
CASES = {
    "mixed": ([3, 17, 1, 40], [0, 0, 1, -1, 3, 3, 3, 2, -1, 1, 0], 40, 50),
    "one_token": ([5], [0], 24, 20),
    "rank1_only": ([1, 1], [1, 0, 1], 16, 16),
    "empty_segment": ([8, 16, 24], [2, 2, -1, 2], 32, 33),  # slots 0, 1 hold no tokens
    "all_base": ([4, 4], [-1, -1, -1], 16, 16),
    "no_tokens": ([4], [], 16, 16),
    "long_segment": ([9, 33], [0] * 20 + [1] * 19 + [-1] * 3, 48, 70),  # 64-row tiles
    "interleaved": ([6, 2, 11], [0, 1, 2, 0, 1, 2, -1, 0, 2, 2], 20, 30),
    "many_adapters": (
        [(7 * s) % 23 + 1 for s in range(40)],
        [(5 * t) % 41 - 1 for t in range(60)],
        24,
        18,
    ),
}


# ------------------------------------------------------------------ grouping
def test_group_tokens_contiguous_runs_are_slices():
    seg = group_tokens(torch.tensor([2, 2, -1, 0, 0, 0, 2]))
    groups = dict(seg.groups)
    assert groups[0] == slice(3, 6)
    assert torch.equal(groups[2], torch.tensor([0, 1, 6]))
    assert seg.seg_slot.tolist() == [0, 2]
    assert seg.seg_len.tolist() == [3, 3]
    assert seg.order.tolist() == [3, 4, 5, 0, 1, 6]


def test_group_tokens_nothing_to_do():
    for slots in ([], [-1, -1]):
        seg = group_tokens(torch.tensor(slots, dtype=torch.long))
        assert seg.groups == () and seg.schedule(16).num_tiles == 0


def test_tile_schedule_covers_each_segment_once():
    seg = group_tokens(torch.tensor([0] * 5 + [1] * 17 + [2]))
    sched = seg.schedule(16)
    assert sched.tile_segment.tolist() == [0, 1, 1, 2]
    assert sched.tile_row.tolist() == [0, 0, 16, 0]


def test_flat_and_stacked_views_agree():
    ranks = [3, 1, 5]
    stacked = make_pool(ranks, 8, 6)
    a = torch.cat([stacked.a_of(s) for s in range(3)], 0)
    b = torch.cat([stacked.b_of(s) for s in range(3)], 1)
    flat = LoRABank.flat(a, b, ranks)
    for s in range(3):
        assert torch.equal(flat.a_of(s), stacked.a_of(s))
        assert torch.equal(flat.b_of(s), stacked.b_of(s))


# ------------------------------------------------------------------ CPU path
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("layout", ["stacked", "flat"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("form", ["grouped", "dense"])
def test_cpu_grouped_lora_linear(case, layout, dtype, form, monkeypatch):
    """Both forms of interleaved batches: per-group matmuls, and the dense masked one."""
    import kernels.cpu_grouped as cg
    monkeypatch.setattr(cg, "DENSE_MAX_WORK", 0 if form == "grouped" else 10**9)
    ranks, slots, d_in, d_out = CASES[case]
    bank = make_pool(ranks, d_in, d_out, layout=layout, dtype=dtype)
    other = make_pool(ranks, d_in, d_out + 3, layout=layout, dtype=dtype, seed=7)
    slices = [LoRASlice(bank, 0), LoRASlice(other, d_out)]
    idx, x, y = make_batch(slots, d_in, 2 * d_out + 3, dtype)
    want = reference_lora_linear(y, x, idx, slices, scale=0.5)
    got = y.clone()
    grouped_lora_linear(got, x, slices, group_tokens(idx), scale=0.5)
    torch.testing.assert_close(got.float().cpu(), want, **tol(dtype))
    base = idx < 0
    assert torch.equal(got[base], y[base]), "rows without an adapter must stay untouched"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_grouped_shrink_expand(case, dtype):
    ranks, slots, d_in, d_out = CASES[case]
    bank = make_pool(ranks, d_in, d_out, dtype=dtype, pad_to=max(ranks) + 5)
    idx, x, y = make_batch(slots, d_in, d_out + 4, dtype)
    seg = group_tokens(idx)
    width = max(ranks) + 5
    h = torch.full((len(slots), width), 7.0)  # stale values must not leak into y
    grouped_shrink(h, x, bank, seg, scale=2.0)
    want_h = reference_shrink(x, idx, bank, 2.0, width)
    adapter_rows = idx >= 0
    torch.testing.assert_close(h[adapter_rows], want_h[adapter_rows], **tol(dtype))
    for add in (True, False):
        got = y.clone()
        grouped_expand(got, h, bank, seg, out_offset=3, add=add)
        want = reference_expand(y, h, idx, bank, 3, add=add)
        torch.testing.assert_close(got.float(), want, **tol(dtype))
        assert torch.equal(got[~adapter_rows], y[~adapter_rows])


def test_cpu_true_rank_skips_padding_exactly():
    """Slicing a padded slot to its true rank changes nothing numerically."""
    ranks = [2, 9]
    padded = make_pool(ranks, 16, 12, pad_to=32)
    full = LoRABank.stacked(padded.a, padded.b)  # every slot at rank 32
    idx, x, y = make_batch([0, 1, 1, -1], 16, 12, torch.float32)
    y1, y2 = y.clone(), y.clone()
    seg = group_tokens(idx)
    grouped_lora_linear(y1, x, [LoRASlice(padded)], seg)
    grouped_lora_linear(y2, x, [LoRASlice(full)], seg)
    torch.testing.assert_close(y1, y2)


# ------------------------------------------------------------------ Triton
TRITON_DTYPES = [torch.float32, torch.float16]  # interpreter bf16 tl.dot is unreliable


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", TRITON_DTYPES)
def test_triton_lora_linear(case, dtype):
    tri = _triton_module()
    ranks, slots, d_in, d_out = CASES[case]
    layout = "flat" if case in ("mixed", "interleaved", "many_adapters") else "stacked"
    bank = make_pool(ranks, d_in, d_out, layout=layout, dtype=dtype)
    other = make_pool(ranks, d_in, 17, layout=layout, dtype=dtype, seed=3)
    slices = [LoRASlice(bank, 2), LoRASlice(other, 2 + d_out)]
    idx, x, y = make_batch(slots, d_in, d_out + 21, dtype)
    want = reference_lora_linear(y, x, idx, slices, scale=0.25)
    got = y.clone()
    tri.triton_lora_linear(got, x, slices, group_tokens(idx), scale=0.25)
    torch.testing.assert_close(got.float().cpu(), want, **tol(dtype))
    base = idx < 0
    assert torch.equal(got[base], y[base])


@pytest.mark.parametrize("split_k", [1, 3])
@pytest.mark.parametrize("dtype", TRITON_DTYPES)
def test_triton_shrink_split_k(split_k, dtype):
    tri = _triton_module()
    ranks, slots, d_in, d_out = CASES["mixed"]
    d_in = 200  # several K blocks, last one ragged
    bank = make_pool(ranks, d_in, d_out, dtype=dtype)
    idx, x, _ = make_batch(slots, d_in, d_out, dtype)
    h = torch.zeros(len(slots), bank.max_rank, device=DEVICE)
    tri.triton_shrink(h, x, bank, group_tokens(idx), 1.5, split_k=split_k)
    want = reference_shrink(x, idx, bank, 1.5)
    torch.testing.assert_close(h.cpu(), want, **tol(dtype))


def test_triton_expand_overwrite():
    tri = _triton_module()
    ranks, slots, d_in, d_out = CASES["interleaved"]
    bank = make_pool(ranks, d_in, d_out)
    idx, x, y = make_batch(slots, d_in, d_out, torch.float32)
    h = reference_shrink(x, idx, bank).to(DEVICE)
    got = y.clone()
    tri.triton_expand(got, h, bank, group_tokens(idx), add=False)
    torch.testing.assert_close(got.cpu(), reference_expand(y, h, idx, bank, add=False))


def test_triton_rank_2048():
    """A 256-chunk document adapter next to a rank-8 one, no padding."""
    tri = _triton_module()
    ranks = [2048, 8]
    bank = make_pool(ranks, 16, 16, layout="flat")
    idx, x, y = make_batch([0, 1, 0, -1], 16, 16, torch.float32)
    want = reference_lora_linear(y, x, idx, [LoRASlice(bank)], 0.05)
    got = y.clone()
    tri.triton_lora_linear(got, x, [LoRASlice(bank)], group_tokens(idx), 0.05)
    torch.testing.assert_close(got.cpu(), want, atol=1e-3, rtol=1e-3)


def test_triton_padded_mode_matches_on_zero_padded_pool():
    tri = _triton_module()
    ranks, slots, d_in, d_out = CASES["mixed"]
    bank = make_pool(ranks, d_in, d_out, pad_to=48)
    idx, x, y = make_batch(slots, d_in, d_out, torch.float32)
    want = reference_lora_linear(y, x, idx, [LoRASlice(bank)])
    got = y.clone()
    tri.triton_lora_linear(got, x, [LoRASlice(bank)], group_tokens(idx), padded=True)
    torch.testing.assert_close(got.cpu(), want, atol=1e-4, rtol=1e-4)


def test_cpu_scattered_slices_and_wide_packs():
    """Slices that leave a gap in the output, and packs past the packing rank."""
    ranks, slots, d_in, d_out = CASES["interleaved"]
    banks = [make_pool([r * 12 for r in ranks], d_in, d_out, seed=s) for s in range(2)]
    slices = [LoRASlice(banks[0], 0), LoRASlice(banks[1], d_out + 5)]
    idx, x, y = make_batch(slots, d_in, 2 * d_out + 5, torch.float32)
    want = reference_lora_linear(y, x, idx, slices)
    got = y.clone()
    grouped_lora_linear(got, x, slices, group_tokens(idx))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert torch.equal(got[:, d_out : d_out + 5], y[:, d_out : d_out + 5])


def test_cpu_dense_form_skips_slots_without_rank(monkeypatch):
    """A batch mixing an adapter with no rank in this layer still takes the dense form, over the
    live slots only; that adapter's rows get nothing added."""
    import kernels.cpu_grouped as cg
    monkeypatch.setattr(cg, "DENSE_MAX_WORK", 10**9)
    pool = make_pool([4, 1, 6], 16, 12)
    bank = LoRABank.stacked(pool.a, pool.b, [4, 0, 6])  # slot 1's adapter does not touch this layer
    idx, x, y = make_batch([0, 1, 2, 1, 0, -1], 16, 12, torch.float32)
    packed = cg.PackedSlices([LoRASlice(bank)])
    assert packed.dense((0, 1, 2)) is not None and packed.live_slots == {0, 2}
    want = reference_lora_linear(y, x, idx, [LoRASlice(bank)])
    got = y.clone()
    grouped_lora_linear(got, x, packed, group_tokens(idx))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert torch.equal(got[idx == 1], y[idx == 1])


def test_cpu_dense_form_runs_a_shared_a_once(monkeypatch):
    """Adapters of one fixed-rank generator share A: the dense form stores it once and repeats
    its columns for each slot's B, with the same result as separate blocks."""
    import kernels.cpu_grouped as cg
    monkeypatch.setattr(cg, "DENSE_MAX_WORK", 10**9)
    pool = make_pool([5, 5, 3, 5], 16, 12)
    pool.a[1], pool.a[3] = pool.a[0].clone(), pool.a[0].clone()  # slots 0, 1, 3: one A, three B
    bank = LoRABank.stacked(pool.a, pool.b, [5, 5, 3, 5])
    idx, x, y = make_batch([3, 0, 1, 2, 1, -1, 3, 0], 16, 12, torch.float32)
    packed = cg.PackedSlices([LoRASlice(bank)])
    dense = packed.dense((0, 1, 2, 3))
    assert dense.at.shape[1] == 5 + 3 and dense.bt.shape[0] == 18 and dense.cols.tolist() == \
        [0, 1, 2, 3, 4] * 2 + [5, 6, 7] + [0, 1, 2, 3, 4]
    assert packed.dense((0, 2)).cols is None  # nothing shared: no repeat
    want = reference_lora_linear(y, x, idx, [LoRASlice(bank)])
    got = y.clone()
    grouped_lora_linear(got, x, packed, group_tokens(idx), scale=1.0)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert torch.equal(got[idx == -1], y[idx == -1])


# ------------------------------------------------------------------ fixed-shape plan
@pytest.mark.parametrize("case", sorted(CASES))
def test_slot_plan_matches_host_grouping(case):
    """Same segments as group_tokens; surplus tiles land on the empty last segment."""
    ranks, slots, _, _ = CASES[case]
    idx = torch.tensor(slots, dtype=torch.long)
    plan = SlotPlan.allocate(capacity=len(slots) + 5, num_slots=len(ranks), block_m=16, device="cpu")
    plan.update(idx)
    seg = group_tokens(idx)
    lens = plan.seg_len.tolist()
    assert lens[-1] == 0
    for slot, start, n in zip(seg.seg_slot.tolist(), seg.seg_start.tolist(), seg.seg_len.tolist()):
        assert lens[slot] == n
        p0 = plan.seg_start[slot].item()
        assert plan.order[p0 : p0 + n].tolist() == seg.order[start : start + n].tolist()
    assert sum(lens) == int((idx >= 0).sum())
    sched = plan.for_rows(len(slots)).schedule(16)
    covered = {}
    for s_, r in zip(sched.tile_segment.tolist(), sched.tile_row.tolist()):
        if r < lens[s_]:
            covered.setdefault(s_, []).append(r)
    assert covered == {s_: list(range(0, n, 16)) for s_, n in enumerate(lens) if n}


def test_slot_plan_update_reads_nothing_on_the_host():
    """Meta tensors have no data: any host read of the batch would raise."""
    plan = SlotPlan.allocate(capacity=64, num_slots=4, block_m=16, device="meta")
    plan.update(torch.empty(40, dtype=torch.long, device="meta"))
    assert plan.for_rows(48).tiles.num_tiles == 3 + 4


@pytest.mark.parametrize("dtype", TRITON_DTYPES)
def test_triton_on_slot_plan(dtype):
    """Upper-bound grid over a stale-sized buffer: rows past the mapping and
    rows without an adapter stay untouched; the rest match the reference."""
    tri = _triton_module()
    ranks, slots, d_in, d_out = CASES["many_adapters"]
    bank = make_pool(ranks, d_in, d_out, dtype=dtype, pad_to=32)
    padded_bank = LoRABank.stacked(bank.a, bank.b)  # host ranks = buffer rank; true ranks on the device
    padded_bank.set_device_ranks(ranks)
    rows = len(slots) + 7  # a captured batch size above this step's token count
    plan = SlotPlan.allocate(capacity=128, num_slots=len(ranks), block_m=16, device=DEVICE)
    plan.update(torch.randint(-1, len(ranks), (100,), device=DEVICE))  # an earlier, longer step
    idx, x, y = make_batch(slots + [0] * 7, d_in, d_out + 3, dtype)
    plan.update(idx[: len(slots)])
    want = reference_lora_linear(y, x, torch.cat([idx[: len(slots)], torch.full((7,), -1)]),
                                 [LoRASlice(bank, 3)], scale=0.5)
    got = y.clone()
    tri.triton_lora_linear(got, x, [LoRASlice(padded_bank, 3)], plan.for_rows(rows), scale=0.5)
    torch.testing.assert_close(got.float().cpu(), want, **tol(dtype))
    assert torch.equal(got[len(slots):], y[len(slots):])
