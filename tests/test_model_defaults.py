"""The rule behind the default feedback gain and learning rate (docs/model.md section 1.1)."""

from __future__ import annotations

import math

import pytest

from ssdfa.model.arithmetic import FixedFormat
from ssdfa.model.defaults import default_feedback_gain, default_hyperparameters, default_shift, max_feedback_bound


@pytest.mark.parametrize(
    ("fan_in", "hidden", "shift", "gain"),
    [
        (64, 100, 4, 8.0),  # digits: the values chosen on its validation split
        (64, 32, 4, 8.0),  # the demo network
        (64, 16, 4, 4.0),  # bound 8/16 would exceed 0.38 (digits 64-16-10: 69% validation with 8, 91% with 4)
        (64, 10, 4, 2.0),  # 64-10-10 diverges with gain 8
        (784, 100, 5, 4.0),  # MNIST and Fashion-MNIST
        (784, 64, 5, 4.0),  # bound 4/64 = 2^-4: learns
        (784, 50, 5, 2.0),  # bound 4/50 stalls at 17%
        (784, 32, 5, 2.0),  # bound 4/32 diverges
        (784, 16, 5, 1.0),
        (3072, 400, 5, 4.0),  # CIFAR-10
        (3072, 100, 5, 1.0),  # at most 100 / 64 over 3,072 inputs
        (16, 100, 4, 16.0),
        (1, 100, 3, 32.0),
        (1 << 20, 100, 8, 1.0),  # the gain never drops below the paper's range
    ],
)
def test_rule_gives_the_documented_values(fan_in, hidden, shift, gain):
    rule = default_hyperparameters(fan_in, (hidden, 400))
    assert (rule.shift, rule.feedback_gain, rule.lr) == (shift, gain, 2.0**-shift)


def test_the_bound_of_the_narrowest_layer_stays_within_the_rules_maximum():
    for fan_in in (64, 200, 784, 3072):
        for neurons in range(10, 600, 3):
            gain = default_feedback_gain(fan_in, neurons)
            assert gain == default_feedback_gain(fan_in) or gain / neurons <= max_feedback_bound(fan_in) or gain == 1
            assert gain / neurons > max_feedback_bound(fan_in) / 2 or gain == default_feedback_gain(fan_in)


def test_both_factors_are_powers_of_two_that_shrink_with_the_fan_in():
    previous = (0, float("inf"))
    for fan_in in range(1, 5000, 7):
        shift, gain = default_shift(fan_in), default_feedback_gain(fan_in)
        assert gain == 2 ** round(math.log2(gain)) and gain >= 1
        assert shift >= previous[0] and gain <= previous[1]
        previous = (shift, gain)


def test_fixed_batch_adds_log2_of_the_batch_to_the_shift():
    assert default_shift(64, 1) == 4
    assert default_shift(64, 4) == 6
    assert default_shift(784, 5) == 5 + 3


def test_gain_is_raised_until_the_feedback_format_holds_its_constants():
    # SQ(2,14) holds a bound of 8/100 with room to spare: the rule's gain stands.
    assert default_feedback_gain(64, 100, FixedFormat(2, 14)) == 8.0
    # SQ(2,6) has an LSB of 1/64: 4 LSBs over 100 neurons need a bound of 6.25/100, so gain 8.
    assert default_feedback_gain(784, 100, FixedFormat(2, 6)) == 8.0
    assert default_feedback_gain(784, 400, FixedFormat(2, 6)) == 32.0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_rule_refuses_a_fan_in_that_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="fan_in"):
        default_shift(bad)
