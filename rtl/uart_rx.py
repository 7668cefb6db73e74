"""UARTReceiver: 8 data bits, no parity, one stop bit, least significant bit first."""


from amaranth.hdl import Cat, Module, Signal
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .building_blocks import equals
from .state_machine import StateMachine
from .uart_bit_time import UARTBitTimed

__all__ = ["UARTReceiver"]


class UARTReceiver(UARTBitTimed):
    """Samples ``rx`` in the middle of each bit and presents each good byte for one clock.

    A start bit that is gone at its middle is a glitch and is ignored; a byte whose stop bit is
    low is dropped (the frame CRC of the bridge catches what that loses).

    Parameters
    ----------
    clocks_per_bit : int
        The bit time in clocks (clock frequency / baud rate, rounded); at least 4.

    Attributes
    ----------
    rx : In(1)
        The serial line (idle high); synchronised here.
    data : Out(8)
        The byte, valid while ``valid`` is high (one clock).
    """

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx, init=1)
        cpb = self._clocks_per_bit
        timer = Signal(range(cpb))
        bit = Signal(range(8))
        shift = Signal(8)
        m.d.sync += self.valid.eq(0)
        m.d.comb += self.data.eq(shift)
        with StateMachine(m, ('IDLE', 'START', 'DATA', 'STOP'), name="uart_rx_state") as fsm:
            with fsm.state("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(cpb // 2 - 1)
                    fsm.goto("START")
            with fsm.state("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(equals(timer, 0)):
                    m.d.sync += [timer.eq(cpb - 1), bit.eq(0)]
                    # A start bit that is gone at its middle was a glitch.
                    fsm.goto("DATA")
                    with m.If(rx):
                        fsm.goto("IDLE")
            with fsm.state("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(equals(timer, 0)):
                    m.d.sync += [timer.eq(cpb - 1), shift.eq(Cat(shift[1:], rx)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        fsm.goto("STOP")
            with fsm.state("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(equals(timer, 0)):
                    m.d.sync += self.valid.eq(rx)
                    fsm.goto("IDLE")
        return m

