"""``cast`` against an independent exact oracle (Python integers and ``Fraction``), §2, §3, §8.4.

Both paths, every rounding and overflow mode, across the boundary widths: the int64 path for
every int64 raw value and any number of dropped or gained bits, the float64 path for raw values
within +-2**52 and formats of up to 53 bits. hypothesis is derandomised (a fixed seed per test),
and prints the falsifying example on failure.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ssdfa.model.arithmetic import (
    FLOAT_MAX_WORD,
    FLOAT_RAW_LIMIT,
    MAX_WORD,
    STOCH_BITS,
    FixedFormat,
    Overflow,
    Rounding,
    cast,
    cast_plan,
)

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
CASES = settings(max_examples=400, derandomize=True, deadline=None)


def oracle(raw: int, frac_bits: int, fmt: FixedFormat, rounding: Rounding, overflow: Overflow, draw: int) -> int:
    """The contract's result for one value, in exact rational arithmetic."""
    scaled = Fraction(raw) * Fraction(2) ** (fmt.frac_bits - frac_bits)  # in units of fmt's LSB
    d = frac_bits - fmt.frac_bits
    if d <= 0:
        value = int(scaled)  # an integer already
    elif rounding is Rounding.TRN:
        value = math.floor(scaled)
    elif rounding is Rounding.TRN_ZERO:
        value = math.trunc(scaled)
    elif rounding is Rounding.RND:
        value = math.floor(scaled + Fraction(1, 2))
    elif rounding is Rounding.RND_CONV:
        value = round(scaled)  # Fraction rounds half to even
    else:
        # §2.1: the draw's top bit just below the kept LSB; its bits below 2**-d are dropped.
        offset = Fraction((draw << d) >> STOCH_BITS, 1 << d)
        value = math.floor(scaled + offset)
    if overflow is Overflow.SAT:
        return min(max(value, fmt.min_raw), fmt.max_raw)
    return (value - fmt.min_raw) % (1 << fmt.word) + fmt.min_raw


def formats(max_word: int):
    """Formats of every width up to ``max_word``, signed and unsigned, weighted to the extremes."""

    @st.composite
    def build(draw):
        signed = draw(st.booleans())
        word = draw(st.one_of(st.integers(1, max_word), st.sampled_from([1, 2, max_word - 1, max_word])))
        least_int = 1 if signed else 0
        frac = draw(st.one_of(st.integers(0, word - least_int), st.sampled_from([0, word - least_int])))
        return FixedFormat(word - frac, frac, signed=signed)

    return build()


def raws(low: int, high: int):
    """Integers in [low, high], with the ends and the powers of two around them often."""
    edges = [low, low + 1, -1, 0, 1, high - 1, high]
    edges += [sign * (1 << k) + delta for k in range(1, high.bit_length()) for sign in (1, -1) for delta in (-1, 0, 1)]
    edges = sorted({v for v in edges if low <= v <= high})
    return st.one_of(st.integers(low, high), st.sampled_from(edges))


draws = st.one_of(st.integers(0, (1 << STOCH_BITS) - 1), st.sampled_from([0, 1, (1 << STOCH_BITS) - 1]))
shifts = st.one_of(st.integers(-70, 90), st.sampled_from([-63, -62, -54, -53, -1, 0, 1, 15, 16, 17, 52, 53, 54, 63, 64, 65, 80]))


def check(raw_values, frac_bits, fmt, rounding, overflow, draw_values, dtype):
    raw = np.array(raw_values, dtype=dtype)
    random_bits = np.array(draw_values, dtype=np.uint16)
    got = cast(raw, frac_bits, fmt, rounding, overflow, random_bits)
    assert got.dtype == dtype
    expected = [oracle(r, frac_bits, fmt, rounding, overflow, b) for r, b in zip(raw_values, draw_values)]
    assert [int(v) for v in got] == expected, (raw_values, frac_bits, str(fmt), rounding, overflow, draw_values)
    in_place = raw.copy()
    assert cast(in_place, frac_bits, fmt, rounding, overflow, random_bits, out=in_place) is in_place
    assert in_place.tolist() == got.tolist(), "cast(..., out=raw) differs from the plain call"


@CASES
@given(
    fmt=formats(MAX_WORD),
    d=shifts,
    rounding=st.sampled_from(Rounding),
    overflow=st.sampled_from(Overflow),
    values=st.lists(st.tuples(raws(INT64_MIN, INT64_MAX), draws), min_size=1, max_size=8),
)
@example(fmt=FixedFormat(2, 60), d=-60, rounding=Rounding.TRN, overflow=Overflow.SAT, values=[(8, 0)])
@example(fmt=FixedFormat(8, 0), d=1, rounding=Rounding.TRN_ZERO, overflow=Overflow.SAT, values=[(INT64_MIN, 0)])
@example(fmt=FixedFormat(8, 0), d=1, rounding=Rounding.RND, overflow=Overflow.WRAP, values=[(INT64_MAX, 0)])
@example(fmt=FixedFormat(8, 0), d=16, rounding=Rounding.STOCH, overflow=Overflow.SAT, values=[(INT64_MAX, 65535)])
@example(fmt=FixedFormat(8, 0), d=64, rounding=Rounding.RND_CONV, overflow=Overflow.SAT, values=[(INT64_MIN, 0)])
def test_int64_cast_is_exact_for_every_int64_value_and_shift(fmt, d, rounding, overflow, values):
    frac_bits = fmt.frac_bits + d
    raw_values, draw_values = zip(*values)
    check(list(raw_values), frac_bits, fmt, rounding, overflow, list(draw_values), np.int64)


@CASES
@given(
    fmt=formats(FLOAT_MAX_WORD),
    d=shifts,
    rounding=st.sampled_from(Rounding),
    overflow=st.sampled_from(Overflow),
    values=st.lists(st.tuples(raws(-FLOAT_RAW_LIMIT, FLOAT_RAW_LIMIT), draws), min_size=1, max_size=8),
)
@example(fmt=FixedFormat(8, 0), d=54, rounding=Rounding.RND, overflow=Overflow.SAT, values=[((1 << 52) - 1, 0)])
@example(fmt=FixedFormat(8, 0), d=53, rounding=Rounding.RND, overflow=Overflow.SAT, values=[(1 << 52, 0)])
@example(fmt=FixedFormat(8, 0), d=60, rounding=Rounding.STOCH, overflow=Overflow.SAT, values=[((1 << 52) - 1, 65535)])
@example(fmt=FixedFormat(8, 0), d=16, rounding=Rounding.STOCH, overflow=Overflow.WRAP, values=[(1 << 52, 65535)])
@example(fmt=FixedFormat(8, 0), d=-10, rounding=Rounding.TRN, overflow=Overflow.WRAP, values=[((1 << 51) + 1, 0)])
@example(fmt=FixedFormat(53, 0), d=0, rounding=Rounding.TRN, overflow=Overflow.SAT, values=[(1 << 52, 0)])
def test_float64_cast_is_exact_within_its_documented_limits(fmt, d, rounding, overflow, values):
    frac_bits = fmt.frac_bits + d
    raw_values, draw_values = zip(*values)
    check(list(raw_values), frac_bits, fmt, rounding, overflow, list(draw_values), np.float64)


@CASES
@given(
    fmt=formats(FLOAT_MAX_WORD),
    d=st.integers(-20, 40),
    rounding=st.sampled_from(Rounding),
    overflow=st.sampled_from(Overflow),
    values=st.lists(st.tuples(raws(-FLOAT_RAW_LIMIT, FLOAT_RAW_LIMIT), draws), min_size=1, max_size=8),
)
def test_int64_and_float64_paths_agree(fmt, d, rounding, overflow, values):
    raw_values, draw_values = (list(v) for v in zip(*values))
    bits = np.array(draw_values, dtype=np.uint16)
    as_int = cast(np.array(raw_values, dtype=np.int64), fmt.frac_bits + d, fmt, rounding, overflow, bits)
    as_float = cast(np.array(raw_values, dtype=np.float64), fmt.frac_bits + d, fmt, rounding, overflow, bits)
    assert as_int.tolist() == as_float.astype(np.int64).tolist()


def test_the_widening_cast_that_overflowed_int64_now_saturates_to_the_maximum():
    fmt = FixedFormat(2, 60)
    assert cast(np.int64(8), 0, fmt, Rounding.TRN, Overflow.SAT) == fmt.max_raw
    assert cast(np.int64(-8), 0, fmt, Rounding.TRN, Overflow.SAT) == fmt.min_raw


@pytest.mark.parametrize("fmt", [FixedFormat(54, 0), FixedFormat(2, 60), FixedFormat(0, 62, signed=False)])
def test_float64_path_refuses_words_it_cannot_hold(fmt):
    with pytest.raises(ValueError, match=rf"{fmt.word}.*int64"):
        cast(np.zeros(2), 0, fmt, Rounding.TRN, Overflow.SAT)


@pytest.mark.parametrize("value", [float(FLOAT_RAW_LIMIT + 2), -float(1 << 60), float("nan"), float("inf")])
def test_float64_path_refuses_raw_values_beyond_2_to_the_52(value):
    with pytest.raises(ValueError, match=r"2\*\*52"):
        cast(np.array([0.0, value]), 4, FixedFormat(8, 0), Rounding.TRN, Overflow.SAT)


def test_raw_values_beyond_int64_are_refused_not_wrapped():
    with pytest.raises(ValueError, match="int64"):
        cast(np.array([1 << 63], dtype=np.uint64), 0, FixedFormat(8, 0), Rounding.TRN, Overflow.SAT)
    with pytest.raises(ValueError, match="int64"):
        cast(np.array([1 << 70], dtype=object), 0, FixedFormat(8, 0), Rounding.TRN, Overflow.SAT)


@CASES
@given(
    fmt=formats(FLOAT_MAX_WORD),
    d=shifts,
    rounding=st.sampled_from(Rounding),
    overflow=st.sampled_from(Overflow),
    is_float=st.booleans(),
    values=st.lists(st.tuples(raws(-FLOAT_RAW_LIMIT, FLOAT_RAW_LIMIT), draws), min_size=1, max_size=8),
)
def test_plans_given_bounds_of_their_inputs_give_the_exact_result(fmt, d, rounding, overflow, is_float, values):
    # Bounds select the shorter steps (no overflow step, raw + 2**(d-1) formed directly,
    # STOCH draws left unmasked): they must not change a value.
    raw_values, draw_values = (list(v) for v in zip(*values))
    frac_bits = fmt.frac_bits + d
    plan = cast_plan(frac_bits, fmt, rounding, overflow, is_float, value_range=(min(raw_values), max(raw_values)))
    raw = np.array(raw_values, dtype=np.float64 if is_float else np.int64)
    got = plan(raw, np.array(draw_values, dtype=np.uint16))
    assert [int(v) for v in got] == [oracle(r, frac_bits, fmt, rounding, overflow, b) for r, b in values]
