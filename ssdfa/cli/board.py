"""``ssdfa board``: the learner on an FPGA board through its UART (docs/board.md).

- ``build``: the board top's bitstream, with utilisation and timing at the board clock;
- ``train``: one training epoch on the board (``--port``) or on the Verilator board core
  (``--sim verilator``), bit for bit against the model;
- ``eval``: inference with the weights of a saved network.

A link error (a timeout, replies that never check, a missing port) is one line and exit status 2;
``train --progress FILE`` records where it stopped and ``--resume FILE`` goes on from there.
"""

from __future__ import annotations

import argparse
import json

from ._argtypes import natural_int, positive_int, positive_number, seed_int

EXIT_MISMATCH = 1


def register(subparsers) -> None:
    from ssdfa.board.boards import BOARDS

    parser = subparsers.add_parser("board", help="the learner on an FPGA board through a UART: build, train, eval",
                                   description="Build board bitstreams, and train or evaluate the learner on a "
                                   "board (or its Verilator simulation) through the framed UART link.")
    commands = parser.add_subparsers(dest="board_command", required=True, metavar="{build,train,eval}")

    def network_options(sub, *, shape: bool = True):
        sub.add_argument("--board", required=True, choices=sorted(BOARDS), help="the board")
        if shape:
            sub.add_argument("--hidden", type=positive_int, default=None, metavar="N",
                             help="hidden neurons (default: the board's, docs/board.md §5)")
            sub.add_argument("--pes", default=None, metavar="P,P",
                             help="PEs per layer (default: the board's for its own hidden width; for another "
                                  "--hidden, the fewest with at most 8 neurons per PE, which may not fit the board)")

    build = commands.add_parser("build", help="build the board's bitstream and report utilisation and timing")
    network_options(build)
    build.add_argument("--out", required=True, metavar="DIR", help="build directory")
    build.add_argument("--json", action="store_true", help="print one JSON object")
    build.set_defaults(func=run_build)

    def link_options(sub):
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--port", metavar="DEVICE", help="the board's serial port (e.g. /dev/ttyUSB1)")
        where.add_argument("--sim", choices=("verilator",), help="the board core under Verilator instead")
        sub.add_argument("--timeout", type=_timeout, default=None, metavar="S",
                         help="seconds to wait for a reply (default 2 on a port, 120 in simulation)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")

    train = commands.add_parser("train", help="train one epoch on the board, checked against the model")
    network_options(train)
    link_options(train)
    train.add_argument("--dataset", default="digits", choices=("digits",), help="the dataset (digits)")
    train.add_argument("--epochs", type=positive_int, default=1, help="epochs (1)")
    train.add_argument("--seed", type=seed_int, default=0, help="seed of the network and the split")
    train.add_argument("--train-limit", type=positive_int, default=None, metavar="N",
                       help="train on the first N samples only (class-balanced)")
    train.add_argument("--test-limit", type=natural_int, default=None, metavar="N",
                       help="test on the first N samples only")
    train.add_argument("--progress", default=None, metavar="FILE",
                       help="on a link error, write where the run stopped here")
    train.add_argument("--resume", default=None, metavar="FILE",
                       help="go on from a --progress file, on a board that kept its state")
    train.add_argument("--fmax", type=positive_number, default=None, metavar="MHZ",
                       help="fmax from `ssdfa board build`, for the compute rate at fmax")
    train.set_defaults(func=run_train)

    evaluate = commands.add_parser("eval", help="inference on the board with a saved network's weights")
    evaluate.add_argument("weights", metavar="FILE.npz", help="a saved network (ssdfa train --save)")
    network_options(evaluate, shape=False)
    evaluate.add_argument("--pes", default=None, metavar="P,P",
                          help="PEs per layer (default: the board's when the network has its hidden width; "
                               "otherwise the fewest with at most 8 neurons per PE)")
    link_options(evaluate)
    evaluate.add_argument("--limit", type=positive_int, default=None, metavar="N", help="the first N test samples")
    evaluate.set_defaults(func=run_eval)


def _timeout(text: str) -> float:
    """Seconds to wait for a reply: positive, at most an hour (a serial read takes no longer)."""
    value = positive_number(text)
    if value > 3600:
        raise argparse.ArgumentTypeError(f"expected at most 3600 seconds, not {text}")
    return value


def _shape(args, board):
    from ssdfa.sim.network_cosim import int_list

    hidden = (args.hidden,) if getattr(args, "hidden", None) else board.hidden
    pes = tuple(int_list(args.pes)) if args.pes else (board.pes if hidden == board.hidden else None)
    return hidden, pes


def run_build(args: argparse.Namespace) -> int:
    from ssdfa.board.boards import board as find_board
    from ssdfa.board.build import build_board
    from ssdfa.model.neuron_ops import ArithmeticConfig
    from ssdfa.rtl.network import default_pes, network_layer_configs
    from ssdfa.user_files import directory_kept_on_success, output_directory

    board = find_board(args.board)
    hidden, pes = _shape(args, board)
    sizes = (64, *hidden, 10)
    output_directory(args.out, "--out", create=False)
    configs = network_layer_configs(sizes, ArithmeticConfig(seed=0), pes=pes or default_pes(sizes))
    with directory_kept_on_success(args.out, "--out") as out_dir:
        report = build_board(board, configs, out_dir, out=(lambda line: None) if args.json else print)
    result = {"board": report.board, "network": report.network, "pes": list(report.pes),
              "clock_mhz": report.clock_mhz, "fmax_mhz": report.fmax_mhz, "meets_timing": report.meets_timing,
              "utilisation": {k: list(v) for k, v in report.utilisation.items()}, "fits": report.fits,
              "bitstream": report.bitstream, "bitstream_sha256": report.bitstream_sha256,
              "seconds": round(report.seconds, 1)}
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for cell, (used, available) in report.utilisation.items():
            print(f"  {cell:<16} {used:>6} / {available:<6} ({100 * used / max(1, available):.0f}%)")
        fmax = f"{report.fmax_mhz:.2f} MHz" if report.fmax_mhz else "not reported"
        print(f"{report.board}: {report.network} (PEs {'+'.join(map(str, report.pes))}): "
              f"{'fits' if report.fits else 'DOES NOT FIT'}; fmax {fmax} against the {report.clock_mhz:g} MHz "
              f"board clock ({'met' if report.meets_timing else 'NOT MET'}); bitstream {report.bitstream} "
              f"(SHA-256 {report.bitstream_sha256}) in {report.seconds:.0f} s")
    return 0 if report.fits and report.meets_timing and report.bitstream else EXIT_MISMATCH


def _link(args, configs, board):
    """The link and, for --sim, the simulated board (a context manager) behind it."""
    import contextlib

    from ssdfa.board.link import Link, SerialTransport

    if args.port is not None:
        transport = SerialTransport(args.port, board.baud)
        stack = contextlib.ExitStack()
        stack.callback(transport.close)
        return stack, Link(transport, timeout=args.timeout or 2.0)
    from ssdfa.sim.board_sim import SimulatedBoard

    simulated = SimulatedBoard(configs)
    stack = contextlib.ExitStack()
    stack.enter_context(simulated)
    return stack, Link(simulated.transport, timeout=args.timeout or 120.0)


def run_train(args: argparse.Namespace) -> int:
    from ssdfa.board.boards import board as find_board
    from ssdfa.board.driver import Progress, train_on_board
    from ssdfa.errors import SsdfaError
    from ssdfa.model.datasets import limit_samples, load_dataset
    from ssdfa.model.defaults import default_hyperparameters
    from ssdfa.user_files import check_output_file
    from ssdfa.model.fixed_network import FixedNetwork
    from ssdfa.model.network import Algorithm, NetworkSpec
    from ssdfa.model.neuron_ops import ArithmeticConfig
    from ssdfa.rtl.network import default_pes, network_layer_configs

    board = find_board(args.board)
    if args.epochs != 1:
        raise SsdfaError(f"ssdfa board train runs one epoch, not --epochs {args.epochs}")
    if (args.resume or args.progress) and args.sim:
        option = "--resume" if args.resume else "--progress"
        raise SsdfaError(f"{option} needs a board that keeps its state: use --port (a simulated board ends with the "
                         "run, so nothing could be resumed)")
    progress = Progress.load(args.resume) if args.resume else None
    if args.progress:
        check_output_file(args.progress, "--progress")
    hidden, pes = _shape(args, board)
    dataset = load_dataset(args.dataset, seed=args.seed)
    if args.train_limit is not None or args.test_limit is not None:
        dataset = limit_samples(dataset, args.train_limit, test=args.test_limit)
    sizes = (dataset.num_features, *hidden, dataset.num_classes)
    pes = pes or default_pes(sizes)
    # The defaults of ssdfa train --fixed (docs/model.md section 1.1): gain 8 and shift 4 on digits.
    rule = default_hyperparameters(sizes[0], hidden, feedback_format=ArithmeticConfig().feedback)
    spec = NetworkSpec(sizes, algorithm=Algorithm.SSDFA, seed=args.seed, balanced=True, feedback_gain=rule.feedback_gain)
    model = FixedNetwork(spec, ArithmeticConfig(seed=args.seed, shift=rule.shift))
    configs = network_layer_configs(sizes, model.config, pes=pes, activation=spec.activation)
    stack, link = _link(args, configs, board)
    with stack:
        run = train_on_board(link, model, pes, model.quantize_inputs(dataset.x_train), dataset.y_train,
                             model.quantize_inputs(dataset.x_test), dataset.y_test, board=board, fmax_mhz=args.fmax,
                             progress=progress, progress_file=args.progress or args.resume,
                             out=(lambda line: None) if args.json else print)
    figures = dict(run.figures)
    figures["link"] = "verilator" if args.sim else args.port
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0 if run.bit_exact else EXIT_MISMATCH


def run_eval(args: argparse.Namespace) -> int:
    from ssdfa.board.boards import board as find_board
    from ssdfa.board.driver import Progress, check_learner, load_state, stream_samples
    from ssdfa.model.training_data import dataset_as_trained
    from ssdfa.model.weight_file import load_network
    from ssdfa.sim.network_cosim import int_list
    from ssdfa.sim.network_driver import MODE, NetworkDriver
    from ssdfa.sim.network_weights import hardware_configs, hardware_state

    import numpy as np

    board = find_board(args.board)
    saved = load_network(args.weights)
    source = f"weight file {args.weights}"
    # The board's own PE split when the saved network has the board's shape, as train and build.
    hidden = tuple(saved.spec.layer_sizes[1:-1]) if saved.fixed else None
    pes = int_list(args.pes) if args.pes else (board.pes if hidden == tuple(board.hidden) else None)
    configs = hardware_configs(saved, pes, source=source)
    state = hardware_state(saved, configs, source=source)
    dataset = dataset_as_trained(saved)
    network = saved.network()
    x = network.quantize_inputs(dataset.x_test)
    labels = np.asarray(dataset.y_test)
    if args.limit is not None:
        x, labels = x[:args.limit], labels[:args.limit]
    expected = np.asarray(network.predict(x), dtype=np.int64)
    driver = NetworkDriver(configs)
    stack, link = _link(args, configs, board)
    with stack:
        sizes = [configs[0].shape.fan_in] + [config.shape.neurons for config in configs]
        check_learner(link, sizes, -(-driver.arithmetic.activation.word // 8))
        load_state(link, driver.load_writes(state))
        progress, predictions = Progress(), []
        stream_samples(link, x, labels, mode=MODE["infer"], feature_bytes=-(-driver.arithmetic.activation.word // 8),
                       progress=progress, phase="test", predictions=predictions)
    got = np.asarray(predictions, dtype=np.int64)
    identical = bool(np.array_equal(got, expected))
    report = {"board": board.name, "weights": str(args.weights), "samples": int(len(labels)),
              "accuracy": float(np.mean(got == labels)), "model_accuracy": float(np.mean(expected == labels)),
              "identical": identical, "link": "verilator" if args.sim else args.port}
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"{board.name} over {report['link']}: {report['samples']} test samples, accuracy "
              f"{100 * report['accuracy']:.2f}% (model {100 * report['model_accuracy']:.2f}%); predictions "
              f"{'identical to the model' if identical else 'DIFFER from the model'}")
    return 0 if identical else EXIT_MISMATCH
