"""Convolution layers: im2col against direct loops, the fixed-point order of operations against
per-element scalar computations through the contract's functions, BP's gradient against finite
differences, and training on digits by BP, DFA and SSDFA, float and fixed (docs/arithmetic.md §10).

Random inputs come from fixed seeds, named in every assertion message.
"""

from __future__ import annotations

import numpy as np
import pytest

from ssdfa.model.arithmetic import FixedFormat, LfsrBank, Overflow, Rounding, cast, layer_seed
from ssdfa.model.conv_network import ConvLayerSpec, ConvNetSpec, FixedConvNetwork, FloatConvNetwork
from ssdfa.model.conv_ops import (
    ConvGeometry,
    col2im,
    conv_backprop_delta,
    conv_feedback_delta,
    conv_forward,
    im2col,
    max_pool,
)
from ssdfa.model.conv_training import ConvTrainingDiverged, train_conv
from ssdfa.model.datasets import load_dataset
from ssdfa.model.neuron_ops import Activation, ArithmeticConfig, activate, activation_derivative, weight_update

GEOMETRIES = [
    ConvGeometry(6, 6, 2, 3, 3),  # same, stride 1
    ConvGeometry(7, 5, 3, 4, 3, stride=2),  # same, stride 2, uneven padding
    ConvGeometry(6, 6, 2, 3, 4),  # even kernel: more zeros after than before
    ConvGeometry(8, 8, 1, 2, 3, padding="valid", pool=2),
    ConvGeometry(8, 6, 2, 3, 3, pool=2),
]


def direct_conv(x, weights, geom: ConvGeometry) -> np.ndarray:
    """sum_{c,ky,kx} W[f, (c,ky,kx)] x[b, oy*s + ky - top, ox*s + kx - left, c] + bias, by loops
    (int64 when ``x`` and ``weights`` are integers, with the bias on the constant ``bias_input``)."""
    (top, _), (left, _) = geom.pads
    k = geom.kernel
    kernels = weights[:, :-1].reshape(geom.filters, geom.channels, k, k)
    out = np.zeros((x.shape[0], geom.out_height, geom.out_width, geom.filters), dtype=np.result_type(x, weights))
    for oy in range(geom.out_height):
        for ox in range(geom.out_width):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = oy * geom.stride + ky - top, ox * geom.stride + kx - left
                    if 0 <= iy < geom.height and 0 <= ix < geom.width:
                        out[:, oy, ox, :] += x[:, iy, ix, :] @ kernels[:, :, ky, kx].T
    return out


@pytest.mark.parametrize("geom", GEOMETRIES, ids=str)
def test_im2col_convolution_equals_direct_loops_in_float(geom):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, *geom.input_shape))
    w = rng.normal(size=(geom.filters, geom.fan_in + 1))
    y = (im2col(x, geom) @ w[:, :-1].T).reshape(3, geom.out_height, geom.out_width, geom.filters)
    np.testing.assert_allclose(y, direct_conv(x, w, geom), rtol=1e-12, atol=1e-12, err_msg="seed 11")


@pytest.mark.parametrize("geom", GEOMETRIES, ids=str)
def test_col2im_is_the_adjoint_of_im2col(geom):
    # <im2col(x), c> = <x, col2im(c)> for every x and c: col2im adds each column back where it came from.
    rng = np.random.default_rng(12)
    x = rng.normal(size=(2, *geom.input_shape))
    c = rng.normal(size=(2 * geom.positions, geom.fan_in))
    assert np.isclose(np.sum(im2col(x, geom) * c), np.sum(x * col2im(c, geom))), "seed 12"


def _scalar_cast(value: int, frac: int, fmt, rounding, overflow, draw=None) -> int:
    bits = None if draw is None else np.array([draw], dtype=np.uint16)
    return int(cast(np.array([value], dtype=np.int64), frac, fmt, rounding, overflow, bits)[0])


CONFIGS = [
    (ArithmeticConfig(rounding=Rounding.RND, overflow=Overflow.SAT), Activation.TANH),
    (ArithmeticConfig(rounding=Rounding.TRN, overflow=Overflow.WRAP), Activation.RELU),
    (
        ArithmeticConfig(
            activation=FixedFormat(3, 5), weight=FixedFormat(2, 6), rounding=Rounding.RND_CONV, overflow=Overflow.SAT
        ),
        Activation.HARDTANH,
    ),
]


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
@pytest.mark.parametrize("cfg, act", CONFIGS, ids=lambda c: getattr(c, "value", None))
@pytest.mark.parametrize("geom", GEOMETRIES[1::2], ids=str)
def test_fixed_conv_forward_equals_per_element_scalar_casts(geom, cfg, act, dtype):
    """Each y is one cast of the exact sum over (c, ky, kx) plus the bias on 2**f_x (§10.1)."""
    rng = np.random.default_rng(13)
    # Large weights so that some sums saturate or wrap.
    w = rng.integers(-(2 ** (cfg.weight.word - 1)), 2 ** (cfg.weight.word - 1), size=(geom.filters, geom.fan_in + 1))
    x = rng.integers(cfg.activation.min_raw, cfg.activation.max_raw + 1, size=(2, *geom.input_shape))
    result = conv_forward(w.astype(dtype), x.astype(dtype), geom, cfg, act)
    acc = direct_conv(x, w, geom) + (w[:, -1] << cfg.activation.frac_bits)
    frac = cfg.weight.frac_bits + cfg.activation.frac_bits
    for index in np.ndindex(acc.shape):
        y = _scalar_cast(int(acc[index]), frac, cfg.activation, cfg.rounding, cfg.overflow)
        assert result.pre_activation[index] == y, f"seed 13, output {index}"
        a = activate(np.array([y]), cfg.activation, act)[0]
        assert result.activation[index] == a, f"seed 13, output {index}"
    if geom.pool == 1:
        fprime = activation_derivative(result.pre_activation, result.activation, cfg.activation, act)
        np.testing.assert_array_equal(result.derivative, fprime)
    assert result.pre_activation.dtype == dtype


def test_max_pool_keeps_the_first_maximum_of_each_window():
    a = np.array([[3, 3], [1, 2]], dtype=np.int64).reshape(1, 2, 2, 1)
    pooled, winners = max_pool(a, 2)
    assert pooled.ravel().tolist() == [3]
    assert winners.ravel().tolist() == [1, 0, 0, 0]


def test_pooled_conv_stores_f_prime_only_at_window_winners():
    geom = ConvGeometry(4, 4, 1, 2, 3, pool=2)
    cfg = ArithmeticConfig()
    rng = np.random.default_rng(14)
    w = rng.integers(-4000, 4000, size=(2, geom.fan_in + 1))
    x = rng.integers(0, 4096, size=(3, 4, 4, 1))
    result = conv_forward(w, x, geom, cfg, Activation.TANH)
    pooled, winners = max_pool(result.activation, 2)
    np.testing.assert_array_equal(result.output, pooled)
    full = activation_derivative(result.pre_activation, result.activation, cfg.activation, Activation.TANH)
    np.testing.assert_array_equal(result.derivative, full * winners)


def test_conv_feedback_delta_is_one_cast_per_neuron_with_the_filters_row():
    """delta[b, p, f] = cast(sum_k B[f, k] e[b, k] * f'[b, p, f]) with that neuron's draw (§10.2)."""
    cfg = ArithmeticConfig(update_rounding=Rounding.STOCH)
    rng = np.random.default_rng(15)
    batch, h, w_, filters, outputs = 2, 3, 2, 4, 5
    errors = rng.integers(-3000, 3000, size=(batch, outputs))
    feedback = rng.integers(-9000, 9000, size=(filters, outputs))
    fprime = rng.integers(0, 4097, size=(batch, h, w_, filters))
    draws = rng.integers(0, 2**16, size=(batch * h * w_, filters)).astype(np.uint16)
    delta = conv_feedback_delta(errors, fprime, feedback, cfg, Activation.TANH, draws)
    frac = cfg.feedback.frac_bits + cfg.error.frac_bits + cfg.fprime_frac(Activation.TANH)
    for b, y, x, f in np.ndindex(fprime.shape):
        row = (b * h + y) * w_ + x
        exact = int(sum(int(feedback[f, k]) * int(errors[b, k]) for k in range(outputs))) * int(fprime[b, y, x, f])
        expected = _scalar_cast(exact, frac, cfg.delta, Rounding.STOCH, cfg.overflow, draws[row, f])
        assert delta[row, f] == expected, f"seed 15, neuron {(b, y, x, f)}"


def test_conv_backprop_delta_casts_the_transported_error_once_per_pooled_output():
    cfg = ArithmeticConfig(update_rounding=Rounding.RND)
    geom = ConvGeometry(4, 4, 1, 2, 3, pool=2)
    rng = np.random.default_rng(16)
    transported = rng.integers(-(2**30), 2**30, size=(2, 2, 2, 2))
    fprime = rng.integers(0, 2, size=(2, 4, 4, 2))
    t_frac = cfg.delta.frac_bits + cfg.weight.frac_bits
    delta = conv_backprop_delta(transported, t_frac, fprime, geom.pool, cfg, Activation.RELU)
    for b, y, x, f in np.ndindex(fprime.shape):
        g = _scalar_cast(int(transported[b, y // 2, x // 2, f]), t_frac, cfg.bp_error, cfg.rounding, cfg.overflow)
        expected = _scalar_cast(g * int(fprime[b, y, x, f]), cfg.bp_error.frac_bits, cfg.delta, Rounding.RND, cfg.overflow)
        assert delta[(b * 4 + y) * 4 + x, f] == expected, f"seed 16, neuron {(b, y, x, f)}"


def test_conv_weight_step_sums_over_samples_and_positions_before_its_one_cast():
    cfg = ArithmeticConfig(update_rounding=Rounding.STOCH, shift=6)
    geom = ConvGeometry(3, 3, 2, 2, 2)
    rng = np.random.default_rng(17)
    x = rng.integers(-4096, 4096, size=(2, 3, 3, 2))
    patches = im2col(x, geom)
    w = rng.integers(-8000, 8000, size=(2, geom.fan_in + 1))
    delta = rng.integers(-5000, 5000, size=(patches.shape[0], 2))
    draws = rng.integers(0, 2**16, size=w.shape).astype(np.uint16)
    updated = weight_update(w, delta, cfg.delta.frac_bits, patches, cfg, draws)
    frac = cfg.delta.frac_bits + cfg.activation.frac_bits + cfg.shift
    for f, j in np.ndindex(w.shape):
        column = patches[:, j] if j < geom.fan_in else np.full(len(patches), 1 << cfg.activation.frac_bits)
        exact = sum(int(d) * int(v) for d, v in zip(delta[:, f], column))
        step = _scalar_cast(exact, frac, cfg.weight, Rounding.STOCH, cfg.overflow, draws[f, j])
        expected = _scalar_cast(int(w[f, j]) - step, cfg.weight.frac_bits, cfg.weight, Rounding.TRN, cfg.overflow)
        assert updated[f, j] == expected, f"seed 17, weight {(f, j)}"


def _small_spec(algorithm: str, **kwargs) -> ConvNetSpec:
    layers = (ConvLayerSpec(10, 3), ConvLayerSpec(12, 3, pool=2))
    return ConvNetSpec((8, 8, 1), layers, (16,), 10, algorithm, seed=3, **kwargs)


def test_bp_gradients_match_finite_differences():
    spec = ConvNetSpec(
        (6, 6, 2), (ConvLayerSpec(3, 3, stride=2), ConvLayerSpec(4, 2, pool=3)), (5,), 3, "bp", "tanh", seed=4,
        weight_gain=2.0,
    )
    net = FloatConvNetwork(spec, dtype=np.float64)
    rng = np.random.default_rng(18)
    x, y = rng.normal(size=(4, 72)), rng.integers(0, 3, size=4)
    grads = net.gradients(x, y)
    eps = 1e-6
    for stage, (w, g) in enumerate(zip(net.weights, grads)):
        for index in [(0, 0), (w.shape[0] - 1, w.shape[1] - 1), (w.shape[0] // 2, w.shape[1] // 2)]:
            saved = w[index]
            w[index] = saved + eps
            up = net.loss(x, y)
            w[index] = saved - eps
            down = net.loss(x, y)
            w[index] = saved
            numeric = (up - down) / (2 * eps)
            assert np.isclose(g[index], numeric, rtol=1e-5, atol=1e-8), f"seed 18, stage {stage}, weight {index}"


def _training_spec(algorithm: str) -> ConvNetSpec:
    return ConvNetSpec((8, 8, 1), (ConvLayerSpec(12, 3, pool=2),), (), 10, algorithm, seed=3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("algorithm", ["bp", "dfa", "ssdfa"])
def test_float_training_reduces_the_loss_on_digits(digits, algorithm):
    net = FloatConvNetwork(_training_spec(algorithm), lr=2.0**-4)
    before = net.loss(digits.x_val, digits.y_val)
    for _ in range(2):
        for start in range(0, len(digits.y_train), 16):
            net.train_batch(digits.x_train[start : start + 16], digits.y_train[start : start + 16])
    after = net.loss(digits.x_val, digits.y_val)
    accuracy = np.mean(net.predict(digits.x_val) == digits.y_val)
    assert after < 0.7 * before and accuracy > 0.6, (before, after, accuracy)


@pytest.mark.parametrize("algorithm", ["bp", "dfa", "ssdfa"])
def test_fixed_training_learns_digits(digits, algorithm):
    net = FixedConvNetwork(_training_spec(algorithm), ArithmeticConfig(shift=8), batch=16)
    x = net.quantize_inputs(digits.x_train)
    x_val = net.quantize_inputs(digits.x_val)
    before = np.mean(net.predict(x_val) == digits.y_val)
    for _ in range(2):
        for start in range(0, len(x), 16):
            net.train_batch(x[start : start + 16], digits.y_train[start : start + 16])
    after = np.mean(net.predict(x_val) == digits.y_val)
    assert before < 0.3 and after > 0.7, (before, after)


@pytest.mark.parametrize("algorithm", ["bp", "ssdfa"])
def test_fixed_training_is_the_same_in_int64_and_float64(digits, algorithm):
    spec = _small_spec(algorithm)
    nets = [FixedConvNetwork(spec, ArithmeticConfig(shift=8), batch=8, dtype=d) for d in (np.int64, np.float64)]
    x = nets[0].quantize_inputs(digits.x_train[:40])
    for net in nets:
        for start in range(0, 40, 8):
            net.train_batch(x[start : start + 8], digits.y_train[start : start + 8])
    for a, b in zip(*(net.weights for net in nets)):
        np.testing.assert_array_equal(a, b)


def test_each_filter_draws_once_per_neuron_then_once_per_weight():
    spec = _small_spec("ssdfa")
    cfg = ArithmeticConfig(update_rounding=Rounding.STOCH, shift=8, seed=5)
    net = FixedConvNetwork(spec, cfg, batch=4)
    net.train_batch(np.zeros((3, 64)), np.array([1, 2, 3]))
    geometries = spec.geometries()
    for stage, bank in enumerate(net.banks):
        last = stage == spec.num_stages - 1
        positions = geometries[stage].positions if stage < len(geometries) else 1
        count = (0 if last else 3 * positions) + net.weights[stage].shape[1]
        fresh = LfsrBank.for_layer(layer_seed(5, stage), bank.neurons)
        fresh.draw(count)
        np.testing.assert_array_equal(bank.states, fresh.states, err_msg=f"stage {stage}")


@pytest.mark.parametrize(
    "text, expected",
    [("32c3", ConvLayerSpec(32, 3)), ("64c3p2", ConvLayerSpec(64, 3, pool=2)), ("16c5s2v", ConvLayerSpec(16, 5, 2, "valid"))],
)
def test_conv_layer_text_round_trips(text, expected):
    assert ConvLayerSpec.parse(text) == expected
    assert expected.describe() == text


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ConvLayerSpec.parse("3x3"), "3x3"),
        (lambda: ConvGeometry(5, 5, 1, 2, 3, pool=2), "pooling does not divide"),
        (lambda: ConvGeometry(2, 2, 1, 2, 3, padding="valid"), "does not fit"),
        (lambda: ConvGeometry(4, 4, 1, 2, 3, padding="full"), "'full'"),
        (lambda: ConvNetSpec((8, 8, 1), (ConvLayerSpec(4, 3),), (), 10, "ssdfa"), "rank"),
    ],
)
def test_bad_shapes_are_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_diverging_float_run_is_reported_without_an_accuracy(digits):
    with pytest.raises(ConvTrainingDiverged, match="diverged in epoch 1"):
        train_conv(_training_spec("dfa"), digits, epochs=1, batch=16, lr=1e6)


def test_train_conv_reports_accuracies_of_a_fixed_run(digits):
    result = train_conv(_training_spec("ssdfa"), digits, config=ArithmeticConfig(shift=8), epochs=1, batch=16)
    assert result.test_accuracy > 0.5 and [epoch for epoch, _, _ in result.history] == [1]
