"""SSDFALayer: P NeuronPEs, the error router and the activation buffers of one layer.

Section numbers (§) refer to docs/arithmetic.md; docs/rtl-layer.md has the architecture.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ssdfa.model.layer_config import LayerConfig
from ssdfa.model.neuron_ops import Activation

from .error_router import ErrorRouter
from .building_blocks import equals, index_width, register, select, wire
from .neuron_pe import FORWARD_LATENCY, UPDATE_LATENCY, NeuronPE, phase_cycles
from .shared_modules import pe_submodule
from .signatures import ActivationLayout, Command, HostPortSignature, Space, format_shape

__all__ = ["SSDFALayer", "LayerCommand", "LayerSpace", "LayerHostSignature", "LayerCycles", "layer_cycles"]


class LayerCommand(enum.Enum, shape=2):
    """What a layer runs when it accepts a command."""

    FORWARD = 0  #: stream x in (kept in the input buffer), activations out (§4)
    ERROR = 1  #: the router delivers each neuron its errors; the PEs compute deltas (§6)
    UPDATE = 2  #: x replayed from the input buffer; every weight updated (§7)
    SAMPLE = 3  #: one training sample: FORWARD, ERROR (waits for the M errors), UPDATE (§9)


class LayerSpace(enum.Enum, shape=3):
    """What a layer host-port address refers to, on the PE selected by ``pe``.

    Values 0-4 are the PE's own ``Space`` (same meaning and addresses); the router adds:

    =========== ============== ====================================================
    space       address        data
    =========== ============== ====================================================
    INDEX       ``k * s + t``  write only: the output error index of connection t of
                               slot k (the router's index table)
    ERROR_COUNT ``k``          read only: error words delivered to slot k (with
                               ``neuron_counters``; 0 otherwise)
    =========== ============== ====================================================
    """

    WEIGHT = Space.WEIGHT.value
    FEEDBACK = Space.FEEDBACK.value
    LFSR = Space.LFSR.value
    DELTA = Space.DELTA.value
    DERIVATIVE = Space.DERIVATIVE.value
    INDEX = 5
    ERROR_COUNT = 6


class LayerHostSignature(HostPortSignature):
    """The layer's host port, driven by the host: the PE's ``HostSignature`` plus a PE select.

    Members
    -------
    pe : Out(range(pes))
        The PE (neurons ``pe * K .. pe * K + K - 1``) that ``space``/``addr`` refer to.
    space : Out(LayerSpace)
    addr, w_en, w_data, r_en, r_data
        As in ``HostPortSignature``.

    Parameters
    ----------
    pes : int
    addr_width, data_width : int
    """

    def __init__(self, *, pes: int, addr_width: int, data_width: int):
        super().__init__(LayerSpace, pes=pes, addr_width=addr_width, data_width=data_width)

    def _selects(self) -> dict:
        return {"pe": Out(index_width(self.pes))}

    @property
    def pes(self) -> int:
        return self._params["pes"]


class LayerCycles(NamedTuple):
    """Clock cycles of a layer command, from its transfer on ``cmd`` to the ``done`` strobe,
    with every stream ready when the layer wants it (x and the M errors supplied on time, the
    activations taken). ``done`` and the next command's transfer share a clock, so these are
    also the periods of back-to-back commands."""

    forward: int  #: K (N + 1) + 10
    error: int  #: K s + 9
    update: int  #: K (N + 1) + 11
    sample: int  #: 2 K (N + 1) + K s + 28

    @property
    def useful_macs_per_pe(self) -> int:
        """One SAMPLE's forward MACs (bias included) plus weight updates on one PE: 2 K (N + 1)."""
        return self.forward + self.update - (FORWARD_LATENCY + UPDATE_LATENCY + 2)


def layer_cycles(*, fan_in: int, neurons_per_pe: int, connections: int = 1) -> LayerCycles:
    """The layer's command lengths: the PE phases (``neuron_pe.phase_cycles``) plus one clock
    per command from the layer's transfer to the PEs' (the phases of a SAMPLE follow each other
    with no gap)."""
    pe = phase_cycles(fan_in=fan_in, neurons_per_pe=neurons_per_pe, connections=connections)
    return LayerCycles(
        forward=pe.forward + 1,
        error=pe.error + 1,
        update=pe.update + 1,
        sample=pe.per_sample + 1,
    )


def _lockstep_fork(m: Module, name: str, valid, readies):
    """Offer one stream word to several consumers; the word is gone once each has taken it.

    Returns the per-consumer ``valid`` signals and ``done``, high on the clock at which the last
    consumer takes the word. A consumer that takes it early sees ``valid`` low until ``done``;
    consumers in lockstep (identical PEs given the same commands) all take it at once, so the
    fork costs no clock.
    """
    taken, taken_next = register(m, len(readies), f"{name}_taken")
    accepted = Signal(len(readies), name=f"{name}_accepted")
    done = Signal(name=f"{name}_done")
    valids = []
    for i, ready in enumerate(readies):
        v = Signal(name=f"{name}_valid_{i}")
        m.d.comb += [v.eq(valid & ~taken[i]), accepted[i].eq(v & ready)]
        valids.append(v)
    m.d.comb += done.eq((taken | accepted).all())
    m.d.comb += taken_next.eq(Mux(done, 0, taken | accepted))
    return valids, done


class SSDFALayer(wiring.Component):
    """One SSDFA/SDFA layer: ``N`` neurons of fan-in ``F`` on ``P`` NeuronPEs (§4-§7, §9).

    Neuron ``n`` lives on PE ``n // K``, slot ``n % K`` (``K = N / P``). The PEs run in lockstep:
    they share the broadcast of ``x`` and receive the same commands in the same clock. Around
    them:

    - an **input buffer** (a ``Memory`` of F words): FORWARD writes each ``x_j`` as the PEs
      take it from the ``x`` port; UPDATE replays it from the buffer, so ``x`` crosses the
      layer's boundary once per sample;
    - an **output buffer** (one ``Memory`` of K ``(y, a)`` words per PE): the PEs finish their
      K neurons together, and the buffer turns P parallel results into the ``y`` stream in
      neuron order. A PE stalls only if its bank still holds the previous sample's unread words;
    - the **error router** (``ErrorRouter``): takes the M output errors on ``e`` and delivers
      each neuron its s words during ERROR (§6.1), counting them (Table 1's data movement).

    Commands and timing
    -------------------
    ``cmd`` takes a ``LayerCommand`` when the layer is idle, or on the clock of the previous
    command's ``done``. The layer passes the phases on to its PEs one clock later, and for a
    SAMPLE offers the next phase while the current one runs, so the phases follow each other
    without a gap. The errors can arrive any time after the router has delivered the previous
    sample's (a SAMPLE's ERROR phase waits for them)::

        cmd       SAMPLE                                                        SAMPLE
        PE cmd         FORWARD                 ERROR           UPDATE                FORWARD
        x              x0 .. xF-1 (each held K clocks)         (replayed from the buffer)
        y                             a0 .. aN-1 (neuron order, while ERROR/UPDATE run)
        e         e0 .. eM-1 (any time before ERROR needs them)
        done                                                                    ^
        clock     0    1               1+Fw          1+Fw+E         1+Fw+E+U

    with ``Fw = K(F+1) + 9``, ``E = Ks + 8``, ``U = K(F+1) + 10`` (the PE's phase lengths), so one
    sample takes ``2K(F+1) + Ks + 28`` clocks (``layer_cycles``). Python can therefore run whole
    samples by holding ``cmd`` at SAMPLE and feeding ``x`` and ``e`` from memories.

    Parameters
    ----------
    config : LayerConfig
        Shape (fan-in F, neurons N, PEs P, connections s), outputs M, activation, formats and
        modes. An output layer (identity activation) needs ``outputs == neurons``; its router
        gives neuron n the error n.
    index_table : array-like, shape (N, s), optional
        The router's connectivity at reset (see ``ErrorRouter``); the host can rewrite it
        (``LayerSpace.INDEX``).
    lfsr_seed : int, optional
        Regenerate the connectivity on chip instead (SSDFA only; see ``ErrorRouter``).
    weights : array-like, shape (N, F + 1), optional
        Raw weights (bias last) that the PEs' weight memories hold from configuration on
        (``NeuronPE``'s ``weight_init``); the host can rewrite them.
    neuron_counters : bool
        Count the error words of every neuron (``LayerSpace.ERROR_COUNT``).
    counter_width : int
        Bits of the counters.

    Attributes
    ----------
    cmd : In(stream.Signature(LayerCommand))
    busy : Out(1)
        High from the clock after a command transfer until its ``done``.
    done : Out(1)
        One clock: the command has finished (every PE idle).
    completed : Out(counter_width)
        Commands finished since reset.
    host : In(LayerHostSignature)
        Load and read back weights, feedback constants, LFSR seeds, deltas, derivatives (PE
        spaces), the index table and the error counters; use only while idle.
    x : In(stream.Signature(activation word))
        The F inputs of FORWARD, ``x_0`` first.
    y : Out(stream.Signature(ActivationLayout))
        The N results ``(y, a)`` of FORWARD, neuron 0 first.
    e : In(stream.Signature(error word))  (learning only)
        The M output errors, ``e_0`` first.
    clear_counters : In(1)
    errors_received : Out(counter_width)  (learning only)
        Error words taken on ``e``.
    errors_delivered : Out(counter_width).array(P)  (learning only)
        Error words delivered to each PE.

    Raises
    ------
    TypeError
        If ``config`` is not a ``LayerConfig``.
    ValueError
        If an output layer has ``outputs != neurons``, or for the router's reasons (a bad
        ``index_table`` or ``lfsr_seed``), naming the value.
    """

    def __init__(self, *, config: LayerConfig, index_table=None, lfsr_seed: int | None = None,
                 neuron_counters: bool = False, counter_width: int = 32, weights=None):
        self._MustUse__silence = True  # a refused instance is not an unused design
        if not isinstance(config, LayerConfig):
            raise TypeError(f"config must be a LayerConfig, not {config!r}")
        n = config.shape.neurons
        if config.activation is Activation.IDENTITY:
            if config.outputs != n:
                raise ValueError(
                    f"an output layer (identity activation) receives error n at neuron n: "
                    f"outputs ({config.outputs}) must equal neurons ({n})"
                )
            if config.shape.connections != 1:
                raise ValueError(
                    f"an output layer (identity activation) receives exactly one error per neuron, "
                    f"not connections={config.shape.connections}"
                )
            if index_table is None and lfsr_seed is None:
                index_table = [[i] for i in range(n)]
        self._config = config
        # The router first: it checks index_table and lfsr_seed, and the PEs cannot fail after.
        self._router = None
        if config.learning:
            self._router = ErrorRouter(
                outputs=config.outputs, neurons=n, pes=config.pes,
                connections=config.shape.connections, error_format=config.arithmetic.error,
                index_table=index_table, lfsr_seed=lfsr_seed,
                neuron_counters=neuron_counters, counter_width=counter_width, lockstep=True,
            )
        if weights is not None:
            weights = np.asarray(weights)
            if weights.shape != (n, config.shape.fan_in + 1):
                raise ValueError(f"weights must have shape {(n, config.shape.fan_in + 1)}, not {weights.shape}")
        slots = config.neurons_per_pe
        self._trained = weights is not None
        self._pes = [
            NeuronPE(config=config, weight_init=None if weights is None else weights[p * slots:(p + 1) * slots].ravel())
            for p in range(config.pes)
        ]
        pe_host = self._pes[0].host.signature
        a = config.arithmetic
        members = {
            "cmd": In(stream.Signature(LayerCommand)),
            "busy": Out(1),
            "done": Out(1),
            "completed": Out(counter_width),
            "host": In(LayerHostSignature(pes=config.pes, addr_width=pe_host.addr_width,
                                          data_width=pe_host.data_width)),
            "x": In(stream.Signature(format_shape(a.activation))),
            "y": Out(stream.Signature(ActivationLayout(format_shape(a.activation)))),
            "clear_counters": In(1),
        }
        if config.learning:
            members["e"] = In(stream.Signature(format_shape(a.error)))
            members["errors_received"] = Out(counter_width)
            members["errors_delivered"] = Out(counter_width).array(config.pes)
        super().__init__(members)
        self._MustUse__silence = False

    @property
    def config(self) -> LayerConfig:
        return self._config

    @property
    def pes(self) -> tuple[NeuronPE, ...]:
        """The P processing elements, PE p serving neurons ``p K .. p K + K - 1``."""
        return tuple(self._pes)

    @property
    def router(self) -> ErrorRouter | None:
        """The error router (None for an inference-only layer)."""
        return self._router

    @property
    def cycles(self) -> LayerCycles:
        cfg = self._config
        return layer_cycles(fan_in=cfg.shape.fan_in, neurons_per_pe=cfg.neurons_per_pe,
                            connections=cfg.shape.connections)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        pes, slots, fan_in = cfg.pes, cfg.neurons_per_pe, cfg.shape.fan_in
        for p, pe in enumerate(self._pes):
            m.submodules[f"pe_{p}"] = pe_submodule(self, pe, p, own_contents=self._trained)
        router = self._router
        if router is not None:
            m.submodules.router = router
            wiring.connect(m, wiring.flipped(self.e), router.errors)
            for p, pe in enumerate(self._pes):
                wiring.connect(m, router.to_pe[p], pe.e)
            m.d.comb += [
                router.clear_counters.eq(self.clear_counters),
                self.errors_received.eq(router.received),
            ]
            m.d.comb += [mine.eq(its) for mine, its in zip(self.errors_delivered, router.delivered)]

        self._elaborate_host(m)

        # -- command sequencer ---------------------------------------------------------------
        pe_cmd = Signal(Command)
        offer = Signal()  # a PE command is offered
        cmd_valids, cmd_done = _lockstep_fork(m, "pe_cmd", offer, [pe.cmd.ready for pe in self._pes])
        for pe, valid in zip(self._pes, cmd_valids):
            m.d.comb += [pe.cmd.valid.eq(valid), pe.cmd.payload.eq(pe_cmd)]
        pes_idle = Signal()
        m.d.comb += pes_idle.eq(~Cat(*(pe.busy for pe in self._pes)).any())
        op = Signal(LayerCommand, reset_less=True)  # read only after a command set it
        start_forward = Signal()  # strobes: entering the FORWARD / UPDATE issue states
        start_update = Signal()
        # The sequencer's states (If/Elif rather than an FSM or Switch: complete Verilog cases).
        idle, issue_forward, issue_error, issue_update, finish = range(5)
        # Registers with a reset are written through their `_next` signal (``building_blocks.register``).
        state, state_next = register(m, 3, "state", init=idle)
        accepting = Signal()

        m.d.comb += accepting.eq(equals(state, idle) | ((state == finish) & pes_idle))
        m.d.comb += self.cmd.ready.eq(accepting)
        with m.If(accepting & self.cmd.valid):
            m.d.sync += op.eq(self.cmd.payload)
            command = self.cmd.payload
            forward_first = (equals(command.as_value(), LayerCommand.FORWARD.value)
                             | (command == LayerCommand.SAMPLE))
            with m.If(forward_first):
                m.d.comb += start_forward.eq(1)
                m.d.comb += state_next.eq(issue_forward)
            with m.Elif(command == LayerCommand.ERROR):
                m.d.comb += state_next.eq(issue_error)
            with m.Else():
                m.d.comb += start_update.eq(1)
                m.d.comb += state_next.eq(issue_update)
        with m.Elif(state == finish):
            with m.If(pes_idle):
                m.d.comb += state_next.eq(idle)

        sample = op == LayerCommand.SAMPLE
        with m.If(state == issue_forward):
            m.d.comb += [offer.eq(1), pe_cmd.eq(Command.FORWARD)]
            with m.If(cmd_done):
                m.d.comb += state_next.eq(Mux(sample, issue_error, finish))
        with m.Elif(state == issue_error):
            m.d.comb += [offer.eq(1), pe_cmd.eq(Command.ERROR)]
            with m.If(cmd_done):
                m.d.comb += state_next.eq(Mux(sample, issue_update, finish))
                m.d.comb += start_update.eq(sample)
        with m.Elif(state == issue_update):
            m.d.comb += [offer.eq(1), pe_cmd.eq(Command.UPDATE)]
            with m.If(cmd_done):
                m.d.comb += state_next.eq(finish)
        m.d.comb += [
            self.done.eq((state == finish) & pes_idle),
            self.busy.eq(~equals(state, idle) & ~self.done),
        ]
        completed, completed_next = register(m, len(self.completed), "completed_count")
        m.d.comb += self.completed.eq(completed)
        with m.If(self.done):
            m.d.comb += completed_next.eq(completed + 1)

        # -- inputs: broadcast from `x` (FORWARD, written to the buffer) or the buffer (UPDATE)
        # Memories have at least two rows, so that no address is zero bits wide.
        input_buffer = Memory(shape=format_shape(cfg.arithmetic.activation), depth=max(2, fan_in), init=[])
        m.submodules.input_buffer = input_buffer
        buffer_write = input_buffer.write_port()
        buffer_read = input_buffer.read_port()
        replay, replay_next = register(m, 1, "replay")  # the x broadcast comes from the buffer
        source_valid = Signal()
        source_payload = Signal(format_shape(cfg.arithmetic.activation))
        # Every PE takes each word in the same clock, and PE 0's `ready` says when: the PEs are
        # identical, given the same commands, x and error words in the same clocks, and their
        # control does not depend on data, so their `x.ready`s are equal on every clock (the
        # layer's tests check it on every clock they run). An AND over the P readies, one net
        # from each PE, was the 64-100-10 learner's critical path on an ECP5 (docs/implement.md).
        # The command fork below keeps its AND: off the critical path, and deciding it (and
        # "PEs idle") from PE 0 as well moved the placement to a slower result (83.08 MHz).
        x_done = wire(m, source_valid & self._pes[0].x.ready, "x_done")
        for pe in self._pes:
            m.d.comb += [pe.x.valid.eq(source_valid), pe.x.payload.eq(source_payload)]

        # Zeroed by every FORWARD before x is taken: no reset needed.
        write_addr = Signal(index_width(fan_in), reset_less=True)
        m.d.comb += [
            buffer_write.addr.eq(write_addr),
            buffer_write.data.eq(self.x.payload),
            buffer_write.en.eq(~replay & x_done),
            self.x.ready.eq(~replay & x_done),
        ]
        with m.If(~replay & x_done):
            m.d.sync += write_addr.eq(Mux(write_addr == fan_in - 1, 0, write_addr + 1))

        # The replay reader: the buffer's registered read is its one-word stage.
        read_next = Signal(range(fan_in + 1), reset_less=True)  # used only while `replay`
        read_valid, read_valid_next = register(m, 1, "read_valid")
        read_advance = ~read_valid | (replay & x_done)
        # Between replays the port reads x_0 on every clock (`at_start`), so that x_0 is on it
        # when the PEs' UPDATE starts whichever clock a command starts it in: no command
        # decoding in front of the block RAM's address.
        at_start, at_start_next = register(m, 1, "at_start", init=1)
        more = replay & (read_next != fan_in)  # `!=` for `<`: the count stops at fan_in
        m.d.comb += [buffer_read.addr.eq(Mux(at_start, 0, read_next)),
                     buffer_read.en.eq(at_start | (read_advance & more))]
        with m.If(start_update):
            m.d.comb += [replay_next.eq(1), read_valid_next.eq(1), at_start_next.eq(0)]
            m.d.sync += read_next.eq(1)
        with m.Else():
            with m.If(read_advance):
                m.d.comb += read_valid_next.eq(more)
                with m.If(more):
                    m.d.sync += read_next.eq(read_next + 1)
                with m.Elif(replay):
                    m.d.comb += at_start_next.eq(1)  # the last word is taken (or none was left)
        with m.If(start_forward):
            m.d.comb += [replay_next.eq(0), read_valid_next.eq(0), at_start_next.eq(1)]
            m.d.sync += write_addr.eq(0)
        m.d.comb += [
            source_valid.eq(Mux(replay, read_valid, self.x.valid)),
            source_payload.eq(Mux(replay, buffer_read.data, self.x.payload)),
        ]

        # -- outputs: one bank of K (y, a) words per PE, read out in neuron order ------------
        layout = ActivationLayout(format_shape(cfg.arithmetic.activation))
        written, written_next = zip(*(register(m, range(slots + 1), f"written_{p}") for p in range(pes)))
        bank_reads = []
        read_pe, read_pe_next = register(m, index_width(pes), "read_pe")
        read_slot, read_slot_next = register(m, index_width(slots), "read_slot")
        # The counts only step by one up to their bound (written to `slots`, the read slot to
        # the bank's written count), so `!=` says what `<` and `>` would, without carry chains
        # on the path of the streams' handshakes.
        for p, pe in enumerate(self._pes):
            bank = Memory(shape=layout, depth=max(2, slots), init=[])
            m.submodules[f"output_bank_{p}"] = bank
            write = bank.write_port()
            # A synchronous read (block RAM, not K flip-flops per word) of the slot the next
            # clock presents, transparent to this clock's write: the word is on the port in
            # the same clocks as from an asynchronous read of ``read_slot``.
            read = bank.read_port(transparent_for=(write,))
            # `written != slots` as a register of its own (the same value on every clock): the
            # PE's `y.ready` feeds its stall and so every stage's enable, and from the count's
            # comparison it was the 64-100-10 learner's critical path on an ECP5.
            room, room_next = register(m, 1, f"room_{p}", init=1)
            m.d.comb += room_next.eq(written_next[p] != slots)
            m.d.comb += [
                pe.y.ready.eq(room),
                write.addr.eq(written[p]),
                write.data.eq(pe.y.payload),
                write.en.eq(pe.y.valid & pe.y.ready),
                read.addr.eq(read_slot_next),
            ]
            with m.If(pe.y.valid & pe.y.ready):
                m.d.comb += written_next[p].eq(written[p] + 1)
            bank_reads.append(read.data)
        m.d.comb += [
            self.y.valid.eq(select(written, read_pe) != read_slot),
            self.y.payload.eq(select(bank_reads, read_pe)),
        ]
        with m.If(self.y.valid & self.y.ready):
            with m.If(read_slot == slots - 1):
                m.d.comb += read_slot_next.eq(0)
                with m.If(read_pe == pes - 1):
                    # The whole sample has left; every bank is full, so no PE writes now.
                    m.d.comb += [read_pe_next.eq(0)] + [w.eq(0) for w in written_next]
                with m.Else():
                    m.d.comb += read_pe_next.eq(read_pe + 1)
            with m.Else():
                m.d.comb += read_slot_next.eq(read_slot + 1)
        return m

    def _elaborate_host(self, m: Module) -> None:
        """The host port: PE spaces go to the selected PE; INDEX and ERROR_COUNT to the router."""
        host = self.host
        space = host.space.as_value()
        pe_space = space <= LayerSpace.DERIVATIVE.value
        for p, pe in enumerate(self._pes):
            selected = pe_space & equals(host.pe, p)
            m.d.comb += [
                pe.host.space.eq(space[:len(pe.host.space.as_value())]),
                pe.host.addr.eq(host.addr),
                pe.host.w_data.eq(host.w_data),
                pe.host.w_en.eq(host.w_en & selected),
                pe.host.r_en.eq(host.r_en & selected),
            ]
        read_pe, read_pe_next = register(m, len(host.pe), "host_read_pe")
        read_counter, read_counter_next = register(m, 1, "host_read_counter")
        counter_hold = Signal(len(host.r_data), reset_less=True)  # seen only after a counter read
        with m.If(host.r_en):
            m.d.comb += [read_pe_next.eq(host.pe), read_counter_next.eq(host.space == LayerSpace.ERROR_COUNT)]
        router = self._router
        if router is not None:
            if router.lfsr_seed is None:
                m.d.comb += [
                    router.table.pe.eq(host.pe),
                    router.table.addr.eq(host.addr),
                    router.table.data.eq(host.w_data),
                    router.table.en.eq(host.w_en & (host.space == LayerSpace.INDEX)),
                ]
            if router.neuron_counters:
                m.d.comb += [router.neuron_count.pe.eq(host.pe), router.neuron_count.slot.eq(host.addr)]
                with m.If(host.r_en):
                    m.d.sync += counter_hold.eq(router.neuron_count.data)
        pe_data = select([pe.host.r_data for pe in self._pes], read_pe)
        m.d.comb += host.r_data.eq(Mux(read_counter, counter_hold, pe_data))
