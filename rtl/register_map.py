"""The AXI4-Lite register map of ``AXILearner`` and its stream word layouts: the one source.

``AXILearner`` (rtl/axi_learner.py) decodes these offsets and fields, and three generated
copies are written from here, never by hand (``python -m ssdfa.rtl.register_map``; a test
checks that the committed copies are up to date):

- ``docs/bus-registers.md``: the tables people read,
- ``drivers/ssdfa_learner_regs.h``: a C header for a host that reaches the bus,
- ``ssdfa/learner_regs.py``: the same constants for Python hosts and the cocotb testbench
  (standard library only).

This module is plain Python (no Amaranth), so the generators run anywhere.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from ssdfa.user_files import write_atomically

__all__ = [
    "Field",
    "Register",
    "REGISTERS",
    "COUNTER_WINDOW",
    "COUNTER_WINDOW_WORDS",
    "IDENTIFIER",
    "MAP_VERSION",
    "DATA_WIDTH",
    "ADDR_WIDTH",
    "STREAM_WIDTH",
    "RESPONSES",
    "SPACES",
    "MODES",
    "SAMPLE_WORD_FIELDS",
    "PREDICTION_WORD_FIELDS",
    "register",
    "constants",
    "markdown_tables",
    "c_header",
    "python_module",
    "ARTEFACTS",
    "write_artefacts",
    "stale_artefacts",
    "main",
]

#: Width of the AXI4-Lite data bus and of every register.
DATA_WIDTH = 32
#: Width of the AXI4-Lite byte address (the map and the counter window fit in 4 KiB).
ADDR_WIDTH = 12
#: Width of ``tdata`` on both AXI4-Stream ports.
STREAM_WIDTH = 32
#: What the ID register reads: "SDFA" in ASCII.
IDENTIFIER = 0x53444641
#: Bumped whenever an offset, a field or a meaning below changes.
MAP_VERSION = 1
#: Byte offset of the counter window: counter ``i`` (``rtl.counters.counter_names`` order) at
#: ``COUNTER_WINDOW + 4 i``.
COUNTER_WINDOW = 0x400
#: Words in the counter window (addresses past the network's counters answer DECERR).
COUNTER_WINDOW_WORDS = 256

#: AXI response codes the wrapper gives (``bresp``/``rresp``).
RESPONSES = (
    ("OKAY", 0, "the access was carried out"),
    ("SLVERR", 2, "refused, nothing changed: a learner access while a run is active, a write to a read-only "
                  "register, a START while a run is active, a write with a strobe other than all four bytes"),
    ("DECERR", 3, "no register at this address (a hole in the map, a counter past the last one)"),
)

#: Host spaces reachable through SELECT.SPACE (rtl/network.py ``NetworkSpace``).
SPACES = (
    ("WEIGHT", 0, "weight k*(F+1)+j of the selected PE (bias at j = F), weight format"),
    ("FEEDBACK", 1, "feedback constant of slot k (feedback format)"),
    ("LFSR", 2, "the 32-bit LFSR state of slot k (load the seed before training)"),
    ("DELTA", 3, "delta of slot k (read)"),
    ("DERIVATIVE", 4, "stored f' of slot k (read)"),
    ("INDEX", 5, "the output error that slot k receives (index table)"),
    ("ERROR_COUNT", 6, "error words slot k has received (read)"),
    ("COUNTER", 7, "the counters (read); a write of anything clears them all"),
)

#: CONTROL.MODE values (rtl/network.py ``NetworkMode``).
MODES = (
    ("TRAIN", 0, "forward, output error, every layer's update"),
    ("INFER", 1, "forward only: a prediction, nothing learnt"),
)


@dataclass(frozen=True)
class Field:
    """Bits ``lsb .. lsb + width - 1`` of a register or stream word."""

    name: str
    lsb: int
    width: int
    description: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One 32-bit register at byte ``offset``; ``access`` is ``RO``, ``RW``, ``WO`` or ``RW*``
    (``RW*``: reading or writing it reaches the learner, so it answers SLVERR during a run)."""

    name: str
    offset: int
    access: str
    description: str
    fields: tuple = ()
    reset: int | None = 0  # None: depends on the network (VERSION)


REGISTERS = (
    Register("ID", 0x00, "RO", "identifies the wrapper: 0x53444641 (\"SDFA\")", reset=IDENTIFIER),
    Register("VERSION", 0x04, "RO", "the register map's version and the network's shape", reset=None, fields=(
        Field("MAP", 0, 8, "register map version"),
        Field("LAYERS", 8, 4, "layers with weights"),
        Field("CLASSES", 12, 8, "output classes M"),
        Field("COUNTERS", 20, 8, "counters in the counter window"),
    )),
    Register("CONTROL", 0x08, "WO", "start a run of SAMPLES samples (SLVERR while a run is active)", (
        Field("START", 0, 1, "1: start a run (0: no effect)"),
        Field("MODE", 1, 1, "0 TRAIN, 1 INFER"),
    )),
    Register("SAMPLES", 0x0C, "RW", "samples of the next run (the run counts this many input packets)"),
    Register("STATUS", 0x10, "RO", "what the learner is doing; readable at any time", (
        Field("BUSY", 0, 1, "a run is active: learner accesses answer SLVERR"),
        Field("DONE", 1, 1, "the last run has finished (cleared by START)"),
        Field("FRAME_ERROR", 2, 1, "an input packet's TLAST was not on its label word (cleared by START)"),
        Field("LABEL_ERROR", 3, 1, "a label word was not a class index 0..M-1 (cleared by START)"),
    )),
    Register("PREDICTIONS", 0x14, "RO", "predictions sent on m_axis in the current (or last) run"),
    Register("SELECT", 0x18, "RW", "which learner memory DATA reaches", (
        Field("LAYER", 0, 4, "layer (0 = the first hidden layer)"),
        Field("PE", 8, 8, "PE of that layer (neuron n on PE n // K, slot n % K)"),
        Field("SPACE", 16, 3, "host space (table below)"),
    )),
    Register("ADDRESS", 0x1C, "RW", "word address in the selected space; +1 after every DATA access "
                                    "that answered OKAY"),
    Register("DATA", 0x20, "RW*", "write: store the word at SELECT/ADDRESS; read: the word there "
                                  "(sign-extended for signed formats)"),
)


def register(name: str) -> Register:
    """The register called ``name``."""
    for candidate in REGISTERS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no register {name!r}")


#: One transfer on s_axis: a packet per sample, the F raw features (activation format,
#: two's complement in the low bits) then the label word, TLAST on the label word.
SAMPLE_WORD_FIELDS = (
    Field("FEATURE", 0, 32, "a raw feature, two's complement; the learner takes the activation word's low bits"),
    Field("LABEL", 0, 32, "the class index 0..M-1, the packet's last word (TLAST)"),
)
#: One transfer on m_axis: one word per sample; TLAST on the run's last prediction.
PREDICTION_WORD_FIELDS = (
    Field("CLASS", 0, 8, "the predicted class (argmax, first on ties)"),
    Field("CORRECT", 8, 1, "the prediction equals the sample's label"),
)


# --------------------------------------------------------------------------------------------
# Generated copies
# --------------------------------------------------------------------------------------------

_GENERATED = "generated by `python -m ssdfa.rtl.register_map` from rtl/register_map.py; do not edit"


def _bits(field: Field) -> str:
    top = field.lsb + field.width - 1
    return f"{field.lsb}" if field.width == 1 else f"{top}:{field.lsb}"


def markdown_tables() -> str:
    """docs/bus-registers.md: the registers, their fields, the spaces, the stream words."""
    lines = [f"<!-- {_GENERATED} -->", "", "# AXILearner register map (version "
             f"{MAP_VERSION})", "",
             f"AXI4-Lite, {DATA_WIDTH}-bit data, {ADDR_WIDTH}-bit byte addresses; every register is one "
             "32-bit word (write with all four strobes). See [bus.md](bus.md) for the protocol. Access "
             "`*`: the access reaches the learner, so it answers SLVERR while a run is active.", "",
             "| offset | register | access | reset | meaning |", "| --- | --- | --- | --- | --- |"]
    for reg in REGISTERS:
        reset = "-" if reg.reset is None else f"0x{reg.reset:X}"
        lines.append(f"| 0x{reg.offset:03X} | `{reg.name}` | {reg.access} | {reset} | {reg.description} |")
    lines.append(f"| 0x{COUNTER_WINDOW:03X} + 4 i | `COUNTER[i]` | RO* | - | counter i "
                 "(`rtl/counters.py` order; [network.md](network.md) §5); SLVERR during a run |")
    lines += ["", "## Fields", "", "| register | bits | field | meaning |", "| --- | --- | --- | --- |"]
    for reg in REGISTERS:
        for field in reg.fields:
            lines.append(f"| `{reg.name}` | {_bits(field)} | `{field.name}` | {field.description} |")
    lines += ["", "## Spaces (`SELECT.SPACE`)", "", "| value | space | word k of the selected PE |",
              "| --- | --- | --- |"]
    lines += [f"| {value} | `{name}` | {meaning} |" for name, value, meaning in SPACES]
    lines += ["", "## Modes (`CONTROL.MODE`)", "", "| value | mode | run |", "| --- | --- | --- |"]
    lines += [f"| {value} | `{name}` | {meaning} |" for name, value, meaning in MODES]
    lines += ["", "## Responses", "", "| `bresp`/`rresp` | name | when |", "| --- | --- | --- |"]
    lines += [f"| {value} | `{name}` | {meaning} |" for name, value, meaning in RESPONSES]
    lines += ["", f"## Stream words ({STREAM_WIDTH}-bit `tdata`)", "", "| stream | bits | field | meaning |",
              "| --- | --- | --- | --- |"]
    lines += [f"| `s_axis` | {_bits(f)} | `{f.name}` | {f.description} |" for f in SAMPLE_WORD_FIELDS]
    lines += [f"| `m_axis` | {_bits(f)} | `{f.name}` | {f.description} |" for f in PREDICTION_WORD_FIELDS]
    return "\n".join(lines) + "\n"


def constants() -> list[tuple[str, int, str]]:
    """(NAME, value, comment) for every constant the C and Python copies carry."""
    rows = [
        ("MAP_VERSION", MAP_VERSION, "register map version"),
        ("IDENTIFIER", IDENTIFIER, "what ID reads"),
        ("DATA_WIDTH", DATA_WIDTH, "AXI4-Lite data bits"),
        ("ADDR_WIDTH", ADDR_WIDTH, "AXI4-Lite address bits"),
        ("STREAM_WIDTH", STREAM_WIDTH, "AXI4-Stream tdata bits"),
        ("COUNTER_WINDOW", COUNTER_WINDOW, "byte offset of counter 0"),
        ("COUNTER_WINDOW_WORDS", COUNTER_WINDOW_WORDS, "words in the counter window"),
    ]
    for reg in REGISTERS:
        rows.append((f"REG_{reg.name}", reg.offset, reg.description))
        for field in reg.fields:
            rows.append((f"{reg.name}_{field.name}_SHIFT", field.lsb, field.description))
            rows.append((f"{reg.name}_{field.name}_MASK", field.mask, ""))
    rows += [(f"SPACE_{name}", value, meaning) for name, value, meaning in SPACES]
    rows += [(f"MODE_{name}", value, meaning) for name, value, meaning in MODES]
    rows += [(f"RESP_{name}", value, "") for name, value, _ in RESPONSES]
    for stream, fields in (("SAMPLE", SAMPLE_WORD_FIELDS), ("PREDICTION", PREDICTION_WORD_FIELDS)):
        for field in fields:
            rows.append((f"{stream}_{field.name}_SHIFT", field.lsb, field.description))
            rows.append((f"{stream}_{field.name}_MASK", field.mask, ""))
    return rows


def c_header() -> str:
    """drivers/ssdfa_learner_regs.h."""
    lines = [f"/* {_GENERATED}. */", "#ifndef SSDFA_LEARNER_REGS_H", "#define SSDFA_LEARNER_REGS_H", ""]
    for name, value, comment in constants():
        text = f"#define SSDFA_{name} 0x{value:X}u"
        lines.append(f"{text:<56} /* {comment} */" if comment else text)
    lines += ["", "#endif /* SSDFA_LEARNER_REGS_H */"]
    return "\n".join(lines) + "\n"


def python_module() -> str:
    """ssdfa/learner_regs.py."""
    lines = ['"""AXILearner register map constants (docs/bus.md, docs/bus-registers.md).', "",
             f"{_GENERATED[0].upper()}{_GENERATED[1:]}.",
             "Standard library only: hosts and the cocotb testbench import it as it is.", '"""', ""]
    for name, value, comment in constants():
        lines.append(f"{name} = 0x{value:X}" + (f"  # {comment}" if comment else ""))
    lines += ["", "#: Register byte offsets by name.",
              "REGISTERS = {", *(f'    "{r.name}": 0x{r.offset:X},' for r in REGISTERS), "}",
              "#: Registers a write may change (the others answer SLVERR to writes).",
              "WRITABLE = (" + ", ".join(f'"{r.name}"' for r in REGISTERS if r.access != "RO") + ",)",
              "#: Registers a read may return (CONTROL is write-only and reads as 0).",
              "READABLE = (" + ", ".join(f'"{r.name}"' for r in REGISTERS if r.access != "WO") + ",)"]
    return "\n".join(lines) + "\n"


#: Each generated copy: its path from the repository root and the function that writes it.
ARTEFACTS = (
    ("docs/bus-registers.md", markdown_tables),
    ("drivers/ssdfa_learner_regs.h", c_header),
    ("ssdfa/learner_regs.py", python_module),
)


def write_artefacts(root) -> list[Path]:
    """Write every generated copy under the repository root ``root``; return their paths."""
    paths = []
    for relative, generate in ARTEFACTS:
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, generate())  # whole or not at all
        paths.append(path)
    return paths


def stale_artefacts(root) -> list[str]:
    """The generated copies under ``root`` that are missing or differ from this module."""
    stale = []
    for relative, generate in ARTEFACTS:
        path = Path(root) / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != generate():
            stale.append(relative)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssdfa.rtl.register_map",
                                     description="Write (or --check) the register map's generated copies.")
    parser.add_argument("--root", default=".", help="repository root (default: the current directory)")
    parser.add_argument("--check", action="store_true", help="only report copies that are out of date (exit 1)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "rtl" / "register_map.py").is_file():
        print(f"error: --root {args.root} is not the ssdfa repository (no rtl/register_map.py)", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_artefacts(root)
        for relative in stale:
            print(f"out of date: {relative}")
        return 1 if stale else 0
    for path in write_artefacts(root):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
