"""The arithmetic contract (docs/arithmetic.md §1-§3, §5) against exact rational arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdfa.model.arithmetic import (
    LFSR_WIDTH,
    MAX_WORD,
    STOCH_BITS,
    FixedFormat,
    LfsrBank,
    Overflow,
    Rounding,
    cast,
    lfsr_seed,
    lfsr_step,
    quantize,
    stochastic_offsets,
)

DETERMINISTIC = [m for m in Rounding if m is not Rounding.STOCH]

formats = st.builds(
    lambda word, frac, signed: FixedFormat(word - frac, frac, signed=signed)
    if frac <= word - (1 if signed else 0)
    else FixedFormat(word, 0, signed=signed),
    word=st.integers(1, 24),
    frac=st.integers(0, 20),
    signed=st.booleans(),
).filter(lambda f: f.word <= 24)


def exact_round(value: Fraction, rounding: Rounding) -> int:
    """The rounding modes of §2, defined on rationals."""
    if rounding is Rounding.TRN:
        return math.floor(value)
    if rounding is Rounding.TRN_ZERO:
        return math.trunc(value)
    if rounding is Rounding.RND:
        return math.floor(value + Fraction(1, 2))
    if rounding is Rounding.RND_CONV:
        return round(value)  # Python rounds a Fraction half to even
    raise AssertionError(rounding)


def exact_overflow(raw: int, fmt: FixedFormat, overflow: Overflow) -> int:
    if overflow is Overflow.SAT:
        return min(max(raw, fmt.min_raw), fmt.max_raw)
    return (raw - fmt.min_raw) % (1 << fmt.word) + fmt.min_raw


@settings(max_examples=300, deadline=None)
@given(
    raws=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=20),
    frac=st.integers(0, 30),
    fmt=formats,
    rounding=st.sampled_from(DETERMINISTIC),
    overflow=st.sampled_from(list(Overflow)),
)
def test_deterministic_casts_match_exact_rational_arithmetic(raws, frac, fmt, rounding, overflow):
    expected = [
        exact_overflow(exact_round(Fraction(r, 2**frac) * 2**fmt.frac_bits, rounding), fmt, overflow) for r in raws
    ]
    got_int = cast(np.array(raws, dtype=np.int64), frac, fmt, rounding, overflow)
    got_float = cast(np.array(raws, dtype=np.float64), frac, fmt, rounding, overflow)
    assert got_int.tolist() == expected
    assert got_float.astype(np.int64).tolist() == expected
    assert got_int.dtype == np.int64 and got_float.dtype == np.float64


@settings(max_examples=200, deadline=None)
@given(
    raws=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=20),
    frac=st.integers(0, 40),
    fmt=formats,
    overflow=st.sampled_from(list(Overflow)),
    data=st.data(),
)
def test_stochastic_cast_rounds_to_a_neighbour_and_int_and_float_paths_agree(raws, frac, fmt, overflow, data):
    draws = data.draw(st.lists(st.integers(0, 2**STOCH_BITS - 1), min_size=len(raws), max_size=len(raws)))
    got_int = cast(np.array(raws), frac, fmt, Rounding.STOCH, Overflow.SAT, np.array(draws))
    got_float = cast(np.array(raws, dtype=float), frac, fmt, Rounding.STOCH, Overflow.SAT, np.array(draws))
    assert got_int.tolist() == got_float.astype(np.int64).tolist()
    for raw, result in zip(raws, got_int.tolist()):
        exact = Fraction(raw, 2**frac) * 2**fmt.frac_bits
        neighbours = {exact_overflow(math.floor(exact), fmt, Overflow.SAT), exact_overflow(math.ceil(exact), fmt, Overflow.SAT)}
        assert result in neighbours


@pytest.mark.parametrize("discarded", [1, 3, 8, 16])
def test_stochastic_rounding_is_unbiased_over_all_draws(discarded):
    # A value, averaged over all 2**16 draws, rounds to its exact value: for every remainder
    # (a sample of them when there are too many to try them all).
    fmt = FixedFormat(30, 0)
    draws = np.arange(2**STOCH_BITS)
    span = range(-(2**discarded) - 3, 2**discarded + 3)
    raws = list(span) if len(span) <= 600 else list(span[::97]) + [2**discarded - 1, 2 ** (discarded - 1)]
    for raw in raws:
        results = cast(np.full(draws.shape, raw), discarded, fmt, Rounding.STOCH, Overflow.SAT, draws)
        assert Fraction(int(results.sum()), draws.size) == Fraction(raw, 2**discarded), raw


def test_stochastic_rounding_with_lfsr_draws_is_unbiased_in_expectation():
    fmt = FixedFormat(20, 0)
    bank = LfsrBank.for_layer(layer_seed := 5, 64)
    raw = np.full((64, 2000), 77)  # 77 / 2**6 = 1.203125
    results = cast(raw, 6, fmt, Rounding.STOCH, Overflow.SAT, bank.draw(2000))
    assert abs(results.mean() - 77 / 64) < 0.01, f"layer seed {layer_seed}"


def test_stochastic_offsets_align_the_draw_below_the_kept_lsb():
    assert stochastic_offsets(np.array([0xFFFF]), 16).tolist() == [0xFFFF]
    assert stochastic_offsets(np.array([0xFFFF]), 4).tolist() == [0xF]
    assert stochastic_offsets(np.array([0x8000]), 20).tolist() == [0x80000]
    assert stochastic_offsets(np.array([0x8000], dtype=float), 20).tolist() == [0x80000]


def test_stochastic_rounding_is_bit_reproducible_from_the_seeds():
    raw = np.arange(-500, 500).reshape(10, 100) * 37
    first = cast(raw, 9, FixedFormat(8, 0), Rounding.STOCH, Overflow.SAT, LfsrBank.for_layer(3, 10).draw(100))
    second = cast(raw, 9, FixedFormat(8, 0), Rounding.STOCH, Overflow.SAT, LfsrBank.for_layer(3, 10).draw(100))
    other = cast(raw, 9, FixedFormat(8, 0), Rounding.STOCH, Overflow.SAT, LfsrBank.for_layer(4, 10).draw(100))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_stochastic_cast_without_draws_is_refused():
    with pytest.raises(ValueError, match="random_bits"):
        cast(np.array([1]), 3, FixedFormat(4, 0), Rounding.STOCH, Overflow.SAT)


def test_widening_cast_is_exact_in_every_mode():
    raw = np.array([-7, 0, 5])
    for rounding in DETERMINISTIC:
        assert cast(raw, 2, FixedFormat(8, 6), rounding, Overflow.SAT).tolist() == [-112, 0, 80]


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 4), "int_bits must be >= 1"),
        ((-1, 4), "int_bits"),
        ((4, -2), "frac_bits must be >= 0"),
        ((40, 30), "1 to 62"),
        ((0, 0, False), "1 to 62"),
    ],
)
def test_impossible_formats_are_refused_naming_the_value(args, message):
    with pytest.raises(ValueError, match=message):
        FixedFormat(*args)


def test_format_names_and_ranges_follow_the_convention():
    fmt = FixedFormat(4, 12)
    assert str(fmt) == "SQ(4,12)" and fmt.word == 16
    assert (fmt.min_raw, fmt.max_raw) == (-32768, 32767)
    assert FixedFormat.parse("UQ(1,7)") == FixedFormat(1, 7, signed=False)
    assert FixedFormat.parse(" sq( 2 , 6 ) ") == FixedFormat(2, 6)
    assert FixedFormat(1, MAX_WORD - 1).word == MAX_WORD
    with pytest.raises(ValueError, match="Q9"):
        FixedFormat.parse("Q9")


def test_unknown_modes_are_refused_naming_the_value():
    with pytest.raises(ValueError, match="'ROUND'"):
        Rounding.parse("ROUND")
    with pytest.raises(ValueError, match="'CLAMP'"):
        Overflow.parse("CLAMP")
    assert Rounding.parse("rnd_conv") is Rounding.RND_CONV


def test_quantize_rounds_half_to_even_and_saturates():
    fmt = FixedFormat(2, 2)  # step 0.25, range [-2, 1.75]
    assert quantize([0.125, 0.375, -0.125, 5.0, -5.0], fmt).tolist() == [0, 2, 0, 7, -8]


# --------------------------------------------------------------------------------------------
# LFSR (§5)
# --------------------------------------------------------------------------------------------


def _gf2_matrix_power(columns: list[int], exponent: int) -> list[int]:
    """A^exponent for a 32x32 GF(2) matrix given by its column images."""

    def apply(matrix, vector):
        result = 0
        for bit in range(LFSR_WIDTH):
            if vector >> bit & 1:
                result ^= matrix[bit]
        return result

    result = [1 << b for b in range(LFSR_WIDTH)]
    base = list(columns)
    while exponent:
        if exponent & 1:
            result = [apply(base, c) for c in result]
        base = [apply(base, c) for c in base]
        exponent >>= 1
    return result


def test_lfsr_has_maximal_period():
    step = [lfsr_step(1 << b) for b in range(LFSR_WIDTH)]
    identity = [1 << b for b in range(LFSR_WIDTH)]
    period = 2**LFSR_WIDTH - 1
    assert _gf2_matrix_power(step, period) == identity
    for prime in (3, 5, 17, 257, 65537):  # the prime factors of 2**32 - 1
        assert _gf2_matrix_power(step, period // prime) != identity


@settings(max_examples=30, deadline=None)
@given(
    seeds=st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=5),
    counts=st.lists(st.integers(0, 40), min_size=1, max_size=3),
)
def test_leap_ahead_draws_equal_stepping_sixteen_times_per_draw(seeds, counts):
    bank = LfsrBank(seeds)
    drawn = np.concatenate([bank.draw(c) for c in counts], axis=1)
    for neuron, state in enumerate(seeds):
        expected = []
        for _ in range(sum(counts)):
            for _ in range(STOCH_BITS):
                state = lfsr_step(state)
            expected.append(state & (2**STOCH_BITS - 1))
        assert drawn[neuron].tolist() == expected
        assert int(bank.states[neuron]) == state


def test_lfsr_seeds_are_nonzero_and_distinct_per_neuron():
    seeds = [lfsr_seed(7, n) for n in range(1000)]
    assert all(0 < s < 2**32 for s in seeds)
    assert len(set(seeds)) == len(seeds)


def test_lfsr_bank_refuses_the_lockup_state():
    with pytest.raises(ValueError, match="non-zero"):
        LfsrBank([5, 0])


def test_quantize_takes_a_format_as_text_saturates_infinities_and_refuses_nan():
    from ssdfa.model.arithmetic import quantize

    assert quantize([0.5, np.inf, -np.inf], "SQ(2,14)").tolist() == [8192, 32767, -32768]
    with pytest.raises(ValueError, match=r"cannot quantize NaN to SQ\(2,14\)"):
        quantize([0.25, np.nan], "SQ(2,14)")


def test_arithmetic_config_takes_formats_and_modes_as_text_and_checks_its_seed():
    from ssdfa.model.arithmetic import FixedFormat, Overflow, Rounding
    from ssdfa.model.neuron_ops import ArithmeticConfig

    config = ArithmeticConfig(weight="SQ(2,10)", rounding="rnd", update_rounding="STOCH", overflow="wrap")
    assert (config.weight, config.rounding, config.update_rounding, config.overflow) == (
        FixedFormat(2, 10), Rounding.RND, Rounding.STOCH, Overflow.WRAP)
    for seed in (-1, 2**32, "7", 1.5, True):
        with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\^32 - 1"):
            ArithmeticConfig(seed=seed)
    with pytest.raises(ValueError, match="unknown rounding mode 'ROUND'"):
        ArithmeticConfig(rounding="ROUND")


def test_a_network_too_large_for_memory_is_refused_when_described(monkeypatch):
    """Before any weight or feedback matrix is built (10^12 neurons would otherwise hang)."""
    from ssdfa.errors import SsdfaError
    from ssdfa.model.network import NetworkSpec

    monkeypatch.setenv("SSDFA_MEMORY_BYTES", str(2**30))
    with pytest.raises(SsdfaError, match=r"layer sizes \(64, 1000000000000, 10\) needs about .* more than the 1.0 GiB available"):
        NetworkSpec((64, 10**12, 10))
    assert NetworkSpec((64, 32, 10)).layer_sizes == (64, 32, 10)
