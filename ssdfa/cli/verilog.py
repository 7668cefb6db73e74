"""``ssdfa verilog``: write the Verilog of a layer configuration, one file per top module, or of a
whole network, optionally with trained weights in its memories."""

from __future__ import annotations


from ssdfa.errors import SsdfaError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verilog",
        help="generate Verilog for a layer configuration (PE, error router, layer) or a whole network",
        description=(
            "Validate a layer configuration (TOML) and write one Verilog file per top module into "
            "DIR: neuron_pe.v, and error_router.v and ssdfa_layer.v where the configuration has "
            "them. Each file opens with the configuration as a comment; the same configuration "
            "always gives the same bytes. With --network --weights FILE.npz, write the whole "
            "network (ssdfa_network.v) of a saved network, its weight memories and index tables "
            "initialised with the trained values, so that the design infers without a host load."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="CONFIG.toml", help="layer configuration file")
    source.add_argument("--network", action="store_true",
                        help="the whole SSDFA network of --weights (docs/network.md)")
    parser.add_argument("--weights", metavar="FILE.npz",
                        help="--network: a saved network (ssdfa train --fixed --save) whose trained state the "
                             "memories start with")
    parser.add_argument("--pes", metavar="P[,P...]",
                        help="--network: PEs per layer (default: at most 8 neurons per PE)")
    parser.add_argument("--bus", choices=("axi",),
                        help="--network: write the network behind its AXI4-Lite and AXI4-Stream wrapper "
                             "(ssdfa_axi_learner.v, docs/bus.md)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    parser.add_argument(
        "--top",
        action="append",
        metavar="TOP",
        help="write only this top (neuron_pe, error_router, ssdfa_layer); repeat for several",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.network:
        return _run_network(args)
    for option in ("weights", "pes", "bus"):
        if getattr(args, option) is not None:
            raise SsdfaError(f"--{option} applies to --network, not to a layer configuration")
    from ssdfa.model.layer_config import load_layer_config

    # Validate before importing Amaranth or elaborating anything.
    from ssdfa.user_files import output_directory

    config = load_layer_config(args.config)
    output_directory(args.out, "--out", create=False)
    from ssdfa.rtl.verilog import generate
    from ssdfa.user_files import directory_kept_on_success

    with directory_kept_on_success(args.out, "--out") as out:
        for path in generate(config, out, tops=args.top):
            print(path)
    return 0


def input_scaling_notes(saved) -> list[str]:
    """How a raw feature becomes the learner's input word, from the weight file's provenance:
    what a host must do before it streams samples (empty for a file that does not say)."""
    provenance = saved.provenance
    if "feature_scale" not in provenance:
        return []
    shift = provenance.get("input_shift", 0)
    word = saved.config.activation if saved.config is not None else None
    offsets, scales = set(provenance["feature_offset"]), set(provenance["feature_scale"])
    then = f" x 2^-{shift}" if shift else ""
    if offsets == {0.0} and len(scales) == 1:
        how = f"x = r / {scales.pop():.9g}{then}"
    else:
        how = f"x = (r - offset[i]) / scale[i]{then}, per feature, with the weight file's feature_offset and feature_scale"
    return [f"inputs: raw feature r of {provenance.get('dataset')} ({provenance.get('normalization')} scaling of its "
            f"training split): {how}, rounded to nearest (ties to even) and saturated to {word}"]


def _run_network(args) -> int:
    if args.top is not None:
        raise SsdfaError("--top applies to a layer configuration; --network writes ssdfa_network.v")
    if args.weights is None:
        raise SsdfaError("--network needs --weights FILE.npz (the saved network to build)")
    from ssdfa.model.weight_file import load_network
    from ssdfa.sim.network_cosim import int_list
    from ssdfa.sim.network_weights import hardware_configs, hardware_state

    saved = load_network(args.weights)
    source = f"weight file {args.weights}"
    configs = hardware_configs(saved, int_list(args.pes) if args.pes else None, source=source)
    state = hardware_state(saved, configs, source=source)
    from ssdfa.rtl.axi_learner import generate_axi_learner
    from ssdfa.rtl.network import generate_network
    from ssdfa.user_files import directory_kept_on_success

    generate = generate_axi_learner if args.bus == "axi" else generate_network
    # Made before elaborating (a directory that cannot be made is one line, not minutes later),
    # removed again if elaboration fails or is interrupted.
    with directory_kept_on_success(args.out, "--out") as out:
        try:
            print(generate(configs, out, initial_state=state, header_notes=input_scaling_notes(saved)))
        except OSError as exc:
            raise SsdfaError(f"--out {args.out}: cannot write the Verilog: {exc.strerror or exc}") from None
    return 0
