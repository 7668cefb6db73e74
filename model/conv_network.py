"""Convolutional networks, float and bit-exact fixed point, trained by BP, DFA, SDFA or SSDFA.

A ``ConvNetSpec`` is a stack of convolution layers (each optionally max-pooled) on an image,
then fully connected hidden layers and the identity output layer, as in the paper's MNIST CNN
(Table 2). Every layer with weights is a "stage" with a (neurons, fan_in + 1) weight array, bias
last: a convolution's neurons are its filters (shared by all positions), its fan-in is
channels x kernel x kernel in (channel, ky, kx) order (``conv_ops.im2col``).

Feedback (DFA family, docs/arithmetic.md §10.2, docs/model.md "Convolutional networks"): a
convolution layer has one feedback row per filter, shared by all the filter's positions; a fully
connected hidden layer one per neuron, as ``NetworkSpec``. BP goes through the transposed
weights (``conv_ops.col2im`` for a convolution).

The float model (``FloatConvNetwork``) takes minibatch SGD steps on the batch mean of the
squared-error gradient, like ``FloatNetwork``; the fixed model (``FixedConvNetwork``) sequences
``conv_ops`` and ``neuron_ops`` in the order of arithmetic.md §9 and §10, with one LFSR bank per
stage (one LFSR per filter or neuron).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .arithmetic import FLOAT_EXACT_BITS, MAX_WORD, LfsrBank, Rounding, layer_seed, quantize
from .conv_ops import (
    ConvGeometry,
    col2im,
    conv_backprop_delta,
    conv_feedback_delta,
    conv_forward,
    im2col,
    max_pool,
    upsample,
)
from .feedback import build_feedback
from .float_network import activate, derivative
from .network import HIDDEN_ACTIVATIONS, Algorithm, feedback_connections
from .neuron_ops import (
    Activation,
    ArithmeticConfig,
    LayerShape,
    backprop_delta,
    feedback_delta,
    forward,
    output_error,
    weight_update,
)

__all__ = ["ConvLayerSpec", "ConvNetSpec", "FloatConvNetwork", "FixedConvNetwork"]

#: Keeps the weight initialisation's random stream apart from other users of the same seed
#: (and from ``NetworkSpec``'s, so a conv net's FC head does not copy an FC net's weights).
_WEIGHT_DOMAIN = 0xC0471


@dataclass(frozen=True)
class ConvLayerSpec:
    """One convolution layer: ``filters`` square ``kernel`` filters, stride, padding, pooling."""

    filters: int
    kernel: int
    stride: int = 1
    padding: str = "same"
    pool: int = 1

    @classmethod
    def parse(cls, text: str) -> ConvLayerSpec:
        """``32c3`` (32 filters of 3x3), optionally ``s2`` (stride), ``v`` (valid), ``p2`` (2x2 max pool):
        ``64c3p2``, ``16c5s2v``. A ValueError names anything else."""
        import re

        match = re.fullmatch(r"(\d+)c(\d+)(?:s(\d+))?(v)?(?:p(\d+))?", str(text).strip())
        if not match:
            raise ValueError(f"bad convolution layer {text!r}; expected e.g. 32c3, 64c3p2 or 16c5s2v")
        filters, kernel, stride, valid, pool = match.groups()
        return cls(int(filters), int(kernel), int(stride or 1), "valid" if valid else "same", int(pool or 1))

    def describe(self) -> str:
        text = f"{self.filters}c{self.kernel}"
        text += f"s{self.stride}" if self.stride != 1 else ""
        text += "v" if self.padding == "valid" else ""
        return text + (f"p{self.pool}" if self.pool != 1 else "")


@dataclass(frozen=True)
class ConvNetSpec:
    """A convolutional network and how it learns.

    Parameters
    ----------
    input_shape : (height, width, channels)
        The image; samples are given flat in (height, width, channels) order or as NHWC maps.
    conv_layers : tuple of ConvLayerSpec
        At least one.
    hidden_sizes : tuple of int
        Fully connected hidden layers after the flattened last map (may be empty).
    outputs : int
        Classes: the identity output layer's size.
    algorithm : Algorithm
        BP, DFA, SDFA (needs ``connections``) or SSDFA.
    activation : Activation
        Every hidden layer's non-linearity (relu, hardtanh, tanh).
    connections : int, optional
        SDFA's s.
    seed : int
        Initial weights and feedback matrices.
    weight_gain, feedback_gain : float
        Multiply the initialisation bounds: convolution weights ``+-g/sqrt(fan_in)``, fully
        connected ``+-g/neurons`` (``NetworkSpec``'s rule), feedback ``build_feedback``'s.
    """

    input_shape: tuple
    conv_layers: tuple
    hidden_sizes: tuple = ()
    outputs: int = 10
    algorithm: Algorithm = Algorithm.SSDFA
    activation: Activation = Activation.TANH
    connections: int | None = None
    seed: int = 0
    weight_gain: float = 1.0
    feedback_gain: float = 1.0

    def __post_init__(self) -> None:
        shape = tuple(int(v) for v in self.input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input_shape must be (height, width, channels) of positive sizes, not {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        layers = tuple(self.conv_layers)
        if not layers or not all(isinstance(layer, ConvLayerSpec) for layer in layers):
            raise ValueError("a convolutional network needs at least one ConvLayerSpec")
        object.__setattr__(self, "conv_layers", layers)
        object.__setattr__(self, "hidden_sizes", tuple(int(n) for n in self.hidden_sizes))
        if any(n < 1 for n in self.hidden_sizes) or self.outputs < 2:
            raise ValueError(f"layer sizes must be positive and outputs at least 2: {self.hidden_sizes}, {self.outputs}")
        object.__setattr__(self, "algorithm", Algorithm.parse(self.algorithm))
        activation = self.activation if isinstance(self.activation, Activation) else Activation.parse(self.activation)
        if activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"hidden activation {activation.value!r} is not allowed")
        object.__setattr__(self, "activation", activation)
        for name in ("weight_gain", "feedback_gain"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        if self.algorithm is Algorithm.SDFA and self.connections is None:
            raise ValueError("sdfa needs the sparsity s (connections per neuron)")
        self.geometries()  # refuses shapes that do not fit
        if self.algorithm.uses_feedback:
            self.feedback()  # refuses s and filter counts that leave an error unconnected

    # -- shape --------------------------------------------------------------------------------

    def geometries(self) -> list:
        """``ConvGeometry`` of every convolution layer, each on the previous one's pooled map."""
        shape, result = self.input_shape, []
        for layer in self.conv_layers:
            geom = ConvGeometry(*shape, layer.filters, layer.kernel, layer.stride, layer.padding, layer.pool)
            result.append(geom)
            shape = geom.pooled_shape
        return result

    @property
    def inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def fc_sizes(self) -> tuple:
        """(flattened features of the last map, hidden..., outputs)."""
        return (self.geometries()[-1].outputs, *self.hidden_sizes, self.outputs)

    @property
    def num_stages(self) -> int:
        """Layers with weights: convolutions, hidden fully connected layers, the output layer."""
        return len(self.conv_layers) + len(self.hidden_sizes) + 1

    def stage_neurons(self) -> list:
        """Rows of every stage's weight array: filters, then neurons."""
        return [g.filters for g in self.geometries()] + list(self.fc_sizes[1:])

    def stage_fan_ins(self) -> list:
        return [g.fan_in for g in self.geometries()] + list(self.fc_sizes[:-1])

    def stage_activation(self, stage: int) -> Activation:
        return Activation.IDENTITY if stage == self.num_stages - 1 else self.activation

    @property
    def feedback_connections(self) -> int | None:
        """s of the feedback matrices (None for BP), as for fully connected networks."""
        return feedback_connections(self.algorithm, self.outputs, self.connections)

    # -- initial state ------------------------------------------------------------------------

    def initial_weights(self) -> list:
        """float64 (neurons, fan_in + 1) per stage, bias 0: convolutions uniform in
        ``+-g/sqrt(fan_in)``, fully connected layers in ``+-g/neurons``."""
        weights = []
        conv_count = len(self.conv_layers)
        for stage, (fan_in, neurons) in enumerate(zip(self.stage_fan_ins(), self.stage_neurons())):
            rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), _WEIGHT_DOMAIN, stage]))
            bound = self.weight_gain / (math.sqrt(fan_in) if stage < conv_count else neurons)
            w = np.zeros((neurons, fan_in + 1), dtype=np.float64)
            w[:, :fan_in] = rng.uniform(-bound, bound, size=(neurons, fan_in))
            weights.append(w)
        return weights

    def feedback(self) -> list:
        """One ``FeedbackMatrix`` (neurons, outputs) per hidden stage, a convolution's neurons
        being its filters; empty for BP."""
        if not self.algorithm.uses_feedback:
            return []
        # A convolution's layer size is positions x filters: its rows are shared by positions.
        positions = [g.positions for g in self.geometries()] + [1] * len(self.hidden_sizes)
        return [
            build_feedback(
                neurons,
                self.outputs,
                connections=self.feedback_connections,
                seed=layer_seed(self.seed, stage),
                gain=self.feedback_gain / positions[stage],
            )
            for stage, neurons in enumerate(self.stage_neurons()[:-1])
        ]

    def describe(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "conv_layers": [layer.describe() for layer in self.conv_layers],
            "hidden_sizes": list(self.hidden_sizes),
            "outputs": self.outputs,
            "algorithm": self.algorithm.value,
            "activation": self.activation.value,
            "connections": self.feedback_connections,
            "seed": int(self.seed),
            "weight_gain": self.weight_gain,
            "feedback_gain": self.feedback_gain,
        }


def _as_maps(x, spec: ConvNetSpec, dtype) -> np.ndarray:
    """Samples as NHWC maps: flat (batch, inputs) in (height, width, channels) order, or maps."""
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == spec.inputs:
        x = x.reshape(x.shape[0], *spec.input_shape)
    if x.ndim != 4 or x.shape[1:] != spec.input_shape:
        raise ValueError(f"inputs must be (batch, {spec.inputs}) or (batch, {spec.input_shape}) maps, not {x.shape}")
    return x.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Float
# --------------------------------------------------------------------------------------------


class FloatConvNetwork:
    """The float32/float64 reference of a ``ConvNetSpec``: minibatch SGD on the batch mean.

    Parameters
    ----------
    spec : ConvNetSpec
    dtype : float32 (default) or float64
    lr : float
        Learning rate applied to the batch-mean gradient of ``0.5 ||a_L - onehot||^2``.
    weights : list of arrays, optional
        Start from these instead of the spec's initial weights.
    """

    def __init__(self, spec: ConvNetSpec, *, dtype=np.float32, lr: float = 2.0**-6, weights=None) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"a float network is float32 or float64, not {self.dtype}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive number, not {lr!r}")
        self.spec, self.lr = spec, float(lr)
        self.geometries = spec.geometries()
        source = spec.initial_weights() if weights is None else weights
        self.weights = [np.array(w, dtype=self.dtype) for w in source]
        self.feedback = [np.array(m.matrix, dtype=self.dtype) for m in spec.feedback()]

    def forward(self, x) -> tuple[list, list, list]:
        """Per stage: inputs (patches for a convolution), pre-activations y and stored f'
        (zero where pooling dropped the neuron); and the outputs as the last element of a list
        of stage outputs. Returns (inputs, fprimes, outputs)."""
        a = _as_maps(x, self.spec, self.dtype)
        batch = a.shape[0]
        inputs, fprimes, outputs = [], [], []
        convs = len(self.geometries)
        for stage, w in enumerate(self.weights):
            act = self.spec.stage_activation(stage)
            if stage < convs:
                geom = self.geometries[stage]
                x_rows = im2col(a, geom)
            else:
                x_rows = a.reshape(batch, -1)
            y = x_rows @ w[:, :-1].T
            y += w[:, -1]
            out = activate(y, act)
            fprime = derivative(y, out, act)
            if stage < convs:
                shape = (batch, geom.out_height, geom.out_width, geom.filters)
                out, winners = max_pool(out.reshape(shape), geom.pool)
                fprime = fprime.reshape(shape) * winners
            inputs.append(x_rows)
            fprimes.append(fprime)
            outputs.append(out)
            a = out
        return inputs, fprimes, outputs

    def outputs(self, x) -> np.ndarray:
        return self.forward(x)[2][-1]

    def predict(self, x, chunk: int = 256) -> np.ndarray:
        x = np.asarray(x)
        return np.concatenate([np.argmax(self.outputs(x[i : i + chunk]), axis=1) for i in range(0, len(x), chunk)])

    def loss(self, x, targets) -> float:
        """Mean of ``0.5 ||a_L - onehot||^2`` over the samples."""
        e = self.outputs(x).astype(np.float64)
        e[np.arange(len(e)), np.asarray(targets)] -= 1
        return float(0.5 * np.mean(np.sum(e * e, axis=1)))

    def deltas(self, x, targets) -> tuple[list, list]:
        """Layer inputs and deltas of every stage (a convolution's as (batch * positions, filters))."""
        inputs, fprimes, outputs = self.forward(x)
        e = outputs[-1].copy()
        e[np.arange(len(e)), np.asarray(targets)] -= 1
        last, convs = len(self.weights) - 1, len(self.geometries)
        deltas = [None] * len(self.weights)
        deltas[last] = e
        for stage in range(last - 1, -1, -1):
            fprime = fprimes[stage]
            if self.spec.algorithm is Algorithm.BP:
                nxt = self.weights[stage + 1]
                transported = deltas[stage + 1] @ nxt[:, :-1]
                if stage + 1 < convs:
                    transported = col2im(transported, self.geometries[stage + 1])
                if stage < convs:
                    geom = self.geometries[stage]
                    transported = upsample(transported.reshape(-1, *geom.pooled_shape), geom.pool)
                received = transported
            else:
                received = e @ self.feedback[stage].T  # (batch, neurons or filters)
                if stage < convs:
                    received = received[:, None, None, :]  # one row per filter, every position
            delta = received * fprime
            deltas[stage] = delta.reshape(-1, delta.shape[-1])
        return inputs, deltas

    def gradients(self, x, targets) -> list:
        """``mean_batch sum_positions delta x^T`` per stage (bias column last)."""
        inputs, deltas = self.deltas(x, targets)
        batch = len(np.asarray(x))
        grads = []
        for x_rows, delta in zip(inputs, deltas):
            g = np.empty((delta.shape[1], x_rows.shape[1] + 1), dtype=self.dtype)
            g[:, :-1] = delta.T @ x_rows
            g[:, -1] = delta.sum(axis=0)
            grads.append(g / batch)
        return grads

    def train_batch(self, x, targets) -> None:
        """One SGD step on the batch mean."""
        for w, g in zip(self.weights, self.gradients(x, targets)):
            w -= self.dtype.type(self.lr) * g


# --------------------------------------------------------------------------------------------
# Fixed point
# --------------------------------------------------------------------------------------------


class FixedConvNetwork:
    """A ``ConvNetSpec`` in the fixed-point arithmetic of ``ArithmeticConfig`` (§4-§7, §10).

    Parameters
    ----------
    spec : ConvNetSpec
    config : ArithmeticConfig
    batch : int
        The largest batch ``train_batch`` takes: the weight step's exact sums over samples and
        positions are sized for it.
    dtype : float64 or int64, optional
        Raw values; float64 (exact BLAS) by default whenever every intermediate fits 53 bits.

    Raises
    ------
    ValueError
        An intermediate that does not fit (named), a bad batch or dtype.
    """

    def __init__(self, spec: ConvNetSpec, config: ArithmeticConfig, *, batch: int = 1, dtype=None, weights=None):
        if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"batch must be a positive integer, not {batch!r}")
        self.spec, self.config, self.max_batch = spec, config, int(batch)
        self.geometries = spec.geometries()
        widest = self._widest()
        if dtype is None:
            dtype = np.float64 if widest <= FLOAT_EXACT_BITS else np.int64
        self.dtype = np.dtype(dtype)
        if self.dtype == np.dtype(np.float64) and widest > FLOAT_EXACT_BITS:
            raise ValueError(f"float64 is not exact for this network: an intermediate needs {widest} bits; use int64")
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.int64)):
            raise ValueError(f"raw values are held in float64 or int64, not {self.dtype}")
        source = spec.initial_weights() if weights is None else weights
        raw = [quantize(w, config.weight) if np.asarray(w).dtype.kind == "f" else np.asarray(w) for w in source]
        self.weights = [np.array(w, dtype=self.dtype) for w in raw]
        for w, neurons, fan_in in zip(self.weights, spec.stage_neurons(), spec.stage_fan_ins()):
            if w.shape != (neurons, fan_in + 1) or not config.weight.contains(w):
                raise ValueError(f"raw weights must be ({neurons}, {fan_in + 1}) integers within {config.weight}")
        self.feedback = [m.raw_matrix(config.feedback, dtype=self.dtype) for m in spec.feedback()]
        # One LFSR per filter of a convolution (its neurons share it, §10.5), per neuron otherwise.
        self.banks = [
            LfsrBank.for_layer(layer_seed(config.seed, stage), neurons)
            for stage, neurons in enumerate(spec.stage_neurons())
        ]

    def _widest(self) -> int:
        """Check every stage's exact intermediates (§4.1, §6, §7, §10); return the widest."""
        spec, cfg = self.spec, self.config
        s = spec.feedback_connections or 1
        last, convs = spec.num_stages - 1, len(self.geometries)
        widest = 0
        for stage, (fan_in, neurons) in enumerate(zip(spec.stage_fan_ins(), spec.stage_neurons())):
            positions = self.geometries[stage].positions if stage < convs else 1
            shape = LayerShape(fan_in, neurons, s if stage < last else 1)
            widest = max(widest, cfg.check_layer(shape, spec.stage_activation(stage), self.max_batch * positions))
            if spec.algorithm is Algorithm.BP and stage < last:
                # Terms of one transported value: the next layer's neurons, or for a convolution
                # every (filter, ky, kx) whose field covers the position.
                following = self.geometries[stage + 1] if stage + 1 < convs else None
                terms = following.filters * following.kernel**2 if following else spec.stage_neurons()[stage + 1]
                bits = cfg.backprop_product_bits(terms, spec.activation)
                if bits > MAX_WORD:
                    raise ValueError(f"BP's transported error of stage {stage} needs {bits} bits, more than {MAX_WORD}")
                widest = max(widest, bits)
        return widest

    def quantize_inputs(self, x) -> np.ndarray:
        return quantize(x, self.config.activation)

    def forward(self, x_raw) -> list:
        """Per stage: ``ConvForward`` for a convolution, ``ForwardResult`` for a dense layer."""
        a = _as_maps(x_raw, self.spec, self.dtype)
        results, convs = [], len(self.geometries)
        for stage, w in enumerate(self.weights):
            act = self.spec.stage_activation(stage)
            if stage < convs:
                result = conv_forward(w, a, self.geometries[stage], self.config, act)
                a = result.output
            else:
                result = forward(w, a.reshape(a.shape[0], -1), self.config, act)
                a = result.activation
            results.append(result)
        return results

    def outputs(self, x_raw) -> np.ndarray:
        return self.forward(x_raw)[-1].activation.astype(np.int64)

    def predict(self, x_raw, chunk: int = 256) -> np.ndarray:
        x_raw = np.asarray(x_raw)
        return np.concatenate(
            [np.argmax(self.forward(x_raw[i : i + chunk])[-1].activation, axis=1) for i in range(0, len(x_raw), chunk)]
        )

    def train_batch(self, x_raw, targets) -> None:
        """One step (§9 with §10): forward, output error, every stage's delta, every update.

        Draws (§5.3, §10.5): per stage, a hidden stage's delta draws first, one per sample and
        position (sample-major, positions row-major; one per sample for a dense layer), then
        one per weight in address order, bias last.
        """
        spec, cfg = self.spec, self.config
        x = _as_maps(x_raw, spec, self.dtype)
        targets = np.asarray(targets)
        batch = x.shape[0]
        if not 1 <= batch <= self.max_batch:
            raise ValueError(f"a batch of {batch} samples; this network takes 1 to {self.max_batch}")
        if targets.shape != (batch,) or targets.min() < 0 or targets.max() >= spec.outputs:
            raise ValueError(f"targets must be {batch} class indices in 0..{spec.outputs - 1}")
        if not cfg.activation.contains(x):
            raise ValueError(f"raw inputs must lie within the activation format {cfg.activation}")
        last, convs = spec.num_stages - 1, len(self.geometries)

        results = self.forward(x)
        errors = output_error(results[last].activation, targets, cfg)

        delta_draws, step_draws = [None] * (last + 1), [None] * (last + 1)
        if cfg.update_rounding is Rounding.STOCH:
            for stage, w in enumerate(self.weights):
                per_sample = 0 if stage == last else batch * (self.geometries[stage].positions if stage < convs else 1)
                draws = self.banks[stage].draw(per_sample + w.shape[1])
                delta_draws[stage] = draws[:, :per_sample].T if per_sample else None
                step_draws[stage] = draws[:, per_sample:]

        deltas = [None] * (last + 1)
        fracs = [cfg.delta.frac_bits] * last + [cfg.error.frac_bits]
        deltas[last] = errors
        for stage in range(last - 1, -1, -1):
            act, result = spec.activation, results[stage]
            if spec.algorithm is Algorithm.BP:
                if stage >= convs:
                    deltas[stage] = backprop_delta(
                        deltas[stage + 1], fracs[stage + 1], self.weights[stage + 1], result.derivative, cfg, act,
                        delta_draws[stage],
                    )
                    continue
                transported = deltas[stage + 1] @ self.weights[stage + 1][:, :-1]  # exact
                if stage + 1 < convs:
                    transported = col2im(transported, self.geometries[stage + 1])  # exact sums
                geom = self.geometries[stage]
                deltas[stage] = conv_backprop_delta(
                    transported.reshape(batch, *geom.pooled_shape), fracs[stage + 1] + cfg.weight.frac_bits,
                    result.derivative, geom.pool, cfg, act, delta_draws[stage],
                )
            elif stage < convs:
                deltas[stage] = conv_feedback_delta(
                    errors, result.derivative, self.feedback[stage], cfg, act, delta_draws[stage]
                )
            else:
                deltas[stage] = feedback_delta(
                    errors, result.derivative, self.feedback[stage], cfg, act, delta_draws[stage]
                )

        for stage in range(last + 1):
            result = results[stage]
            if stage < convs:
                inputs = result.patches
            elif stage == convs:
                inputs = results[stage - 1].output.reshape(batch, -1) if convs else x.reshape(batch, -1)
            else:
                inputs = results[stage - 1].activation
            self.weights[stage] = weight_update(
                self.weights[stage], deltas[stage], fracs[stage], inputs, cfg, step_draws[stage]
            ).astype(self.dtype, copy=False)
