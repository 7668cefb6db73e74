"""The boards ``ssdfa board`` knows: their amaranth-boards platform, clock, baud rate and the
default learner that fits them (docs/board.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

from ssdfa.errors import SsdfaError

__all__ = ["Board", "BOARDS", "board"]


@dataclass(frozen=True)
class Board:
    """One board.

    Attributes
    ----------
    name : str
        As ``--board`` takes it.
    platform : str
        ``module:Class`` of its amaranth-boards platform.
    family : str
        ``ice40`` or ``ecp5``: which nextpnr and packer build it.
    clock_hz : int
        The board oscillator, which clocks the design (no PLL).
    baud : int
        The UART's baud rate.
    hidden, pes : tuple of int
        The default learner: hidden layer sizes and PEs per layer (digits: 64 inputs, 10 classes).
    """

    name: str
    platform: str
    family: str
    clock_hz: int
    baud: int
    hidden: tuple
    pes: tuple
    description: str

    @property
    def clocks_per_bit(self) -> int:
        return round(self.clock_hz / self.baud)

    def platform_instance(self):
        import importlib

        module, name = self.platform.split(":")
        return getattr(importlib.import_module(module), name)()


BOARDS = {
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40", 12_000_000, 115_200,
                        (24,), (1, 1), "iCEBreaker, Lattice iCE40 UP5K (SG48), 12 MHz oscillator, FTDI UART"),
    "ulx3s": Board("ulx3s", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5", 25_000_000, 115_200,
                   (32,), (4, 2), "ULX3S, Lattice ECP5 LFE5U-85F (CABGA381), 25 MHz oscillator, FTDI UART"),
}


def board(name: str) -> Board:
    """The board called ``name``; a one-line SsdfaError for any other name."""
    try:
        return BOARDS[name]
    except KeyError:
        raise SsdfaError(f"unknown board {name!r}; expected one of {', '.join(BOARDS)}") from None
