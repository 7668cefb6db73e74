"""cocotb tests for the toolchain smoke design, :class:`ssdfa.sim.smoke_mac.SmokeMac`.

The vectors come from the JSON file named by ``SSDFA_SMOKE_VECTORS`` (the way co-simulation
testbenches receive golden files), as written from :func:`ssdfa.sim.smoke_mac.smoke_model`.
This module imports only cocotb: the simulator loads it, and Amaranth would slow every start.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

VECTORS_ENV = "SSDFA_SMOKE_VECTORS"


async def _reset(dut) -> None:
    # Drive every input at time 0: Verilator is 2-state and Icarus turns X into errors.
    for name in ("a", "b", "en", "clear"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start()
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


@cocotb.test()
async def mac_matches_vectors(dut):
    """Every cycle's ``acc`` and ``count`` equal the vectors' expected values."""
    with open(os.environ[VECTORS_ENV]) as handle:
        vectors = json.load(handle)
    await _reset(dut)
    for cycle, vector in enumerate(vectors):
        dut.a.value = vector["a"]
        dut.b.value = vector["b"]
        dut.en.value = vector["en"]
        dut.clear.value = vector["clear"]
        await RisingEdge(dut.clk)
        await ReadOnly()
        got = (dut.acc.value.to_signed(), dut.count.value.to_unsigned())
        expected = (vector["acc"], vector["count"])
        assert got == expected, f"cycle {cycle}: got (acc, count) {got}, expected {expected} from {vector}"
        await FallingEdge(dut.clk)


@cocotb.test()
async def reset_zeroes_outputs(dut):
    """After reset both outputs read 0, whatever an earlier test left behind."""
    await _reset(dut)
    await ReadOnly()
    assert dut.acc.value.to_signed() == 0
    assert dut.count.value.to_unsigned() == 0
