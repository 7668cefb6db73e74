"""UARTBitTimed: what the UART receiver and transmitter share, their bit time in clocks."""

from amaranth.lib import wiring

__all__ = ["UARTBitTimed", "MIN_CLOCKS_PER_BIT"]

#: The receiver samples each bit in its middle after a synchroniser: four clocks are the least
#: that leave it a middle.
MIN_CLOCKS_PER_BIT = 4


class UARTBitTimed(wiring.Component):
    """A component timed by a whole number of clocks per UART bit (its subclasses' ports are their
    own annotations).

    Parameters
    ----------
    clocks_per_bit : int
        The bit time in clocks (clock frequency / baud rate, rounded); at least
        ``MIN_CLOCKS_PER_BIT``.
    """

    def __init__(self, *, clocks_per_bit: int):
        self._MustUse__silence = True  # a refused instance is not an unused design
        if not isinstance(clocks_per_bit, int) or clocks_per_bit < MIN_CLOCKS_PER_BIT:
            raise ValueError(
                f"clocks_per_bit must be an integer of at least {MIN_CLOCKS_PER_BIT}, not {clocks_per_bit!r}")
        self._MustUse__silence = False
        self._clocks_per_bit = clocks_per_bit
        super().__init__()

    @property
    def clocks_per_bit(self) -> int:
        return self._clocks_per_bit
