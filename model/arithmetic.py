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
    out : ndarray, optional
        Receives the result: an array of ``raw``'s shape and (int64 or float64) dtype, which may
        be ``raw`` itself (an in-place cast, which saves the model a copy). The values are the
        same as without ``out``.

    Returns
    -------
    Raw values in ``fmt``, same dtype as ``raw`` (``out`` when given).
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
    is_float = raw.dtype.kind == "f"
    if not is_float and raw.dtype != np.int64:
        raw = raw.astype(np.int64)
    if out is not None and (out.shape != raw.shape or out.dtype != raw.dtype):
        raise ValueError(f"cast: out must be a {raw.dtype} array of shape {raw.shape}, not {out.dtype} {out.shape}")
    discarded = frac_bits - fmt.frac_bits
    if rounding is Rounding.STOCH and random_bits is None:
        raise ValueError("Rounding.STOCH needs random_bits (one LFSR draw per value)")
    if discarded == 0:
        # Nothing to round; only the overflow mode applies.
        if out is None:
            value = raw.copy()
        else:
            value = out
            if out is not raw:
                np.copyto(out, raw)
    elif discarded < 0:
        # Gaining fraction bits is exact; every rounding mode agrees.
        if is_float:
            value = np.multiply(raw, _pow2(-discarded), out=out)
        else:
            value = np.left_shift(raw, -discarded, out=out)
    elif is_float:
        value = _round_float(raw, discarded, rounding, random_bits, out)
    else:
        value = _round_int(raw, discarded, rounding, random_bits, out)
    return _overflow(value, fmt, overflow, is_float)


def _round_float(raw, d: int, rounding: Rounding, random_bits, out):
    # Multiplying by 2**-d is exact in float64, and so are floor/ceil/rint/trunc of the result.
    # Each step writes into one fresh array (or ``out``) instead of allocating a new one.
    scale = _pow2(-d)
    if rounding is Rounding.STOCH:
        bits = np.asarray(random_bits)
        if d >= STOCH_BITS and bits.dtype.kind in "ui" and out is not None:
            # floor((raw + r 2**(d-16)) 2**-d) = floor((raw 2**(16-d) + r) 2**-16): every step
            # is exact (the sum is the same integer < 2**53, scaled by a power of two), and the
            # draws are added straight from their integer dtype, without an offsets array.
            value = np.multiply(raw, _pow2(STOCH_BITS - d), out=out)
            value += bits
            value *= _pow2(-STOCH_BITS)
            return np.floor(value, out=value)
        offsets = _float_offsets(bits, d)
        if out is None and offsets.shape == raw.shape:
            out = offsets  # a fresh array: add into it
        value = np.add(raw, offsets, out=out)
        value *= scale
        return np.floor(value, out=value)
    value = np.multiply(raw, scale, out=out)
    if rounding is Rounding.TRN:
        return np.floor(value, out=value)
    if rounding is Rounding.TRN_ZERO:
        return np.trunc(value, out=value)
    if rounding is Rounding.RND:
        value += 0.5
        return np.floor(value, out=value)
    if rounding is Rounding.RND_CONV:
        return np.rint(value, out=value)  # IEEE round-half-to-even
    raise ValueError(f"unknown rounding mode {rounding!r}")


def _round_int(raw, d: int, rounding: Rounding, random_bits, out):
    if rounding is Rounding.TRN:
        return np.right_shift(raw, d, out=out)
    if rounding is Rounding.TRN_ZERO:
        return _into(np.where(raw < 0, -((-raw) >> d), raw >> d), out)
    if rounding is Rounding.RND:
        value = np.add(raw, 1 << (d - 1), out=out)
        value >>= d
        return value
    if rounding is Rounding.RND_CONV:
        floor = raw >> d
        remainder = raw & ((1 << d) - 1)
        half = 1 << (d - 1)
        return _into(floor + ((remainder > half) | ((remainder == half) & (floor & 1 == 1))), out)
    if rounding is Rounding.STOCH:
        value = np.add(raw, stochastic_offsets(random_bits, d), out=out)
        value >>= d
        return value
    raise ValueError(f"unknown rounding mode {rounding!r}")


def _into(value, out):
    if out is None:
        return value
    np.copyto(out, value)
    return out


try:
    # The ufunc behind np.clip, without np.clip's Python-level argument handling (a few
    # microseconds per call, which batch-1 training pays many times per sample).
    from numpy._core.umath import clip as _clip
except ImportError:  # NumPy 1.x
    try:
        from numpy.core.umath import clip as _clip
    except ImportError:
        _clip = np.clip


def _overflow(value, fmt: FixedFormat, overflow: Overflow, is_float: bool):
    # ``value`` is a fresh array or the caller's ``out``: overwrite it in place.
    if overflow is Overflow.SAT:
        return _clip(value, fmt.min_raw, fmt.max_raw, out=value)
    if overflow is Overflow.WRAP:
        span = 1 << fmt.word
        if is_float:
            value -= fmt.min_raw
            np.mod(value, float(span), out=value)
            value += fmt.min_raw
            return value
        value -= fmt.min_raw
        value &= span - 1
        value += fmt.min_raw
        return value
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


#: Streaming generation (§8.2): a draw is 16 consecutive output bits of the LFSR, and the output
#: bits obey b_t = XOR of b_(t - lag) over the lags LFSR_TAPS. Squaring in GF(2) turns this into
#: b_t = XOR of b_(t - lag * 2**k) for every k, so with blocks of 2**13 bits (512 draws) a block
#: is the XOR of the blocks 1, 2, 22 and 32 before it: three XORs produce 512 draws per neuron.
_BLOCK_DRAWS = 512
#: A stream starts once a bank is asked for this many draws at once; smaller one-off requests
#: use the tables alone.
_STREAM_MIN_COUNT = 32
#: Draws per table call while a stream fills its first 32 blocks (a small, fast-built table).
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
        return self._states

    @states.setter
    def states(self, value) -> None:
        self._states = np.array(value, dtype=np.uint64)
        # Draws generated ahead of the states (see ``draw``); none yet.
        self._stream = None
        self._cursor = 0
        self._filled = 0

    @classmethod
    def for_layer(cls, layer_seed: int, neurons: int) -> LfsrBank:
        return cls([lfsr_seed(layer_seed, i) for i in range(neurons)])

    def draw(self, count: int, positions=None) -> np.ndarray:
        """The next ``count`` draws of every neuron, shape (neurons, count), dtype uint16.

        Equivalent to calling ``lfsr_step`` STOCH_BITS times per draw and keeping the low
        STOCH_BITS bits. Computed with precomputed leap-ahead tables, and for repeated large
        requests with a stream of blocks generated ahead (see ``_BLOCK_DRAWS``); ``states``
        is always the state after exactly the ``count`` draws.

        ``positions`` (indices in ``0 .. count - 1``) returns only those columns,
        ``draw(count)[:, positions]``; every LFSR still advances by ``count`` draws.
        """
        if count == 0:
            return np.zeros((self._states.size, 0 if positions is None else len(positions)), dtype=np.uint16)
        if self._stream is None and count < _STREAM_MIN_COUNT:
            draws, self._states = _table_draws(self._states, count)
            return draws if positions is None else draws[:, np.asarray(positions, dtype=np.intp)]
        if self._stream is None:
            self._start_stream()
        while self._filled * _BLOCK_DRAWS - self._cursor < count:
            self._extend_stream(count)
        if positions is None:
            draws = self._served(self._cursor, count)
            last_two = draws[:, -2:]
        else:
            # (positions, neurons) gathered straight from the blocks, seen as (neurons, positions).
            where = np.asarray(positions, dtype=np.intp) + self._cursor
            draws = self._stream[where // _BLOCK_DRAWS, :, where % _BLOCK_DRAWS].T
            last_two = self._served(self._cursor + max(count - 2, 0), min(count, 2))
        self._cursor += count
        # The state holds the last 32 output bits: the last two draws.
        if count == 1:
            state = (self._states & np.uint64(0xFFFF)).astype(np.uint32)
        else:
            state = last_two[:, -2].astype(np.uint32)
        state <<= STOCH_BITS
        state |= last_two[:, -1]
        self._states = state.astype(np.uint64)
        return draws

    def _served(self, start: int, count: int) -> np.ndarray:
        """Stream draws ``start .. start + count - 1`` as a new (neurons, count) array."""
        first, offset = divmod(start, _BLOCK_DRAWS)
        last = (start + count - 1) // _BLOCK_DRAWS
        if first == last:
            return self._stream[first, :, offset : offset + count].copy()
        # (blocks, neurons, draws) -> (neurons, blocks * draws): one copy, then a view.
        chunk = self._stream[first : last + 1].transpose(1, 0, 2).reshape(self._states.size, -1)
        return chunk[:, offset : offset + count]

    def _start_stream(self) -> None:
        """Fill the first 32 blocks from the current states with the tables."""
        history = LFSR_TAPS[0]
        # Blocks are the leading axis: a block of every neuron is one contiguous array.
        self._stream = np.empty((2 * history, self._states.size, _BLOCK_DRAWS), dtype=np.uint16)
        state = self._states
        per_block = _BLOCK_DRAWS // _STREAM_SEED_DRAWS
        for call in range(history * per_block):
            block, part = divmod(call, per_block)
            columns = slice(part * _STREAM_SEED_DRAWS, (part + 1) * _STREAM_SEED_DRAWS)
            self._stream[block, :, columns], state = _table_draws(state, _STREAM_SEED_DRAWS)
        self._cursor = 0
        self._filled = history

    def _extend_stream(self, count: int) -> None:
        """Append one block: the XOR of the blocks LFSR_TAPS before it."""
        history = LFSR_TAPS[0]
        if self._filled == self._stream.shape[0]:
            # Keep the unserved draws and the 32 blocks the recurrence reads; drop the rest.
            keep = min(self._cursor // _BLOCK_DRAWS, self._filled - history)
            needed = self._filled - keep + 1 + -(-count // _BLOCK_DRAWS)
            if needed > self._stream.shape[0]:
                grown = np.empty((2 * needed,) + self._stream.shape[1:], dtype=np.uint16)
                grown[: self._filled - keep] = self._stream[keep : self._filled]
                self._stream = grown
            else:
                self._stream[: self._filled - keep] = self._stream[keep : self._filled]
            self._cursor -= keep * _BLOCK_DRAWS
            self._filled -= keep
        end = self._filled
        block = self._stream[end]
        np.bitwise_xor(self._stream[end - LFSR_TAPS[0]], self._stream[end - LFSR_TAPS[1]], out=block)
        for lag in LFSR_TAPS[2:]:
            block ^= self._stream[end - lag]
        self._filled = end + 1


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
