"""Golden vectors for one hardware layer: seeded test data in, the model's expected values out.

Two steps, kept apart because only the second is bit-exact:

1. ``draw_stimulus``: initial weights, the feedback table, inputs and errors (or targets),
   drawn from NumPy's PCG64 bit generator seeded from the configuration's seed. This is test
   data; how it is drawn is documented in docs/golden.md and versioned by ``GENERATOR``.
2. ``simulate_layer``: the layer trained on those samples one at a time (batch 1, as the
   hardware does), through ``neuron_ops`` only, with STOCH draws from the layer's
   ``LfsrBank`` in the order of docs/arithmetic.md §5.3.

``generate_layer_set`` does both and returns a ``GoldenSet`` for ``format.write_golden_set``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ssdfa.model.arithmetic import FixedFormat, LfsrBank, Rounding, layer_seed, quantize
from ssdfa.model.layer_config import LayerConfig
from ssdfa.model.neuron_ops import dense_feedback, feedback_delta, forward, output_error, weight_update

from .format import GoldenSet, layer_array_specs, weight_checksum

__all__ = [
    "GENERATOR",
    "MIN_INIT_RAW",
    "LayerStimulus",
    "draw_stimulus",
    "directed_stimulus",
    "simulate_layer",
    "generate_layer_set",
    "with_seed",
    "special_values",
]

#: Recorded in every manifest. Bump ``version`` whenever ``draw_stimulus`` draws differently:
#: the committed canonical sets must then be regenerated (their test says so).
#: Version 2 added the directed corner cases (golden/directed.py), 3 their STOCH carry edge,
#: 4 the residues below the cut of TRN, TRN_ZERO and RND_CONV.
GENERATOR = {"name": "ssdfa.golden.layer_vectors", "version": 4}

#: Initial weights span at least +-MIN_INIT_RAW raw units, so that a wide fan-in or a narrow
#: weight format does not round the paper's +-1/fan_in range to all zeros.
MIN_INIT_RAW = 8

# First word of every test-data seed: keeps these streams apart from any other use of the seed.
_DATA_STREAM = 0x55DFA
# One independent stream per quantity, so that adding a quantity never shifts the others.
_WEIGHTS, _FEEDBACK, _INPUTS, _ERRORS, _TARGETS = range(5)


@dataclass(frozen=True)
class LayerStimulus:
    """What a layer is given: raw integers (int64; int32 for indices and classes).

    Attributes
    ----------
    weights_initial : (N, F + 1)
        Weight format; bias in the last column.
    inputs : (S, F)
        Activation format.
    feedback_index, feedback_value : (N, s) or None
        Hidden layers: the error index each neuron receives and its constant b (feedback format).
    errors : (S, M) or None
        Hidden layers: the output errors e (error format).
    targets : (S,) or None
        The output layer: the target class of each sample.
    """

    weights_initial: np.ndarray
    inputs: np.ndarray
    feedback_index: np.ndarray | None = None
    feedback_value: np.ndarray | None = None
    errors: np.ndarray | None = None
    targets: np.ndarray | None = None

    @property
    def samples(self) -> int:
        return self.inputs.shape[0]


def with_seed(config: LayerConfig, seed: int) -> LayerConfig:
    """``config`` with the network seed replaced (it seeds the LFSRs and the test data)."""
    return config.with_(arithmetic=dataclasses.replace(config.arithmetic, seed=seed))


# --------------------------------------------------------------------------------------------
# Test data (not the bit-exact path)
# --------------------------------------------------------------------------------------------


class _Stream:
    """Integers from PCG64's raw output, whose bit stream NumPy keeps stable across releases.

    Generator methods (``integers``, ``permutation``) may change their algorithms between NumPy
    versions; mapping raw 64-bit words ourselves keeps committed sets reproducible. The modulo
    mapping is slightly non-uniform for spans that do not divide 2**64: irrelevant for test data.
    """

    def __init__(self, seed: int, index: int, quantity: int) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence([_DATA_STREAM, seed, index, quantity]))

    def integers(self, low: int, high: int, shape: tuple) -> np.ndarray:
        """Integers in ``low..high`` (inclusive), int64."""
        count = int(np.prod(shape, dtype=np.int64))
        raw = self._bits.random_raw(count)
        return ((raw % np.uint64(high - low + 1)).astype(np.int64) + low).reshape(shape)

    def permutation(self, n: int) -> np.ndarray:
        return np.argsort(self._bits.random_raw(n), kind="stable")


def special_values(fmt: FixedFormat) -> list[int]:
    """The raw values every set should contain: 0, the extremes, +-1 LSB and +-1.0."""
    one = 1 << fmt.frac_bits
    candidates = [0, fmt.min_raw, fmt.max_raw, -1, 1, one, -one]
    values = []
    for value in candidates:
        if fmt.min_raw <= value <= fmt.max_raw and value not in values:
            values.append(value)
    return values


def _exercising(stream: _Stream, fmt: FixedFormat, shape: tuple) -> np.ndarray:
    """(S, K) raw values that exercise ``fmt``: 2/8 special values, 3/8 within +-1.0, 3/8 anywhere.

    The first values (row-major) are the special values in order, so that every set holding at
    least that many values contains them all, whatever the draw.
    """
    specials = np.array(special_values(fmt), dtype=np.int64)
    one = 1 << fmt.frac_bits
    choice = stream.integers(0, 7, shape)
    special = specials[stream.integers(0, len(specials) - 1, shape)]
    small = stream.integers(max(-one, fmt.min_raw), min(one, fmt.max_raw), shape)
    anywhere = stream.integers(fmt.min_raw, fmt.max_raw, shape)
    values = np.where(choice < 2, special, np.where(choice < 5, small, anywhere))
    flat = values.reshape(-1)  # a view: np.where returned a fresh contiguous array
    count = min(flat.size, specials.size)
    flat[:count] = specials[:count]
    return values


def _initial_weights(config: LayerConfig, stream: _Stream) -> np.ndarray:
    """Uniform raw weights in +-max(quantize(1/F), MIN_INIT_RAW), plus two extremes.

    The bias of neuron 0 starts at the format's maximum and weight 0 of the last neuron at its
    minimum, so that the forward pass and the update meet the overflow mode from sample 0 on.
    """
    fmt = config.arithmetic.weight
    neurons, fan_in = config.shape.neurons, config.shape.fan_in
    limit = max(int(quantize(1.0 / fan_in, fmt)), MIN_INIT_RAW)
    weights = stream.integers(max(-limit, fmt.min_raw), min(limit, fmt.max_raw), (neurons, fan_in + 1))
    weights[0, fan_in] = fmt.max_raw
    weights[neurons - 1, 0] = fmt.min_raw
    return weights


def _feedback_table(config: LayerConfig, stream: _Stream) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced indices (s distinct per neuron) and non-zero constants over the whole format.

    Connection t of neuron i starts as output (i*s + t) mod M, which uses every output
    floor(N s / M) or ceil(N s / M) times; outputs are then relabelled and neurons shuffled.
    """
    neurons, connections, outputs = config.shape.neurons, config.shape.connections, config.outputs
    base = (np.arange(neurons)[:, None] * connections + np.arange(connections)[None, :]) % outputs
    labels = stream.permutation(outputs)
    rows = stream.permutation(neurons)
    index = labels[base][rows].astype(np.int32)
    fmt = config.arithmetic.feedback
    if fmt.min_raw <= 0 < fmt.max_raw:
        value = stream.integers(fmt.min_raw, fmt.max_raw - 1, (neurons, connections))
        value += value >= 0  # skip 0: a neuron with b = 0 never learns
    else:
        value = stream.integers(max(fmt.min_raw, 1), fmt.max_raw, (neurons, connections))
    return index, value


def _check_generatable(config: LayerConfig, samples: int) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer, not {samples!r}")
    if not config.learning:
        raise ValueError("a layer golden set exercises learning, but the configuration has learning = false")
    if config.is_output_layer and config.outputs != config.shape.neurons:
        raise ValueError(
            f"an output layer (activation identity) has one neuron per output, but outputs = "
            f"{config.outputs} and neurons = {config.shape.neurons}"
        )


def draw_stimulus(config: LayerConfig, samples: int) -> LayerStimulus:
    """The test data of a layer set, deterministic from ``config``'s seed and index.

    Inputs and errors exercise their formats (zeros, extremes, negatives, values near 1.0);
    see docs/golden.md for the exact recipe.
    """
    _check_generatable(config, samples)
    seed, index = config.arithmetic.seed, config.index
    a = config.arithmetic
    weights = _initial_weights(config, _Stream(seed, index, _WEIGHTS))
    inputs = _exercising(_Stream(seed, index, _INPUTS), a.activation, (samples, config.shape.fan_in))
    if config.is_output_layer:
        targets = _Stream(seed, index, _TARGETS).integers(0, config.shape.neurons - 1, (samples,))
        return LayerStimulus(weights, inputs, targets=targets.astype(np.int32))
    feedback_index, feedback_value = _feedback_table(config, _Stream(seed, index, _FEEDBACK))
    errors = _exercising(_Stream(seed, index, _ERRORS), a.error, (samples, config.outputs))
    return LayerStimulus(weights, inputs, feedback_index, feedback_value, errors=errors)


def directed_stimulus(config: LayerConfig, samples: int) -> LayerStimulus:
    """``draw_stimulus``, then its first samples steered onto corner cases (rounding ties,
    saturation, the activation's kinks; see ``golden.directed``), keeping the special values
    that open the inputs and errors."""
    from .directed import direct_stimulus

    stimulus = draw_stimulus(config, samples)
    a = config.arithmetic
    return direct_stimulus(config, stimulus, protected_inputs=len(special_values(a.activation)),
                           protected_errors=len(special_values(a.error)))


# --------------------------------------------------------------------------------------------
# Expected values (the bit-exact path: neuron_ops and the LFSR only)
# --------------------------------------------------------------------------------------------


def simulate_layer(config: LayerConfig, stimulus: LayerStimulus, *, full_weights: bool = False) -> dict:
    """Train the layer on the stimulus, one sample at a time; return every array of its set.

    Per sample (docs/arithmetic.md §9, one layer): forward (§4); the output layer's error
    (§6.0), which is its delta (§6.2), or a hidden layer's delta from the given errors (§6.1);
    then the weight update (§7). With STOCH update rounding each neuron draws, per sample, one
    value for a hidden layer's delta cast, then F + 1 values for its weights (§5.3).

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays of ``format.layer_array_specs``, in its order and dtypes.
    """
    a = config.arithmetic
    activation = config.activation
    neurons, fan_in = config.shape.neurons, config.shape.fan_in
    samples = stimulus.samples
    stochastic = a.update_rounding is Rounding.STOCH
    bank = LfsrBank.for_layer(layer_seed(a.seed, config.index), neurons)
    seeds = bank.states.copy()

    weights = np.asarray(stimulus.weights_initial, dtype=np.int64)
    inputs = np.asarray(stimulus.inputs, dtype=np.int64)
    if config.is_output_layer:
        targets = np.asarray(stimulus.targets, dtype=np.int64)
        errors = np.zeros((samples, config.outputs), dtype=np.int64)  # filled per sample
    else:
        errors = np.asarray(stimulus.errors, dtype=np.int64)
        feedback = dense_feedback(stimulus.feedback_index, stimulus.feedback_value, config.outputs, dtype=np.int64)

    per_sample = {name: np.zeros((samples, neurons), dtype=np.int64)
                  for name in ("pre_activation", "activation", "derivative", "delta")}
    lfsr_state = np.zeros((samples, neurons), dtype=np.uint64)
    checksums = np.zeros((samples, 32), dtype=np.uint8)
    history = np.zeros((samples, *weights.shape), dtype=np.int64) if full_weights else None

    for sample in range(samples):
        x = inputs[sample : sample + 1]
        result = forward(weights, x, a, activation)
        if config.is_output_layer:
            delta = output_error(result.activation, targets[sample : sample + 1], a)
            errors[sample] = delta[0]
            delta_frac = a.error.frac_bits
        else:
            delta_draws = bank.draw(1).T if stochastic else None  # (1, neurons)
            delta = feedback_delta(errors[sample : sample + 1], result.derivative, feedback, a, activation, delta_draws)
            delta_frac = a.delta.frac_bits
        weight_draws = bank.draw(fan_in + 1) if stochastic else None  # address order, bias last
        weights = weight_update(weights, delta, delta_frac, x, a, weight_draws)

        per_sample["pre_activation"][sample] = result.pre_activation[0]
        per_sample["activation"][sample] = result.activation[0]
        per_sample["derivative"][sample] = result.derivative[0]
        per_sample["delta"][sample] = delta[0]
        lfsr_state[sample] = bank.states
        checksums[sample] = np.frombuffer(weight_checksum(weights), dtype=np.uint8)
        if history is not None:
            history[sample] = weights

    produced = {
        "lfsr_seed": seeds,
        "weights_initial": stimulus.weights_initial,
        "feedback_index": stimulus.feedback_index,
        "feedback_value": stimulus.feedback_value,
        "inputs": inputs,
        "targets": None if not config.is_output_layer else stimulus.targets,
        "errors": errors,
        **per_sample,
        "lfsr_state": lfsr_state,
        "weight_checksum": checksums,
        "weights_per_sample": history,
        "weights_final": weights,
    }
    specs = layer_array_specs(config, {"samples": samples, "full_weights": full_weights})
    return {spec.name: np.ascontiguousarray(produced[spec.name], dtype=spec.dtype) for spec in specs}


def generate_layer_set(config: LayerConfig, samples: int, *, full_weights: bool = False) -> GoldenSet:
    """The golden set of ``config`` trained on ``samples`` drawn samples.

    Parameters
    ----------
    config : LayerConfig
        Its seed (``[modes] seed``) seeds both the LFSRs and the test data; see ``with_seed``.
    samples : int
        S >= 1.
    full_weights : bool
        Also store the whole weight array after every sample (``weights_per_sample``), not only
        its checksum; meant for small S.

    Raises
    ------
    ValueError
        For a configuration that cannot make a layer set (inference only; an output layer whose
        outputs differ from its neurons; a negative seed) or a bad sample count.
    """
    stimulus = directed_stimulus(config, samples)
    arrays = simulate_layer(config, stimulus, full_weights=full_weights)
    return GoldenSet(
        kind="layer",
        config=config,
        parameters={"samples": int(samples), "full_weights": bool(full_weights)},
        arrays=arrays,
        generator=dict(GENERATOR),
    )
