"""The training step's fast forms change no bit.

Training runs the layer arithmetic through ``layer_kernels.LayerKernel`` (transposed weights,
preallocated buffers, exact power-of-two scalings folded into products, provably idle overflow
steps left out), its casts through ``arithmetic.CastPlan``, and its draws through
``LfsrBank.step_rows``. A traced step runs the ``neuron_ops`` functions one by one instead.
These tests compare each fast form with the reference, on random inputs from fixed seeds.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ssdfa.model.arithmetic import (
    STOCH_BITS,
    FixedFormat,
    LfsrBank,
    Overflow,
    Rounding,
    _STREAM_LAGS,
    _table_draws,
    cast,
    cast_plan,
)
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import ArithmeticConfig

# -- CastPlan ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("overflow", list(Overflow))
@pytest.mark.parametrize("discarded", [-3, 0, 1, 5, 15, 16, 17, 30])
def test_prescaled_float_plans_equal_cast(rounding, overflow, discarded):
    """A float plan given raw * prescale (as a product with a scaled factor gives it) returns
    cast's values, with and without a value range that lets it leave out the overflow step."""
    rng = np.random.default_rng(abs(discarded) * 31 + len(rounding.name))
    fmt = FixedFormat(3, 9)
    frac = fmt.frac_bits + discarded
    raw = rng.integers(-(2**24), 2**24, size=(40, 7))
    raw[0, :3] = [0, 2**24 - 1, -(2**24)]
    bits = rng.integers(0, 2**STOCH_BITS, size=raw.shape, dtype=np.uint16)
    expected = cast(raw, frac, fmt, rounding, overflow, bits)
    low, high = int(raw.min()), int(raw.max())
    for value_range in (None, (low, high), (-(2**60), 2**60)):
        plan = cast_plan(frac, fmt, rounding, overflow, True, value_range)
        scaled = raw.astype(np.float64) * plan.prescale
        got = plan(scaled, bits, out=scaled, prescaled=True)
        assert got is scaled
        assert np.array_equal(got, expected), (rounding, overflow, discarded, value_range)
        assert np.array_equal(plan(raw.astype(np.float64), bits), expected)


def test_a_value_range_that_fits_leaves_out_the_overflow_step():
    fmt = FixedFormat(2, 6)  # raw -128 .. 127; 10 fraction bits in: d = 4
    assert not cast_plan(10, fmt, Rounding.RND, Overflow.SAT, True, (-2048, 2032)).overflow_needed
    # 2033 / 16 can round up to 128 > 127, and -2049 / 16 down to -129 < -128.
    assert cast_plan(10, fmt, Rounding.RND, Overflow.SAT, True, (-2048, 2033)).overflow_needed
    assert cast_plan(10, fmt, Rounding.STOCH, Overflow.WRAP, True, (-2049, 0)).overflow_needed
    assert cast_plan(10, fmt, Rounding.RND, Overflow.SAT, True).overflow_needed


# -- LfsrBank.step_rows --------------------------------------------------------------------------


def test_stream_lags_are_a_relation_of_the_draws():
    """d_n = XOR of d_(n - lag) over _STREAM_LAGS, on table draws of several seeds."""
    states = np.array([1, 0xDEADBEEF, 12345, 2**32 - 1], dtype=np.uint64)
    chunks = []
    for _ in range(-(-2 * _STREAM_LAGS[-1] // 128)):
        draws, states = _table_draws(states, 128)
        chunks.append(draws)
    d = np.concatenate(chunks, axis=1)
    n = np.arange(_STREAM_LAGS[-1], d.shape[1])
    assert np.array_equal(np.bitwise_xor.reduce([d[:, n - lag] for lag in _STREAM_LAGS]), d[:, n])


def test_step_rows_equal_draws_through_stream_start_compaction_and_growth():
    rng = np.random.default_rng(3)
    fast, reference = LfsrBank.for_layer(9, 6), LfsrBank.for_layer(9, 6)
    counts = [5, 31, 40, 786, 101, 3000, 786, 17000, 850, 1] + [786] * 30
    for step, count in enumerate(counts):
        leading = int(rng.integers(0, min(count, 4) + 1))
        positions = None
        if step % 3:
            positions = np.sort(rng.choice(count - leading, size=max(1, (count - leading) // 5), replace=False))
        head, rest = fast.step_rows(count, leading, positions)
        expected = reference.draw_rows(count)
        assert np.array_equal(head, expected[:leading]), f"seed 3, step {step}"
        assert np.array_equal(rest, expected[leading:] if positions is None else expected[leading:][positions])
        assert np.array_equal(fast.states, reference.states)


# -- LayerKernel through FixedNetwork --------------------------------------------------------------

_CASES = [
    # algorithm, activation, update rounding, overflow, dtype
    *itertools.product(["ssdfa", "dfa"], ["relu"], [Rounding.STOCH, Rounding.RND], [Overflow.SAT], [None]),
    ("sdfa", "tanh", Rounding.STOCH, Overflow.WRAP, None),
    ("sdfa", "hardtanh", Rounding.RND_CONV, Overflow.SAT, np.int64),
    ("bp", "relu", Rounding.STOCH, Overflow.SAT, None),
    ("bp", "tanh", Rounding.TRN_ZERO, Overflow.WRAP, np.int64),
    ("ssdfa", "hardtanh", Rounding.TRN, Overflow.WRAP, None),
    ("ssdfa", "relu", Rounding.STOCH, Overflow.SAT, np.int64),
    ("dfa", "tanh", Rounding.RND, Overflow.WRAP, None),
]


@pytest.mark.parametrize("algorithm, activation, rounding, overflow, dtype", _CASES)
@pytest.mark.parametrize(
    "weight, shift, step_can_overflow",
    [
        (FixedFormat(2, 6), 0, True),  # narrow weights: steps can overflow
        (FixedFormat(2, 14), 8, False),  # no step can overflow: the step cast has no overflow step
        (FixedFormat(2, 28), 0, True),  # the step gains fraction bits (d < 0)
    ],
)
def test_kernel_steps_equal_traced_steps(
    algorithm, activation, rounding, overflow, dtype, weight, shift, step_can_overflow
):
    """Plain training (the kernels) and traced training (neuron_ops, step by step) keep the same
    weights and LFSR states after every step: batch 1 with few and with many non-zero inputs,
    small batches (searched for zero inputs) and larger ones (used in place)."""
    kw = {"connections": 3} if algorithm == "sdfa" else {}
    spec = NetworkSpec((40, 24, 12, 10), algorithm=algorithm, activation=activation, seed=4, weight_gain=3.0, **kw)
    cfg = ArithmeticConfig(weight=weight, update_rounding=rounding, overflow=overflow, shift=shift, seed=7)
    fast = FixedNetwork(spec, cfg, batch=16, dtype=dtype)
    traced = FixedNetwork(spec, cfg, batch=16, dtype=dtype)
    assert all(k._step_plan.overflow_needed == step_can_overflow for k in fast._kernels)
    rng = np.random.default_rng(17)
    for step, batch in enumerate([1, 1, 3, 9, 16, 1, 2, 16, 1]):
        density = 0.1 if step % 3 else 0.9
        x = rng.uniform(-1, 2, size=(batch, 40)) * (rng.random((batch, 40)) < density)
        raw = fast.quantize_inputs(x)
        targets = rng.integers(10, size=batch)
        fast.train_batch(raw, targets)
        traced.train_batch(raw, targets, trace=True)
        for a, b in zip(fast.raw_weights(), traced.raw_weights()):
            assert np.array_equal(a, b), f"seed 17, step {step}"
        for a, b in zip(fast.lfsr_states(), traced.lfsr_states()):
            assert np.array_equal(a, b), f"seed 17, step {step}"
    assert np.array_equal(fast.outputs(raw), traced.outputs(raw))


def test_set_raw_weights_reaches_the_kernels():
    spec = NetworkSpec((20, 16, 10), seed=1)
    net = FixedNetwork(spec, ArithmeticConfig(), batch=4)
    zeros = [np.zeros_like(w) for w in net.raw_weights()]
    net.set_raw_weights(zeros)
    x = net.quantize_inputs(np.random.default_rng(2).random((4, 20)))
    net.train_batch(x, [1, 2, 3, 4])
    reference = FixedNetwork(spec, ArithmeticConfig(), batch=4, weights=zeros)
    reference.train_batch(x, [1, 2, 3, 4], trace=True)
    assert all(np.array_equal(a, b) for a, b in zip(net.raw_weights(), reference.raw_weights()))


def test_a_copied_network_trains_like_the_original():
    """Copies and pickles rebuild the kernels (their buffers are views into each other)."""
    import copy
    import pickle

    spec = NetworkSpec((30, 16, 12, 10), seed=2)
    net = FixedNetwork(spec, ArithmeticConfig(seed=3), batch=4)
    rng = np.random.default_rng(5)
    x = net.quantize_inputs(rng.random((12, 30)) * (rng.random((12, 30)) < 0.3))
    y = rng.integers(10, size=12)
    net.train_batch(x[:4], y[:4])
    copies = [copy.deepcopy(net), pickle.loads(pickle.dumps(net))]
    for start, size in [(4, 1), (5, 3), (8, 4)]:
        for model in [net, *copies]:
            model.train_batch(x[start : start + size], y[start : start + size])
    for other in copies:
        assert all(np.array_equal(a, b) for a, b in zip(net.raw_weights(), other.raw_weights()))
        assert all(np.array_equal(a, b) for a, b in zip(net.lfsr_states(), other.lfsr_states()))
