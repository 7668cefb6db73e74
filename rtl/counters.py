"""Hardware event counters of SSDFANetwork: MACs, memory reads and writes, error words, clocks.

The counters are what the cost model (model/costs.py, docs/costs.md) counts per training
example, read off the hardware: every count is an event seen at a processing element's or a
layer's ports, under the PE's timing contract (docs/rtl.md §1.4): a PE uses each input word it
takes for its K neurons, one multiply-accumulate (FORWARD) or one weight read-modify-write
(UPDATE) each, and adds the bias column (K more) once per phase. docs/network.md §5 maps each
counter to the cost model's categories.
"""

from __future__ import annotations

from amaranth.hdl import C, Module, Mux, Signal

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


def _sum(bits) -> object:
    """The number of high bits among ``bits`` (a small adder tree)."""
    bits = list(bits)
    if not bits:
        return C(0, 1)
    total = bits[0]
    for bit in bits[1:]:
        total = total + bit
    return total


def _layer_counters(m: Module, index: int, layer: SSDFALayer, width: int) -> list[Signal]:
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
            _count(m, counters["forward_cycles"], in_phase[Command.FORWARD])
            _count(m, counters["error_cycles"], in_phase[Command.ERROR])
            _count(m, counters["error_wait_cycles"], in_phase[Command.ERROR] & ~pe.e.valid)
            _count(m, counters["update_cycles"], in_phase[Command.UPDATE])
            _count(m, counters["inputs_replayed"], x_take & equals(phase, Command.UPDATE.value))

    _count(m, counters["forward_macs"], (_sum(x_forward) + _sum(starts_forward)) * slots)
    _count(m, counters["update_macs"], (_sum(x_update) + _sum(starts_update)) * slots)
    _count(m, counters["error_words"], _sum(error_words))
    if hidden:
        _count(m, counters["derivative_reads"], _sum(derivative_reads))
    _count(m, counters["inputs_received"], layer.x.valid & layer.x.ready)
    _count(m, counters["activations_written"], _sum(writes))
    _count(m, counters["errors_received"], layer.e.valid & layer.e.ready)
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
            built = _layer_counters(m, index, layer, width)
            with m.If(clear):
                m.d.sync += [counter.eq(0) for counter in built]
        else:
            built = [C(0, width)] * len(LAYER_COUNTERS)
        counters += built
    return counters
