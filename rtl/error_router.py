"""The error router: delivers to each neuron only the output errors its row of B selects.

Section numbers (§) refer to docs/arithmetic.md.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ssdfa.model.arithmetic import LFSR_WIDTH, STOCH_BITS, FixedFormat

from .building_blocks import equals, index_width, register, select, wire
from .neuron_pe import lfsr_draw
from .signatures import format_shape

__all__ = ["ErrorRouter"]


_MASK = (1 << LFSR_WIDTH) - 1
#: The constants of the per-neuron seed hash (§5.2): murmur3's 32-bit finaliser.
_SEED_LAYER, _SEED_NEURON = 0x9E3779B1, 0x85EBCA77
_FMIX_1, _FMIX_2 = 0x85EBCA6B, 0xC2B2AE35


def _lfsr_index(m: Module, hash_input, outputs: int, width: int, name: str):
    """The error index of one neuron from its seed-hash input ``L*C1 + (n+1)*C2`` (32 bits).

    Hardware for the model's ``feedback.lfsr_connectivity``: murmur3's finaliser gives the
    neuron's LFSR seed (§5.2; 0 becomes 1), the first draw is the low 16 bits of the state one
    draw after the seed (§5.1, ``neuron_pe.lfsr_draw``), and the index is ``(draw * M) >> 16``.
    Each step is a named signal: Amaranth's backend would write an expression out again at
    each of its uses.
    """
    x = hash_input
    x = wire(m, x ^ x.shift_right(16), f"{name}_h1")
    x = wire(m, (x * _FMIX_1)[:LFSR_WIDTH], f"{name}_h2")
    x = wire(m, x ^ x.shift_right(13), f"{name}_h3")
    x = wire(m, (x * _FMIX_2)[:LFSR_WIDTH], f"{name}_h4")
    x = wire(m, x ^ x.shift_right(16), f"{name}_h5")
    seed = wire(m, Mux(x.any(), x, 1), f"{name}_seed")
    draw = wire(m, lfsr_draw(m, seed)[:STOCH_BITS], f"{name}_draw")
    return (draw * outputs)[STOCH_BITS:STOCH_BITS + width]


class ErrorRouter(wiring.Component):
    """Routes the M output errors to P processing elements, s words per neuron (§6.1).

    Neuron ``n`` lives on PE ``n // K`` at slot ``n % K`` (``K = neurons // pes``). Its row of the
    feedback matrix B has ``s = connections`` non-zeros, at output indices ``index[n, 0..s-1]``;
    the router delivers to the neuron exactly those ``s`` error words, never the other ``M - s``
    (SSDFA is ``s = 1``: one scalar per neuron, the data movement of the paper's Table 1). The
    feedback constants ``b`` are not the router's business: each PE holds its own.

    Connectivity comes from one of two sources, chosen at elaboration:

    - an index table (one per PE, ``K * s`` entries of ``ceil(log2 M)`` bits), given at
      elaboration and/or written through the ``table`` host port;
    - ``lfsr_seed``: no table; each neuron's one error index (SSDFA only) is regenerated on
      chip, as the model's ``feedback.lfsr_connectivity(L, neurons, M)`` defines it for
      ``L = lfsr_seed``: neuron n's LFSR seed is the hash of (L, n) of §5.2, its first draw
      ``r`` (§5.1) gives the index ``(r * M) >> 16``. Each port steps the hash input ``L*C1 + (n+1)*C2`` by one addition per
      slot; the murmur3 finaliser (two 32-bit constant multiplications), the ``A^16`` XOR network
      and the multiplication by M are combinational logic in front of the delivery register.

    Phases
    ------
    COLLECT (after reset)
        ``errors.ready`` is high. The router takes M words, ``e_0`` first, into its error buffer.
        Taking ``e_{M-1}`` starts DELIVER.
    DELIVER
        ``errors.ready`` is low. For slot ``k = 0..K-1`` and, within it, connection
        ``t = 0..s-1``, every port ``to_pe[p]`` presents ``e[index[p*K + k, t]]``: ``K * s`` words
        per port, the P ports in lockstep. Port ``p``'s word is transferred when its
        ``valid & ready``; the router moves to the next word once every port has taken the
        current one (a port that took it early sees ``valid`` low until then), so identical
        consumers in the same phase see one word per clock. After the last word the router
        returns to COLLECT. With ``lockstep`` the ports' ``ready`` must be equal on every clock
        (the layer's PEs); port 0's decides for all, and every port's ``valid`` is the word's.

    Timing (one PE shown, ``M = 3``, ``K = 2``, ``s = 1``, consumer always ready)::

        clk           0    1    2    3      4      5
        errors.valid  1    1    1    0      0      .
        errors.ready  1    1    1    0      0      1
        errors.p      e0   e1   e2
        to_pe.valid   0    0    0    1      1      0
        to_pe.p                      e[i0]  e[i1]
        busy          0    0    0    1      1      0

    ``i0``, ``i1`` are the indices of the PE's slots 0 and 1. The first word is presented on the
    clock after the last error is taken (the index table's registered read happens while that
    error is written). With consumers that are always ready a sample costs ``M`` clocks to
    collect and ``K * s`` to deliver, and the router takes errors again on the next clock.

    Parameters
    ----------
    outputs : int
        M, the number of output errors (>= 1).
    neurons : int
        Neurons of the layer (a multiple of ``pes``).
    pes : int
        P, the processing elements served in lockstep.
    connections : int
        s, error words per neuron (1 for SSDFA, ``1..M``).
    error_format : FixedFormat
        Format of the error words (§6.0); the payload is ``error_format.word`` bits.
    index_table : array-like of int, shape (neurons, connections), optional
        Initial contents of the index table, ``index_table[n, t] < outputs``. The ``table`` port
        can still overwrite it. Without it the table starts at zero.
    lfsr_seed : int, optional
        Regenerate the connectivity on chip from this seed instead of storing a table (see
        above); needs ``connections == 1`` and ``outputs <= 2**16``. The router then has no
        ``table`` port and no ``table_fault``.
    neuron_counters : bool
        Keep a counter of the error words each neuron receives (``N`` counters, or ``K`` with
        ``lockstep``; readable through ``neuron_count``). The per-port counters ``delivered``
        are always there.
    counter_width : int
        Bits of every counter (they wrap).
    lockstep : bool
        The consumers are in lockstep: their ``ready`` is equal on every clock. The router then
        moves on when port 0 takes the word, instead of waiting for an AND over every port's
        ``ready`` (on a 10-PE layer that AND, one net from each PE, was the learner's critical
        path on an ECP5). A consumer that breaks the promise misses words: the layer's tests
        check its PEs' ``ready``s on every clock.

    Attributes
    ----------
    errors : In(stream.Signature(error word))
        The output error vector, ``e_0`` .. ``e_{M-1}`` in order.
    to_pe : Out(stream.Signature(error word)).array(pes)
        One stream per PE, in lockstep.
    busy : Out(1)
        High in DELIVER.
    table : In(ErrorRouter.TableWrite), without ``lfsr_seed``
        Host write port of the index table: ``pe``, ``addr = slot * s + t``, ``data`` (the output
        index), ``en``. Writes take effect in any phase; write only while not ``busy``.
    table_fault : Out(1), without ``lfsr_seed``
        Sticky: a ``table`` write had ``data >= M`` (the word is stored, and routing it is
        undefined). Cleared by ``clear_counters``.
    clear_counters : In(1)
        Zero every counter (and ``table_fault``) on this clock.
    received : Out(counter_width)
        Error words taken on ``errors``.
    delivered : Out(counter_width).array(pes)
        Error words taken by each port.
    neuron_count : In(ErrorRouter.CounterRead), with ``neuron_counters``
        Combinational read of neuron ``pe * K + slot``'s counter (an out-of-range ``pe`` or
        ``slot`` reads the last one). With ``lockstep`` the neurons of one slot share a counter
        (every port takes their words together) and ``pe`` is not used.

    Raises
    ------
    ValueError
        If a count is not a positive integer, ``neurons`` is not a multiple of ``pes``,
        ``connections`` exceeds ``outputs``, ``index_table`` has the wrong shape or an index
        outside ``0..M-1`` (naming the neuron and the value), or ``lfsr_seed`` is given with
        ``index_table``, with ``connections > 1``, with more than 2**16 outputs, or is not a
        non-negative integer.
    TypeError
        If ``error_format`` is not a FixedFormat.
    """

    class TableWrite(wiring.Signature):
        """Host write port of the index table, from the host's side (all members ``Out``)."""

        def __init__(self, *, pes: int, depth: int, outputs: int):
            super().__init__({
                "pe": Out(index_width(pes)),
                "addr": Out(index_width(depth)),
                "data": Out(index_width(outputs)),
                "en": Out(1),
            })

    class CounterRead(wiring.Signature):
        """Combinational counter read port, from the host's side: drive ``pe``/``slot``, read ``data``."""

        def __init__(self, *, pes: int, slots: int, width: int):
            super().__init__({
                "pe": Out(index_width(pes)),
                "slot": Out(index_width(slots)),
                "data": In(width),
            })

    def __init__(self, *, outputs: int, neurons: int, pes: int = 1, connections: int = 1,
                 error_format: FixedFormat = FixedFormat(2, 14), index_table=None,
                 lfsr_seed: int | None = None, neuron_counters: bool = False,
                 counter_width: int = 32, lockstep: bool = False):
        # An instance refused by the checks below is not an unused design: no warning for it.
        self._MustUse__silence = True
        for name, value in (("outputs", outputs), ("neurons", neurons), ("pes", pes),
                            ("connections", connections), ("counter_width", counter_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if neurons % pes:
            raise ValueError(f"neurons ({neurons}) must be a multiple of pes ({pes})")
        if connections > outputs:
            raise ValueError(f"connections ({connections}) cannot exceed outputs ({outputs})")
        if not isinstance(error_format, FixedFormat):
            raise TypeError(f"error_format must be a FixedFormat, not {error_format!r}")
        self._outputs = outputs
        self._neurons = neurons
        self._pes = pes
        self._connections = connections
        self._error_format = error_format
        self._lockstep = bool(lockstep)
        self._index_table = None if index_table is None else self._check_table(index_table)
        if lfsr_seed is not None:
            if not isinstance(lfsr_seed, int) or isinstance(lfsr_seed, bool) or lfsr_seed < 0:
                raise ValueError(f"lfsr_seed must be a non-negative integer, not {lfsr_seed!r}")
            if index_table is not None:
                raise ValueError("give index_table or lfsr_seed, not both")
            if connections != 1:
                raise ValueError(
                    f"LFSR-regenerated connectivity is for SSDFA (connections=1), not connections={connections}"
                )
            if outputs > 1 << STOCH_BITS:
                raise ValueError(
                    f"LFSR-regenerated connectivity addresses at most {1 << STOCH_BITS} errors, not {outputs}"
                )
        self._lfsr_seed = lfsr_seed
        self._neuron_counters = bool(neuron_counters)
        self._counter_width = counter_width

        word = format_shape(error_format)
        members = {
            "errors": In(stream.Signature(word)),
            "to_pe": Out(stream.Signature(word)).array(pes),
            "busy": Out(1),
            "clear_counters": In(1),
            "received": Out(counter_width),
            "delivered": Out(counter_width).array(pes),
        }
        if lfsr_seed is None:
            members["table"] = In(self.TableWrite(pes=pes, depth=self.table_depth, outputs=outputs))
            members["table_fault"] = Out(1)
        if self._neuron_counters:
            members["neuron_count"] = In(self.CounterRead(pes=pes, slots=self.neurons_per_pe,
                                                          width=counter_width))
        super().__init__(members)
        self._MustUse__silence = False

    def _check_table(self, index_table):
        try:
            rows = [[int(v) for v in row] for row in index_table]
        except TypeError:
            raise ValueError(
                f"index_table must be a (neurons, connections) table of integers, not {index_table!r}"
            ) from None
        if len(rows) != self._neurons or any(len(row) != self._connections for row in rows):
            raise ValueError(
                f"index_table must have shape ({self._neurons}, {self._connections}), "
                f"not {len(rows)} rows of lengths {sorted({len(r) for r in rows})}"
            )
        for neuron, row in enumerate(rows):
            for value in row:
                if not 0 <= value < self._outputs:
                    raise ValueError(
                        f"index_table: neuron {neuron} selects output error {value}, "
                        f"outside 0..{self._outputs - 1}"
                    )
        return tuple(tuple(row) for row in rows)

    # -- read-only parameters ------------------------------------------------------------------

    @property
    def outputs(self) -> int:
        return self._outputs

    @property
    def neurons(self) -> int:
        return self._neurons

    @property
    def pes(self) -> int:
        return self._pes

    @property
    def connections(self) -> int:
        return self._connections

    @property
    def neurons_per_pe(self) -> int:
        """K, the neuron slots of each PE."""
        return self._neurons // self._pes

    @property
    def table_depth(self) -> int:
        """Entries of each PE's index table: ``K * s``."""
        return self.neurons_per_pe * self._connections

    @property
    def error_format(self) -> FixedFormat:
        return self._error_format

    @property
    def index_table(self):
        """The table given at elaboration (tuple of rows), or None."""
        return self._index_table

    @property
    def lfsr_seed(self):
        """The seed of the regenerated connectivity, or None (index table)."""
        return self._lfsr_seed

    @property
    def neuron_counters(self) -> bool:
        return self._neuron_counters

    @property
    def lockstep(self) -> bool:
        """Whether port 0's ``ready`` decides for every port (see ``lockstep`` above)."""
        return self._lockstep

    def words_per_sample(self) -> int:
        """Error words each PE port receives per sample: ``K * s``."""
        return self.table_depth

    # -- elaboration ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        outputs, pes, slots, conns = self._outputs, self._pes, self.neurons_per_pe, self._connections
        depth = self.table_depth
        index_bits = index_width(outputs)

        # The error buffer: one write port (from `errors`), one read port per PE.
        # Memories have at least two rows, so that no address is zero bits wide.
        # The stage's words are the ports' registered reads (block RAM, not M flip-flops per
        # word), made in the clock the word is issued, from the index known in that clock;
        # transparent to the write, which in that clock may be of the last error.
        error_buffer = Memory(shape=format_shape(self._error_format), depth=max(2, outputs), init=[])
        m.submodules.error_buffer = error_buffer
        buffer_write = error_buffer.write_port()
        buffer_reads = [error_buffer.read_port(transparent_for=(buffer_write,)) for _ in range(pes)]

        # Registers with a reset are written through their `_next` signal (``building_blocks.register``).
        # COLLECT: take M words.
        collecting, collecting_next = register(m, 1, "collecting", init=1)
        write_addr, write_addr_next = register(m, index_width(outputs), "write_addr")
        take = wire(m, self.errors.valid & self.errors.ready, "take")
        # write_addr = M - 1 as a register of its own: the handshake's `take` (decided late in
        # its clock, behind the output-error unit) then passes one gate to the issue logic.
        write_last, write_last_next = register(m, 1, "write_last", init=int(outputs == 1))
        last_take = Signal()
        m.d.comb += last_take.eq(take & write_last)
        # DELIVER: `cursor` walks the table (slot k, connection t); the stage holds one word.
        cursor, cursor_next = register(m, range(depth + 1), "cursor")
        slot, slot_next = register(m, index_width(slots), "slot")
        conn, conn_next = register(m, index_width(conns), "conn")
        # The first index is read while the last error is written, so that the first word is
        # presented on the next clock.
        # `!=` for `<`: the cursor steps by one from 0 and stops at `depth`.
        issuing = wire(m, (~collecting & (cursor != depth)) | last_take, "issuing")
        stage_valid, stage_valid_next = register(m, 1, "stage_valid")
        stage_slot = Signal(index_width(slots), reset_less=True)  # read only with a transfer
        if not self._lockstep:
            taken, taken_next = register(m, pes, "taken")  # ports that already took the staged word
        accepted = Signal(pes)
        advance = Signal()
        restart = Signal()  # the last word has been taken by every port
        m.d.comb += restart.eq(~collecting & advance & ~issuing)

        # The index of the word each port issues, known in the clock it is issued: the index
        # table's registered read of the cursor's next value (so it shows entry `cursor`,
        # transparent to a table write), or the regenerating logic's output.
        issue_index = []
        if self._lfsr_seed is None:
            for p in range(pes):
                init = []
                if self._index_table is not None:
                    init = [self._index_table[p * slots + k][t] for k in range(slots) for t in range(conns)]
                table = Memory(shape=unsigned(index_bits), depth=max(2, depth), init=init)
                m.submodules[f"index_table_{p}"] = table
                write = table.write_port()
                read = table.read_port(transparent_for=(write,))
                m.d.comb += [
                    write.addr.eq(self.table.addr),
                    write.data.eq(self.table.data),
                    write.en.eq(self.table.en & equals(self.table.pe, p)),
                    read.addr.eq(Mux(ResetSignal(), 0, cursor_next)),
                ]
                issue_index.append(read.data)
            fault, fault_next = register(m, 1, "fault")
            m.d.comb += self.table_fault.eq(fault)
            if (1 << index_bits) > outputs:
                with m.If(self.table.en & (self.table.data >= outputs)):
                    m.d.comb += fault_next.eq(1)
        else:
            layer_term = self._lfsr_seed * _SEED_LAYER
            for p in range(pes):
                first = (layer_term + (p * slots + 1) * _SEED_NEURON) & _MASK
                hash_input, hash_input_next = register(m, LFSR_WIDTH, f"hash_input_{p}", init=first)
                index = wire(m, _lfsr_index(m, hash_input, outputs, index_bits, f"lfsr_{p}"), f"lfsr_index_{p}")
                with m.If(advance & issuing):
                    m.d.comb += hash_input_next.eq((hash_input + _SEED_NEURON)[:LFSR_WIDTH])
                with m.If(restart):
                    m.d.comb += hash_input_next.eq(first)
                issue_index.append(index)

        m.d.comb += [
            self.errors.ready.eq(collecting),
            buffer_write.addr.eq(write_addr),
            buffer_write.data.eq(self.errors.payload),
            buffer_write.en.eq(take),
            self.busy.eq(~collecting),
        ]
        for p, port in enumerate(self.to_pe):
            m.d.comb += [
                buffer_reads[p].addr.eq(issue_index[p]),
                buffer_reads[p].en.eq(advance & issuing),
                port.payload.eq(buffer_reads[p].data),
                port.valid.eq(stage_valid if self._lockstep else stage_valid & ~taken[p]),
                accepted[p].eq(port.valid & port.ready),
            ]
        if self._lockstep:
            m.d.comb += advance.eq(~stage_valid | self.to_pe[0].ready)
        else:
            m.d.comb += advance.eq(~stage_valid | (taken | accepted).all())

        with m.If(advance):
            m.d.comb += stage_valid_next.eq(issuing)
            if not self._lockstep:
                m.d.comb += taken_next.eq(0)
        with m.Else():
            if not self._lockstep:
                m.d.comb += taken_next.eq(taken | accepted)
        with m.If(advance & issuing):
            m.d.comb += cursor_next.eq(cursor + 1)
            m.d.sync += stage_slot.eq(slot)
            with m.If(conn == conns - 1):
                m.d.comb += [conn_next.eq(0), slot_next.eq(slot + 1)]
            with m.Else():
                m.d.comb += conn_next.eq(conn + 1)
        with m.If(restart):
            m.d.comb += [collecting_next.eq(1), cursor_next.eq(0), slot_next.eq(0), conn_next.eq(0)]
        with m.If(take):
            if outputs > 1:
                m.d.comb += write_last_next.eq(write_addr == outputs - 2)
            with m.If(last_take):
                m.d.comb += [write_addr_next.eq(0), collecting_next.eq(0)]
            with m.Else():
                m.d.comb += write_addr_next.eq(write_addr + 1)

        # Counters: what Table 1 counts, read off the hardware.
        received, received_next = register(m, self._counter_width, "received_count")
        m.d.comb += self.received.eq(received)
        with m.If(take):
            m.d.comb += received_next.eq(received + 1)
        delivered = []
        for p in range(pes):
            count, count_next = register(m, self._counter_width, f"delivered_count_{p}")
            m.d.comb += self.delivered[p].eq(count)
            with m.If(accepted[p]):
                m.d.comb += count_next.eq(count + 1)
            delivered.append(count_next)
        if self._neuron_counters:
            # In lockstep every port takes slot k's words in the same transfers, so the P neurons
            # of slot k have one count: K counters instead of P K (90 fewer 32-bit counters and
            # a 10-way smaller read multiplexer on a 10-PE layer). A port that broke the promise
            # shows in its own `delivered` count.
            rows = 1 if self._lockstep else pes
            counts = [[register(m, self._counter_width, f"count_{p}_{k}") for k in range(slots)]
                      for p in range(rows)]
            for p in range(rows):
                for k in range(slots):
                    count, count_next = counts[p][k]
                    with m.If(accepted[p] & equals(stage_slot, k)):
                        m.d.comb += count_next.eq(count + 1)
            read = self.neuron_count
            by_slot = [select([c for c, _ in row], read.slot) for row in counts]
            m.d.comb += read.data.eq(by_slot[0] if self._lockstep else select(by_slot, read.pe))
            with m.If(self.clear_counters):
                m.d.comb += [count_next.eq(0) for row in counts for _, count_next in row]
        with m.If(self.clear_counters):
            m.d.comb += received_next.eq(0)
            if self._lfsr_seed is None:
                m.d.comb += fault_next.eq(0)
            m.d.comb += [count_next.eq(0) for count_next in delivered]
        return m
