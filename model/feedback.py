"""Feedback matrices for DFA, SDFA and SSDFA: sparsity, rank and initial values.

A hidden layer of ``N`` neurons receives the ``M`` output errors through a fixed matrix ``B`` of
shape (N, M). Neuron ``i`` keeps only its row's non-zeros: ``connections`` (``s``) error indices
and constants. SSDFA is ``s = 1``, DFA the dense ``s = M``; SDFA is anything between.

Construction follows section 4.2 of Crafton et al. (2019): a matrix of rank ``r`` has ``r``
linearly independent sparse rows, and every other row is a scalar multiple of one of them, so it
shares that row's zero pattern. Every error must reach at least one neuron, which needs
``r * s >= M`` (the paper's "rank x connectivity >= 1"); anything else is refused.

Initial values (section 6 of the paper; see docs/model.md, "Feedback matrices", for the reading):

- dense (``s = M``): uniform in ``[-1/N, 1/N]``; the paper's "fanin" is the layer size ``N``;
- sparse (``s < M``): uniform in ``[-1/(N s), 1/(N s)]``, reading the paper's
  "1/fanin·N (where N is the number of sparse connections)" as ``1 / (fanin * s)``.
  For SSDFA (``s = 1``) every reading gives ``[-1/N, 1/N]``.

The matrix lives in float64; ``FeedbackMatrix.raw_values`` converts the constants to a feedback
format with ``arithmetic.quantize`` (the contract's host-side conversion, §1.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .arithmetic import STOCH_BITS, FixedFormat, LfsrBank, quantize
from .neuron_ops import dense_feedback

__all__ = [
    "FeedbackMatrix",
    "build_feedback",
    "check_feedback_shape",
    "feedback_bound",
    "lfsr_connectivity",
    "POWER_OF_TWO_LEVELS",
]

#: Power-of-two constants take one of this many magnitudes: 2**k_max, ..., 2**(k_max - 3),
#: where 2**k_max is the largest power of two within the initialisation bound (a 2-bit shift).
POWER_OF_TWO_LEVELS = 4

#: Attempts at drawing values that reach the requested rank (power-of-two constants can
#: coincide and lose rank; continuous values reach it with probability 1).
_RANK_ATTEMPTS = 64

#: Keeps the feedback's random stream apart from other users of the same seed.
_SEED_DOMAIN = 0xFEED


@dataclass(frozen=True, eq=False)
class FeedbackMatrix:
    """A feedback matrix and the per-neuron tables that hardware stores.

    Attributes
    ----------
    matrix : numpy.ndarray
        float64, shape (neurons, outputs): B, zero outside each row's connections.
    index : numpy.ndarray
        int64, shape (neurons, connections): the error indices of each neuron, ascending.
    value : numpy.ndarray
        float64, shape (neurons, connections): the constants, ``matrix[i, index[i, t]]``.
    power_of_two : bool
        Every constant is ``+-2**k``.
    """

    matrix: np.ndarray
    index: np.ndarray
    value: np.ndarray
    power_of_two: bool = False

    def __post_init__(self) -> None:
        for name in ("matrix", "index", "value"):
            view = getattr(self, name).view()
            view.flags.writeable = False
            object.__setattr__(self, name, view)

    @classmethod
    def from_tables(cls, index, value, outputs: int, *, power_of_two: bool = False) -> FeedbackMatrix:
        """Build from per-neuron tables: ``index`` (N, s) error indices, ``value`` (N, s) reals.

        Raises ValueError for mismatched shapes, an index outside ``0 .. outputs - 1`` or a
        neuron that lists one error twice.
        """
        index = np.asarray(index)
        value = np.asarray(value, dtype=np.float64)
        if index.ndim != 2 or index.shape != value.shape:
            raise ValueError(
                f"index and value must be (neurons, s) arrays of one shape, not {index.shape} and {value.shape}"
            )
        if index.size and (index.min() < 0 or index.max() >= outputs):
            raise ValueError(f"error indices must lie in 0..{outputs - 1}, not {index.min()}..{index.max()}")
        index = index.astype(np.int64)
        order = np.argsort(index, axis=1, kind="stable")
        index = np.take_along_axis(index, order, axis=1)
        value = np.take_along_axis(value, order, axis=1)
        if index.shape[1] > 1 and np.any(index[:, 1:] == index[:, :-1]):
            raise ValueError("a neuron lists the same error index twice")
        matrix = dense_feedback(index, value, outputs, dtype=np.float64)
        return cls(matrix, index, value, power_of_two)

    # -- shape and statistics ----------------------------------------------------------------

    @property
    def neurons(self) -> int:
        return self.matrix.shape[0]

    @property
    def outputs(self) -> int:
        return self.matrix.shape[1]

    @property
    def connections(self) -> int:
        """s: the errors each neuron receives (1 for SSDFA, ``outputs`` for DFA)."""
        return self.index.shape[1]

    @property
    def rank(self) -> int:
        """``numpy.linalg.matrix_rank`` of the float matrix."""
        return int(np.linalg.matrix_rank(self.matrix))

    @property
    def sparsity(self) -> float:
        """The paper's sparsity: the fraction of zero entries of B (0.9 for SSDFA with M = 10)."""
        return 1.0 - np.count_nonzero(self.matrix) / self.matrix.size

    @property
    def fan_out(self) -> np.ndarray:
        """int64, shape (outputs,): how many neurons receive each error."""
        return np.bincount(self.index.ravel(), minlength=self.outputs).astype(np.int64)

    # -- fixed point -------------------------------------------------------------------------

    def raw_values(self, fmt: FixedFormat) -> np.ndarray:
        """The constants as raw ``fmt`` values (int64, shape (neurons, s)), by ``quantize``.

        Raises ValueError if power-of-two constants are not exactly representable in ``fmt``
        (a hardware shifter could not apply them).
        """
        raw = quantize(self.value, fmt)
        if self.power_of_two and not np.array_equal(fmt.to_real(raw), self.value):
            smallest = float(np.min(np.abs(self.value)))
            raise ValueError(
                f"power-of-two feedback constants down to {smallest:g} are not exact in the "
                f"feedback format {fmt}; it needs more fraction bits or more integer bits"
            )
        return raw

    def raw_matrix(self, fmt: FixedFormat, dtype=np.int64) -> np.ndarray:
        """The dense (neurons, outputs) matrix of raw ``fmt`` values, for ``neuron_ops.feedback_delta``."""
        return dense_feedback(self.index, self.raw_values(fmt), self.outputs, dtype=dtype)

    def summary(self) -> dict:
        """Rank, connections, sparsity and per-error fan-out, as plain Python values."""
        fan_out = self.fan_out
        return {
            "neurons": self.neurons,
            "outputs": self.outputs,
            "connections": self.connections,
            "rank": self.rank,
            "sparsity": float(round(self.sparsity, 6)),
            "fan_out": fan_out.tolist(),
            "fan_out_min": int(fan_out.min()),
            "fan_out_max": int(fan_out.max()),
            "power_of_two": self.power_of_two,
        }


# --------------------------------------------------------------------------------------------
# Checks and bounds
# --------------------------------------------------------------------------------------------


def _positive_int(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def check_feedback_shape(
    neurons: int, outputs: int, connections: int | None = None, rank: int | None = None
) -> tuple[int, int]:
    """Check ``s`` and ``r`` for an (N, M) feedback matrix; return them with defaults filled in.

    ``connections`` defaults to ``outputs`` (dense DFA), ``rank`` to full rank ``min(N, M)``.
    Raises ValueError naming the values when ``s > M``, ``r > min(N, M)`` or ``r * s < M``
    (some error would reach no neuron: rank x connectivity < 1).
    """
    neurons = _positive_int("neurons", neurons)
    outputs = _positive_int("outputs", outputs)
    s = outputs if connections is None else _positive_int("sparsity s (connections per neuron)", connections)
    if s > outputs:
        raise ValueError(f"sparsity s={s} connections per neuron is more than the {outputs} output errors")
    full = min(neurons, outputs)
    r = full if rank is None else _positive_int("rank r", rank)
    if r > full:
        raise ValueError(f"rank r={r} is more than min(neurons, outputs) = min({neurons}, {outputs}) = {full}")
    if r * s < outputs:
        if rank is None and r == neurons:
            # The rank is the layer's width: the layer is what is too narrow (SSDFA needs N >= M).
            raise ValueError(
                f"a layer of {neurons} neurons (or channels) with s={s} feedback connections each cannot receive "
                f"all {outputs} output errors (rank x connectivity < 1); widen it to at least {-(-outputs // s)} "
                "or raise s"
            )
        raise ValueError(
            f"rank r={r} x sparsity s={s} = {r * s} is less than the {outputs} output errors: "
            "some errors would reach no neuron (rank x connectivity < 1)"
        )
    return s, r


def feedback_bound(neurons: int, outputs: int, connections: int) -> float:
    """Half-width of the uniform initial values (paper, section 6; see the module docstring).

    ``1/N`` for a dense matrix (``s = M``), ``1/(N s)`` for a sparse one.
    """
    return 1.0 / neurons if connections >= outputs else 1.0 / (neurons * connections)


# --------------------------------------------------------------------------------------------
# Connectivity regenerated from the LFSR
# --------------------------------------------------------------------------------------------


def lfsr_connectivity(seed: int, neurons: int, outputs: int) -> np.ndarray:
    """Each neuron's one error index (SSDFA), regenerated on chip from the contract's LFSR.

    Neuron ``i`` starts an LFSR from ``lfsr_seed(seed, i)`` (docs/arithmetic.md §5.2), takes
    its first 16-bit draw ``r`` (§5.1) and receives error ``(r * M) >> 16``. Hardware needs a
    multiplier by the constant ``M`` (or, for ``M = 2**k``, the draw's top ``k`` bits) instead
    of an index memory. Returns int64, shape (neurons,). The result is not balanced and may
    miss an error; ``build_feedback`` refuses such a seed.
    """
    neurons = _positive_int("neurons", neurons)
    outputs = _positive_int("outputs", outputs)
    if outputs > 1 << STOCH_BITS:
        raise ValueError(f"LFSR connectivity addresses at most {1 << STOCH_BITS} errors, not {outputs}")
    draws = LfsrBank.for_layer(int(seed), neurons).draw(1)[:, 0].astype(np.int64)
    return (draws * outputs) >> STOCH_BITS


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


def build_feedback(
    neurons: int,
    outputs: int,
    *,
    connections: int | None = None,
    rank: int | None = None,
    balanced: bool = False,
    power_of_two: bool = False,
    seed: int = 0,
    lfsr_seed: int | None = None,
    gain: float = 1.0,
) -> FeedbackMatrix:
    """A random (neurons, outputs) feedback matrix with ``connections`` non-zeros per row and
    the given rank (paper, section 4.2).

    Parameters
    ----------
    neurons, outputs : int
        N hidden neurons and M output errors.
    connections : int, optional
        s, the non-zeros per row: 1 for SSDFA, M (the default) for DFA.
    rank : int, optional
        r, the rank; default full rank ``min(N, M)``. With ``r < min(N, M)`` there are ``r``
        independent rows and every other row is a scalar multiple of one of them.
    balanced : bool
        Spread connections evenly: with full rank, the number of neurons per error (fan-out)
        differs by at most one between errors, which is what a hardware router wants. With
        lower rank, neurons are spread evenly over the ``r`` zero patterns.
    power_of_two : bool
        Constants are ``+-2**k`` with ``POWER_OF_TWO_LEVELS`` magnitudes below the bound, so that
        hardware multiplies by a shift.
    seed : int
        Seeds the NumPy generator behind the choice of connections and values.
    lfsr_seed : int, optional
        SSDFA only: take each neuron's error index from ``lfsr_connectivity(lfsr_seed, N, M)``
        instead of storing a table. Refused with ``balanced`` or a seed that misses an error.
    gain : float
        Multiplies the initialisation bound (1 follows the paper).

    Raises
    ------
    ValueError
        Impossible ``s``/``r`` (see ``check_feedback_shape``) or options, naming the values.
    """
    s, r = check_feedback_shape(neurons, outputs, connections, rank)
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise ValueError(f"feedback gain must be a positive finite number, not {gain!r}")
    n, m = int(neurons), int(outputs)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"feedback seed must be a non-negative integer, not {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SEED_DOMAIN]))
    full = min(n, m)

    if lfsr_seed is not None:
        if s != 1:
            raise ValueError(f"LFSR-regenerated connectivity is for SSDFA (s=1), not s={s}")
        if balanced:
            raise ValueError("LFSR-regenerated connectivity cannot be balanced; drop one of the two options")
        index = lfsr_connectivity(lfsr_seed, n, m)[:, None]
        missing = np.setdiff1d(np.arange(m), index)
        if missing.size:
            raise ValueError(
                f"LFSR connectivity with seed {lfsr_seed} gives errors {missing.tolist()} to no neuron; "
                "choose another seed"
            )
        patterns, owner = index, np.arange(n)
        independent = n
    else:
        # Rows of the independent patterns: all rows at full rank, else r base patterns.
        independent = n if r == full else r
        patterns = (_balanced_patterns if balanced else _random_patterns)(independent, m, s, rng)
        if independent == n:
            owner = np.arange(n)
        else:
            owner = _assign_neurons(n, r, balanced, rng)

    bound = gain * feedback_bound(n, m, s)
    for _ in range(_RANK_ATTEMPTS):
        base = _draw_values((independent, s), bound, power_of_two, rng)
        if independent == n:
            value = base
        else:
            # Dependent rows: a scalar multiple of their pattern's base row (same zeros). The
            # base rows themselves keep scale 1.
            value = base[owner] * _dependent_scales(owner, base, bound, power_of_two, rng)[:, None]
        matrix = FeedbackMatrix.from_tables(patterns[owner], value, m, power_of_two=power_of_two)
        if matrix.rank == r:
            return matrix
    raise ValueError(
        f"could not draw {'power-of-two ' if power_of_two else ''}constants of rank {r} for "
        f"N={n}, M={m}, s={s} (seed {seed}); try another seed"
    )


def _random_patterns(rows: int, outputs: int, s: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, s) column sets: row k < min(rows, M) holds a distinct pivot column, the columns no
    pivot covers are dealt round-robin, and the remaining slots are random distinct columns.

    The distinct pivots give a matching of size min(rows, M), so random values reach full rank.
    """
    perm = rng.permutation(outputs)
    pivots = min(rows, outputs)
    chosen = [[int(perm[k])] if k < pivots else [int(rng.integers(outputs))] for k in range(rows)]
    # rows * s >= M (checked), so the uncovered columns fit in the s - 1 free slots of each row.
    for position, column in enumerate(perm[pivots:]):
        chosen[position % rows].append(int(column))
    for row in chosen:
        free = np.setdiff1d(np.arange(outputs), row)
        row.extend(int(c) for c in rng.choice(free, size=s - len(row), replace=False))
    return np.sort(np.array(chosen, dtype=np.int64), axis=1)


def _balanced_patterns(rows: int, outputs: int, s: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, s) column sets with per-column counts that differ by at most one.

    Row t holds columns ``(t + floor(j M / s)) mod M`` for j < s (before a random relabelling
    of columns and rows). Every column appears ``floor`` or ``ceil`` of ``rows * s / M`` times
    because the offsets ``floor(j M / s)`` are evenly spread; rows t < M have distinct pivots
    (j = 0), which gives full rank with random values; and the columns of a row are distinct.
    """
    offsets = (np.arange(s) * outputs) // s
    table = (np.arange(rows)[:, None] + offsets[None, :]) % outputs
    perm = rng.permutation(outputs)
    table = perm[table][rng.permutation(rows)]
    return np.sort(table.astype(np.int64), axis=1)


def _assign_neurons(neurons: int, patterns: int, balanced: bool, rng: np.random.Generator) -> np.ndarray:
    """Which pattern each neuron copies: the first ``patterns`` neurons (in a random order) own
    one pattern each; the others are spread evenly (balanced) or at random."""
    order = rng.permutation(neurons)
    owner = np.empty(neurons, dtype=np.int64)
    rest = neurons - patterns
    if balanced:
        extra = np.arange(rest) % patterns
    else:
        extra = rng.integers(patterns, size=rest)
    owner[order] = np.concatenate([np.arange(patterns), extra])
    return owner


def _draw_values(shape, bound: float, power_of_two: bool, rng: np.random.Generator) -> np.ndarray:
    if not power_of_two:
        return rng.uniform(-bound, bound, size=shape)
    top = math.floor(math.log2(bound))
    exponents = top - rng.integers(POWER_OF_TWO_LEVELS, size=shape)
    signs = rng.choice(np.array([-1.0, 1.0]), size=shape)
    return signs * np.ldexp(1.0, exponents)


def _dependent_scales(owner, base, bound: float, power_of_two: bool, rng: np.random.Generator) -> np.ndarray:
    """Per-neuron multipliers: 1 for a pattern's first neuron, otherwise a random scale that
    keeps the row's largest constant within the bound (a power of two when required)."""
    neurons = owner.size
    first = np.zeros(neurons, dtype=bool)
    _, first_index = np.unique(owner, return_index=True)
    first[first_index] = True
    sign = rng.choice(np.array([-1.0, 1.0]), size=neurons)
    if power_of_two:
        # Base magnitudes lie in 2**(top-3) .. 2**top; a shift down keeps them powers of two.
        scale = sign * np.ldexp(1.0, -rng.integers(POWER_OF_TWO_LEVELS, size=neurons))
    else:
        largest = np.abs(base[owner]).max(axis=1)
        scale = sign * rng.uniform(0.0, 1.0, size=neurons) * bound / largest
    scale[first] = 1.0
    return scale
