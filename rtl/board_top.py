"""BoardTop: ``BoardCore`` on a board's pads through amaranth-boards (docs/board.md §5). The
design runs from the board's oscillator (no PLL): the platform's default clock and reset."""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module

from .board_core import BoardCore

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """The board core with its UART pins on the platform's ``uart`` resource 0.

    Parameters
    ----------
    core : BoardCore
        Built for the board's clock and baud rate.
    """

    def __init__(self, core: BoardCore):
        self.core = core

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        uart = platform.request("uart", 0)
        m.d.comb += [core.uart_rx.eq(uart.rx.i), uart.tx.o.eq(core.uart_tx)]
        return m
