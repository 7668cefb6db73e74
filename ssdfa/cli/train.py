"""``ssdfa train``: train a network in floating point or bit-exact fixed point and report accuracy.

Every argument is checked before training starts; a bad one is reported in one line that names
it, with exit status 2. A run that diverges stops with one line that says what diverged and
what to try, and exit status 1 (``"status": "diverged"`` with ``--json``), without an accuracy.
``--save FILE.npz`` writes the trained network (``_weights``); nothing else is written.
Same seed, same result (bit for bit in fixed point; the reported seconds aside). The feedback gain and the learning rate default to the rule of
``model.defaults`` for the dataset's fan-in (docs/model.md section 1.1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.model.arithmetic import FixedFormat, Overflow, Rounding
from ssdfa.model.defaults import default_hyperparameters
from ssdfa.model.float_network import Loss
from ssdfa.model.network import HIDDEN_ACTIVATIONS, Algorithm, NetworkSpec
from ssdfa.model.neuron_ops import Activation, ArithmeticConfig
from ssdfa.model.training import KEEP_CHOICES, TrainingOptions, TrainingResult

from ._argtypes import seed_int
from ._weights import add_save_argument, check_save_target, save_trained

#: Defaults of the command, chosen on the digits validation split (docs/model.md). The feedback
#: gain and the learning rate come from ``model.defaults`` (the rule), given the data's fan-in.
DEFAULT_EPOCHS = 20
DEFAULT_HIDDEN = (100,)
DEFAULT_CONNECTIVITY = "balanced"
CONNECTIVITY = ("balanced", "random", "lfsr")
#: Exit status of a run that diverged (bad input is 2).
EXIT_DIVERGED = 1

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
    group.add_argument(
        "--input-shift",
        type=int,
        default=0,
        metavar="K",
        help="multiply the features by 2^-K (a right shift): larger first-layer weights for narrow weight "
        "formats (default 0)",
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
        default=DEFAULT_CONNECTIVITY,
        help="feedback connectivity: balanced (equal fan-out per error), random, or lfsr "
        "(ssdfa, regenerated on chip from the LFSR); default balanced",
    )
    group.add_argument("--power-of-two", action="store_true", help="feedback constants +-2^k")
    group.add_argument(
        "--feedback-gain",
        type=float,
        default=None,
        metavar="G",
        help="multiplies the paper's feedback range (default: the rule, 8 for 64 inputs, 4 for 784; docs/model.md)",
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
        type=seed_int,
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
        help="learning rate 2^-shift (default: the rule, 4 for 64 inputs, 5 for 784, plus log2(batch) rounded up: "
        "the batch's steps add up)",
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
    group.add_argument(
        "--shift-steps",
        type=_epoch_list,
        default=(),
        metavar="E[,E...]",
        help="halve the learning rate (shift + 1) at the start of each of these epochs",
    )
    group.add_argument(
        "--keep",
        default="last",
        choices=KEEP_CHOICES,
        help="end with the last epoch's weights (default) or those of the best validation accuracy; both are reported",
    )
    group.add_argument(
        "--angles",
        action="store_true",
        help="record eq. 14's angle and the update's angle to BP's gradient per hidden layer after every epoch",
    )
    group.add_argument("--lr", type=float, default=None, help="float: learning rate (default: the rule, 2^-shift)")
    group.add_argument("--momentum", type=float, default=None, help="float: momentum (default 0)")
    group.add_argument("--loss", default=None, help="float: mse (default) or ce (softmax cross-entropy)")
    group.add_argument(
        "--float64",
        action="store_true",
        default=None,
        help="float: train in float64 instead of float32",
    )


def _epoch_list(text: str) -> tuple:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected epochs such as 3,5, not {text!r}") from None


@dataclass(frozen=True)
class TrainRequest:
    """A checked ``ssdfa train`` invocation: what to load, build and run.

    ``feedback_gain`` None, and the learning rate when not in ``given``, are the rule's;
    ``resolve_defaults`` fills them in once the data's fan-in is known.
    """

    algorithm: Algorithm
    activation: Activation
    hidden: tuple
    connections: int | None
    rank: int | None
    connectivity: str
    power_of_two: bool
    feedback_gain: float | None
    weight_gain: float
    seed: int
    config: ArithmeticConfig | None
    options: TrainingOptions
    dataset: str
    data_dir: str | None
    split_seed: int
    train_limit: int | None
    input_shift: int = 0
    #: Which of "shift" and "lr" the command line set (the others follow the rule).
    given: frozenset = frozenset()
    #: ``resolve_defaults`` has set the rule's values: the request can build its network.
    resolved: bool = False

    def network_spec(self, inputs: int, outputs: int) -> NetworkSpec:
        """The network for a dataset with ``inputs`` features and ``outputs`` classes."""
        if not self.resolved:
            # Without it the network would silently take gain 1 and the contract's shift.
            raise RuntimeError("call resolve_defaults(request, features) before building the network")
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


def resolve_defaults(request: TrainRequest, inputs: int) -> TrainRequest:
    """The request with the rule's feedback gain and learning rate for ``inputs`` features,
    where the command line gave none (docs/model.md section 1.1)."""
    config = request.config
    rule = default_hyperparameters(
        inputs, request.hidden, batch=request.options.batch, feedback_format=None if config is None else config.feedback
    )
    changes: dict = {"resolved": True}
    if request.feedback_gain is None:
        changes["feedback_gain"] = rule.feedback_gain
    if config is not None and "shift" not in request.given:
        changes["config"] = dataclasses.replace(config, shift=rule.shift)
    if config is None and "lr" not in request.given:
        # Float averages a batch's gradient: the per-sample rate, whatever the batch.
        per_sample = default_hyperparameters(inputs, request.hidden)
        changes["options"] = dataclasses.replace(request.options, lr=per_sample.lr)
    return dataclasses.replace(request, **changes)


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
    if args.feedback_gain is not None and not args.feedback_gain > 0:
        raise SsdfaError(f"--feedback-gain must be a positive number, not {args.feedback_gain:g}")
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
    if not 0 <= args.input_shift <= 16:
        raise SsdfaError(f"--input-shift must be an integer from 0 to 16, not {args.input_shift}")
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
        # Without --shift, resolve_defaults sets the rule's (which grows with log2(batch):
        # the batched mode sums the batch's steps, arithmetic.md §7).
        if args.shift is not None:
            fields["shift"] = args.shift
        config = ArithmeticConfig(seed=args.seed, **fields)
        options = TrainingOptions(
            epochs=args.epochs, batch=args.batch, shift_steps=args.shift_steps, keep=args.keep, angles=args.angles
        )
    else:
        options = TrainingOptions(
            epochs=args.epochs,
            batch=args.batch,
            shift_steps=args.shift_steps,
            keep=args.keep,
            angles=args.angles,
            lr=2.0**-4 if args.lr is None else args.lr,  # provisional: resolve_defaults sets the rule's
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
        input_shift=args.input_shift,
        given=frozenset(name for name in ("shift", "lr") if given.get(name) is not None),
    )


def require_training_memory(layer_sizes, batch: int, *, fixed: bool) -> None:
    """Refuse a network whose training cannot fit in the memory available (one line naming it)."""
    from ssdfa.model.memory_budget import require_memory, training_bytes

    hidden = " ".join(str(size) for size in layer_sizes[1:-1])
    require_memory(training_bytes(layer_sizes, batch, fixed=fixed), f"--hidden {hidden} with --batch {batch}")

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
    from ssdfa.model.datasets import limit_samples, load_dataset, shift_features

    dataset = load_dataset(request.dataset, request.data_dir, seed=request.split_seed)
    if request.train_limit is not None:
        dataset = limit_samples(dataset, request.train_limit)
    absent = np.flatnonzero(np.bincount(dataset.y_train, minlength=dataset.num_classes) == 0)
    if len(absent):
        # Labels counted from 1, or classes met only in testing: say so, the network still has
        # an output for each index up to the largest label.
        shown = ", ".join(map(str, absent[:8])) + (", ..." if len(absent) > 8 else "")
        print(f"ssdfa: note: {len(absent)} of the {dataset.num_classes} classes (labels 0 to {dataset.num_classes - 1}) "
              f"have no training sample: {shown}", file=sys.stderr)
    return shift_features(dataset, request.input_shift)


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
    check_save_target(args.save, request.dataset, request.data_dir)
    dataset = load_data(request)
    request = resolve_defaults(request, dataset.num_features)
    spec = prepare(request, dataset)
    progress = not args.json and sys.stderr.isatty()
    result = train(spec, dataset, config=request.config, options=request.options, progress=progress)
    report = result_summary(result, dataset.name, request.input_shift)
    if args.save is not None and not result.diverged:  # a diverged run's weights mean nothing
        report["saved"] = save_trained(
            args.save, result, dataset, request.split_seed, request.train_limit, request.input_shift,
            data_dir=request.data_dir
        )
    if args.json:
        print(json.dumps(report, sort_keys=True))
    if result.diverged:
        # One line, and no accuracy: the weights of a diverged run mean nothing.
        print(f"ssdfa: diverged: {result.divergence.message}", file=sys.stderr)
        return EXIT_DIVERGED
    if not args.json:
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


def result_summary(result: TrainingResult, dataset_name: str, input_shift: int = 0) -> dict:
    """Plain values for JSON: configuration, per-epoch history and final accuracies."""
    options = result.options
    training = {
        "epochs": options.epochs,
        "batch": options.batch,
        "shift_steps": list(options.shift_steps),
        "keep": options.keep,
        "input_shift": input_shift,
    }
    if not result.fixed:
        training.update(
            lr=options.lr, momentum=options.momentum, loss=options.loss.value, dtype=np.dtype(options.float_dtype).name
        )
    network = result.network
    feedback = [m.summary() for m in (network.feedback if result.fixed else result.spec.feedback())]
    report = {
        "status": "diverged" if result.diverged else "ok",
        "dataset": dataset_name,
        "mode": "fixed" if result.fixed else "float",
        "network": result.spec.describe(),
        "arithmetic": arithmetic_summary(result.config) if result.fixed else None,
        "raw_dtype": np.dtype(network.dtype).name if result.fixed else None,
        "feedback": feedback,
        "training": training,
        "history": [_epoch_summary(r, options.angles) for r in result.history],
        "samples": result.samples,
        "seconds": round(result.seconds, 3),
    }
    if result.diverged:
        # A diverged run has no accuracy to report, only what diverged.
        report["divergence"] = result.divergence.describe()
        return report
    report.update(
        train_accuracy=result.train_accuracy,
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        selection={
            "keep": options.keep,
            "last": _accuracies(result.last),
            "best": _accuracies(result.best),
        },
    )
    return report


def _accuracies(accuracies) -> dict | None:
    if accuracies is None:
        return None
    return {"epoch": accuracies.epoch, "train_accuracy": accuracies.train, "val_accuracy": accuracies.val,
            "test_accuracy": accuracies.test}


def _epoch_summary(record, angles: bool) -> dict:
    summary = {
        "epoch": record.epoch,
        "train_accuracy": record.train_accuracy,
        "val_accuracy": record.val_accuracy,
        "seconds": round(record.seconds, 3),
        "lr": record.lr,
    }
    if record.pinned is not None:
        summary["pinned"] = list(record.pinned)
    if angles:
        summary["alignment_angles"] = None if record.alignment_angles is None else list(record.alignment_angles)
        summary["update_angles"] = None if record.update_angles is None else list(record.update_angles)
    return summary


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
            f"fan-out {summary['fan_out_min']}..{summary['fan_out_max']} neurons per error, "
            f"gain {network['feedback_gain']:g}"
        )
    t = report["training"]
    steps = f", learning rate halved at epochs {','.join(map(str, t['shift_steps']))}" if t["shift_steps"] else ""
    if t.get("input_shift"):
        steps += f", features times 2^-{t['input_shift']}"
    lines.append(
        f"  {t['epochs']} epochs, batch {t['batch']}{steps}, {report['samples']} samples in {report['seconds']:.1f} s"
    )
    for record in report["history"]:
        if "alignment_angles" in record:
            lines.append(
                f"  epoch {record['epoch']}: train {_percent(record['train_accuracy'])}, validation "
                f"{_percent(record['val_accuracy'])}; angle of B to W (eq. 14) {_angles(record['alignment_angles'])}, "
                f"of the update to BP's {_angles(record['update_angles'])} (degrees, per hidden layer)"
            )
    lines.append(
        f"  accuracy: train {_percent(report['train_accuracy'])}, validation {_percent(report['val_accuracy'])}, "
        f"test {_percent(report['test_accuracy'])} ({report['selection']['keep']} epoch's weights)"
    )
    for choice in ("last", "best"):
        kept = report["selection"][choice]
        if kept is not None:
            lines.append(
                f"    {choice} epoch ({kept['epoch']}): train {_percent(kept['train_accuracy'])}, "
                f"validation {_percent(kept['val_accuracy'])}, test {_percent(kept['test_accuracy'])}"
            )
    return "\n".join(lines)


def _angles(values) -> str:
    if not values:
        return "-"
    return "/".join("-" if v is None else f"{v:.1f}" for v in values)
