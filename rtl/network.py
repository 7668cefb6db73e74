"""SSDFANetwork: the whole learner in RTL. Layers chained forward, one output-error unit, the
errors broadcast to every layer at once, every layer updating as soon as its deltas are known.

Section numbers (§) refer to docs/arithmetic.md; docs/network.md has the architecture, the
schedule and the host interface at more length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ssdfa.errors import SsdfaError
from ssdfa.model.layer_config import LayerConfig
from ssdfa.model.neuron_ops import Activation, ArithmeticConfig, LayerShape

from .building_blocks import equals, index_width, select
from .counters import build_counters, counter_names
from .layer import LayerCommand, LayerSpace, SSDFALayer
from .output_error import OutputErrorUnit, PredictionLayout, class_shape
from .signatures import HostPortSignature, format_shape

__all__ = [
    "NetworkMode",
    "NetworkSpace",
    "RunLayout",
    "NetworkHostSignature",
    "SSDFANetwork",
    "network_layer_configs",
    "default_pes",
    "schedule_steps",
    "schedule_minimum",
    "useful_macs",
    "utilisation_bound",
    "network_header",
    "initial_state_digest",
    "generate_network",
    "NETWORK_TOP",
]

#: The Verilog module name ``generate_network`` writes.
NETWORK_TOP = "ssdfa_network"


class NetworkMode(enum.Enum, shape=1):
    """What a run does with each sample."""

    TRAIN = 0  #: forward, output error, every layer's delta and update (§9)
    INFER = 1  #: forward only: a prediction, no error words, no update


class RunLayout(data.StructLayout):
    """Payload of the ``run`` stream: a mode and the number of samples to process.

    Parameters
    ----------
    count_width : int
        Bits of ``samples``.
    """

    def __init__(self, count_width: int):
        super().__init__({"mode": NetworkMode, "samples": unsigned(count_width)})


class NetworkSpace(enum.Enum, shape=3):
    """What a network host-port address refers to.

    Values 0-6 are the layer's ``LayerSpace`` (same meaning and addresses) on the layer selected
    by ``layer`` and the PE selected by ``pe``; ``COUNTER`` is the network's counter table:
    read the counter at ``addr`` (``counters.counter_names`` order), write anything to clear
    every counter (the routers' per-neuron error counters included).
    """

    WEIGHT = LayerSpace.WEIGHT.value
    FEEDBACK = LayerSpace.FEEDBACK.value
    LFSR = LayerSpace.LFSR.value
    DELTA = LayerSpace.DELTA.value
    DERIVATIVE = LayerSpace.DERIVATIVE.value
    INDEX = LayerSpace.INDEX.value
    ERROR_COUNT = LayerSpace.ERROR_COUNT.value
    COUNTER = 7


class NetworkHostSignature(HostPortSignature):
    """The network's host port, driven by the host: a layer select plus the layer's host port.

    Members
    -------
    layer : Out(range(layers))
    pe : Out(pe select)
        The PE of the selected layer (neurons ``pe * K .. pe * K + K - 1``).
    space : Out(NetworkSpace)
    addr, w_en, w_data, r_en, r_data
        As in ``HostPortSignature``.

    Parameters
    ----------
    layers, pe_width, addr_width, data_width : int
    """

    def __init__(self, *, layers: int, pe_width: int, addr_width: int, data_width: int):
        super().__init__(NetworkSpace, layers=layers, pe_width=pe_width, addr_width=addr_width,
                         data_width=data_width)

    def _selects(self) -> dict:
        return {"layer": Out(index_width(self.layers)), "pe": Out(self._params["pe_width"])}

    @property
    def layers(self) -> int:
        return self._params["layers"]


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def default_pes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
    """PEs per layer when none are given: the fewest that leave at most 8 neurons per PE.

    ``(64, 32, 10)`` gives ``(4, 2)``: K = 8 and 5 neurons per PE.
    """
    pes = []
    for neurons in layer_sizes[1:]:
        pes.append(next(p for p in range(1, neurons + 1) if neurons % p == 0 and neurons // p <= 8))
    return tuple(pes)


def network_layer_configs(
    layer_sizes: Sequence[int],
    arithmetic: ArithmeticConfig,
    *,
    pes: Sequence[int] | None = None,
    activation: Activation = Activation.RELU,
) -> tuple[LayerConfig, ...]:
    """The ``LayerConfig`` of every layer of an SSDFA network, as the hardware builds them.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(inputs, hidden..., outputs)``, at least one hidden layer.
    arithmetic : ArithmeticConfig
        Formats and modes shared by every layer. Its ``seed`` only chooses the LFSR seeds that
        the host loads, so the configurations carry seed 0: the same hardware for every seed.
    pes : sequence of int, optional
        PEs per layer (each must divide the layer's neurons); ``default_pes`` by default.
    activation : Activation
        The hidden layers' non-linearity (relu, hardtanh or tanh); the output is the identity.

    Raises
    ------
    SsdfaError
        Naming the bad value: too few sizes, a PE count that does not divide its layer, a
        hidden activation that is the identity, a layer whose exact intermediates do not fit.
    """
    sizes = tuple(layer_sizes)
    if len(sizes) < 3 or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
        raise SsdfaError(f"layer sizes must be at least three positive integers (inputs, hidden..., outputs), not {sizes}")
    if not isinstance(arithmetic, ArithmeticConfig):
        raise SsdfaError(f"arithmetic must be an ArithmeticConfig, not {arithmetic!r}")
    activation = activation if isinstance(activation, Activation) else Activation.parse(activation)
    if activation is Activation.IDENTITY:
        raise SsdfaError("hidden layers need a non-linearity (relu, hardtanh or tanh), not identity")
    pes = default_pes(sizes) if pes is None else tuple(pes)
    if len(pes) != len(sizes) - 1:
        raise SsdfaError(f"expected {len(sizes) - 1} PE counts (one per layer with weights), not {len(pes)}: {pes}")
    hardware = dataclasses.replace(arithmetic, seed=0)
    outputs = sizes[-1]
    configs = []
    for layer, (fan_in, neurons) in enumerate(zip(sizes, sizes[1:])):
        last = layer == len(sizes) - 2
        if not isinstance(pes[layer], int) or isinstance(pes[layer], bool) or pes[layer] < 1 or neurons % pes[layer]:
            raise SsdfaError(f"layer {layer}: {pes[layer]!r} PEs do not divide its {neurons} neurons")
        try:
            configs.append(LayerConfig(
                shape=LayerShape(fan_in, neurons, 1),
                pes=pes[layer],
                outputs=outputs,
                activation=Activation.IDENTITY if last else activation,
                index=layer,
                arithmetic=hardware,
            ))
        except (ValueError, TypeError) as exc:
            raise SsdfaError(f"layer {layer} ({fan_in} -> {neurons}): {exc}") from None
    return tuple(configs)


def schedule_steps(layers: Sequence[LayerConfig]) -> tuple[int, ...]:
    """When each layer's activations of the next sample are complete, in clocks after the
    output errors of a training sample are known, counting work only (``schedule_minimum``).

    ``A_0 = 2 W_0`` and ``A_l = max(W_l, A_{l-1}) + W_l``, with ``W_l = K_l (F_l + 1)`` the
    weights per PE of layer l: every layer updates from the errors on (``W_l``), a layer's
    next FORWARD follows its own UPDATE, and its inputs are the activations of the layer
    below, which an input-major PE completes only with its last input.
    """
    steps = []
    for config in layers:
        per_pe = config.neurons_per_pe * (config.shape.fan_in + 1)
        start = max(per_pe, steps[-1]) if steps else per_pe
        steps.append(start + per_pe)
    return tuple(steps)


def schedule_minimum(layers: Sequence[LayerConfig]) -> int:
    """The analytical minimum clocks per training sample of the network's schedule.

    Every layer's work spread evenly over its PEs, one MAC or weight update per PE per clock,
    no pipeline latency. From the clock the output errors of sample t are known, every layer
    updates at once (``W_l = K_l (F_l + 1)`` clocks), then runs sample t+1's forward pass; the
    model's order (batch 1, §9) lets no layer read a weight of sample t+1 before its update by
    sample t, so a layer's FORWARD waits for its own UPDATE. The PEs are input-major: a
    layer's activations are complete only with its last input, and the next layer consumes
    them as they leave, ``W_l`` clocks after it has both its inputs and its updated weights.
    The errors of sample t+1 are known when the output layer's forward pass ends:
    ``schedule_steps(layers)[-1]``, which is ``2 W_0 + W_1`` for one hidden layer unless the
    output layer's update is the longer (``W_1 > 2 W_0``: ``2 W_1``).
    """
    return schedule_steps(layers)[-1]


def useful_macs(layers: Sequence[LayerConfig]) -> int:
    """Useful MACs of one training sample: forward MACs and weight updates, biases included,
    ``2 sum_l N_l (F_l + 1)`` (the delta products of the ERROR phase are not counted)."""
    return 2 * sum(c.shape.neurons * (c.shape.fan_in + 1) for c in layers)


def utilisation_bound(layers: Sequence[LayerConfig]) -> float:
    """The highest MAC utilisation the schedule allows: useful MACs per sample over every PE's
    clocks at the schedule's minimum, ``useful_macs / (sum_l P_l x schedule_minimum)``."""
    return useful_macs(layers) / (sum(c.pes for c in layers) * schedule_minimum(layers))


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


class SSDFANetwork(wiring.Component):
    """An SSDFA network: layers (``SSDFALayer``) chained, an output-error unit, a host port.

    Data path (§9): the samples' features enter on ``x`` and go through layer 0; each layer's
    activations stream into the next layer's ``x``; the output layer's activations go to the
    ``OutputErrorUnit``, which computes ``e = cast(a_L - onehot(label))`` (§6.0) and the
    prediction. The M error words are broadcast to every layer's router in the same clocks (a
    lockstep fork): each hidden neuron receives its one word ``e_j`` (SSDFA, §6.1), each output
    neuron its own error (§6.2). No error travels from layer to layer.

    Schedule: every layer runs on its own, one layer command per sample. In training it is
    SAMPLE: FORWARD (the layer's input stream paces it), ERROR, which delivers the errors once
    the router has them, and UPDATE as soon as the layer's deltas are written. The errors reach
    every router in the same clocks, so every layer updates at once, each from its own stored
    inputs and deltas; no layer waits for another's backward pass or update. A layer's next
    FORWARD follows its own UPDATE, so no weight is read for sample t+1 before sample t has
    updated it (the model's batch-1 order, §9). An inference run issues FORWARD only, so the
    layers pipeline across samples. ``schedule_minimum`` gives the clocks per training sample
    that this schedule needs at the least.

    Parameters
    ----------
    layers : sequence of LayerConfig
        Every layer with weights, input side first (``network_layer_configs`` builds them):
        learning layers with the same arithmetic, the fan-in of each the neurons of the one
        before, the last one the output layer (identity) with ``outputs == neurons``, every
        hidden layer receiving one error per neuron (SSDFA) of the same ``outputs``.
    counter_width : int
        Bits of the counters and of a run's sample count.
    initial_state : optional
        A state with ``weights`` (raw (neurons, fan_in + 1) per layer) and ``feedback``
        (``(index, raw)`` per hidden layer), e.g. ``sim.network_driver.NetworkState``: the
        weight memories and the routers' index tables hold it from configuration on, so the
        design infers with trained weights without a host load. Feedback constants and LFSR
        states are still loaded by the host before training.
    layer_counters : bool
        Build the per-layer counters and every neuron's error-word counter (the cost model's
        events, docs/network.md §5); without them those addresses read 0 and the network's own
        counters (cycles, samples, correct predictions) remain: the board cores' choice, which
        saves about a fifth of an iCE40 UP5K.

    Attributes
    ----------
    run : In(stream.Signature(RunLayout(counter_width)))
        Start a run: ``mode`` (TRAIN or INFER) on ``samples`` samples; ``ready`` when idle.
    busy : Out(1)
        A run is active.
    done : Out(1)
        One clock: the run has finished (every layer idle, every prediction taken).
    predictions_taken : Out(counter_width)
        Predictions taken since the run started (held after it finishes; 0 after reset).
    prediction_last : Out(1)
        The prediction on ``prediction`` is the run's last (a wrapper's TLAST).
    host : In(NetworkHostSignature)
        Load and read back each layer's weights, feedback constants, LFSR seeds, index
        tables, deltas, derivatives and per-neuron error counters; read and clear the counters.
        Use it only between runs.
    x : In(stream.Signature(activation word))
        The samples' raw features, sample after sample, ``x_0`` first (activation format).
    label : In(stream.Signature(class index))
        One class per sample, taken with the sample's last output activation.
    prediction : Out(stream.Signature(PredictionLayout(M)))
        One per sample: the argmax of the output activations (first on ties) and whether it is
        the label. The run finishes only when every prediction has been taken.
    layers : tuple of SSDFALayer
    output_error : OutputErrorUnit

    Raises
    ------
    SsdfaError
        A configuration the network cannot be built from, naming the layer and the value.
    """

    def __init__(self, *, layers: Sequence[LayerConfig], counter_width: int = 32, initial_state=None,
                 layer_counters: bool = True):
        self._MustUse__silence = True  # a refused instance is not an unused design
        configs = tuple(layers)
        self._check(configs)
        if not isinstance(counter_width, int) or isinstance(counter_width, bool) or not 8 <= counter_width <= 32:
            raise SsdfaError(f"counter_width must be an integer from 8 to 32, not {counter_width!r}")
        self._configs = configs
        self._counter_width = counter_width
        self._layer_counters = bool(layer_counters)
        weights = [None] * len(configs) if initial_state is None else list(initial_state.weights)
        tables = [None] * len(configs) if initial_state is None else [index for index, _ in initial_state.feedback]
        tables += [None] * (len(configs) - len(tables))  # the output layer's table is the identity
        if len(weights) != len(configs) or len(tables) != len(configs):
            raise SsdfaError(f"initial_state needs the weights of {len(configs)} layers and the feedback of "
                             f"{len(configs) - 1}, not {len(weights)} and {len(initial_state.feedback)}")
        try:
            self._layers = tuple(
                SSDFALayer(config=config, neuron_counters=self._layer_counters, counter_width=counter_width, weights=w,
                           index_table=table)
                for config, w, table in zip(configs, weights, tables)
            )
        except ValueError as exc:
            raise SsdfaError(f"initial_state: {exc}") from None
        arithmetic = configs[0].arithmetic
        self._output_error = OutputErrorUnit(outputs=configs[-1].shape.neurons, arithmetic=arithmetic)
        self._counter_names = counter_names(len(configs))
        hosts = [layer.host.signature for layer in self._layers]
        addr_width = max([h.addr_width for h in hosts] + [index_width(len(self._counter_names))])
        super().__init__({
            "run": In(stream.Signature(RunLayout(counter_width))),
            "busy": Out(1),
            "done": Out(1),
            "predictions_taken": Out(counter_width),
            "prediction_last": Out(1),
            "host": In(NetworkHostSignature(
                layers=len(configs),
                pe_width=max(len(layer.host.pe) for layer in self._layers),
                addr_width=addr_width,
                data_width=max(h.data_width for h in hosts),
            )),
            "x": In(stream.Signature(format_shape(arithmetic.activation))),
            "label": In(stream.Signature(class_shape(configs[-1].shape.neurons))),
            "prediction": Out(stream.Signature(PredictionLayout(configs[-1].shape.neurons))),
        })
        self._MustUse__silence = False

    @staticmethod
    def _check(configs) -> None:
        if len(configs) < 2:
            raise SsdfaError(f"a network needs at least one hidden layer and the output layer, not {len(configs)} layer(s)")
        for index, config in enumerate(configs):
            if not isinstance(config, LayerConfig):
                raise SsdfaError(f"layer {index} must be a LayerConfig, not {config!r}")
            if not config.learning:
                raise SsdfaError(f"layer {index} is inference-only (learning = false); the network trains every layer")
        first = dataclasses.replace(configs[0].arithmetic, seed=0)
        outputs = configs[-1].shape.neurons
        for index, config in enumerate(configs):
            last = index == len(configs) - 1
            if dataclasses.replace(config.arithmetic, seed=0) != first:
                raise SsdfaError(f"layer {index} has other formats or modes than layer 0; every layer shares one arithmetic")
            if last != config.is_output_layer:
                kind = "the output layer (identity activation)" if last else "a hidden layer (not identity)"
                raise SsdfaError(f"layer {index} must be {kind}, not activation {config.activation.value!r}")
            if config.outputs != outputs:
                raise SsdfaError(f"layer {index} expects {config.outputs} output errors, but the output layer has {outputs} neurons")
            if not last and config.shape.connections != 1:
                raise SsdfaError(f"layer {index}: SSDFA delivers one error per neuron, not connections={config.shape.connections}")
            if index and config.shape.fan_in != configs[index - 1].shape.neurons:
                raise SsdfaError(
                    f"layer {index} has fan-in {config.shape.fan_in}, but layer {index - 1} has "
                    f"{configs[index - 1].shape.neurons} neurons"
                )

    # -- read-only parameters -----------------------------------------------------------------

    @property
    def configs(self) -> tuple[LayerConfig, ...]:
        return self._configs

    @property
    def layers(self) -> tuple[SSDFALayer, ...]:
        return self._layers

    @property
    def output_error(self) -> OutputErrorUnit:
        return self._output_error

    @property
    def counter_names(self) -> tuple[str, ...]:
        """The counters in host address order (space COUNTER)."""
        return self._counter_names

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self._configs[0].shape.fan_in,) + tuple(c.shape.neurons for c in self._configs)

    @property
    def pes(self) -> tuple[int, ...]:
        return tuple(c.pes for c in self._configs)

    @property
    def arithmetic(self) -> ArithmeticConfig:
        return self._configs[0].arithmetic

    @property
    def schedule_minimum(self) -> int:
        """See ``schedule_minimum``."""
        return schedule_minimum(self._configs)

    # -- elaboration ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        layers = self._layers
        unit = self._output_error
        count = len(layers)
        for index, layer in enumerate(layers):
            m.submodules[f"layer{index}"] = layer
        m.submodules.output_error = unit

        # -- data path: x -> layer 0 -> ... -> output layer -> output-error unit --------------
        first, last = layers[0], layers[-1]
        m.d.comb += [
            first.x.payload.eq(self.x.payload),
            first.x.valid.eq(self.x.valid),
            self.x.ready.eq(first.x.ready),
        ]
        for before, after in zip(layers, layers[1:]):
            m.d.comb += [
                after.x.payload.eq(before.y.payload.a),
                after.x.valid.eq(before.y.valid),
                before.y.ready.eq(after.x.ready),
            ]
        m.d.comb += [
            unit.a.payload.eq(last.y.payload.a),
            unit.a.valid.eq(last.y.valid),
            last.y.ready.eq(unit.a.ready),
        ]
        wiring.connect(m, wiring.flipped(self.label), unit.label)
        wiring.connect(m, unit.prediction, wiring.flipped(self.prediction))

        # -- the errors, broadcast to every layer in the same clocks (a lockstep fork) ---------
        taken = Signal(count)
        accepted = Signal(count)
        for index, layer in enumerate(layers):
            m.d.comb += [
                layer.e.payload.eq(unit.e.payload),
                layer.e.valid.eq(unit.e.valid & ~taken[index]),
                accepted[index].eq(layer.e.valid & layer.e.ready),
            ]
        everyone = (taken | accepted).all()
        m.d.comb += unit.e.ready.eq(everyone)
        m.d.sync += taken.eq(Mux(everyone, 0, taken | accepted))

        # -- run control -----------------------------------------------------------------------
        run_active = Signal()
        mode = Signal(NetworkMode)
        # The run's samples are kept as the index of its last, `samples - 1`, and every count
        # that stops at `samples` has a flag saying it has: each comparison is of a count with
        # this register, on a flag's or `prediction_last`'s path, never a carry chain
        # (`predictions + 1 == samples` was the UP5K learner's critical path).
        last_index = Signal(self._counter_width)
        predictions = Signal(self._counter_width)
        all_taken = Signal()  # every prediction of the run taken
        train = Signal()
        m.d.comb += [
            train.eq(equals(mode.as_value(), NetworkMode.TRAIN.value)),
            unit.train.eq(train),
            self.run.ready.eq(~run_active),
            self.busy.eq(run_active),
        ]
        issued = [Signal(self._counter_width, name=f"issued{index}") for index in range(count)]
        all_issued = [Signal(name=f"all_issued{index}") for index in range(count)]
        starting = self.run.valid & self.run.ready
        no_samples = ~self.run.payload.samples.any()
        with m.If(starting):
            m.d.sync += [
                run_active.eq(1),
                mode.eq(self.run.payload.mode),
                last_index.eq(self.run.payload.samples - 1),
                predictions.eq(0),
                all_taken.eq(no_samples),
            ]
            m.d.sync += [i.eq(0) for i in issued] + [a.eq(no_samples) for a in all_issued]
        # One command per layer and sample, each layer on its own: SAMPLE in training (FORWARD,
        # ERROR, which waits for the broadcast errors, then UPDATE at once), FORWARD in
        # inference. The errors reach every router in the same clocks, so every layer updates
        # as soon as its own deltas are written, without waiting for another layer.
        quiet = []
        for layer, sent, sent_all in zip(layers, issued, all_issued):
            cmd = layer.cmd
            m.d.comb += cmd.valid.eq(run_active & ~sent_all)
            with m.If(train):
                m.d.comb += cmd.payload.eq(LayerCommand.SAMPLE)
            with m.Else():
                m.d.comb += cmd.payload.eq(LayerCommand.FORWARD)
            with m.If(cmd.valid & cmd.ready):
                m.d.sync += sent.eq(sent + 1)
                with m.If(sent == last_index):
                    m.d.sync += sent_all.eq(1)
            quiet.append(sent_all & ~layer.busy)

        prediction_taken = self.prediction.valid & self.prediction.ready
        with m.If(prediction_taken):
            m.d.sync += predictions.eq(predictions + 1)
            with m.If(predictions == last_index):
                m.d.sync += all_taken.eq(1)
        m.d.comb += [self.predictions_taken.eq(predictions), self.prediction_last.eq(predictions == last_index)]
        finish = Signal()
        m.d.comb += [finish.eq(run_active & Cat(*quiet).all() & all_taken), self.done.eq(finish)]
        with m.If(finish):
            m.d.sync += run_active.eq(0)

        # -- host port and counters ------------------------------------------------------------
        host = self.host
        space = host.space.as_value()
        counter_space = space == NetworkSpace.COUNTER.value
        clear = host.w_en & counter_space
        for index, layer in enumerate(layers):
            selected = equals(host.layer, index) & ~counter_space
            m.d.comb += [
                layer.host.pe.eq(host.pe[:len(layer.host.pe)]),
                layer.host.space.eq(space),
                layer.host.addr.eq(host.addr[:len(layer.host.addr)]),
                layer.host.w_data.eq(host.w_data[:len(layer.host.w_data)]),
                layer.host.w_en.eq(host.w_en & selected),
                layer.host.r_en.eq(host.r_en & selected),
                layer.clear_counters.eq(clear),
            ]
        counters = build_counters(
            m, layers=layers, run_active=run_active, prediction_taken=prediction_taken,
            prediction_correct=self.prediction.payload.correct, train=train, clear=clear,
            width=self._counter_width, layer_counters=self._layer_counters,
        )
        read_layer = Signal.like(host.layer)
        read_counter = Signal()
        counter_hold = Signal(self._counter_width)
        counter_addr = host.addr[:index_width(len(counters))]
        with m.If(host.r_en):
            m.d.sync += [
                read_layer.eq(host.layer),
                read_counter.eq(counter_space),
                counter_hold.eq(select(counters, counter_addr)),
            ]
        layer_data = select([layer.host.r_data for layer in layers], read_layer)
        m.d.comb += host.r_data.eq(Mux(read_counter, counter_hold, layer_data))
        return m


# --------------------------------------------------------------------------------------------
# Verilog
# --------------------------------------------------------------------------------------------


def initial_state_digest(state) -> str:
    """SHA-256 of what ``initial_state`` puts into the design: every layer's raw weights, then
    every hidden layer's index table, as little-endian int64 ('' without a state)."""
    if state is None:
        return ""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for array in list(state.weights) + [index for index, _ in state.feedback]:
        digest.update(np.ascontiguousarray(array, dtype="<i8").tobytes() + b"|")
    return digest.hexdigest()


def network_header(configs: Sequence[LayerConfig], top: str = NETWORK_TOP, initial_state=None) -> str:
    """The comment that opens a generated network file: the layers, PEs, formats and modes, and
    whether the memories start with trained weights."""
    a = configs[0].arithmetic
    sizes = [configs[0].shape.fan_in] + [c.shape.neurons for c in configs]
    lines = [
        f"// {top}: an SSDFA network generated by ssdfa (docs/network.md).",
        f"// layer sizes {'-'.join(map(str, sizes))}, PEs per layer {','.join(str(c.pes) for c in configs)}, "
        f"hidden activation {configs[0].activation.value}",
        f"// formats: activation {a.activation}, weight {a.weight}, feedback {a.feedback}, error {a.error}, "
        f"delta {a.delta}",
        f"// modes: rounding {a.rounding.name}, update_rounding {a.update_rounding.name}, overflow "
        f"{a.overflow.name}, shift {a.shift}",
    ]
    if initial_state is not None:
        lines += [
            "// weight memories and index tables start trained (state SHA-256 "
            f"{initial_state_digest(initial_state)});",
            "// the host loads feedback constants and LFSR states before training on.",
        ]
    return "\n".join(lines) + "\n"


def generate_network(configs: Sequence[LayerConfig], out_dir, *, top: str = NETWORK_TOP, initial_state=None,
                     layer_counters: bool = True, header_notes: Sequence[str] = ()) -> Path:
    """Write the network's Verilog to ``out_dir/<top>.v`` and return the path.

    The file opens with ``network_header``, then Amaranth's output without source locations:
    the same configuration gives the same bytes on any machine and checkout path. Without
    ``initial_state``, LFSR seeds, feedback constants, index tables and weights are loaded by
    the host, so the file does not depend on the seed; with it, the memories start with its
    weights and index tables (``SSDFANetwork``). ``layer_counters`` as for ``SSDFANetwork``.
    ``header_notes``: more lines for the opening comment (how the inputs were scaled, say).
    """
    from .verilog import write_module

    network = SSDFANetwork(layers=configs, initial_state=initial_state, layer_counters=layer_counters)
    header = network_header(network.configs, top, initial_state)
    if not layer_counters:
        header += "// counters: the network's own only; per-layer and per-neuron counters read 0\n"
    header += "".join(f"// {note}\n" for note in header_notes)
    return write_module(out_dir, top, header, network)
