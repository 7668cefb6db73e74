"""Area of the whole learner on the iCE40 UP5K, module by module: where the logic cells go.

Yosys 0.23 ``synth_ice40 -dsp -noflatten`` of the network (``--network``, the default) or of a
board core (``--board icebreaker``: learner, AXI wrapper, UART bridge, receiver, transmitter),
then ``stat`` per module of the hierarchy before it is flattened. Each row is one module's own
cells (its submodules are rows of their own): SB_LUT4, flip-flops (every ``SB_DFF*``),
``SB_CARRY``, block RAMs (``SB_RAM40_4K``), single-port RAMs (``SB_SPRAM256KA``) and DSPs
(``SB_MAC16``). Without flattening nothing is optimised across a module boundary, so the sums
are a little above a flattened synthesis (nextpnr's logic cells pack one LUT4, one flip-flop and
one carry per cell; the table gives the parts).

Run: ``python benchmarks/area_breakdown.py [--hidden 32] [--pes 4,2] [--board icebreaker]``;
prints a Markdown table (docs/implement.md section 6).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from ssdfa.cli import run_script
from ssdfa.cli._argtypes import positive_int
from ssdfa.rtl.synth import require_yosys

COLUMNS = ("SB_LUT4", "flip-flops", "SB_CARRY", "SB_RAM40_4K", "SB_SPRAM256KA", "SB_MAC16")


def _ints(text: str) -> tuple[int, ...]:
    """Comma-separated positive integers (argparse turns the error into one line)."""
    return tuple(positive_int(part) for part in text.split(","))


def _design(args):
    """(Amaranth component, top module name) that the arguments ask for."""
    from ssdfa.cli.implement import network_configs

    if args.board:
        from ssdfa.board.boards import board
        from ssdfa.rtl.board_core import BOARD_CORE_TOP, BoardCore

        target = board(args.board)
        hidden = args.hidden or target.hidden
        pes = args.pes or target.pes
        configs = network_configs("digits", hidden, pes=pes)
        return BoardCore(layers=configs, clocks_per_bit=target.clocks_per_bit), BOARD_CORE_TOP, configs
    from ssdfa.rtl.network import NETWORK_TOP, SSDFANetwork

    configs = network_configs("digits", args.hidden or (32,), pes=args.pes)
    return SSDFANetwork(layers=configs, layer_counters=not args.no_layer_counters), NETWORK_TOP, configs


def module_cells(verilog_text: str, top: str, *, flatten: bool = False) -> dict[str, dict[str, int]]:
    """Per module of the iCE40 netlist (one module when ``flatten``): cell type -> count (own cells)."""
    yosys = require_yosys()
    with tempfile.TemporaryDirectory(prefix="ssdfa-breakdown-") as scratch:
        (Path(scratch) / "design.v").write_text(verilog_text)
        # The netlist rather than `stat -json`, whose hierarchy section Yosys 0.23 writes as
        # invalid JSON.
        synth = f"synth_ice40 -dsp -top {top}" + ("" if flatten else " -noflatten")
        script = f"read_verilog -sv design.v; {synth}; write_json netlist.json"
        done = subprocess.run([yosys, "-q", "-p", script], cwd=scratch, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"yosys failed:\n{(done.stdout + done.stderr)[-2000:]}")
        netlist = json.loads((Path(scratch) / "netlist.json").read_text())
    modules = {}
    for name, module in netlist["modules"].items():
        if module.get("attributes", {}).get("blackbox"):
            continue
        cells = defaultdict(int)
        for cell in module["cells"].values():
            kind = cell["type"]
            cells["flip-flops" if kind.startswith("SB_DFF") else kind] += 1
        modules[name.lstrip("\\")] = dict(cells)
    return modules


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=_ints, default=None, help="hidden sizes (default 32, or the board's)")
    parser.add_argument("--pes", type=_ints, default=None, help="PEs per layer (default: the network's or board's)")
    parser.add_argument("--board", default=None, help="a board core (icebreaker, ulx3s) instead of the network")
    parser.add_argument("--no-layer-counters", action="store_true",
                        help="the network without its per-layer and per-neuron counters (as the board cores build it)")
    parser.add_argument("--flat", action="store_true",
                        help="only the totals of the flattened synthesis (what nextpnr packs)")
    args = parser.parse_args(argv)
    from amaranth.back import verilog

    design, top, configs = _design(args)
    # Amaranth's own conversion, not rtl.shared_modules: one module per PE instance, so that
    # `-noflatten` counts every PE's cells where it sits.
    text = verilog.convert(design, name=top, emit_src=False)
    modules = module_cells(text, top, flatten=args.flat)
    sizes = "-".join(str(n) for n in [configs[0].shape.fan_in] + [c.shape.neurons for c in configs])
    pes = "+".join(str(c.pes) for c in configs)
    how = "flattened" if args.flat else "-noflatten, own cells per module"
    print(f"{top}: {sizes}, PEs {pes}; Yosys synth_ice40 -dsp {how}\n")
    print("| module | " + " | ".join(COLUMNS) + " |")
    print("| --- | " + " | ".join("---:" for _ in COLUMNS) + " |")
    totals = defaultdict(int)
    for name in sorted(modules):
        cells = modules[name]
        for column in COLUMNS:
            totals[column] += cells.get(column, 0)
        if any(cells.get(column, 0) for column in COLUMNS):
            print(f"| {name} | " + " | ".join(f"{cells.get(c, 0):,}" for c in COLUMNS) + " |")
    print("| **total** | " + " | ".join(f"**{totals[c]:,}**" for c in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    run_script(main)
