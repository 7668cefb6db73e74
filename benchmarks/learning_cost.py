"""Where the learning PE's cells go: the 16-bit PE of configs/ssdfa_64x100_10pe.toml, learning
against inference-only, and what each piece of the learning logic costs.

Each row removes one piece from a scratch copy of rtl/neuron_pe.py (the source text with one
replacement, compiled in memory; the file itself is not touched), synthesises the learning PE
with Yosys ``synth_ice40 -dsp`` (``ssdfa synth``'s flow) and prints how many LUTs, flip-flops
and carry cells disappear. A piece is replaced by the cheapest logic that keeps its inputs in
use (a bank's word XORed in rather than multiplexed, a cast's value kept instead of clamped),
so a saving is the piece's own cost, not that of the logic behind it. Removals do not add up
exactly: Yosys and ABC optimise across them.

Run: ``python benchmarks/learning_cost.py`` (about a minute per row on two cores); prints a
Markdown table (docs/rtl.md section 3.2).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import tempfile
import types
from pathlib import Path

from amaranth.back import verilog

from ssdfa.cli import run_script
from ssdfa.model.layer_config import load_layer_config
from ssdfa.rtl import neuron_pe
from ssdfa.rtl.synth import synthesize

ROOT = Path(__file__).resolve().parent.parent
PE_CONFIG = ROOT / "configs" / "ssdfa_64x100_10pe.toml"

#: (what is removed, [(text of rtl/neuron_pe.py, its replacement), ...]).
PIECES = (
    ("per-neuron banks' reset (a `loaded` bit per word and the multiplexer to the reset value)",
     [("count: int, *, init: int = 0, reset: bool = True,", "count: int, *, init: int = 0, reset: bool = False,")]),
    ("host read-back of the four learning banks (their words multiplexed onto `r_data`)",
     [("            bank_words.append(Mux(selected, word, 0))", "            pass")]),
    ("host writes of the LFSR, delta and derivative banks (address and data multiplexers)",
     [("                write_addr=Mux(enable, q_addr[:bank_addr], write_addr),\n"
       "                write_data=Mux(enable, q_data[: len(bank.data)], write_data),",
       "                write_addr=Mux(enable, q_addr[:bank_addr], write_addr) if space is Space.FEEDBACK "
       "else write_addr,\n"
       "                write_data=Mux(enable, q_data[: len(bank.data)], write_data) if space is Space.FEEDBACK "
       "else write_data ^ q_data[: len(bank.data)],")]),
    ("LFSR draw (16 steps as shift-XOR word operations)",
     [("    w = w ^ w.shift_right(12)\n    return Cat(w[:STOCH_BITS], state[: LFSR_WIDTH - STOCH_BITS])",
       "    return Cat(state[16:], state[:16])")]),
    ("multiplier operand multiplexer (W, delta or b f')",
     [("            operand = Mux(in_update, deltas.data, Mux(in_error, b_factor, o_weight))",
       "            operand = o_weight ^ deltas.data ^ b_factor")]),
    ("error word on the multiplier's second operand",
     [("                        b_x.eq(self.e.payload),\n", "")]),
    ("shared rounding: offset multiplexer (a constant or the draw per phase)",
     [('offset = wire(m, self._by_phase(offsets), "round_offset")', 'offset = wire(m, offsets[-1], "round_offset")')]),
    ("shared rounding: shift multiplexer (14 or 16 dropped bits)",
     [("self.value = wire(m, self._by_phase([value.shift_right(d) for d in self._dropped]), \"round_kept\")",
       "self.value = wire(m, value.shift_right(self._dropped[0]), \"round_kept\")")]),
    ("UPDATE: second weight read in R (its address multiplexer)",
     [('            weight_read_addr = Mux(in_update, r_item["addr"], a_addr)',
       "            weight_read_addr = a_addr")]),
    ("UPDATE: weight subtraction",
     [('w_diff = wire(m, o_weight - u_step, "w_diff")', 'w_diff = wire(m, o_weight ^ u_step, "w_diff")')]),
    ("UPDATE: saturation of the new weight",
     [('w_new = wire(m, hw_saturate(v_w_diff, w_fmt, a.overflow, m=m, name="w_cast"), "w_new")',
       'w_new = wire(m, v_w_diff[: w_fmt.word], "w_new")')]),
)


def variant(replacements) -> types.ModuleType:
    """rtl/neuron_pe.py with ``replacements`` applied, as a module of the ``ssdfa.rtl`` package."""
    source = inspect.getsource(neuron_pe)
    for old, new in replacements:
        if source.count(old) != 1:
            raise SystemExit(f"rtl/neuron_pe.py no longer holds this text exactly once: {old.strip()[:80]!r}")
        source = source.replace(old, new)
    module = types.ModuleType("ssdfa.rtl.neuron_pe_variant")
    module.__package__ = "ssdfa.rtl"
    exec(compile(source, "neuron_pe_variant.py", "exec"), module.__dict__)
    return module


def cells(module, config):
    """(LUTs, flip-flops, carries, block RAMs, DSPs) of ``module.NeuronPE(config)`` after synth_ice40 -dsp."""
    with tempfile.TemporaryDirectory(prefix="ssdfa-cost-") as scratch:
        path = Path(scratch) / "neuron_pe.v"
        path.write_text(verilog.convert(module.NeuronPE(config=config), name="neuron_pe", emit_src=False))
        report = synthesize(path, "neuron_pe")
    return report.luts, report.flip_flops, report.carries, report.block_rams, report.dsps


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # --help; no options
    learning = load_layer_config(PE_CONFIG)
    inference = dataclasses.replace(learning, learning=False)
    print("NeuronPE of configs/ssdfa_64x100_10pe.toml (K = 10, 16-bit words, relu, STOCH, SAT); "
          "Yosys synth_ice40 -dsp\n")
    print("| PE, or change when one piece is removed from the learning PE | LUTs | flip-flops | carries | "
          "block RAMs | DSPs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    full = cells(neuron_pe, learning)
    base = cells(neuron_pe, inference)
    print(f"| learning PE | {full[0]} | {full[1]} | {full[2]} | {full[3]} | {full[4]} |")
    print(f"| inference-only PE | {base[0]} | {base[1]} | {base[2]} | {base[3]} | {base[4]} |")
    print(f"| difference (the cost of learning) | {full[0] - base[0]} | {full[1] - base[1]} | "
          f"{full[2] - base[2]} | {full[3] - base[3]} | {full[4] - base[4]} |", flush=True)
    for label, replacements in PIECES:
        without = cells(variant(replacements), learning)
        change = " | ".join(f"{after - before:+d}" for before, after in zip(full, without))
        print(f"| removed: {label} | {change} |", flush=True)
    return 0


if __name__ == "__main__":
    run_script(main)
