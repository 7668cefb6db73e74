"""Area of one NeuronPE against word width, with learning disabled and enabled.

The PE is that of the paper-sized hidden layer (configs/ssdfa_64x100_10pe.toml: fan-in 64,
100 relu neurons on 10 PEs, so K = 10 neurons per PE, SSDFA, STOCH update rounding, SAT), with
every format ``SQ(2, w - 2)`` for a word of ``w`` bits. Each row is ``ssdfa synth`` of that
configuration: Yosys ``synth_ice40 -dsp`` (iCE40 UltraPlus), or ``synth -lut 4`` with
``--generic``. ``learning = false`` elaborates the inference-only PE (no ERROR/UPDATE logic,
no LFSRs, no feedback/delta/derivative registers).

Run: ``python benchmarks/area_table.py [--generic]``; prints a Markdown table (docs/rtl.md).
"""

from __future__ import annotations

import argparse

from ssdfa.cli import run_script
from ssdfa.cli.synth import synth_config
from ssdfa.model.layer_config import layer_config_from_dict

WORDS = (4, 8, 12, 16)


def pe_config(word: int, learning: bool):
    fmt = f"SQ(2,{word - 2})"
    return layer_config_from_dict({
        "layer": {"fan_in": 64, "neurons": 100, "pes": 10, "outputs": 10, "connections": 1,
                  "activation": "relu", "learning": learning},
        "formats": {name: fmt for name in ("activation", "weight", "feedback", "error", "delta")},
        "modes": {"rounding": "RND", "update_rounding": "STOCH", "overflow": "SAT", "shift": 4, "seed": 1},
    })


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generic", action="store_true", help="generic 4-LUT synthesis instead of iCE40")
    args = parser.parse_args(argv)
    target = "generic synth -lut 4" if args.generic else "iCE40 synth_ice40 -dsp"
    print(f"NeuronPE, fan-in 64, K = 10 neurons/PE, relu, STOCH, SAT; {target}\n")
    print("| word | learning | LUTs | flip-flops | block RAMs | DSPs |")
    print("| ---: | :--- | ---: | ---: | ---: | ---: |")
    for word in WORDS:
        for learning in (False, True):
            report = synth_config(pe_config(word, learning), generic=args.generic)
            print(f"| {word} | {'yes' if learning else 'no'} | {report.luts} | {report.flip_flops} | "
                  f"{report.block_rams} | {report.dsps} |", flush=True)
    return 0


if __name__ == "__main__":
    run_script(main)
