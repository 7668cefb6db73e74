"""NeuronPE: one processing element serving K time-multiplexed neurons of an SSDFA layer.

Section numbers (§) refer to docs/arithmetic.md, the arithmetic contract this PE implements bit
for bit; docs/rtl.md has the architecture and the timing diagrams at more length.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import C, Cat, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ssdfa.model.arithmetic import (
    LFSR_WIDTH,
    STOCH_BITS,
    FixedFormat,
    Overflow,
    Rounding,
)
from ssdfa.model.layer_config import LayerConfig
from ssdfa.model.neuron_ops import Activation, tanh_table

from .building_blocks import equals, hw_cast, register, share, wire
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
    for tanh), the delta, and a forward accumulator, each quantity in a small bank of K words
    that behaves as K registers, reset included (see ``_Bank``). tanh is a ROM built from the
    model's ``tanh_table`` (§4.2). All formats and modes are elaboration parameters.

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
    weight_init : sequence of int, optional
        Raw weights (weight format) the weight memory holds from configuration on, in its word
        order (``k (N + 1) + j``; fewer words leave the rest 0): a design that starts trained.
        The host can still rewrite them.

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

    def __init__(self, *, config: LayerConfig, learning: bool | None = None, weight_init=None):
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
        init = [] if weight_init is None else [int(w) for w in weight_init]
        if len(init) > depth or any(not a.weight.min_raw <= w <= a.weight.max_raw for w in init):
            raise ValueError(f"weight_init must be at most {depth} raw values of the weight format {a.weight}")
        self._weight_memory = Memory(shape=format_shape(a.weight), depth=depth, init=init)
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
        # Per-neuron words live in small memories (one write port, one asynchronous read port),
        # not in K registers each: a simulator then updates one word per clock instead of
        # evaluating K multiplexers and K next-state functions (see ``_Bank``).
        accs = _Bank(m, "accs", format_shape(a.accumulator_format(N)), K, reset=False)
        banks = {}
        if learning:
            fprimes = banks[Space.DERIVATIVE] = _Bank(m, "fprimes", fprime_shape, K)
            deltas = banks[Space.DELTA] = _Bank(m, "deltas", format_shape(delta_fmt), K)
            if not output_layer:
                # Word k s + t holds b[k, t].
                feedback = banks[Space.FEEDBACK] = _Bank(m, "feedback", format_shape(a.feedback), K * S)
            if stoch:
                lfsrs = banks[Space.LFSR] = _Bank(m, "lfsrs", unsigned(LFSR_WIDTH), K, init=1)

        # -- control state --------------------------------------------------------------------
        # The registers with a reset are written through their `_next` signal (``register``).
        running, running_next = register(m, 1, "running")
        phase = Signal(Command, reset_less=True)  # read only together with `running`
        idle = wire(m, ~running, "idle")
        accept = wire(m, self.cmd.valid & idle, "accept")  # a command transfers
        m.d.comb += [self.busy.eq(running), self.cmd.ready.eq(idle)]
        with m.If(accept):
            m.d.sync += phase.eq(self.cmd.payload)
            if learning:
                # The fourth code of the 2-bit command is no phase: accepted and ignored.
                m.d.comb += running_next.eq(Value.cast(self.cmd.payload) != 3)
            else:
                m.d.comb += running_next.eq(equals(self.cmd.payload, Command.FORWARD))
        in_forward = wire(m, running & equals(phase, Command.FORWARD), "in_forward")
        in_update = wire(m, running & equals(phase, Command.UPDATE), "in_update") if learning else C(0, 1)
        in_error = wire(m, running & equals(phase, Command.ERROR), "in_error") if learning else C(0, 1)

        # -- stage A: issue (j, k) in input-major order, weight address k (N + 1) + j ----------
        a_active, a_active_next = register(m, 1, "a_active")
        # Counters and pipeline words that only matter while their stage is valid need no
        # reset (their stage's valid bit has one); fewer reset terms make a faster simulation.
        a_j = Signal(range(N + 1), reset_less=True)
        a_k = Signal(range(max(K, 2)), reset_less=True)
        a_addr = Signal(range(max(depth, 2)), reset_less=True)
        a_bias = wire(m, equals(a_j, N), "a_bias")
        a_last_k = wire(m, equals(a_k, K - 1), "a_last_k")
        # Forward stalls as a whole while an output waits for y.ready.
        c_valid, c_valid_next = register(m, 1, "c_valid")
        stall = wire(m, c_valid & ~self.y.ready, "stall")
        issue = wire(m, a_active & ~stall & (a_bias | self.x.valid), "issue")
        m.d.comb += self.x.ready.eq(a_active & ~stall & ~a_bias & a_last_k)
        with m.If(accept):
            m.d.comb += a_active_next.eq(equals(self.cmd.payload, Command.FORWARD))
            m.d.sync += [a_j.eq(0), a_k.eq(0), a_addr.eq(0)]
            if learning:
                with m.If(equals(self.cmd.payload, Command.UPDATE)):
                    m.d.comb += a_active_next.eq(1)
        with m.If(issue):
            with m.If(a_last_k):
                m.d.sync += [a_k.eq(0), a_j.eq(a_j + 1), a_addr.eq(a_j + 1)]
                with m.If(a_bias):
                    m.d.comb += a_active_next.eq(0)
            with m.Else():
                m.d.sync += [a_k.eq(a_k + 1), a_addr.eq(a_addr + (N + 1))]

        # The bias input is exactly 1: raw 2^f_x, one bit wider than x (§4.1, §7).
        x_op_shape = signed(act_fmt.word + 1) if act_fmt.signed else unsigned(act_fmt.word + 1)
        b_valid, b_valid_next = register(m, 1, "b_valid")
        b_bias, b_first, b_last = (Signal(reset_less=True) for _ in range(3))
        b_k = Signal(range(max(K, 2)), reset_less=True)
        b_addr = Signal(range(max(depth, 2)), reset_less=True)
        b_x = Signal(x_op_shape, reset_less=True)
        with m.If(~stall):
            m.d.comb += b_valid_next.eq(issue)
            m.d.sync += [
                b_bias.eq(a_bias),
                b_first.eq(equals(a_j, 0)),
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
            # The deltas are read by UPDATE (neuron b_k) and written by ERROR (neuron e_k).
            delta_sel = deltas.data
            mul_shape = _union_shape(w_shape, delta_sel.shape())
            mul_a = Signal(mul_shape)
            m.d.comb += mul_a.eq(Mux(in_update, delta_sel, w_rd.data))
        else:
            mul_a = w_rd.data
        product = wire(m, mul_a * b_x, "product")  # exact: W x (frac f_w + f_x) or delta x (frac f_d + f_x)
        acc_sum = wire(m, accs.data + product, "acc_sum")
        b_mac = wire(m, in_forward & b_valid & ~stall, "b_mac")
        accs.connect(m, read_addr=b_k, write_addr=b_k, write_data=Mux(b_first, product, acc_sum),
                     write_en=b_mac & ~b_bias)
        # §4.1: one cast of the exact sum, bias included.
        y_next = wire(m, hw_cast(acc_sum, w_fmt.frac_bits + act_fmt.frac_bits, act_fmt, a.rounding,
                                 a.overflow, m=m, name="y_cast"), "y_next")

        # -- stage C: activation and the output stream ----------------------------------------
        # y.payload means something only while y.valid (a tanh ROM's output is not reset either).
        c_y = Signal(act_shape, reset_less=True)
        c_k = Signal(range(max(K, 2)), reset_less=True)
        c_last = Signal(reset_less=True)
        with m.If(~stall):
            m.d.comb += c_valid_next.eq(b_mac & b_bias)
            m.d.sync += [c_y.eq(y_next), c_k.eq(b_k), c_last.eq(b_last)]
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
        y_done = wire(m, c_valid & self.y.ready, "y_done")
        with m.If(y_done & c_last):
            m.d.comb += running_next.eq(0)
        if learning:
            fprime_next = wire(m, _derivative(m, c_y, c_a, act_fmt, act), "fprime_next")

        # -- LFSR: one draw = 16 steps (§5.1), in a few word operations (``lfsr_draw``) -------
        draw = None
        if learning:
            e_k = Signal(range(max(K, 2)), reset_less=True)
        if stoch:
            lfsr_k = wire(m, Mux(in_error, e_k, b_k), "lfsr_k")
            lfsr_sel = lfsrs.data
            lfsr_next = wire(m, lfsr_draw(m, lfsr_sel), "lfsr_next")
            draw = lfsr_next[:STOCH_BITS]
            lfsr_advance = Signal()

        if learning:
            # -- UPDATE write-back (§7) ---------------------------------------------------------
            step = wire(m, hw_cast(
                product,
                delta_fmt.frac_bits + act_fmt.frac_bits + a.shift,
                w_fmt,
                a.update_rounding,
                a.overflow,
                draw,
                m=m,
                name="step_cast",
            ), "step")
            w_new = wire(m, hw_cast(w_rd.data - step, w_fmt.frac_bits, w_fmt, Rounding.TRN, a.overflow,
                                    m=m, name="w_cast"), "w_new")
            b_write = wire(m, in_update & b_valid, "b_write")
            with m.If(b_write & b_last):
                m.d.comb += running_next.eq(0)

            # -- ERROR (§6.1, §6.2) --------------------------------------------------------------
            e_t = Signal(range(max(S, 2)), reset_less=True)
            # The feedback word of (e_k, e_t): k s + t, one more per error word.
            e_addr = Signal(range(max(K * S, 2)), reset_less=True)
            e_last_t = wire(m, equals(e_t, S - 1), "e_last_t")
            m.d.comb += self.e.ready.eq(in_error)
            e_take = wire(m, in_error & self.e.valid, "e_take")
            with m.If(accept):
                m.d.sync += [e_k.eq(0), e_t.eq(0), e_addr.eq(0)]
            with m.If(e_take):
                m.d.sync += e_addr.eq(e_addr + 1)
                with m.If(e_last_t):
                    m.d.sync += [e_t.eq(0), e_k.eq(e_k + 1)]
                    with m.If(equals(e_k, K - 1)):
                        m.d.comb += running_next.eq(0)
                with m.Else():
                    m.d.sync += e_t.eq(e_t + 1)
            if output_layer:
                delta_next = self.e.payload
            else:
                b_sel = feedback.data
                b_term = wire(m, b_sel * self.e.payload, "b_term")
                if S > 1:
                    partial = Signal(format_shape(_exact_sum_format(a.feedback, a.error, S)), reset_less=True)
                    with m.If(e_take):
                        m.d.sync += partial.eq(Mux(equals(e_t, 0), b_term, partial + b_term))
                    received = wire(m, Mux(equals(e_t, 0), b_term, partial + b_term), "received")
                else:
                    received = b_term
                fprime_sel = fprimes.data
                if act is Activation.TANH:
                    delta_product = received * fprime_sel
                else:
                    delta_product = Mux(fprime_sel[0], received, 0)
                delta_next = wire(m, hw_cast(
                    delta_product,
                    a.feedback.frac_bits + a.error.frac_bits + f_fprime,
                    a.delta,
                    a.update_rounding,
                    a.overflow,
                    draw,
                    m=m,
                    name="delta_cast",
                ), "delta_next")
            delta_write = wire(m, e_take & e_last_t, "delta_write")
            if stoch:
                # §5.3: the delta draw (hidden layers only), then one per weight in address order.
                m.d.comb += lfsr_advance.eq(b_write | (C(0, 1) if output_layer else delta_write))
        else:
            b_write = C(0, 1)
            w_new = C(0, 1)

        # -- host port -------------------------------------------------------------------------
        host = self.host
        host_write = wire(m, host.w_en & idle, "host_write")
        # Writes beyond the weight memory are ignored (compare only if the address can be there).
        in_memory = (host.addr < depth) if depth < (1 << len(host.addr)) else C(1, 1)
        m.d.comb += [
            w_wr.addr.eq(Mux(idle, host.addr, b_addr)),
            w_wr.data.eq(Mux(idle, host.w_data[: w_fmt.word], w_new)),
            w_wr.en.eq(Mux(idle, host_write & equals(host.space, Space.WEIGHT) & in_memory, b_write)),
        ]
        # The banks: the host while idle (writes beyond a bank are ignored), the phases while
        # running (the phases never write while idle, the host never while running).
        if learning:
            functional = {
                Space.DERIVATIVE: (e_k, c_k, fprime_next, y_done),
                Space.DELTA: (b_k, e_k, delta_next, delta_write),
            }
            if not output_layer:
                functional[Space.FEEDBACK] = (e_addr, e_addr, C(0, 1), C(0, 1))
            if stoch:
                functional[Space.LFSR] = (lfsr_k, lfsr_k, lfsr_next, lfsr_advance)
        host_read = {}
        for space, bank in banks.items():
            read_addr, write_addr, write_data, write_en = functional[space]
            in_bank = (host.addr < bank.count) if bank.count < (1 << len(host.addr)) else C(1, 1)
            host_addr = host.addr[: len(bank.write.addr)]
            bank.connect(
                m,
                read_addr=Mux(idle, host_addr, read_addr),
                write_addr=Mux(idle, host_addr, write_addr),
                write_data=Mux(idle, host.w_data[: len(bank.data)], write_data),
                write_en=Mux(idle, host_write & equals(host.space, space) & in_bank, write_en),
            )
            host_read[space] = (in_bank, bank.data)
        r_space, r_space_next = register(m, Shape.cast(Space), "r_space")  # raw Space values
        # Seen only after a read of another space than WEIGHT (r_space resets to WEIGHT), and
        # that read sets it: no reset needed.
        r_word = Signal(len(host.r_data), reset_less=True)
        with m.If(host.r_en & idle):
            m.d.comb += r_space_next.eq(host.space)
            m.d.sync += r_word.eq(0)
            for space, (in_bank, data) in host_read.items():
                with m.If(equals(host.space, space) & in_bank):
                    m.d.sync += r_word.eq(data)
        m.d.comb += host.r_data.eq(Mux(equals(r_space, Space.WEIGHT), w_rd.data, r_word))
        return m


# ------------------------------------------------------------------------------------------
# Per-neuron storage
# ------------------------------------------------------------------------------------------


class _Bank:
    """``count`` per-neuron words with the behaviour of ``count`` registers, stored in a memory.

    One write port and one asynchronous read port (``data`` shows word ``read_addr`` in the same
    clock, a write lands at the clock edge), so a simulator updates one word per write instead of
    evaluating a next-state function and a multiplexer input for every word on every clock.

    With ``reset`` the bank keeps a register's reset too: a ``loaded`` bit per word, cleared by
    the domain's reset and set by a write, makes a word that was not written since reset read as
    ``init`` (the memory itself is not reset).
    """

    def __init__(self, m: Module, name: str, shape, count: int, *, init: int = 0, reset: bool = True):
        self.count = count
        self.memory = Memory(shape=shape, depth=max(2, count), init=[])  # no zero-bit address
        m.submodules[name] = self.memory
        self.read = self.memory.read_port(domain="comb")
        self.write = self.memory.write_port()
        self.data = Signal(shape, name=f"{name}_data")
        if reset:
            loaded, loaded_next = register(m, count, f"{name}_loaded")
            with m.If(self.write.en):
                m.d.comb += loaded_next.eq(loaded | (C(1, count) << self.write.addr)[:count])
            m.d.comb += self.data.eq(Mux((loaded >> self.read.addr)[0], self.read.data, init))
        else:
            m.d.comb += self.data.eq(self.read.data)

    def connect(self, m: Module, *, read_addr, write_addr, write_data, write_en) -> None:
        m.d.comb += [
            self.read.addr.eq(read_addr),
            self.write.addr.eq(write_addr),
            self.write.data.eq(write_data),
            self.write.en.eq(write_en),
        ]


# ------------------------------------------------------------------------------------------
# Arithmetic building blocks (combinational), each the hardware form of one rule of the contract
# (the cast itself is ``building_blocks.hw_cast``)
# ------------------------------------------------------------------------------------------


def _union_shape(*shapes) -> Shape:
    """The smallest shape holding every value of each of ``shapes``."""
    shapes = [Shape.cast(s) for s in shapes]
    if any(s.signed for s in shapes):
        return signed(max(s.width + (0 if s.signed else 1) for s in shapes))
    return unsigned(max(s.width for s in shapes))


def _exact_sum_format(fmt_a: FixedFormat, fmt_b: FixedFormat, terms: int) -> FixedFormat:
    """The format of an exact sum of ``terms`` products of ``fmt_a`` and ``fmt_b`` values (§1.1)."""
    word = fmt_a.word + fmt_b.word + max(0, (terms - 1).bit_length())
    return FixedFormat(word - fmt_a.frac_bits - fmt_b.frac_bits, fmt_a.frac_bits + fmt_b.frac_bits)


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


def _derivative(m: Module, y, a, fmt: FixedFormat, activation: Activation):
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
        fprime = hw_cast(complement, 2 * fmt.frac_bits, FixedFormat(2, fmt.frac_bits), Rounding.TRN,
                         Overflow.SAT, m=m, name="fprime_cast")
        # 0 <= 1 - a^2 <= 1: the sign bit of SQ(2, f) is always clear.
        return fprime[: fmt.frac_bits + 1]
    raise ValueError(f"unknown activation {activation!r}")


def lfsr_draw(m: Module, state):
    """The LFSR state one draw (16 steps, §5.1) after the 32-bit ``state``, in word operations.

    A draw shifts the state left by 16 and brings in 16 new bits ``n_1 .. n_16`` (``n_1`` ends
    at bit 15, ``n_16`` at bit 0). With ``N[p]`` the bit that ends at position ``p`` and
    ``N[16], N[17] = s[0], s[1]`` (the state's own bits 0 and 1, which the first two steps read),
    the taps 32, 22, 2, 1 give ``N[p] = s[16+p] ^ s[6+p] ^ N[p+1] ^ N[p+2]``: the 18-bit word
    ``N`` solves ``N = U ^ (N >> 1) ^ (N >> 2)`` over GF(2), with ``U[p] = s[16+p] ^ s[6+p]``
    below bit 16 and ``U[16], U[17] = s[0] ^ s[1], s[1]`` (``N[16], N[17]`` written in the same
    form, with zeros above). Multiplying by ``1 + x`` turns the divisor ``1 + x + x^2`` into
    ``1 + x^3``, whose inverse is ``1 + x^3 + x^6 + ...``: three shift-XOR doublings. This is the
    same GF(2) map as ``A^16`` (``model.arithmetic.lfsr_step`` 16 times), with a few word
    operations instead of a network of single-bit XORs.
    """
    state = share(m, state, "lfsr_state")
    u = wire(m, Cat(state[16:32] ^ state[6:22], state[0] ^ state[1], state[1]), "lfsr_u")
    y = wire(m, u ^ u.shift_right(1), "lfsr_y")
    w = wire(m, y ^ y.shift_right(3), "lfsr_w3")
    w = wire(m, w ^ w.shift_right(6), "lfsr_w6")
    w = w ^ w.shift_right(12)
    return Cat(w[:STOCH_BITS], state[: LFSR_WIDTH - STOCH_BITS])
