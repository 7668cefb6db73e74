"""A tiny multiply-accumulator and its Python twin: the design of the toolchain smoke test.

It proves that the path Amaranth -> Verilog -> Icarus/Verilator -> cocotb (and Yosys) works end
to end with real arithmetic; nothing in the SSDFA design depends on it. Its testbench is
:mod:`ssdfa.sim.tb_smoke`, kept apart so that the simulator does not import Amaranth.
"""

# No `from __future__ import annotations`: wiring.Component reads its ports from the class
# annotations, which must stay objects, not strings.
from collections.abc import Sequence

from amaranth import Module, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SmokeMac", "smoke_verilog", "smoke_model", "TOPLEVEL", "ACC_WIDTH", "COUNT_WIDTH"]

TOPLEVEL = "smoke_mac"
ACC_WIDTH = 20
COUNT_WIDTH = 8


class SmokeMac(wiring.Component):
    """``acc += a * b`` on every cycle with ``en``; ``clear`` zeroes ``acc`` and ``count``.

    Attributes
    ----------
    a, b : In(signed(8))
        Factors.
    en, clear : In(1)
        Accumulate this cycle; zero the state (wins over ``en``).
    acc : Out(signed(20))
        The running sum, wrapping at 20 bits.
    count : Out(8)
        How many products were added, wrapping at 8 bits.
    """

    a: In(signed(8))
    b: In(signed(8))
    en: In(1)
    clear: In(1)
    acc: Out(signed(ACC_WIDTH))
    count: Out(unsigned(COUNT_WIDTH))

    def elaborate(self, platform):
        m = Module()
        with m.If(self.clear):
            m.d.sync += [self.acc.eq(0), self.count.eq(0)]
        with m.Elif(self.en):
            m.d.sync += [self.acc.eq(self.acc + self.a * self.b), self.count.eq(self.count + 1)]
        return m


def smoke_verilog() -> str:
    """The Verilog of :class:`SmokeMac`, top module ``smoke_mac``, free of source paths."""
    return verilog.convert(SmokeMac(), name=TOPLEVEL, emit_src=False)


def _wrap(value: int, width: int, *, is_signed: bool) -> int:
    value &= (1 << width) - 1
    if is_signed and value >> (width - 1):
        value -= 1 << width
    return value


def smoke_model(inputs: Sequence[tuple[int, int, int, int]]) -> list[dict[str, int]]:
    """Cycles ``(a, b, en, clear)`` -> vectors holding the outputs :class:`SmokeMac` must show.

    Each vector is ``{"a", "b", "en", "clear", "acc", "count"}``: the inputs driven in a cycle
    and the outputs expected after its rising clock edge.
    """
    acc = count = 0
    vectors = []
    for a, b, en, clear in inputs:
        if clear:
            acc = count = 0
        elif en:
            acc = _wrap(acc + a * b, ACC_WIDTH, is_signed=True)
            count = _wrap(count + 1, COUNT_WIDTH, is_signed=False)
        vectors.append({"a": a, "b": b, "en": en, "clear": clear, "acc": acc, "count": count})
    return vectors
