"""The training loop shared by the float and fixed-point models: epochs, order, evaluation.

``train`` runs a ``NetworkSpec`` on a ``Dataset`` either in floating point (``FloatNetwork``)
or bit-exact fixed point (``FixedNetwork``, when an ``ArithmeticConfig`` is given), for a fixed
number of epochs, and reports the accuracy of the final weights on the training, validation
and test splits. No epoch is selected on any split: the last weights are the result.

The sample order of every epoch is a permutation drawn from a NumPy generator seeded with the
spec's seed and the epoch, so the same spec, configuration and dataset give the same result
(bit for bit in fixed point). Features enter the fixed-point model through
``arithmetic.quantize`` into the activation format, once, before training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .fixed_network import FixedNetwork
from .float_network import FloatNetwork, Loss
from .network import NetworkSpec
from .neuron_ops import ArithmeticConfig

__all__ = ["TrainingOptions", "EpochRecord", "TrainingResult", "train", "accuracy", "epoch_order"]

#: Keeps the sample order's random stream apart from other users of the seed.
_ORDER_DOMAIN = 0x0DE5


@dataclass(frozen=True)
class TrainingOptions:
    """How long and how to train.

    Parameters
    ----------
    epochs : int
        Passes over the training split (>= 1).
    batch : int
        Samples per step: 1 is the hardware's case; more is minibatch SGD (float) or the
        batched mode of docs/arithmetic.md §7 (fixed).
    lr, momentum, loss, float_dtype
        Float training only: learning rate, momentum, ``Loss``, float32 or float64. Fixed point
        learns with ``ArithmeticConfig.shift`` and the squared error.
    evaluate_every_epoch : bool
        Record training and validation accuracy after every epoch (costs a forward pass over
        both splits per epoch).
    """

    epochs: int = 20
    batch: int = 1
    lr: float = 2.0**-4
    momentum: float = 0.0
    loss: Loss = Loss.SQUARED
    float_dtype: type = np.float32
    evaluate_every_epoch: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a positive number, not {self.lr!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must lie in [0, 1), not {self.momentum!r}")
        object.__setattr__(self, "loss", Loss.parse(self.loss))


@dataclass(frozen=True)
class EpochRecord:
    """Accuracies after one epoch (None when not evaluated) and its training time."""

    epoch: int
    train_accuracy: float | None
    val_accuracy: float | None
    seconds: float


@dataclass
class TrainingResult:
    """The outcome of ``train``: final accuracies, per-epoch history and the trained network."""

    spec: NetworkSpec
    config: ArithmeticConfig | None
    options: TrainingOptions
    network: FloatNetwork | FixedNetwork
    train_accuracy: float
    val_accuracy: float | None
    test_accuracy: float
    history: list = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0

    @property
    def fixed(self) -> bool:
        return self.config is not None


def epoch_order(seed: int, epoch: int, samples: int) -> np.ndarray:
    """The sample order of one epoch: a permutation seeded by (seed, epoch)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _ORDER_DOMAIN, int(epoch)]))
    return rng.permutation(samples)


def accuracy(network: FloatNetwork | FixedNetwork, x, labels) -> float | None:
    """Share of correct classes; ``x`` real features (float) or raw values (fixed). None if empty."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return None
    return float(np.mean(network.predict(x) == labels))


def train(
    spec: NetworkSpec,
    dataset,
    *,
    config: ArithmeticConfig | None = None,
    options: TrainingOptions | None = None,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainingResult:
    """Train ``spec`` on ``dataset`` (a ``datasets.Dataset``): fixed point when ``config`` is given.

    Parameters
    ----------
    spec : NetworkSpec
        Its input and output sizes must match the dataset's features and classes.
    dataset : Dataset
        Splits ``x_train``/``y_train``, ``x_val``/``y_val``, ``x_test``/``y_test``.
    config : ArithmeticConfig, optional
        Train bit-exact in this arithmetic; float when None.
    options : TrainingOptions, optional
        Epochs, batch and the float optimiser's settings.
    progress : bool
        Show a tqdm progress bar on stderr.
    on_epoch : callable, optional
        Called with each ``EpochRecord``.
    """
    options = options or TrainingOptions()
    if dataset.x_train.shape[1] != spec.inputs:
        raise ValueError(
            f"the network has {spec.inputs} inputs but {dataset.name} has {dataset.x_train.shape[1]} features"
        )
    if dataset.num_classes != spec.outputs:
        raise ValueError(f"the network has {spec.outputs} outputs but {dataset.name} has {dataset.num_classes} classes")

    if config is None:
        network: FloatNetwork | FixedNetwork = FloatNetwork(
            spec, dtype=options.float_dtype, lr=options.lr, momentum=options.momentum, loss=options.loss
        )
        x_train, x_val, x_test = dataset.x_train, dataset.x_val, dataset.x_test
    else:
        network = FixedNetwork(spec, config, batch=options.batch)
        # Quantise every split once (§1.2); the training split straight into the raw dtype.
        x_train = network.quantize_inputs(dataset.x_train).astype(network.dtype)
        x_val = network.quantize_inputs(dataset.x_val)
        x_test = network.quantize_inputs(dataset.x_test)
    y_train = np.asarray(dataset.y_train)
    samples = len(y_train)
    if samples == 0:
        raise ValueError(f"{dataset.name} has no training samples")

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=options.epochs * samples, unit="sample", leave=False, dynamic_ncols=True)
    history = []
    started = time.perf_counter()
    try:
        for epoch in range(options.epochs):
            epoch_start = time.perf_counter()
            order = epoch_order(spec.seed, epoch, samples)
            if bar is not None:
                bar.set_description(f"epoch {epoch + 1}/{options.epochs}")
            for start in range(0, samples, options.batch):
                chosen = order[start : start + options.batch]
                network.train_batch(x_train[chosen], y_train[chosen])
                if bar is not None:
                    bar.update(len(chosen))
            seconds = time.perf_counter() - epoch_start
            if options.evaluate_every_epoch:
                record = EpochRecord(
                    epoch + 1, accuracy(network, x_train, y_train), accuracy(network, x_val, dataset.y_val), seconds
                )
                if bar is not None:
                    bar.set_postfix(train=f"{record.train_accuracy:.4f}", val=_fmt(record.val_accuracy))
            else:
                record = EpochRecord(epoch + 1, None, None, seconds)
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    return TrainingResult(
        spec=spec,
        config=config,
        options=options,
        network=network,
        train_accuracy=accuracy(network, x_train, y_train),
        val_accuracy=accuracy(network, x_val, dataset.y_val),
        test_accuracy=accuracy(network, x_test, dataset.y_test),
        history=history,
        seconds=elapsed,
        samples=options.epochs * samples,
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
