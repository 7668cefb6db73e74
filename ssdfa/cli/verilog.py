"""``ssdfa verilog``: write the Verilog of a layer configuration, one file per top module."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verilog",
        help="generate Verilog for a layer configuration (PE, error router, layer)",
        description=(
            "Validate a layer configuration (TOML) and write one Verilog file per top module into "
            "DIR: neuron_pe.v, and error_router.v and ssdfa_layer.v where the configuration has "
            "them. Each file opens with the configuration as a comment; the same configuration "
            "always gives the same bytes."
        ),
    )
    parser.add_argument("--config", required=True, metavar="CONFIG.toml", help="layer configuration file")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    parser.add_argument(
        "--top",
        action="append",
        metavar="TOP",
        help="write only this top (neuron_pe, error_router, ssdfa_layer); repeat for several",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from ssdfa.model.layer_config import load_layer_config

    # Validate before importing Amaranth or elaborating anything.
    from ssdfa.user_files import output_directory

    config = load_layer_config(args.config)
    output_directory(args.out, "--out", create=False)
    from ssdfa.rtl.verilog import generate

    for path in generate(config, args.out, tops=args.top):
        print(path)
    return 0
