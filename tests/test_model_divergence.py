"""Diverged runs stop without an accuracy; shift schedules, --keep and per-epoch angles.

The criteria are those of ``model.divergence`` (docs/model.md section 6.2). Runs are on small
digits subsets with fixed seeds, forced to diverge by a huge learning rate where needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from ssdfa.model import divergence
from ssdfa.model.arithmetic import FixedFormat, Overflow
from ssdfa.model.datasets import limit_samples, load_dataset
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import ArithmeticConfig
from ssdfa.model.training import TrainingOptions, train


@pytest.fixture(scope="module")
def small_digits():
    return limit_samples(load_dataset("digits"), 400, val=100, test=200)


def _spec(gain=8.0, seed=0):
    return NetworkSpec((64, 24, 10), balanced=True, feedback_gain=gain, seed=seed)


def test_float_run_that_blows_up_stops_with_non_finite_weights_and_no_accuracy(small_digits):
    result = train(_spec(gain=64.0), small_digits, options=TrainingOptions(epochs=3, lr=4.0))
    assert result.diverged and result.divergence.criterion == "non-finite"
    assert result.divergence.epoch == 1 and len(result.history) == 1
    assert "NaN" in result.divergence.message or "infinite" in result.divergence.message
    assert "learning rate" in result.divergence.message  # the remedy
    assert result.test_accuracy is None and result.val_accuracy is None and result.last is None


def test_fixed_run_that_learns_then_loses_it_stops_as_a_collapse(small_digits):
    # Shift 2 and gain 4: 34% validation after epoch 1, back to chance within epoch 2.
    result = train(_spec(gain=4.0), small_digits, config=ArithmeticConfig(shift=2), options=TrainingOptions(epochs=4))
    assert result.diverged and result.divergence.criterion == "collapse"
    assert "validation accuracy fell from" in result.divergence.message
    assert result.test_accuracy is None


def test_collapse_needs_accuracy_that_was_learned_then_lost():
    assert divergence.collapse([0.5, 0.9, 0.14], 10, 3) is not None
    assert divergence.collapse([0.5, 0.9, 0.16], 10, 3) is None  # above 1.5 x chance
    assert divergence.collapse([0.12, 0.11, 0.10], 10, 3) is None  # never learned: not a divergence
    assert divergence.collapse([0.29, 0.05], 10, 2) is None  # below 3 x chance is not "learned"
    assert divergence.collapse([0.9], 10, 1) is None


def test_pinned_criterion_counts_weights_at_the_format_bounds():
    fmt = FixedFormat(1, 7)
    weights = [np.zeros((10, 8), dtype=np.int64), np.zeros((4, 5), dtype=np.int64)]
    weights[1][:, 0] = fmt.max_raw
    weights[1][0, 1] = fmt.min_raw  # 5 of 20 pinned: exactly the limit
    shares = divergence.pinned_shares(weights, fmt)
    assert shares == [0.0, 0.25]
    found = divergence.pinned_weights(shares, ArithmeticConfig(weight=fmt), 2)
    assert found is not None and found.layer == 1 and "25% of layer 1's weights are pinned" in found.message
    # Wrapping weights never pin; one weight fewer is below the limit.
    assert divergence.pinned_weights(shares, ArithmeticConfig(weight=fmt, overflow=Overflow.WRAP), 2) is None
    assert divergence.pinned_weights([0.0, 0.2], ArithmeticConfig(weight=fmt), 2) is None


def test_pinned_weights_stop_a_fixed_run(small_digits, monkeypatch):
    # Lower the limit below what a healthy run pins so that the criterion fires after epoch 1.
    monkeypatch.setattr(divergence, "PINNED_LIMIT", 0.0)
    result = train(_spec(), small_digits, config=ArithmeticConfig(), options=TrainingOptions(epochs=3))
    assert result.diverged and result.divergence.criterion == "pinned" and result.divergence.epoch == 1


def test_healthy_runs_pin_almost_no_weights(small_digits):
    result = train(_spec(), small_digits, config=ArithmeticConfig(), options=TrainingOptions(epochs=2))
    assert not result.diverged and result.test_accuracy > 0.6
    assert all(share < 0.05 for record in result.history for share in record.pinned)


def test_set_shift_trains_exactly_like_a_network_built_with_that_shift(small_digits):
    spec = _spec()
    shifted = FixedNetwork(spec, ArithmeticConfig(shift=4))
    shifted.set_shift(6)
    direct = FixedNetwork(spec, ArithmeticConfig(shift=6))
    x = shifted.quantize_inputs(small_digits.x_train[:40])
    for sample, label in zip(x, small_digits.y_train[:40]):
        shifted.train_step(sample, int(label))
        direct.train_step(sample, int(label))
    for a, b in zip(shifted.raw_weights(), direct.raw_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="shift"):
        shifted.set_shift(99)
    assert shifted.config.shift == 6  # a refused shift leaves the network as it was


@pytest.mark.parametrize("fixed", [False, True])
def test_shift_schedule_halves_the_learning_rate_at_the_listed_epochs(small_digits, fixed):
    config = ArithmeticConfig(shift=4) if fixed else None
    stepped = train(_spec(), small_digits, config=config, options=TrainingOptions(epochs=4, shift_steps=(2, 4)))
    assert [r.lr for r in stepped.history] == [2**-4, 2**-5, 2**-5, 2**-6]
    plain = train(_spec(), small_digits, config=config, options=TrainingOptions(epochs=2))
    # The first epoch is the same run; the second is not.
    assert stepped.history[0].val_accuracy == plain.history[0].val_accuracy
    assert stepped.history[0].train_accuracy == plain.history[0].train_accuracy
    if fixed:
        assert stepped.network.config.shift == 6


def test_schedule_and_keep_are_checked():
    with pytest.raises(ValueError, match="shift steps"):
        TrainingOptions(epochs=3, shift_steps=(1,))
    with pytest.raises(ValueError, match="shift steps"):
        TrainingOptions(epochs=3, shift_steps=(4,))
    with pytest.raises(ValueError, match="increase"):
        TrainingOptions(epochs=5, shift_steps=(3, 2))
    with pytest.raises(ValueError, match="keep"):
        TrainingOptions(keep="first")


@pytest.mark.parametrize("fixed", [False, True])
def test_keep_best_ends_with_the_best_validation_epoch_and_reports_both(small_digits, fixed):
    config = ArithmeticConfig() if fixed else None
    options = dict(epochs=4)
    last = train(_spec(seed=3), small_digits, config=config, options=TrainingOptions(**options))
    best = train(_spec(seed=3), small_digits, config=config, options=TrainingOptions(keep="best", **options))
    validation = [r.val_accuracy for r in last.history]
    chosen = validation.index(max(validation)) + 1
    for result in (last, best):
        assert result.best.epoch == chosen and result.last.epoch == 4
        assert result.best.val == max(validation) and result.last.val == validation[-1]
    assert best.best == last.best and best.last == last.last  # both runs measured the same weights
    assert (last.test_accuracy, last.val_accuracy) == (last.last.test, last.last.val)
    assert (best.test_accuracy, best.val_accuracy) == (best.best.test, best.best.val)
    # The network ends with the kept weights.
    from ssdfa.model.training import accuracy

    x_val = best.network.quantize_inputs(small_digits.x_val) if fixed else small_digits.x_val
    assert accuracy(best.network, x_val, small_digits.y_val) == best.best.val


@pytest.mark.parametrize("fixed", [False, True])
def test_angles_are_recorded_per_hidden_layer_and_epoch(small_digits, fixed):
    spec = NetworkSpec((64, 24, 16, 10), balanced=True, feedback_gain=8.0)
    config = ArithmeticConfig() if fixed else None
    result = train(spec, small_digits, config=config, options=TrainingOptions(epochs=2, angles=True))
    for record in result.history:
        assert len(record.alignment_angles) == 2 and len(record.update_angles) == 2
        assert all(0 <= a <= 180 for a in record.alignment_angles + record.update_angles)
    # The last epoch's record is the trained network's angles.
    from ssdfa.model.angles import alignment_angles

    assert list(result.history[-1].alignment_angles) == pytest.approx(alignment_angles(result.network))
    plain = train(spec, small_digits, config=config, options=TrainingOptions(epochs=1))
    assert plain.history[0].alignment_angles is None


def test_saturated_outputs_criterion_and_a_fixed_run_it_stops(small_digits):
    fmt = FixedFormat(4, 12)
    outputs = np.zeros((8, 10), dtype=np.int64)
    outputs[:2, :] = fmt.max_raw  # 20 of 80 at the bounds: the limit
    found = divergence.saturated_outputs(outputs, fmt, 1)
    assert found is not None and "25% of the outputs are saturated" in found.message
    outputs[1, 0] = 0
    assert divergence.saturated_outputs(outputs, fmt, 1) is None
    # Shift 2 and gain 8: the outputs run to the bounds of SQ(4,12) within the first epoch.
    result = train(_spec(gain=8.0), small_digits, config=ArithmeticConfig(shift=2), options=TrainingOptions(epochs=3))
    assert result.diverged and result.divergence.criterion == "saturated" and result.test_accuracy is None


def test_float64_weights_that_run_away_are_a_divergence(small_digits):
    options = TrainingOptions(epochs=2, lr=4.0, batch=4, float_dtype=np.float64)
    result = train(_spec(gain=64.0), small_digits, options=options)
    assert result.diverged and result.divergence.criterion == "runaway" and "limit 2^16" in result.divergence.message


def test_input_shift_scales_every_split_exactly():
    from ssdfa.model.datasets import shift_features

    data = limit_samples(load_dataset("digits"), 50, val=10, test=10)
    shifted = shift_features(data, 2)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(shifted, f"x_{split}") * 4, getattr(data, f"x_{split}"))
    assert shift_features(data, 0) is data
    with pytest.raises(Exception, match="input shift"):
        shift_features(data, 17)
