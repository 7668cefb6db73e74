"""The networks of the paper's Table 2, as layer shapes for the cost model (docs/costs.md §2).

Table 2 of Crafton et al. (2019) is an image; these shapes come from the authors' public training
scripts (github.com/bcrafton/ssdfa: ``mnist_fc.py``, ``cifar10_fc.py``, ``cifar100_fc.py``,
``imagenet_alexnet.py``, ``imagenet_vgg.py``; the same fully connected shapes appear in
github.com/bcrafton/dfa). Only what the counts need is kept: for every layer with weights, the
number of input activations, output units, weights and the fan-in of one unit. Pooling has no
weights and no MACs; it only shrinks the map that the next layer receives.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from ssdfa.errors import SsdfaError

__all__ = [
    "LayerKind",
    "Layer",
    "Network",
    "fully_connected",
    "network",
    "NETWORK_NAMES",
]


class LayerKind(enum.Enum):
    """What a layer with weights is: its counts follow from the same four numbers either way."""

    FC = "fc"  #: fully connected
    CONV = "conv"  #: 2-D convolution (one unit per output position and filter)


@dataclass(frozen=True)
class Layer:
    """One layer with weights, reduced to the numbers that the cost model counts.

    Parameters
    ----------
    name : str
        Name as in the authors' scripts (``fc1``, ``conv3``, ...).
    kind : LayerKind
        Fully connected or convolution.
    inputs : int
        Activation words entering the layer per example (for a convolution, the whole input map).
    neurons : int
        Output units per example (for a convolution, positions x filters).
    fan_in : int
        MACs that compute one output unit (for a convolution, kernel height x width x channels).
    weights : int
        Stored weights (biases are not counted; see docs/costs.md §3).
    in_shape, out_shape : tuple of int
        ``(features,)`` for a fully connected layer, ``(height, width, channels)`` for a convolution.
    """

    name: str
    kind: LayerKind
    inputs: int
    neurons: int
    fan_in: int
    weights: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def connections(self) -> int:
        """Synapse uses per example, ``neurons * fan_in``: the forward MACs (``|W|`` for FC)."""
        return self.neurons * self.fan_in

    @classmethod
    def fc(cls, name: str, inputs: int, neurons: int) -> Layer:
        """A fully connected layer of ``inputs`` -> ``neurons`` (``inputs * neurons`` weights)."""
        _check_positive(f"layer {name} inputs", inputs)
        _check_positive(f"layer {name} neurons", neurons)
        return cls(name, LayerKind.FC, inputs, neurons, inputs, inputs * neurons, (inputs,), (neurons,))

    @classmethod
    def conv(
        cls,
        name: str,
        in_shape: tuple[int, int, int],
        filters: int,
        kernel: int,
        stride: int = 1,
        padding: str = "same",
    ) -> Layer:
        """A square ``kernel`` convolution of an ``(height, width, channels)`` map, TensorFlow padding rules.

        ``padding="same"`` gives ``ceil(size / stride)`` outputs per side, ``"valid"`` gives
        ``floor((size - kernel) / stride) + 1``. MACs on zero padding are counted (as a dense
        convolution engine performs them).
        """
        height, width, channels = in_shape
        rows, cols = (_pooled_size(n, kernel, stride, padding, f"layer {name}") for n in (height, width))
        fan_in = kernel * kernel * channels
        return cls(
            name,
            LayerKind.CONV,
            height * width * channels,
            rows * cols * filters,
            fan_in,
            fan_in * filters,
            (height, width, channels),
            (rows, cols, filters),
        )

    def describe(self) -> str:
        """One line: ``fc1 fc 9216 -> 4096`` or ``conv1 conv 227x227x3 -> 55x55x96 (11x11)``."""
        if self.kind is LayerKind.FC:
            return f"{self.name} fc {self.inputs} -> {self.neurons}"
        kernel = math.isqrt(self.fan_in // self.in_shape[2])
        shape_in, shape_out = ("x".join(map(str, s)) for s in (self.in_shape, self.out_shape))
        return f"{self.name} conv {shape_in} -> {shape_out} ({kernel}x{kernel})"


@dataclass(frozen=True)
class Network:
    """A feed-forward network: its layers with weights, in order, and the number of output errors.

    Attributes
    ----------
    name : str
        The name the ``ssdfa costs --net`` option takes.
    dataset : str
        The benchmark it classifies.
    errors : int
        Output errors per example (``|E|`` of the paper): the number of classes.
    layers : tuple of Layer
        Layers with weights; the last one is the output layer.
    source : str
        Where the shapes come from.
    """

    name: str
    dataset: str
    errors: int
    layers: tuple[Layer, ...]
    source: str

    def __post_init__(self) -> None:
        if not self.layers:
            raise SsdfaError(f"network {self.name!r} has no layers")
        if self.layers[-1].neurons != self.errors:
            raise SsdfaError(
                f"network {self.name!r}: the output layer has {self.layers[-1].neurons} units "
                f"but the network has {self.errors} errors"
            )

    @property
    def has_conv(self) -> bool:
        return any(layer.kind is LayerKind.CONV for layer in self.layers)

    def fully_connected_part(self) -> Network:
        """The fully connected layers alone: the part trained by DFA/SSDFA after transfer learning."""
        fc_layers = tuple(layer for layer in self.layers if layer.kind is LayerKind.FC)
        return Network(self.name, self.dataset, self.errors, fc_layers, self.source)

    def describe(self) -> str:
        """``9216-4096-4096-1000``, or ``5 conv on 227x227x3, then fc 9216-4096-4096-1000``."""
        fc_layers = [layer for layer in self.layers if layer.kind is LayerKind.FC]
        fc_text = "-".join(str(n) for n in (fc_layers[0].inputs, *(layer.neurons for layer in fc_layers)))
        if not self.has_conv:
            return fc_text
        convs = len(self.layers) - len(fc_layers)
        return f"{convs} conv on {'x'.join(map(str, self.layers[0].in_shape))}, then fc {fc_text}"


def _check_positive(what: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SsdfaError(f"{what} must be a positive integer, not {value!r}")


def _pooled_size(size: int, kernel: int, stride: int, padding: str, what: str) -> int:
    """Output size of a window sliding over ``size`` (TensorFlow's rule for conv and pooling)."""
    if padding == "same":
        return -(-size // stride)
    if padding == "valid":
        if size < kernel:
            raise SsdfaError(f"{what}: a {kernel}-wide window does not fit in {size}")
        return (size - kernel) // stride + 1
    raise SsdfaError(f"{what}: padding must be 'same' or 'valid', not {padding!r}")


class _Stack:
    """Builds a network from the input shape, tracking the map through convolutions and pooling."""

    def __init__(self, in_shape: tuple[int, ...]):
        self.shape = in_shape
        self.layers: list[Layer] = []

    def conv(self, filters: int, kernel: int, stride: int = 1, padding: str = "same") -> None:
        name = f"conv{self._count(LayerKind.CONV) + 1}"
        layer = Layer.conv(name, self.shape, filters, kernel, stride, padding)
        self.layers.append(layer)
        self.shape = layer.out_shape

    def pool(self, window: int, stride: int, padding: str) -> None:
        height, width, channels = self.shape
        what = f"pooling after {self.layers[-1].name}"
        self.shape = (
            _pooled_size(height, window, stride, padding, what),
            _pooled_size(width, window, stride, padding, what),
            channels,
        )

    def fc(self, neurons: int) -> None:
        layer = Layer.fc(f"fc{self._count(LayerKind.FC) + 1}", math.prod(self.shape), neurons)
        self.layers.append(layer)
        self.shape = (neurons,)

    def _count(self, kind: LayerKind) -> int:
        return sum(layer.kind is kind for layer in self.layers)


def fully_connected(
    sizes, *, name: str = "fc", dataset: str = "", source: str = "given layer sizes"
) -> Network:
    """A fully connected network from its layer sizes, input first: ``[784, 400, 10]``.

    The last size is the number of output errors. Raises SsdfaError on fewer than two sizes or a
    size that is not a positive integer.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise SsdfaError(f"layer sizes {sizes!r}: need the input size and at least one layer")
    for size in sizes:
        _check_positive("layer size", size)
    stack = _Stack((sizes[0],))
    for neurons in sizes[1:]:
        stack.fc(neurons)
    return Network(name, dataset, sizes[-1], tuple(stack.layers), source)


_REPO = "github.com/bcrafton/ssdfa"


def _alexnet() -> Network:
    # imagenet_alexnet.py: single-tower AlexNet on 227x227 crops; 3x3/2 max pooling, VALID.
    stack = _Stack((227, 227, 3))
    stack.conv(96, 11, stride=4, padding="valid")
    stack.pool(3, 2, "valid")
    stack.conv(256, 5)
    stack.pool(3, 2, "valid")
    stack.conv(384, 3)
    stack.conv(384, 3)
    stack.conv(256, 3)
    stack.pool(3, 2, "valid")
    for neurons in (4096, 4096, 1000):
        stack.fc(neurons)
    return Network("alexnet", "ImageNet", 1000, tuple(stack.layers), f"{_REPO} imagenet_alexnet.py")


def _vgg16() -> Network:
    # imagenet_vgg.py: VGG16 (configuration D) on 224x224 crops; 2x2/2 max pooling.
    stack = _Stack((224, 224, 3))
    for filters, repeats in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(repeats):
            stack.conv(filters, 3)
        stack.pool(2, 2, "same")
    for neurons in (4096, 4096, 1000):
        stack.fc(neurons)
    return Network("vgg16", "ImageNet", 1000, tuple(stack.layers), f"{_REPO} imagenet_vgg.py")


def _fc(name: str, dataset: str, sizes: list[int], script: str) -> Network:
    return fully_connected(sizes, name=name, dataset=dataset, source=f"{_REPO} {script}")


_BUILDERS = {
    "mnist-fc": lambda: _fc("mnist-fc", "MNIST", [784, 400, 10], "mnist_fc.py"),
    "cifar10-fc": lambda: _fc("cifar10-fc", "CIFAR10", [3072, 1000, 1000, 1000, 10], "cifar10_fc.py"),
    "cifar100-fc": lambda: _fc("cifar100-fc", "CIFAR100", [3072, 1000, 1000, 1000, 100], "cifar100_fc.py"),
    "alexnet": _alexnet,
    "vgg16": _vgg16,
}

#: The names ``network`` accepts, in the order the paper's Table 2 lists the benchmarks.
NETWORK_NAMES = tuple(_BUILDERS)


def network(name: str) -> Network:
    """The named network of the paper: one of ``NETWORK_NAMES``. Raises SsdfaError on another name."""
    if not isinstance(name, str) or name not in _BUILDERS:
        raise SsdfaError(f"unknown network {name!r}; expected one of {', '.join(NETWORK_NAMES)}")
    return _BUILDERS[name]()
