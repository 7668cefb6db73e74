"""``ssdfa eval``: run a saved network (``ssdfa train --save``) on a dataset split, in the model
and optionally in the RTL, and print its accuracy and a checksum of its predictions.

The checksum is the SHA-256 of the predicted classes as little-endian int64, so two runs (model
and RTL, or two machines) agree on every prediction exactly when their checksums agree. With
``--sim`` the RTL's predictions must be the model's: exit status 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np

from ._argtypes import natural_int, positive_int

SPLITS = ("test", "val", "train")
EXIT_MISMATCH = 1


def register(subparsers) -> None:
    from ssdfa.sim.runner import SIMULATORS

    parser = subparsers.add_parser(
        "eval",
        help="evaluate a saved network on a dataset split, in the model and optionally in RTL",
        description="Run a weight file written by `ssdfa train --save` on a dataset split and print its "
        "accuracy and the SHA-256 of its predictions; with --sim, run the same samples through the RTL "
        "network too (exit status 1 if any prediction differs).",
    )
    parser.add_argument("weights", metavar="FILE.npz", help="a saved network (ssdfa train --save)")
    parser.add_argument("--dataset", default=None,
                        help="digits, mnist, fashion-mnist, cifar10 or features:PATH.npz (default: the one the "
                             "file was trained on, else digits)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="directory holding the dataset's files")
    parser.add_argument("--split-seed", type=natural_int, default=None, metavar="K",
                        help="seed of the train/validation/test split (default: the file's, else 0)")
    parser.add_argument("--split", choices=SPLITS, default="test", help="which split to evaluate (default test)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="evaluate the first N samples of the split only (class-balanced)")
    parser.add_argument("--sim", choices=SIMULATORS, default=None,
                        help="also run the samples through the RTL network on this simulator")
    parser.add_argument("--pes", default=None, metavar="P[,P...]",
                        help="--sim: PEs per layer (default: at most 8 neurons per PE); any partition runs the file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def predictions_sha256(predictions) -> str:
    """SHA-256 of predicted classes as little-endian int64, in sample order."""
    return hashlib.sha256(np.ascontiguousarray(predictions, dtype="<i8").tobytes()).hexdigest()


def run(args: argparse.Namespace) -> int:
    from ssdfa.errors import SsdfaError
    from ssdfa.model.training_data import dataset_as_trained
    from ssdfa.model.datasets import limit_samples
    from ssdfa.model.weight_file import load_network

    saved = load_network(args.weights)  # refuses a damaged or inconsistent file, naming it
    source = f"weight file {args.weights}"
    configs = None
    if args.sim is not None:  # everything the RTL needs is checked before any data is read
        from ssdfa.sim.network_cosim import int_list
        from ssdfa.sim.network_weights import hardware_configs, hardware_state

        configs = hardware_configs(saved, int_list(args.pes) if args.pes else None, source=source)
        state = hardware_state(saved, configs, source=source)
    elif args.pes is not None:
        raise SsdfaError("--pes applies to the RTL only; add --sim verilator or --sim icarus")

    dataset = dataset_as_trained(saved, args.dataset, args.data_dir, args.split_seed)
    if args.limit is not None:
        dataset = limit_samples(dataset, **{args.split: args.limit})
    spec = saved.spec
    if dataset.num_features != spec.inputs or dataset.num_classes != spec.outputs:
        raise SsdfaError(f"{source} holds a {'-'.join(map(str, spec.layer_sizes))} network, but {dataset.name} has "
                         f"{dataset.num_features} features and {dataset.num_classes} classes")
    x = getattr(dataset, f"x_{args.split}")
    labels = np.asarray(getattr(dataset, f"y_{args.split}"))
    if len(labels) == 0:
        raise SsdfaError(f"the {args.split} split of {dataset.name} is empty")

    network = saved.network()
    features = network.quantize_inputs(x) if saved.fixed else x
    predictions = np.asarray(network.predict(features), dtype=np.int64)
    report = {
        "weights": str(args.weights),
        "weights_sha256": saved.sha256,
        "mode": saved.mode,
        "network": spec.describe(),
        "dataset": dataset.name,
        "split": args.split,
        "samples": int(len(labels)),
        "accuracy": float(np.mean(predictions == labels)),
        "predictions_sha256": predictions_sha256(predictions),
    }
    status = 0
    if configs is not None:
        from ssdfa.sim.network_weights import simulate_inference

        rtl = simulate_inference(configs, state, features, labels, simulator=args.sim)
        differs = np.flatnonzero(rtl.predictions != predictions)
        report["rtl"] = {
            "simulator": args.sim,
            "pes": [c.pes for c in configs],
            "accuracy": float(np.mean(rtl.predictions == labels)),
            "predictions_sha256": predictions_sha256(rtl.predictions),
            "identical": not differs.size,
            "differing": int(differs.size),
            "first_difference": None if not differs.size else {
                "sample": int(differs[0]), "model": int(predictions[differs[0]]),
                "rtl": int(rtl.predictions[differs[0]])},
            "cycles": rtl.cycles,
            "seconds": round(rtl.seconds, 3),
        }
        status = EXIT_MISMATCH if differs.size else 0
    print(json.dumps(report, sort_keys=True) if args.json else _format(report))
    return status


def _format(report: dict) -> str:
    sizes = "-".join(str(n) for n in report["network"]["layer_sizes"])
    lines = [
        f"{report['weights']}: {report['mode']} {report['network']['algorithm']} {sizes} "
        f"(SHA-256 {report['weights_sha256'][:16]}...)",
        f"model: {report['dataset']} {report['split']} split, {report['samples']} samples: accuracy "
        f"{100 * report['accuracy']:.2f}%, predictions SHA-256 {report['predictions_sha256']}",
    ]
    rtl = report.get("rtl")
    if rtl is not None:
        lines.append(
            f"RTL ({rtl['simulator']}, PEs {'+'.join(map(str, rtl['pes']))}): accuracy {100 * rtl['accuracy']:.2f}%, "
            f"predictions SHA-256 {rtl['predictions_sha256']} ({rtl['cycles']:,} clocks in {rtl['seconds']:.1f} s)"
        )
        if rtl["identical"]:
            lines.append(f"PASS: all {report['samples']} RTL predictions identical to the model's")
        else:
            first = rtl["first_difference"]
            lines.append(f"FAIL: {rtl['differing']} of {report['samples']} RTL predictions differ; the first is sample "
                         f"{first['sample']}: RTL {first['rtl']}, model {first['model']}")
    return "\n".join(lines)
