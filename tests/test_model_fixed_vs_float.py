"""With wide formats the bit-exact fixed-point network follows the float reference closely.

Same initial weights, same feedback constants, same sample order: after a few hundred updates
the fixed-point weights (24 fraction bits) stay within a small tolerance of float64's, and the
two networks classify the test samples the same way, with the same accuracy. This checks that
the fixed model computes what the float model does, up to rounding, for BP, DFA and SSDFA, at
batch 1 and in the batched mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from ssdfa.model.arithmetic import FixedFormat, Rounding
from ssdfa.model.datasets import limit_samples, load_dataset
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.float_network import FloatNetwork
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import ArithmeticConfig

#: Wide formats: 28-bit weights and 26-bit activations still fit a 61-bit accumulator for 64 inputs.
WIDE = dict(
    activation=FixedFormat(6, 20),
    weight=FixedFormat(4, 24),
    feedback=FixedFormat(4, 24),
    error=FixedFormat(4, 24),
    delta=FixedFormat(4, 24),
    bp_error=FixedFormat(4, 24),
    rounding=Rounding.RND_CONV,
    update_rounding=Rounding.RND_CONV,
    shift=4,
)


@pytest.fixture(scope="module")
def digits():
    return limit_samples(load_dataset("digits"), 300, val=0, test=300)


def _pair(algorithm: str, batch: int, seed: int = 0, activation: str = "relu"):
    spec = NetworkSpec(
        (64, 40, 10), algorithm=algorithm, activation=activation, seed=seed, balanced=True, feedback_gain=8.0
    )
    cfg = ArithmeticConfig(seed=seed, **WIDE)
    fixed = FixedNetwork(spec, cfg, batch=batch)
    feedback = [cfg.feedback.to_real(m.raw_matrix(cfg.feedback)) for m in fixed.feedback]
    # The fixed model sums the batch with 2**-shift; the float one averages: scale lr by the batch.
    floating = FloatNetwork(
        spec, dtype=np.float64, lr=batch * 2.0**-cfg.shift, weights=fixed.real_weights(), feedback=feedback
    )
    return fixed, floating


@pytest.mark.parametrize(
    ("algorithm", "batch", "activation"),
    [("ssdfa", 1, "relu"), ("dfa", 1, "relu"), ("bp", 1, "relu"), ("ssdfa", 8, "relu"), ("ssdfa", 1, "hardtanh")],
)
def test_wide_fixed_point_tracks_float64(digits, algorithm, batch, activation):
    fixed, floating = _pair(algorithm, batch, activation=activation)
    x_raw = fixed.quantize_inputs(digits.x_train)
    # Train on the quantised inputs' real values, so that both see identical data.
    x_real = fixed.config.activation.to_real(x_raw)
    y = digits.y_train
    # Whole batches only: the float model averages a short last batch over fewer samples.
    for start in range(0, len(y) - batch + 1, batch):
        fixed.train_batch(x_raw[start : start + batch], y[start : start + batch])
        floating.train_batch(x_real[start : start + batch], y[start : start + batch])
    worst = max(np.abs(f - w).max() for f, w in zip(fixed.real_weights(), floating.weights))
    scale = max(np.abs(w).max() for w in floating.weights)
    assert worst < 1e-4 * max(scale, 1.0), f"seed 0, {algorithm}, batch {batch}: weights differ by {worst:g}"
    x_test = fixed.quantize_inputs(digits.x_test)
    fixed_classes = fixed.predict(x_test)
    float_classes = floating.predict(fixed.config.activation.to_real(x_test))
    agree = np.mean(fixed_classes == float_classes)
    assert agree >= 0.99, f"seed 0, {algorithm}: predictions agree on {agree:.3f}"
    accuracies = [np.mean(classes == digits.y_test) for classes in (fixed_classes, float_classes)]
    assert abs(accuracies[0] - accuracies[1]) <= 0.01, f"seed 0, {algorithm}: accuracies {accuracies}"


def test_wide_networks_use_exact_int64(digits):
    fixed, _ = _pair("ssdfa", 1)
    assert fixed.dtype == np.int64  # 61-bit accumulators do not fit float64's 53 bits
