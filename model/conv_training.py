"""Training loop of the convolutional networks: epochs of minibatches, evaluation, divergence.

``train_conv(spec, dataset, ...)`` trains a ``FloatConvNetwork`` (``config`` None) or a
``FixedConvNetwork`` on a ``datasets.Dataset`` whose flat samples are ``spec.input_shape``
images, in the sample order of ``training.epoch_order`` (the fully connected loop's), and
returns the accuracies. A float run whose outputs stop being finite raises
``ConvTrainingDiverged`` naming the epoch: it never reports an accuracy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ssdfa.errors import SsdfaError

from .conv_network import ConvNetSpec, FixedConvNetwork, FloatConvNetwork
from .neuron_ops import ArithmeticConfig
from .training import epoch_order

__all__ = ["ConvTrainingDiverged", "ConvTrainingResult", "train_conv"]


class ConvTrainingDiverged(SsdfaError):
    """A float run whose weights or outputs became infinite or NaN."""


@dataclass
class ConvTrainingResult:
    """Accuracies of the final weights (None for an empty split) and per-epoch records."""

    network: FloatConvNetwork | FixedConvNetwork
    train_accuracy: float | None
    val_accuracy: float | None
    test_accuracy: float | None
    seconds: float
    cpu_seconds: float
    history: list = field(default_factory=list)  #: (epoch, val accuracy, seconds) per epoch


def _accuracy(network, x, labels) -> float | None:
    labels = np.asarray(labels)
    return None if labels.size == 0 else float(np.mean(network.predict(x) == labels))


def train_conv(
    spec: ConvNetSpec,
    dataset,
    *,
    config: ArithmeticConfig | None = None,
    epochs: int = 1,
    batch: int = 32,
    lr: float = 2.0**-4,
    float_dtype=np.float32,
    evaluate_train: bool = True,
    on_epoch=None,
) -> ConvTrainingResult:
    """Train ``spec`` on ``dataset``: bit-exact fixed point when ``config`` is given, else float.

    ``lr`` is the float learning rate on the batch mean; the fixed model's is
    ``2**-config.shift`` on the batch sum. ``on_epoch(epoch, val_accuracy, seconds)`` is called
    after every epoch. ``evaluate_train=False`` leaves the training accuracy out (None), which
    costs a forward pass over the training split.
    """
    if dataset.x_train.shape[1] != spec.inputs:
        raise SsdfaError(
            f"the network takes {'x'.join(map(str, spec.input_shape))} images ({spec.inputs} values) "
            f"but {dataset.name} has {dataset.x_train.shape[1]} features"
        )
    if dataset.num_classes != spec.outputs:
        raise SsdfaError(f"the network has {spec.outputs} outputs but {dataset.name} has {dataset.num_classes} classes")
    for name, value in (("epochs", epochs), ("batch", batch)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise SsdfaError(f"{name} must be a positive integer, not {value!r}")
    if config is None:
        network = FloatConvNetwork(spec, dtype=float_dtype, lr=lr)
        x_train, x_val, x_test = dataset.x_train, dataset.x_val, dataset.x_test
    else:
        network = FixedConvNetwork(spec, config, batch=batch)
        x_train, x_val, x_test = (network.quantize_inputs(x) for x in (dataset.x_train, dataset.x_val, dataset.x_test))
    y_train = np.asarray(dataset.y_train)
    history = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        epoch_started = time.perf_counter()
        order = epoch_order(spec.seed, epoch, len(y_train))
        # A diverging float run overflows; it is reported below, not warned about on the way.
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, len(order), batch):
                chosen = order[start : start + batch]
                network.train_batch(x_train[chosen], y_train[chosen])
        if config is None and not all(np.all(np.isfinite(w)) for w in network.weights):
            raise ConvTrainingDiverged(f"training diverged in epoch {epoch + 1}: the weights are no longer finite")
        seconds = time.perf_counter() - epoch_started
        val = _accuracy(network, x_val, dataset.y_val)
        history.append((epoch + 1, val, seconds))
        if on_epoch is not None:
            on_epoch(epoch + 1, val, seconds)
    return ConvTrainingResult(
        network=network,
        train_accuracy=_accuracy(network, x_train, y_train) if evaluate_train else None,
        val_accuracy=_accuracy(network, x_val, dataset.y_val),
        test_accuracy=_accuracy(network, x_test, dataset.y_test),
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        history=history,
    )
