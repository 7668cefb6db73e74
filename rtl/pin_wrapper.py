"""A pin-reducing wrapper: place a top with more port bits than the package has pins.

``wrapper_verilog(top, ports, mode=...)`` writes a module ``implement_wrapper`` with four pins
(the clock, ``serial_in``, ``capture``, ``serial_out``) that instances *top* and

- drives every input bit of *top* (the clock aside) from one flip-flop of a shift register,
  ``input_chain``, that shifts ``serial_in`` in one bit per clock;
- ``serial`` mode: registers every output bit of *top* into a second shift register,
  ``output_chain``, which loads all of them in parallel while ``capture`` is high and otherwise
  shifts them out, one per clock, on ``serial_out``. Every output path of *top* then ends in the
  chain's load/shift multiplexer (a LUT) before its flip-flop: the wrapper's own logic is in the
  timed path;
- ``registered`` mode: registers every output bit of *top* into ``output_register``, a plain
  flip-flop with nothing in front of it, which ``output_chain`` loads from. Every port of *top*
  then starts or ends at a flip-flop with no wrapper logic in between, as if each port were
  registered where the design is used, and the timed paths are *top*'s own.

Every port bit of *top* thus starts or ends at a flip-flop of the wrapper, so synthesis can
neither treat an input as a constant nor drop the logic behind an output (a shift register,
unlike an XOR reduction, cannot cancel two copies of one bit), and every path into and out of
*top* is a register-to-register path on the same clock: in the router's timing analysis, like
the paths inside *top*. What the wrapper leaves out of timing is what any unconstrained design
leaves out: the pads (pin to ``input_chain``, ``output_chain`` to pin), for which no I/O
constraints are given. What it adds to the design: one flip-flop per input bit, one flip-flop
(two in ``registered`` mode) and about one LUT (the load/shift multiplexer) per output bit, and
the wires from these registers, which the placer puts near *top*'s ports as it would any other
logic.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WRAPPER_TOP", "WRAPPER_PINS", "WRAPPER_MODES", "WRAPPER_UNTIMED", "Port", "port_bits",
           "wrapper_verilog"]

#: The module name of the wrapper.
WRAPPER_TOP = "implement_wrapper"
#: The wrapper's pins, clock included.
WRAPPER_PINS = 4
#: The wrapper's two shapes (see the module's docstring).
WRAPPER_MODES = ("registered", "serial")
#: What the timing analysis of a wrapped top does not cover (reports quote it).
WRAPPER_UNTIMED = ("the pads: serial_in and capture to their flip-flops, output_chain to serial_out "
                   "(no I/O constraints)")


@dataclass(frozen=True)
class Port:
    """One port of a Verilog module: name, ``input``/``output``/``inout``, width in bits."""

    name: str
    direction: str
    width: int


def port_bits(ports) -> int:
    """Pins a module needs when every port bit has its own pin."""
    return sum(port.width for port in ports)


def _shift(register: str, width: int, incoming: str) -> str:
    # A 1-bit chain has no lower bits to keep.
    return incoming if width == 1 else f"{{{register}[{width - 2}:0], {incoming}}}"


def wrapper_verilog(top: str, ports, *, clock: str = "clk", mode: str = "serial") -> str:
    """The Verilog of ``implement_wrapper`` around module *top*.

    Parameters
    ----------
    top : str
        The wrapped module.
    ports : iterable of Port
        Its ports. Chain bits are assigned in the order given (the caller sorts them by name
        so that the text does not depend on the order a parser lists them).
    clock : str
        The clock input, wired straight to the wrapper's clock pin.
    mode : str
        ``serial`` (outputs loaded into the shift chain through its multiplexer) or
        ``registered`` (outputs into plain flip-flops first).

    Raises
    ------
    ValueError
        If *top* has no input named *clock*, has an ``inout`` port, or has no output, or *mode*
        is not one of ``WRAPPER_MODES``.
    """
    if mode not in WRAPPER_MODES:
        raise ValueError(f"unknown wrapper mode {mode!r}; expected one of {', '.join(WRAPPER_MODES)}")
    ports = list(ports)
    names = {port.name: port for port in ports}
    if clock not in names or names[clock].direction != "input" or names[clock].width != 1:
        raise ValueError(f"module {top!r} has no 1-bit clock input {clock!r}, which the pin wrapper needs")
    if any(port.direction not in ("input", "output") for port in ports):
        bad = next(port.name for port in ports if port.direction not in ("input", "output"))
        raise ValueError(f"module {top!r}: port {bad!r} is bidirectional; the pin wrapper takes only inputs "
                         "and outputs")
    inputs = [port for port in ports if port.direction == "input" and port.name != clock]
    outputs = [port for port in ports if port.direction == "output"]
    if not outputs:
        raise ValueError(f"module {top!r} has no output: synthesis would remove all of it")
    in_bits, out_bits = port_bits(inputs), port_bits(outputs)
    zero = "1'b0"

    connections = [f"        .{clock}({clock})"]
    offset = 0
    for port in inputs:
        connections.append(f"        .{port.name}(input_chain[{offset + port.width - 1}:{offset}])")
        offset += port.width
    offset = 0
    for port in outputs:
        connections.append(f"        .{port.name}(top_outputs[{offset + port.width - 1}:{offset}])")
        offset += port.width

    registered = mode == "registered"
    lines = [
        f"// {WRAPPER_TOP}: generated by ssdfa implement (rtl/pin_wrapper.py) to place {top} on few pins.",
        f"// {in_bits} input bits shift in on serial_in; {out_bits} output bits are captured and shift out",
        "// on serial_out. Every port bit of the design meets a flip-flop here, so every path into or out",
        "// of it is register to register and in timing; pad timing is not constrained.",
        *(["// Registered mode: every output bit goes into a plain flip-flop (output_register) first, so no",
           "// wrapper logic sits on the design's output paths."] if registered else []),
        f"module {WRAPPER_TOP} (",
        f"    input wire {clock},",
        "    input wire serial_in,",
        "    input wire capture,",
        "    output wire serial_out",
        ");",
    ]
    if in_bits:
        lines += [
            f"    reg [{in_bits - 1}:0] input_chain;",
            f"    always @(posedge {clock}) input_chain <= {_shift('input_chain', in_bits, 'serial_in')};",
        ]
    else:
        lines.append("    wire unused_serial_in = serial_in;")
    loaded = "top_outputs"
    lines.append(f"    wire [{out_bits - 1}:0] top_outputs;")
    if registered:
        loaded = "output_register"
        lines += [
            f"    reg [{out_bits - 1}:0] output_register;",
            f"    always @(posedge {clock}) output_register <= top_outputs;",
        ]
    lines += [
        f"    reg [{out_bits - 1}:0] output_chain;",
        f"    always @(posedge {clock}) output_chain <= capture ? {loaded} : "
        f"{_shift('output_chain', out_bits, zero)};",
        f"    assign serial_out = output_chain[{out_bits - 1}];",
        f"    {top} design (",
        ",\n".join(connections),
        "    );",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"
