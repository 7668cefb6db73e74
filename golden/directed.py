"""Directed corner cases: steer a layer set's test data onto the values that catch small faults.

Random test data almost never lands exactly on a rounding tie (1 in 2^14 per value for a
16-bit cast dropping 14 bits), on the activation's kinks or beyond a saturation bound, so a
hardware fault there (a rounding constant off by one, ``f'(0) = 1``, a missing clamp) survives
any affordable number of random samples. ``direct_stimulus`` therefore chooses each of the
first ``DIRECTED_SAMPLES`` samples greedily among candidates: the random sample itself, and
variants of it with one input or one error solved (modular inverse) to put one neuron's exact
pre-activation, delta or weight step on a target residue, or set to the extremes that drive a
quantity into saturation. It keeps the candidate that meets the most corner cases not met
yet (``corner_cases``), and plays it through the model to go on from the state it leaves.

Under STOCH the rounding offset is an LFSR draw, the same for every candidate of a sample
(the draws depend on the sample's position only), so the search can also aim at the *carry
edge*: the exact value plus the draw's offset with every dropped bit set, where an offset one
too high (a padding constant off by one in the hardware's ``{draw, 0...}``) carries into the
kept bits. Random data lands there with probability 2^-d per value (d dropped bits: 2^-18 for
the SDFA tanh set's delta), so without aiming no set meets it.

The same solver, for any target residue (``_residue_solution``), aims at the residue below the
cut of each deterministic rounding other than RND (``_cut_targets``): every mode is
``(v + offset) >> d`` in the hardware, and an offset one off there shows only on one residue
of the dropped bits (all ones for TRN, exactly 1 on a negative value for TRN_ZERO, a tie from
an odd or an even floor for RND_CONV).

Only the stimulus changes: the expected values still come from ``simulate_layer`` alone (the
model's bit-exact path). Corner cases are recognised on exact integer values (the residue of
the dropped bits, the value against the format's range), so nothing here rounds.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ssdfa.model.arithmetic import STOCH_BITS, FixedFormat, LfsrBank, Rounding, cast, layer_seed, stochastic_offsets
from ssdfa.model.layer_config import LayerConfig
from ssdfa.model.neuron_ops import Activation, dense_feedback, feedback_delta, forward, output_error, weight_update

__all__ = ["DIRECTED_SAMPLES", "direct_stimulus", "corner_cases"]

#: Samples chosen greedily (later samples stay as drawn, so long sets cost no more).
DIRECTED_SAMPLES = 16

#: Neurons aimed at per round (all of them in a layer this small or smaller).
NEURONS_PER_ROUND = 8

#: Values changed per sample at most (each round solves or sets one more).
ROUNDS = 5

#: Half-width of the window a first error is swept over when two errors are solved together
#: (the STOCH carry edge of a delta, when one error word is narrower than the residue).
_SWEEP = 2048

#: Corner cases that decide whether a fault is seen at all count more than their variants
#: (the sign of a tie, the parity of its floor): one below a tie (a rounding constant one too
#: high), the values beyond each bound (a missing clamp), the STOCH carry edge (a rounding
#: offset one too high) and the activation's kinks.
_DECISIVE = {"tie", "tie-1", "above-max", "below-min", "stoch-edge"}


#: What the residue below the cut of a deterministic rounding other than RND counts
#: (``_cut_targets``): few candidates meet it, so it must outweigh several ties and kinks. In
#: a layer that has such cuts, the weight's clamp counts as much, or the cuts crowd it out.
_RARE = 8


def _weight(case: tuple, cuts: bool) -> int:
    if case[1] == "cut" or (cuts and case[0] == "w"):
        return _RARE
    return 3 if case[1] in _DECISIVE or case[0] in ("y=", "a=") else 1


def _gain(found: set, met: set, cuts: bool = False) -> int:
    return sum(_weight(case, cuts) for case in found - met)


@dataclasses.dataclass(frozen=True)
class _Cast:
    """One cast of the datapath: exact values with ``frac`` fraction bits into ``fmt``."""

    name: str
    frac: int
    fmt: FixedFormat
    saturates: bool
    rounding: Rounding

    @property
    def dropped(self) -> int:
        return self.frac - self.fmt.frac_bits


def _residue_cases(cast: _Cast, exact: np.ndarray) -> set:
    """Rounding corner cases met by ``exact``: a tie (and by sign and the parity of the floor),
    one below and one above a tie, a negative value with dropped bits (TRN_ZERO), by sign."""
    dropped = cast.dropped
    if dropped < 1:
        return set()
    rest = exact & ((1 << dropped) - 1)
    floor = exact >> dropped
    half = 1 << (dropped - 1)
    # Only where rounding decides the result: a value that overflows is clamped or wrapped.
    inside = (floor >= cast.fmt.min_raw) & (floor < cast.fmt.max_raw)
    negative = exact < 0
    tie = inside & (rest == half)
    odd = (floor & 1) == 1
    found = set()
    for mask, case in ((tie, ("tie",)), (tie & odd & ~negative, ("tie-odd", "pos")),
                       (tie & odd & negative, ("tie-odd", "neg")), (tie & ~odd & ~negative, ("tie-even", "pos")),
                       (tie & ~odd & negative, ("tie-even", "neg")),
                       (inside & (rest == half - 1) & ~negative, ("tie-1", "pos")),
                       (inside & (rest == half - 1) & negative, ("tie-1", "neg")),
                       (inside & (rest == half + 1) & ~negative, ("tie+1", "pos")),
                       (inside & (rest == half + 1) & negative, ("tie+1", "neg")),
                       (inside & negative & (rest != 0), ("negative-inexact",))):
        if mask.any():
            found.add((cast.name, *case))
    return found


def _cut_targets(rounding: Rounding, dropped: int) -> list:
    """The residues below the cut where a rounding offset one off shows, beyond RND's ties:
    (case, residue, modulus bits, sign), the sign 1 or -1 when only values of that sign count.

    TRN adds 0: an offset of 1 carries only from all dropped bits ones. TRN_ZERO adds
    ``2^d - 1`` to a negative value: one less stops carrying only from dropped bits exactly 1,
    an offset of 1 on a positive one carries only from all ones. RND_CONV adds ``2^(d-1) - 1``
    plus the kept LSB: a tie from an odd floor tells an offset one lower (or the LSB
    subtracted), a tie from an even one an offset one higher (the residue mod ``2^(d+1)``
    holds the floor's parity). RND's ties and STOCH's carry edge are recognised apart
    (``_residue_cases``, ``_stochastic_cases``)."""
    if dropped < 1:
        return []
    ones = (1 << dropped) - 1
    if rounding is Rounding.TRN:
        return [("all-ones", ones, dropped, 0)]
    if rounding is Rounding.TRN_ZERO:
        return [("neg-one", 1, dropped, -1), ("all-ones", ones, dropped, 1)]
    if rounding is Rounding.RND_CONV:
        half, odd = 1 << (dropped - 1), 1 << dropped
        return [("tie-even", half, dropped + 1, 0), ("tie-odd", odd + half, dropped + 1, 0)]
    return []


def _cut_cases(cast: _Cast, exact: np.ndarray) -> set:
    """The cases of ``_cut_targets`` that ``exact`` meets, where rounding decides the result."""
    found = set()
    floor = exact >> max(cast.dropped, 0)
    inside = (floor >= cast.fmt.min_raw) & (floor < cast.fmt.max_raw) if cast.saturates else True
    for case, residue, bits, sign in _cut_targets(cast.rounding, cast.dropped):
        hit = inside & ((exact & ((1 << bits) - 1)) == residue)
        if sign:
            hit = hit & (np.sign(exact) == sign)
        if np.any(hit):
            found.add((cast.name, "cut", case))
    return found


def _stochastic_cases(cast: _Cast, exact: np.ndarray, draws) -> set:
    """The STOCH carry edge: ``exact`` plus its draw's offset has every dropped bit set, so an
    offset one higher would carry into the kept LSB (where a clamp would not hide it).

    Only for casts dropping more than ``STOCH_BITS`` bits: there the offset is the draw
    followed by constant zero bits (``{draw, 0...}`` in the hardware), a constant a fault can
    change; with fewer dropped bits every offset bit is a draw bit."""
    dropped = cast.dropped
    if draws is None or dropped <= STOCH_BITS:
        return set()
    total = exact + stochastic_offsets(draws, dropped)
    edge = (total & ((1 << dropped) - 1)) == (1 << dropped) - 1
    if cast.saturates:
        floor = total >> dropped
        edge &= (floor >= cast.fmt.min_raw) & (floor < cast.fmt.max_raw)
    return {(cast.name, "stoch-edge")} if np.any(edge) else set()


def _residue_solution(coefficient: int, target: int, modulus_bits: int):
    """(r, bits) such that ``coefficient v = target (mod 2^modulus_bits)`` exactly when
    ``v = r (mod 2^bits)``; None when no v gives it (coefficient 0, or a power of two in it
    that the target's low bits do not share)."""
    if coefficient == 0 or modulus_bits < 1:
        return None
    zeros = (abs(coefficient) & -abs(coefficient)).bit_length() - 1
    target %= 1 << modulus_bits
    if zeros >= modulus_bits or target % (1 << zeros):
        return None
    bits = modulus_bits - zeros
    odd = coefficient >> zeros
    return (target >> zeros) * pow(odd, -1, 1 << bits) % (1 << bits), bits


def _edge_residue(coefficient: int, offset: int, dropped: int):
    """(r, bits) such that ``coefficient v + offset`` has its ``dropped`` low bits all set exactly
    when ``v = r (mod 2^bits)``; None when no v gives it (see ``_residue_solution``)."""
    if dropped <= STOCH_BITS:  # see _stochastic_cases
        return None
    return _residue_solution(coefficient, -1 - offset, dropped)


def _range_cases(cast: _Cast, exact: np.ndarray) -> set:
    """The value beyond the format's maximum or minimum (saturation or wrap-around), and at
    each bound exactly."""
    dropped = cast.dropped
    whole = exact >> dropped if dropped >= 0 else exact << -dropped
    found = set()
    if np.any(whole > cast.fmt.max_raw):
        found.add((cast.name, "above-max"))
    if np.any(whole < cast.fmt.min_raw):
        found.add((cast.name, "below-min"))
    if np.any(whole == cast.fmt.max_raw):
        found.add((cast.name, "at-max"))
    if np.any(whole == cast.fmt.min_raw):
        found.add((cast.name, "at-min"))
    return found


def _kinks(config: LayerConfig) -> tuple[set, set]:
    """(pre-activation values, activation values) where the activation or its derivative
    changes: relu at 0 and +-1 LSB; hardtanh at +-1.0 and one LSB either side; tanh at 0 and
    +-1 LSB, and where ``1 - a^2`` is exact at the derivative's precision (a = 0, +-1 LSB,
    +-1/16)."""
    fmt = config.arithmetic.activation
    one = 1 << fmt.frac_bits
    if config.activation is Activation.RELU:
        y_values = {0, 1, -1}
    elif config.activation is Activation.HARDTANH:
        y_values = {v + d for v in (one, -one) for d in (-1, 0, 1)}
    elif config.activation is Activation.TANH:
        y_values = {0, 1, -1}
    else:
        y_values = set()
    a_values = set()
    if config.activation is Activation.TANH:
        a_values = {0, 1, -1} | ({one >> 4, -(one >> 4)} if fmt.frac_bits >= 4 else set())
    inside = range(fmt.min_raw, fmt.max_raw + 1)
    return {v for v in y_values if v in inside}, {v for v in a_values if v in inside}


class _Layer:
    """The constants of one configuration that the search needs."""

    def __init__(self, config: LayerConfig, stimulus) -> None:
        a = config.arithmetic
        self.config = config
        self.a = a
        self.act = config.activation
        self.fan_in = config.shape.fan_in
        self.output = config.is_output_layer
        self.stochastic = a.update_rounding is Rounding.STOCH
        sat = a.overflow.name == "SAT"
        x_frac = a.activation.frac_bits
        self.delta_frac = a.error.frac_bits if self.output else a.delta.frac_bits
        self.y = _Cast("y", a.weight.frac_bits + x_frac, a.activation, sat, a.rounding)
        fprime_frac = a.fprime_frac(self.act)
        self.delta = _Cast("delta", a.feedback.frac_bits + a.error.frac_bits + fprime_frac, a.delta, sat,
                           a.update_rounding)
        self.step = _Cast("step", self.delta_frac + x_frac + a.shift, a.weight, sat, a.update_rounding)
        self.feedback = None if self.output else dense_feedback(
            stimulus.feedback_index, stimulus.feedback_value, config.outputs, dtype=np.int64)
        self.y_kinks, self.a_kinks = _kinks(config)
        self.cuts = any(_cut_targets(cast.rounding, cast.dropped) for cast in (self.y, self.delta, self.step))


def _sample_draws(layer: _Layer, bank) -> tuple:
    """One sample's LFSR draws (§5.3: a hidden layer's delta draw, then F + 1 weight draws),
    advancing ``bank``; (None, None) without STOCH. The same for every candidate of a sample."""
    if not layer.stochastic:
        return None, None
    delta_draws = None if layer.output else bank.draw(1).T
    return delta_draws, bank.draw(layer.fan_in + 1)


def _evaluate(layer: _Layer, weights, x, e, target, draws):
    """Play one sample: (corner cases met, weights after, errors as the set stores them)."""
    a = layer.a
    fan_in = layer.fan_in
    x_row = x[None, :]
    result = forward(weights, x_row, a, layer.act)
    found = set()
    exact_y = weights[:, :fan_in] @ x + (weights[:, fan_in] << a.activation.frac_bits)
    found |= _residue_cases(layer.y, exact_y) | _range_cases(layer.y, exact_y) | _cut_cases(layer.y, exact_y)
    found |= {("y=", int(v)) for v in result.pre_activation[0] if int(v) in layer.y_kinks}
    found |= {("a=", int(v)) for v in result.activation[0] if int(v) in layer.a_kinks}
    if layer.output:
        delta = output_error(result.activation, np.array([target]), a)
        e = delta[0]
    else:
        exact_delta = (layer.feedback @ e) * result.derivative[0]
        found |= _residue_cases(layer.delta, exact_delta) | _range_cases(layer.delta, exact_delta)
        found |= _cut_cases(layer.delta, exact_delta)
        found |= _stochastic_cases(layer.delta, exact_delta, None if draws[0] is None else draws[0][0])
        found |= {("f'=", "0" if v == 0 else "set") for v in result.derivative[0]}
        delta = feedback_delta(e[None, :], result.derivative, layer.feedback, a, layer.act, draws[0])
    inputs = np.append(x, 1 << a.activation.frac_bits)
    exact_step = delta[0][:, None] * inputs[None, :]
    found |= _residue_cases(layer.step, exact_step) | _range_cases(layer.step, exact_step)
    found |= _cut_cases(layer.step, exact_step)
    found |= _stochastic_cases(layer.step, exact_step, draws[1])
    updated = weight_update(weights, delta, layer.delta_frac, x_row, a, draws[1])
    found |= _weight_range_cases(a, layer.delta_frac, weights, exact_step, draws[1])
    return found, updated, e


def _weight_range_cases(a, delta_frac: int, weights, exact_step, draws) -> set:
    """The new weights' range cases: the new weight before its overflow cast above the weight
    format's maximum or below its minimum. The step is rounded and cast exactly as
    ``weight_update`` casts it (the same draws): judged from the exact step's floor instead, a
    weight that the rounded-up step brings back to the maximum would count as above it."""
    step = cast(np.array(exact_step, dtype=np.int64), delta_frac + a.activation.frac_bits + a.shift, a.weight,
                a.update_rounding, a.overflow, draws)
    unclamped = np.asarray(weights, dtype=np.int64) - step
    found = set()
    if np.any(unclamped > a.weight.max_raw):
        found.add(("w", "above-max"))
    if np.any(unclamped < a.weight.min_raw):
        found.add(("w", "below-min"))
    return found


def _solve(coefficient: int, wanted: int, modulus_bits: int):
    """k with coefficient * k == wanted (mod 2^bits), for an odd coefficient; else None."""
    if coefficient % 2 == 0 or modulus_bits < 1:
        return None
    modulus = 1 << modulus_bits
    return (wanted * pow(int(coefficient) % modulus, -1, modulus)) % modulus


def _near(value: int, period: int, fmt: FixedFormat, around: int):
    """``value + k period`` inside ``fmt``, nearest to ``around`` (None if none is)."""
    k = round((around - value) / period)
    for candidate in (value + k * period, value + (k - 1) * period, value + (k + 1) * period):
        if fmt.min_raw <= candidate <= fmt.max_raw:
            return int(candidate)
    return None


def _residue_targets(dropped: int) -> list:
    if dropped < 1:
        return []
    half = 1 << (dropped - 1)
    return [half, half - 1, half + 1] if dropped >= 2 else [half]


def _chosen_neurons(neurons: int, turn: int) -> list:
    """The neurons whose cases one round aims at: all of a small layer; a window of
    ``NEURONS_PER_ROUND`` moving with ``turn`` through a large one (bounds the search's cost)."""
    if neurons <= NEURONS_PER_ROUND:
        return list(range(neurons))
    start = turn * NEURONS_PER_ROUND
    return [(start + k) % neurons for k in range(NEURONS_PER_ROUND)]


def _delta_errors(layer: _Layer, i: int, e0, outputs: list, solution) -> list:
    """Error rows that put neuron i's received sum ``sum_k b_ik e_k`` on the residue
    ``solution`` = (r, bits) (from ``_residue_solution`` on its f', so that the delta product
    lands on a target residue): one error solved, or, when the error format is narrower than
    the residue to hit, two (the first swept over a window around its drawn value, the second
    solved)."""
    if solution is None:
        return []
    wanted, bits = solution  # the received sum's residue
    e_fmt = layer.a.error
    feedback = layer.feedback[i]
    exact = int(feedback @ e0)
    rows = []
    for k in outputs:
        solved = _solve(int(feedback[k]), (wanted - exact) % (1 << bits), bits)
        value = None if solved is None else _near(int(e0[k]) + solved, 1 << bits, e_fmt, int(e0[k]))
        if value is not None:
            e = e0.copy()
            e[k] = value
            rows.append(e)
    if rows:
        return rows
    modulus = 1 << bits
    if bits > 31:  # keeps the sweep's products in int64 (the error words are at most 24 bits)
        return []
    for first in outputs:
        for second in outputs:
            b1, b2 = int(feedback[first]), int(feedback[second])
            if second == first or b2 % 2 == 0:
                continue
            rest = exact - b1 * int(e0[first]) - b2 * int(e0[second])
            sweep = np.arange(max(e_fmt.min_raw, int(e0[first]) - _SWEEP),
                              min(e_fmt.max_raw, int(e0[first]) + _SWEEP) + 1, dtype=np.int64)
            residue = (wanted - rest - b1 * sweep) % modulus * pow(b2, -1, modulus) % modulus
            second_values = residue + np.round((int(e0[second]) - residue) / modulus).astype(np.int64) * modulus
            usable = np.flatnonzero((second_values >= e_fmt.min_raw) & (second_values <= e_fmt.max_raw))
            if usable.size:
                pick = usable[np.argmin(np.abs(sweep[usable] - int(e0[first])))]
                e = e0.copy()
                e[first], e[second] = sweep[pick], second_values[pick]
                return [e]
    return []


def _candidates(layer: _Layer, weights, x0, e0, free_x, free_e, delta_guess, turn: int, draws=(None, None)) -> list:
    """(x, e) rows to try: the drawn ones first, then one value solved or set per candidate
    (or two, for the STOCH carry edge of a delta). ``draws`` are the sample's LFSR draws."""
    a = layer.a
    fan_in = layer.fan_in
    x_fmt, e_fmt = a.activation, a.error
    found = [(x0, e0)]

    def with_x(j, value):
        if value is not None and value != x0[j]:
            x = x0.copy()
            x[j] = value
            found.append((x, e0))

    exact_y = weights[:, :fan_in] @ x0 + (weights[:, fan_in] << x_fmt.frac_bits)
    dropped = layer.y.dropped
    neurons = _chosen_neurons(weights.shape[0], turn)
    for i in neurons:
        usable = [j for j in free_x if weights[i, j] != 0][:2]
        for j in usable:
            w = int(weights[i, j])
            for wanted in _residue_targets(dropped):
                k = _solve(w, (wanted - int(exact_y[i])) % (1 << dropped), dropped)
                if k is not None:
                    with_x(j, _near(int(x0[j]) + k, 1 << dropped, x_fmt, int(x0[j])))
                    with_x(j, _near(int(x0[j]) + k, 1 << dropped, x_fmt, -int(x0[j])))
            for _, residue, bits, _ in _cut_targets(layer.y.rounding, dropped):
                solution = _residue_solution(w, residue - int(exact_y[i]), bits)
                if solution is not None:
                    k, period = solution[0], 1 << solution[1]
                    with_x(j, _near(int(x0[j]) + k, period, x_fmt, int(x0[j])))
                    with_x(j, _near(int(x0[j]) + k, period, x_fmt, -int(x0[j])))
            for kink in layer.y_kinks:
                goal = kink << max(dropped, 0)
                step = round((goal - int(exact_y[i])) / w)
                with_x(j, int(np.clip(int(x0[j]) + step, x_fmt.min_raw, x_fmt.max_raw)))
        for sign in (1, -1):  # drive neuron i's pre-activation to either extreme
            x = x0.copy()
            for j in free_x:
                x[j] = x_fmt.max_raw if sign * weights[i, j] > 0 else x_fmt.min_raw
            found.append((x, e0))
    if not layer.output:
        feedback = layer.feedback
        for i in neurons:
            outputs = [k for k in np.flatnonzero(feedback[i]) if k in free_e]
            if not outputs:
                continue
            k = outputs[0]
            exact = int(feedback[i] @ e0)
            for wanted in _residue_targets(layer.delta.dropped - (layer.a.fprime_frac(layer.act))):
                bits = layer.delta.dropped - layer.a.fprime_frac(layer.act)
                solved = _solve(int(feedback[i, k]), (wanted - exact) % (1 << bits), bits) if bits >= 1 else None
                if solved is not None:
                    value = _near(int(e0[k]) + solved, 1 << bits, e_fmt, int(e0[k]))
                    if value is not None:
                        e = e0.copy()
                        e[k] = value
                        found.append((x0, e))
            for sign in (1, -1):  # neuron i's delta to either extreme, for every input extreme
                e = e0.copy()
                for k in outputs:
                    e[k] = e_fmt.max_raw if sign * feedback[i, k] > 0 else e_fmt.min_raw
                found.append((x0, e))
                for x_sign in (1, -1):
                    x = x0.copy()
                    x[free_x] = x_fmt.max_raw if x_sign > 0 else x_fmt.min_raw
                    found.append((x, e))
        if draws[0] is not None:
            # The delta's STOCH carry edge: f' and the draw stay fixed while only errors change.
            derivative = forward(weights, x0[None, :], a, layer.act).derivative[0]
            offsets = stochastic_offsets(draws[0][0], layer.delta.dropped) if layer.delta.dropped >= 1 else None
            for i in neurons if offsets is not None else []:
                outputs = [k for k in np.flatnonzero(feedback[i]) if k in free_e]
                solution = _edge_residue(int(derivative[i]), int(offsets[i]), layer.delta.dropped)
                found.extend((x0, e) for e in _delta_errors(layer, i, e0, outputs, solution))
        cuts = _cut_targets(layer.delta.rounding, layer.delta.dropped)
        if cuts:
            # The delta's residues below the cut of its deterministic rounding, for this f'.
            derivative = forward(weights, x0[None, :], a, layer.act).derivative[0]
            for i in neurons:
                outputs = [k for k in np.flatnonzero(feedback[i]) if k in free_e]
                for _, residue, bits, _ in cuts:
                    solution = _residue_solution(int(derivative[i]), residue, bits)
                    found.extend((x0, e) for e in _delta_errors(layer, i, e0, outputs, solution))
    # Weight steps: delta_i x_j on a tie, with the delta of the drawn sample.
    bits = layer.step.dropped
    step_offsets = stochastic_offsets(draws[1], bits) if draws[1] is not None and bits >= 1 else None
    for i in neurons:
        delta = delta_guess[i]
        for j in free_x[:2]:
            for wanted in _residue_targets(bits):
                k = _solve(int(delta), wanted % (1 << bits), bits) if bits >= 1 else None
                if k is not None:
                    with_x(j, _near(k, 1 << bits, x_fmt, int(x0[j])))
            for _, residue, modulus_bits, _ in _cut_targets(layer.step.rounding, bits):
                solution = _residue_solution(int(delta), residue, modulus_bits)
                if solution is not None:
                    with_x(j, _near(solution[0], 1 << solution[1], x_fmt, int(x0[j])))
                    with_x(j, _near(solution[0], 1 << solution[1], x_fmt, -int(x0[j])))
            if step_offsets is not None:  # the step's STOCH carry edge, with the drawn delta
                solution = _edge_residue(int(delta), int(step_offsets[i, j]), bits)
                if solution is not None:
                    with_x(j, _near(solution[0], 1 << solution[1], x_fmt, int(x0[j])))
    return found


def corner_cases(config: LayerConfig, stimulus) -> set:
    """Every corner case the stimulus meets, sample by sample (for tests and reports)."""
    layer = _Layer(config, stimulus)
    bank = LfsrBank.for_layer(layer_seed(config.arithmetic.seed, config.index), config.shape.neurons)
    weights = np.asarray(stimulus.weights_initial, dtype=np.int64)
    met = set()
    for sample in range(stimulus.samples):
        e = None if layer.output else np.asarray(stimulus.errors[sample], dtype=np.int64)
        target = None if not layer.output else int(stimulus.targets[sample])
        found, weights, _ = _evaluate(layer, weights, np.asarray(stimulus.inputs[sample], dtype=np.int64), e, target,
                                      _sample_draws(layer, bank))
        met |= found
    return met


def direct_stimulus(config: LayerConfig, stimulus, protected_inputs: int = 0, protected_errors: int = 0):
    """``stimulus`` with its first ``DIRECTED_SAMPLES`` samples steered onto corner cases.

    Parameters
    ----------
    config : LayerConfig
    stimulus : LayerStimulus
        From ``layer_vectors.draw_stimulus``; returned changed in its inputs and errors only.
    protected_inputs, protected_errors : int
        The first values (row-major) of the inputs and errors that stay as drawn (the
        format's special values, which every set keeps).
    """
    layer = _Layer(config, stimulus)
    bank = LfsrBank.for_layer(layer_seed(config.arithmetic.seed, config.index), config.shape.neurons)
    weights = np.asarray(stimulus.weights_initial, dtype=np.int64)
    inputs = np.array(stimulus.inputs, dtype=np.int64)
    errors = None if layer.output else np.array(stimulus.errors, dtype=np.int64)
    fan_in, outputs = layer.fan_in, config.outputs
    met: set = set()
    for sample in range(min(stimulus.samples, DIRECTED_SAMPLES)):
        free_x = [j for j in range(fan_in) if sample * fan_in + j >= protected_inputs]
        free_e = [] if layer.output else [k for k in range(outputs) if sample * outputs + k >= protected_errors]
        x0 = inputs[sample]
        e0 = None if layer.output else errors[sample]
        target = None if not layer.output else int(stimulus.targets[sample])
        draws = _sample_draws(layer, bank)  # the same for every candidate of this sample
        best = (x0, e0)
        best_found = _evaluate(layer, weights, x0, e0, target, draws)[0]
        # A few rounds: each changes one more value of the best row so far, so that one sample
        # can meet a case on the forward pass and another on the delta.
        for round_ in range(ROUNDS):
            base_x, base_e = best
            delta_guess = _delta_of(layer, weights, base_x, base_e, target, draws)
            improved = False
            for x, e in _candidates(layer, weights, base_x, base_e, free_x, free_e, delta_guess,
                                       sample * ROUNDS + round_, draws)[1:]:
                found = _evaluate(layer, weights, x, e, target, draws)[0]
                if _gain(found, met, layer.cuts) > _gain(best_found, met, layer.cuts):
                    best, best_found, improved = (x, e), found, True
            if not improved:
                break
        x, e = best
        inputs[sample] = x
        if errors is not None:
            errors[sample] = e
        found, weights, _ = _evaluate(layer, weights, x, e, target, draws)
        met |= found
    return dataclasses.replace(stimulus, inputs=inputs, errors=errors)


def _delta_of(layer: _Layer, weights, x, e, target, draws) -> np.ndarray:
    """The deltas a sample gives (to aim weight steps at ties)."""
    result = forward(weights, x[None, :], layer.a, layer.act)
    if layer.output:
        return output_error(result.activation, np.array([target]), layer.a)[0]
    return feedback_delta(e[None, :], result.derivative, layer.feedback, layer.a, layer.act, draws[0])[0]
