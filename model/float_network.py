"""The floating-point reference: BP, DFA, SDFA and SSDFA with minibatch SGD.

The same network as the fixed-point model (``NetworkSpec``: weights (neurons, fan_in + 1) with
the bias last, identity output layer) in float32 or float64. The default loss is the squared
error ``0.5 * ||a_L - onehot||^2``, whose output error ``e = a_L - onehot`` is the fixed-point
contract's (docs/arithmetic.md §6.0); softmax cross-entropy (``e = softmax(a_L) - onehot``) is
offered for comparison only.

One step on a minibatch of ``B`` samples, learning rate ``lr`` and momentum ``mu``:

    g_l = (1/B) sum_batch delta_l x_l^T          (x_l with a trailing 1 for the bias)
    v_l = mu v_l + g_l;   W_l <- W_l - lr v_l

so that batch 1 without momentum is exactly the hardware's update with ``lr = 2**-shift``.
The fixed model's batched mode sums over the batch instead (docs/arithmetic.md §7): it matches
this one with ``lr = B * 2**-shift``.
"""

from __future__ import annotations

import enum

import numpy as np

from .network import Algorithm, NetworkSpec
from .neuron_ops import Activation

__all__ = ["Loss", "FloatNetwork", "activate", "derivative"]


class Loss(enum.Enum):
    """The output error a float network trains on."""

    SQUARED = "mse"  #: e = a_L - onehot (the fixed-point contract's)
    CROSS_ENTROPY = "ce"  #: e = softmax(a_L) - onehot

    @classmethod
    def parse(cls, name: Loss | str) -> Loss:
        if isinstance(name, cls):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(m.value for m in cls)}") from None


def activate(y: np.ndarray, activation: Activation) -> np.ndarray:
    """a = f(y) in floating point."""
    if activation is Activation.IDENTITY:
        return y
    if activation is Activation.RELU:
        return np.maximum(y, 0)
    if activation is Activation.HARDTANH:
        return np.clip(y, -1, 1)
    if activation is Activation.TANH:
        return np.tanh(y)
    raise ValueError(f"unknown activation {activation!r}")


def derivative(y: np.ndarray, a: np.ndarray, activation: Activation) -> np.ndarray:
    """f'(y): 0/1 for relu and hardtanh (as the fixed model stores it), 1 - a^2 for tanh."""
    if activation is Activation.IDENTITY:
        return np.ones_like(y)
    if activation is Activation.RELU:
        return (y > 0).astype(y.dtype)
    if activation is Activation.HARDTANH:
        return ((y > -1) & (y < 1)).astype(y.dtype)
    if activation is Activation.TANH:
        return 1 - a * a
    raise ValueError(f"unknown activation {activation!r}")


class FloatNetwork:
    """A float32/float64 network trained by BP, DFA, SDFA or SSDFA.

    Parameters
    ----------
    spec : NetworkSpec
        Layers, algorithm, activation, feedback options and seed.
    dtype : numpy float dtype
        float32 (default) or float64.
    lr : float
        Learning rate (applied to the batch mean).
    momentum : float
        Momentum ``mu`` in [0, 1).
    loss : Loss or str
        ``"mse"`` (default) or ``"ce"``.
    weights, feedback : lists of arrays, optional
        Start from these (reals) instead of the spec's initial weights and feedback matrices.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        *,
        dtype=np.float32,
        lr: float = 2.0**-4,
        momentum: float = 0.0,
        loss: Loss | str = Loss.SQUARED,
        weights=None,
        feedback=None,
    ) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"a float network is float32 or float64, not {self.dtype}")
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive number, not {lr!r}")
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"momentum must lie in [0, 1), not {momentum!r}")
        self.spec = spec
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.loss = Loss.parse(loss)
        source = spec.initial_weights() if weights is None else weights
        self.weights = [np.array(w, dtype=self.dtype) for w in source]
        for layer, w in enumerate(self.weights):
            expected = (spec.layer_sizes[layer + 1], spec.layer_sizes[layer] + 1)
            if w.shape != expected:
                raise ValueError(f"weights of layer {layer} must have shape {expected}, not {w.shape}")
        if feedback is None:
            feedback = [f.matrix for f in spec.feedback()]
        self.feedback = [np.array(getattr(b, "matrix", b), dtype=self.dtype) for b in feedback]
        self.velocity = [np.zeros_like(w) for w in self.weights] if self.momentum else None

    # -- forward -------------------------------------------------------------------------------

    def forward(self, x) -> tuple[list, list]:
        """Pre-activations y and activations a of every layer for inputs x (batch, features)."""
        a = np.asarray(x, dtype=self.dtype)
        pre, post = [], []
        for layer, w in enumerate(self.weights):
            fan_in = w.shape[1] - 1
            y = a @ w[:, :fan_in].T
            y += w[:, fan_in]
            a = activate(y, self.spec.layer_activation(layer))
            pre.append(y)
            post.append(a)
        return pre, post

    def outputs(self, x) -> np.ndarray:
        return self.forward(x)[1][-1]

    def predict(self, x) -> np.ndarray:
        """Class indices (the first of equal maxima)."""
        return np.argmax(self.outputs(x), axis=1)

    def output_error(self, outputs: np.ndarray, targets) -> np.ndarray:
        """e for the configured loss."""
        targets = np.asarray(targets)
        if self.loss is Loss.CROSS_ENTROPY:
            shifted = outputs - outputs.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            e /= e.sum(axis=1, keepdims=True)
        else:
            e = outputs.copy()
        e[np.arange(e.shape[0]), targets] -= 1
        return e

    # -- learning ------------------------------------------------------------------------------

    def deltas(self, x, targets) -> tuple[list, list, np.ndarray]:
        """Layer inputs, deltas (one per layer, the last is e) and e for a batch."""
        x = np.asarray(x, dtype=self.dtype)
        pre, post = self.forward(x)
        e = self.output_error(post[-1], targets)
        inputs = [x] + post[:-1]
        deltas = [None] * len(self.weights)
        deltas[-1] = e
        for layer in range(len(self.weights) - 2, -1, -1):
            fprime = derivative(pre[layer], post[layer], self.spec.activation)
            if self.spec.algorithm is Algorithm.BP:
                nxt = self.weights[layer + 1]
                received = deltas[layer + 1] @ nxt[:, : nxt.shape[1] - 1]
            else:
                received = e @ self.feedback[layer].T
            deltas[layer] = received * fprime
        return inputs, deltas, e

    def gradients(self, x, targets) -> list:
        """The update direction of every layer, ``mean_batch delta x^T`` (bias column last)."""
        inputs, deltas, _ = self.deltas(x, targets)
        grads = []
        for w, delta, a in zip(self.weights, deltas, inputs):
            g = np.empty_like(w)
            fan_in = w.shape[1] - 1
            np.matmul(delta.T, a, out=g[:, :fan_in])
            g[:, fan_in] = delta.sum(axis=0)
            g /= delta.shape[0]
            grads.append(g)
        return grads

    def train_batch(self, x, targets) -> None:
        """One SGD step on a minibatch (the whole of ``x``)."""
        inputs, deltas, _ = self.deltas(x, targets)
        batch = inputs[0].shape[0]
        step = self.dtype.type(self.lr / batch)
        for layer, (w, delta, a) in enumerate(zip(self.weights, deltas, inputs)):
            fan_in = w.shape[1] - 1
            if self.velocity is None:
                scaled = delta * step
                if batch == 1:
                    w[:, :fan_in] -= np.multiply.outer(scaled[0], a[0])
                else:
                    w[:, :fan_in] -= scaled.T @ a
                w[:, fan_in] -= scaled.sum(axis=0)
            else:
                v = self.velocity[layer]
                v *= self.momentum
                v[:, :fan_in] += (delta.T @ a) * (1.0 / batch)
                v[:, fan_in] += delta.sum(axis=0) * (1.0 / batch)
                w -= self.dtype.type(self.lr) * v
