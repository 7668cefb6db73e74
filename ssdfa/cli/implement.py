"""``ssdfa implement``: synthesis, place and route of a PE, router, layer or whole network on an FPGA."""

from __future__ import annotations

import argparse
import json
import tempfile

from ._argtypes import natural_int, nextpnr_opts

JSON_SCHEMA = 1
CONFIG_TOPS = ("neuron_pe", "error_router", "ssdfa_layer")

DESCRIPTION = """\
Generate the Verilog of one top of a layer configuration (--config, --top) or of a whole SSDFA
network (--network, with the shape options of `ssdfa cosim --network`), synthesise it with Yosys
and place and route it with nextpnr (the yowasp-nextpnr wheels) on --device. Prints the
utilisation of every resource (used / available), whether it fits, fmax after routing and the
critical path. A top with more port bits than the package has pins is placed through a
generated pin wrapper that registers every port (--wrapper; docs/implement.md says how it is
built and what it leaves out of timing). A design that does
not fit is a result (exit 0); bad input or a missing tool is one line and exit 2. The same
inputs and --seed give the same report."""


def _device(text: str) -> str:
    from ssdfa.errors import SsdfaError
    from ssdfa.rtl.devices import device

    try:
        return device(text).name
    except SsdfaError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _frequency(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frequency in MHz, not {text!r}") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"expected a frequency in (0, 1000] MHz, not {text!r}")
    return value



def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace("+", ",").split(","))
    except ValueError:
        values = ()
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, not {text!r}")
    return values


#: The network shape options and their defaults (``register``): given with --config, refused.
NETWORK_OPTION_DEFAULTS = {"dataset": "digits", "data-dir": None, "hidden": (32,), "pes": None, "activation": "relu",
                           "counters": "all"}


def register(subparsers) -> None:
    from ssdfa.rtl.devices import DEVICES
    from ssdfa.rtl.implement import WRAPPER_CHOICES

    parser = subparsers.add_parser(
        "implement", help="synthesise, place and route a PE, layer or network on an FPGA (fmax, utilisation)",
        description=DESCRIPTION,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="CONFIG.toml", help="layer configuration file (with --top)")
    source.add_argument("--network", action="store_true", help="the whole SSDFA learner (docs/network.md)")
    parser.add_argument("--top", choices=CONFIG_TOPS, default="neuron_pe",
                        help="with --config: the top to implement (default neuron_pe)")
    parser.add_argument("--device", required=True, type=_device, metavar="DEVICE",
                        help=f"one of {', '.join(DEVICES)}")
    parser.add_argument("--seed", type=natural_int, default=1, metavar="K", help="nextpnr's seed (default 1)")
    parser.add_argument("--target-mhz", type=_frequency, default=50.0, metavar="F",
                        help="clock frequency that placement and routing aim at (default 50); fmax is measured")
    parser.add_argument("--nextpnr-opts", type=nextpnr_opts, default=(), metavar="OPTIONS",
                        help="extra nextpnr options that tune placement and routing, in one quoted string as "
                             "Amaranth's nextpnr_opts, e.g. '--placer-heap-timingweight 30' (docs/implement.md "
                             "section 3 lists the ones passed on; a single option as --nextpnr-opts=--tmg-ripup); the report records them")
    parser.add_argument("--wrapper", choices=WRAPPER_CHOICES, default="auto",
                        help="pin wrapper (docs/implement.md section 4): auto (default: registered when the port "
                             "bits outnumber the pins, else none), registered (every port from or to a plain "
                             "flip-flop), serial (outputs through the shift chain's multiplexer), or none (one pin "
                             "per port bit: a top with more then does not fit)")
    parser.add_argument("--out", metavar="DIR",
                        help="keep the Verilog, netlist, logs and nextpnr's report in DIR (default: a temporary "
                             "directory, removed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    group = parser.add_argument_group("network shape (--network; as ssdfa cosim --network)")
    group.add_argument("--dataset", default=NETWORK_OPTION_DEFAULTS["dataset"], help="sets the input width (default digits: 64)")
    group.add_argument("--data-dir", metavar="DIR", help="directory of the dataset's files (not needed for digits)")
    group.add_argument("--hidden", type=_sizes, default=NETWORK_OPTION_DEFAULTS["hidden"], metavar="N[,N...]",
                       help="hidden layer sizes (default 32)")
    group.add_argument("--pes", type=_sizes, metavar="P[,P...]",
                       help="PEs per layer with weights (default: at most 8 neurons per PE)")
    group.add_argument("--activation", default=NETWORK_OPTION_DEFAULTS["activation"], help="hidden activation: relu, hardtanh, tanh (default relu)")
    group.add_argument("--counters", choices=("all", "network"), default=NETWORK_OPTION_DEFAULTS["counters"],
                       help="all: every hardware counter (default, as ssdfa cosim --network builds it); network: "
                            "the network's own counters only, as the board cores build it (docs/network.md)")
    parser.set_defaults(func=run)


def network_configs(dataset: str, hidden, *, pes=None, activation: str = "relu", data_dir=None):
    """The layer configurations of the network ``ssdfa cosim --network`` would build with these
    shape options (the model's default arithmetic)."""
    from ssdfa.model.datasets import load_dataset
    from ssdfa.model.neuron_ops import Activation, ArithmeticConfig
    from ssdfa.rtl.network import default_pes, network_layer_configs

    data = load_dataset(dataset, data_dir)
    sizes = (data.num_features, *hidden, data.num_classes)
    return network_layer_configs(sizes, ArithmeticConfig(), pes=pes or default_pes(sizes),
                                 activation=Activation.parse(activation))


def _design(args):
    """What the arguments ask for, checked before any tool runs: (configuration(s), JSON description)."""
    from ssdfa.errors import SsdfaError
    from ssdfa.model.memory_budget import require_memory, training_bytes
    from ssdfa.user_files import output_directory

    if args.out:
        output_directory(args.out, "--out", create=False)
    if args.network:
        if args.top != "neuron_pe":
            raise SsdfaError("--top applies to --config; --network implements the whole network")
        # The input and class counts are known once the data are read; one and two are a floor.
        require_memory(training_bytes([1, *args.hidden, 2]), f"--hidden {','.join(map(str, args.hidden))}")
        configs = network_configs(args.dataset, args.hidden, pes=args.pes, activation=args.activation,
                                  data_dir=args.data_dir)
        sizes = [configs[0].shape.fan_in] + [c.shape.neurons for c in configs]
        return configs, {"network": {"sizes": sizes, "pes": [c.pes for c in configs],
                                     "activation": configs[0].activation.value, "counters": args.counters}}
    from ssdfa.model.layer_config import load_layer_config

    # The network's shape options would be ignored with a layer configuration: refused instead.
    for option, default in NETWORK_OPTION_DEFAULTS.items():
        if getattr(args, option.replace("-", "_")) != default:
            raise SsdfaError(f"--{option} applies to --network; --config {args.config} gives the layer")
    config = load_layer_config(args.config)
    if args.top == "error_router" and not config.learning:
        raise SsdfaError(f"configuration {args.config!r} has no error_router "
                         "(an inference-only layer routes no errors)")
    return config, {"configuration": config.to_dict()}


def _verilog(args, design, directory):
    """Write the design's Verilog into *directory*: (path, top module)."""
    if args.network:
        from ssdfa.rtl.network import NETWORK_TOP, generate_network

        return generate_network(design, directory, layer_counters=args.counters == "all"), NETWORK_TOP
    from ssdfa.rtl.verilog import generate

    (path,) = generate(design, directory, tops=[args.top])
    return path, args.top


def run(args) -> int:
    from ssdfa.rtl.devices import device
    from ssdfa.rtl.implement import check_options_for, implement, require_nextpnr
    from ssdfa.rtl.synth import require_yosys

    chosen = device(args.device)
    check_options_for(args.nextpnr_opts, chosen.family)
    design, described = _design(args)
    require_yosys()
    require_nextpnr(chosen.family)  # before seconds of elaboration

    def place(directory):
        path, top = _verilog(args, design, directory)
        return implement(path, top, chosen, seed=args.seed, target_mhz=args.target_mhz, wrapper=args.wrapper,
                         work_dir=directory, nextpnr_opts=args.nextpnr_opts)

    if args.out:
        from ssdfa.user_files import output_directory

        report = place(output_directory(args.out, "--out"))
    else:
        with tempfile.TemporaryDirectory(prefix="ssdfa-implement-") as scratch:
            report = place(scratch)
    if args.json:
        print(json.dumps({"schema": JSON_SCHEMA, **report.to_json(), **described}, sort_keys=True))
        return 0
    for line in report_lines(report, chosen):
        print(line)
    return 0


def report_lines(report, chosen) -> list[str]:
    """The human-readable report."""
    verdict = "fits" if report.fits else f"DOES NOT FIT: {report.failure}"
    lines = [f"{report.top} on {report.device} ({chosen.part}, {chosen.package}), seed {report.seed}: {verdict}"]
    if report.fits:
        fmax = "no clock" if report.fmax_mhz is None else f"{report.fmax_mhz:.2f} MHz"
        lines.append(f"  fmax {fmax} (placement and routing aimed at {report.target_mhz:g} MHz)")
    if report.nextpnr_options:
        lines.append(f"  nextpnr options: {' '.join(report.nextpnr_options)}")
    path = report.critical_path
    if path is not None:
        lines.append(f"  critical path {path.ns:.2f} ns, {path.logic_levels} logic levels: {path.start} -> {path.end}")
    lines.append("  utilisation (used / available):")
    for name, (used, available) in report.utilisation.items():
        if used or name == chosen.logic_resource:
            share = f"{100 * used / available:.1f}%" if available else "-"
            lines.append(f"    {name:<16} {used:>7} / {available:<7} {share:>7}")
    unused = sum(1 for name, (used, _) in report.utilisation.items() if not used and name != chosen.logic_resource)
    if unused:
        lines.append(f"    ({unused} other resource types unused; --json lists them)")
    if report.wrapper is not None:
        w = report.wrapper
        lines.append(f"  pins: {report.port_bits} port bits, {report.package_pins} in the package: placed through "
                     f"the {w.mode} implement_wrapper ({w.input_bits} input bits shifted in, {w.output_bits} output "
                     f"bits captured and shifted out, {w.pins} pins); paths through its registers are in timing, pad "
                     f"timing is not")
    else:
        lines.append(f"  pins: {report.port_bits} port bits, one pin each ({report.package_pins} in the package); "
                     f"pad timing is not constrained")
    lines.append(f"  tools: {report.yosys_version}, {report.nextpnr_version}")
    return lines
