"""The training loop shared by the float and fixed-point models: epochs, order, evaluation.

``train`` runs a ``NetworkSpec`` on a ``Dataset`` either in floating point (``FloatNetwork``)
or bit-exact fixed point (``FixedNetwork``, when an ``ArithmeticConfig`` is given), for a fixed
number of epochs, and reports the accuracy on the training, validation and test splits of the
last epoch's weights and of the epoch with the best validation accuracy; ``keep`` says which
of the two the network ends with and the result reports first. The learning rate can halve at
chosen epochs (``shift_steps``: the fixed-point shift grows by one). A run that diverges
(``divergence``) stops and reports no accuracy. With ``angles``, every epoch records the
paper's eq. 14 angle and the angle between the update and BP's gradient, per hidden layer.

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

from . import divergence as diverging
from .fixed_network import FixedNetwork
from .float_network import FloatNetwork, Loss
from .network import NetworkSpec
from .neuron_ops import ArithmeticConfig

__all__ = [
    "TrainingOptions",
    "EpochRecord",
    "Accuracies",
    "TrainingResult",
    "train",
    "accuracy",
    "epoch_order",
    "KEEP_CHOICES",
    "ANGLE_SAMPLES",
]

#: Which weights a run ends with: the last epoch's, or those of the best validation accuracy.
KEEP_CHOICES = ("last", "best")
#: Samples of the validation split (else the training split) that the update angles average over.
ANGLE_SAMPLES = 256

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
        both splits per epoch). Needed by ``keep="best"`` and the collapse criterion.
    shift_steps : tuple of int
        Epochs (1-based, increasing, from 2) at whose start the learning rate halves: the
        fixed-point shift grows by one, the float ``lr`` is halved.
    keep : str
        ``"last"``: the network ends with the last epoch's weights; ``"best"``: with those of
        the epoch of the highest validation accuracy (the earliest on a tie).
    angles : bool
        Record eq. 14 and the update angle against BP per hidden layer after every epoch.
    check_divergence : bool
        Stop a run that diverges (``divergence``'s criteria).
    """

    epochs: int = 20
    batch: int = 1
    lr: float = 2.0**-4
    momentum: float = 0.0
    loss: Loss = Loss.SQUARED
    float_dtype: type = np.float32
    evaluate_every_epoch: bool = True
    shift_steps: tuple = ()
    keep: str = "last"
    angles: bool = False
    check_divergence: bool = True

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
        steps = tuple(self.shift_steps)
        for position, step in enumerate(steps):
            if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or not 2 <= step <= self.epochs:
                raise ValueError(f"shift steps are epochs from 2 to {self.epochs}, not {step!r}")
            if position and step <= steps[position - 1]:
                raise ValueError(f"shift steps must increase, not {list(steps)}")
        object.__setattr__(self, "shift_steps", tuple(int(step) for step in steps))
        if self.keep not in KEEP_CHOICES:
            raise ValueError(f"keep must be one of {', '.join(KEEP_CHOICES)}, not {self.keep!r}")
        if self.keep == "best" and not self.evaluate_every_epoch:
            raise ValueError("keep='best' selects on the per-epoch validation accuracy: it needs evaluate_every_epoch")


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: accuracies after it (None when not evaluated), its training time, the
    learning rate it used, and (when asked) angles per hidden layer in degrees (None where
    undefined) and, in fixed point, the share of each layer's weights pinned at the bounds."""

    epoch: int
    train_accuracy: float | None
    val_accuracy: float | None
    seconds: float
    lr: float | None = None
    alignment_angles: tuple | None = None
    update_angles: tuple | None = None
    pinned: tuple | None = None


@dataclass(frozen=True)
class Accuracies:
    """Accuracy of one set of weights on the three splits (validation None without one)."""

    epoch: int
    train: float
    val: float | None
    test: float


@dataclass
class TrainingResult:
    """The outcome of ``train``: accuracies, per-epoch history and the trained network.

    ``train_accuracy``, ``val_accuracy`` and ``test_accuracy`` are those of the kept weights
    (``options.keep``); ``last`` and ``best`` give both choices. All are None when the run
    diverged: ``divergence`` then says why and ``history`` ends at the epoch it happened.
    """

    spec: NetworkSpec
    config: ArithmeticConfig | None
    options: TrainingOptions
    network: FloatNetwork | FixedNetwork
    train_accuracy: float | None
    val_accuracy: float | None
    test_accuracy: float | None
    history: list = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0
    last: Accuracies | None = None
    best: Accuracies | None = None
    divergence: diverging.Divergence | None = None

    @property
    def fixed(self) -> bool:
        return self.config is not None

    @property
    def diverged(self) -> bool:
        return self.divergence is not None


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

    run = _Run(network, spec, dataset, options, x_train, x_val)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=options.epochs * samples, unit="sample", leave=False, dynamic_ncols=True)
    history: list[EpochRecord] = []
    divergence = None
    started = time.perf_counter()
    # A float run that blows up overflows on the way; the divergence check reports it instead.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(1, options.epochs + 1):
                if epoch in options.shift_steps:
                    run.halve_learning_rate()
                epoch_start = time.perf_counter()
                order = epoch_order(spec.seed, epoch - 1, samples)
                if bar is not None:
                    bar.set_description(f"epoch {epoch}/{options.epochs}")
                for start in range(0, samples, options.batch):
                    chosen = order[start : start + options.batch]
                    network.train_batch(x_train[chosen], y_train[chosen])
                    if bar is not None:
                        bar.update(len(chosen))
                    step = start // options.batch + 1
                    if run.float_checks and step % run.float_checks == 0:
                        divergence = run.non_finite(epoch)
                    if divergence is None and run.checkpoint_every and step % run.checkpoint_every == 0:
                        divergence = run.checkpoint(epoch)
                    if divergence is not None:
                        break
                seconds = time.perf_counter() - epoch_start
                if divergence is None:
                    divergence = run.non_finite(epoch)
                if divergence is not None:
                    history.append(EpochRecord(epoch, None, None, seconds, run.lr))
                    break
                record = run.record(epoch, seconds, y_train)
                history.append(record)
                if bar is not None:
                    bar.set_postfix(_postfix(record))
                if on_epoch is not None:
                    on_epoch(record)
                divergence = run.divergence(history)
                if divergence is not None:
                    break
        finally:
            if bar is not None:
                bar.close()
    elapsed = time.perf_counter() - started
    result = TrainingResult(
        spec=spec,
        config=config,
        options=options,
        network=network,
        train_accuracy=None,
        val_accuracy=None,
        test_accuracy=None,
        history=history,
        seconds=elapsed,
        samples=len(history) * samples,
        divergence=divergence,
    )
    if divergence is None:
        run.select(result, y_train, x_test, dataset.y_test)
    return result


class _Run:
    """What one ``train`` call keeps between epochs: the learning rate, the best weights so
    far, the divergence checks, and the samples the update angles use."""

    def __init__(self, network, spec, dataset, options: TrainingOptions, x_train, x_val) -> None:
        self.network, self.spec, self.dataset, self.options = network, spec, dataset, options
        self.x_train, self.x_val = x_train, x_val
        self.fixed = isinstance(network, FixedNetwork)
        self.float_checks = 0
        if options.check_divergence and not self.fixed:
            self.float_checks = max(1, diverging.NON_FINITE_CHECK_EVERY // options.batch)
        # Collapse checkpoints: CHECKPOINTS_PER_EPOCH times an epoch, accuracy on the first
        # CHECKPOINT_SAMPLES of validation (else training): a run that learns and loses it
        # within one epoch (fixed point's usual runaway) is caught there.
        self.checkpoint_every = 0
        if options.check_divergence:
            steps = -(-len(dataset.y_train) // options.batch)
            self.checkpoint_every = max(1, steps // diverging.CHECKPOINTS_PER_EPOCH)
        has_val = len(dataset.y_val) > 0
        self.check_split = "validation" if has_val else "training"
        self.check_x = (x_val if has_val else x_train)[: diverging.CHECKPOINT_SAMPLES]
        self.check_y = np.asarray(dataset.y_val if has_val else dataset.y_train)[: diverging.CHECKPOINT_SAMPLES]
        self.checks: list = []
        self.best_epoch = 0
        self.best_val = -1.0
        self.best_weights = None
        # Update angles: real features of the first samples of validation (else training).
        source = dataset.x_val if len(dataset.y_val) else dataset.x_train
        labels = dataset.y_val if len(dataset.y_val) else dataset.y_train
        self.angle_x = np.asarray(source[:ANGLE_SAMPLES], dtype=np.float64)
        self.angle_y = np.asarray(labels[:ANGLE_SAMPLES])

    @property
    def lr(self) -> float:
        return 2.0**-self.network.config.shift if self.fixed else float(self.network.lr)

    def halve_learning_rate(self) -> None:
        if self.fixed:
            self.network.set_shift(self.network.config.shift + 1)
        else:
            self.network.lr = self.network.lr / 2

    def weights(self) -> list:
        return self.network.raw_weights() if self.fixed else [w.copy() for w in self.network.weights]

    def restore(self, weights) -> None:
        if self.fixed:
            self.network.set_raw_weights(weights)
        else:
            for mine, saved in zip(self.network.weights, weights):
                np.copyto(mine, saved)

    def non_finite(self, epoch: int):
        if not self.options.check_divergence or self.fixed:
            return None
        return diverging.non_finite_weights(self.network.weights, epoch)

    def checkpoint(self, epoch: int):
        """Accuracy on the checkpoint samples; ``saturated`` outputs (fixed point) or a
        ``collapse`` back to chance when either shows."""
        if self.fixed and len(self.check_y):
            outputs = self.network.outputs(self.check_x)
            found = diverging.saturated_outputs(outputs, self.network.config.activation, epoch)
            if found is not None:
                return found
            # The first largest output, as ``predict`` takes it.
            self.checks.append(float(np.mean(np.argmax(outputs, axis=1) == self.check_y)))
        else:
            self.checks.append(accuracy(self.network, self.check_x, self.check_y))
        return diverging.collapse(self.checks, self.dataset.num_classes, epoch, self.check_split)

    def record(self, epoch: int, seconds: float, y_train) -> EpochRecord:
        options, network = self.options, self.network
        train_acc = val_acc = None
        if options.evaluate_every_epoch:
            train_acc = accuracy(network, self.x_train, y_train)
            val_acc = accuracy(network, self.x_val, self.dataset.y_val)
            if val_acc is not None and val_acc > self.best_val:
                # Kept whatever ``keep`` says: both choices are reported.
                self.best_val, self.best_epoch, self.best_weights = val_acc, epoch, self.weights()
        alignment = update = None
        if options.angles:
            from .angles import alignment_angles, update_angles

            alignment = _finite_or_none(alignment_angles(network))
            update = _finite_or_none(update_angles(network, self.angle_x, self.angle_y))
        pinned = None
        if self.fixed:
            pinned = tuple(diverging.pinned_shares(network.raw_weights(), network.config.weight))
        return EpochRecord(epoch, train_acc, val_acc, seconds, self.lr, alignment, update, pinned)

    def divergence(self, history: list):
        if not self.options.check_divergence:
            return None
        record = history[-1]
        if record.pinned is not None:
            found = diverging.pinned_weights(record.pinned, self.network.config, record.epoch)
            if found is not None:
                return found
        has_val = len(self.dataset.y_val) > 0
        values = [r.val_accuracy if has_val else r.train_accuracy for r in history]
        return diverging.collapse(values, self.dataset.num_classes, record.epoch, "validation" if has_val else "training")

    def select(self, result: TrainingResult, y_train, x_test, y_test) -> None:
        """Fill the last and best accuracies, and leave the network with the kept weights."""
        network = self.network

        def measure(epoch: int) -> Accuracies:
            return Accuracies(
                epoch,
                accuracy(network, self.x_train, y_train),
                accuracy(network, self.x_val, self.dataset.y_val),
                accuracy(network, x_test, y_test),
            )

        last = measure(len(result.history))
        best = None
        if self.best_epoch:
            if self.best_epoch == last.epoch:
                best = last
            elif self.best_weights is not None:
                last_weights = self.weights()
                self.restore(self.best_weights)
                best = measure(self.best_epoch)
                if self.options.keep == "last":
                    self.restore(last_weights)
        result.last, result.best = last, best
        kept = best if self.options.keep == "best" and best is not None else last
        result.train_accuracy, result.val_accuracy, result.test_accuracy = kept.train, kept.val, kept.test


def _finite_or_none(values) -> tuple:
    return tuple(None if not math.isfinite(v) else float(v) for v in values)


def _postfix(record: EpochRecord) -> dict:
    postfix = {}
    if record.train_accuracy is not None:
        postfix["train"] = f"{record.train_accuracy:.4f}"
        postfix["val"] = _fmt(record.val_accuracy)
    if record.alignment_angles:
        postfix["eq14"] = "/".join(_angle(a) for a in record.alignment_angles)
    if record.update_angles:
        postfix["vs_bp"] = "/".join(_angle(a) for a in record.update_angles)
    return postfix


def _angle(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
