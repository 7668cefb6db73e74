"""The order of operations of a fixed-point layer: forward, output error, delta, update (§4-§7).

Every function here is the bit-exact definition of what a neuron computes; the training loop
in ``fixed_network`` only sequences them, and the RTL reproduces them. All narrowing goes
through ``arithmetic.cast``: products and sums are exact, and each step names its one cast.

Shapes: ``weights`` is (neurons, fan_in + 1) with the bias in the last column; per-sample
arrays are (batch, features). Raw values are int64, or float64 holding integers; each function
keeps the caller's dtype kind, and ``ArithmeticConfig.check_layer`` proves beforehand that every
intermediate fits (53 bits for float64, 62 for int64).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .arithmetic import (
    FLOAT_EXACT_BITS,
    MAX_WORD,
    FixedFormat,
    Overflow,
    Rounding,
    cast,
    quantize,
)

__all__ = [
    "Activation",
    "ArithmeticConfig",
    "LayerShape",
    "ForwardResult",
    "forward",
    "activate",
    "activation_derivative",
    "tanh_table",
    "output_error",
    "feedback_delta",
    "backprop_delta",
    "weight_update",
    "dense_feedback",
]


class Activation(enum.Enum):
    """Neuron non-linearities (§4.2). Hidden layers use one of the first three."""

    RELU = "relu"
    HARDTANH = "hardtanh"
    TANH = "tanh"  #: by lookup table over every raw value of the activation format
    IDENTITY = "identity"  #: the output layer

    @classmethod
    def parse(cls, name: str) -> Activation:
        try:
            return cls(str(name).lower())
        except ValueError:
            raise ValueError(
                f"unknown activation {name!r}; expected one of {', '.join(a.value for a in cls)}"
            ) from None


#: tanh is a table of 2**word entries: keep it to what a ROM can hold.
TANH_MAX_WORD = 16


def _bits_for_sum(terms: int) -> int:
    """Extra integer bits that a sum of ``terms`` values needs."""
    return max(0, math.ceil(math.log2(terms))) if terms > 1 else 0


@dataclass(frozen=True)
class LayerShape:
    """Fan-in, neurons and feedback connections per neuron of one layer."""

    fan_in: int
    neurons: int
    connections: int = 1  #: s: error words each neuron receives (M for dense DFA)

    def __post_init__(self) -> None:
        for name in ("fan_in", "neurons", "connections"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class ArithmeticConfig:
    """The per-quantity formats and modes of a fixed-point network (§1, §4-§7).

    Every layer of a network uses the same formats. ``rounding`` governs the casts on the
    signal path (pre-activation y, output error e, BP's back-propagated error g) and must be
    deterministic; ``update_rounding`` governs the casts on the learning path (delta and the
    weight step) and may be ``STOCH``, which draws from each neuron's LFSR (§5).
    """

    activation: FixedFormat = field(default_factory=lambda: FixedFormat(4, 12))
    weight: FixedFormat = field(default_factory=lambda: FixedFormat(2, 14))
    feedback: FixedFormat = field(default_factory=lambda: FixedFormat(2, 14))
    error: FixedFormat = field(default_factory=lambda: FixedFormat(2, 14))
    delta: FixedFormat = field(default_factory=lambda: FixedFormat(2, 14))
    bp_error: FixedFormat = field(default_factory=lambda: FixedFormat(4, 12))
    rounding: Rounding = Rounding.RND
    update_rounding: Rounding = Rounding.STOCH
    overflow: Overflow = Overflow.SAT
    shift: int = 4  #: learning rate 2**-shift
    seed: int = 1  #: network seed for the per-neuron LFSR seeds (§5.2)

    def __post_init__(self) -> None:
        # Text is accepted wherever a format or a mode is ("SQ(2,14)", "STOCH"), as NetworkSpec
        # accepts "ssdfa"; the frozen fields hold the parsed values.
        for name in ("activation", "weight", "feedback", "error", "delta", "bp_error"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, FixedFormat.parse(value))
            elif not isinstance(value, FixedFormat):
                raise TypeError(f"{name} must be a FixedFormat or text such as 'SQ(2,14)', not {value!r}")
        for name, kind in (("rounding", Rounding), ("update_rounding", Rounding), ("overflow", Overflow)):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, kind.parse(value))
            elif not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__name__} or its name, not {value!r}")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**32:
            # LFSR seeds are taken modulo 2^32 (§5.2): a larger or negative seed would alias another.
            raise ValueError(f"seed must be an integer from 0 to 2^32 - 1, not {self.seed!r}")
        if self.rounding is Rounding.STOCH:
            raise ValueError(
                "rounding (signal path: y, e, g) must be deterministic; STOCH is for update_rounding"
            )
        if not isinstance(self.shift, (int, np.integer)) or not 0 <= self.shift <= 30:
            raise ValueError(f"shift must be an integer from 0 to 30, not {self.shift!r}")

    # -- widths of the exact intermediates (§6, §8) ------------------------------------------

    def accumulator_format(self, fan_in: int) -> FixedFormat:
        """The accumulator that cannot overflow for ``fan_in`` inputs plus the bias (§4.1)."""
        return _exact_format(
            self.weight.word + self.activation.word + _bits_for_sum(fan_in + 1),
            self.weight.frac_bits + self.activation.frac_bits,
        )

    def fprime_frac(self, activation: Activation) -> int:
        """Fraction bits of the stored derivative f' (§4.3): f_a for tanh, else 0 (f' is 0 or 1)."""
        return self.activation.frac_bits if activation is Activation.TANH else 0

    def fprime_word(self, activation: Activation) -> int:
        return self.activation.frac_bits + 1 if activation is Activation.TANH else 1

    def delta_product_bits(self, connections: int, activation: Activation) -> int:
        """Bits of the exact sum of b*e*f' products before the delta cast (§6.1)."""
        return (
            self.feedback.word
            + self.error.word
            + _bits_for_sum(connections)
            + self.fprime_word(activation)
            + 1  # f' is unsigned: one more bit to hold it in a signed product
        )

    def backprop_product_bits(self, next_neurons: int, activation: Activation) -> int:
        """Bits of the exact sums on BP's path: W^T delta, then g * f' (§6.3)."""
        transposed = self.weight.word + max(self.delta.word, self.error.word) + _bits_for_sum(next_neurons)
        return max(transposed, self.bp_error.word + self.fprime_word(activation) + 1)

    def update_product_bits(self, batch: int) -> int:
        """Bits of the exact sum of delta*x over a batch before the step cast (§7)."""
        delta_word = max(self.delta.word, self.error.word)  # the output layer's delta is e
        return delta_word + self.activation.word + 1 + _bits_for_sum(batch)

    def _step_discarded_bits(self) -> int:
        delta_frac = max(self.delta.frac_bits, self.error.frac_bits)
        return delta_frac + self.activation.frac_bits + self.shift - self.weight.frac_bits

    def check_layer(self, shape: LayerShape, activation: Activation, batch: int = 1) -> int:
        """Refuse a layer whose exact intermediates cannot be held; return the widest (bits).

        Raises ValueError naming the quantity that does not fit in MAX_WORD bits.
        """
        widths = {
            # The width itself, not accumulator_format(): that would refuse first, unnamed.
            "accumulator": self.weight.word + self.activation.word + _bits_for_sum(shape.fan_in + 1),
            "delta product": self.delta_product_bits(shape.connections, activation),
            "weight step": self.update_product_bits(batch),
            "weight update": self.weight.word + 1,
            # STOCH adds an offset below 2**d to the step before dropping d bits (§2.1).
            "stochastic step": self._step_discarded_bits() + 1,
        }
        for quantity, bits in widths.items():
            if bits > MAX_WORD:
                raise ValueError(
                    f"{quantity} needs {bits} bits for fan-in {shape.fan_in}, "
                    f"{shape.connections} connections and batch {batch}: more than {MAX_WORD}"
                )
        if activation is Activation.TANH and self.activation.word > TANH_MAX_WORD:
            raise ValueError(
                f"tanh is a table over the activation format {self.activation}: "
                f"its word must be at most {TANH_MAX_WORD} bits"
            )
        return max(widths.values())

    def exact_dtype(self, shape: LayerShape, activation: Activation, batch: int = 1):
        """float64 when every intermediate fits 53 bits (BLAS is exact there), else int64 (§8.1)."""
        widest = self.check_layer(shape, activation, batch)
        return np.float64 if widest <= FLOAT_EXACT_BITS else np.int64


def _exact_format(word: int, frac_bits: int) -> FixedFormat:
    if word > MAX_WORD:
        raise ValueError(f"an exact intermediate needs {word} bits, more than {MAX_WORD}")
    return FixedFormat(word - frac_bits, frac_bits)


def _scratch(array):
    """``array`` as ``cast``'s ``out`` when it is a fresh int64/float64 intermediate, else None."""
    return array if array.dtype in (np.int64, np.float64) else None


def _matmul(a, b):
    """Exact integer matrix product in the operands' dtype (float64 through BLAS, or int64)."""
    return a @ b


# --------------------------------------------------------------------------------------------
# Forward (§4)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardResult:
    """What a layer's forward pass leaves behind: y, a = f(y), and the stored derivative f'."""

    pre_activation: np.ndarray  #: y, activation format
    activation: np.ndarray  #: a = f(y), activation format
    derivative: np.ndarray  #: f'(y) with ``ArithmeticConfig.fprime_frac`` fraction bits


def forward(weights, inputs, cfg: ArithmeticConfig, activation: Activation) -> ForwardResult:
    """acc = sum_j W_ij x_j + W_i,bias * 1; y = cast(acc); a = f(y) (§4.1-§4.3).

    The bias input is the exact constant 1, i.e. ``2**f_x`` in raw units of x (§4.1).
    """
    fan_in = weights.shape[1] - 1
    acc = _matmul(inputs, weights[:, :fan_in].T)
    acc += np.ldexp(weights[:, fan_in], cfg.activation.frac_bits) if acc.dtype.kind == "f" else (
        weights[:, fan_in] << cfg.activation.frac_bits
    )
    acc_frac = cfg.weight.frac_bits + cfg.activation.frac_bits
    y = cast(acc, acc_frac, cfg.activation, cfg.rounding, cfg.overflow, out=_scratch(acc))
    a = activate(y, cfg.activation, activation)
    return ForwardResult(y, a, activation_derivative(y, a, cfg.activation, activation))


def activate(y, fmt: FixedFormat, activation: Activation):
    """a = f(y) on raw values of ``fmt`` (§4.2). relu and hardtanh are exact; tanh is a table."""
    if activation is Activation.IDENTITY:
        return y
    if activation is Activation.RELU:
        return np.maximum(y, 0)
    one = 1 << fmt.frac_bits
    if activation is Activation.HARDTANH:
        return np.clip(y, max(-one, fmt.min_raw), min(one, fmt.max_raw))
    if activation is Activation.TANH:
        table = tanh_table(fmt)
        index = (np.asarray(y) - fmt.min_raw).astype(np.intp)
        return table[index].astype(np.asarray(y).dtype)
    raise ValueError(f"unknown activation {activation!r}")


@lru_cache(maxsize=16)
def tanh_table(fmt: FixedFormat) -> np.ndarray:
    """tanh of every raw value of ``fmt``, indexed by ``raw - fmt.min_raw`` (§4.2).

    Entry = quantize(tanh(value)): round half to even, saturate. The RTL's ROM is this array.
    """
    if fmt.word > TANH_MAX_WORD:
        raise ValueError(f"tanh table for {fmt}: the word must be at most {TANH_MAX_WORD} bits")
    raw = np.arange(fmt.min_raw, fmt.max_raw + 1, dtype=np.int64)
    table = quantize(np.tanh(fmt.to_real(raw)), fmt)
    table.setflags(write=False)
    return table


def activation_derivative(y, a, fmt: FixedFormat, activation: Activation):
    """f' from what the neuron stores (§4.3).

    relu: 1 where y > 0. hardtanh: 1 where -1 < y < 1. identity: 1. These are 0/1 with no
    fraction bits. tanh: 1 - a^2 truncated (TRN) to f_a fraction bits, an unsigned
    UQ(1, f_a) value; 1 - a^2 is never negative because the table never exceeds 1.
    """
    dtype = np.asarray(y).dtype
    if activation is Activation.IDENTITY:
        return np.ones_like(y)
    if activation is Activation.RELU:
        return (y > 0).astype(dtype)
    one = 1 << fmt.frac_bits
    if activation is Activation.HARDTANH:
        return ((y > -one) & (y < one)).astype(dtype)
    if activation is Activation.TANH:
        a = np.asarray(a)
        squared_complement = float(one * one) - a * a if dtype.kind == "f" else one * one - a * a
        return cast(squared_complement, 2 * fmt.frac_bits, FixedFormat(2, fmt.frac_bits), Rounding.TRN, Overflow.SAT)
    raise ValueError(f"unknown activation {activation!r}")


# --------------------------------------------------------------------------------------------
# Output error (§6.0)
# --------------------------------------------------------------------------------------------


def output_error(outputs, targets, cfg: ArithmeticConfig):
    """e = cast(a_L - onehot(target)) into the error format (§6.0).

    ``outputs`` are the output layer's activations (activation format, identity f);
    ``targets`` are class indices. The difference is exact at f_a fraction bits.
    """
    outputs = np.asarray(outputs)
    diff = outputs.copy()
    one = 1 << cfg.activation.frac_bits
    diff[np.arange(diff.shape[0]), np.asarray(targets)] -= one
    return cast(diff, cfg.activation.frac_bits, cfg.error, cfg.rounding, cfg.overflow)


# --------------------------------------------------------------------------------------------
# Hidden deltas (§6)
# --------------------------------------------------------------------------------------------


def dense_feedback(index, value, outputs: int, dtype=np.float64) -> np.ndarray:
    """The (neurons, outputs) feedback matrix B from per-neuron (index, raw value) tables.

    ``index`` and ``value`` are (neurons, s): neuron i receives error index[i, k] weighted by
    value[i, k]. Repeated indices add up.
    """
    index = np.asarray(index)
    value = np.asarray(value)
    dense = np.zeros((index.shape[0], outputs), dtype=dtype)
    rows = np.repeat(np.arange(index.shape[0]), index.shape[1])
    np.add.at(dense, (rows, index.ravel()), value.ravel().astype(dtype))
    return dense


def feedback_delta(errors, derivative, feedback, cfg: ArithmeticConfig, activation: Activation, random_bits=None):
    """delta_i = cast(sum_k b_ik e_k(i) * f'_i), the three-scalar product for s = 1 (§6.1).

    Parameters
    ----------
    errors : (batch, outputs) raw, error format
    derivative : (batch, neurons) raw f' (``cfg.fprime_frac(activation)`` fraction bits)
    feedback : (neurons, outputs) raw, feedback format; row i holds neuron i's s non-zeros
        (``dense_feedback`` builds it from the index/value tables the router uses)
    random_bits : (batch, neurons) draws, for STOCH update rounding (§5.3)
    """
    received = _matmul(errors, feedback.T)  # sum_k b_ik e_k: exact, frac f_b + f_e
    product = received * derivative  # exact, frac f_b + f_e + f_f'
    frac = cfg.feedback.frac_bits + cfg.error.frac_bits + cfg.fprime_frac(activation)
    return cast(product, frac, cfg.delta, cfg.update_rounding, cfg.overflow, random_bits, out=_scratch(product))


def backprop_delta(
    next_delta, next_delta_frac: int, next_weights, derivative, cfg: ArithmeticConfig, activation: Activation,
    random_bits=None,
):
    """BP in fixed point (§6.3): g = cast(W_next^T delta_next) into bp_error; delta = cast(g f').

    ``next_weights`` is (next neurons, neurons + 1); its bias column takes no part.
    """
    neurons = next_weights.shape[1] - 1
    transported = _matmul(next_delta, next_weights[:, :neurons])  # exact, frac f_d' + f_w
    g = cast(transported, next_delta_frac + cfg.weight.frac_bits, cfg.bp_error, cfg.rounding, cfg.overflow)
    product = g * derivative
    frac = cfg.bp_error.frac_bits + cfg.fprime_frac(activation)
    return cast(product, frac, cfg.delta, cfg.update_rounding, cfg.overflow, random_bits)


# --------------------------------------------------------------------------------------------
# Weight update (§7)
# --------------------------------------------------------------------------------------------


def weight_update(weights, delta, delta_frac: int, inputs, cfg: ArithmeticConfig, random_bits=None):
    """W <- cast(W - cast(sum_batch delta_i x_j * 2**-shift)) (§7).

    The inner cast rounds the step into the weight format (``update_rounding``, one LFSR draw
    per weight in address order, bias last, when STOCH); the outer cast only handles overflow,
    since W and the step share fraction bits. ``delta_frac`` is the delta's fraction bits:
    ``cfg.delta.frac_bits`` for hidden layers, ``cfg.error.frac_bits`` for the output layer,
    whose delta is e itself.

    Returns the new weights (a new array, of the dtype of ``weights`` combined with the step's).
    """
    x_frac = cfg.activation.frac_bits
    delta = np.asarray(delta)
    inputs = np.asarray(inputs)
    fan_in = inputs.shape[1]
    dtype = np.result_type(weights, delta, inputs)
    # The exact products go straight into one buffer, bias column last; every later step
    # (both casts and the subtraction) overwrites that buffer in place.
    step = np.empty((delta.shape[1], fan_in + 1), dtype=dtype)
    if delta.shape[0] == 1:
        np.multiply.outer(delta[0], inputs[0], out=step[:, :fan_in])  # batch 1: the hardware's case
        bias_in = delta[0]
    else:
        np.matmul(delta.T, inputs, out=step[:, :fan_in])  # exact: BLAS in float64, or int64
        bias_in = delta.sum(axis=0)
    if dtype.kind == "f":
        np.multiply(bias_in, float(1 << x_frac), out=step[:, fan_in])
    else:
        np.left_shift(bias_in, x_frac, out=step[:, fan_in])
    cast(
        step,
        delta_frac + x_frac + cfg.shift,
        cfg.weight,
        cfg.update_rounding,
        cfg.overflow,
        random_bits,
        out=step,
    )
    np.subtract(weights, step, out=step)
    return cast(step, cfg.weight.frac_bits, cfg.weight, Rounding.TRN, cfg.overflow, out=step)
