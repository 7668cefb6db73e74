"""cocotb testbench of ``AXILearner`` (docs/bus.md): every access goes through cocotbext-axi's bus
models, an ``AxiLiteMaster`` on ``s_axil_*``, an ``AxiStreamSource`` on ``s_axis_*`` and an
``AxiStreamSink`` on ``m_axis_*``, each with its own pause generator (back-pressure and idle
clocks from a fixed seed).

It plays a *program*, a JSON file named by ``SSDFA_AXI_PROGRAM`` written by
:mod:`ssdfa.sim.axi_cosim`, and records what the bus answered; the checking is done there,
against the register model and the reference model. Steps:

- ``{"op": "access", "name", "accesses": [["w", address, value, length] | ["r", address], ...]}``:
  raw AXI4-Lite accesses, one after the other; the response code and word of each are recorded;
- ``{"op": "load", "writes": [[layer, pe, space, addr, data], ...]}``: learner writes through
  SELECT, ADDRESS and DATA (ADDRESS increments by itself, so a run of addresses is one DATA
  write each);
- ``{"op": "read", "name", "reads": [[layer, pe, space, addr], ...]}``: learner reads, the
  counters through the counter window;
- ``{"op": "run", "name", "mode", "packets": [[word, ...], ...], "probes": [...], "max_cycles"}``:
  start a run, stream the packets (normally one per sample: F features and the label, TLAST
  on the label; ``samples`` gives the run's length when they are framed otherwise) and collect
  the predictions; the last packet is held back until the ``probes`` (raw accesses, made
  while the run is certainly active) have been answered.

This module imports only cocotb, cocotbext-axi, the standard library and the generated
register constants (``ssdfa.learner_regs``): the simulator loads it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import warnings

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge, Timer, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from ssdfa import learner_regs as regs

PROGRAM_ENV = "SSDFA_AXI_PROGRAM"
PERIOD_NS = 10
RESET_CYCLES = 4
_INPUTS = ("s_axil_awaddr", "s_axil_awprot", "s_axil_awvalid", "s_axil_wdata", "s_axil_wstrb", "s_axil_wvalid",
           "s_axil_bready", "s_axil_araddr", "s_axil_arprot", "s_axil_arvalid", "s_axil_rready",
           "s_axis_tdata", "s_axis_tvalid", "s_axis_tlast", "m_axis_tready")


def _pauses(rng: random.Random, probability: float):
    """An endless pause pattern: each clock paused with ``probability``."""
    while True:
        yield rng.random() < probability


class LearnerBus:
    """The bus models around the DUT and the learner accesses built from them."""

    def __init__(self, dut, pause: dict | None):
        self.dut = dut
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        # One 32-bit word per transfer (no tkeep): frames are lists of words.
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                                      byte_size=regs.STREAM_WIDTH)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst,
                                  byte_size=regs.STREAM_WIDTH)
        self.set_pause(pause)
        # The models log every frame and access at INFO: thousands of lines per epoch.
        for model in (self.master.write_if, self.master.read_if, self.source, self.sink):
            model.log.setLevel(logging.WARNING)

    def set_pause(self, pause: dict | None) -> None:
        """Pause generators on every channel, or none: ``{"seed", "axil", "source", "sink"}``."""
        channels = {
            "axil": [self.master.write_if.aw_channel, self.master.write_if.w_channel, self.master.write_if.b_channel,
                     self.master.read_if.ar_channel, self.master.read_if.r_channel],
            "source": [self.source],
            "sink": [self.sink],
        }
        rng = random.Random(pause["seed"]) if pause else None
        for kind, models in channels.items():
            for model in models:
                probability = pause.get(kind, 0.0) if pause else 0.0
                model.set_pause_generator(_pauses(random.Random(rng.random()), probability) if probability else None)

    async def write(self, address: int, value: int, length: int = 4) -> int:
        response = await self.master.write(address, int(value).to_bytes(4, "little")[:length])
        return int(response.resp)

    async def read(self, address: int) -> tuple[int, int]:
        response = await self.master.read(address, 4)
        return int(response.resp), int.from_bytes(response.data, "little")

    async def accesses(self, accesses) -> list[list[int]]:
        answers = []
        for access in accesses:
            if access[0] == "w":
                answers.append([await self.write(access[1], access[2], access[3]), 0])
            else:
                answers.append(list(await self.read(access[1])))
        return answers

    async def _select(self, layer: int, pe: int, space: int, addr: int, bad: list) -> None:
        word = ((layer << regs.SELECT_LAYER_SHIFT) | (pe << regs.SELECT_PE_SHIFT)
                | (space << regs.SELECT_SPACE_SHIFT))
        for register, value in ((regs.REG_SELECT, word), (regs.REG_ADDRESS, addr)):
            response = await self.write(register, value)
            if response != regs.RESP_OKAY:
                bad.append([register, response])

    async def load(self, writes, bad: list) -> int:
        at = None
        for layer, pe, space, addr, data in writes:
            if at != (layer, pe, space, addr):
                await self._select(layer, pe, space, addr, bad)
            response = await self.write(regs.REG_DATA, data)
            if response != regs.RESP_OKAY:
                bad.append([regs.REG_DATA, response])
            at = (layer, pe, space, addr + 1)
        return len(writes)

    async def read_learner(self, reads, bad: list) -> list[int]:
        words, at = [], None
        for layer, pe, space, addr in reads:
            if space == regs.SPACE_COUNTER:
                response, word = await self.read(regs.COUNTER_WINDOW + 4 * addr)
            else:
                if at != (layer, pe, space, addr):
                    await self._select(layer, pe, space, addr, bad)
                response, word = await self.read(regs.REG_DATA)
                at = (layer, pe, space, addr + 1)
            if response != regs.RESP_OKAY:
                bad.append([space, addr, response])
            words.append(word)
        return words

    async def run(self, step: dict, bad: list) -> dict:
        packets = step["packets"]  # stream packets, TLAST on each one's last word
        samples = int(step.get("samples", len(packets)))
        start = regs.CONTROL_START_MASK | (int(step["mode"]) << regs.CONTROL_MODE_SHIFT)
        for register, value in ((regs.REG_SAMPLES, samples), (regs.REG_CONTROL, start)):
            response = await self.write(register, value)
            if response != regs.RESP_OKAY:
                bad.append([register, response])
        started_ns = get_sim_time(unit="ns")
        started, started_cpu = time.perf_counter(), time.process_time()
        for packet in packets[:-1]:
            self.source.send_nowait(AxiStreamFrame(list(packet)))
        # The run cannot finish before its last packet is in: the probes meet a busy learner.
        probes = await self.accesses(step.get("probes", []))
        if packets:
            await self.source.send(AxiStreamFrame(list(packets[-1])))
            await with_timeout(RisingEdge(self.dut.done), int(step["max_cycles"]) * PERIOD_NS, "ns")
        cycles = round((get_sim_time(unit="ns") - started_ns) / PERIOD_NS)
        seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        await ClockCycles(self.dut.clk, 2)  # the last prediction's transfer is in the sink
        frames = []
        while not self.sink.empty():
            frames.append([int(word) for word in self.sink.recv_nowait().tdata])
        status = await self.read(regs.REG_STATUS)
        predictions = await self.read(regs.REG_PREDICTIONS)
        return {"name": step["name"], "frames": frames, "probes": probes, "status": status,
                "predictions_register": predictions, "cycles": cycles, "seconds": seconds, "cpu_seconds": cpu}


@cocotb.test()
async def axi_learner_program(dut):
    """Plays the program through the bus models and records every answer."""
    # cocotbext-axi 0.1.28 still uses cocotb 1.x idioms that cocotb 2.x deprecates (Event.data,
    # Task.kill, setimmediatevalue); they work, and its cocotb 2.x port is pending upstream.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi")
    with open(os.environ[PROGRAM_ENV]) as handle:
        program = json.load(handle)
    await Timer(1, unit="ns")  # let Icarus run its time-0 blocks before the first write
    for name in _INPUTS:
        getattr(dut, name).value = 0
    dut.rst.value = 1
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    bus = LearnerBus(dut, program.get("pause"))
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    result = {"accesses": {}, "reads": {}, "runs": [], "writes": 0, "bad": []}
    for step in program["steps"]:
        if step["op"] == "access":
            result["accesses"][step["name"]] = await bus.accesses(step["accesses"])
        elif step["op"] == "load":
            result["writes"] += await bus.load(step["writes"], result["bad"])
        elif step["op"] == "read":
            result["reads"][step["name"]] = await bus.read_learner(step["reads"], result["bad"])
        elif step["op"] == "run":
            result["runs"].append(await bus.run(step, result["bad"]))
        else:
            raise ValueError(f"unknown program step {step['op']!r}")
    with open(program["result"], "w") as handle:
        json.dump(result, handle)
