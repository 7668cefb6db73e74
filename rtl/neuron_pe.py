"""NeuronPE: one processing element serving K time-multiplexed neurons of an SSDFA layer.

Section numbers (§) refer to docs/arithmetic.md, the arithmetic contract this PE implements bit
for bit; docs/rtl.md has the architecture and the timing diagrams at more length.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Array, C, Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ssdfa.model.arithmetic import (
    LFSR_WIDTH,
    STOCH_BITS,
    FixedFormat,
    Overflow,
    Rounding,
    lfsr_step,
)
from ssdfa.model.layer_config import LayerConfig
from ssdfa.model.neuron_ops import Activation, tanh_table

from .signatures import (
    ActivationLayout,
    Command,
    HostSignature,
    Space,
    format_shape,
    host_addr_width,
    host_data_width,
)

__all__ = ["NeuronPE", "PhaseCycles", "phase_cycles"]

#: Cycles from a command transfer to the next possible one, beyond the per-item work.
FORWARD_LATENCY = 3  #: command -> issue (1), weight read (1), cast/activation register (1)
ERROR_LATENCY = 1  #: command -> first error word
UPDATE_LATENCY = 2  #: command -> issue (1), read-modify-write (1)


class PhaseCycles(NamedTuple):
    """Clock cycles of each phase, from a command transfer to the next possible command transfer,
    with every stream valid/ready whenever the PE wants it (no stalls)."""

    forward: int  #: K (N + 1) + 3
    error: int  #: K s + 1 (K + 1 for an output layer, s = 1)
    update: int  #: K (N + 1) + 2

    @property
    def per_sample(self) -> int:
        """One training sample: 2 K (N + 1) + K s + 6."""
        return self.forward + self.error + self.update


def phase_cycles(*, fan_in: int, neurons_per_pe: int, connections: int = 1) -> PhaseCycles:
    """The PE's cycle counts per phase (see ``NeuronPE``), one MAC or weight update per clock.

    Parameters
    ----------
    fan_in : int
        N, inputs per neuron (the bias adds one weight per neuron).
    neurons_per_pe : int
        K, neurons time-multiplexed on the PE.
    connections : int
        s, error words per neuron (1 for SSDFA and for the output layer).
    """
    for name, value in (("fan_in", fan_in), ("neurons_per_pe", neurons_per_pe), ("connections", connections)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    weights = neurons_per_pe * (fan_in + 1)
    return PhaseCycles(
        forward=weights + FORWARD_LATENCY,
        error=neurons_per_pe * connections + ERROR_LATENCY,
        update=weights + UPDATE_LATENCY,
    )


class NeuronPE(wiring.Component):
    """A processing element for ``K = neurons_per_pe`` neurons of fan-in ``N`` (§4-§7).

    Storage: a weight memory of ``(N + 1) K`` words (``amaranth.lib.memory.Memory``; neuron k's
    row at ``k (N + 1)``, bias last), and per neuron: ``s`` feedback constants ``b``, a 32-bit
    LFSR (§5; only when ``update_rounding`` is STOCH), the stored derivative ``f'`` (§4.3; one bit for relu/hardtanh, ``f_a + 1`` bits
    for tanh), the delta, and a forward accumulator. tanh is a ROM built from the model's
    ``tanh_table`` (§4.2). All formats and modes are elaboration parameters.

    Loop order is input-major: input ``x_j`` is held on the ``x`` stream for K clocks while the
    K neurons each take one multiply-accumulate (forward) or one weight update (update), so the
    PE needs no input buffer and P PEs of a layer can share one broadcast ``x`` stream in
    lockstep. The bias (``j = N``, input exactly 1, raw ``2^f_x``) comes last and takes no
    ``x`` transfer.

    Parameters
    ----------
    config : LayerConfig
        Shape (fan-in N, neurons, PEs, connections s), activation, formats and modes. Already
        validated by ``LayerConfig``; this PE serves ``config.neurons_per_pe`` neurons.
    learning : bool or None
        False elaborates an inference-only PE (no ERROR/UPDATE logic, no LFSR, no feedback,
        delta or derivative storage, no ``e`` port); None takes ``config.learning``.

    Attributes
    ----------
    cmd : In(stream.Signature(Command))
        ``ready`` exactly when idle. A transfer starts the phase; ``busy`` rises on the next
        cycle. An inference-only PE accepts ERROR and UPDATE and ignores them (``busy`` stays
        low).
    busy : Out(1)
        High while a phase runs; ``cmd.ready == ~busy``.
    host : In(HostSignature(addr_width, data_width))
        Addressed load / read back of weights, feedback constants, LFSR states, deltas and
        derivatives (see ``Space``); use only while idle. Reads return data one cycle after
        ``r_en``.
    weight_memory : Memory
        The weight memory itself (for testbenches that preload or inspect it).
    x : In(stream.Signature(format_shape(activation format)))
        Layer inputs, raw activation format, ``x_0 .. x_(N-1)`` once per FORWARD and again
        per UPDATE. The PE asserts ``ready`` on the K-th clock that it uses each ``x_j``
        (the payload must be stable meanwhile, as the stream rules already require).
    y : Out(stream.Signature(ActivationLayout(format_shape(activation format))))
        FORWARD outputs, neurons ``k = 0 .. K-1`` in order: ``y`` = pre-activation (§4.1),
        ``a = f(y)`` (§4.2). ``ready`` low stalls the whole forward pipeline.
    e : In(stream.Signature(format_shape(error format)))  (learning only)
        ERROR inputs: ``K s`` words in the order neuron ``k = 0 .. K-1``, and within a neuron
        its connections ``t = 0 .. s-1`` (the router's index table order). ``ready`` is high
        throughout the ERROR phase.

    Phases
    ------
    Cycle 0 is the clock whose edge transfers the command; every stream is valid/ready whenever
    the PE wants it. The diagrams show K = 2, N = 2, s = 1 (``Wkj``: neuron k, input j; j = 2 is
    the bias). ``phase_cycles`` gives the lengths.

    FORWARD (§4.1-§4.3), ``K (N + 1) + 3`` clocks. Stage A issues the weight read of ``W[k, j]``
    in input-major order; stage B multiplies it by ``x_j`` and accumulates (``acc_k`` restarts
    at ``j = 0``), and for the bias casts the exact sum to ``y`` (``rounding``, ``overflow``);
    stage C presents ``(y, a = f(y))`` on ``y`` and stores ``f'_k`` when it transfers.
    ``y_k`` is valid at cycle ``K N + k + 3``. ``y.ready`` low stalls all three stages::

        cycle       0    1    2    3    4    5    6    7    8    9
        cmd.valid   1
        busy        0    1    1    1    1    1    1    1    1    0
        x.payload        x0   x0   x1   x1
        x.valid          1    1    1    1    0    0
        x.ready          0    1    0    1    0    0
        A: read          W00  W10  W01  W11  W02  W12
        B: MAC                acc0 acc1 acc0 acc1 y0   y1
        C: y.valid                                  1    1

    ERROR (§6.1, §6.2; §5.3 step 1), ``K s + 1`` clocks, one ``e`` word per clock. With the
    last word of neuron k, in the same clock, ``delta_k = cast((sum_t b_kt e_kt) f'_k,
    f_b + f_e + f_f', delta format, update_rounding, overflow)``, drawing once from neuron k's
    LFSR when STOCH. An output layer (identity, s = 1) stores ``delta_k = e_k``: no cast, no
    draw::

        cycle       0    1    2    3
        cmd.valid   1
        busy        0    1    1    0
        e.ready          1    1
        e.payload        e0   e1
        delta_k               d0   d1      (written at the edge that ends its last word)

    UPDATE (§7; §5.3 step 2), ``K (N + 1) + 2`` clocks, ``x`` streamed again as in FORWARD.
    One clock after the read of ``W[k, j]`` the PE writes ``cast(W - cast(delta_k x_j,
    f_d + f_x + shift, weight format, update_rounding, overflow), TRN, overflow)``, drawing
    from neuron k's LFSR when STOCH; a neuron's draws thus follow its delta draw in address
    order, bias last::

        cycle       0    1    2    3    4    5    6    7    8
        cmd.valid   1
        busy        0    1    1    1    1    1    1    1    0
        x.ready          0    1    0    1    0    0
        A: read          W00  W10  W01  W11  W02  W12
        B: write              W00' W10' W01' W11' W02' W12'

    One training sample is therefore ``2 K (N + 1) + K s + 6`` clocks.

    Raises
    ------
    TypeError
        If ``config`` is not a ``LayerConfig``.
    ValueError
        If an output layer (identity activation) has more than one connection.
    """

    def __init__(self, *, config: LayerConfig, learning: bool | None = None):
        self._MustUse__silence = True  # a refused instance is not an unused design
        if not isinstance(config, LayerConfig):
            raise TypeError(f"config must be a LayerConfig, not {config!r}")
        if learning is None:
            learning = config.learning
        if not isinstance(learning, bool):
            raise TypeError(f"learning must be True, False or None, not {learning!r}")
        if config.activation is Activation.IDENTITY and config.shape.connections != 1:
            raise ValueError(
                f"an output layer (identity activation) receives exactly one error per neuron, "
                f"not connections={config.shape.connections}"
            )
        self._config = config
        self._learning = learning
        a = config.arithmetic
        self._fan_in = config.shape.fan_in
        self._neurons = config.neurons_per_pe
        self._connections = config.shape.connections
        depth = self.weight_depth
        addr_depth = max(depth, self._neurons * self._connections)
        members = {
            "cmd": In(stream.Signature(Command)),
            "busy": Out(1),
            "host": In(
                HostSignature(
                    addr_width=host_addr_width(addr_depth),
                    data_width=host_data_width(a.weight, a.feedback, a.error, a.delta, a.activation),
                )
            ),
            "x": In(stream.Signature(format_shape(a.activation))),
            "y": Out(stream.Signature(ActivationLayout(format_shape(a.activation)))),
        }
        if learning:
            members["e"] = In(stream.Signature(format_shape(a.error)))
        super().__init__(members)
        # Built here, as a memory-backed component does, so that a testbench can reach it.
        self._weight_memory = Memory(shape=format_shape(a.weight), depth=depth, init=[])
        self._MustUse__silence = False

    # -- read-only parameters -----------------------------------------------------------------

    @property
    def config(self) -> LayerConfig:
        return self._config

    @property
    def learning(self) -> bool:
        return self._learning

    @property
    def fan_in(self) -> int:
        """N."""
        return self._fan_in

    @property
    def neurons(self) -> int:
        """K, neurons served by this PE."""
        return self._neurons

    @property
    def connections(self) -> int:
        """s, error words per neuron."""
        return self._connections

    @property
    def weight_depth(self) -> int:
        """Words of the weight memory: (N + 1) K."""
        return (self._fan_in + 1) * self._neurons

    @property
    def weight_memory(self) -> Memory:
        """The weight memory: word ``k (N + 1) + j`` holds ``W[k, j]`` (bias at ``j = N``)."""
        return self._weight_memory

    @property
    def cycles(self) -> PhaseCycles:
        return phase_cycles(fan_in=self._fan_in, neurons_per_pe=self._neurons, connections=self._connections)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        a = cfg.arithmetic
        act = cfg.activation
        output_layer = act is Activation.IDENTITY
        K, N, S = self._neurons, self._fan_in, self._connections
        learning = self._learning
        stoch = learning and a.update_rounding is Rounding.STOCH
        act_fmt, w_fmt = a.activation, a.weight
        act_shape, w_shape = format_shape(act_fmt), format_shape(w_fmt)
        # An output layer's delta is the error itself (§6.2).
        delta_fmt = a.error if output_layer else a.delta
        f_fprime = a.fprime_frac(act)
        fprime_shape = unsigned(a.fprime_word(act))
        depth = self.weight_depth

        # -- storage ------------------------------------------------------------------------
        m.submodules.weights = weights = self._weight_memory
        w_rd = weights.read_port()
        w_wr = weights.write_port()
        accs = [Signal(format_shape(a.accumulator_format(N)), name=f"acc{k}") for k in range(K)]
        if learning:
            fprimes = [Signal(fprime_shape, name=f"fprime{k}") for k in range(K)]
            deltas = [Signal(format_shape(delta_fmt), name=f"delta{k}") for k in range(K)]
            feedback = [
                [Signal(format_shape(a.feedback), name=f"b{k}_{t}") for t in range(S)] for k in range(K)
            ] if not output_layer else []
            lfsrs = [Signal(LFSR_WIDTH, name=f"lfsr{k}", init=1) for k in range(K)] if stoch else []

        # -- control state --------------------------------------------------------------------
        running = Signal()
        phase = Signal(Command)
        idle = ~running
        m.d.comb += [self.busy.eq(running), self.cmd.ready.eq(idle)]
        with m.If(self.cmd.valid & idle):
            m.d.sync += phase.eq(self.cmd.payload)
            if learning:
                # The fourth code of the 2-bit command is no phase: accepted and ignored.
                m.d.sync += running.eq(Value.cast(self.cmd.payload) != 3)
            else:
                m.d.sync += running.eq(_equals(self.cmd.payload, Command.FORWARD))
        in_forward = running & (_equals(phase, Command.FORWARD))
        in_update = running & (_equals(phase, Command.UPDATE)) if learning else C(0, 1)
        in_error = running & (_equals(phase, Command.ERROR)) if learning else C(0, 1)

        # -- stage A: issue (j, k) in input-major order, weight address k (N + 1) + j ----------
        a_active = Signal()
        a_j = Signal(range(N + 1))
        a_k = Signal(range(max(K, 2)))
        a_addr = Signal(range(max(depth, 2)))
        a_bias = _equals(a_j, N)
        a_last_k = _equals(a_k, K - 1)
        # Forward stalls as a whole while an output waits for y.ready.
        c_valid = Signal()
        stall = c_valid & ~self.y.ready
        issue = a_active & ~stall & (a_bias | self.x.valid)
        m.d.comb += self.x.ready.eq(a_active & ~stall & ~a_bias & a_last_k)
        with m.If(self.cmd.valid & idle):
            m.d.sync += [a_active.eq(_equals(self.cmd.payload, Command.FORWARD)), a_j.eq(0), a_k.eq(0), a_addr.eq(0)]
            if learning:
                with m.If(_equals(self.cmd.payload, Command.UPDATE)):
                    m.d.sync += a_active.eq(1)
        with m.If(issue):
            with m.If(a_last_k):
                m.d.sync += [a_k.eq(0), a_j.eq(a_j + 1), a_addr.eq(a_j + 1)]
                with m.If(a_bias):
                    m.d.sync += a_active.eq(0)
            with m.Else():
                m.d.sync += [a_k.eq(a_k + 1), a_addr.eq(a_addr + (N + 1))]

        # The bias input is exactly 1: raw 2^f_x, one bit wider than x (§4.1, §7).
        x_op_shape = signed(act_fmt.word + 1) if act_fmt.signed else unsigned(act_fmt.word + 1)
        b_valid, b_bias, b_first, b_last = Signal(), Signal(), Signal(), Signal()
        b_k = Signal(range(max(K, 2)))
        b_addr = Signal(range(max(depth, 2)))
        b_x = Signal(x_op_shape)
        with m.If(~stall):
            m.d.sync += [
                b_valid.eq(issue),
                b_bias.eq(a_bias),
                b_first.eq(_equals(a_j, 0)),
                b_last.eq(a_bias & a_last_k),
                b_k.eq(a_k),
                b_addr.eq(a_addr),
                b_x.eq(Mux(a_bias, 1 << act_fmt.frac_bits, self.x.payload)),
            ]
        m.d.comb += [
            w_rd.addr.eq(Mux(idle, self.host.addr, a_addr)),
            w_rd.en.eq(Mux(idle, self.host.r_en, ~stall)),
        ]

        # -- stage B: multiply (shared by the forward MAC and the weight step) ----------------
        if learning:
            delta_sel = _wire(m, _select(deltas, b_k), "delta_sel")
            mul_shape = _union_shape(w_shape, delta_sel.shape())
            mul_a = Signal(mul_shape)
            m.d.comb += mul_a.eq(Mux(in_update, delta_sel, w_rd.data))
        else:
            mul_a = w_rd.data
        product = _wire(m, mul_a * b_x, "product")  # exact: W x (frac f_w + f_x) or delta x (frac f_d + f_x)
        acc_sum = _wire(m, _select(accs, b_k) + product, "acc_sum")
        b_mac = in_forward & b_valid & ~stall
        for k in range(K):
            with m.If(b_mac & ~b_bias & _equals(b_k, k)):
                m.d.sync += accs[k].eq(Mux(b_first, product, acc_sum))
        # §4.1: one cast of the exact sum, bias included.
        y_next = _wire(m, _hw_cast(acc_sum, w_fmt.frac_bits + act_fmt.frac_bits, act_fmt, a.rounding, a.overflow), "y_next")

        # -- stage C: activation and the output stream ----------------------------------------
        c_y = Signal(act_shape)
        c_k = Signal(range(max(K, 2)))
        c_last = Signal()
        with m.If(~stall):
            m.d.sync += [c_valid.eq(b_mac & b_bias), c_y.eq(y_next), c_k.eq(b_k), c_last.eq(b_last)]
        if act is Activation.TANH:
            table = [int(v) for v in tanh_table(act_fmt)]
            m.submodules.tanh_rom = rom = Memory(shape=act_shape, depth=len(table), init=table)
            rom_rd = rom.read_port()
            # Entry index = y - min: flip the sign bit of a signed raw value (§4.2).
            m.d.comb += [
                rom_rd.addr.eq(Cat(y_next[:-1], ~y_next[-1]) if act_fmt.signed else y_next),
                rom_rd.en.eq(~stall),
            ]
            c_a = rom_rd.data
        else:
            c_a = _activate(c_y, act_fmt, act)
        m.d.comb += [self.y.valid.eq(c_valid), self.y.payload.y.eq(c_y), self.y.payload.a.eq(c_a)]
        y_done = c_valid & self.y.ready
        with m.If(y_done & c_last):
            m.d.sync += running.eq(0)
        if learning:
            fprime_next = _wire(m, _derivative(c_y, c_a, act_fmt, act), "fprime_next")
            for k in range(K):
                with m.If(y_done & _equals(c_k, k)):
                    m.d.sync += fprimes[k].eq(fprime_next)

        # -- LFSR: one draw = 16 steps, one XOR network (§5.1) ---------------------------------
        draw = None
        if stoch:
            e_k = Signal(range(max(K, 2)))
            lfsr_k = Mux(in_error, e_k, b_k)
            lfsr_sel = _wire(m, _select(lfsrs, lfsr_k), "lfsr_sel")
            lfsr_next = _wire(m, _lfsr_draw(lfsr_sel), "lfsr_next")
            draw = lfsr_next[:STOCH_BITS]
            lfsr_advance = Signal()
            for k in range(K):
                with m.If(lfsr_advance & _equals(lfsr_k, k)):
                    m.d.sync += lfsrs[k].eq(lfsr_next)
        elif learning:
            e_k = Signal(range(max(K, 2)))

        if learning:
            # -- UPDATE write-back (§7) ---------------------------------------------------------
            step = _wire(m, _hw_cast(
                product,
                delta_fmt.frac_bits + act_fmt.frac_bits + a.shift,
                w_fmt,
                a.update_rounding,
                a.overflow,
                draw,
            ), "step")
            w_new = _wire(m, _hw_cast(w_rd.data - step, w_fmt.frac_bits, w_fmt, Rounding.TRN, a.overflow), "w_new")
            b_write = in_update & b_valid
            with m.If(b_write & b_last):
                m.d.sync += running.eq(0)

            # -- ERROR (§6.1, §6.2) --------------------------------------------------------------
            e_t = Signal(range(max(S, 2)))
            e_last_t = _equals(e_t, S - 1)
            m.d.comb += self.e.ready.eq(in_error)
            e_take = in_error & self.e.valid
            with m.If(self.cmd.valid & idle):
                m.d.sync += [e_k.eq(0), e_t.eq(0)]
            with m.If(e_take):
                with m.If(e_last_t):
                    m.d.sync += [e_t.eq(0), e_k.eq(e_k + 1)]
                    with m.If(_equals(e_k, K - 1)):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.sync += e_t.eq(e_t + 1)
            if output_layer:
                delta_next = self.e.payload
            else:
                b_sel = _wire(m, _select([_select(row, e_t) for row in feedback], e_k), "b_sel")
                b_term = _wire(m, b_sel * self.e.payload, "b_term")
                if S > 1:
                    partial = Signal(format_shape(_exact_sum_format(a.feedback, a.error, S)))
                    with m.If(e_take):
                        m.d.sync += partial.eq(Mux(_equals(e_t, 0), b_term, partial + b_term))
                    received = _wire(m, Mux(_equals(e_t, 0), b_term, partial + b_term), "received")
                else:
                    received = b_term
                fprime_sel = _wire(m, _select(fprimes, e_k), "fprime_sel")
                if act is Activation.TANH:
                    delta_product = received * fprime_sel
                else:
                    delta_product = Mux(fprime_sel[0], received, 0)
                delta_next = _wire(m, _hw_cast(
                    delta_product,
                    a.feedback.frac_bits + a.error.frac_bits + f_fprime,
                    a.delta,
                    a.update_rounding,
                    a.overflow,
                    draw,
                ), "delta_next")
            delta_write = e_take & e_last_t
            for k in range(K):
                with m.If(delta_write & _equals(e_k, k)):
                    m.d.sync += deltas[k].eq(delta_next)
            if stoch:
                # §5.3: the delta draw (hidden layers only), then one per weight in address order.
                m.d.comb += lfsr_advance.eq(b_write | (C(0, 1) if output_layer else delta_write))
        else:
            b_write = C(0, 1)
            w_new = C(0, 1)

        # -- host port -------------------------------------------------------------------------
        host = self.host
        host_write = host.w_en & idle
        # Writes beyond the weight memory are ignored (compare only if the address can be there).
        in_memory = (host.addr < depth) if depth < (1 << len(host.addr)) else C(1, 1)
        m.d.comb += [
            w_wr.addr.eq(Mux(idle, host.addr, b_addr)),
            w_wr.data.eq(Mux(idle, host.w_data[: w_fmt.word], w_new)),
            w_wr.en.eq(Mux(idle, host_write & _equals(host.space, Space.WEIGHT) & in_memory, b_write)),
        ]
        registers = {}
        if learning:
            registers[Space.DELTA] = deltas
            registers[Space.DERIVATIVE] = fprimes
            if not output_layer:
                registers[Space.FEEDBACK] = [b for row in feedback for b in row]
            if stoch:
                registers[Space.LFSR] = lfsrs
        for space, words in registers.items():
            for index, word in enumerate(words):
                with m.If(host_write & _equals(host.space, space) & _equals(host.addr, index)):
                    m.d.sync += word.eq(host.w_data[: len(word)])
        r_space = Signal(Space)
        r_word = Signal(len(host.r_data))
        with m.If(host.r_en & idle):
            m.d.sync += [r_space.eq(host.space), r_word.eq(0)]
            for space, words in registers.items():
                for index, word in enumerate(words):
                    with m.If(_equals(host.space, space) & _equals(host.addr, index)):
                        m.d.sync += r_word.eq(word)
        m.d.comb += host.r_data.eq(Mux(_equals(r_space, Space.WEIGHT), w_rd.data, r_word))
        return m


# ------------------------------------------------------------------------------------------
# Arithmetic building blocks (combinational), each the hardware form of one rule of the contract
# ------------------------------------------------------------------------------------------


def _wire(m: Module, value, name: str) -> Signal:
    """A named combinational signal carrying ``value``, so that its bits are shared, not re-built."""
    value = Value.cast(value)
    signal = Signal(value.shape(), name=name)
    m.d.comb += signal.eq(value)
    return signal


def _equals(value, constant) -> Value:
    """``value == constant``, written as a reduction for zero: Amaranth's backend prints
    ``x == 0`` as ``!x``, which Verilator's lint flags on a multi-bit ``x``."""
    value = Value.cast(value)
    constant = Value.cast(constant)
    if isinstance(constant, Const) and constant.value == 0:
        return ~value.any()
    return value == constant


def _select(items, index):
    """``items[index]`` as a multiplexer; a single item needs no index."""
    index = Value.cast(index)
    if len(items) == 1:
        return items[0]
    # Pad to every value of the index (repeating the last item) so that the case is complete.
    items = list(items) + [items[-1]] * ((1 << len(index)) - len(items))
    return Array(items)[index]


def _union_shape(*shapes) -> Shape:
    """The smallest shape holding every value of each of ``shapes``."""
    shapes = [Shape.cast(s) for s in shapes]
    if any(s.signed for s in shapes):
        return signed(max(s.width + (0 if s.signed else 1) for s in shapes))
    return unsigned(max(s.width for s in shapes))


def _extend(value, width: int):
    """``value`` sign- or zero-extended to at least ``width`` bits, keeping its signedness."""
    value = Value.cast(value)
    extra = width - len(value)
    if extra <= 0:
        return value
    if value.shape().signed:
        return Cat(value, value[-1].replicate(extra)).as_signed()
    return Cat(value, C(0, extra))


def _exact_sum_format(fmt_a: FixedFormat, fmt_b: FixedFormat, terms: int) -> FixedFormat:
    """The format of an exact sum of ``terms`` products of ``fmt_a`` and ``fmt_b`` values (§1.1)."""
    word = fmt_a.word + fmt_b.word + max(0, (terms - 1).bit_length())
    return FixedFormat(word - fmt_a.frac_bits - fmt_b.frac_bits, fmt_a.frac_bits + fmt_b.frac_bits)


def _hw_cast(value, frac_bits: int, fmt: FixedFormat, rounding: Rounding, overflow: Overflow, draw=None):
    """Hardware ``cast`` (§2, §3): round ``value`` (``frac_bits`` fraction bits) into ``fmt``.

    ``draw`` is the 16-bit LFSR draw for STOCH (§2.1). Returns a value of ``format_shape(fmt)``.
    """
    value = Value.cast(value)
    dropped = frac_bits - fmt.frac_bits
    if dropped <= 0:
        rounded = value.shift_left(-dropped)
    else:
        # Two spare bits above the dropped ones keep every slice below well defined.
        value = _extend(value, dropped + 2)
        if rounding is Rounding.TRN:
            rounded = value.shift_right(dropped)
        elif rounding is Rounding.TRN_ZERO:
            if value.shape().signed:
                bias = Mux(value[-1], (1 << dropped) - 1, 0)
                rounded = (value + bias).shift_right(dropped)
            else:
                rounded = value.shift_right(dropped)
        elif rounding is Rounding.RND:
            rounded = (value + (1 << (dropped - 1))).shift_right(dropped)
        elif rounding is Rounding.RND_CONV:
            floor = value.shift_right(dropped)
            rest = value[:dropped]
            half = 1 << (dropped - 1)
            round_up = (rest == half) & floor[0]  # a tie: to even
            if dropped > 1:  # with one dropped bit nothing lies above one half
                round_up = round_up | (rest > half)
            rounded = floor + round_up
        elif rounding is Rounding.STOCH:
            if draw is None:
                raise ValueError("a STOCH cast needs a draw")
            if dropped >= STOCH_BITS:
                offset = draw.shift_left(dropped - STOCH_BITS)
            else:
                offset = draw.shift_right(STOCH_BITS - dropped)
            rounded = (value + offset).shift_right(dropped)
        else:
            raise ValueError(f"unknown rounding mode {rounding!r}")
    return _overflow(rounded, fmt, overflow)


def _overflow(value, fmt: FixedFormat, overflow: Overflow):
    """§3: WRAP keeps the low ``word`` bits; SAT clamps to the format's range."""
    value = _extend(value, fmt.word)
    shape = value.shape()
    if overflow is Overflow.SAT:
        low = -(1 << (shape.width - 1)) if shape.signed else 0
        high = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
        # Compare only where the value can be out of range (no constant-result comparisons).
        if high > fmt.max_raw:
            value = Mux(value > fmt.max_raw, fmt.max_raw, value)
        if low < fmt.min_raw:
            value = Mux(value < fmt.min_raw, fmt.min_raw, value)
    elif overflow is not Overflow.WRAP:
        raise ValueError(f"unknown overflow mode {overflow!r}")
    bits = value[: fmt.word]
    return bits.as_signed() if fmt.signed else bits


def _activate(y, fmt: FixedFormat, activation: Activation):
    """§4.2 for relu, hardtanh and identity (tanh is a ROM)."""
    if activation is Activation.IDENTITY:
        return y
    if activation is Activation.RELU:
        return Mux(y[-1], 0, y) if fmt.signed else y
    if activation is Activation.HARDTANH:
        one = 1 << fmt.frac_bits
        low, high = max(-one, fmt.min_raw), min(one, fmt.max_raw)
        result = y
        if high < fmt.max_raw:
            result = Mux(y > high, high, result)
        if low > fmt.min_raw:
            result = Mux(y < low, low, result)
        return result
    raise ValueError(f"no combinational form for activation {activation!r}")


def _derivative(y, a, fmt: FixedFormat, activation: Activation):
    """The stored f' (§4.3): 0/1 for relu, hardtanh and identity; ``1 - a^2`` truncated for tanh."""
    one = 1 << fmt.frac_bits
    if activation is Activation.IDENTITY:
        return C(1, 1)
    if activation is Activation.RELU:
        return (y != 0) & ~y[-1] if fmt.signed else y != 0
    if activation is Activation.HARDTANH:
        above = (y > -one) if fmt.min_raw <= -one else C(1, 1)
        below = (y < one) if fmt.max_raw >= one else C(1, 1)
        return above & below
    if activation is Activation.TANH:
        complement = C(one * one, 2 * fmt.frac_bits + 2) - a * a
        fprime = _hw_cast(complement, 2 * fmt.frac_bits, FixedFormat(2, fmt.frac_bits), Rounding.TRN, Overflow.SAT)
        # 0 <= 1 - a^2 <= 1: the sign bit of SQ(2, f) is always clear.
        return fprime[: fmt.frac_bits + 1]
    raise ValueError(f"unknown activation {activation!r}")


def _draw_columns() -> tuple[int, ...]:
    """Column b of A^16: the state one draw (16 steps) after the basis state 1 << b (§5.1)."""
    columns = []
    for bit in range(LFSR_WIDTH):
        state = 1 << bit
        for _ in range(STOCH_BITS):
            state = lfsr_step(state)
        columns.append(state)
    return tuple(columns)


def _lfsr_draw(state):
    """The LFSR state one draw later: the GF(2) product A^16 s as an XOR network (§5.1)."""
    columns = _draw_columns()
    bits = []
    for out in range(LFSR_WIDTH):
        terms = [state[b] for b in range(LFSR_WIDTH) if (columns[b] >> out) & 1]
        bit = terms[0]
        for term in terms[1:]:
            bit = bit ^ term
        bits.append(bit)
    return Cat(*bits)
