"""BoardTop: ``BoardCore`` on a board's pads through amaranth-boards (docs/board.md §5). The
design runs from the board's oscillator (no PLL), with a power-on reset of its own."""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import io

from .board_core import BoardCore
from .building_blocks import equals

__all__ = ["BoardTop", "POWER_ON_RESET_CLOCKS"]

#: Clocks the design is held in reset after configuration.
POWER_ON_RESET_CLOCKS = 255


class BoardTop(Elaboratable):
    """The board core with its UART pins on the platform's ``uart`` resource 0.

    The ``sync`` domain is defined here rather than taken from the platform: some amaranth-boards
    platforms (the ULX3S) give a reset-less default domain, and the learner's memories and
    counters are reset through ``sync``'s reset. A counter in a reset-less domain, which starts
    from its configured value, holds ``sync`` in reset for the first ``POWER_ON_RESET_CLOCKS``.

    Parameters
    ----------
    core : BoardCore
        Built for the board's clock and baud rate.
    """

    def __init__(self, core: BoardCore):
        self.core = core

    def elaborate(self, platform):
        m = Module()
        m.submodules.clock_buffer = clock = io.Buffer("i", platform.request(platform.default_clk, 0, dir="-"))
        m.domains.sync = ClockDomain("sync")
        m.domains.power_on = ClockDomain("power_on", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(clock.i), ClockSignal("power_on").eq(clock.i)]
        countdown = Signal(range(POWER_ON_RESET_CLOCKS + 1), init=POWER_ON_RESET_CLOCKS)
        with m.If(~equals(countdown, 0)):
            m.d.power_on += countdown.eq(countdown - 1)
        m.d.comb += ResetSignal("sync").eq(~equals(countdown, 0))

        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.uart_rx.eq(rx.i), tx.o.eq(core.uart_tx)]
        return m
