"""The feedback-matrix builder: sparsity, rank, fan-out, balance, refusals and fixed-point tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdfa.model.arithmetic import FixedFormat, LfsrBank, lfsr_seed, quantize
from ssdfa.model.feedback import (
    POWER_OF_TWO_LEVELS,
    FeedbackMatrix,
    build_feedback,
    check_feedback_shape,
    feedback_bound,
    lfsr_connectivity,
)
from ssdfa.model.network import NetworkSpec


@st.composite
def feasible_shapes(draw):
    """(N, M, s, r) with r * s >= M, s <= M and r <= min(N, M)."""
    outputs = draw(st.integers(1, 12))
    neurons = draw(st.integers(1, 40))
    s = draw(st.integers(1, outputs))
    full = min(neurons, outputs)
    low = -(-outputs // s)  # ceil(M / s)
    if low > full:
        neurons = max(neurons, low)
        full = min(neurons, outputs)
    r = draw(st.integers(low, full))
    return neurons, outputs, s, r


@settings(max_examples=60, deadline=None)
@given(feasible_shapes(), st.booleans(), st.booleans(), st.integers(0, 2**32))
def test_builder_gives_the_requested_sparsity_rank_and_covers_every_error(shape, balanced, power_of_two, seed):
    neurons, outputs, s, r = shape
    fb = build_feedback(
        neurons, outputs, connections=s, rank=r, balanced=balanced, power_of_two=power_of_two, seed=seed
    )
    context = f"N={neurons} M={outputs} s={s} r={r} balanced={balanced} p2={power_of_two} seed={seed}"
    assert fb.matrix.shape == (neurons, outputs), context
    assert np.all(np.count_nonzero(fb.matrix, axis=1) == s), context
    assert fb.rank == r, context
    assert fb.fan_out.min() >= 1, context
    assert fb.fan_out.sum() == neurons * s, context
    assert fb.sparsity == pytest.approx(1 - s / outputs), context
    # The tables describe the matrix.
    assert np.all(np.diff(fb.index, axis=1) > 0), context
    assert np.array_equal(fb.matrix[np.arange(neurons)[:, None], fb.index], fb.value), context
    bound = feedback_bound(neurons, outputs, s)
    assert np.abs(fb.value).max() <= bound + 1e-15, context


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 16), st.integers(1, 200), st.integers(0, 2**20))
def test_balanced_full_rank_fan_out_differs_by_at_most_one(outputs, extra, seed):
    neurons = outputs + extra
    for s in sorted({1, max(1, outputs // 2), outputs}):
        fb = build_feedback(neurons, outputs, connections=s, balanced=True, seed=seed)
        fan_out = fb.fan_out
        assert fan_out.max() - fan_out.min() <= 1, f"N={neurons} M={outputs} s={s} seed={seed}: {fan_out}"
        assert fb.rank == min(neurons, outputs)


def test_ssdfa_and_dfa_are_the_two_extremes():
    ssdfa = build_feedback(100, 10, connections=1, seed=3)
    dfa = build_feedback(100, 10, seed=3)
    assert ssdfa.connections == 1 and ssdfa.sparsity == pytest.approx(0.9) and ssdfa.rank == 10
    assert dfa.connections == 10 and dfa.sparsity == 0 and dfa.rank == 10
    # Section 6 of the paper: dense [-1/N, 1/N]; SSDFA the same bound with N = layer size.
    assert np.abs(dfa.value).max() <= 1 / 100 and np.abs(ssdfa.value).max() <= 1 / 100


def test_sparse_bound_divides_by_the_connections():
    assert feedback_bound(100, 10, 10) == pytest.approx(1 / 100)
    assert feedback_bound(100, 10, 1) == pytest.approx(1 / 100)
    assert feedback_bound(100, 10, 4) == pytest.approx(1 / 400)


def test_lower_rank_rows_are_scaled_copies_of_the_independent_ones():
    fb = build_feedback(60, 10, connections=4, rank=3, seed=11)
    patterns = {tuple(row) for row in fb.index}
    assert len(patterns) == 3
    for pattern in patterns:
        rows = fb.value[np.all(fb.index == pattern, axis=1)]
        assert np.linalg.matrix_rank(rows) == 1


@pytest.mark.parametrize(
    ("neurons", "outputs", "s", "r", "message"),
    [
        (100, 10, 11, None, "s=11"),
        (100, 10, 1, 5, "rank r=5 x sparsity s=1"),
        (100, 10, 3, 3, "rank r=3 x sparsity s=3 = 9"),
        (100, 10, 2, 11, "rank r=11"),
        (5, 10, 1, None, "a layer of 5 neurons (or channels) with s=1 feedback connections each"),
        (100, 10, 0, None, "not 0"),
        (0, 10, 1, None, "neurons must be a positive integer, not 0"),
    ],
)
def test_builder_refuses_sparsity_and_rank_that_miss_errors(neurons, outputs, s, r, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_feedback(neurons, outputs, connections=s, rank=r)


def test_network_spec_refuses_feedback_that_misses_classes():
    with pytest.raises(ValueError, match="rank r=3 x sparsity s=2"):
        NetworkSpec((64, 100, 10), algorithm="sdfa", connections=2, rank=3)
    with pytest.raises(ValueError, match="ssdfa has exactly one connection"):
        NetworkSpec((64, 100, 10), algorithm="ssdfa", connections=2)


def test_check_feedback_shape_fills_in_dense_and_full_rank():
    assert check_feedback_shape(100, 10) == (10, 10)
    assert check_feedback_shape(4, 10, 3) == (3, 4)


def test_power_of_two_constants_are_exact_in_a_wide_enough_format():
    fb = build_feedback(100, 10, connections=2, power_of_two=True, seed=5, gain=8)
    magnitudes = np.abs(fb.value)
    exponents = np.log2(magnitudes)
    assert np.array_equal(exponents, np.round(exponents))
    assert len(np.unique(exponents)) <= POWER_OF_TWO_LEVELS
    raw = fb.raw_values(FixedFormat(2, 14))
    assert np.array_equal(FixedFormat(2, 14).to_real(raw), fb.value)
    with pytest.raises(ValueError, match="not exact in the feedback format SQ\\(2,4\\)"):
        fb.raw_values(FixedFormat(2, 4))


def test_raw_values_are_the_contract_quantisation():
    fb = build_feedback(30, 10, connections=3, seed=2)
    fmt = FixedFormat(1, 11)
    assert np.array_equal(fb.raw_values(fmt), quantize(fb.value, fmt))
    dense = fb.raw_matrix(fmt)
    assert dense.shape == (30, 10)
    assert np.array_equal(dense[np.arange(30)[:, None], fb.index], fb.raw_values(fmt))


def test_lfsr_connectivity_is_the_documented_first_draw():
    seed, neurons, outputs = 4242, 37, 10
    index = lfsr_connectivity(seed, neurons, outputs)
    for neuron in range(neurons):
        first_draw = int(LfsrBank([lfsr_seed(seed, neuron)]).draw(1)[0, 0])
        assert index[neuron] == (first_draw * outputs) >> 16
    assert index.min() >= 0 and index.max() < outputs


def test_lfsr_connectivity_feedback_uses_it_and_refuses_a_seed_that_misses_an_error():
    fb = build_feedback(100, 10, connections=1, lfsr_seed=500, seed=1)
    assert np.array_equal(fb.index[:, 0], lfsr_connectivity(500, 100, 10))
    # With 3 neurons, 10 errors cannot all be reached.
    with pytest.raises(ValueError, match=r"a layer of 3 neurons \(or channels\) .* widen it to at least 10"):
        build_feedback(3, 10, connections=1, lfsr_seed=500)
    with pytest.raises(ValueError, match="gives errors .* to no neuron"):
        build_feedback(10, 10, connections=1, lfsr_seed=500)
    with pytest.raises(ValueError, match="cannot be balanced"):
        build_feedback(100, 10, connections=1, lfsr_seed=500, balanced=True)


def test_same_seed_same_matrix_other_seed_other_matrix():
    a = build_feedback(50, 10, connections=2, seed=9)
    b = build_feedback(50, 10, connections=2, seed=9)
    c = build_feedback(50, 10, connections=2, seed=10)
    assert np.array_equal(a.matrix, b.matrix)
    assert not np.array_equal(a.matrix, c.matrix)


def test_from_tables_refuses_bad_tables():
    with pytest.raises(ValueError, match="lie in 0..9"):
        FeedbackMatrix.from_tables([[10]], [[0.5]], 10)
    with pytest.raises(ValueError, match="twice"):
        FeedbackMatrix.from_tables([[1, 1]], [[0.5, 0.25]], 10)
