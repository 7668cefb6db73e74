"""The arithmetic contract: fixed-point formats, the one ``cast``, and the LFSR behind STOCH.

This module and ``docs/arithmetic.md`` are the single definition of how numbers behave in
ssdfa. The RTL implements exactly what is written here; nothing else in the project rounds,
saturates or wraps a fixed-point value. Section numbers (§) refer to docs/arithmetic.md.

Raw values are integer arrays: ``int64``, or ``float64`` holding integers (so that matrix
products go through BLAS exactly while every partial sum stays below 2**53). ``cast`` accepts
either and returns the dtype it was given.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "Rounding",
    "Overflow",
    "FixedFormat",
    "cast",
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
]

#: The widest word a format may have: raw values and their products must fit int64 (§1).
MAX_WORD = 62
#: float64 holds every integer of up to 53 bits exactly (§8).
FLOAT_EXACT_BITS = 53


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


def stochastic_offsets(random_bits, discarded: int):
    """Align STOCH_BITS-bit random draws under the kept LSB (§2.1).

    With ``d`` discarded bits the offset is ``r << (d - STOCH_BITS)`` when ``d >= STOCH_BITS``
    and ``r >> (STOCH_BITS - d)`` otherwise: the draw's top bits sit just below the kept LSB.
    """
    r = np.asarray(random_bits)
    if r.dtype.kind == "f":
        return np.floor(np.ldexp(r, discarded - STOCH_BITS))
    r = r.astype(np.int64, copy=False)
    if discarded >= STOCH_BITS:
        return r << (discarded - STOCH_BITS)
    return r >> (STOCH_BITS - discarded)


def cast(raw, frac_bits: int, fmt: FixedFormat, rounding: Rounding, overflow: Overflow, random_bits=None):
    """Narrow exact raw values to ``fmt``: round (§2), then handle overflow (§3).

    Parameters
    ----------
    raw : array of int64, or float64 holding integers below 2**53 in magnitude
        The exact value, with ``frac_bits`` fraction bits.
    frac_bits : int
        Fraction bits of ``raw`` (may be more or fewer than ``fmt.frac_bits``).
    fmt : FixedFormat
        The target format.
    rounding, overflow : Rounding, Overflow
        Every cast names both.
    random_bits : array of STOCH_BITS-bit integers, broadcastable to ``raw``
        One draw per value, required for ``Rounding.STOCH`` (see ``LfsrBank``); ignored otherwise.

    Returns
    -------
    Raw values in ``fmt``, same dtype as ``raw``.
    """
    raw = np.asarray(raw)
    is_float = raw.dtype.kind == "f"
    if not is_float and raw.dtype != np.int64:
        raw = raw.astype(np.int64)
    discarded = frac_bits - fmt.frac_bits
    if rounding is Rounding.STOCH and random_bits is None:
        raise ValueError("Rounding.STOCH needs random_bits (one LFSR draw per value)")
    if discarded <= 0:
        # Gaining fraction bits is exact; every rounding mode agrees.
        value = np.ldexp(raw, -discarded) if is_float else raw << (-discarded)
    elif is_float:
        value = _round_float(raw, discarded, rounding, random_bits)
    else:
        value = _round_int(raw, discarded, rounding, random_bits)
    return _overflow(value, fmt, overflow, is_float)


def _round_float(raw, d: int, rounding: Rounding, random_bits):
    # Multiplying by 2**-d is exact in float64, and so are floor/ceil/rint/trunc of the result.
    scaled = np.ldexp(raw, -d)
    if rounding is Rounding.TRN:
        return np.floor(scaled)
    if rounding is Rounding.TRN_ZERO:
        return np.trunc(scaled)
    if rounding is Rounding.RND:
        return np.floor(scaled + 0.5)
    if rounding is Rounding.RND_CONV:
        return np.rint(scaled)  # IEEE round-half-to-even
    if rounding is Rounding.STOCH:
        offsets = stochastic_offsets(np.asarray(random_bits, dtype=np.float64), d)
        return np.floor(np.ldexp(raw + offsets, -d))
    raise ValueError(f"unknown rounding mode {rounding!r}")


def _round_int(raw, d: int, rounding: Rounding, random_bits):
    if rounding is Rounding.TRN:
        return raw >> d
    if rounding is Rounding.TRN_ZERO:
        return np.where(raw < 0, -((-raw) >> d), raw >> d)
    if rounding is Rounding.RND:
        return (raw + (1 << (d - 1))) >> d
    if rounding is Rounding.RND_CONV:
        floor = raw >> d
        remainder = raw & ((1 << d) - 1)
        half = 1 << (d - 1)
        return floor + ((remainder > half) | ((remainder == half) & (floor & 1 == 1)))
    if rounding is Rounding.STOCH:
        return (raw + stochastic_offsets(random_bits, d)) >> d
    raise ValueError(f"unknown rounding mode {rounding!r}")


def _overflow(value, fmt: FixedFormat, overflow: Overflow, is_float: bool):
    if overflow is Overflow.SAT:
        return np.clip(value, fmt.min_raw, fmt.max_raw)
    if overflow is Overflow.WRAP:
        span = 1 << fmt.word
        if is_float:
            return np.mod(value - fmt.min_raw, float(span)) + fmt.min_raw
        return ((value - fmt.min_raw) & (span - 1)) + fmt.min_raw
    raise ValueError(f"unknown overflow mode {overflow!r}")


def quantize(real, fmt: FixedFormat) -> np.ndarray:
    """Host-side conversion of real numbers (data, initial weights) to raw ``fmt`` values (§1.2).

    Rounds to nearest with ties to even, and saturates. Returns int64.
    """
    scaled = np.rint(np.ldexp(np.asarray(real, dtype=np.float64), fmt.frac_bits))
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


class LfsrBank:
    """One LFSR per neuron, advanced in bulk (§5, §8.2).

    Parameters
    ----------
    seeds : sequence of int
        Non-zero 32-bit seeds, one per neuron (see ``lfsr_seed``).
    """

    def __init__(self, seeds) -> None:
        seeds = np.asarray(seeds, dtype=np.uint64)
        if seeds.ndim != 1:
            raise ValueError("LfsrBank needs a one-dimensional array of seeds")
        if np.any(seeds == 0) or np.any(seeds > _MASK):
            raise ValueError("LFSR seeds must be non-zero 32-bit values")
        self.states = seeds.copy()

    @classmethod
    def for_layer(cls, layer_seed: int, neurons: int) -> LfsrBank:
        return cls([lfsr_seed(layer_seed, i) for i in range(neurons)])

    def draw(self, count: int) -> np.ndarray:
        """The next ``count`` draws of every neuron, shape (neurons, count), dtype uint16.

        Equivalent to calling ``lfsr_step`` STOCH_BITS times per draw and keeping the low
        STOCH_BITS bits, but computed with precomputed leap-ahead tables.
        """
        if count == 0:
            return np.zeros((self.states.size, 0), dtype=np.uint16)
        draw_table, state_table = _draw_tables(count)
        state_bytes = [
            ((self.states >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.intp) for k in range(4)
        ]
        # Row gathers: each neuron's draws are one contiguous row of a table.
        draws = draw_table[0][state_bytes[0]]
        next_state = state_table[0][state_bytes[0]]
        for k in range(1, 4):
            draws ^= draw_table[k][state_bytes[k]]
            next_state ^= state_table[k][state_bytes[k]]
        self.states = next_state
        return draws
