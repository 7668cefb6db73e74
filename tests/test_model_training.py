"""The fixed-point network and the training loop: order of operations, determinism, learning.

The fixed-point network must only sequence the contract's functions; these tests replay one
step with ``neuron_ops`` by hand, check that the speed-ups (column skipping, float64 BLAS, the
LFSR stream) change no bit, and that training learns.
"""

from __future__ import annotations

import numpy as np
import pytest

from ssdfa.model.arithmetic import FixedFormat, LfsrBank, Overflow, Rounding, _table_draws, layer_seed
from ssdfa.model.datasets import limit_samples, load_dataset
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.float_network import FloatNetwork
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import (
    Activation,
    ArithmeticConfig,
    feedback_delta,
    forward,
    output_error,
    weight_update,
)
from ssdfa.model.training import TrainingOptions, epoch_order, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def small_digits(digits):
    return limit_samples(digits, 400, val=100, test=200)


def _spec(algorithm="ssdfa", seed=0, hidden=32, **kw):
    balanced = algorithm != "bp"
    return NetworkSpec((64, hidden, 10), algorithm=algorithm, seed=seed, balanced=balanced, feedback_gain=8.0, **kw)


def _sparse_inputs(rng, samples, features=64, density=0.3, fmt=FixedFormat(4, 12)):
    x = rng.random((samples, features)) * (rng.random((samples, features)) < density)
    return np.asarray(np.rint(x * (1 << fmt.frac_bits)), dtype=np.int64)


def test_train_step_is_the_contract_sequence_of_section_9():
    """One SSDFA sample replayed with neuron_ops by hand: forward, e, delta, update, draws in order."""
    spec = _spec(seed=3)
    cfg = ArithmeticConfig(seed=3)
    net = FixedNetwork(spec, cfg)
    rng = np.random.default_rng(3)
    x = _sparse_inputs(rng, 1)[0]
    w0, w1 = net.raw_weights()
    b = net.feedback[0].raw_matrix(cfg.feedback)
    banks = [LfsrBank.for_layer(layer_seed(cfg.seed, layer), n) for layer, n in enumerate((32, 10))]

    trace = net.train_step(x, 7, trace=True)

    hidden = forward(w0, x[None, :], cfg, Activation.RELU)
    out = forward(w1, hidden.activation, cfg, Activation.IDENTITY)
    e = output_error(out.activation, [7], cfg)
    draws0 = banks[0].draw(1 + 65)  # one delta draw, then fan_in + 1 weight-step draws
    draws1 = banks[1].draw(33)  # the output layer: weight-step draws only
    delta = feedback_delta(e, hidden.derivative, b, cfg, Activation.RELU, draws0[:, :1].T)
    new_w0 = weight_update(w0, delta, cfg.delta.frac_bits, x[None, :], cfg, draws0[:, 1:])
    new_w1 = weight_update(w1, e, cfg.error.frac_bits, hidden.activation, cfg, draws1)

    assert np.array_equal(trace.pre_activations[0], hidden.pre_activation)
    assert np.array_equal(trace.activations[1], out.activation)
    assert np.array_equal(trace.errors, e)
    assert np.array_equal(trace.deltas[0], delta) and np.array_equal(trace.deltas[1], e)
    assert np.array_equal(trace.delta_draws[0], draws0[:, :1].T) and trace.delta_draws[1] is None
    assert np.array_equal(trace.step_draws[0], draws0[:, 1:]) and np.array_equal(trace.step_draws[1], draws1)
    assert np.array_equal(trace.weights_after[0], new_w0) and np.array_equal(trace.weights_after[1], new_w1)
    assert np.array_equal(net.raw_weights()[0], new_w0)
    assert np.array_equal(net.lfsr_states()[0], banks[0].states)
    assert np.array_equal(trace.lfsr_states[0], LfsrBank.for_layer(layer_seed(3, 0), 32).states)


@pytest.mark.parametrize("algorithm", ["ssdfa", "bp", "sdfa"])
@pytest.mark.parametrize("rounding", [Rounding.STOCH, Rounding.RND])
def test_skipping_zero_inputs_changes_no_bit(algorithm, rounding):
    """The column-skipping update equals the whole update (and its draws), over many steps."""
    kw = {"connections": 3} if algorithm == "sdfa" else {}
    spec = _spec(algorithm, seed=5, **kw)
    cfg = ArithmeticConfig(seed=5, update_rounding=rounding)
    fast, whole = FixedNetwork(spec, cfg, batch=4), FixedNetwork(spec, cfg, batch=4)
    rng = np.random.default_rng(11)
    x = _sparse_inputs(rng, 40, density=0.15)
    y = rng.integers(10, size=40)
    for start in range(0, 40, 4):
        size = 1 if start < 20 else 4
        fast.train_batch(x[start : start + size], y[start : start + size])
        whole.train_batch(x[start : start + size], y[start : start + size], trace=True)  # trace: whole updates
    for a, b in zip(fast.raw_weights(), whole.raw_weights()):
        assert np.array_equal(a, b), f"seed 11, {algorithm}, {rounding.name}"
    for a, b in zip(fast.lfsr_states(), whole.lfsr_states()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("algorithm", ["ssdfa", "bp"])
def test_int64_and_float64_raw_values_train_identically(algorithm):
    spec = _spec(algorithm, seed=2)
    cfg = ArithmeticConfig(seed=2, update_rounding=Rounding.STOCH)
    as_float = FixedNetwork(spec, cfg, batch=8)
    as_int = FixedNetwork(spec, cfg, batch=8, dtype=np.int64)
    assert as_float.dtype == np.float64 and as_int.dtype == np.int64
    rng = np.random.default_rng(21)
    x = _sparse_inputs(rng, 64)
    y = rng.integers(10, size=64)
    for start in range(0, 64, 8):
        batch = 1 if start < 32 else 8
        for net in (as_float, as_int):
            net.train_batch(x[start : start + batch], y[start : start + batch])
    for a, b in zip(as_float.raw_weights(), as_int.raw_weights()):
        assert np.array_equal(a, b), "seed 21"
    assert np.array_equal(as_float.outputs(x), as_int.outputs(x))


def test_float64_is_refused_where_it_would_not_be_exact():
    cfg = ArithmeticConfig(activation=FixedFormat(6, 20), weight=FixedFormat(4, 24))
    with pytest.raises(ValueError, match="float64 is not exact"):
        FixedNetwork(_spec(), cfg, dtype=np.float64)
    assert FixedNetwork(_spec(), cfg).dtype == np.int64


def test_networks_refuse_widths_and_batches_they_cannot_hold():
    with pytest.raises(ValueError, match="accumulator needs"):
        FixedNetwork(_spec(), ArithmeticConfig(activation=FixedFormat(10, 20), weight=FixedFormat(10, 20)))
    net = FixedNetwork(_spec(), ArithmeticConfig(), batch=2)
    with pytest.raises(ValueError, match="larger than the 2"):
        net.train_batch(np.zeros((3, 64), dtype=np.int64), [0, 1, 2])
    with pytest.raises(ValueError, match="class indices"):
        net.train_batch(np.zeros((1, 64), dtype=np.int64), [10])
    with pytest.raises(ValueError, match="within the activation format SQ\\(4,12\\)"):
        net.train_step(np.full(64, 1 << 20), 0)


def test_lfsr_stream_gives_the_table_draws():
    """LfsrBank's block stream (used for large draws) matches the leap-ahead tables draw for draw,
    past the 32 table-made blocks where the block recurrence takes over."""
    rng = np.random.default_rng(8)
    bank = LfsrBank.for_layer(77, 9)
    states = bank.states.copy()
    reference = []
    for _ in range(160):  # 160 x 128 = 20480 draws per neuron, 40 blocks of 512
        draws, states = _table_draws(states, 128)
        reference.append(draws)
    reference = np.concatenate(reference, axis=1)
    position = 0
    counts = [1, 3, 31, 32, 65, 511, 512, 786, 6000, 5000, 4000, 2000, 1000, 500]
    for number, count in enumerate(counts):
        expected = reference[:, position : position + count]
        if number % 2:
            got = bank.draw(count)
        else:  # only some columns; the LFSRs still advance by count
            chosen = np.sort(rng.choice(count, size=max(1, count // 3), replace=False))
            got, expected = bank.draw(count, chosen), expected[:, chosen]
        assert np.array_equal(got, expected), f"seed 8, count {count}"
        position += count
        if position < 2:
            continue
        last_two = reference[:, position - 2 : position].astype(np.uint64)
        assert np.array_equal(bank.states, (last_two[:, 0] << np.uint64(16)) | last_two[:, 1])
    assert position > 32 * 512


def test_same_seed_gives_identical_raw_weights_and_another_seed_does_not(small_digits):
    options = TrainingOptions(epochs=1)
    results = [
        train(_spec(seed=seed), small_digits, config=ArithmeticConfig(seed=seed), options=options) for seed in (4, 4, 5)
    ]
    first, again, other = (r.network.raw_weights() for r in results)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    assert results[0].test_accuracy == results[1].test_accuracy


def test_fixed_ssdfa_learns_well_above_chance_on_a_small_subset(small_digits):
    result = train(_spec(seed=1), small_digits, config=ArithmeticConfig(seed=1), options=TrainingOptions(epochs=3))
    assert result.test_accuracy > 0.6, f"seed 1: {result.test_accuracy}"
    assert result.train_accuracy > 0.6
    assert [r.epoch for r in result.history] == [1, 2, 3]


def test_fixed_bp_with_8_bit_weights_learns(small_digits):
    cfg = ArithmeticConfig(seed=1, weight=FixedFormat(1, 7), overflow=Overflow.SAT)
    result = train(_spec("bp", seed=1, weight_gain=4.0), small_digits, config=cfg, options=TrainingOptions(epochs=3))
    assert result.test_accuracy > 0.5, f"seed 1: {result.test_accuracy}"


@pytest.mark.parametrize("algorithm", ["bp", "dfa", "ssdfa"])
def test_float_training_learns_on_a_small_subset(small_digits, algorithm):
    result = train(_spec(algorithm, seed=0), small_digits, options=TrainingOptions(epochs=4))
    assert result.test_accuracy > 0.7, f"seed 0, {algorithm}: {result.test_accuracy}"


def test_float_minibatch_mean_with_momentum_runs_and_is_deterministic(small_digits):
    options = TrainingOptions(epochs=2, batch=16, lr=0.25, momentum=0.5)
    a = train(_spec("bp", seed=0), small_digits, options=options)
    b = train(_spec("bp", seed=0), small_digits, options=options)
    assert all(np.array_equal(u, v) for u, v in zip(a.network.weights, b.network.weights))
    assert a.test_accuracy > 0.5


def test_epoch_order_is_a_seeded_permutation():
    order = epoch_order(3, 0, 50)
    assert sorted(order.tolist()) == list(range(50))
    assert np.array_equal(order, epoch_order(3, 0, 50))
    assert not np.array_equal(order, epoch_order(3, 1, 50))


def test_float_batch_one_step_is_the_documented_update():
    spec = _spec("ssdfa", seed=6)
    net = FloatNetwork(spec, dtype=np.float64, lr=0.5)
    before = [w.copy() for w in net.weights]
    x = np.random.default_rng(6).random((1, 64))
    grads = net.gradients(x, [2])
    net.train_batch(x, [2])
    for w0, g, w1 in zip(before, grads, net.weights):
        np.testing.assert_allclose(w1, w0 - 0.5 * g, rtol=0, atol=1e-15)


def test_angles_measure_alignment_and_are_zero_for_bp(small_digits):
    from ssdfa.model.angles import alignment_angles, angle, update_angles

    assert angle([1, 0], [0, 2]) == pytest.approx(90)
    assert angle([1, 1], [2, 2]) == pytest.approx(0, abs=1e-6)
    assert np.isnan(angle([0, 0], [1, 2]))
    spec = _spec("dfa", seed=0, hidden=48)
    before = FloatNetwork(spec)
    result = train(spec, small_digits, options=TrainingOptions(epochs=3, evaluate_every_epoch=False))
    x, y = small_digits.x_val, small_digits.y_val
    # Training aligns the downstream weights with B (eq. 14) and the update with BP's gradient.
    assert alignment_angles(result.network)[0] < alignment_angles(before)[0] - 10
    assert update_angles(result.network, x, y)[0] < 80
    bp = FloatNetwork(_spec("bp", seed=0))
    assert alignment_angles(bp) == [] and update_angles(bp, x, y) == [pytest.approx(0, abs=1e-6)]
    fixed = FixedNetwork(spec, ArithmeticConfig())
    assert len(alignment_angles(fixed)) == 1 and 0 <= update_angles(fixed, x, y)[0] <= 180


def test_fixed_tanh_network_trains_with_its_table():
    spec = NetworkSpec((64, 16, 10), algorithm="ssdfa", activation="tanh", seed=1, balanced=True, feedback_gain=8.0)
    net = FixedNetwork(spec, ArithmeticConfig(seed=1))
    rng = np.random.default_rng(1)
    x = _sparse_inputs(rng, 20)
    before = net.raw_weights()
    trace = None
    for i in range(20):
        trace = net.train_step(x[i], i % 10, trace=i == 19)
    # f' of tanh is 1 - a^2 with f_a fraction bits: between 0 and 1 (raw 0 .. 2**12).
    assert trace.derivatives[0].min() >= 0 and trace.derivatives[0].max() <= 1 << 12
    assert not np.array_equal(before[0], net.raw_weights()[0])
