"""The UART frame protocol (docs/board.md §2): CRC, encoding and decoding, the RTL CRC against
its Python twin, and the link's retransmission and error paths on a scripted transport."""

from __future__ import annotations

import random

import pytest

from ssdfa.board import frames
from ssdfa.board.frames import Command, Status
from ssdfa.board.link import Link, LinkError


def test_crc16_is_ccitt_false():
    assert frames.crc16(b"123456789") == 0x29B1  # the catalogued check value of CRC-16/CCITT-FALSE
    assert frames.crc16(b"") == 0xFFFF


def test_a_frame_with_its_crc_checks_to_zero():
    frame = frames.encode_request(7, Command.WRITE, bytes(range(30)))
    assert frame[0] == frames.SYNC_REQUEST and frame[1:4] == bytes([7, Command.WRITE, 30])
    assert frames.crc16(frame[1:]) == 0


def test_reply_round_trips_and_every_single_bit_flip_is_caught():
    rng = random.Random(13)
    payload = bytes(rng.randrange(256) for _ in range(40))
    frame = frames.encode_reply(200, Status.BUS_SLVERR, payload)
    reply = frames.decode_reply(frame)
    assert (reply.seq, reply.status, reply.payload) == (200, Status.BUS_SLVERR, payload)
    for bit in range(8 * 4, 8 * len(frame)):  # past SYNC, SEQ, STATUS and LEN, which change the frame's shape
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(frames.FrameError):
            frames.decode_reply(bytes(damaged))


@pytest.mark.parametrize("frame, reason", [
    (b"\x5a\x00", "shorter"),
    (b"\x00" + frames.encode_reply(1, 0)[1:], "SYNC"),
    (frames.encode_reply(1, 0, b"ab")[:-3] + frames.encode_reply(1, 0, b"ab")[-2:], "LEN"),
])
def test_a_malformed_reply_is_refused_naming_why(frame, reason):
    with pytest.raises(frames.FrameError, match=reason):
        frames.decode_reply(frame)


def test_encoder_refuses_what_a_frame_cannot_hold():
    with pytest.raises(ValueError, match="256"):
        frames.encode_request(256, Command.HELLO)
    with pytest.raises(ValueError, match="at most 255"):
        frames.encode_request(0, Command.WRITE, bytes(256))


def test_rtl_crc_matches_the_python_crc():
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from ssdfa.rtl.crc16 import crc16_next

    m = Module()
    crc, byte, out = Signal(16), Signal(8), Signal(16)
    m.d.comb += out.eq(crc16_next(crc, byte))
    rng = random.Random(5)
    cases = [(0xFFFF, 0x31), (0, 0), (0x8000, 0xFF)] + [(rng.randrange(1 << 16), rng.randrange(256)) for _ in range(300)]
    got = []

    async def bench(ctx):
        for value, data in cases:
            ctx.set(crc, value)
            ctx.set(byte, data)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    for (value, data), result in zip(cases, got):
        assert result == frames.crc16_update(value, data), f"crc 0x{value:04X}, byte 0x{data:02X} (seed 5)"


class ScriptedTransport:
    """Answers each request with the next scripted reply (bytes, or None for silence)."""

    name = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.sent = []
        self.pending = b""

    def write(self, data):
        self.sent.append(bytes(data))
        reply = self.replies.pop(0) if self.replies else None
        self.pending = reply or b""

    def read(self, count, timeout):
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def discard_input(self):
        self.pending = b""

    def close(self):
        pass


def test_link_retransmits_a_damaged_or_missing_reply_with_the_same_seq():
    good = frames.encode_reply(9, Status.OK, b"\x01")
    damaged = good[:-1] + bytes([good[-1] ^ 0x40])
    board_saw_bad_crc = frames.encode_reply(9, Status.BAD_CRC)
    transport = ScriptedTransport([damaged, None, board_saw_bad_crc, good])
    link = Link(transport, timeout=0.01, retries=3, next_seq=9)
    assert link.request(Command.PREDICTIONS) == b"\x01"
    assert len(transport.sent) == 4 and len(set(transport.sent)) == 1  # the same frame, SEQ 9, four times
    assert link.retransmissions == 3 and link.next_seq == 10


def test_link_gives_up_in_one_line_after_its_retries():
    link = Link(ScriptedTransport([]), timeout=0.01, retries=2, next_seq=0)
    with pytest.raises(LinkError, match=r"^scripted: SAMPLE request SEQ 0 failed after 3 attempts: no valid reply"):
        link.sample(b"\x00\x00", 1)


def test_link_reports_a_refused_request_by_its_status():
    link = Link(ScriptedTransport([frames.encode_reply(4, Status.BUS_DECERR)]), timeout=0.01, next_seq=4)
    with pytest.raises(LinkError, match="BUS_DECERR"):
        link.read(0x7FC)


def test_hello_starts_numbering_after_the_boards_last_seq():
    hello = frames.encode_reply(0, Status.OK, bytes([41, 1, 64, 0, 2, 10, 1]))
    link = Link(ScriptedTransport([hello]), timeout=0.01)
    info = link.hello()
    assert (info.last_seq, info.inputs, info.feature_bytes, info.classes) == (41, 64, 2, 10)
    assert link.next_seq == 42
