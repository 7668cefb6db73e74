"""cocotb testbench of ``BoardCore`` (docs/board.md §4): a simulated serial cable.

The host driver runs in another process and talks to this testbench through a TCP socket on
the loopback interface (its port in ``SSDFA_BOARD_SOCKET``): bytes from the socket go onto
``uart_rx`` through cocotbext-uart's ``UartSource``, bytes that ``UartSink`` decodes from
``uart_tx`` go back to the socket. The host's driver code is the same as for a serial port;
only its transport differs. The simulation ends when the host closes the socket.

This module imports only cocotb, cocotbext-uart and the standard library: the simulator loads it.
"""

import logging
import os
import select
import socket
import warnings

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Timer
from cocotbext.uart import UartSink, UartSource

SOCKET_ENV = "SSDFA_BOARD_SOCKET"
CLOCKS_PER_BIT_ENV = "SSDFA_BOARD_CLOCKS_PER_BIT"
RESULT_ENV = "SSDFA_BOARD_RESULT"
PERIOD_NS = 10
RESET_CYCLES = 4


@cocotb.test()
async def board_serial_cable(dut):
    """Bridges the host's socket and the board core's UART pins until the host hangs up."""
    # cocotbext-uart 0.1.4 sets its line with setimmediatevalue, which cocotb 2.x deprecates.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.uart")
    clocks_per_bit = int(os.environ[CLOCKS_PER_BIT_ENV])
    baud = 1e9 / (clocks_per_bit * PERIOD_NS)
    dut.uart_rx.value = 1
    dut.rst.value = 1
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    source = UartSource(dut.uart_rx, baud=baud)
    sink = UartSink(dut.uart_tx, baud=baud)
    for model in (source, sink):
        model.log.setLevel(logging.WARNING)  # they log every byte at INFO
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    connection = socket.create_connection(("127.0.0.1", int(os.environ[SOCKET_ENV])))
    connection.setblocking(False)
    byte_time_ns = 10 * clocks_per_bit * PERIOD_NS
    to_host = bytearray()
    quiet = 0  # byte times with nothing on either wire
    while True:
        # Wait for the host (without advancing simulated time) only once the line has been quiet
        # for longer than the board takes to answer a request, so that replies are not slowed.
        quiet = quiet + 1 if source.idle() and not to_host and sink.idle() and sink.empty() else 0
        readable, _, _ = select.select([connection], [], [], 0.002 if quiet > 256 else 0)
        if readable:
            data = connection.recv(65536)
            if not data:
                break
            source.write_nowait(data)
        if not sink.empty():
            to_host += bytes(sink.read_nowait())
        if to_host:
            try:
                sent = connection.send(to_host)
                del to_host[:sent]
            except BlockingIOError:
                pass
        await Timer(byte_time_ns, unit="ns")
    connection.close()
    with open(os.environ[RESULT_ENV], "w") as handle:
        handle.write(f"{round(get_sim_time(unit='ns') / PERIOD_NS)}\n")
