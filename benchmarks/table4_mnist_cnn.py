"""The MNIST row of the paper's Table 4: a convolutional network trained by BP, DFA and SSDFA.

Trains ``model.conv_network`` networks on MNIST (the IDX files in ``--data-dir``; with only the
``t10k`` pair, its 10,000 images split 70/10/20 by ``datasets.load_dataset``), float and, with
``--fixed``, bit-exact fixed point, and prints the test accuracy of the final weights with the
CPU time of every row. ``--json`` writes the table with the settings its rows used, after every
row (an interrupted run keeps the rows it finished). The network
defaults to the paper's MNIST CNN (Table 2; the authors' ``mnist_conv.py``): 3x3 convolutions of
32 and 64 filters (same padding, tanh), 2x2 max pooling, a 128-neuron tanh layer and 10 outputs.
Dropout is not modelled. Run (docs/conv.md §6 has the committed table):

    OPENBLAS_NUM_THREADS=1 python benchmarks/table4_mnist_cnn.py --data-dir DIR --epochs 2 --fixed
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from ssdfa.cli import run_script  # noqa: E402
from ssdfa.cli._argtypes import positive_int  # noqa: E402
from ssdfa.errors import SsdfaError  # noqa: E402
from ssdfa.model.arithmetic import FixedFormat  # noqa: E402
from ssdfa.model.conv_network import ConvLayerSpec, ConvNetSpec  # noqa: E402
from ssdfa.model.conv_training import ConvTrainingDiverged, train_conv  # noqa: E402
from ssdfa.model.datasets import limit_samples, load_dataset  # noqa: E402
from ssdfa.model.neuron_ops import ArithmeticConfig  # noqa: E402
from ssdfa.user_files import os_error_text, write_atomically  # noqa: E402

ALGORITHMS = ("bp", "dfa", "ssdfa")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="directory of the MNIST IDX files")
    parser.add_argument("--conv", default="32c3,64c3p2", help="convolution layers, e.g. 32c3,64c3p2 (default: paper)")
    parser.add_argument("--hidden", default="128", help="fully connected hidden sizes, comma separated")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma separated: bp, dfa, ssdfa")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--lr", type=float, default=2.0**-4, help="float learning rate on the batch mean")
    parser.add_argument("--shift", type=int, default=7, help="fixed point: learning rate 2^-shift on the batch sum")
    parser.add_argument("--feedback-gain", type=float, default=1.0)
    parser.add_argument("--feedback-format", default="SQ(2,14)")
    parser.add_argument("--delta-format", default="SQ(2,14)")
    parser.add_argument("--train-limit", type=positive_int, default=None, help="use at most this many training samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed", action="store_true", help="also train in bit-exact fixed point")
    parser.add_argument("--no-float", action="store_true", help="skip the float rows")
    parser.add_argument("--json", help="write the table and its configuration here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        conv = tuple(ConvLayerSpec.parse(t) for t in args.conv.split(","))
        hidden = tuple(int(n) for n in args.hidden.split(",") if n)
        dataset = load_dataset("mnist", args.data_dir, seed=args.seed)
        if args.train_limit:
            dataset = limit_samples(dataset, args.train_limit)
        config = ArithmeticConfig(
            shift=args.shift,
            feedback=FixedFormat.parse(args.feedback_format),
            delta=FixedFormat.parse(args.delta_format),
            seed=args.seed + 1,
        )
        algorithms = [a.strip() for a in args.algorithms.split(",")]
        # Every network is built (and so checked) before the first one trains.
        specs = {
            algorithm: ConvNetSpec(
                (28, 28, 1), conv, hidden, 10, algorithm, "tanh", seed=args.seed, feedback_gain=args.feedback_gain
            )
            for algorithm in algorithms
        }
        # Before hours of training, not after: the JSON's directory must exist.
        if args.json and not Path(args.json).resolve().parent.is_dir():
            raise SsdfaError(f"--json {args.json}: no directory {Path(args.json).resolve().parent}")
    except (SsdfaError, ValueError) as exc:
        print(f"table4_mnist_cnn: error: {exc}", file=sys.stderr)
        return 2
    arithmetics = ([] if args.no_float else ["float32"]) + (["fixed"] if args.fixed else [])
    setup = {
        # The data directory is named DIR: results do not record a machine's paths.
        "command": "python benchmarks/table4_mnist_cnn.py "
        + " ".join("DIR" if a == args.data_dir else a for a in (sys.argv[1:] if argv is None else argv)),
        # The network without the algorithm and connections, which every row sets itself.
        "network": {k: v for k, v in specs[algorithms[0]].describe().items() if k not in ("algorithm", "connections")},
        "samples": {"train": len(dataset.y_train), "val": len(dataset.y_val), "test": len(dataset.y_test)},
        "epochs": args.epochs,
        "batch": args.batch,
    }
    # Each arithmetic's settings only where a row uses them.
    if "float32" in arithmetics:
        setup["float_lr"] = args.lr
    if "fixed" in arithmetics:
        setup["fixed"] = {
            "shift": args.shift,
            "feedback": args.feedback_format,
            "delta": args.delta_format,
            "other formats and modes": "ArithmeticConfig defaults",
        }
    rows = []
    print(f"MNIST {len(dataset.y_train)} train / {len(dataset.y_val)} val / {len(dataset.y_test)} test samples")
    print(f"{'arithmetic':10} {'algorithm':9} {'test acc':>8} {'val acc':>8} {'CPU s':>7}")
    try:
        for arithmetic in arithmetics:
            for algorithm in algorithms:
                rows.append(_row(specs[algorithm], dataset, config if arithmetic == "fixed" else None, arithmetic,
                                 algorithm, args))
                # The table so far, after every row: an interrupted run keeps the rows it finished.
                if args.json:
                    write_atomically(args.json, json.dumps({"setup": setup, "rows": rows}, indent=2) + "\n")
    except BrokenPipeError:
        raise  # standard output closed: handled below, as every ssdfa command does
    except OSError as exc:
        print(f"table4_mnist_cnn: error: cannot write {args.json}: {os_error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = f"; {args.json} holds the {len(rows)} row{'s' * (len(rows) != 1)} finished" if args.json and rows else ""
        print(f"table4_mnist_cnn: interrupted{kept}", file=sys.stderr)
        return 130
    return 0


def _row(spec, dataset, config, arithmetic: str, algorithm: str, args) -> dict:
    """Train one network, print its line, return its row (diverged: says so, no accuracy)."""
    try:
        result = train_conv(spec, dataset, config=config, epochs=args.epochs, batch=args.batch, lr=args.lr,
                            evaluate_train=False)
    except ConvTrainingDiverged as exc:
        print(f"{arithmetic:10} {algorithm:9} diverged: {exc}", flush=True)
        return {"arithmetic": arithmetic, "algorithm": algorithm, "diverged": str(exc)}
    print(f"{arithmetic:10} {algorithm:9} {result.test_accuracy:8.4f} {result.val_accuracy:8.4f} "
          f"{result.cpu_seconds:7.1f}", flush=True)
    return {
        "arithmetic": arithmetic,
        "algorithm": algorithm,
        "test_accuracy": result.test_accuracy,
        "val_accuracy": result.val_accuracy,
        "val_by_epoch": [v for _, v, _ in result.history],
        "cpu_seconds": round(result.cpu_seconds, 1),
    }


if __name__ == "__main__":
    run_script(main)
