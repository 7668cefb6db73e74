"""Convolution and max pooling: im2col, and the fixed-point order of operations (§10).

A convolution is a fully connected layer applied at every output position: ``im2col`` lays
the receptive field of each position out as one row, in the order (in_channel, ky, kx), and the
filter bank is a (filters, fan_in + 1) weight array with the bias last, the layout of
``neuron_ops``. The fixed-point functions here therefore call ``neuron_ops`` on those rows:
the accumulate-and-cast of every output value is §4.1's, the delta cast §6.1's or §6.3's,
the weight step §7's batched form (the exact sum over samples and positions, one cast per
weight). The only new arithmetic is exact: zero padding, the sums of ``col2im`` (BP's
transport to the previous map) and max pooling (a selection, no rounding).

Maps are NHWC arrays, (batch, height, width, channels), of float32/float64 reals in the float
model, or raw int64 / integer-valued float64 values in the fixed-point model; every function
keeps its input's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .arithmetic import cast
from .neuron_ops import Activation, ArithmeticConfig, feedback_delta, forward

__all__ = [
    "ConvGeometry",
    "ConvForward",
    "im2col",
    "col2im",
    "max_pool",
    "upsample",
    "conv_forward",
    "conv_feedback_delta",
    "conv_backprop_delta",
]

PADDINGS = ("same", "valid")


def _positive(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution layer's shapes: input map, filter bank, stride, padding, pooling.

    Parameters
    ----------
    height, width, channels : int
        The input map.
    filters, kernel : int
        Output channels and the side of the square kernel.
    stride : int
        Step between receptive fields.
    padding : str
        ``"same"`` (TensorFlow's rule: ``ceil(size / stride)`` outputs, zeros split with the
        smaller half before) or ``"valid"`` (no padding).
    pool : int
        Side and stride of the max pooling after the activation; 1 is none. The convolution's
        output must divide by it.

    Raises
    ------
    ValueError
        A non-positive size, an unknown padding, a kernel larger than a valid map, or an
        output that the pool does not divide.
    """

    height: int
    width: int
    channels: int
    filters: int
    kernel: int
    stride: int = 1
    padding: str = "same"
    pool: int = 1

    def __post_init__(self) -> None:
        for name in ("height", "width", "channels", "filters", "kernel", "stride", "pool"):
            _positive(name, getattr(self, name))
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, not {self.padding!r}")
        if self.padding == "valid" and self.kernel > min(self.height, self.width):
            raise ValueError(f"a {self.kernel}x{self.kernel} kernel does not fit a {self.height}x{self.width} map")
        for side in (self.out_height, self.out_width):
            if side % self.pool:
                raise ValueError(f"{self.pool}x{self.pool} pooling does not divide a convolution output of side {side}")

    def _out(self, size: int) -> int:
        if self.padding == "same":
            return -(-size // self.stride)
        return (size - self.kernel) // self.stride + 1

    def _pads(self, size: int) -> tuple[int, int]:
        if self.padding == "valid":
            return 0, 0
        total = max((self._out(size) - 1) * self.stride + self.kernel - size, 0)
        return total // 2, total - total // 2

    @property
    def out_height(self) -> int:
        return self._out(self.height)

    @property
    def out_width(self) -> int:
        return self._out(self.width)

    @property
    def positions(self) -> int:
        """Output positions per sample (before pooling): the neurons of one filter."""
        return self.out_height * self.out_width

    @property
    def fan_in(self) -> int:
        """Weights of one filter, bias excluded: channels x kernel x kernel."""
        return self.channels * self.kernel * self.kernel

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """(height, width, filters) of the map this layer hands on."""
        return self.out_height // self.pool, self.out_width // self.pool, self.filters

    @property
    def outputs(self) -> int:
        """Values per sample this layer hands on (after pooling)."""
        return int(np.prod(self.pooled_shape))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels

    @property
    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Zero rows (top, bottom) and columns (left, right) added around the input."""
        return self._pads(self.height), self._pads(self.width)


def _padded(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    (top, bottom), (left, right) = geom.pads
    if not (top or bottom or left or right):
        return x
    out = np.zeros((x.shape[0], geom.height + top + bottom, geom.width + left + right, geom.channels), dtype=x.dtype)
    out[:, top : top + geom.height, left : left + geom.width] = x
    return out


def im2col(x, geom: ConvGeometry) -> np.ndarray:
    """Receptive fields as rows: (batch * positions, fan_in), positions row-major per sample.

    Row ``b * positions + oy * out_width + ox`` holds input ``x[b, oy*s + ky - top,
    ox*s + kx - left, c]`` at column ``(c * kernel + ky) * kernel + kx`` (zero in the padding).
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1:] != geom.input_shape:
        raise ValueError(f"input maps must have shape (batch, {', '.join(map(str, geom.input_shape))}), not {x.shape}")
    k, s = geom.kernel, geom.stride
    windows = sliding_window_view(_padded(x, geom), (k, k), axis=(1, 2))  # (B, H', W', C, k, k)
    windows = windows[:, : (geom.out_height - 1) * s + 1 : s, : (geom.out_width - 1) * s + 1 : s]
    return windows.reshape(x.shape[0] * geom.positions, geom.fan_in)  # a copy, in (c, ky, kx) order


def col2im(columns, geom: ConvGeometry) -> np.ndarray:
    """The adjoint of ``im2col``: every column value added to the input position it came from.

    ``columns`` is (batch * positions, fan_in); returns (batch, height, width, channels). Sums
    are exact on integer-valued arrays within their width (the caller checks it).
    """
    columns = np.asarray(columns)
    batch = columns.shape[0] // geom.positions
    k, s, oh, ow = geom.kernel, geom.stride, geom.out_height, geom.out_width
    fields = columns.reshape(batch, oh, ow, geom.channels, k, k)
    (top, bottom), (left, right) = geom.pads
    padded = np.zeros((batch, geom.height + top + bottom, geom.width + left + right, geom.channels), dtype=columns.dtype)
    for ky in range(k):
        for kx in range(k):
            padded[:, ky : ky + (oh - 1) * s + 1 : s, kx : kx + (ow - 1) * s + 1 : s] += fields[..., ky, kx]
    return padded[:, top : top + geom.height, left : left + geom.width]


def max_pool(a, pool: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over non-overlapping ``pool`` x ``pool`` windows of an NHWC map.

    Returns (pooled map, winners): ``winners`` has ``a``'s shape and dtype, 1 at the first
    maximum of every window (row-major within the window) and 0 elsewhere. On raw values the
    maximum is exact; the winner is where BP's and the feedback's error goes (§10.3).
    """
    a = np.asarray(a)
    if pool == 1:
        return a, np.ones_like(a)
    b, h, w, c = a.shape
    ph, pw = h // pool, w // pool
    windows = a.reshape(b, ph, pool, pw, pool, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, pool * pool, c)
    first = windows.argmax(axis=3)[:, :, :, None]
    pooled = np.take_along_axis(windows, first, axis=3)[:, :, :, 0]
    marks = np.zeros_like(windows)
    np.put_along_axis(marks, first, 1, axis=3)
    winners = marks.reshape(b, ph, pw, pool, pool, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
    return pooled, winners


def upsample(g, pool: int) -> np.ndarray:
    """Every value of a pooled map copied to its ``pool`` x ``pool`` window (multiply by the
    winners to route it to the maximum alone)."""
    if pool == 1:
        return np.asarray(g)
    return np.repeat(np.repeat(g, pool, axis=1), pool, axis=2)


# --------------------------------------------------------------------------------------------
# Fixed point (§10)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvForward:
    """What a convolution layer keeps from its forward pass (raw values, the input's dtype).

    Attributes
    ----------
    patches : (batch * positions, fan_in)
        ``im2col`` of the input: the x of every neuron, for the weight update.
    pre_activation, activation : (batch, out_height, out_width, filters)
        y and a = f(y), activation format (before pooling).
    output : (batch, *pooled_shape)
        The pooled map handed on (``activation`` when there is no pooling).
    derivative : (batch, out_height, out_width, filters)
        The stored f', zero at the neurons that pooling did not select (§10.3).
    """

    patches: np.ndarray
    pre_activation: np.ndarray
    activation: np.ndarray
    output: np.ndarray
    derivative: np.ndarray


def conv_forward(weights, x, geom: ConvGeometry, cfg: ArithmeticConfig, activation: Activation) -> ConvForward:
    """Every output value is §4.1-§4.3 on its receptive field: exact sum over (c, ky, kx) plus the
    bias, one cast into the activation format, f and f' (§10.1); then max pooling (§10.3).

    ``weights`` is (filters, fan_in + 1) raw, bias last; ``x`` (batch, height, width, channels)
    raw, activation format.
    """
    patches = im2col(x, geom)
    result = forward(weights, patches, cfg, activation)
    shape = (np.asarray(x).shape[0], geom.out_height, geom.out_width, geom.filters)
    y, a = result.pre_activation.reshape(shape), result.activation.reshape(shape)
    output, winners = max_pool(a, geom.pool)
    derivative = result.derivative.reshape(shape)
    if geom.pool > 1:
        derivative = derivative * winners  # exact: f' or 0
    return ConvForward(patches, y, a, output, derivative)


def conv_feedback_delta(
    errors, derivative, feedback, cfg: ArithmeticConfig, activation: Activation, random_bits=None
) -> np.ndarray:
    """DFA/SDFA/SSDFA delta of a convolution layer (§10.2): §6.1 at every neuron, with filter
    ``c``'s feedback row shared by all its positions.

    ``errors`` (batch, outputs); ``derivative`` (batch, out_height, out_width, filters), the
    stored f' of ``ConvForward``; ``feedback`` (filters, outputs) raw; ``random_bits``
    (batch * positions, filters). Returns the deltas as (batch * positions, filters), the rows
    of ``ConvForward.patches``.
    """
    derivative = np.asarray(derivative)
    batch, height, width, filters = derivative.shape
    # Each position receives its sample's errors through its filter's row: one row per neuron.
    received_errors = np.repeat(np.asarray(errors), height * width, axis=0)
    return feedback_delta(
        received_errors, derivative.reshape(batch * height * width, filters), feedback, cfg, activation, random_bits
    )


def conv_backprop_delta(
    transported, transported_frac: int, derivative, pool: int, cfg: ArithmeticConfig, activation: Activation,
    random_bits=None,
) -> np.ndarray:
    """BP delta of a convolution layer (§10.4): §6.3 with the transport done by the next layer.

    ``transported`` is the exact ``W_next^T delta_next`` at this layer's pooled outputs,
    (batch, *pooled_shape), with ``transported_frac`` fraction bits: a matrix product for a
    fully connected next layer, ``col2im`` of one for a convolution. It is cast into the
    bp_error format once per pooled output, copied to the window's winner (the stored f' is 0
    elsewhere), multiplied by f' and cast into the delta format. Returns
    (batch * positions, filters).
    """
    g = cast(np.asarray(transported), transported_frac, cfg.bp_error, cfg.rounding, cfg.overflow)
    product = upsample(g, pool) * derivative
    frac = cfg.bp_error.frac_bits + cfg.fprime_frac(activation)
    product = product.reshape(-1, product.shape[-1])
    return cast(product, frac, cfg.delta, cfg.update_rounding, cfg.overflow, random_bits)
