"""The UART receiver and transmitter on their own (Amaranth's simulator): bytes sent by one are
received by the other at several bit times, the line's frame is 8N1 least significant bit first,
and a bit time too short to sample is refused."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from ssdfa.rtl.uart_rx import UARTReceiver
from ssdfa.rtl.uart_tx import UARTTransmitter


def _loopback(clocks_per_bit: int, payload: list[int]) -> tuple[list[int], list[int]]:
    """Send ``payload`` through a transmitter wired to a receiver: (bytes received, the line's
    level at every clock)."""
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(clocks_per_bit=clocks_per_bit)
    m.submodules.rx = rx = UARTReceiver(clocks_per_bit=clocks_per_bit)
    m.d.comb += rx.rx.eq(tx.tx)
    received, line = [], []

    async def send(ctx):
        for byte in payload:
            ctx.set(tx.data, byte)
            ctx.set(tx.valid, 1)
            while not ctx.get(tx.ready):  # the byte goes at the first edge with ready high
                await ctx.tick()
            await ctx.tick()
            ctx.set(tx.valid, 0)
        await ctx.tick().repeat(12 * clocks_per_bit)

    async def listen(ctx):
        async for _, _, valid, data, level in ctx.tick().sample(rx.valid, rx.data, tx.tx):
            line.append(level)
            if valid:
                received.append(data)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_process(listen)
    sim.run()
    return received, line


@pytest.mark.parametrize("clocks_per_bit", [4, 5, 7, 16])
def test_bytes_sent_are_the_bytes_received(clocks_per_bit):
    seed = 11 + clocks_per_bit
    payload = [0x00, 0xFF, 0x55, 0xAA] + [random.Random(seed).randrange(256) for _ in range(12)]
    received, _ = _loopback(clocks_per_bit, payload)
    assert received == payload, f"clocks_per_bit {clocks_per_bit}, seed {seed}"


def test_the_line_carries_start_data_lsb_first_and_stop():
    clocks_per_bit = 4
    _, line = _loopback(clocks_per_bit, [0b1000_0110])
    start = line.index(0)
    bits = line[start : start + 10 * clocks_per_bit : clocks_per_bit]
    assert bits == [0, 0, 1, 1, 0, 0, 0, 0, 1, 1]  # start, 0x86 LSB first, stop
    assert all(level == 1 for level in line[:start])  # idle high


@pytest.mark.parametrize("component", [UARTReceiver, UARTTransmitter])
@pytest.mark.parametrize("clocks_per_bit", [3, 0, 4.0, "8"])
def test_a_bit_time_too_short_or_not_whole_is_refused(component, clocks_per_bit):
    with pytest.raises(ValueError, match=f"at least 4, not {clocks_per_bit!r}"):
        component(clocks_per_bit=clocks_per_bit)
