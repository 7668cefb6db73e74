"""``ssdfa synth``: area of a layer configuration's PE (LUTs, flip-flops, block RAMs, DSPs)."""

from __future__ import annotations

import json

JSON_SCHEMA = 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="synthesise a configuration's PE with Yosys and report LUTs, flip-flops, BRAMs, DSPs",
        description=(
            "Generate the Verilog of one top module of a layer configuration (the PE by default) "
            "and synthesise it with the OS's Yosys: synth_ice40 -dsp (iCE40 UltraPlus), or a "
            "generic 4-LUT mapping with --generic. Prints the cell counts."
        ),
    )
    parser.add_argument("--config", required=True, metavar="CONFIG.toml", help="layer configuration file")
    parser.add_argument(
        "--generic",
        action="store_true",
        help="technology-independent synthesis to 4-input LUTs (memories and multipliers become logic)",
    )
    parser.add_argument("--no-dsp", action="store_true", help="iCE40: build multipliers from LUTs")
    parser.add_argument(
        "--top", default="neuron_pe", metavar="TOP", help="neuron_pe (default), error_router or ssdfa_layer"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def synth_config(config, *, top: str = "neuron_pe", generic: bool = False, dsp: bool = True):
    """Generate ``top`` for ``config`` in a scratch directory and synthesise it (a SynthReport)."""
    import tempfile

    from ssdfa.rtl.synth import require_yosys, synthesize
    from ssdfa.rtl.verilog import generate

    require_yosys()
    with tempfile.TemporaryDirectory(prefix="ssdfa-synth-") as scratch:
        (path,) = generate(config, scratch, tops=[top])
        return synthesize(path, top, target="generic" if generic else "ice40", dsp=dsp)


def run(args) -> int:
    from ssdfa.errors import SsdfaError
    from ssdfa.model.layer_config import load_layer_config

    config = load_layer_config(args.config)
    if args.generic and args.no_dsp:
        raise SsdfaError("--no-dsp applies to the iCE40 target only; --generic never maps DSPs")
    report = synth_config(config, top=args.top, generic=args.generic, dsp=not args.no_dsp)
    counts = {
        "luts": report.luts,
        "flip_flops": report.flip_flops,
        "block_rams": report.block_rams,
        "dsps": report.dsps,
    }
    if args.json:
        print(json.dumps({
            "schema": JSON_SCHEMA,
            "top": report.top,
            "target": report.target,
            **counts,
            "carries": report.carries,
            "cells": report.cells,
            "configuration": config.to_dict(),
        }, sort_keys=True))
        return 0
    print(f"{report.top} ({report.target}{'' if args.generic or not args.no_dsp else ', no DSP'}):")
    for name, value in counts.items():
        print(f"  {name.replace('_', ' '):<11} {value}")
    return 0
