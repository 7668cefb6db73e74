"""The UART frame protocol between a host and the board's bridge (docs/board.md §2): the one
source of its constants, and the host's encoder and decoder.

Standard library only: the RTL bridge (rtl/uart_bridge.py) takes its constants from here, and so
do the host driver and the tests.

A request is ``SYNC_REQUEST, SEQ, CMD, LEN, PAYLOAD[LEN], CRC_HI, CRC_LO``; a reply is
``SYNC_REPLY, SEQ, STATUS, LEN, PAYLOAD[LEN], CRC_HI, CRC_LO``. The CRC is CRC-16/CCITT-FALSE
(polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR) over SEQ through the
payload, sent most significant byte first, so that the CRC over the whole frame after SYNC,
CRC bytes included, is zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "SYNC_REQUEST",
    "SYNC_REPLY",
    "MAX_PAYLOAD",
    "MAX_BURST_WORDS",
    "MAX_PREDICTIONS_PER_REPLY",
    "HELLO_LENGTH",
    "Command",
    "Status",
    "crc16",
    "crc16_update",
    "encode_request",
    "encode_reply",
    "Reply",
    "FrameError",
    "decode_reply",
    "request_overhead",
    "reply_overhead",
]

SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
#: LEN is one byte.
MAX_PAYLOAD = 255
#: Words in one READ or WRITE frame (a READ reply carries 4 bytes per word).
MAX_BURST_WORDS = 63
#: Predictions one reply carries at most (the bridge's prediction FIFO is deeper).
MAX_PREDICTIONS_PER_REPLY = 16
#: Bytes in a HELLO reply's payload.
HELLO_LENGTH = 7


class Command(IntEnum):
    """Request codes (docs/board.md §2.2)."""

    HELLO = 0x00        #: always answered, never replayed: the board's last SEQ and the network's shape
    READ = 0x01         #: ADDR_HI, ADDR_LO, COUNT: COUNT reads of one AXI4-Lite address
    WRITE = 0x02        #: ADDR_HI, ADDR_LO, then 1..63 little-endian words written to that address
    SAMPLE = 0x03       #: F features (FEATURE_BYTES each, little-endian) then the label byte
    PREDICTIONS = 0x04  #: nothing: the reply carries the predictions that are ready


class Status(IntEnum):
    """Reply codes (docs/board.md §2.3)."""

    OK = 0
    BAD_CRC = 1       #: the request's CRC did not check: nothing was done
    BAD_LENGTH = 2    #: LEN does not fit the command: nothing was done
    BAD_COMMAND = 3   #: no such command: nothing was done
    BUS_SLVERR = 4    #: the learner answered SLVERR (busy, read-only): the words before it were done
    BUS_DECERR = 5    #: no register at the address: the words before it were done
    STALL = 6         #: the learner did not take a sample word in time (no run active?)


def crc16_update(crc: int, byte: int) -> int:
    """One byte into a CRC-16/CCITT-FALSE register."""
    crc ^= (byte & 0xFF) << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        crc &= 0xFFFF
    return crc


def crc16(data: bytes | bytearray, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``)."""
    for byte in data:
        crc = crc16_update(crc, byte)
    return crc


def _frame(sync: int, seq: int, code: int, payload: bytes) -> bytes:
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"a sequence number is one byte, not {seq}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a payload holds at most {MAX_PAYLOAD} bytes, not {len(payload)}")
    body = bytes([seq, code, len(payload)]) + bytes(payload)
    return bytes([sync]) + body + crc16(body).to_bytes(2, "big")


def encode_request(seq: int, command: Command | int, payload: bytes = b"") -> bytes:
    """The bytes of one request frame."""
    return _frame(SYNC_REQUEST, seq, int(command), payload)


def encode_reply(seq: int, status: Status | int, payload: bytes = b"") -> bytes:
    """The bytes of one reply frame (what the bridge sends; used by tests)."""
    return _frame(SYNC_REPLY, seq, int(status), payload)


def request_overhead() -> int:
    """Bytes of a request besides its payload."""
    return 6


def reply_overhead() -> int:
    """Bytes of a reply besides its payload."""
    return 6


@dataclass(frozen=True)
class Reply:
    seq: int
    status: int
    payload: bytes


class FrameError(Exception):
    """A reply that cannot be decoded: the message says why (bad SYNC, bad CRC, short)."""


def decode_reply(frame: bytes) -> Reply:
    """Decode one whole reply frame (SYNC through the CRC)."""
    if len(frame) < reply_overhead():
        raise FrameError(f"a reply of {len(frame)} bytes is shorter than the {reply_overhead()}-byte minimum")
    if frame[0] != SYNC_REPLY:
        raise FrameError(f"reply starts with 0x{frame[0]:02X}, not the SYNC byte 0x{SYNC_REPLY:02X}")
    length = frame[3]
    if len(frame) != length + reply_overhead():
        raise FrameError(f"reply LEN {length} does not match its {len(frame)} bytes")
    if crc16(frame[1:]) != 0:
        raise FrameError(f"reply CRC 0x{int.from_bytes(frame[-2:], 'big'):04X} does not check")
    return Reply(frame[1], frame[2], bytes(frame[4:-2]))
