"""CRC-16/CCITT-FALSE as a combinational function of one byte, the twin of
``ssdfa.board.frames.crc16_update`` (docs/board.md §2)."""

from __future__ import annotations

from amaranth.hdl import Cat, Value

__all__ = ["crc16_next"]


def crc16_next(crc: Value, byte: Value) -> Value:
    """The CRC register after ``byte`` (8 bits) enters ``crc`` (16 bits): polynomial 0x1021,
    most significant bit first, unrolled into an XOR network."""
    bits = [crc[i] for i in range(16)]
    for i in range(8):
        feedback = bits[15] ^ byte[7 - i]
        shifted = [feedback] + bits[:15]  # crc << 1 with the feedback at bit 0
        shifted[5] = shifted[5] ^ feedback
        shifted[12] = shifted[12] ^ feedback
        bits = shifted
    return Cat(*bits)
