"""The one rule that gives the feedback gain and the learning rate of a network by default.

``ssdfa train``, ``ssdfa study``, ``ssdfa cosim --network`` and ``ssdfa demo`` all take their
defaults from ``default_hyperparameters``; docs/model.md section 1.1 explains the rule.

One sample moves a hidden neuron's pre-activation by about ``lr * b * e * |x|^2`` (the step
``lr * b * e * x`` of its weights, applied to the same input ``x``), so the product of the
learning rate and the feedback gain is what a wider input must shrink. The rule scales that
product by ``1/sqrt(n)``, ``n`` being the first layer's fan-in, and splits it evenly between
the two factors, each ``(64 / n)**(1/4)`` times its value on the 64 inputs of digits, where
both were chosen on the validation split (learning rate 2^-4, gain 8):

- learning rate ``2**-shift``, ``shift = round(4 + log2(n / 64) / 4)``;
- feedback gain ``2**round(3 - log2(n / 64) / 4)``, at least 1; it multiplies the paper's
  bound ``1/N`` of SSDFA's constants (N hidden neurons).

Both are powers of two (rounded to the nearest, halves up): the learning rate is the hardware's
right shift, and a power-of-two gain scales the feedback constants exactly. On the 784 inputs
of MNIST and Fashion-MNIST the rule gives shift 5 and gain 4: half the product at which MNIST
diverges (shift 4, gain 4), where ``1/n`` scaling (shift 6, gain 2) learns more slowly.

The gain multiplies the bound ``1/N``, so a narrower hidden layer gets larger constants and
larger steps: the gain is therefore at most the largest power of two that keeps the bound
``gain / N`` (N: the narrowest hidden layer) within ``MAX_BOUND_784 * 784 / n``
(``MAX_BOUND_784`` = 2^-4 at MNIST's 784 inputs and shift 5, scaled by ``1/n`` with the input's
``|x|^2`` and by the rule's learning rate). On MNIST the bound 2^-4 learns (784-64-10 with gain
4, 784-32-10 with gain 2, 784-16-10 with gain 1) and twice it diverges (784-32-10 with gain 4);
784-50-10 with gain 4 (0.08) stalls at 17%. Layers of 64 or more on MNIST and of 24 or more on
digits keep the rule's gain.

In fixed point the formats enter twice. A batch of B samples sums its steps (docs/arithmetic.md
§7), so the shift grows by ``ceil(log2 B)``. And the gain is raised, if needed, until the bound
``gain / N`` covers ``FEEDBACK_MIN_LSBS`` steps of the feedback format: with fewer, most
constants would quantise to zero and their neurons would never learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .arithmetic import FixedFormat

__all__ = [
    "Hyperparameters",
    "default_hyperparameters",
    "default_shift",
    "default_feedback_gain",
    "FEEDBACK_MIN_LSBS",
    "MAX_BOUND_784",
    "max_feedback_bound",
]

#: The fan-in, shift and log2(gain) the rule is anchored to: digits' values.
REFERENCE_FAN_IN = 64
REFERENCE_SHIFT = 4
REFERENCE_GAIN_EXPONENT = 3
#: The feedback bound gain/N must reach this many LSBs of a fixed-point feedback format.
FEEDBACK_MIN_LSBS = 4
#: The largest feedback bound gain/N on 784 inputs at the rule's shift 5 (module text); on n
#: inputs at shift s it is ``MAX_BOUND_784 * (784 / n) * 2**(s - 5)``.
MAX_BOUND_784 = 2.0**-4


@dataclass(frozen=True)
class Hyperparameters:
    """What the rule gives a network: the learning-rate shift and the feedback gain.

    ``lr`` is ``2**-shift`` per sample; a float run with a batch averages the batch's gradient,
    so it takes ``lr`` as it is, while the fixed-point batched mode sums it and needs the shift
    of ``default_shift(..., batch)``.
    """

    shift: int
    feedback_gain: float

    @property
    def lr(self) -> float:
        return 2.0**-self.shift


def _check_positive(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _quarter_octaves(fan_in: int) -> float:
    """log2((fan_in / 64)**(1/4)): how far the rule moves each factor from digits' values."""
    return math.log2(fan_in / REFERENCE_FAN_IN) / 4


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def default_shift(fan_in: int, batch: int = 1) -> int:
    """``round(4 + log2(fan_in / 64) / 4) + ceil(log2(batch))``, at least 0."""
    _check_positive("fan_in", fan_in)
    _check_positive("batch", batch)
    per_sample = max(0, _round_half_up(REFERENCE_SHIFT + _quarter_octaves(fan_in)))
    return per_sample + math.ceil(math.log2(batch))


def max_feedback_bound(fan_in: int) -> float:
    """The largest bound ``gain / N`` the rule gives a hidden layer behind ``fan_in`` inputs."""
    return MAX_BOUND_784 * (784 / fan_in) * 2.0 ** (default_shift(fan_in) - 5)


def default_feedback_gain(fan_in: int, neurons: int | None = None, feedback_format: FixedFormat | None = None) -> float:
    """``2**round(3 - log2(fan_in / 64) / 4)``, at least 1; given the narrowest hidden layer's
    ``neurons``, at most the largest power of two with ``gain / neurons <= max_feedback_bound``
    (but at least 1); with a fixed-point ``feedback_format`` too, raised until ``gain / neurons``
    covers ``FEEDBACK_MIN_LSBS`` LSBs of the format."""
    _check_positive("fan_in", fan_in)
    exponent = max(0, _round_half_up(REFERENCE_GAIN_EXPONENT - _quarter_octaves(fan_in)))
    if neurons is not None:
        _check_positive("neurons", neurons)
        exponent = min(exponent, max(0, math.floor(math.log2(neurons * max_feedback_bound(fan_in)))))
    if feedback_format is not None and neurons is not None:
        lsb = 2.0**-feedback_format.frac_bits
        exponent = max(exponent, math.ceil(math.log2(FEEDBACK_MIN_LSBS * lsb * neurons)))
    return float(2**exponent)


def default_hyperparameters(
    fan_in: int,
    hidden: tuple | list | None = None,
    *,
    batch: int = 1,
    feedback_format: FixedFormat | None = None,
) -> Hyperparameters:
    """The rule for a network whose first layer has ``fan_in`` inputs (see the module's text).

    ``hidden`` (the hidden layer sizes) and ``feedback_format`` are needed only for the
    fixed-point floor on the gain; ``batch`` only for the fixed-point shift.
    """
    neurons = min(hidden) if hidden else None
    return Hyperparameters(
        shift=default_shift(fan_in, batch),
        feedback_gain=default_feedback_gain(fan_in, neurons, feedback_format),
    )
