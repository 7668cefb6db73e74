"""``run_cell``: one cell of a study, trained by the reference model, as a plain dictionary.

This is the only place where the study engine meets the model. It runs inside a Dask worker
process: it reads the dataset (cached per process, since every cell of a study reads the same
one), builds the network the cell describes and trains it through the model's training API.
"""

from __future__ import annotations

import hashlib
import math
import time
import traceback
from functools import lru_cache

import numpy as np

from ssdfa.model.datasets import Dataset, limit_samples, load_dataset, shift_features

__all__ = ["run_cell", "execute_cell", "data_fingerprint"]


def run_cell(cell: dict) -> dict:
    """Train the network of one cell and measure it.

    Parameters
    ----------
    cell : dict
        A canonical cell configuration (``Cell.as_task()``: see ``ssdfa.study.spec`` for the
        fields) plus ``data_dir``.

    Returns
    -------
    dict
        JSON values only: ``test_accuracy``, ``train_accuracy`` and ``val_accuracy`` of the
        final weights (fractions in [0, 1]; validation null without a validation split),
        ``epoch_train_accuracy`` and ``epoch_val_accuracy`` (one per epoch), ``angles``
        (degrees between each hidden layer's feedback matrix and the product of the weights
        above it, paper eq. 14, null where a matrix is all zero; null for BP),
        ``epoch_alignment_angles`` and ``epoch_update_angles`` (per epoch, per hidden layer:
        eq. 14, and the update's angle to BP's gradient), ``last`` and ``best`` (the
        accuracies of the last epoch's weights and of the best validation epoch's, with its
        number), ``feedback_gain`` and ``shift`` (as trained: the rule's when the cell had
        none), ``num_classes``, ``num_features``, ``train_samples``, ``test_samples`` and
        ``data_fingerprint`` (SHA-256 of the arrays trained and tested on).

        A run that diverged (docs/model.md section 6.2) has no accuracies: ``divergence``
        (criterion, epoch, layer, message) and the history up to it instead; the study
        database stores it with status ``diverged``.
    """
    source = _dataset(cell["dataset"], cell["data_dir"], cell["split_seed"], cell["train_limit"], cell["test_limit"])
    dataset = shift_features(source, cell["input_shift"])
    result = _train(cell, dataset)
    return {
        **result,
        "num_classes": int(dataset.num_classes),
        "num_features": int(dataset.num_features),
        "train_samples": int(len(dataset.y_train)),
        "test_samples": int(len(dataset.y_test)),
        "data_fingerprint": data_fingerprint(source),  # of the data as read, whatever the input shift
    }


def execute_cell(runner, cell: dict) -> tuple[dict | None, str | None, float]:
    """Run ``runner(cell)`` in a worker: ``(result, None, seconds)`` or ``(None, error, seconds)``.

    An exception raised by the model becomes the cell's recorded error (one line naming its
    type) instead of failing the future, so that it is stored like any other outcome.
    """
    started = time.perf_counter()
    try:
        result = runner(cell)
    except Exception as exc:  # any model error is the cell's outcome, recorded as failed
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" (at {frame.name}, line {frame.lineno})" if frame else ""
        return None, f"{type(exc).__name__}: {exc}{where}".replace("\n", " "), time.perf_counter() - started
    return result, None, time.perf_counter() - started


def data_fingerprint(dataset: Dataset) -> str:
    """SHA-256 of the training and test arrays, to tell two data folders apart in a report."""
    digest = hashlib.sha256()
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str | None, split_seed: int, train_limit: int | None, test_limit: int | None) -> Dataset:
    dataset = load_dataset(name, data_dir, seed=split_seed)
    return limit_samples(dataset, train_limit, test=test_limit)


def _with_rule(cell: dict, dataset: Dataset) -> dict:
    """The cell with the rule's gain and shift where it has none (a features file's cells)."""
    from ssdfa.model.arithmetic import FixedFormat
    from ssdfa.model.defaults import default_feedback_gain, default_shift

    cell = dict(cell)
    if cell["shift"] is None:
        cell["shift"] = default_shift(dataset.num_features, cell["batch"])
    if cell["algorithm"] != "bp" and cell["feedback_gain"] is None:
        fmt = FixedFormat.parse(cell["formats"]["feedback"]) if cell["precision"] == "fixed" else None
        cell["feedback_gain"] = default_feedback_gain(dataset.num_features, min(cell["hidden"]), fmt)
    return cell


def _network_spec(cell: dict, dataset: Dataset):
    from ssdfa.model.network import NetworkSpec

    algorithm = cell["algorithm"]
    connectivity = cell["connectivity"]
    return NetworkSpec(
        layer_sizes=(dataset.num_features, *cell["hidden"], dataset.num_classes),
        algorithm=algorithm,
        activation=cell["activation"],
        connections=cell["connections"] if algorithm == "sdfa" else None,
        rank=cell["rank"],
        balanced=connectivity == "balanced",
        lfsr_connectivity=connectivity == "lfsr",
        seed=cell["seed"],
        feedback_gain=1.0 if cell["feedback_gain"] is None else cell["feedback_gain"],
    )


def _arithmetic(cell: dict):
    from ssdfa.model.arithmetic import FixedFormat, Overflow, Rounding
    from ssdfa.model.neuron_ops import ArithmeticConfig

    return ArithmeticConfig(
        **{quantity: FixedFormat.parse(text) for quantity, text in cell["formats"].items()},
        rounding=Rounding[cell["rounding"]],
        update_rounding=Rounding[cell["update_rounding"]],
        overflow=Overflow[cell["overflow"]],
        shift=cell["shift"],
        seed=cell["seed"],
    )


def _train(cell: dict, dataset: Dataset) -> dict:
    """Train through the model's training API; returns the accuracy and angle fields."""
    from ssdfa.model.angles import alignment_angles
    from ssdfa.model.training import TrainingOptions, train

    cell = _with_rule(cell, dataset)
    # The float model averages a batch's gradient where the fixed one sums it (docs/arithmetic.md
    # §7): batch x 2**-shift makes both take the same steps.
    options = TrainingOptions(
        epochs=cell["epochs"], batch=cell["batch"], lr=cell["batch"] * 2.0 ** -cell["shift"], float_dtype=np.float64,
        shift_steps=tuple(cell["shift_steps"]), keep=cell["keep"], angles=True,
    )
    config = _arithmetic(cell) if cell["precision"] == "fixed" else None
    result = train(_network_spec(cell, dataset), dataset, config=config, options=options)
    history = {
        "epoch_train_accuracy": [record.train_accuracy for record in result.history],
        "epoch_val_accuracy": [record.val_accuracy for record in result.history],
        "epoch_alignment_angles": [_angles(record.alignment_angles) for record in result.history],
        "epoch_update_angles": [_angles(record.update_angles) for record in result.history],
        "feedback_gain": cell["feedback_gain"],
        "shift": cell["shift"],
    }
    if result.diverged:
        return {**history, "divergence": result.divergence.describe()}
    # An angle is NaN when a matrix is all zero (e.g. feedback that quantised to nothing).
    angles = [None if math.isnan(a) else a for a in alignment_angles(result.network)]
    return {
        "test_accuracy": result.test_accuracy,
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        **history,
        "angles": angles or None,
        "last": _accuracies(result.last),
        "best": _accuracies(result.best),
    }


def _angles(values) -> list | None:
    return None if values is None else list(values)


def _accuracies(accuracies) -> dict | None:
    if accuracies is None:
        return None
    return {"epoch": accuracies.epoch, "train": accuracies.train, "val": accuracies.val, "test": accuracies.test}
