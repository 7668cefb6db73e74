"""UARTBridge: the framed UART protocol (docs/board.md §2) as an AXI4-Lite and AXI4-Stream master
in front of ``AXILearner``.

The bridge takes one request at a time: it collects the frame, checks its CRC, carries it out on
the buses, and sends exactly one reply. Bytes that arrive while it executes or replies are
dropped (the host waits for each reply). A frame that stops arriving for ``frame_timeout`` clocks
is abandoned, so a host that died mid-frame cannot desynchronise the next one.

Retransmission is safe: the bridge keeps the SEQ, status and payload of the last request it
carried out, and a request with a good CRC and that same SEQ is answered again from them without
being carried out a second time. Error replies (bad CRC, length or command) and HELLO replies
never touch that record.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .state_machine import StateMachine

from ssdfa import learner_regs as regs
from ssdfa.board import frames

from .building_blocks import equals
from .crc16 import crc16_next

__all__ = ["UARTBridge"]

_DECERR = regs.RESP_DECERR
#: The bridge's states, in the order a request goes through them.
_STATES = (
    'SYNC', 'SEQ', 'COMMAND', 'LENGTH', 'PAYLOAD', 'CRC_HI', 'CRC_LO', 'DISPATCH', 'READ_ADDRESS',
    'READ_DATA', 'READ_STORE', 'WRITE_FETCH', 'WRITE_BYTE', 'WRITE_ADDRESS', 'WRITE_RESPONSE',
    'SAMPLE_FETCH', 'SAMPLE_BYTE', 'SAMPLE_PUSH', 'DRAIN', 'REPLY_SYNC', 'REPLY_SEQ', 'REPLY_STATUS',
    'REPLY_LENGTH', 'REPLY_PAYLOAD', 'REPLY_CRC_HI', 'REPLY_CRC_LO',
)


class UARTBridge(wiring.Component):
    """Frames in from a UART receiver, replies out to a UART transmitter, a bus master between.

    Parameters
    ----------
    inputs : int
        Features per sample (F): a SAMPLE payload is ``inputs * feature_bytes + 1`` bytes.
    feature_bytes : int
        Bytes per feature in a SAMPLE frame (1 or 2): the feature is sign-extended to the
        32-bit stream word.
    classes : int
        Output classes (reported by HELLO).
    frame_timeout : int
        Clocks without a byte after which a half-received frame is abandoned.
    stall_timeout : int
        Clocks a sample word may wait for ``s_axis_tready`` before the request answers STALL.

    Attributes
    ----------
    rx_data, rx_valid : In
        A received byte, valid for one clock (``UARTReceiver``).
    tx_data, tx_valid, tx_ready : the byte to send (``UARTTransmitter``).
    m_axil_* : an AXI4-Lite master; ``m_axis_*``: samples out; ``s_axis_*``: predictions in.
    """

    def __init__(self, *, inputs: int, feature_bytes: int, classes: int, frame_timeout: int, stall_timeout: int):
        if feature_bytes not in (1, 2):
            raise ValueError(f"feature_bytes must be 1 or 2, not {feature_bytes!r}")
        payload = inputs * feature_bytes + 1
        if not 1 <= inputs or payload > frames.MAX_PAYLOAD:
            raise ValueError(f"a sample of {inputs} features of {feature_bytes} bytes does not fit one frame "
                             f"({frames.MAX_PAYLOAD}-byte payload)")
        if not 1 <= classes <= 255:
            raise ValueError(f"classes must be 1..255, not {classes!r}")
        for name, value in (("frame_timeout", frame_timeout), ("stall_timeout", stall_timeout)):
            if not isinstance(value, int) or value < 16:
                raise ValueError(f"{name} must be an integer of at least 16 clocks, not {value!r}")
        self.inputs, self.feature_bytes, self.classes = inputs, feature_bytes, classes
        self.frame_timeout, self.stall_timeout = frame_timeout, stall_timeout
        a, d, s = regs.ADDR_WIDTH, regs.DATA_WIDTH, regs.STREAM_WIDTH
        super().__init__({
            "rx_data": In(8), "rx_valid": In(1),
            "tx_data": Out(8), "tx_valid": Out(1), "tx_ready": In(1),
            "m_axil_awaddr": Out(a), "m_axil_awprot": Out(3), "m_axil_awvalid": Out(1), "m_axil_awready": In(1),
            "m_axil_wdata": Out(d), "m_axil_wstrb": Out(d // 8), "m_axil_wvalid": Out(1), "m_axil_wready": In(1),
            "m_axil_bresp": In(2), "m_axil_bvalid": In(1), "m_axil_bready": Out(1),
            "m_axil_araddr": Out(a), "m_axil_arprot": Out(3), "m_axil_arvalid": Out(1), "m_axil_arready": In(1),
            "m_axil_rdata": In(d), "m_axil_rresp": In(2), "m_axil_rvalid": In(1), "m_axil_rready": Out(1),
            "m_axis_tdata": Out(s), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "s_axis_tdata": In(s), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        sample_length = self.inputs * self.feature_bytes + 1

        # -- memories: the request's payload, the last executed reply's payload ----------------------
        m.submodules.request_memory = request_memory = Memory(shape=8, depth=256, init=[])
        m.submodules.reply_memory = reply_memory = Memory(shape=8, depth=256, init=[])
        request_write = request_memory.write_port()
        request_read = request_memory.read_port()
        reply_write = reply_memory.write_port()
        reply_read = reply_memory.read_port()

        # Predictions wait here until a reply carries them; a full FIFO holds the learner back.
        m.submodules.predictions = predictions = SyncFIFOBuffered(width=8, depth=32)
        m.d.comb += [
            predictions.w_data.eq(self.s_axis_tdata[:8]),
            predictions.w_en.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(predictions.w_rdy),
        ]

        # -- the request being received ------------------------------------------------------------
        # One CRC register and one XOR network serve the request (while receiving) and the reply
        # (while sending): the two never overlap. The reply feeds it whatever byte it sends.
        crc = Signal(16, init=0xFFFF)
        crc_byte = Signal(8)  # the byte entering the CRC: the received one, else the one being sent
        crc_after = Signal(16)
        seq = Signal(8)
        command = Signal(8)
        length = Signal(8)
        position = Signal(8)  # payload bytes received; the byte used while executing; the byte replied
        head = Array(Signal(8, name=f"head_{i}") for i in range(3))  # the first payload bytes
        # Clocks without a byte while receiving, then clocks a sample word waits while executing:
        # one counter serves both timeouts, which never run at once.
        waited = Signal(range(max(self.frame_timeout, self.stall_timeout) + 1))
        byte = self.rx_data

        # -- the record of the last executed request, and the reply being sent -----------------------
        last_seq = Signal(8)
        have_last = Signal()
        last_status = Signal(8)
        last_length = Signal(8)
        replay = Signal()  # the reply comes from the record (else: an immediate reply)
        immediate_status = Signal(8)
        immediate_length = Signal(8)
        hello = Array([last_seq, have_last, Const(self.inputs & 0xFF, 8), Const(self.inputs >> 8, 8),
                       Const(self.feature_bytes, 8), Const(self.classes, 8), Const(regs.MAP_VERSION, 8),
                       Const(0, 8)])  # padded to 8 entries: a complete case in the Verilog
        assert len(hello) == frames.HELLO_LENGTH + 1

        # -- executing --------------------------------------------------------------------------------
        address = Cat(head[1], head[0])[:regs.ADDR_WIDTH]
        word = Signal(32)
        byte_index = Signal(2)
        words_done = Signal(8)
        words_wanted = Signal(8)
        drained = Signal(range(frames.MAX_PREDICTIONS_PER_REPLY + 1))

        m.d.comb += [
            request_write.addr.eq(position), request_write.data.eq(byte),
            request_read.addr.eq(position),
            reply_write.data.eq(word[:8]), reply_write.addr.eq(last_length),
            self.m_axil_awaddr.eq(address), self.m_axil_araddr.eq(address),
            self.m_axil_wdata.eq(word), self.m_axil_wstrb.eq(0xF),
        ]

        def bus_status(response):
            return Mux(equals(response, _DECERR), int(frames.Status.BUS_DECERR), int(frames.Status.BUS_SLVERR))

        def reply_immediately(status, payload_length=0):
            m.d.sync += [replay.eq(0), immediate_status.eq(int(status)),
                         immediate_length.eq(payload_length)]

        m.d.comb += [crc_byte.eq(byte), crc_after.eq(crc16_next(crc, crc_byte))]
        reply_length = Signal(8)
        m.d.comb += [reply_length.eq(Mux(replay, last_length, immediate_length)),
                     reply_read.addr.eq(position)]

        def send(value, next_state, m=m):
            m.d.comb += [self.tx_data.eq(value), self.tx_valid.eq(1)]
            with m.If(self.tx_ready):
                fsm.goto(next_state)
            return self.tx_ready

        with StateMachine(m, _STATES, name="bridge_state") as fsm:
            # -- receive ---------------------------------------------------------------------------
            with fsm.state("SYNC"):
                m.d.sync += [crc.eq(0xFFFF), position.eq(0), waited.eq(0)]
                with m.If(self.rx_valid & (byte == frames.SYNC_REQUEST)):
                    fsm.goto("SEQ")

            def receiving():
                """In a frame byte state: abandon the frame when bytes stop; a byte enters the CRC.
                Returns the condition under which the state takes a byte."""
                m.d.sync += waited.eq(waited + 1)
                with m.If(self.rx_valid):
                    m.d.sync += [crc.eq(crc_after), waited.eq(0)]
                with m.Elif(waited == self.frame_timeout):
                    fsm.goto("SYNC")
                return self.rx_valid

            with fsm.state("SEQ"):
                with m.If(receiving()):
                    m.d.sync += seq.eq(byte)
                    fsm.goto("COMMAND")
            with fsm.state("COMMAND"):
                with m.If(receiving()):
                    m.d.sync += command.eq(byte)
                    fsm.goto("LENGTH")
            with fsm.state("LENGTH"):
                with m.If(receiving()):
                    m.d.sync += length.eq(byte)
                    fsm.goto("PAYLOAD")
                    with m.If(equals(byte, 0)):
                        fsm.goto("CRC_HI")
            with fsm.state("PAYLOAD"):
                with m.If(receiving()):
                    m.d.comb += request_write.en.eq(1)
                    m.d.sync += position.eq(position + 1)
                    for i in range(3):
                        with m.If(equals(position, i)):
                            m.d.sync += head[i].eq(byte)
                    with m.If(position + 1 == length):
                        fsm.goto("CRC_HI")
            with fsm.state("CRC_HI"):
                with m.If(receiving()):
                    fsm.goto("CRC_LO")
            with fsm.state("CRC_LO"):
                with m.If(receiving()):
                    fsm.goto("DISPATCH")

            # -- decide -----------------------------------------------------------------------------
            with fsm.state("DISPATCH"):
                burst = head[2]
                write_words = (length - 2)[2:8]
                length_ok = Signal()
                with m.If(equals(command, int(frames.Command.READ))):
                    m.d.comb += length_ok.eq((length == 3) & (burst >= 1) & (burst <= frames.MAX_BURST_WORDS))
                with m.Elif(equals(command, int(frames.Command.WRITE))):
                    m.d.comb += length_ok.eq((length >= 6) & ~(length - 2)[:2].any()
                                             & (length <= 2 + 4 * frames.MAX_BURST_WORDS))
                with m.Elif(equals(command, int(frames.Command.SAMPLE))):
                    m.d.comb += length_ok.eq(length == sample_length)
                with m.Else():  # PREDICTIONS, HELLO
                    m.d.comb += length_ok.eq(equals(length, 0))
                known = Cat(*(equals(command, int(c)) for c in frames.Command)).any()
                fsm.goto("REPLY_SYNC")
                with m.If(crc != 0):
                    reply_immediately(frames.Status.BAD_CRC)
                with m.Elif(~known):
                    reply_immediately(frames.Status.BAD_COMMAND)
                with m.Elif(~length_ok):
                    reply_immediately(frames.Status.BAD_LENGTH)
                with m.Elif(equals(command, int(frames.Command.HELLO))):
                    reply_immediately(frames.Status.OK, frames.HELLO_LENGTH)
                with m.Elif(have_last & (seq == last_seq)):
                    m.d.sync += replay.eq(1)  # a retransmission: answer again, do nothing
                with m.Else():
                    m.d.sync += [replay.eq(1), have_last.eq(1), last_seq.eq(seq), last_status.eq(int(frames.Status.OK)),
                                 last_length.eq(0), words_done.eq(0), byte_index.eq(0), waited.eq(0),
                                 drained.eq(0)]
                    with m.If(equals(command, int(frames.Command.READ))):
                        m.d.sync += words_wanted.eq(burst)
                        fsm.goto("READ_ADDRESS")
                    with m.Elif(equals(command, int(frames.Command.WRITE))):
                        m.d.sync += [words_wanted.eq(write_words), position.eq(2)]
                        fsm.goto("WRITE_FETCH")
                    with m.Elif(equals(command, int(frames.Command.SAMPLE))):
                        m.d.sync += [position.eq(0), words_wanted.eq(self.inputs)]
                        fsm.goto("SAMPLE_FETCH")
                    with m.Else():  # PREDICTIONS
                        fsm.goto("DRAIN")

            # -- READ: COUNT reads of one address, each word into the reply, little-endian --------------
            with fsm.state("READ_ADDRESS"):
                m.d.comb += self.m_axil_arvalid.eq(1)
                with m.If(self.m_axil_arready):
                    fsm.goto("READ_DATA")
            with fsm.state("READ_DATA"):
                m.d.comb += self.m_axil_rready.eq(1)
                with m.If(self.m_axil_rvalid):
                    with m.If(self.m_axil_rresp.any()):  # not OKAY
                        m.d.sync += last_status.eq(bus_status(self.m_axil_rresp))
                        fsm.goto("REPLY_SYNC")
                    with m.Else():
                        m.d.sync += [word.eq(self.m_axil_rdata), byte_index.eq(0)]
                        fsm.goto("READ_STORE")
            with fsm.state("READ_STORE"):
                m.d.comb += reply_write.en.eq(1)
                m.d.sync += [word.eq(word >> 8), last_length.eq(last_length + 1), byte_index.eq(byte_index + 1)]
                with m.If(byte_index == 3):
                    m.d.sync += words_done.eq(words_done + 1)
                    with m.If(words_done + 1 == words_wanted):
                        fsm.goto("REPLY_SYNC")
                    with m.Else():
                        fsm.goto("READ_ADDRESS")

            # -- WRITE: words from the payload (from byte 2), each to the one address ------------------
            with fsm.state("WRITE_FETCH"):
                fsm.goto("WRITE_BYTE")  # the read port shows payload[position] at the next clock
            with fsm.state("WRITE_BYTE"):
                m.d.sync += [word.eq(Cat(word[8:], request_read.data)), position.eq(position + 1),
                             byte_index.eq(byte_index + 1)]
                fsm.goto("WRITE_FETCH")
                with m.If(byte_index == 3):
                    fsm.goto("WRITE_ADDRESS")
            with fsm.state("WRITE_ADDRESS"):
                m.d.comb += [self.m_axil_awvalid.eq(1), self.m_axil_wvalid.eq(1)]
                with m.If(self.m_axil_awready & self.m_axil_wready):
                    fsm.goto("WRITE_RESPONSE")
            with fsm.state("WRITE_RESPONSE"):
                m.d.comb += self.m_axil_bready.eq(1)
                with m.If(self.m_axil_bvalid):
                    m.d.sync += words_done.eq(words_done + 1)
                    with m.If(self.m_axil_bresp.any()):  # not OKAY
                        m.d.sync += last_status.eq(bus_status(self.m_axil_bresp))
                        fsm.goto("REPLY_SYNC")
                    with m.Elif(words_done + 1 == words_wanted):
                        fsm.goto("REPLY_SYNC")
                    with m.Else():
                        fsm.goto("WRITE_FETCH")

            # -- SAMPLE: F features, sign-extended, then the label with TLAST ------------------------
            feature = Signal(32)
            m.d.comb += feature.eq(word.as_signed() >> (32 - 8 * self.feature_bytes))
            is_label = words_done == words_wanted
            with fsm.state("SAMPLE_FETCH"):
                fsm.goto("SAMPLE_BYTE")
            with fsm.state("SAMPLE_BYTE"):
                # Bytes enter at the top, so the feature ends in the top bytes of ``word``.
                m.d.sync += [word.eq(Cat(word[8:], request_read.data)), position.eq(position + 1),
                             byte_index.eq(byte_index + 1), waited.eq(0)]
                fsm.goto("SAMPLE_FETCH")
                with m.If(is_label | (byte_index == self.feature_bytes - 1)):
                    fsm.goto("SAMPLE_PUSH")
            with fsm.state("SAMPLE_PUSH"):
                m.d.comb += [self.m_axis_tvalid.eq(1), self.m_axis_tlast.eq(is_label),
                             self.m_axis_tdata.eq(Mux(is_label, word[24:], feature))]
                m.d.sync += waited.eq(waited + 1)
                with m.If(self.m_axis_tready):
                    m.d.sync += [words_done.eq(words_done + 1), byte_index.eq(0)]
                    fsm.goto("SAMPLE_FETCH")
                    with m.If(is_label):
                        fsm.goto("DRAIN")
                with m.Elif(waited == self.stall_timeout):
                    m.d.sync += last_status.eq(int(frames.Status.STALL))
                    fsm.goto("REPLY_SYNC")

            # -- the predictions that are ready, one byte each ----------------------------------------
            with fsm.state("DRAIN"):
                with m.If(predictions.r_rdy & (drained < frames.MAX_PREDICTIONS_PER_REPLY)):
                    m.d.comb += [predictions.r_en.eq(1), reply_write.en.eq(1), reply_write.data.eq(predictions.r_data)]
                    m.d.sync += [last_length.eq(last_length + 1), drained.eq(drained + 1)]
                with m.Else():
                    fsm.goto("REPLY_SYNC")

            # -- reply --------------------------------------------------------------------------------
            with fsm.state("REPLY_SYNC"):
                m.d.sync += [crc.eq(0xFFFF), position.eq(0)]
                send(frames.SYNC_REPLY, "REPLY_SEQ")

            def send_counted(value, next_state):
                """Send a byte that the reply's CRC covers; returns the handshake."""
                handshake = send(value, next_state)
                m.d.comb += crc_byte.eq(self.tx_data)
                with m.If(handshake):
                    m.d.sync += crc.eq(crc_after)
                return handshake

            with fsm.state("REPLY_SEQ"):
                # Every reply's SEQ is ``seq``: an immediate reply answers the request just received, and a
                # replayed or executed one has ``last_seq == seq``.
                send_counted(seq, "REPLY_STATUS")
            with fsm.state("REPLY_STATUS"):
                send_counted(Mux(replay, last_status, immediate_status), "REPLY_LENGTH")
            with fsm.state("REPLY_LENGTH"):
                with m.If(send_counted(reply_length, "REPLY_PAYLOAD") & equals(reply_length, 0)):
                    fsm.goto("REPLY_CRC_HI")
            with fsm.state("REPLY_PAYLOAD"):
                # The reply memory's read port shows byte position a clock after it is set; the
                # transmitter is busy for a whole byte time between two handshakes.
                value = Mux(replay, reply_read.data, hello[position[:3]])
                with m.If(send_counted(value, "REPLY_PAYLOAD")):
                    m.d.sync += position.eq(position + 1)
                    with m.If(position + 1 == reply_length):
                        fsm.goto("REPLY_CRC_HI")
            with fsm.state("REPLY_CRC_HI"):
                send(crc[8:], "REPLY_CRC_LO")
            with fsm.state("REPLY_CRC_LO"):
                send(crc[:8], "SYNC")
        return m

