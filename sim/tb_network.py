"""cocotb testbench of the network co-simulation top (``network_top``, docs/network.md).

The top holds SSDFANetwork and the ``network_stream`` harness, which plays the samples and
labels from files and records the predictions. This testbench plays a *program*, a JSON file
named by ``SSDFA_NETWORK_PROGRAM`` written by :mod:`ssdfa.sim.network_cosim`: a list of steps,

- ``{"op": "write", "words": [[layer, pe, space, addr, data], ...]}``: host writes, one a clock;
- ``{"op": "run", "name": ..., "mode": 0 | 1, "samples": S, "max_cycles": C}``: start a run
  (TRAIN or INFER) and wait for ``done``, touching the design only at its start and end;
- ``{"op": "read", "name": ..., "reads": [[layer, pe, space, addr], ...]}``: host reads, one a
  clock, pipelined;

and writes the words read and each run's clocks, wall time and CPU time to the JSON file named
in the program's ``result``. Every host access happens on a falling edge, half a clock away
from the edges at which the design samples it.

This module imports only cocotb and the standard library: the simulator loads it.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, Timer, with_timeout

PROGRAM_ENV = "SSDFA_NETWORK_PROGRAM"
#: Clock period in ns; cycles are simulated time divided by it.
PERIOD_NS = 10
RESET_CYCLES = 2
_INPUTS = ("host__layer", "host__pe", "host__space", "host__addr", "host__w_en", "host__w_data", "host__r_en",
           "run__valid", "run__payload")


def _set_host(dut, layer, pe, space, addr) -> None:
    dut.host__layer.value = layer
    dut.host__pe.value = pe
    dut.host__space.value = space
    dut.host__addr.value = addr


async def _write(dut, words) -> int:
    for layer, pe, space, addr, data in words:
        _set_host(dut, layer, pe, space, addr)
        dut.host__w_data.value = data
        dut.host__w_en.value = 1
        await FallingEdge(dut.clk)
    dut.host__w_en.value = 0
    return len(words)


async def _read(dut, reads) -> list[int]:
    values = []
    for index, (layer, pe, space, addr) in enumerate(reads):
        _set_host(dut, layer, pe, space, addr)
        dut.host__r_en.value = 1
        await FallingEdge(dut.clk)
        # The word registered at the rising edge just passed is on r_data now.
        values.append(dut.host__r_data.value.to_unsigned())
    dut.host__r_en.value = 0
    return values


async def _run(dut, step) -> dict:
    # The run word: mode in bit 0, the sample count above it (rtl/network.py, RunLayout).
    dut.run__payload.value = int(step["mode"]) | (int(step["samples"]) << 1)
    dut.run__valid.value = 1
    start_ns = get_sim_time(unit="ns")
    start = time.perf_counter()
    start_cpu = time.process_time()
    await FallingEdge(dut.clk)  # `run.ready` is high between runs: taken at the edge just passed
    dut.run__valid.value = 0
    if int(step["samples"]):
        await with_timeout(RisingEdge(dut.done), int(step["max_cycles"]) * PERIOD_NS, "ns")
    else:
        await RisingEdge(dut.clk)
    cycles = round((get_sim_time(unit="ns") - start_ns) / PERIOD_NS)
    record = {"name": step["name"], "cycles": cycles, "seconds": time.perf_counter() - start,
              "cpu_seconds": time.process_time() - start_cpu}
    await FallingEdge(dut.clk)
    return record


@cocotb.test()
async def network_program(dut):
    """Plays the program: loads, runs and reads back; every run ends with ``done``."""
    with open(os.environ[PROGRAM_ENV]) as handle:
        program = json.load(handle)
    # Let the simulator finish time 0 first: Icarus runs the generated code's combinational
    # `always @*` blocks once at time 0, and a testbench write in the same step can make it
    # skip that run, leaving a multiplexer whose inputs never change at X.
    await Timer(1, unit="ns")
    for name in _INPUTS:
        getattr(dut, name).value = 0
    dut.rst.value = 1
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await ClockCycles(dut.clk, RESET_CYCLES)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    assert not dut.missing.value, "network_stream could not open its sample, label or prediction file"
    result = {"runs": [], "reads": {}, "writes": 0, "streams": {}}
    for step in program["steps"]:
        if step["op"] == "write":
            result["writes"] += await _write(dut, step["words"])
        elif step["op"] == "run":
            result["runs"].append(await _run(dut, step))
        elif step["op"] == "read":
            result["reads"][step["name"]] = await _read(dut, step["reads"])
        else:
            raise ValueError(f"unknown program step {step['op']!r}")
    result["streams"] = {name: int(getattr(dut, port).value.to_unsigned())
                         for name, port in (("x_taken", "x_taken"), ("labels_taken", "labels_taken"),
                                            ("predictions_taken", "stream_predictions"))}
    with open(program["result"], "w") as handle:
        json.dump(result, handle)
