"""The host side of SSDFANetwork: what to write through its host port, what to stream, what to
read back, and how to turn the words read into weights, counters and predictions.

Every input is checked here, before anything is simulated: weights of the wrong shape or
outside the weight format, feedback tables with an index beyond the outputs, a zero LFSR seed,
a sample of the wrong length, a feature outside the activation format, a label out of range,
a saved network of another configuration (``state_from_model``). Each raises ``SsdfaError`` naming the value.

The driver knows nothing about simulators: the Amaranth testbench (tests/test_rtl_network.py)
and the cocotb testbench (:mod:`ssdfa.sim.tb_network`) both play its ``HostWrite`` and
``HostRead`` lists. Layer ``l``'s neuron ``n`` lives on PE ``n // K_l`` at slot ``n % K_l``
(docs/rtl-layer.md); addresses are the layer's (docs/network.md §2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.model.arithmetic import LFSR_WIDTH, FixedFormat
from ssdfa.model.layer_config import LayerConfig

__all__ = [
    "SPACE",
    "MODE",
    "HostWrite",
    "HostRead",
    "NetworkState",
    "NetworkDriver",
]

#: Host-port spaces (rtl/network.py ``NetworkSpace``), by name. Plain integers, so that this
#: module and the cocotb testbench need no Amaranth.
SPACE = {"WEIGHT": 0, "FEEDBACK": 1, "LFSR": 2, "DELTA": 3, "DERIVATIVE": 4, "INDEX": 5, "ERROR_COUNT": 6,
         "COUNTER": 7}
#: Run modes (rtl/network.py ``NetworkMode``).
MODE = {"train": 0, "infer": 1}


@dataclass(frozen=True)
class HostWrite:
    """One host-port write: ``data`` is the raw value as an unsigned word of the port's width."""

    layer: int
    pe: int
    space: int
    addr: int
    data: int

    def as_list(self) -> list[int]:
        return [self.layer, self.pe, self.space, self.addr, self.data]


@dataclass(frozen=True)
class HostRead:
    """One host-port read (the word appears one clock after ``r_en``)."""

    layer: int
    pe: int
    space: int
    addr: int

    def as_list(self) -> list[int]:
        return [self.layer, self.pe, self.space, self.addr]


@dataclass
class NetworkState:
    """What the host loads: raw weights, feedback tables and LFSR states, per layer.

    Attributes
    ----------
    weights : list of int64 (neurons, fan_in + 1)
        Bias last (weight format).
    feedback : list of (index, raw) per hidden layer
        int64 (neurons, 1) error indices and raw feedback constants (feedback format).
    lfsr_states : list of uint64 (neurons,)
        Every neuron's LFSR state (the seeds, before training).
    """

    weights: list
    feedback: list
    lfsr_states: list


def _is_integer_array(array: np.ndarray) -> bool:
    if array.dtype.kind in "iu":
        return True
    return array.dtype.kind == "f" and bool(np.all(np.isfinite(array))) and bool(np.all(array == np.round(array)))


class NetworkDriver:
    """Host programs and decoders for one network configuration.

    Parameters
    ----------
    configs : sequence of LayerConfig
        The network's layers, as ``rtl.network.network_layer_configs`` builds them (or an
        ``SSDFANetwork``'s ``configs``).

    Raises
    ------
    SsdfaError
        If the layers do not chain (a fan-in that is not the previous layer's neurons).
    """

    def __init__(self, configs: Sequence[LayerConfig]):
        configs = tuple(configs)
        if len(configs) < 2 or not all(isinstance(c, LayerConfig) for c in configs):
            raise SsdfaError("a network driver needs the LayerConfig of at least two layers")
        for index in range(1, len(configs)):
            if configs[index].shape.fan_in != configs[index - 1].shape.neurons:
                raise SsdfaError(f"layer {index}'s fan-in {configs[index].shape.fan_in} is not layer {index - 1}'s "
                                 f"{configs[index - 1].shape.neurons} neurons")
        self.configs = configs
        a = configs[0].arithmetic
        self.arithmetic = a
        self.layer_sizes = (configs[0].shape.fan_in,) + tuple(c.shape.neurons for c in configs)
        self.outputs = self.layer_sizes[-1]
        self.data_width = max(LFSR_WIDTH, a.weight.word, a.feedback.word, a.error.word, a.delta.word,
                              a.activation.word)
        from ssdfa.rtl.counters import counter_names

        self.counter_names = counter_names(len(configs))

    # -- shapes ----------------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return len(self.configs)

    @property
    def inputs(self) -> int:
        return self.layer_sizes[0]

    def _place(self, layer: int, neuron: int) -> tuple[int, int]:
        slots = self.configs[layer].neurons_per_pe
        return neuron // slots, neuron % slots

    def _word(self, value: int) -> int:
        return int(value) & ((1 << self.data_width) - 1)

    def _signed(self, word: int, fmt: FixedFormat) -> int:
        """A read word (sign-extended to the port's width for signed formats) as a raw value."""
        word = int(word) & ((1 << self.data_width) - 1)
        if fmt.signed and word >> (self.data_width - 1):
            return word - (1 << self.data_width)
        return word

    # -- validation ------------------------------------------------------------------------------

    def check_weights(self, weights, source: str = "weights") -> list:
        """Raw weights per layer, int64 (neurons, fan_in + 1), within the weight format."""
        weights = list(weights)
        if len(weights) != self.num_layers:
            raise SsdfaError(f"{source}: expected raw weights for {self.num_layers} layers, not {len(weights)}")
        checked = []
        fmt = self.arithmetic.weight
        for layer, (w, config) in enumerate(zip(weights, self.configs)):
            w = np.asarray(w)
            expected = (config.shape.neurons, config.shape.fan_in + 1)
            if w.shape != expected:
                raise SsdfaError(f"{source}: layer {layer} weights have shape {w.shape}, expected {expected} "
                                 f"(neurons, fan-in + bias)")
            if not _is_integer_array(w):
                raise SsdfaError(f"{source}: layer {layer} weights must be raw integers")
            w = w.astype(np.int64)
            outside = np.flatnonzero((w < fmt.min_raw) | (w > fmt.max_raw))
            if outside.size:
                neuron, index = divmod(int(outside[0]), expected[1])
                raise SsdfaError(f"{source}: layer {layer} weight [{neuron}, {index}] = {w.flat[outside[0]]} "
                                 f"is outside the weight format {fmt} ({fmt.min_raw}..{fmt.max_raw})")
            checked.append(w)
        return checked

    def check_feedback(self, tables, source: str = "feedback tables") -> list:
        """Per hidden layer: (index, raw) int64 (neurons, 1), indices < M, raw in the feedback format."""
        tables = list(tables)
        hidden = self.num_layers - 1
        if len(tables) != hidden:
            raise SsdfaError(f"{source}: expected the tables of {hidden} hidden layer(s), not {len(tables)}")
        fmt = self.arithmetic.feedback
        checked = []
        for layer, table in enumerate(tables):
            index, raw = (np.asarray(part) for part in table)
            neurons = self.configs[layer].shape.neurons
            connections = self.configs[layer].shape.connections
            for name, part in (("index", index), ("constants", raw)):
                if part.shape != (neurons, connections):
                    raise SsdfaError(f"{source}: layer {layer} {name} have shape {part.shape}, expected "
                                     f"{(neurons, connections)}")
                if not _is_integer_array(part):
                    raise SsdfaError(f"{source}: layer {layer} {name} must be integers")
            index, raw = index.astype(np.int64), raw.astype(np.int64)
            bad = np.flatnonzero((index < 0) | (index >= self.outputs))
            if bad.size:
                raise SsdfaError(f"{source}: layer {layer} neuron {int(bad[0]) // connections} selects output error "
                                 f"{index.flat[bad[0]]}, outside 0..{self.outputs - 1}")
            bad = np.flatnonzero((raw < fmt.min_raw) | (raw > fmt.max_raw))
            if bad.size:
                raise SsdfaError(f"{source}: layer {layer} neuron {int(bad[0]) // connections} has feedback constant "
                                 f"{raw.flat[bad[0]]}, outside the feedback format {fmt}")
            checked.append((index, raw))
        return checked

    def check_lfsr_states(self, states, source: str = "LFSR states") -> list:
        """Per layer: uint64 (neurons,), every state a non-zero 32-bit value."""
        states = list(states)
        if len(states) != self.num_layers:
            raise SsdfaError(f"{source}: expected the states of {self.num_layers} layers, not {len(states)}")
        checked = []
        for layer, (s, config) in enumerate(zip(states, self.configs)):
            s = np.asarray(s)
            if s.shape != (config.shape.neurons,) or not _is_integer_array(s):
                raise SsdfaError(f"{source}: layer {layer} needs {config.shape.neurons} integer states, not shape {s.shape}")
            bad = np.flatnonzero((s <= 0) | (s >= 1 << LFSR_WIDTH)) if s.dtype.kind != "u" else np.flatnonzero(
                (s == 0) | (s >= 1 << LFSR_WIDTH))
            if bad.size:
                raise SsdfaError(f"{source}: layer {layer} neuron {int(bad[0])} has LFSR state {int(s[bad[0]])}; "
                                 f"a state is a non-zero {LFSR_WIDTH}-bit value")
            checked.append(s.astype(np.uint64))
        return checked

    def check_samples(self, x_raw, labels, source: str = "samples") -> tuple[np.ndarray, np.ndarray]:
        """Raw features (samples, inputs) in the activation format and class labels in 0..M-1.

        A single sample may be given as a 1-D array. Returns int64 copies.
        """
        x = np.asarray(x_raw)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise SsdfaError(f"{source}: features must be a (samples, {self.inputs}) array, not shape {x.shape}")
        if x.shape[1] != self.inputs:
            raise SsdfaError(f"{source}: a sample has {x.shape[1]} features, but the network has {self.inputs} inputs")
        if not _is_integer_array(x):
            raise SsdfaError(f"{source}: features must be raw integers of the activation format (quantize them first)")
        x = x.astype(np.int64)
        fmt = self.arithmetic.activation
        bad = np.flatnonzero((x < fmt.min_raw) | (x > fmt.max_raw))
        if bad.size:
            sample, feature = divmod(int(bad[0]), self.inputs)
            raise SsdfaError(f"{source}: sample {sample} feature {feature} = {x.flat[bad[0]]} is outside the "
                             f"activation format {fmt} ({fmt.min_raw}..{fmt.max_raw})")
        y = np.asarray(labels)
        if y.ndim == 0:
            y = y[None]
        if y.shape != (x.shape[0],):
            raise SsdfaError(f"{source}: expected {x.shape[0]} labels (one per sample), not shape {y.shape}")
        if not _is_integer_array(y):
            raise SsdfaError(f"{source}: labels must be integer class indices")
        y = y.astype(np.int64)
        bad = np.flatnonzero((y < 0) | (y >= self.outputs))
        if bad.size:
            raise SsdfaError(f"{source}: sample {int(bad[0])} has label {y[bad[0]]}, outside 0..{self.outputs - 1} "
                             f"({self.outputs} classes)")
        return x, y

    def state_from_model(self, model) -> NetworkState:
        """The weights, feedback tables and LFSR states of a ``FixedNetwork``, checked against this
        configuration (layer sizes, SSDFA, the hidden activation, every format and mode)."""
        from ssdfa.model.network import Algorithm

        spec = model.spec
        if tuple(spec.layer_sizes) != self.layer_sizes:
            raise SsdfaError(f"the model's layer sizes {'-'.join(map(str, spec.layer_sizes))} are not the hardware's "
                             f"{'-'.join(map(str, self.layer_sizes))}")
        if spec.algorithm is not Algorithm.SSDFA:
            raise SsdfaError(f"the hardware learns by SSDFA, not {spec.algorithm.value}")
        if spec.activation is not self.configs[0].activation:
            raise SsdfaError(f"the model's hidden activation is {spec.activation.value}, the hardware's "
                             f"{self.configs[0].activation.value}")
        ours = dataclasses.replace(self.arithmetic, seed=0)
        theirs = dataclasses.replace(model.config, seed=0)
        if ours != theirs:
            diff = [f"{f.name} {getattr(theirs, f.name)} (hardware {getattr(ours, f.name)})"
                    for f in dataclasses.fields(ours) if getattr(ours, f.name) != getattr(theirs, f.name)]
            raise SsdfaError(f"the model's arithmetic differs from the hardware's: {', '.join(diff)}")
        return NetworkState(
            weights=self.check_weights(model.raw_weights(), "model weights"),
            feedback=self.check_feedback(model.feedback_tables(), "model feedback"),
            lfsr_states=self.check_lfsr_states(model.lfsr_states(), "model LFSR states"),
        )

    # -- host programs ---------------------------------------------------------------------------

    def load_writes(self, state: NetworkState) -> list[HostWrite]:
        """Host writes that load ``state``: per layer the weights, then (hidden layers) feedback
        constants and index tables, then the LFSR states. Checked first."""
        weights = self.check_weights(state.weights)
        feedback = self.check_feedback(state.feedback)
        lfsr = self.check_lfsr_states(state.lfsr_states)
        writes = []
        for layer, config in enumerate(self.configs):
            fan_in = config.shape.fan_in
            for neuron in range(config.shape.neurons):
                pe, slot = self._place(layer, neuron)
                for j in range(fan_in + 1):
                    writes.append(HostWrite(layer, pe, SPACE["WEIGHT"], slot * (fan_in + 1) + j,
                                            self._word(weights[layer][neuron, j])))
            if layer < self.num_layers - 1:
                index, raw = feedback[layer]
                s = config.shape.connections
                for neuron in range(config.shape.neurons):
                    pe, slot = self._place(layer, neuron)
                    for t in range(s):
                        writes.append(HostWrite(layer, pe, SPACE["FEEDBACK"], slot * s + t, self._word(raw[neuron, t])))
                        writes.append(HostWrite(layer, pe, SPACE["INDEX"], slot * s + t, int(index[neuron, t])))
            for neuron in range(config.shape.neurons):
                pe, slot = self._place(layer, neuron)
                writes.append(HostWrite(layer, pe, SPACE["LFSR"], slot, int(lfsr[layer][neuron])))
        return writes

    def clear_counters_write(self) -> HostWrite:
        """The write that zeroes every counter (any data to the COUNTER space)."""
        return HostWrite(0, 0, SPACE["COUNTER"], 0, 0)

    def _per_neuron_reads(self, space: str, layers=None) -> list[HostRead]:
        reads = []
        for layer in (range(self.num_layers) if layers is None else layers):
            for neuron in range(self.configs[layer].shape.neurons):
                pe, slot = self._place(layer, neuron)
                reads.append(HostRead(layer, pe, SPACE[space], slot))
        return reads

    def weight_reads(self) -> list[HostRead]:
        """Every weight, layer by layer, neuron-major, bias last."""
        reads = []
        for layer, config in enumerate(self.configs):
            fan_in = config.shape.fan_in
            for neuron in range(config.shape.neurons):
                pe, slot = self._place(layer, neuron)
                reads += [HostRead(layer, pe, SPACE["WEIGHT"], slot * (fan_in + 1) + j) for j in range(fan_in + 1)]
        return reads

    def decode_weights(self, words: Sequence[int]) -> list[np.ndarray]:
        """``weight_reads``' words as raw int64 weights per layer."""
        weights, at = [], 0
        for config in self.configs:
            count = config.shape.neurons * (config.shape.fan_in + 1)
            values = [self._signed(word, self.arithmetic.weight) for word in words[at:at + count]]
            weights.append(np.array(values, dtype=np.int64).reshape(config.shape.neurons, config.shape.fan_in + 1))
            at += count
        return weights

    def counter_reads(self) -> list[HostRead]:
        return [HostRead(0, 0, SPACE["COUNTER"], index) for index in range(len(self.counter_names))]

    def decode_counters(self, words: Sequence[int]) -> dict[str, int]:
        return {name: int(word) & 0xFFFFFFFF for name, word in zip(self.counter_names, words)}

    def lfsr_reads(self) -> list[HostRead]:
        """Every neuron's LFSR state, layer by layer."""
        return self._per_neuron_reads("LFSR")

    def decode_lfsr_states(self, words: Sequence[int]) -> list[np.ndarray]:
        states, at = [], 0
        for config in self.configs:
            n = config.shape.neurons
            states.append(np.array([int(w) & ((1 << LFSR_WIDTH) - 1) for w in words[at:at + n]], dtype=np.uint64))
            at += n
        return states

    def error_count_reads(self) -> list[HostRead]:
        """Every neuron's error-word counter (its router's), layer by layer."""
        return self._per_neuron_reads("ERROR_COUNT")

    def decode_error_counts(self, words: Sequence[int]) -> list[np.ndarray]:
        counts, at = [], 0
        for config in self.configs:
            n = config.shape.neurons
            counts.append(np.array([int(w) for w in words[at:at + n]], dtype=np.int64))
            at += n
        return counts

    def state_reads(self) -> list[HostRead]:
        """Deltas, derivatives and LFSR states of every neuron (for per-sample checks)."""
        return self._per_neuron_reads("DELTA") + self._per_neuron_reads("DERIVATIVE") + self._per_neuron_reads("LFSR")

    def decode_state(self, words: Sequence[int]) -> dict[str, list]:
        """``state_reads``' words: ``deltas`` (delta format, the output layer's in the error
        format), ``derivatives`` and ``lfsr_states`` per layer."""
        total = sum(c.shape.neurons for c in self.configs)
        groups = [words[i * total:(i + 1) * total] for i in range(3)]
        result = {"deltas": [], "derivatives": [], "lfsr_states": []}
        for name, group in zip(result, groups):
            at = 0
            for layer, config in enumerate(self.configs):
                n = config.shape.neurons
                part = group[at:at + n]
                at += n
                if name == "deltas":
                    fmt = self.arithmetic.error if layer == self.num_layers - 1 else self.arithmetic.delta
                    result[name].append(np.array([self._signed(w, fmt) for w in part], dtype=np.int64))
                elif name == "lfsr_states":
                    result[name].append(np.array([int(w) & 0xFFFFFFFF for w in part], dtype=np.uint64))
                else:
                    result[name].append(np.array([int(w) for w in part], dtype=np.int64))
        return result

    # -- streams ---------------------------------------------------------------------------------

    def x_words(self, x_raw) -> list[int]:
        """Raw features as the unsigned words of the ``x`` stream, sample-major."""
        mask = (1 << self.arithmetic.activation.word) - 1
        return [int(v) & mask for v in np.asarray(x_raw, dtype=np.int64).ravel()]

    def class_bits(self) -> int:
        return max(1, (self.outputs - 1).bit_length())

    def decode_prediction(self, word: int) -> tuple[int, bool]:
        """A ``prediction`` payload: (class index, whether it equals the label)."""
        bits = self.class_bits()
        return int(word) & ((1 << bits) - 1), bool((int(word) >> bits) & 1)
