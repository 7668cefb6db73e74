"""NeuronPE: one processing element serving K time-multiplexed neurons of an SSDFA layer.

Section numbers (§) refer to docs/arithmetic.md, the arithmetic contract this PE implements bit
for bit; docs/rtl.md has the architecture and the timing diagrams at more length.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import C, Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
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

from .building_blocks import below, equals, extend, hw_cast, hw_saturate, register, round_offset, share, wire
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

#: Yosys's attribute for a memory whose reads never meet a write to the same word in the same
#: clock: no read-during-write logic is built behind its read port (a LUT level after the block
#: RAM on ECP5, whose clock-to-out already takes most of a clock).
NO_RW_CHECK = {"no_rw_check": 1}

#: Cycles from a command transfer to the next possible one, beyond the per-item work.
#: Stages A (issue), B (read), O (operands), M (multiply), D, E (accumulate), R (round),
#: S (saturate), C (output).
FORWARD_LATENCY = 9
#: Stages A (take), B (read), O, M (b e), D (sum, draw), E, R (f' product, round), S (saturate,
#: delta written).
ERROR_LATENCY = 8
#: Stages A, B, O, M (delta x), D (draw), E, R (round), S (saturate), U (subtract), V (saturate,
#: write back).
UPDATE_LATENCY = 10


class PhaseCycles(NamedTuple):
    """Clock cycles of each phase, from a command transfer to the next possible command transfer,
    with every stream valid/ready whenever the PE wants it (no stalls)."""

    forward: int  #: K (N + 1) + 9
    error: int  #: K s + 8 (K + 8 for an output layer, s = 1)
    update: int  #: K (N + 1) + 10

    @property
    def per_sample(self) -> int:
        """One training sample: 2 K (N + 1) + K s + 27."""
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
    LFSR (§5; only when ``update_rounding`` is STOCH), the stored derivative ``f'`` (§4.3; one
    bit for relu/hardtanh, ``f_a + 1`` bits for tanh), the delta, and a forward accumulator,
    each quantity in a small memory of K words with a synchronous read port (block RAM or LUT
    RAM on an FPGA) that behaves as K registers, reset included (see ``_Bank``); with STOCH the
    accumulators and the LFSR states, used in different phases, share one memory
    (``_SharedBanks``). tanh is a ROM built from the
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
        ``r_en``; a write lands one clock after ``w_en`` (docs/rtl.md §1.3).
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
        from the ERROR phase's first clock until its last word has been taken.

    Phases
    ------
    Cycle 0 is the clock whose edge transfers the command; every stream is valid/ready whenever
    the PE wants it. The diagrams show K = 2, N = 2, s = 1 (``Wkj``: neuron k, input j; j = 2 is
    the bias). ``phase_cycles`` gives the lengths.

    Every phase runs through one pipeline of single-register stages, one item (a MAC, an error
    word or a weight update) entering per clock (docs/rtl.md §1.4 names what each stage does):
    A issue, B block-RAM read, O operands, M multiply, D and E accumulate (FORWARD) or draw
    (UPDATE, ERROR), R round, S saturate, then C output (FORWARD) or U subtract and V write
    back (UPDATE). An item issued in cycle c is in stage B in c + 1, O c + 2, M c + 3, D c + 4,
    E c + 5, R c + 6, S c + 7, C or U c + 8 and V c + 9.

    FORWARD (§4.1-§4.3), ``K (N + 1) + 9`` clocks. Stage A issues the weight read of ``W[k, j]``
    in input-major order; M multiplies it by ``x_j``, D and E add the product to ``acc_k``
    (restarting at ``j = 0``); for the bias the exact sum goes on, R and S cast it to ``y``
    (``rounding``, ``overflow``) and C presents ``(y, a = f(y))`` on ``y`` and stores ``f'_k``
    when it transfers. ``y_k`` is valid at cycle ``K N + k + 9``. ``y.ready`` low stalls
    every stage::

        cycle       0    1    2    3    4    5    6    7    8    9    10   11   12   13   14   15
        cmd.valid   1
        busy        0    1    1    1    1    1    1    1    1    1    1    1    1    1    1    0
        x.payload        x0   x0   x1   x1
        x.valid          1    1    1    1    0    0
        x.ready          0    1    0    1    0    0
        A: read          W00  W10  W01  W11  W02  W12
        E: sum                                    acc0 acc1 acc0 acc1 y0   y1   (y_k: exact sum)
        C: y.valid                                                                   1    1
        y.payload                                                                    y0,a0 y1,a1  (f'_k stored)

    ERROR (§6.1, §6.2; §5.3 step 1), ``K s + 8`` clocks, one ``e`` word per clock, ``e.ready``
    high until the last word is taken. Each word goes down the pipeline as a product ``b e``
    (relu, hardtanh: ``(b f'_k) e``, ``f'`` read in A and masking ``b`` in O); a neuron's ``s``
    products are summed exactly in D, which also draws once from the neuron's LFSR (STOCH) with
    its last word (the new state is written back in E, or in D when K = 1); E multiplies by a
    tanh ``f'_k`` and R and S cast ``delta_k = cast((sum_t b_kt e_kt) f'_k, f_b + f_e + f_f',
    delta format, update_rounding, overflow)``, written at the end of S. An output layer
    (identity, s = 1) stores ``delta_k = e_k``: no cast, no draw::

        cycle       0    1    2    3    4    5    6    7    8    9    10
        cmd.valid   1
        busy        0    1    1    1    1    1    1    1    1    1    0
        e.ready          1    1    0
        e.payload        e0   e1
        delta_k                                             d0   d1   (written at the edge ending the clock)

    UPDATE (§7; §5.3 step 2), ``K (N + 1) + 10`` clocks, ``x`` streamed again as in FORWARD.
    Nine clocks after the read of ``W[k, j]`` the PE writes ``cast(W - cast(delta_k x_j,
    f_d + f_x + shift, weight format, update_rounding, overflow), TRN, overflow)``: M
    multiplies, D draws from neuron k's LFSR when STOCH (E writes the new state back, D when
    K = 1), R rounds (and reads ``W[k, j]`` again), S saturates, U subtracts, V saturates and
    writes. The three phases' casts share one rounding adder and one saturation (docs/rtl.md
    §1.4). A neuron's draws thus follow its delta draw in address order, bias last::

        cycle       0    1    2    3    4    5    6    7    8    9    10   11   12   13   14   15   16
        cmd.valid   1
        busy        0    1    1    1    1    1    1    1    1    1    1    1    1    1    1    1    0
        x.payload        x0   x0   x1   x1
        x.ready          0    1    0    1    0    0
        A: read          W00  W10  W01  W11  W02  W12
        D: draw                              n0   n1   n0   n1   n0   n1   (STOCH only)
        V: write                                                      W00' W10' W01' W11' W02' W12'

    One training sample is therefore ``2 K (N + 1) + K s + 27`` clocks.

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
        # The phases never read a weight in the clock it is written (UPDATE reads each weight
        # nine clocks before it writes it back), so synthesis needs no read-during-write logic
        # behind the block RAM (``no_rw_check``; docs/rtl.md §1.3 for the host port).
        self._weight_memory = Memory(shape=format_shape(a.weight), depth=depth, init=init, attrs=NO_RW_CHECK)
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
        k_shape = range(max(K, 2))
        addr_shape = range(max(depth, K * S, 2))  # weight address, or feedback word in ERROR

        # -- storage ------------------------------------------------------------------------
        m.submodules.weights = weights = self._weight_memory
        w_rd = weights.read_port()
        w_wr = weights.write_port()
        # Per-neuron words live in small memories with a synchronous read port (block RAM, LUT
        # RAM), not in K registers each (see ``_Bank``). A bank that a stage reads and writes
        # back for the same neuron (accumulators, LFSR states) is read one stage (LFSR) or two
        # (accumulators) ahead of its write; where a neuron's next item can read in the clock of
        # the write (K = 1, or K = 2 for the accumulators) the read port is transparent to it.
        # Otherwise the write always comes first, and a plain port saves the bypass logic (a
        # comparator and a multiplexer per word bit).
        acc_shape = format_shape(a.accumulator_format(N))
        shared = None
        if stoch:
            # FORWARD uses the accumulators and no LFSR state, ERROR and UPDATE the reverse: one
            # memory holds both banks (one block RAM fewer per 16 bits of LFSR state). Its one read
            # port is transparent where either bank needs it (K <= 2 covers the LFSR's K = 1).
            shared = _SharedBanks(m, "accs_lfsrs", [("accs", acc_shape, K, {"reset": False}),
                                                   ("lfsrs", unsigned(LFSR_WIDTH), K, {"init": 1})],
                                  transparent=K <= 2)
            accs = shared.first
        else:
            accs = _Bank(m, "accs", acc_shape, K, reset=False, transparent=K <= 2)
        banks = {}
        if learning:
            fprimes = banks[Space.DERIVATIVE] = _Bank(m, "fprimes", fprime_shape, K)
            deltas = banks[Space.DELTA] = _Bank(m, "deltas", format_shape(delta_fmt), K)
            if not output_layer:
                # Word k s + t holds b[k, t].
                feedback = banks[Space.FEEDBACK] = _Bank(m, "feedback", format_shape(a.feedback), K * S)
            if stoch:
                lfsrs = banks[Space.LFSR] = shared.second

        # -- control state --------------------------------------------------------------------
        # The registers with a reset are written through their `_next` signal (``register``).
        running, running_next = register(m, 1, "running")
        idle = wire(m, ~running, "idle")
        accept = wire(m, self.cmd.valid & idle, "accept")  # a command transfers
        m.d.comb += [self.busy.eq(running), self.cmd.ready.eq(idle)]
        with m.If(accept):
            if learning:
                # The fourth code of the 2-bit command is no phase: accepted and ignored.
                m.d.comb += running_next.eq(Value.cast(self.cmd.payload) != 3)
            else:
                m.d.comb += running_next.eq(equals(self.cmd.payload, Command.FORWARD))
        # The phase, decoded into one register each, high exactly while `running` and in it:
        # every stage reads these, and a register is the shortest path there is.
        in_phase, in_phase_next = {}, {}
        for command in (Command.FORWARD, Command.ERROR, Command.UPDATE) if learning else (Command.FORWARD,):
            flag, flag_next = register(m, 1, f"in_{command.name.lower()}")
            in_phase[command], in_phase_next[command] = flag, flag_next
            m.d.comb += flag_next.eq(running_next & Mux(accept, equals(self.cmd.payload, command), flag))
        in_forward = in_phase[Command.FORWARD]
        in_update = in_phase.get(Command.UPDATE, C(0, 1))
        in_error = in_phase.get(Command.ERROR, C(0, 1))

        # The pipeline (docs/rtl.md §1.4): one item per clock, every stage one register deep.
        #   A issue    counters, weight address, block-RAM read (ERROR: takes an error word)
        #   B read     the block RAM's word is registered as it is; delta, feedback, f' banks read
        #   O operands the multiplier's operands are registered
        #   M multiply the product is registered; the LFSR bank is read
        #   D, E       one adder: FORWARD accumulates (low half, high half and write-back),
        #              UPDATE/ERROR add their product to 0 (ERROR: a neuron's words summed
        #              first; tanh's f' in E); LFSR draw in D; the rounding offset in E
        #   R round    one rounding adder for the three casts (y, step, delta); UPDATE re-reads W
        #   S saturate the cast's overflow; ERROR writes the delta
        #   C / U      FORWARD: (y, a) on the stream; UPDATE: subtract the step from the weight
        #   V          UPDATE: saturate the new weight and write it back
        # A stage's registers are named after it (`m_x` feeds the multiplier in stage M).
        # Forward stalls as a whole while an output waits for y.ready; nothing else stalls.
        c_valid, c_valid_next = register(m, 1, "c_valid")
        stall = wire(m, c_valid & ~self.y.ready, "stall")
        advance = wire(m, ~stall, "advance")

        # -- stage A: issue (j, k) in input-major order, weight address k (N + 1) + j ----------
        a_active, a_active_next = register(m, 1, "a_active")
        # Counters and pipeline words that only matter while their stage is valid need no
        # reset (their stage's valid bit has one); fewer reset terms make a faster simulation.
        a_j = Signal(range(N + 1), reset_less=True)
        a_k = Signal(k_shape, reset_less=True)
        a_addr = Signal(addr_shape, reset_less=True)
        a_bias = wire(m, equals(a_j, N), "a_bias")
        a_last_k = wire(m, equals(a_k, K - 1), "a_last_k")
        issue = wire(m, a_active & ~in_error & advance & (a_bias | self.x.valid), "issue")
        m.d.comb += self.x.ready.eq(a_active & ~in_error & advance & ~a_bias & a_last_k)
        with m.If(accept):
            m.d.comb += a_active_next.eq(equals(self.cmd.payload, Command.FORWARD))
            m.d.sync += [a_j.eq(0), a_k.eq(0), a_addr.eq(0)]
            if learning:
                # ERROR keeps `a_active` for as long as it takes error words.
                with m.If(equals(self.cmd.payload, Command.UPDATE) | equals(self.cmd.payload, Command.ERROR)):
                    m.d.comb += a_active_next.eq(1)
        with m.If(issue):
            with m.If(a_last_k):
                m.d.sync += [a_k.eq(0), a_j.eq(a_j + 1), a_addr.eq(a_j + 1)]
                with m.If(a_bias):
                    m.d.comb += a_active_next.eq(0)
            with m.Else():
                m.d.sync += [a_k.eq(a_k + 1), a_addr.eq(a_addr + (N + 1))]

        # ERROR's counters: neuron e_k, connection e_t, feedback word e_addr = k s + t.
        if learning:
            e_k = Signal(k_shape, reset_less=True)
            e_t = Signal(range(max(S, 2)), reset_less=True)
            # With s = 1 the feedback word is the neuron: one counter.
            e_addr = e_k if S == 1 else Signal(range(max(K * S, 2)), reset_less=True)
            e_last_t = wire(m, equals(e_t, S - 1), "e_last_t")
            e_last = wire(m, e_last_t & equals(e_k, K - 1), "e_last")
            m.d.comb += self.e.ready.eq(in_error & a_active)
            e_take = wire(m, in_error & a_active & self.e.valid, "e_take")
            with m.If(accept):
                m.d.sync += [e_k.eq(0), e_t.eq(0), e_addr.eq(0)]
            with m.If(e_take):
                if S > 1:
                    m.d.sync += e_addr.eq(e_addr + 1)
                with m.If(e_last_t):
                    m.d.sync += [e_t.eq(0), e_k.eq(e_k + 1)]
                    with m.If(e_last):
                        m.d.comb += a_active_next.eq(0)
                with m.Else():
                    m.d.sync += e_t.eq(e_t + 1)
        else:
            e_take = C(0, 1)

        # The bias input is exactly 1: raw 2^f_x, one bit wider than x only where the
        # activation format cannot hold it (§4.1, §7).
        x_op_shape = act_shape
        if (1 << act_fmt.frac_bits) > act_fmt.max_raw:
            x_op_shape = signed(act_fmt.word + 1) if act_fmt.signed else unsigned(act_fmt.word + 1)
        if learning:
            # ERROR multiplies b e on the same multiplier: its second operand is the error word.
            x_op_shape = _union_shape(x_op_shape, format_shape(a.error))
        # relu and hardtanh store f' as one bit: ERROR multiplies (b f') e, f' masking b in front
        # of the multiplier (exact: f' is 0 or 1 for the neuron's every connection). tanh's
        # multi-bit f' multiplies the sum in stage E instead.
        mask_fprime = learning and not output_layer and act is not Activation.TANH

        # -- A -> B ----------------------------------------------------------------------------
        # `neuron_end`: the item that completes a neuron: the bias (FORWARD, UPDATE) or the
        # neuron's last error word (ERROR). `first`: j = 0, or t = 0. `last`: the phase's last item.
        b_valid, b_valid_next = register(m, 1, "b_valid")
        b_first, b_neuron_end, b_last = (Signal(name=f"b_{n}", reset_less=True)
                                         for n in ("first", "neuron_end", "last"))
        # `restart`: the adder in D starts from 0 (FORWARD's j = 0, every UPDATE and ERROR item),
        # registered with the item so that no phase decoding sits in front of the adder.
        b_restart = Signal(name="b_restart", reset_less=True)
        b_k = Signal(k_shape, reset_less=True)
        b_addr = Signal(addr_shape, reset_less=True)
        b_x = Signal(x_op_shape, reset_less=True)
        with m.If(advance):
            m.d.comb += b_valid_next.eq(issue | e_take)
            m.d.sync += [
                b_first.eq(equals(a_j, 0)),
                b_restart.eq(equals(a_j, 0) | ~in_forward if learning else equals(a_j, 0)),
                b_neuron_end.eq(a_bias),
                b_last.eq(a_bias & a_last_k),
                b_k.eq(a_k),
                b_addr.eq(a_addr),
                b_x.eq(Mux(a_bias, 1 << act_fmt.frac_bits, self.x.payload)),
            ]
            if learning:
                with m.If(in_error):
                    m.d.sync += [
                        b_first.eq(equals(e_t, 0)),
                        b_neuron_end.eq(e_last_t),
                        b_last.eq(e_last),
                        b_k.eq(e_k),
                        b_addr.eq(e_addr),
                        b_x.eq(self.e.payload),
                    ]

        def follow(prefix, source, valid):
            """The stage after ``source``: its valid bit (next value ``valid``) and its copies of
            the item's k, address and flags, loaded while the pipeline advances."""
            stage = {}
            for name, value in source.items():
                stage[name] = Signal.like(value, name=f"{prefix}_{name}", reset_less=True)
                with m.If(advance):
                    m.d.sync += stage[name].eq(value)
            v, v_next = register(m, 1, f"{prefix}_valid")
            with m.If(advance):
                m.d.comb += v_next.eq(valid)
            return v, stage

        # -- stage B: the block RAM's word arrives and is registered as it is ------------------
        # (its clock-to-out gets a stage of its own; nothing else sits in front of `o_weight`).
        # UPDATE reads the old weight a second time, in stage R, so that `o_weight` holds it in
        # U for the subtraction instead of a register per stage carrying it there.
        o_weight = Signal(w_shape, name="o_weight", reset_less=True)
        o_x = Signal(x_op_shape, name="o_x", reset_less=True)
        if mask_fprime:
            # relu's and hardtanh's f' (one bit, read in A) registered as it is, so that masking
            # b in front of the multiplier reads a flip-flop (from the bank's read port it was
            # the learning PE's slowest path on an iCE40).
            o_fprime = Signal(name="o_fprime", reset_less=True)
            with m.If(advance):
                m.d.sync += o_fprime.eq(fprimes.data[0])
        with m.If(advance):
            m.d.sync += [o_weight.eq(w_rd.data), o_x.eq(b_x)]
        b_item = {"k": b_k, "addr": b_addr, "first": b_first, "restart": b_restart, "neuron_end": b_neuron_end,
                  "last": b_last}
        o_valid, o_item = follow("o", b_item, b_valid)

        # -- stage O: the multiplier's operands, registered ------------------------------------
        # FORWARD W x, UPDATE delta x, ERROR b e (the delta, feedback and f' banks are read in B).
        if learning:
            mul_a_shapes = [w_shape, format_shape(delta_fmt)]
            if not output_layer:
                mul_a_shapes.append(format_shape(a.feedback))
            m_a = Signal(_union_shape(*mul_a_shapes), name="m_a", reset_less=True)
            if output_layer:
                b_factor = C(1, 2)  # the error word times 1 is the delta (§6.2)
            elif mask_fprime:
                b_factor = Mux(o_fprime, feedback.data, 0)
            else:
                b_factor = feedback.data
            operand = Mux(in_update, deltas.data, Mux(in_error, b_factor, o_weight))
        else:
            m_a = Signal(w_shape, name="m_a", reset_less=True)
            operand = o_weight
        m_x = Signal(x_op_shape, name="m_x", reset_less=True)
        with m.If(advance):
            m.d.sync += [m_a.eq(operand), m_x.eq(o_x)]
        m_valid, m_item = follow("m", o_item, o_valid)

        # -- stage M: multiply -----------------------------------------------------------------
        product = wire(m, m_a * m_x, "product")  # exact: W x, delta x or b e
        d_product = Signal(product.shape(), name="d_product", reset_less=True)
        with m.If(advance):
            m.d.sync += d_product.eq(product)
        d_valid, d_item = follow("d", m_item, m_valid)

        # -- stages D and E: one adder for every phase ------------------------------------------
        # FORWARD: acc_k (read in M through the transparent port) + W x, the first input
        # replacing it. UPDATE and ERROR add their product to 0, so that it reaches R through
        # the same registers (an SDFA neuron's s error products are summed first, in D).
        # With K >= 2 a neuron's next MAC is at least two clocks later, so the sum takes two
        # stages, the low half in D (with its carry) and the high half in E, which writes it
        # back: no carry chain longer than half the accumulator. With K = 1 the whole sum is in
        # D, which writes it back for the next clock's MAC of the same neuron.
        addend = d_product
        if learning and S > 1:
            # SDFA: a neuron's s products summed exactly first (§6.1).
            partial = Signal(format_shape(_exact_sum_format(a.feedback, a.error, S)), name="partial",
                             reset_less=True)
            received = wire(m, Mux(d_item["first"], d_product, partial + d_product), "received")
            with m.If(in_error & d_valid):
                m.d.sync += partial.eq(received)
            addend = wire(m, Mux(in_error, received, d_product), "addend")
        acc_shape = accs.data.shape()
        # The accumulator's format holds every exact sum of the forward pass (§4.1), so the sum
        # needs no carry beyond it; a wider product (UPDATE, ERROR) is only added to 0.
        sum_shape = _union_shape(acc_shape, addend.shape())
        sum_width = sum_shape.width
        acc_in = wire(m, Mux(d_item["restart"], 0, accs.data), "acc_in")
        d_mac = wire(m, in_forward & d_valid & advance & ~d_item["neuron_end"], "d_mac")
        e_valid, e_item = follow("e", d_item, d_valid)
        if K == 1:
            acc_sum = wire(m, acc_in + addend, "acc_sum")
            e_exact_sum = Signal(acc_sum.shape(), name="e_exact_sum", reset_less=True)
            with m.If(advance):
                m.d.sync += e_exact_sum.eq(acc_sum)
            accs.connect(m, read_addr=m_item["k"], read_en=advance, write_addr=d_item["k"],
                         write_data=acc_sum, write_en=d_mac)
            exact_sum = e_exact_sum
        else:
            half = sum_width // 2
            acc_wide = wire(m, extend(acc_in, sum_width), "acc_wide")
            product_wide = wire(m, extend(addend, sum_width), "product_wide")
            acc_low = wire(m, acc_wide[:half] + product_wide[:half], "acc_low")  # with its carry out
            e_low = Signal(half + 1, name="e_acc_low", reset_less=True)
            e_acc_high = Signal(sum_width - half, name="e_acc_high", reset_less=True)
            e_product_high = Signal(sum_width - half, name="e_product_high", reset_less=True)
            with m.If(advance):
                m.d.sync += [e_low.eq(acc_low), e_acc_high.eq(acc_wide[half:]),
                             e_product_high.eq(product_wide[half:])]
            acc_high = wire(m, (e_acc_high + e_product_high + e_low[half])[: sum_width - half], "acc_high")
            acc_sum = Cat(e_low[:half], acc_high)
            if sum_shape.signed:
                acc_sum = acc_sum.as_signed()
            acc_sum = wire(m, acc_sum, "acc_sum")
            e_mac = wire(m, in_forward & e_valid & advance & ~e_item["neuron_end"], "e_mac")
            accs.connect(m, read_addr=m_item["k"], read_en=advance, write_addr=e_item["k"],
                         write_data=acc_sum, write_en=e_mac)
            exact_sum = acc_sum
        if shared is not None:
            # FORWARD reads the accumulators; a host write that lands in its first clock still
            # reaches the LFSR states, since no accumulator is written before stage E. The read
            # half is `~in_forward` as a register of its own (the address's top bit): `in_forward`
            # reaches every stage, and a LUT RAM's address from it was a critical path on an ECP5.
            reads_lfsrs, reads_lfsrs_next = register(m, 1, "accs_lfsrs_reads_lfsrs", init=1)
            m.d.comb += reads_lfsrs_next.eq(~in_phase_next[Command.FORWARD])
            shared.drive(m, read_first=~reads_lfsrs, write_first=accs.write.en)
        # Past E go the bias (FORWARD: the exact sum, §4.1), every weight (UPDATE) and a
        # neuron's last error word (ERROR: its delta).
        keep = e_item["neuron_end"] | in_update
        r_valid, r_item = follow("r", e_item, e_valid & keep)

        draw = None
        if stoch:
            # -- stage D: LFSR draw, 16 steps (§5.1) in a few word operations (``lfsr_draw``) --
            # The state is read in M and drawn in D. With K >= 2 the next state is registered
            # with the draw and written back in E, from a flip-flop (read, draw and the bank's
            # write multiplexers in one clock were a slowest path on an iCE40): a neuron's next
            # read is K >= 2 clocks after its read, in the clock of the write at the earliest,
            # which the transparent port of K = 2 covers. With K = 1 the next read is one
            # clock later: the state is written back in D.
            lfsr_read_k, lfsr_sel = m_item["k"], lfsrs.data
            lfsr_next = wire(m, lfsr_draw(m, lfsr_sel), "lfsr_next")
            # §5.3: the delta draw (hidden layers only), then one per weight in address order.
            lfsr_advance = d_valid & (in_update | (C(0, 1) if output_layer else in_error & d_item["neuron_end"]))
            lfsr_advance = wire(m, lfsr_advance, "lfsr_advance")
            if K == 1:
                e_lfsr = Signal(STOCH_BITS, name="e_draw", reset_less=True)
                lfsr_write = (d_item["k"], lfsr_next, lfsr_advance)
            else:
                e_lfsr = Signal(LFSR_WIDTH, name="e_lfsr", reset_less=True)
                # Nothing stalls in ERROR and UPDATE: the write is never repeated.
                e_lfsr_write, e_lfsr_write_next = register(m, 1, "e_lfsr_write")
                with m.If(advance):
                    m.d.comb += e_lfsr_write_next.eq(lfsr_advance)
                lfsr_write = (e_item["k"], e_lfsr, e_lfsr_write)
            with m.If(advance):
                m.d.sync += e_lfsr.eq(lfsr_next[: len(e_lfsr)])
            draw = e_lfsr[:STOCH_BITS]

        # -- stage E: the value each phase casts, and its rounding offset ----------------------
        # FORWARD: the exact y; UPDATE: delta x; ERROR: (sum_t b e) f' (hidden) or e (output).
        value = exact_sum
        if learning and act is Activation.TANH:
            # tanh's f' (read in D) is a word: (sum_t b e) f' is a second product (§6.1).
            value = wire(m, Mux(in_error, exact_sum * fprimes.data, exact_sum), "e_value")
        # One rounding unit serves the three casts (docs/rtl.md §1.4): each phase's value and
        # fraction bits, the fraction bits it keeps, and its rounding mode.
        casts = [(in_forward, w_fmt.frac_bits + act_fmt.frac_bits, act_fmt.frac_bits, a.rounding)]
        if learning:
            casts.append((in_update, delta_fmt.frac_bits + act_fmt.frac_bits + a.shift, w_fmt.frac_bits,
                          a.update_rounding))
            if output_layer:
                casts.append((in_error, a.error.frac_bits, delta_fmt.frac_bits, a.update_rounding))
            else:
                casts.append((in_error, a.feedback.frac_bits + a.error.frac_bits + f_fprime, a.delta.frac_bits,
                              a.update_rounding))
        # The value's low bits are registered in E (the adder's low half, or the whole sum for
        # K = 1), so the dropped bits' carry is found there, beside the high half's sum.
        low = None
        if not (learning and act is Activation.TANH):
            low = e_exact_sum if K == 1 else e_low[:half]
        cast = _SharedRound(m, value, casts, draw, low=low)
        r_value = Signal(cast.value.shape(), name="r_value", reset_less=True)
        r_offset = Signal(Value.cast(cast.extra).shape(), name="r_offset", reset_less=True)
        with m.If(advance):
            m.d.sync += [r_value.eq(cast.value), r_offset.eq(cast.extra)]

        # -- stage R: round --------------------------------------------------------------------
        s_valid, s_item = follow("s", r_item, r_valid)
        rounded = cast.rounded(r_value, r_offset)
        s_rounded = Signal(rounded.shape(), name="s_rounded", reset_less=True)
        with m.If(advance):
            m.d.sync += s_rounded.eq(rounded)
        if learning:
            # Registered in R, so that no phase decoding sits in front of the bank's write.
            s_delta_valid, s_delta_valid_next = register(m, 1, "s_delta_valid")
            with m.If(advance):
                m.d.comb += s_delta_valid_next.eq(r_valid & in_error)

        # -- stage S: saturate -----------------------------------------------------------------
        # Formats of one word share one saturation.
        saturated = {}

        def saturate(fmt: FixedFormat, name: str):
            key = (fmt.word, fmt.signed)
            if key not in saturated:
                saturated[key] = wire(m, hw_saturate(s_rounded, fmt, a.overflow, m=m, name=name), f"{name}_sat")
            return saturated[key]

        y_next = saturate(act_fmt, "y_cast")
        # FORWARD's y and UPDATE's step: one register (C, U) where their shapes agree.
        c_value_shape = act_shape
        c_value_next = y_next
        if learning:
            step = saturate(w_fmt, "step_cast")
            c_value_shape = _union_shape(act_shape, w_shape)
            if c_value_shape != act_shape or step is not y_next:
                c_value_next = Mux(in_update, step, y_next)

        # -- stage C: activation and the output stream (FORWARD) -------------------------------
        # y.payload means something only while y.valid (a tanh ROM's output is not reset either).
        c_value = Signal(c_value_shape, name="c_value", reset_less=True)
        c_y = wire(m, c_value[: act_fmt.word].as_signed() if act_fmt.signed else c_value[: act_fmt.word], "c_y")
        c_k = Signal(k_shape, name="c_k", reset_less=True)
        c_last = Signal(name="c_last", reset_less=True)
        with m.If(advance):
            m.d.comb += c_valid_next.eq(s_valid & in_forward)
            m.d.sync += [c_value.eq(c_value_next), c_k.eq(s_item["k"]), c_last.eq(s_item["last"])]
        if act is Activation.TANH:
            table = [int(v) for v in tanh_table(act_fmt)]
            m.submodules.tanh_rom = rom = Memory(shape=act_shape, depth=len(table), init=table)
            rom_rd = rom.read_port()
            # Entry index = y - min: flip the sign bit of a signed raw value (§4.2).
            m.d.comb += [
                rom_rd.addr.eq(Cat(y_next[:-1], ~y_next[-1]) if act_fmt.signed else y_next),
                rom_rd.en.eq(advance),
            ]
            c_a = rom_rd.data
        else:
            c_a = _activate(c_y, act_fmt, act)
        m.d.comb += [self.y.valid.eq(c_valid), self.y.payload.y.eq(c_y), self.y.payload.a.eq(c_a)]
        y_done = wire(m, c_valid & self.y.ready, "y_done")
        with m.If(y_done & c_last):
            m.d.comb += running_next.eq(0)
        if learning:
            if act is Activation.TANH:
                # 1 - a^2 needs the ROM's a, which stage C reads.
                fprime_next = wire(m, _derivative(m, c_y, c_a, act_fmt, act), "fprime_next")
            else:
                # f'(y) of the other activations needs y only: computed from y_next in stage S
                # and registered with it, so that the bank's write data starts at a flip-flop
                # (computed from c_y it was the learning PE's slowest path on an iCE40).
                s_fprime = wire(m, _derivative(m, y_next, None, act_fmt, act), "fprime_next")
                fprime_next = Signal(s_fprime.shape(), name="c_fprime", reset_less=True)
                with m.If(advance):
                    m.d.sync += fprime_next.eq(s_fprime)

        if learning:
            # -- ERROR (§6.1, §6.2): the delta is written at the end of stage S ----------------
            delta_next = saturate(delta_fmt, "delta_cast")
            delta_write = wire(m, s_delta_valid, "delta_write")
            with m.If(delta_write & s_item["last"]):
                m.d.comb += running_next.eq(0)

            # -- UPDATE (§7): subtract the step (U), saturate and write (V) -------------------
            # `o_weight` holds the weight read again in R (the read port's other use).
            u_valid, u_item = follow("u", s_item, s_valid & in_update)
            u_step = c_value[: w_fmt.word].as_signed() if w_fmt.signed else c_value[: w_fmt.word]
            w_diff = wire(m, o_weight - u_step, "w_diff")
            v_valid, v_item = follow("v", u_item, u_valid)
            v_w_diff = Signal(w_diff.shape(), name="v_w_diff", reset_less=True)
            with m.If(advance):
                m.d.sync += v_w_diff.eq(w_diff)
            w_new = wire(m, hw_saturate(v_w_diff, w_fmt, a.overflow, m=m, name="w_cast"), "w_new")
            w_write = wire(m, v_valid, "w_write")  # stage U takes UPDATE's items only
            with m.If(w_write & v_item["last"]):
                m.d.comb += running_next.eq(0)
            weight_read_addr = Mux(in_update, r_item["addr"], a_addr)
        else:
            w_write = C(0, 1)
            w_new = C(0, 1)
            v_item = {"addr": C(0, 1)}
            weight_read_addr = a_addr
        m.d.comb += [
            w_rd.addr.eq(Mux(idle, self.host.addr, weight_read_addr)),
            w_rd.en.eq(Mux(idle, self.host.r_en, advance)),
        ]

        # -- host port -------------------------------------------------------------------------
        # A write is registered here and lands one clock later (its decoding, the address
        # comparisons and the space, then has a clock of its own); it takes the memory's write
        # port whatever the phase, since a write issued in the clock of a command transfer
        # lands in the phase's first clock, when no stage writes yet.
        host = self.host
        host_write = wire(m, host.w_en & idle, "host_write")
        q_addr = Signal(len(host.addr), name="host_q_addr", reset_less=True)
        q_data = Signal(len(host.w_data), name="host_q_data", reset_less=True)
        m.d.sync += [q_addr.eq(host.addr), q_data.eq(host.w_data)]

        def host_write_enable(space, count):
            """The registered write enable of ``space``: a host write to one of its ``count`` words."""
            # Writes beyond the storage are ignored (compare only if the address can be there).
            inside = below(host.addr, count)
            enable, enable_next = register(m, 1, f"host_write_{space.name.lower()}")
            m.d.comb += enable_next.eq(host_write & equals(host.space, space) & inside)
            return enable, inside

        w_host, _ = host_write_enable(Space.WEIGHT, depth)
        m.d.comb += [
            w_wr.addr.eq(Mux(w_host, q_addr, v_item["addr"])),
            w_wr.data.eq(Mux(w_host, q_data[: w_fmt.word], w_new)),
            w_wr.en.eq(w_host | w_write),
        ]
        # The banks: read by the host while idle and by the phases while running; written by
        # the host's registered write or by the phases (never in the same clock).
        # Each entry: (read address, write address, write data, write enable).
        if learning:
            functional = {
                Space.DERIVATIVE: (e_k if mask_fprime else d_item["k"], c_k, fprime_next, y_done),  # read in A or D
                Space.DELTA: (b_k, s_item["k"], delta_next, delta_write),  # read in B for O
            }
            if not output_layer:
                functional[Space.FEEDBACK] = (b_addr, b_addr, C(0, 1), C(0, 1))  # read in B for O
            if stoch:
                functional[Space.LFSR] = (lfsr_read_k, *lfsr_write)  # see stage D
        # A read's word comes straight from the memories' read ports, one clock after r_en,
        # through a multiplexer whose selects are registered with the read. The weight block
        # RAM's slow clock-to-out (5.8 ns on an ECP5) leaves room for one LUT after it: the
        # banks' words are merged first into `r_word`, which Yosys keeps as a net, so that the
        # last multiplexer is a 3-input LUT the placer can put beside the reader's flip-flop
        # (merged into one 5-input function it took two LUTs and a PFUMX on an ECP5).
        host_read = host.r_en & idle
        # `idle` again, as a register of its own for the banks' read-address multiplexers:
        # `running` reaches every stage, and from it through a LUT RAM's address (the shared
        # accumulator/LFSR memory, 20 cells on an ECP5) was the 64-100-10 learner's critical path.
        banks_to_host, banks_to_host_next = register(m, 1, "banks_to_host", init=1)
        m.d.comb += banks_to_host_next.eq(~running_next)
        r_weight, r_weight_next = register(m, 1, "r_weight", init=1)
        with m.If(host_read):
            m.d.comb += r_weight_next.eq(equals(host.space, Space.WEIGHT))
        bank_words = []
        for space, bank in banks.items():
            read_addr, write_addr, write_data, write_en = functional[space]
            enable, inside = host_write_enable(space, bank.count)
            bank_addr = bank.addr_width
            bank.connect(
                m,
                read_addr=Mux(banks_to_host, host.addr[:bank_addr], read_addr),
                read_en=Mux(banks_to_host, host.r_en, advance),
                write_addr=Mux(enable, q_addr[:bank_addr], write_addr),
                write_data=Mux(enable, q_data[: len(bank.data)], write_data),
                write_en=enable | write_en,
            )
            # Seen only after a read (a read sets it): no reset needed.
            selected = Signal(name=f"r_{space.name.lower()}", reset_less=True)
            with m.If(host_read):
                m.d.sync += selected.eq(equals(host.space, space) & inside)
            word = Signal(len(host.r_data), name=f"r_{space.name.lower()}_word")
            m.d.comb += word.eq(bank.data)  # sign-extended for a signed format
            bank_words.append(Mux(selected, word, 0))
        r_word = C(0, len(host.r_data))
        for word in bank_words:
            r_word = r_word | word
        merged = Signal(len(host.r_data), name="r_word", attrs={"keep": 1})
        m.d.comb += [merged.eq(r_word), host.r_data.eq(Mux(r_weight, w_rd.data, merged))]
        return m


# ------------------------------------------------------------------------------------------
# Per-neuron storage
# ------------------------------------------------------------------------------------------


class _Bank:
    """``count`` per-neuron words with the behaviour of ``count`` registers, stored in a memory.

    One write port and one synchronous read port (``data`` shows word ``read_addr`` one clock
    after a read with ``read_en``, and holds it while ``read_en`` is low; a write lands at the
    clock edge), so that synthesis can place the bank in block RAM or LUT RAM, and a simulator
    updates one word per write instead of evaluating a next-state function for every word.
    With ``transparent`` a read in the clock of a write to the same word returns the new word.

    With ``reset`` the bank keeps a register's reset too: a ``loaded`` bit per word, cleared by
    the domain's reset and set by a write, makes a word that was not written since reset read as
    ``init`` (the memory itself is not reset).
    """

    def __init__(self, m: Module, name: str, shape, count: int, *, init: int = 0, reset: bool = True,
                 transparent: bool = False, ports=None):
        self.count = count
        if ports is None:
            # no zero-bit address; without `transparent` no word is read in the clock of its write
            memory = Memory(shape=shape, depth=max(2, count), init=[], attrs=None if transparent else NO_RW_CHECK)
            m.submodules[name] = memory
            self.write = memory.write_port()
            self.read = memory.read_port(transparent_for=(self.write,) if transparent else ())
        else:
            self.read, self.write = ports  # a region of a ``_SharedBanks`` memory
        self.data = Signal(shape, name=f"{name}_data")
        if reset:
            loaded, loaded_next = register(m, count, f"{name}_loaded")
            with m.If(self.write.en):
                m.d.comb += loaded_next.eq(loaded | (C(1, count) << self.write.addr)[:count])
            was_loaded = (loaded >> self.read.addr)[0]
            if transparent:
                was_loaded = was_loaded | (self.write.en & (self.write.addr == self.read.addr))
            # Whether the word read had been written since reset, registered with the read.
            read_loaded = Signal(name=f"{name}_read_loaded", reset_less=True)
            with m.If(self.read.en):
                m.d.sync += read_loaded.eq(was_loaded)
            m.d.comb += self.data.eq(Mux(read_loaded, self.read.data, init))
        else:
            m.d.comb += self.data.eq(self.read.data)

    def connect(self, m: Module, *, read_addr, read_en, write_addr, write_data, write_en) -> None:
        m.d.comb += [
            self.read.addr.eq(read_addr),
            self.read.en.eq(read_en),
            self.write.addr.eq(write_addr),
            self.write.data.eq(write_data),
            self.write.en.eq(write_en),
        ]

    @property
    def addr_width(self) -> int:
        return len(self.write.addr)


class _RegionPort:
    """The address, enable and data of one region's side of a ``_SharedBanks`` memory port."""

    def __init__(self, name: str, addr_width: int, shape):
        self.addr = Signal(addr_width, name=f"{name}_addr")
        self.en = Signal(name=f"{name}_en")
        self.data = Signal(shape, name=f"{name}_data")


class _SharedBanks:
    """Two banks (``_Bank``) in the two halves of one memory, for banks that no phase uses together.

    A per-neuron bank of K words takes a whole block RAM on an FPGA (the iCE40's hold 256 words
    of 16 bits), however small K is: two banks used in different phases (the accumulators in
    FORWARD, the LFSR states in ERROR and UPDATE) share one memory, its address's top bit
    choosing the half, and each port serves the bank its ``select`` names (see ``drive``).
    ``first`` and ``second`` are the two banks, each with ``_Bank``'s behaviour; with
    ``transparent`` the one memory's read port is transparent to its write.
    """

    def __init__(self, m: Module, name: str, banks, *, transparent: bool = False):
        (name_a, shape_a, count_a, kw_a), (name_b, shape_b, count_b, kw_b) = banks
        shape_a, shape_b = Shape.cast(shape_a), Shape.cast(shape_b)
        addr_width = max(1, (max(count_a, count_b) - 1).bit_length())
        width = max(shape_a.width, shape_b.width)
        self.memory = Memory(shape=width, depth=2 << addr_width, init=[],
                             attrs=None if transparent else NO_RW_CHECK)
        m.submodules[name] = self.memory
        self._write = self.memory.write_port()
        self._read = self.memory.read_port(transparent_for=(self._write,) if transparent else ())
        self._ports = []
        self.first, self.second = (
            self._region(m, region_name, shape, count, kw, addr_width, transparent)
            for region_name, shape, count, kw in ((name_a, shape_a, count_a, kw_a), (name_b, shape_b, count_b, kw_b))
        )

    def _region(self, m, name, shape, count, kw, addr_width, transparent):
        read, write = _RegionPort(f"{name}_read", addr_width, shape), _RegionPort(f"{name}_write", addr_width, shape)
        m.d.comb += read.data.eq(self._read.data[:shape.width])
        self._ports.append((read, write))
        return _Bank(m, name, shape, count, transparent=transparent, ports=(read, write), **kw)

    def drive(self, m: Module, *, read_first, write_first) -> None:
        """Give the read port to the first bank while ``read_first`` (else the second), and the
        write port to the first while ``write_first``."""
        (read_a, write_a), (read_b, write_b) = self._ports
        m.d.comb += [
            self._read.addr.eq(Mux(read_first, Cat(read_a.addr, C(0, 1)), Cat(read_b.addr, C(1, 1)))),
            self._read.en.eq(Mux(read_first, read_a.en, read_b.en)),
            self._write.addr.eq(Mux(write_first, Cat(write_a.addr, C(0, 1)), Cat(write_b.addr, C(1, 1)))),
            self._write.data.eq(Mux(write_first, write_a.data.as_unsigned(), write_b.data.as_unsigned())),
            self._write.en.eq(Mux(write_first, write_a.en, write_b.en)),
        ]


# ------------------------------------------------------------------------------------------
# Arithmetic building blocks (combinational), each the hardware form of one rule of the contract
# (the cast itself is ``building_blocks.hw_cast``)
# ------------------------------------------------------------------------------------------


class _SharedRound:
    """One rounding adder for several casts of one value, in phases that never overlap (§2).

    ``casts`` lists ``(select, frac_bits, kept_frac_bits, rounding)``: while ``select`` is high
    (the first cast is the default), ``value`` has ``frac_bits`` fraction bits and rounds to
    ``kept_frac_bits``. Every mode is ``(value + offset) >> d`` (``round_offset``), so the casts
    share the adder and differ in the offset and in the shift ``d``, both chosen by the phase.
    A cast that drops no bits or shifts left shifts every cast's value left by the same amount
    first: rounding ``v 2^L`` with ``d + L`` dropped bits gives the result of ``v`` with ``d``
    in every mode.

    The work is split over two stages. Given ``low``, the value's low bits as a register (at
    least as many as the most any cast drops), the first stage adds the offset to them alone:
    its carry into the kept bits is all the dropped bits decide. It registers that carry
    (``extra``) with the kept bits, already shifted by the phase's ``d`` (``value``), and the
    second stage adds the two (``rounded``): two carry chains, each shorter than the value.
    Without ``low`` the first stage registers the whole value and the offset, and the second
    adds them and shifts.

    Attributes
    ----------
    value, extra : Value
        What the first stage registers for ``rounded``.
    """

    def __init__(self, m: Module, value, casts, draw, low=None):
        self._m = m
        dropped = [frac - kept for _, frac, kept, _ in casts]
        lift = max(0, -min(dropped))
        self._dropped = [d + lift for d in dropped]
        self._selects = [select for select, _, _, _ in casts]
        value = Value.cast(value)
        if lift:
            value = Cat(C(0, lift), value).as_signed() if value.shape().signed else Cat(C(0, lift), value)
        most = max(self._dropped)
        # Two spare bits above the dropped ones keep every slice well defined (as in hw_round).
        value = wire(m, extend(value, most + 2), "round_value")
        offsets = [round_offset(value, d, rounding, draw) if d else C(0, 1)
                   for d, (_, _, _, rounding) in zip(self._dropped, casts)]
        offset = wire(m, self._by_phase(offsets), "round_offset")
        self._early = low is not None and lift == 0 and 0 < most <= len(low)
        if self._early:
            # Ones above a cast's own dropped bits pass its carry on to bit `most` (its offset
            # is below 2^d).
            fill = self._by_phase([C(((1 << most) - 1) ^ ((1 << d) - 1), most) for d in self._dropped])
            carry = wire(m, (Value.cast(low)[:most] | fill) + offset, "round_carry")
            self.value = wire(m, self._by_phase([value.shift_right(d) for d in self._dropped]), "round_kept")
            self.extra = carry[most]
        else:
            self.value, self.extra = value, offset

    def _by_phase(self, items):
        """``items[i]`` while cast i's select is high (the first by default), one multiplexer
        per distinct item."""
        result = items[0]
        for select, item in zip(self._selects[1:], items[1:]):
            if item is not items[0] and not (isinstance(item, Const) and isinstance(items[0], Const)
                                             and item.value == items[0].value and len(item) == len(items[0])):
                result = Mux(select, item, result)
        return result

    def rounded(self, value, extra):
        """The selected cast's rounded value from the registered ``value`` and ``extra`` (not
        yet in the format's range: ``hw_saturate`` finishes the cast)."""
        if self._early:
            return share(self._m, value + extra, "round_total")
        total = share(self._m, value + extra, "round_total")
        return self._by_phase([total.shift_right(d) for d in self._dropped])


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
