"""UARTTransmitter: 8 data bits, no parity, one stop bit, least significant bit first."""


from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib.wiring import In, Out

from .building_blocks import equals
from .uart_bit_time import UARTBitTimed

__all__ = ["UARTTransmitter"]


class UARTTransmitter(UARTBitTimed):
    """Sends the byte on ``data`` when ``valid`` and ``ready`` are both high.

    Parameters
    ----------
    clocks_per_bit : int
        The bit time in clocks; at least 4 (the receiver's minimum).

    Attributes
    ----------
    tx : Out(1)
        The serial line (idle high).
    ready : Out(1)
        High while the line is idle: the byte on ``data`` goes out at this clock if ``valid``.
    """

    data: In(8)
    valid: In(1)
    ready: Out(1)
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        cpb = self._clocks_per_bit
        timer = Signal(range(cpb))
        bits_left = Signal(range(11))
        shift = Signal(10, init=0x3FF)  # stop bit, 8 data bits, start bit: sent from bit 0
        m.d.comb += [self.tx.eq(shift[0]), self.ready.eq(equals(bits_left, 0))]
        with m.If(equals(bits_left, 0)):
            with m.If(self.valid):
                m.d.sync += [shift.eq(Cat(Const(0, 1), self.data, Const(1, 1))), bits_left.eq(10),
                             timer.eq(cpb - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(equals(timer, 0)):
                m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), bits_left.eq(bits_left - 1),
                             timer.eq(cpb - 1)]
        return m
