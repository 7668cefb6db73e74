"""``ssdfa features``: train a convolutional network with BP in float, freeze it, write its features.

The paper's Table 5 route: the convolutions trained by BP are kept, and the fully connected
head is trained again by DFA or SSDFA (in fixed point, the on-chip learning case) from the
frozen features, with ``ssdfa train --dataset features:PATH.npz``. The file holds, for every
split of the dataset, the last convolution layer's pooled output flattened in (height, width,
channel) order (float32) and the labels (int64): ``x_train, y_train, x_val, y_val, x_test,
y_test``. Every argument is checked before training; the file is written whole or not at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.model.conv_network import ConvLayerSpec, ConvNetSpec
from ssdfa.model.conv_training import train_conv
from ssdfa.model.datasets import limit_samples, load_dataset
from ssdfa.model.neuron_ops import Activation
from ssdfa.user_files import check_output_file, through_links

from ._argtypes import natural_int, positive_int, seed_int

#: The image shape of the datasets whose samples are images (flat, row-major, channels last).
IMAGE_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1)}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "features",
        help="train a CNN with BP, freeze it and write its features for a DFA/SSDFA head",
        description=(
            "Train a convolutional network with BP in float, then write the last convolution layer's "
            "features of every split to an .npz that `ssdfa train --dataset features:PATH` reads."
        ),
    )
    parser.add_argument("--dataset", default="digits", help="digits, mnist or fashion-mnist (default digits)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="directory holding the dataset's files")
    parser.add_argument("--split-seed", type=natural_int, default=0, metavar="K", help="split seed (default 0)")
    parser.add_argument("--train-limit", type=positive_int, default=None, metavar="N", help="train on N samples")
    parser.add_argument(
        "--conv", default="32c3p2,32c3p2", help="convolution layers, e.g. 32c3p2,64c3p2 (default 32c3p2,32c3p2)"
    )
    parser.add_argument("--hidden", type=positive_int, nargs="*", default=[128], metavar="N",
                        help="hidden sizes of the BP network's fully connected head (default 128)")
    parser.add_argument("--activation", default="tanh", help="relu, hardtanh or tanh (default tanh)")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--lr", type=float, default=2.0**-4, help="learning rate on the batch mean (default 0.0625)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of weights and sample order (default 0)")
    parser.add_argument("--out", required=True, metavar="PATH.npz", help="the features file to write")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _check_output(path: str) -> Path:
    out = Path(path).expanduser()
    if out.suffix != ".npz":
        raise SsdfaError(f"--out {path!r}: the features file must end in .npz")
    if not out.parent.is_dir():
        raise SsdfaError(f"--out {path!r}: no such directory {str(out.parent)!r}")
    check_output_file(through_links(out), "--out")  # before training: a folder it cannot write
    return out


def _features(network, x, stage: int, chunk: int = 256) -> np.ndarray:
    """The pooled output of convolution ``stage``, flattened, for every sample (float32)."""
    parts = [network.forward(x[i : i + chunk])[2][stage].reshape(len(x[i : i + chunk]), -1) for i in range(0, len(x), chunk)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), dtype=np.float32)


def _write_atomically(out: Path, arrays: dict) -> None:
    """Write to a temporary file beside ``out`` and rename it: no half-written file remains."""
    out = through_links(out)
    handle, temporary = tempfile.mkstemp(suffix=".npz", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        # mkstemp makes the file private; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, out)
    except BaseException:
        os.unlink(temporary)
        raise


def run(args) -> int:
    dataset_name = str(args.dataset).strip().lower()
    if dataset_name not in IMAGE_SHAPES:
        raise SsdfaError(f"--dataset {args.dataset!r}: features need images; expected one of {', '.join(IMAGE_SHAPES)}")
    if not (np.isfinite(args.lr) and args.lr > 0):
        raise SsdfaError(f"--lr must be a positive number, not {args.lr!r}")
    out = _check_output(args.out)
    conv = tuple(ConvLayerSpec.parse(text) for text in str(args.conv).split(","))
    spec = ConvNetSpec(
        IMAGE_SHAPES[dataset_name], conv, tuple(args.hidden), outputs=10, algorithm="bp",
        activation=Activation.parse(args.activation), seed=args.seed,
    )
    dataset = load_dataset(dataset_name, args.data_dir, seed=args.split_seed)
    if dataset.num_classes != spec.outputs:
        spec = ConvNetSpec(
            spec.input_shape, conv, spec.hidden_sizes, dataset.num_classes, "bp", spec.activation, seed=args.seed
        )
    if args.train_limit is not None:
        dataset = limit_samples(dataset, args.train_limit)
    result = train_conv(spec, dataset, epochs=args.epochs, batch=args.batch, lr=args.lr, evaluate_train=False)
    stage = len(conv) - 1
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"x_{split}"] = _features(result.network, getattr(dataset, f"x_{split}"), stage)
        arrays[f"y_{split}"] = np.asarray(getattr(dataset, f"y_{split}"), dtype=np.int64)
    _write_atomically(out, arrays)
    summary = {
        "features": str(out),
        "network": spec.describe(),
        "feature_width": int(arrays["x_train"].shape[1]),
        "samples": {split: int(len(arrays[f"y_{split}"])) for split in ("train", "val", "test")},
        "bp_val_accuracy": result.val_accuracy,
        "bp_test_accuracy": result.test_accuracy,
        "seconds": round(result.seconds, 1),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"BP network {','.join(layer.describe() for layer in conv)} -> {'-'.join(map(str, spec.hidden_sizes))} "
            f"-> {spec.outputs}: validation {result.val_accuracy:.4f}, test {result.test_accuracy:.4f}"
        )
        print(f"wrote {summary['feature_width']} features per sample of {summary['samples']} samples to {out}")
    return 0
