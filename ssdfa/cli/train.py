"""``ssdfa train``: train a network in floating point or bit-exact fixed point and report accuracy.

Every argument is checked before training starts; a bad one is reported in one line that names
it, with exit status 2. Same seed, same result (bit for bit in fixed point; the reported
seconds aside). ``--save FILE.npz`` writes the trained network (``_weights``); nothing else is
written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.model.arithmetic import FixedFormat, Overflow, Rounding
from ssdfa.model.float_network import Loss
from ssdfa.model.network import HIDDEN_ACTIVATIONS, Algorithm, NetworkSpec
from ssdfa.model.neuron_ops import Activation, ArithmeticConfig
from ssdfa.model.training import TrainingOptions, TrainingResult

from ._weights import add_save_argument, check_save_target, save_trained

#: Defaults of the command, chosen on the digits validation split (docs/model.md).
DEFAULT_EPOCHS = 20
DEFAULT_HIDDEN = (100,)
DEFAULT_FEEDBACK_GAIN = 8.0
DEFAULT_LR = 2.0**-4
CONNECTIVITY = ("balanced", "random", "lfsr")

#: The ``--*-format`` options and the ``ArithmeticConfig`` field each one sets.
FORMAT_OPTIONS = {
    "activation_format": "activation",
    "weight_format": "weight",
    "feedback_format": "feedback",
    "error_format": "error",
    "delta_format": "delta",
    "bp_error_format": "bp_error",
}
FIXED_ONLY = ("rounding", "update_rounding", "overflow", "shift", *FORMAT_OPTIONS)
FLOAT_ONLY = ("lr", "momentum", "loss", "float64")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train BP, DFA, SDFA or SSDFA in float or bit-exact fixed point",
        description="Train a fully connected network; print its train, validation and test accuracy.",
    )
    add_network_arguments(parser)
    add_arithmetic_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object (and no progress bar)")
    add_save_argument(parser)
    parser.set_defaults(func=run)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and network")
    group.add_argument(
        "--dataset",
        default="digits",
        help="digits, mnist, fashion-mnist, cifar10 or features:PATH.npz (default digits)",
    )
    group.add_argument("--data-dir", default=None, metavar="DIR", help="directory holding the dataset's files")
    group.add_argument(
        "--split-seed",
        type=int,
        default=0,
        metavar="K",
        help="seed of the train/validation/test split (default 0)",
    )
    group.add_argument(
        "--train-limit",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N samples of the training split",
    )
    group.add_argument("--algo", default="ssdfa", help="bp, dfa, sdfa or ssdfa (default ssdfa)")
    group.add_argument(
        "--sparsity",
        type=int,
        default=None,
        metavar="S",
        help="sdfa: error connections per hidden neuron (s)",
    )
    group.add_argument(
        "--rank",
        type=int,
        default=None,
        metavar="R",
        help="rank of the feedback matrices (default full)",
    )
    group.add_argument(
        "--connectivity",
        default="balanced",
        help="feedback connectivity: balanced (equal fan-out per error), random, or lfsr "
        "(ssdfa, regenerated on chip from the LFSR); default balanced",
    )
    group.add_argument("--power-of-two", action="store_true", help="feedback constants +-2^k")
    group.add_argument(
        "--feedback-gain",
        type=float,
        default=DEFAULT_FEEDBACK_GAIN,
        metavar="G",
        help=f"multiplies the paper's feedback range (default {DEFAULT_FEEDBACK_GAIN:g})",
    )
    group.add_argument(
        "--weight-gain",
        type=float,
        default=1.0,
        metavar="G",
        help="multiplies the paper's weight range (default 1)",
    )
    group.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=list(DEFAULT_HIDDEN),
        metavar="N",
        help="hidden layer sizes (default 100)",
    )
    group.add_argument("--activation", default="relu", help="hidden activation: relu, hardtanh or tanh (default relu)")
    group.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="K",
        help="seed of weights, feedback, sample order and LFSRs (default 0)",
    )


def add_arithmetic_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ArithmeticConfig()
    group = parser.add_argument_group("fixed point (with --fixed)")
    group.add_argument("--fixed", action="store_true", help="train bit-exact in fixed point")
    for option, field_name in FORMAT_OPTIONS.items():
        group.add_argument(
            "--" + option.replace("_", "-"),
            default=None,
            metavar="FMT",
            help=f"SQ(i,f) or UQ(i,f) (default {getattr(defaults, field_name)})",
        )
    group.add_argument(
        "--rounding",
        default=None,
        metavar="MODE",
        help=f"signal-path rounding (default {defaults.rounding.name})",
    )
    group.add_argument(
        "--update-rounding",
        default=None,
        metavar="MODE",
        help=f"delta and weight-step rounding (default {defaults.update_rounding.name})",
    )
    group.add_argument(
        "--overflow",
        default=None,
        metavar="MODE",
        help=f"SAT or WRAP (default {defaults.overflow.name})",
    )
    group.add_argument(
        "--shift",
        type=int,
        default=None,
        help=f"learning rate 2^-shift (default {defaults.shift} + log2(batch), rounded up: the batch's steps add up)",
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"passes over the training split (default {DEFAULT_EPOCHS})",
    )
    group.add_argument("--batch", type=int, default=1, help="samples per step (default 1, the hardware's)")
    group.add_argument("--lr", type=float, default=None, help=f"float: learning rate (default {DEFAULT_LR:g})")
    group.add_argument("--momentum", type=float, default=None, help="float: momentum (default 0)")
    group.add_argument("--loss", default=None, help="float: mse (default) or ce (softmax cross-entropy)")
    group.add_argument(
        "--float64",
        action="store_true",
        default=None,
        help="float: train in float64 instead of float32",
    )


@dataclass(frozen=True)
class TrainRequest:
    """A checked ``ssdfa train`` invocation: what to load, build and run."""

    algorithm: Algorithm
    activation: Activation
    hidden: tuple
    connections: int | None
    rank: int | None
    connectivity: str
    power_of_two: bool
    feedback_gain: float
    weight_gain: float
    seed: int
    config: ArithmeticConfig | None
    options: TrainingOptions
    dataset: str
    data_dir: str | None
    split_seed: int
    train_limit: int | None

    def network_spec(self, inputs: int, outputs: int) -> NetworkSpec:
        """The network for a dataset with ``inputs`` features and ``outputs`` classes."""
        return NetworkSpec(
            (inputs, *self.hidden, outputs),
            algorithm=self.algorithm,
            activation=self.activation,
            connections=self.connections,
            rank=self.rank,
            balanced=self.connectivity == "balanced",
            power_of_two=self.power_of_two,
            lfsr_connectivity=self.connectivity == "lfsr",
            seed=self.seed,
            weight_gain=self.weight_gain,
            feedback_gain=self.feedback_gain,
        )


def build_request(args: argparse.Namespace) -> TrainRequest:
    """Check every argument that needs no data; raise ``SsdfaError``/``ValueError`` naming it."""
    given = vars(args)
    if args.fixed:
        wrong = [name for name in FLOAT_ONLY if given.get(name) is not None]
        if wrong:
            option = "--" + wrong[0].replace("_", "-")
            raise SsdfaError(f"{option} applies to float training; fixed point learns with --shift")
    else:
        wrong = [name for name in FIXED_ONLY if given.get(name) is not None]
        if wrong:
            raise SsdfaError(f"--{wrong[0].replace('_', '-')} applies to fixed point only; add --fixed")
    for size in args.hidden:
        if size < 1:
            raise SsdfaError(f"--hidden sizes must be positive integers, not {size}")
    if args.batch is not None and args.batch >= 1:
        # Before the data are read: one input and two classes already show an impossible size.
        require_training_memory([1, *args.hidden, 2], args.batch, fixed=args.fixed)
    for option in ("epochs", "batch", "train_limit"):
        value = given.get(option)
        if value is not None and value < 1:
            raise SsdfaError(f"--{option.replace('_', '-')} must be at least 1, not {value}")
    for option in ("seed", "split_seed"):
        if given[option] < 0:
            raise SsdfaError(f"--{option.replace('_', '-')} must be non-negative, not {given[option]}")
    connectivity = str(args.connectivity).lower()
    if connectivity not in CONNECTIVITY:
        raise SsdfaError(f"unknown connectivity {args.connectivity!r}; expected one of {', '.join(CONNECTIVITY)}")
    algorithm = Algorithm.parse(args.algo)
    activation = _hidden_activation(args.activation)
    if not algorithm.uses_feedback:
        if args.sparsity is not None or args.rank is not None or args.power_of_two:
            raise SsdfaError("bp uses no feedback matrix: --sparsity, --rank and --power-of-two do not apply")
        connectivity = "random"
    elif connectivity == "lfsr" and algorithm is not Algorithm.SSDFA:
        raise SsdfaError(
            f"--connectivity lfsr gives one error per neuron: it needs --algo ssdfa, not {algorithm.value}"
        )

    config = None
    if args.fixed:
        fields: dict = {}
        for option, field_name in FORMAT_OPTIONS.items():
            text = given[option]
            if text is not None:
                try:
                    fields[field_name] = FixedFormat.parse(text)
                except ValueError as exc:
                    raise SsdfaError(f"--{option.replace('_', '-')}: {exc}") from None
        if args.rounding is not None:
            fields["rounding"] = Rounding.parse(args.rounding)
        if args.update_rounding is not None:
            fields["update_rounding"] = Rounding.parse(args.update_rounding)
        if args.overflow is not None:
            fields["overflow"] = Overflow.parse(args.overflow)
        # The batched mode sums the batch's steps (arithmetic.md §7): by default the shift
        # grows with log2(batch) so that the step per sample stays 2^-4.
        fields["shift"] = args.shift if args.shift is not None else default_shift(args.batch)
        config = ArithmeticConfig(seed=args.seed, **fields)
        options = TrainingOptions(epochs=args.epochs, batch=args.batch)
    else:
        options = TrainingOptions(
            epochs=args.epochs,
            batch=args.batch,
            lr=DEFAULT_LR if args.lr is None else args.lr,
            momentum=0.0 if args.momentum is None else args.momentum,
            loss=Loss.SQUARED if args.loss is None else Loss.parse(args.loss),
            float_dtype=np.float64 if args.float64 else np.float32,
        )
    return TrainRequest(
        algorithm=algorithm,
        activation=activation,
        hidden=tuple(args.hidden),
        connections=args.sparsity,
        rank=args.rank,
        connectivity=connectivity,
        power_of_two=bool(args.power_of_two),
        feedback_gain=args.feedback_gain,
        weight_gain=args.weight_gain,
        seed=args.seed,
        config=config,
        options=options,
        dataset=args.dataset,
        data_dir=args.data_dir,
        split_seed=args.split_seed,
        train_limit=args.train_limit,
    )


def require_training_memory(layer_sizes, batch: int, *, fixed: bool) -> None:
    """Refuse a network whose training cannot fit in the memory available (one line naming it)."""
    from ssdfa.model.memory_budget import require_memory, training_bytes

    hidden = " ".join(str(size) for size in layer_sizes[1:-1])
    require_memory(training_bytes(layer_sizes, batch, fixed=fixed), f"--hidden {hidden} with --batch {batch}")


def default_shift(batch: int) -> int:
    """The fixed-point learning-rate shift for a batch: the contract's default plus log2(batch)."""
    return ArithmeticConfig().shift + math.ceil(math.log2(batch))


def _hidden_activation(name: str) -> Activation:
    try:
        activation = Activation.parse(name)
    except ValueError:
        activation = None
    if activation not in HIDDEN_ACTIVATIONS:
        raise SsdfaError(
            f"unknown hidden activation {name!r}; expected one of {', '.join(a.value for a in HIDDEN_ACTIVATIONS)}"
        )
    return activation


def load_data(request: TrainRequest):
    """The dataset of a request (its training split cut to ``train_limit`` when given)."""
    from ssdfa.model.datasets import limit_samples, load_dataset

    dataset = load_dataset(request.dataset, request.data_dir, seed=request.split_seed)
    if request.train_limit is not None:
        dataset = limit_samples(dataset, request.train_limit)
    return dataset


def prepare(request: TrainRequest, dataset) -> NetworkSpec:
    """The spec for the dataset, with the fixed-point network's widths checked (no training)."""
    from ssdfa.model.fixed_network import FixedNetwork

    spec = request.network_spec(dataset.num_features, dataset.num_classes)
    require_training_memory(spec.layer_sizes, request.options.batch, fixed=request.config is not None)
    if request.config is not None:
        FixedNetwork(spec, request.config, batch=request.options.batch)  # refuses impossible widths
    return spec


def run(args: argparse.Namespace) -> int:
    from ssdfa.model.training import train

    request = build_request(args)
    check_save_target(args.save)
    dataset = load_data(request)
    spec = prepare(request, dataset)
    progress = not args.json and sys.stderr.isatty()
    result = train(spec, dataset, config=request.config, options=request.options, progress=progress)
    report = result_summary(result, dataset.name)
    if args.save is not None:
        report["saved"] = save_trained(args.save, result, dataset.name, request.split_seed, request.train_limit)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(format_summary(report))
        if args.save is not None:
            print(f"  saved to {report['saved']['path']} (SHA-256 {report['saved']['sha256']})")
    return 0


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def arithmetic_summary(config: ArithmeticConfig) -> dict:
    """Formats and modes as strings, in a fixed order."""
    return {
        "activation": str(config.activation),
        "weight": str(config.weight),
        "feedback": str(config.feedback),
        "error": str(config.error),
        "delta": str(config.delta),
        "bp_error": str(config.bp_error),
        "rounding": config.rounding.name,
        "update_rounding": config.update_rounding.name,
        "overflow": config.overflow.name,
        "shift": config.shift,
        "seed": config.seed,
    }


def result_summary(result: TrainingResult, dataset_name: str) -> dict:
    """Plain values for JSON: configuration, per-epoch history and final accuracies."""
    options = result.options
    training = {"epochs": options.epochs, "batch": options.batch}
    if not result.fixed:
        training.update(
            lr=options.lr, momentum=options.momentum, loss=options.loss.value, dtype=np.dtype(options.float_dtype).name
        )
    network = result.network
    feedback = [m.summary() for m in (network.feedback if result.fixed else result.spec.feedback())]
    return {
        "dataset": dataset_name,
        "mode": "fixed" if result.fixed else "float",
        "network": result.spec.describe(),
        "arithmetic": arithmetic_summary(result.config) if result.fixed else None,
        "raw_dtype": np.dtype(network.dtype).name if result.fixed else None,
        "feedback": feedback,
        "training": training,
        "history": [
            {
                "epoch": r.epoch,
                "train_accuracy": r.train_accuracy,
                "val_accuracy": r.val_accuracy,
                "seconds": round(r.seconds, 3),
            }
            for r in result.history
        ],
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "samples": result.samples,
        "seconds": round(result.seconds, 3),
    }


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def format_summary(report: dict) -> str:
    """A few readable lines."""
    network = report["network"]
    sizes = "-".join(str(n) for n in network["layer_sizes"])
    lines = [f"{network['algorithm']} {sizes} {network['activation']} on {report['dataset']}, {report['mode']}"]
    if report["arithmetic"]:
        a = report["arithmetic"]
        lines.append(
            f"  formats: x/a {a['activation']}, W {a['weight']}, b {a['feedback']}, e {a['error']}, "
            f"delta {a['delta']}" + (f", g {a['bp_error']}" if network["algorithm"] == "bp" else "")
        )
        lines.append(
            f"  modes: rounding {a['rounding']}, update {a['update_rounding']}, overflow {a['overflow']}, "
            f"shift {a['shift']} (lr 2^-{a['shift']}), raw {report['raw_dtype']}"
        )
    else:
        t = report["training"]
        lines.append(f"  {t['dtype']}, lr {t['lr']:g}, momentum {t['momentum']:g}, loss {t['loss']}")
    for summary in report["feedback"]:
        lines.append(
            f"  feedback: s={summary['connections']}, rank {summary['rank']}, sparsity {summary['sparsity']:.2f}, "
            f"fan-out {summary['fan_out_min']}..{summary['fan_out_max']} neurons per error"
        )
    t = report["training"]
    lines.append(
        f"  {t['epochs']} epochs, batch {t['batch']}, {report['samples']} samples in {report['seconds']:.1f} s"
    )
    lines.append(
        f"  accuracy: train {_percent(report['train_accuracy'])}, validation {_percent(report['val_accuracy'])}, "
        f"test {_percent(report['test_accuracy'])}"
    )
    return "\n".join(lines)
