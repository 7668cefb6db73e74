"""The hardware cast of rtl/building_blocks.py against the model's cast, exhaustively.

``hw_cast`` is ``hw_saturate(hw_round(...))``; the PE puts a register between the two halves.
Every input value of a few widths, signed and unsigned, goes through the Amaranth simulator and
must equal ``model.arithmetic.cast`` for every rounding and overflow mode (STOCH with a fixed
set of draws), including formats narrower and wider than the input and unsigned targets.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from ssdfa.model.arithmetic import STOCH_BITS, FixedFormat, Overflow, Rounding, cast
from ssdfa.rtl.building_blocks import below, hw_round, hw_saturate

# (input shape, input fraction bits, target format): values wider and narrower than the target,
# fewer fraction bits than it (a left shift), signed into unsigned and unsigned into signed.
CASES = [
    (signed(9), 5, FixedFormat(2, 2)),
    (signed(9), 2, FixedFormat(3, 3)),
    (signed(7), 3, FixedFormat(4, 3)),
    (unsigned(8), 4, FixedFormat(2, 2)),
    (signed(8), 4, FixedFormat(2, 2, signed=False)),
    (unsigned(8), 3, FixedFormat(3, 1, signed=False)),
]


@pytest.mark.parametrize("shape, frac, fmt", CASES, ids=[f"{s}-f{f}-{t}" for s, f, t in CASES])
@pytest.mark.parametrize("overflow", list(Overflow), ids=lambda o: o.name)
def test_round_then_saturate_is_the_model_cast_for_every_input(shape, frac, fmt, overflow):
    draws = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234]
    m = Module()
    value = Signal(shape)
    draw = Signal(STOCH_BITS)
    outputs = {}
    for rounding in Rounding:
        rounded = hw_round(value, frac, fmt, rounding, draw if rounding is Rounding.STOCH else None,
                           m=m, name=f"c_{rounding.name.lower()}")
        result = Signal.like(hw_saturate(rounded, fmt, overflow), name=f"out_{rounding.name.lower()}")
        m.d.comb += result.eq(hw_saturate(rounded, fmt, overflow, m=m, name=f"c_{rounding.name.lower()}"))
        outputs[rounding] = result
    lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (0, 1 << shape.width)
    raws = np.arange(lo, hi, dtype=np.int64)
    mismatches = []

    async def bench(ctx):
        for raw, bits in itertools.product(raws.tolist(), draws):
            ctx.set(value, raw)
            ctx.set(draw, bits)
            for rounding, result in outputs.items():
                expected = int(cast(np.array([raw]), frac, fmt, rounding, overflow,
                                    np.array([bits]) if rounding is Rounding.STOCH else None)[0])
                got = ctx.get(result)
                if got != expected:
                    mismatches.append((raw, bits, rounding.name, got, expected))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, f"first mismatches (raw, draw, rounding, got, expected): {mismatches[:5]}"


@pytest.mark.parametrize("width, count", [(4, 10), (6, 10), (6, 16), (5, 1), (3, 0), (3, 8), (3, 9), (7, 33)])
def test_below_is_less_than_for_every_value(width, count):
    m = Module()
    value = Signal(width)
    result = Signal()
    m.d.comb += result.eq(below(value, count))
    wrong = []

    async def bench(ctx):
        for raw in range(1 << width):
            ctx.set(value, raw)
            if ctx.get(result) != (raw < count):
                wrong.append(raw)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not wrong, f"below(value, {count}) wrong for values {wrong[:5]}"
