"""Hardware event counters of SSDFANetwork: MACs, memory reads and writes, error words, clocks.

The counters are what the cost model (model/costs.py, docs/costs.md) counts per training
example, read off the hardware: every count is an event seen at a processing element's or a
layer's ports, under the PE's timing contract (docs/rtl.md §1.4): a PE uses each input word it
takes for its K neurons, one multiply-accumulate (FORWARD) or one weight read-modify-write
(UPDATE) each, and adds the bias column (K more) once per phase. docs/network.md §5 maps each
counter to the cost model's categories.

Timing: the layer counters' events are registered before they are counted. An event such as a
PE's ``x`` transfer is decided late in its clock (a layer's output-buffer count, the PEs'
stalls, the ``x`` broadcast's handshake), and summing the PEs' events, scaling by K
and adding the sum to a 32-bit counter in that same clock was the whole learner's critical
path. Registered, the events reach the adders at the start of the next clock, and a layer
counter shows an event of clock t from clock t + 2 on (the network's counters, whose events
come from registers, from t + 1). A count summed over several PEs (error words, f' reads,
activations written) registers that sum once more (on a 10-PE layer the sum's adder tree and
the 32-bit addition were the learner's critical path once the PEs' forks no longer were), and
the MAC counts, which add the summed events times K, register the two sums (input words and
phase starts) and then that product: with timing-weighted placement, the sums, their addition
and the K multiple in one clock were the 64-100-10 learner's critical path at every seed
(docs/implement.md §5.1). These show an event of clock t from t + 4 on; their events (input
words, phase starts, error words, activations written) are at least the PE's pipeline depth
before the network's ``done``.
Every layer event happens at least a clock before the network's ``done``, so a counter read
issued after ``done`` sees every event of the run. ``clear`` also drops the registered events,
so an event in the clock of a clear or the clock before is not counted, as before.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value

from .building_blocks import equals
from .layer import SSDFALayer
from .signatures import Command

__all__ = ["NETWORK_COUNTERS", "LAYER_COUNTERS", "counter_names", "build_counters"]

#: Network-wide counters, in address order (host space COUNTER), with what they count.
NETWORK_COUNTERS = (
    ("cycles", "clocks while a run is active"),
    ("train_samples", "training samples finished (their prediction left the output-error unit)"),
    ("train_correct", "training samples whose prediction (before their update) equals the label"),
    ("infer_samples", "inference samples finished"),
    ("infer_correct", "inference samples predicted correctly"),
)

#: Per-layer counters, in address order after the network's, layer 0 first.
LAYER_COUNTERS = (
    ("forward_macs", "FORWARD multiply-accumulates, bias included: K per input word a PE takes, K per phase"),
    ("update_macs", "UPDATE weight read-modify-writes (one delta*x product, one weight read and write each)"),
    ("error_words", "error words taken by the layer's PEs (hidden: one b*e product and one feedback read each)"),
    ("derivative_reads", "stored f' read for a delta: one per neuron per ERROR (hidden layers)"),
    ("inputs_received", "input words taken on the layer's x port (FORWARD)"),
    ("inputs_replayed", "input words read back from the input buffer for UPDATE"),
    ("activations_written", "(y, a) words the PEs wrote to the output buffer"),
    ("errors_received", "output-error words taken on the layer's e port (its router)"),
    ("forward_cycles", "clocks PE 0 spends in FORWARD"),
    ("error_cycles", "clocks PE 0 spends in ERROR"),
    ("error_wait_cycles", "clocks PE 0 spends in ERROR with no error word offered"),
    ("update_cycles", "clocks PE 0 spends in UPDATE"),
)


def counter_names(num_layers: int) -> tuple[str, ...]:
    """Every counter's name in host address order: the network's, then ``layer{l}.{name}``."""
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, not {num_layers!r}")
    names = [name for name, _ in NETWORK_COUNTERS]
    for layer in range(num_layers):
        names += [f"layer{layer}.{name}" for name, _ in LAYER_COUNTERS]
    return tuple(names)


def _count(m: Module, counter: Signal, increment) -> None:
    m.d.sync += counter.eq(counter + increment)


class _Events:
    """Event bits registered for one clock before they are counted (see the module's docstring)."""

    def __init__(self, m: Module, prefix: str):
        self._m = m
        self._prefix = prefix
        self.registers: list[Signal] = []

    def __call__(self, bits, name: str) -> list:
        """The bits ``bits`` (a list of 1-bit values) as they were one clock earlier."""
        bits = list(bits)
        if not bits:
            return []
        held = Signal(len(bits), name=f"{self._prefix}_{name}")
        self._m.d.sync += held.eq(Cat(*bits))
        self.registers.append(held)
        return [held[i] for i in range(len(bits))]

    def hold(self, value, name: str) -> Signal:
        """``value`` as it was one clock earlier (a register cleared with the events)."""
        value = Value.cast(value)
        held = Signal(value.shape(), name=f"{self._prefix}_{name}")
        self._m.d.sync += held.eq(value)
        self.registers.append(held)
        return held


def _sum(bits) -> object:
    """The sum of ``bits`` (event bits, or the shifted copies of ``_times``): a balanced adder
    tree (log2 of the count deep, not a chain of one adder per term)."""
    terms = list(bits)
    if not terms:
        return C(0, 1)
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(terms) - len(terms) % 2:]
    return terms[0]


def _times(value, constant: int):
    """``value * constant`` for a constant, as shifted copies added up: one adder for the
    counters' K of a few set bits, where ``*`` took a DSP block on an ECP5."""
    terms = [value.shift_left(bit) for bit in range(constant.bit_length()) if constant >> bit & 1]
    return _sum(terms) if terms else C(0, 1)


def _layer_counters(m: Module, index: int, layer: SSDFALayer, width: int, events: _Events) -> list[Signal]:
    cfg = layer.config
    slots = cfg.neurons_per_pe
    connections = cfg.shape.connections
    hidden = not cfg.is_output_layer
    counters = {name: Signal(width, name=f"l{index}_{name}") for name, _ in LAYER_COUNTERS}

    x_forward, x_update, starts_forward, starts_update, error_words, derivative_reads, writes = ([] for _ in range(7))
    for p, pe in enumerate(layer.pes):
        phase = Signal(Command, name=f"l{index}_pe{p}_phase")
        started = pe.cmd.valid & pe.cmd.ready
        with m.If(started):
            m.d.sync += phase.eq(pe.cmd.payload)
        x_take = pe.x.valid & pe.x.ready
        x_forward.append(x_take & equals(phase, Command.FORWARD.value))
        x_update.append(x_take & equals(phase, Command.UPDATE.value))
        starts_forward.append(started & equals(pe.cmd.payload, Command.FORWARD.value))
        starts_update.append(started & equals(pe.cmd.payload, Command.UPDATE.value))
        writes.append(pe.y.valid & pe.y.ready)
        e_take = pe.e.valid & pe.e.ready
        error_words.append(e_take)
        if connections > 1:
            # The word of a neuron's last connection is the one its delta reads f' with.
            connection = Signal(range(connections), name=f"l{index}_pe{p}_connection")
            with m.If(started):
                m.d.sync += connection.eq(0)
            with m.Elif(e_take):
                m.d.sync += connection.eq(Mux(connection == connections - 1, 0, connection + 1))
            derivative_reads.append(e_take & (connection == connections - 1))
        else:
            derivative_reads.append(e_take)
        if p == 0:
            in_phase = {command: pe.busy & equals(phase, command.value) for command in Command}
            cycles = events([in_phase[Command.FORWARD], in_phase[Command.ERROR],
                             in_phase[Command.ERROR] & ~pe.e.valid, in_phase[Command.UPDATE],
                             x_take & equals(phase, Command.UPDATE.value)], "pe0")
            for name, event in zip(("forward_cycles", "error_cycles", "error_wait_cycles", "update_cycles",
                                    "inputs_replayed"), cycles):
                _count(m, counters[name], event)

    x_forward, x_update = events(x_forward, "x_forward"), events(x_update, "x_update")
    starts_forward, starts_update = events(starts_forward, "starts_forward"), events(starts_update, "starts_update")
    # The MAC counts add K per word: the sums over the PEs are registered, and then their K
    # multiple (see the docstring).
    for name, words, starts in (("forward_macs", x_forward, starts_forward), ("update_macs", x_update, starts_update)):
        words_sum, starts_sum = events.hold(_sum(words), f"{name}_words"), events.hold(_sum(starts), f"{name}_starts")
        _count(m, counters[name], events.hold(_times(words_sum + starts_sum, slots), f"{name}_increment"))
    # A sum over the PEs is registered too before it is added (see the docstring).
    def summed(bits, name):
        return events.hold(_sum(events(bits, name)), f"{name}_increment") if len(bits) > 1 else events(bits, name)[0]

    _count(m, counters["error_words"], summed(error_words, "error_words"))
    if hidden:
        _count(m, counters["derivative_reads"], summed(derivative_reads, "derivative_reads"))
    (received, taken_errors) = events([layer.x.valid & layer.x.ready, layer.e.valid & layer.e.ready], "layer")
    _count(m, counters["inputs_received"], received)
    _count(m, counters["activations_written"], summed(writes, "writes"))
    _count(m, counters["errors_received"], taken_errors)
    return [counters[name] for name, _ in LAYER_COUNTERS]


def build_counters(m: Module, *, layers, run_active, prediction_taken, prediction_correct, train, clear,
                   width: int = 32, layer_counters: bool = True) -> list[Signal]:
    """Add every counter's logic to ``m``; return the counters in ``counter_names`` order.

    Parameters
    ----------
    m : Module
        The network's module (the layers are its submodules).
    layers : sequence of SSDFALayer
    run_active : Value
        High while a run is active (counts ``cycles``).
    prediction_taken, prediction_correct, train : Value
        A prediction leaves the output-error unit this clock; it equals the label; the run trains.
    clear : Value
        Zero every counter on this clock (it wins over an increment).
    width : int
        Bits of every counter (they wrap).
    layer_counters : bool
        Build the per-layer counters; without them their addresses read 0 (the network's
        counters alone, for a part as small as the iCE40 UP5K: docs/network.md §5).
    """
    network = {name: Signal(width, name=f"n_{name}") for name, _ in NETWORK_COUNTERS}
    _count(m, network["cycles"], run_active)
    _count(m, network["train_samples"], prediction_taken & train)
    _count(m, network["train_correct"], prediction_taken & prediction_correct & train)
    _count(m, network["infer_samples"], prediction_taken & ~train)
    _count(m, network["infer_correct"], prediction_taken & prediction_correct & ~train)
    counters = [network[name] for name, _ in NETWORK_COUNTERS]
    with m.If(clear):
        m.d.sync += [counter.eq(0) for counter in counters]
    for index, layer in enumerate(layers):
        if layer_counters:
            events = _Events(m, f"l{index}_events")
            built = _layer_counters(m, index, layer, width, events)
            with m.If(clear):
                m.d.sync += [counter.eq(0) for counter in built + events.registers]
        else:
            built = [C(0, width)] * len(LAYER_COUNTERS)
        counters += built
    return counters
