"""The arithmetic contract: fixed-point formats, the one ``cast``, and the LFSR behind STOCH.

This module and ``docs/arithmetic.md`` are the single definition of how numbers behave in
ssdfa. The RTL implements exactly what is written here; nothing else in the project rounds,
saturates or wraps a fixed-point value. Section numbers (§) refer to docs/arithmetic.md.

Raw values are integer arrays: ``int64``, or ``float64`` holding integers (so that matrix
products go through BLAS exactly while every partial sum stays below 2**53). ``cast`` accepts
either and returns the dtype it was given, exactly within the limits of §8.4 (int64: every
value and shift; float64: values within +-2**52, formats of up to 53 bits), refusing the rest.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "Rounding",
    "Overflow",
    "FixedFormat",
    "cast",
    "cast_plan",
    "CastPlan",
    "quantize",
    "stochastic_offsets",
    "LFSR_WIDTH",
    "LFSR_TAPS",
    "STOCH_BITS",
    "lfsr_step",
    "lfsr_seed",
    "layer_seed",
    "LfsrBank",
    "MAX_WORD",
    "FLOAT_EXACT_BITS",
    "FLOAT_RAW_LIMIT",
    "FLOAT_MAX_WORD",
]

#: The widest word a format may have: raw values and their products must fit int64 (§1).
MAX_WORD = 62
#: float64 holds every integer of up to 53 bits exactly (§8).
FLOAT_EXACT_BITS = 53
#: The float64 path of ``cast`` (§8.4) takes raw values of at most this magnitude: the integers
#: of a 53-bit two's complement word, so that every step of every mode stays exact.
FLOAT_RAW_LIMIT = 1 << (FLOAT_EXACT_BITS - 1)
#: The float64 path writes results of words of up to this many bits (exact in float64).
FLOAT_MAX_WORD = FLOAT_EXACT_BITS


class Rounding(enum.Enum):
    """How ``cast`` drops fraction bits (§2). Names follow the usual fixed-point conventions."""

    TRN = "TRN"  #: toward -inf (drop the bits; two's complement truncation)
    TRN_ZERO = "TRN_ZERO"  #: toward zero
    RND = "RND"  #: to nearest, ties toward +inf
    RND_CONV = "RND_CONV"  #: to nearest, ties to even (convergent rounding)
    STOCH = "STOCH"  #: stochastic: add STOCH_BITS random bits below the kept LSB, then TRN

    @classmethod
    def parse(cls, name: str) -> Rounding:
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ValueError(
                f"unknown rounding mode {name!r}; expected one of {', '.join(m.name for m in cls)}"
            ) from None


class Overflow(enum.Enum):
    """What ``cast`` does with a value outside the target range (§3)."""

    WRAP = "WRAP"  #: keep the low bits (two's complement wrap-around)
    SAT = "SAT"  #: clamp to the nearest representable value

    @classmethod
    def parse(cls, name: str) -> Overflow:
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ValueError(
                f"unknown overflow mode {name!r}; expected one of {', '.join(m.name for m in cls)}"
            ) from None


_FORMAT_PATTERN = re.compile(r"^\s*([SU])Q\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FixedFormat:
    """A two's complement (or unsigned) fixed-point format (§1).

    Parameters
    ----------
    int_bits : int
        Integer bits, counting the sign bit of a signed format (>= 1 signed, >= 0 unsigned).
    frac_bits : int
        Fraction bits (>= 0). The value of a raw integer ``r`` is ``r * 2**-frac_bits``.
    signed : bool
        Two's complement when true.

    Raises
    ------
    ValueError
        If a bit count is negative, the word is empty or wider than ``MAX_WORD`` bits.
    """

    int_bits: int
    frac_bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        for name in ("int_bits", "frac_bits"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if self.frac_bits < 0:
            raise ValueError(f"format {self}: frac_bits must be >= 0, not {self.frac_bits}")
        min_int = 1 if self.signed else 0
        if self.int_bits < min_int:
            raise ValueError(
                f"format {self}: int_bits must be >= {min_int} "
                f"({'it counts the sign bit' if self.signed else 'unsigned'}), not {self.int_bits}"
            )
        if not 1 <= self.word <= MAX_WORD:
            raise ValueError(f"format {self}: the word must have 1 to {MAX_WORD} bits, not {self.word}")

    @classmethod
    def parse(cls, text: str) -> FixedFormat:
        """Read ``SQ(i,f)`` or ``UQ(i,f)``; a ValueError names anything else."""
        match = _FORMAT_PATTERN.match(str(text))
        if not match:
            raise ValueError(f"bad fixed-point format {text!r}; expected SQ(int_bits,frac_bits) or UQ(...)")
        kind, int_bits, frac_bits = match.groups()
        return cls(int(int_bits), int(frac_bits), signed=kind.upper() == "S")

    @property
    def word(self) -> int:
        """Total bits: int_bits + frac_bits."""
        return self.int_bits + self.frac_bits

    @property
    def min_raw(self) -> int:
        return -(1 << (self.word - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.word - 1)) - 1 if self.signed else (1 << self.word) - 1

    @property
    def lsb(self) -> float:
        """The real value of one raw unit."""
        return 2.0**-self.frac_bits

    def to_real(self, raw) -> np.ndarray:
        """Real values of raw integers (float64; exact for words of up to 53 bits)."""
        return np.ldexp(np.asarray(raw, dtype=np.float64), -self.frac_bits)

    def contains(self, raw) -> bool:
        """True when every raw value lies in this format's range."""
        raw = np.asarray(raw)
        return bool(raw.size == 0 or (raw.min() >= self.min_raw and raw.max() <= self.max_raw))

    def __str__(self) -> str:
        return f"{'S' if self.signed else 'U'}Q({self.int_bits},{self.frac_bits})"


# --------------------------------------------------------------------------------------------
# cast (§2, §3)
# --------------------------------------------------------------------------------------------


def _pow2(exponent: int) -> float:
    """2**exponent as a float; multiplying by it is exact (like ldexp) for our magnitudes."""
    return math.ldexp(1.0, exponent)


def stochastic_offsets(random_bits, discarded: int):
    """Align STOCH_BITS-bit random draws under the kept LSB (§2.1).

    With ``d`` discarded bits the offset is ``r << (d - STOCH_BITS)`` when ``d >= STOCH_BITS``
    and ``r >> (STOCH_BITS - d)`` otherwise: the draw's top bits sit just below the kept LSB.
    Float draws give float64 offsets, integer draws int64; the result is a new array.
    """
    r = np.asarray(random_bits)
    if r.dtype.kind == "f":
        return _float_offsets(r, discarded)
    r = r.astype(np.int64, copy=False)
    if discarded >= STOCH_BITS:
        return r << (discarded - STOCH_BITS)
    return r >> (STOCH_BITS - discarded)


def _float_offsets(random_bits, discarded: int) -> np.ndarray:
    """``stochastic_offsets`` as float64, in one pass from the draws' own dtype (uint16 or float).

    The product by a power of two is exact; floor drops the unused low bits when d < STOCH_BITS.
    """
    offsets = np.multiply(random_bits, _pow2(discarded - STOCH_BITS), dtype=np.float64)
    if discarded < STOCH_BITS:
        np.floor(offsets, out=offsets)
    return offsets


def cast(
    raw, frac_bits: int, fmt: FixedFormat, rounding: Rounding, overflow: Overflow, random_bits=None, *, out=None
):
    """Narrow exact raw values to ``fmt``: round (§2), then handle overflow (§3).

    Parameters
    ----------
    raw : array of int64 (any values), or float64 holding integers within +-2**52
        The exact value, with ``frac_bits`` fraction bits. Other integer dtypes are converted
        to int64; a value that does not fit, or a float64 value beyond 2**52, is refused
        (the limits of each path, §8.4).
    frac_bits : int
        Fraction bits of ``raw`` (may be more or fewer than ``fmt.frac_bits``).
    fmt : FixedFormat
        The target format.
    rounding, overflow : Rounding, Overflow
        Every cast names both.
    random_bits : array of STOCH_BITS-bit integers, broadcastable to ``raw``
        One draw per value, required for ``Rounding.STOCH`` (see ``LfsrBank``); ignored otherwise.
    out : ndarray, optional
        Receives the result: an array of ``raw``'s shape and (int64 or float64) dtype, which may
        be ``raw`` itself (an in-place cast, which saves the model a copy). The values are the
        same as without ``out``.

    Returns
    -------
    Raw values in ``fmt``, same dtype as ``raw`` (``out`` when given).

    The steps themselves are those of a ``CastPlan``: this function checks its arguments and
    runs the plan of its parameters, so there is one implementation of every mode.
    """
    raw = np.asarray(raw)
    if raw.ndim == 0:
        # In-place steps below need an array; a 0-d input keeps returning a NumPy scalar.
        bits = None if random_bits is None else np.asarray(random_bits).reshape(1)
        result = cast(raw.reshape(1), frac_bits, fmt, rounding, overflow, bits)
        if out is not None:
            out[...] = result[0]
            return out
        return result[0]
    if not isinstance(frac_bits, (int, np.integer)) or isinstance(frac_bits, bool):
        raise TypeError(f"cast: frac_bits must be an integer, not {frac_bits!r}")
    raw = _checked_raw(raw)
    is_float = raw.dtype.kind == "f"
    if out is not None and (out.shape != raw.shape or out.dtype != raw.dtype):
        raise ValueError(f"cast: out must be a {raw.dtype} array of shape {raw.shape}, not {out.dtype} {out.shape}")
    if rounding is Rounding.STOCH:
        if random_bits is None:
            raise ValueError("Rounding.STOCH needs random_bits (one LFSR draw per value)")
        random_bits = np.asarray(random_bits)
        if out is None and random_bits.shape != raw.shape:
            # Draws of a larger broadcast shape give a result of that shape.
            raw = np.broadcast_to(raw, np.broadcast_shapes(raw.shape, random_bits.shape))
    return cast_plan(frac_bits, fmt, rounding, overflow, is_float)(raw, random_bits, out=out)


def _checked_raw(raw: np.ndarray) -> np.ndarray:
    """``raw`` as int64 or float64 within the limits of its path (§8.4); ValueError otherwise."""
    if raw.dtype == np.int64:
        return raw
    if raw.dtype.kind == "f":
        raw = raw.astype(np.float64, copy=False)
        if raw.size:
            # NaN propagates through min and max and fails the comparison too.
            low, high = raw.min(), raw.max()
            if not (-FLOAT_RAW_LIMIT <= low and high <= FLOAT_RAW_LIMIT):
                bad = high if not high <= FLOAT_RAW_LIMIT else low
                raise ValueError(
                    f"cast: float64 raw values must lie within +-2**{FLOAT_EXACT_BITS - 1} (exact integers), "
                    f"not {bad!r}; use int64 raw values"
                )
        return raw
    if raw.dtype.kind in "iub":
        if raw.dtype.kind == "u" and raw.size and raw.max() > np.iinfo(np.int64).max:
            raise ValueError(f"cast: raw value {raw.max()} does not fit int64")
        return raw.astype(np.int64)
    try:
        return np.asarray(raw, dtype=np.int64)
    except (OverflowError, TypeError, ValueError):
        raise ValueError(f"cast: raw values must be int64 or float64 integers, not {raw.dtype} values") from None


def cast_plan(
    frac_bits: int, fmt: FixedFormat, rounding: Rounding, overflow: Overflow, is_float: bool, value_range=None
) -> CastPlan:
    """The ``CastPlan`` of these parameters, built once and reused (plans are immutable)."""
    key = (int(frac_bits), fmt, rounding, overflow, bool(is_float), None if value_range is None else tuple(value_range))
    try:
        return _PLANS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable mode: let the plan refuse it
        return CastPlan(frac_bits, fmt, rounding, overflow, is_float, value_range)
    plan = _PLANS[key] = CastPlan(frac_bits, fmt, rounding, overflow, is_float, value_range)
    return plan


_PLANS: dict = {}


try:
    # The ufunc behind np.clip, without np.clip's Python-level argument handling (a few
    # microseconds per call, which batch-1 training pays many times per sample).
    from numpy._core.umath import clip as _clip
except ImportError:  # NumPy 1.x
    try:
        from numpy.core.umath import clip as _clip
    except ImportError:
        _clip = np.clip


class CastPlan:
    """One ``cast`` (§2, §3) with its parameters fixed: the NumPy steps are chosen once.

    ``cast`` runs a plan on every call; the training loop keeps plans to skip the argument
    handling, which costs more than the arithmetic on small arrays. A plan is exact within the
    limits of §8.4 (a float plan refuses a format wider than 53 bits when it is built; raw
    values must stay within +-2**52) and checks nothing about its arguments: ``raw`` (and ``out``) must be int64 arrays for an integer plan and
    float64 arrays for a float plan, ``random_bits`` of ``raw``'s shape (or broadcastable to
    it) for STOCH.

    Parameters
    ----------
    frac_bits, fmt, rounding, overflow
        As for ``cast``.
    is_float : bool
        Whether raw values are float64 (holding integers) or int64.
    value_range : (int, int), optional
        Bounds that every raw input is known to lie within (raw units, ``frac_bits`` fraction
        bits). When every rounded value of that range fits ``fmt``, the overflow step is the
        identity and is left out (``overflow_needed`` is then False); a STOCH float plan with
        d < 16 also leaves out clearing the draws' unused bits when the bounds keep the sum
        exact without it (see ``_stoch_float``).

    Attributes
    ----------
    discarded : int
        d = frac_bits - fmt.frac_bits, the fraction bits dropped.
    prescale : float or None
        Float plans: the exact power of two that the plan first multiplies ``raw`` by (1.0 when
        it does not). A caller may fold that multiplication into an earlier exact product (a
        power of two only moves the exponent) and pass ``prescaled=True``. None for int plans.
    """

    def __init__(
        self, frac_bits: int, fmt: FixedFormat, rounding: Rounding, overflow: Overflow, is_float: bool, value_range=None
    ) -> None:
        if not isinstance(overflow, Overflow):
            raise ValueError(f"unknown overflow mode {overflow!r}")
        d = int(frac_bits) - fmt.frac_bits
        if d > 0 and not isinstance(rounding, Rounding):
            raise ValueError(f"unknown rounding mode {rounding!r}")
        if is_float and fmt.word > FLOAT_MAX_WORD:
            # float64 cannot hold every value of a wider word (its maximum rounds up, out of range).
            raise ValueError(
                f"cast to {fmt}: the float64 path holds words of up to {FLOAT_MAX_WORD} bits, not {fmt.word}; "
                "use int64 raw values"
            )
        self.discarded = d
        self.fmt = fmt
        self.rounding = rounding
        self.overflow = overflow
        self.is_float = bool(is_float)
        self._min, self._max = fmt.min_raw, fmt.max_raw
        # Bounds of the array's own kind: clip then needs no conversion (the same values: NumPy
        # would convert the integers to float64 itself).
        self._low, self._high = (float(self._min), float(self._max)) if is_float else (self._min, self._max)
        self._span = 1 << fmt.word
        self.overflow_needed = value_range is None or not self._rounded_range_fits(*value_range)
        self._value_bound = None if value_range is None else max(abs(int(v)) for v in value_range)
        self.prescale = None
        if is_float:
            self._round, self.prescale = self._float_step(d, rounding)
        else:
            self._round = self._int_step(d, rounding)
        if not self.overflow_needed:
            self._limit = None
        elif overflow is Overflow.SAT:
            self._limit = self._saturate
        else:
            self._limit = self._wrap_float if is_float else self._wrap_int

    def __call__(self, raw, random_bits=None, *, out=None, prescaled: bool = False):
        """Cast ``raw`` (into ``out`` when given; ``out`` may be ``raw``).

        ``prescaled``: ``raw`` was already multiplied by ``prescale`` (float plans only).
        """
        value = self._round(raw, random_bits, out, prescaled)
        if self._limit is None:
            return value
        return self._limit(value)

    def _rounded_range_fits(self, low: int, high: int) -> bool:
        """Whether every value of [low, high], rounded by any mode, lies within ``fmt``.

        Every mode gives floor(v / 2**d) or ceil(v / 2**d): STOCH adds an offset below 2**d
        before flooring, RND half of it.
        """
        d = self.discarded
        if d > 0:
            low, high = low >> d, -((-high) >> d)
        else:
            low, high = low << -d, high << -d
        return self._min <= low and high <= self._max

    # -- rounding steps: each returns the rounded values, in ``out`` when given ----------------

    def _float_step(self, d: int, rounding: Rounding):
        """The rounding step of a float plan and its prescale.

        Exact for raw values of magnitude up to ``FLOAT_RAW_LIMIT`` (2**52) and every d (§8.4).
        Shifts beyond what such values can tell apart are clamped, which keeps every result and
        every power of two a normal float: up by at most 54 bits (any non-zero value has then
        left every format of up to 53 bits), down by at most 54 (every value is then within
        1/4 of zero, so each mode gives -1 or 0 whatever the exact d).
        """
        if d == 0:
            return self._keep, 1.0
        if d < 0:
            # Gaining fraction bits is exact; every rounding mode agrees.
            return self._scale_only, _pow2(min(-d, _FLOAT_CLAMP))
        if rounding is Rounding.STOCH:
            self._stoch_scale = _pow2(-STOCH_BITS)
            if d > _FLOAT_STOCH_DIRECT:
                # raw 2**(16-d) + r would need more than 53 bits; floor(raw 2**(16-d)) first,
                # which leaves the same result (r is an integer). From 2**53 on it is -1 or 0.
                return self._stoch_float_wide, _pow2(-min(d - STOCH_BITS, FLOAT_EXACT_BITS))
            # d < STOCH_BITS: the draw's low 16 - d bits are unused (§2.1); a mask clears them.
            self._unused_bits = max(STOCH_BITS - d, 0)
            self._draw_mask = ((1 << STOCH_BITS) - 1) >> self._unused_bits << self._unused_bits
            if self._unused_bits and self._value_bound is not None:
                # Unmasked, the low bits cannot carry into the kept ones (raw 2**(16-d) has
                # them all 0), so the mask only matters for exactness: the sum must stay an
                # integer below 2**53, as it does when raw is small enough.
                if (self._value_bound << self._unused_bits) + (1 << STOCH_BITS) <= 1 << FLOAT_EXACT_BITS:
                    self._unused_bits = 0
            return self._stoch_float, _pow2(STOCH_BITS - d)
        self._down = _pow2(-min(d, _FLOAT_CLAMP))
        steps = {
            Rounding.TRN: self._trn_float,
            Rounding.TRN_ZERO: self._trn_zero_float,
            Rounding.RND: self._rnd_float,
            Rounding.RND_CONV: self._rnd_conv_float,
        }
        return steps[rounding], self._down

    @staticmethod
    def _start(raw, out, scale: float, prescaled: bool):
        """raw * scale into ``out`` (a new array when None), or raw itself when already scaled."""
        if not prescaled:
            return np.multiply(raw, scale, out=out)
        if out is raw:
            return raw
        if out is None:
            return raw.copy()
        np.copyto(out, raw)
        return out

    def _keep(self, raw, random_bits, out, prescaled):
        # Nothing to round; only the overflow mode applies.
        return self._start(raw, out, 1.0, True)

    def _scale_only(self, raw, random_bits, out, prescaled):
        return self._start(raw, out, self.prescale, prescaled)

    # Multiplying by 2**-d is exact in float64, and so are floor/ceil/rint/trunc of the result.
    # Each step writes into one fresh array (or ``out``) instead of allocating a new one.

    def _trn_float(self, raw, random_bits, out, prescaled):
        value = self._start(raw, out, self._down, prescaled)
        return np.floor(value, out=value)

    def _trn_zero_float(self, raw, random_bits, out, prescaled):
        value = self._start(raw, out, self._down, prescaled)
        return np.trunc(value, out=value)

    def _rnd_float(self, raw, random_bits, out, prescaled):
        # raw 2**-d + 1/2 = (raw + 2**(d-1)) 2**-d: an integer of at most 53 bits times a power
        # of two while d <= 53; from d = 54 the sum lies in [1/4, 3/4] and floors to 0 anyway.
        value = self._start(raw, out, self._down, prescaled)
        value += 0.5
        return np.floor(value, out=value)

    def _rnd_conv_float(self, raw, random_bits, out, prescaled):
        value = self._start(raw, out, self._down, prescaled)
        return np.rint(value, out=value)  # IEEE round-half-to-even

    def _stoch_float(self, raw, random_bits, out, prescaled):
        # floor((raw + offset) 2**-d) = floor((raw 2**(16-d) + r') 2**-16), where r' = offset
        # 2**(16-d) is the draw r itself when d >= 16 (offset = r 2**(d-16)) and r with its
        # unused low bits cleared when d < 16 (offset = r >> (16-d)). Every step is exact: the
        # sum is (raw + offset) 2**(16-d), an integer below 2**52 + 2**d <= 2**53 times a power
        # of two (d <= 52). The draws are added straight from their integer dtype, without an
        # offsets array. (With a small enough ``value_range`` the unused bits may stay: raw
        # 2**(16-d) has those bits all 0, so they cannot carry into the kept ones, and the sum
        # stays below 2**53.)
        value = self._start(raw, out, self.prescale, prescaled)
        value += self._scaled_offsets(random_bits)
        value *= self._stoch_scale
        return np.floor(value, out=value)

    def _stoch_float_wide(self, raw, random_bits, out, prescaled):
        # d > 52: floor((floor(raw 2**(16-d)) + r) 2**-16), every step on small integers.
        value = self._start(raw, out, self.prescale, prescaled)
        np.floor(value, out=value)
        value += random_bits
        value *= self._stoch_scale
        return np.floor(value, out=value)

    def _scaled_offsets(self, random_bits):
        """r' = offset * 2**(16-d) of every draw (see ``_stoch_float``)."""
        if not self._unused_bits:
            return random_bits
        if random_bits.dtype.kind in "ui":
            return np.bitwise_and(random_bits, self._draw_mask)
        # Float draws (integers held in floats): drop the unused bits by flooring.
        return np.floor(random_bits * _pow2(-self._unused_bits)) * _pow2(self._unused_bits)

    # Integer steps are exact for every int64 raw value and every d (§8.4): no intermediate
    # leaves int64. Shifts are clamped where larger ones give the same result: up by 62 (any
    # non-zero value has left every format), down by 63 (x >> 63 is -1 or 0 for every int64).
    # Where ``value_range`` shows that raw + 2**d cannot overflow, the shorter form is used.

    def _int_step(self, d: int, rounding: Rounding):
        """The rounding step of an int64 plan."""
        if d == 0:
            return self._keep_int
        if d < 0:
            self._up = min(-d, MAX_WORD)
            self._preclip = None
            if self.overflow_needed and self.overflow is Overflow.SAT:
                # Clip before the shift so that it cannot overflow int64, to one step beyond the
                # values that fit: those still saturate after the shift.
                k = self._up
                self._preclip = (-((-self._min) >> k) - 1, (self._max >> k) + 1)
            return self._shift_up_int
        self._down_bits = min(d, _INT_CLAMP)
        # Masks of the low d and d - 1 bits as int64 (all ones from 64 bits on).
        self._low_mask = _int64_mask(self._down_bits)
        self._below_half_mask = _int64_mask(self._down_bits - 1)
        short = self._value_bound is not None and self._value_bound + (1 << d) < 1 << 63
        steps = {
            Rounding.TRN: self._trn_int,
            Rounding.TRN_ZERO: self._trn_zero_int,
            Rounding.RND: self._rnd_short_int if short else self._rnd_int,
            Rounding.RND_CONV: self._rnd_conv_int,
            Rounding.STOCH: self._stoch_short_int if short else self._stoch_int,
        }
        return steps[rounding]

    def _keep_int(self, raw, random_bits, out, prescaled):
        return self._start(raw, out, 1, True)

    def _shift_up_int(self, raw, random_bits, out, prescaled):
        if self._preclip is not None:
            raw = _clip(raw, *self._preclip, out=out)
        # WRAP: NumPy's int64 shift wraps modulo 2**64, which keeps the low word bits exact.
        return np.left_shift(raw, self._up, out=out)

    def _trn_int(self, raw, random_bits, out, prescaled):
        return np.right_shift(raw, min(self._down_bits, 63), out=out)

    def _trn_zero_int(self, raw, random_bits, out, prescaled):
        # floor, plus one for a negative value with non-zero dropped bits.
        floor = raw >> min(self._down_bits, 63)
        floor += (raw < 0) & ((raw & self._low_mask) != 0)
        return _into(floor, out)

    def _rnd_short_int(self, raw, random_bits, out, prescaled):
        d = self.discarded
        value = np.add(raw, 1 << (d - 1), out=out)
        value >>= d
        return value

    def _rnd_int(self, raw, random_bits, out, prescaled):
        # floor((raw + 2**(d-1)) / 2**d) = floor((t + 1) / 2) with t = raw >> (d - 1).
        halves = raw >> (self._down_bits - 1)
        rounded = np.right_shift(halves, 1, out=out)
        rounded += halves & 1
        return rounded

    def _rnd_conv_int(self, raw, random_bits, out, prescaled):
        halves = raw >> (self._down_bits - 1)
        floor = halves >> 1
        # Up when the half bit is set and the bits below it are not all 0, or q is odd.
        up = (halves & 1) & (((raw & self._below_half_mask) != 0) | (floor & 1))
        floor += up
        return _into(floor, out)

    def _stoch_short_int(self, raw, random_bits, out, prescaled):
        value = np.add(raw, stochastic_offsets(random_bits, self.discarded), out=out)
        value >>= self.discarded
        return value

    def _stoch_int(self, raw, random_bits, out, prescaled):
        # floor((raw + offset) / 2**d) = floor(raw / 2**d) + floor((low + offset) / 2**d), low
        # the dropped bits; for d >= 16 on t = floor(raw / 2**(d-16)) instead, with offset r.
        draws = np.broadcast_to(random_bits, raw.shape).astype(np.int64)
        d = self._down_bits
        if d >= STOCH_BITS:
            t = raw >> min(d - STOCH_BITS, 63)
            draws += t & ((1 << STOCH_BITS) - 1)
            draws >>= STOCH_BITS
            return _into(draws + (t >> STOCH_BITS), out)
        draws >>= STOCH_BITS - d
        draws += raw & self._low_mask
        draws >>= d
        return _into(draws + (raw >> d), out)

    # -- overflow steps (§3): ``value`` is a fresh array or the caller's ``out`` ---------------

    def _saturate(self, value):
        return _clip(value, self._low, self._high, out=value)

    def _wrap_float(self, value):
        # v mod 2**word, then the upper half down by 2**word: both exact (fmod is), where
        # subtracting min first would round for values beyond 2**53.
        np.mod(value, float(self._span), out=value)
        if self.fmt.signed:
            np.subtract(value, float(self._span), out=value, where=value > self._high)
        return value

    def _wrap_int(self, value):
        value -= self._min
        value &= self._span - 1
        value += self._min
        return value


def _int64_mask(bits: int) -> np.int64:
    """The low ``bits`` bits set, as an int64 (-1, all ones, from 64 bits on)."""
    return np.int64(-1) if bits >= 64 else np.int64((1 << bits) - 1)


def _into(value, out):
    if out is None:
        return value
    np.copyto(out, value)
    return out


def quantize(real, fmt: FixedFormat) -> np.ndarray:
    """Host-side conversion of real numbers (data, initial weights) to raw ``fmt`` values (§1.2).

    Rounds to nearest with ties to even, and saturates (infinities too). ``fmt`` may be given as
    text (``"SQ(2,14)"``). Returns int64; a NaN is a ValueError (it has no raw value).
    """
    if isinstance(fmt, str):
        fmt = FixedFormat.parse(fmt)
    values = np.asarray(real, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(f"cannot quantize NaN to {fmt}")
    scaled = np.rint(np.ldexp(values, fmt.frac_bits))
    return np.clip(scaled, fmt.min_raw, fmt.max_raw).astype(np.int64)


# --------------------------------------------------------------------------------------------
# The LFSR behind stochastic rounding (§5)
# --------------------------------------------------------------------------------------------

#: State width of every neuron's LFSR.
LFSR_WIDTH = 32
#: Feedback polynomial x^32 + x^22 + x^2 + x + 1 (maximal length), as tap positions 1..32.
LFSR_TAPS = (32, 22, 2, 1)
#: Random bits per draw: one draw per rounding event, STOCH_BITS shifts of the LFSR.
STOCH_BITS = 16

#: Float plans clamp shifts here (see ``CastPlan._float_step``).
_FLOAT_CLAMP = FLOAT_EXACT_BITS + 1
#: The widest d for which a float STOCH plan adds the draw to raw 2**(16-d) directly.
_FLOAT_STOCH_DIRECT = FLOAT_EXACT_BITS - 1
#: Int plans round as if at most this many bits were dropped: every int64 value divided by
#: 2**64 lies in [-1/2, 1/2), where each deterministic mode gives the same result for any
#: larger d. STOCH clamps its own shift (see ``CastPlan._stoch_int``).
_INT_CLAMP = 64 + STOCH_BITS

_MASK = (1 << LFSR_WIDTH) - 1


def lfsr_step(state: int) -> int:
    """One shift of the Fibonacci LFSR (§5.1): the new bit enters at bit 0.

    new_bit = s[31] ^ s[21] ^ s[1] ^ s[0]; state = (state << 1 | new_bit) mod 2**32.
    After STOCH_BITS steps, the draw is the low STOCH_BITS bits of the state.
    """
    new_bit = 0
    for tap in LFSR_TAPS:
        new_bit ^= (state >> (tap - 1)) & 1
    return ((state << 1) | new_bit) & _MASK


def lfsr_seed(layer_seed: int, neuron: int) -> int:
    """The non-zero seed of one neuron's LFSR (§5.2): murmur3's 32-bit finaliser of the pair.

    The host computes seeds and loads them; the hardware only needs the resulting values.
    """
    h = (int(layer_seed) * 0x9E3779B1 + (int(neuron) + 1) * 0x85EBCA77) & _MASK
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h or 1  # the all-zero state is the LFSR's lock-up state


def layer_seed(network_seed: int, layer: int) -> int:
    """The layer seed of layer ``layer`` (0 = first hidden layer) of a network (§5.2)."""
    return int(network_seed) * 1000 + int(layer)


@lru_cache(maxsize=None)
def _step_matrix_powers() -> tuple:
    """Columns of A^k for k = 1..STOCH_BITS applied to each basis state (A = one step)."""
    basis = [1 << b for b in range(LFSR_WIDTH)]
    columns = []
    states = list(basis)
    for _ in range(STOCH_BITS):
        states = [lfsr_step(s) for s in states]
    columns.append(tuple(states))  # A^STOCH_BITS: one draw
    return tuple(columns)


def _gf2_apply(columns: np.ndarray, state: np.ndarray) -> np.ndarray:
    """XOR of columns[..., b] over the set bits b of each state (a GF(2) matrix-vector product)."""
    result = np.zeros(state.shape + columns.shape[:-1], dtype=np.uint64)
    for b in range(LFSR_WIDTH):
        bit = ((state >> np.uint64(b)) & np.uint64(1)).astype(bool)
        result[bit] ^= columns[..., b]
    return result


@lru_cache(maxsize=64)
def _draw_tables(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Byte tables for leap-ahead: ``count`` draws and the state after them (§8.2).

    ``draw_table[k, v, j]`` is the draw j (0-based) contributed by byte k of the state having
    value v; XOR over the four bytes gives the draw. ``state_table[k, v]`` does the same for the
    state after all ``count`` draws. Built once per count with GF(2) matrix powers.
    """
    one_draw = np.array(_step_matrix_powers()[0], dtype=np.uint64)  # A^16 columns
    # columns_j[b] = A^(16 (j+1)) e_b, built by applying A^16 to the previous columns.
    columns = np.empty((count + 1, LFSR_WIDTH), dtype=np.uint64)
    current = np.array([1 << b for b in range(LFSR_WIDTH)], dtype=np.uint64)
    for j in range(count + 1):
        if j:
            current = _gf2_apply(one_draw, current)
        columns[j] = current
    # columns[j] holds A^(16 j); draw j uses A^(16 (j+1)).
    draw_columns = columns[1:] & np.uint64((1 << STOCH_BITS) - 1)
    final_columns = columns[count]
    byte_values = np.arange(256, dtype=np.uint64)
    bits = ((byte_values[:, None] >> np.arange(8, dtype=np.uint64)) & np.uint64(1)).astype(bool)
    # Narrow tables: the draws are 16-bit, so uint16 keeps the gathers cache-friendly.
    draw_table = np.zeros((4, 256, count), dtype=np.uint16)
    state_table = np.zeros((4, 256), dtype=np.uint64)
    for k in range(4):
        for bit in range(8):
            b = 8 * k + bit
            draw_table[k][bits[:, bit], :] ^= draw_columns[:, b].astype(np.uint16)
            state_table[k][bits[:, bit]] ^= final_columns[b]
    return draw_table, state_table


#: Streaming generation (§8.2). A neuron's draws d_n obey the linear recurrence
#: d_n = d_(n-1140) ^ d_(n-1258) ^ d_(n-1275) ^ d_(n-1754): in GF(2)[A] (A = one LFSR step,
#: minimal polynomial LFSR_TAPS, irreducible) 1 + x^1140 + x^1258 + x^1275 + x^1754 with x = A^16
#: is zero, found by a meet-in-the-middle search among five-term relations whose shortest lag
#: exceeds 1024 (a test checks the relation against the tables). Since every lag is at least
#: 1140 draws, up to 1140 new draws of every neuron are three XORs of earlier rows, and the
#: stream needs only the last 1754 draws, which stay in cache (the taps' own relation, squared
#: to lags of whole 512-draw blocks, reads 32 blocks back: nine times as far).
_STREAM_LAGS = (1140, 1258, 1275, 1754)
#: Draws the recurrence reads back: the longest lag.
_STREAM_HISTORY = _STREAM_LAGS[-1]
#: Draws per neuron one XOR pass can produce: the shortest lag.
_STREAM_CHUNK = _STREAM_LAGS[0]
#: The stream's buffer holds this many histories: rows are moved back to its front when it is
#: full, so a larger buffer moves them less often but spreads the writes over more memory.
_STREAM_BUFFER_HISTORIES = 4
#: A stream starts once a bank is asked for this many draws at once; smaller one-off requests
#: use the tables alone.
_STREAM_MIN_COUNT = 32
#: Draws per table call while a stream fills its history (a small, fast-built table).
_STREAM_SEED_DRAWS = 128


class LfsrBank:
    """One LFSR per neuron, advanced in bulk (§5, §8.2).

    Parameters
    ----------
    seeds : sequence of int
        Non-zero 32-bit seeds, one per neuron (see ``lfsr_seed``).

    Attributes
    ----------
    states : numpy.ndarray
        uint64 (neurons,): every LFSR's current state (after the draws taken so far).

    Large requests are served from a stream (see ``_STREAM_LAGS``) held draw by draw with the
    neurons side by side, (draws, neurons) "rows", so that a step's draws of chosen weights
    are whole rows.
    """

    def __init__(self, seeds) -> None:
        seeds = np.asarray(seeds, dtype=np.uint64)
        if seeds.ndim != 1:
            raise ValueError("LfsrBank needs a one-dimensional array of seeds")
        if np.any(seeds == 0) or np.any(seeds > _MASK):
            raise ValueError("LFSR seeds must be non-zero 32-bit values")
        self.states = seeds

    @property
    def states(self) -> np.ndarray:
        if self._rows is None:
            return self._states
        return self._stream_states()

    @states.setter
    def states(self, value) -> None:
        self._states = np.array(value, dtype=np.uint64)
        # Draws generated ahead of the states (see ``draw_rows``); none yet.
        self._rows = None
        self._origin = 0  # stream index of row 0 of ``_rows``
        self._cursor = 0  # rows served (the next row to serve)
        self._filled = 0  # rows generated

    @property
    def neurons(self) -> int:
        return self._states.size

    @classmethod
    def for_layer(cls, layer_seed: int, neurons: int) -> LfsrBank:
        return cls([lfsr_seed(layer_seed, i) for i in range(neurons)])

    def draw(self, count: int, positions=None) -> np.ndarray:
        """The next ``count`` draws of every neuron, shape (neurons, count), dtype uint16.

        Equivalent to calling ``lfsr_step`` STOCH_BITS times per draw and keeping the low
        STOCH_BITS bits. ``states`` is always the state after exactly the ``count`` draws.

        ``positions`` (indices in ``0 .. count - 1``) returns only those columns,
        ``draw(count)[:, positions]``; every LFSR still advances by ``count`` draws.
        The result is the transpose of ``draw_rows``'s (a new array, seen as (neurons, count)).
        """
        return self.draw_rows(count, positions).T

    def draw_rows(self, count: int, positions=None) -> np.ndarray:
        """``draw(count, positions)`` transposed: a new (count or len(positions), neurons) array.

        Row k holds every neuron's draw k (or ``positions[k]``): the layout of the transposed
        weight steps the training loop rounds. Computed with precomputed leap-ahead tables,
        and for large requests with the stream (see ``_STREAM_LAGS``).
        """
        if count == 0:
            return np.zeros((0 if positions is None else len(positions), self.neurons), dtype=np.uint16)
        if self._rows is None and count < _STREAM_MIN_COUNT:
            draws, self._states = _table_draws(self._states, count)
            return draws.T if positions is None else draws.T[np.asarray(positions, dtype=np.intp)]
        if self._rows is None:
            self._start_stream()
        self._generate(count)
        start = self._cursor
        if positions is None:
            rows = self._rows[start : start + count].copy()
        else:
            # A view starting at the cursor: the positions index it without an offset.
            rows = self._rows[start:].take(positions, axis=0)
        self._cursor = start + count
        return rows

    def step_rows(self, count: int, leading: int = 0, positions=None) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` draws of one training step (§5.3) split as the training loop uses them:
        the first ``leading`` rows (a hidden layer's delta draws), then of the other rows those
        at ``positions`` (indices counted from the first of them; all rows when None).

        Returns (leading rows, other rows), ``draw_rows`` layout. Either may be a read-only
        view into the stream, valid until this bank's next draw: use them at once.
        """
        if self._rows is None and count < _STREAM_MIN_COUNT:
            rows = self.draw_rows(count)
            return rows[:leading], (rows[leading:] if positions is None else rows[leading:][positions])
        if self._rows is None:
            self._start_stream()
        if self._filled < self._cursor + count:
            self._generate(count)
        start = self._cursor
        self._cursor = start + count
        head = self._rows[start : start + leading]
        if positions is None:
            rest = self._rows[start + leading : start + count]
        else:
            rest = self._rows[start + leading :].take(positions, axis=0)
        head.flags.writeable = rest.flags.writeable = False
        return head, rest

    def _stream_states(self) -> np.ndarray:
        """The states after the draws served so far: a state holds its last 32 output bits, the
        last two draws (the first draw's high half comes from the state the stream started at)."""
        served = self._origin + self._cursor
        if served == 0:
            return self._states.copy()
        last = self._rows[self._cursor - 1].astype(np.uint64)
        if served == 1:
            before = self._states & np.uint64(0xFFFF)
        else:
            before = self._rows[self._cursor - 2].astype(np.uint64)
        return (before << np.uint64(STOCH_BITS)) | last

    def _start_stream(self) -> None:
        """Fill the history from the current states with the tables."""
        seeded = -(-_STREAM_HISTORY // _STREAM_SEED_DRAWS) * _STREAM_SEED_DRAWS
        self._rows = np.empty((_STREAM_BUFFER_HISTORIES * seeded, self.neurons), dtype=np.uint16)
        state = self._states  # kept: the states at the start of the stream
        for start in range(0, seeded, _STREAM_SEED_DRAWS):
            draws, state = _table_draws(state, _STREAM_SEED_DRAWS)
            self._rows[start : start + _STREAM_SEED_DRAWS] = draws.T
        self._origin = self._cursor = 0
        self._filled = seeded

    def _generate(self, count: int) -> None:
        """Extend the stream until it holds the next ``count`` draws, a whole chunk at a time
        (fewer, larger XOR passes)."""
        rows, lags = self._rows, _STREAM_LAGS
        while self._filled < self._cursor + count:
            if self._filled + _STREAM_CHUNK > rows.shape[0]:
                self._make_room()
                rows = self._rows
            first = self._filled
            last = first + _STREAM_CHUNK
            new = rows[first:last]
            # Oldest rows first: the newest, read last, are the likeliest to be in cache.
            np.bitwise_xor(rows[first - lags[-1] : last - lags[-1]], rows[first - lags[-2] : last - lags[-2]], out=new)
            for lag in lags[-3::-1]:
                new ^= rows[first - lag : last - lag]
            self._filled = last

    def _make_room(self) -> None:
        """Move the rows still needed to the front, growing the buffer if they and one more
        chunk do not fit: the history the recurrence reads, the rows not yet served, and the
        last two served rows, which make up the states."""
        keep = max(0, min(self._cursor - 2, self._filled - _STREAM_HISTORY))
        kept = self._filled - keep
        if kept + _STREAM_CHUNK > self._rows.shape[0]:
            grown = np.empty((2 * (kept + _STREAM_CHUNK), self.neurons), dtype=np.uint16)
            grown[:kept] = self._rows[keep : self._filled]
            self._rows = grown
        else:
            self._rows[:kept] = self._rows[keep : self._filled]
        self._origin += keep
        self._cursor -= keep
        self._filled -= keep


def _table_draws(states: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` draws of every state and the states after them, by the leap-ahead tables."""
    draw_table, state_table = _draw_tables(count)
    # The four low bytes of every state (little-endian byte k = bits 8k..8k+7), by a view.
    byte_view = states.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
    state_bytes = [byte_view[:, k].astype(np.intp) for k in range(4)]
    # Row gathers: each neuron's draws are one contiguous row of a table.
    draws = draw_table[0][state_bytes[0]]
    next_state = state_table[0][state_bytes[0]]
    for k in range(1, 4):
        draws ^= draw_table[k][state_bytes[k]]
        next_state ^= state_table[k][state_bytes[k]]
    return draws, next_state
