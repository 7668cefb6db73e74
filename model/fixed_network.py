"""The bit-exact fixed-point network: the contract's layer operations, in the contract's order.

``FixedNetwork`` holds raw weights, the feedback tables and one LFSR bank per layer, and trains
by sequencing ``neuron_ops`` exactly as docs/arithmetic.md §9 lists: forward through every layer
(§4), output error (§6.0), every layer's delta (§6.1-§6.3), every layer's weight update (§7).
It rounds nothing itself: every narrowing happens inside a ``neuron_ops`` function, through
``arithmetic.cast``. Random bits come from the LFSRs in the order of §5.3: per layer, the hidden
layers' delta draws (one per sample) and then ``fan_in + 1`` weight-step draws per neuron in
address order, bias last; the output layer only the latter.

Batch 1 is what the hardware does (``train_step``); ``train_batch`` with more samples is the
model's batched mode (§7). Raw values live in float64 when ``ArithmeticConfig.exact_dtype``
allows it (exact BLAS products, §8.1) and in int64 otherwise; both give identical results.

A traced step calls the ``neuron_ops`` functions one by one, as listed above. An untraced step
(training) runs the same operations through ``layer_kernels.LayerKernel``: the same casts on
preallocated buffers, weights held transposed; tests check that both give the same bits.

Layer ``l`` (0 = first hidden layer, ``num_layers - 1`` = output layer) seeds its LFSRs with
``LfsrBank.for_layer(layer_seed(config.seed, l), neurons)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .arithmetic import MAX_WORD, FLOAT_EXACT_BITS, LfsrBank, Rounding, layer_seed, quantize
from .feedback import FeedbackMatrix
from .layer_kernels import LayerKernel
from .network import Algorithm, NetworkSpec
from .neuron_ops import (
    ArithmeticConfig,
    ForwardResult,
    LayerShape,
    backprop_delta,
    dense_feedback,
    feedback_delta,
    forward,
    output_error,
    weight_update,
)

__all__ = ["FixedNetwork", "StepTrace"]


@dataclass(frozen=True, eq=False)
class StepTrace:
    """Everything one training step computed, as raw int64 arrays (uint16 draws, uint64 states).

    Per-layer tuples are indexed by layer (0 = first hidden layer, last = output layer). Arrays
    that are per sample have a leading batch axis (1 for ``train_step``).

    Attributes
    ----------
    inputs : tuple of (batch, fan_in)
        x of each layer, activation format (the network input, then hidden activations).
    pre_activations, activations : tuple of (batch, neurons)
        y and a = f(y), activation format.
    derivatives : tuple of (batch, neurons)
        The stored f' (``ArithmeticConfig.fprime_frac`` fraction bits).
    errors : (batch, outputs)
        e, error format (§6.0).
    deltas : tuple of (batch, neurons)
        Delta format for hidden layers; the output layer's is e (error format, §6.2).
    delta_draws : tuple
        (batch, neurons) uint16 draws of each hidden layer's delta cast; None for the output
        layer and for deterministic update rounding.
    step_draws : tuple
        (neurons, fan_in + 1) uint16 draws of each layer's weight-step cast; None for
        deterministic update rounding.
    lfsr_states : tuple of (neurons,) uint64
        Every neuron's LFSR state before the step.
    weights_before, weights_after : tuple of (neurons, fan_in + 1)
        Raw weights, bias last.
    """

    inputs: tuple
    pre_activations: tuple
    activations: tuple
    derivatives: tuple
    errors: np.ndarray
    deltas: tuple
    delta_draws: tuple
    step_draws: tuple
    lfsr_states: tuple
    weights_before: tuple
    weights_after: tuple


def _as_int(array) -> np.ndarray:
    return np.asarray(array).astype(np.int64)


class FixedNetwork:
    """A network of ``NetworkSpec`` in the fixed-point arithmetic of ``ArithmeticConfig``.

    Parameters
    ----------
    spec : NetworkSpec
        Layers, algorithm, activation, feedback options; its seed gives the initial weights and
        feedback matrices (quantised into the weight and feedback formats).
    config : ArithmeticConfig
        Formats, modes, shift and the LFSR seed (``config.seed``).
    batch : int
        The largest batch ``train_batch`` will see: the exact intermediates are sized for it.
    dtype : numpy dtype, optional
        float64 or int64 for the raw values; by default float64 whenever every intermediate fits
        53 bits, else int64. float64 is refused where it would not be exact.
    weights : list of int arrays, optional
        Raw initial weights (neurons, fan_in + 1) per layer instead of the spec's.
    feedback : list of FeedbackMatrix, optional
        Feedback matrices per hidden layer instead of the spec's.

    Raises
    ------
    ValueError
        A layer whose exact intermediates do not fit, a bad batch or dtype, weights of the
        wrong shape or outside the weight format, or feedback constants that the feedback
        format cannot hold.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        config: ArithmeticConfig,
        *,
        batch: int = 1,
        dtype=None,
        weights=None,
        feedback=None,
    ) -> None:
        if not isinstance(spec, NetworkSpec):
            raise TypeError(f"spec must be a NetworkSpec, not {spec!r}")
        if not isinstance(config, ArithmeticConfig):
            raise TypeError(f"config must be an ArithmeticConfig, not {config!r}")
        if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"batch must be a positive integer, not {batch!r}")
        self.spec = spec
        self.config = config
        self.max_batch = int(batch)
        self._shapes = self._layer_shapes()
        self.dtype = self._choose_dtype(dtype)

        if feedback is None:
            feedback = spec.feedback()
        feedback = list(feedback)
        if len(feedback) != (len(self._shapes) - 1 if spec.algorithm.uses_feedback else 0):
            raise ValueError(
                f"expected one feedback matrix per hidden layer for {spec.algorithm.value}, not {len(feedback)}"
            )
        for layer, matrix in enumerate(feedback):
            expected = (self._shapes[layer].neurons, spec.outputs)
            if not isinstance(matrix, FeedbackMatrix) or matrix.matrix.shape != expected:
                raise ValueError(f"feedback of hidden layer {layer} must be a FeedbackMatrix of shape {expected}")
        self._feedback = feedback
        self._feedback_raw = [m.raw_values(config.feedback) for m in feedback]
        # feedback_delta takes the dense (neurons, outputs) matrix of raw constants.
        self._feedback_dense = [
            dense_feedback(m.index, raw, spec.outputs, dtype=self.dtype) for m, raw in zip(feedback, self._feedback_raw)
        ]

        if weights is None:
            raw_weights = [quantize(w, config.weight) for w in spec.initial_weights()]
        else:
            raw_weights = [np.asarray(w) for w in weights]
        # The weights are stored transposed, (fan_in + 1, neurons), the layout of the training
        # kernels, which update them in place; ``_weights`` gives the (neurons, fan_in + 1)
        # views that the contract's functions take.
        self._weights_t = []
        for layer, w in enumerate(raw_weights):
            shape = self._shapes[layer]
            if w.shape != (shape.neurons, shape.fan_in + 1):
                expected = (shape.neurons, shape.fan_in + 1)
                raise ValueError(f"raw weights of layer {layer} must have shape {expected}, not {w.shape}")
            if not np.array_equal(w, np.round(w)) or not config.weight.contains(w):
                raise ValueError(f"raw weights of layer {layer} must be integers within {config.weight}")
            self._weights_t.append(np.array(w.T, dtype=self.dtype, order="C"))
        if len(self._weights_t) != len(self._shapes):
            raise ValueError(f"expected raw weights for {len(self._shapes)} layers, not {len(self._weights_t)}")

        self._banks = [
            LfsrBank.for_layer(layer_seed(config.seed, layer), shape.neurons)
            for layer, shape in enumerate(self._shapes)
        ]
        self._stochastic = config.update_rounding is Rounding.STOCH
        self._kernels = self._build_kernels()

    # -- construction helpers -----------------------------------------------------------------

    def _layer_shapes(self) -> list:
        spec, cfg = self.spec, self.config
        s = spec.feedback_connections or 1
        shapes = []
        for layer in range(spec.num_layers):
            fan_in, neurons = spec.layer_sizes[layer], spec.layer_sizes[layer + 1]
            hidden = layer < spec.num_layers - 1
            shape = LayerShape(fan_in, neurons, s if hidden else 1)
            cfg.check_layer(shape, spec.layer_activation(layer), self.max_batch)
            shapes.append(shape)
        return shapes

    @property
    def _weights(self) -> list:
        """The raw weights as (neurons, fan_in + 1) views of the transposed storage."""
        return [w.T for w in self._weights_t]

    def __getstate__(self) -> dict:
        # The kernels' buffers are views into each other, which copying and pickling would
        # separate: they are rebuilt instead.
        state = self.__dict__.copy()
        del state["_kernels"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._kernels = self._build_kernels()

    def _build_kernels(self) -> list:
        """One ``LayerKernel`` per layer, each hidden layer writing into the next one's inputs."""
        spec, cfg = self.spec, self.config
        last = len(self._shapes) - 1
        kernels = []
        for layer, w in enumerate(self._weights_t):
            feedback = self._feedback_dense[layer] if layer < len(self._feedback_dense) else None
            delta_fmt = cfg.error if layer == last else cfg.delta
            kernels.append(LayerKernel(w, cfg, spec.layer_activation(layer), delta_fmt, self.max_batch, feedback))
        for kernel, following in zip(kernels, kernels[1:]):
            kernel.next_inputs = following.inputs[:, : kernel.neurons]
        return kernels

    def _widest(self) -> int:
        """Bits of the widest exact intermediate of any layer, BP's transport included."""
        spec, cfg = self.spec, self.config
        widest = max(
            cfg.check_layer(shape, spec.layer_activation(layer), self.max_batch)
            for layer, shape in enumerate(self._shapes)
        )
        if spec.algorithm is Algorithm.BP:
            # check_layer does not cover BP's W^T delta and g * f' (§6.3); check them here.
            for layer in range(spec.num_layers - 1):
                bits = cfg.backprop_product_bits(self._shapes[layer + 1].neurons, spec.activation)
                if bits > MAX_WORD:
                    raise ValueError(
                        f"BP's back-propagated error of hidden layer {layer} needs {bits} bits, more than {MAX_WORD}"
                    )
                widest = max(widest, bits)
        return widest

    def _choose_dtype(self, dtype):
        widest = self._widest()
        exact_float = widest <= FLOAT_EXACT_BITS
        if dtype is None:
            return np.dtype(np.float64 if exact_float else np.int64)
        dtype = np.dtype(dtype)
        if dtype == np.dtype(np.int64):
            return dtype
        if dtype == np.dtype(np.float64):
            if not exact_float:
                raise ValueError(
                    f"float64 is not exact for this network: an intermediate needs {widest} bits, "
                    f"more than {FLOAT_EXACT_BITS}; use int64"
                )
            return dtype
        raise ValueError(f"raw values are held in float64 or int64, not {dtype}")

    # -- accessors ----------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return len(self._shapes)

    @property
    def layer_shapes(self) -> tuple:
        """``LayerShape`` of every layer (fan-in, neurons, feedback connections)."""
        return tuple(self._shapes)

    def raw_weights(self) -> list:
        """Copies of the raw weights, int64 (neurons, fan_in + 1) per layer, bias last."""
        return [_as_int(w) for w in self._weights]

    def real_weights(self) -> list:
        """The weights as reals (float64)."""
        return [self.config.weight.to_real(w) for w in self._weights]

    def set_raw_weights(self, weights) -> None:
        """Replace the raw weights (checked as in the constructor)."""
        replacement = FixedNetwork(
            self.spec, self.config, batch=self.max_batch, dtype=self.dtype, weights=weights, feedback=self._feedback
        )
        for mine, new in zip(self._weights_t, replacement._weights_t):
            np.copyto(mine, new)  # in place: the kernels and views keep naming this memory

    def set_shift(self, shift: int) -> None:
        """Change the learning rate ``2**-shift`` between steps (a shift schedule, docs/model.md
        section 6.1); weights and LFSR states carry on. Raises ValueError for a shift the
        layers' exact intermediates or the raw dtype cannot take."""
        previous = self.config
        self.config = dataclasses.replace(previous, shift=shift)
        try:
            if self._choose_dtype(None) != self.dtype and self.dtype != np.dtype(np.int64):
                raise ValueError(f"shift {shift} needs wider raw values than {self.dtype}")
        except ValueError:
            self.config = previous
            raise
        self._kernels = self._build_kernels()

    @property
    def feedback(self) -> list:
        """The ``FeedbackMatrix`` of every hidden layer (empty for BP)."""
        return list(self._feedback)

    def feedback_tables(self) -> list:
        """Per hidden layer: (index int64 (neurons, s), raw constants int64 (neurons, s))."""
        return [(m.index.copy(), raw.copy()) for m, raw in zip(self._feedback, self._feedback_raw)]

    def lfsr_states(self) -> list:
        """Copies of every layer's LFSR states, uint64 (neurons,)."""
        return [bank.states.copy() for bank in self._banks]

    def set_lfsr_states(self, states) -> None:
        """Replace every layer's LFSR states (uint (neurons,) per layer, non-zero 32-bit values),
        e.g. those of a saved network, so that training goes on with the draws it would have had."""
        states = list(states)
        if len(states) != self.num_layers:
            raise ValueError(f"expected the LFSR states of {self.num_layers} layers, not {len(states)}")
        banks = []
        for layer, (bank, values) in enumerate(zip(self._banks, states)):
            values = np.asarray(values)
            if values.shape != (bank.neurons,):
                raise ValueError(f"LFSR states of layer {layer} must have shape ({bank.neurons},), not {values.shape}")
            banks.append(LfsrBank(values))  # refuses a zero or a value wider than 32 bits
        self._banks = banks

    def layer_seeds(self) -> list:
        """The layer seed (§5.2) of every layer."""
        return [layer_seed(self.config.seed, layer) for layer in range(self.num_layers)]

    # -- inference ----------------------------------------------------------------------------

    def quantize_inputs(self, x) -> np.ndarray:
        """Real features to raw activation-format values (``arithmetic.quantize``), int64."""
        return quantize(x, self.config.activation)

    def _as_raw_inputs(self, x_raw) -> np.ndarray:
        x_raw = np.asarray(x_raw)
        if x_raw.ndim == 1:
            x_raw = x_raw[None, :]
        if x_raw.ndim != 2 or x_raw.shape[1] != self.spec.inputs:
            raise ValueError(f"raw inputs must have shape (batch, {self.spec.inputs}), not {x_raw.shape}")
        if x_raw.dtype != self.dtype:
            x_raw = x_raw.astype(self.dtype)
        return x_raw

    def forward(self, x_raw) -> list:
        """``ForwardResult`` (y, a, f') of every layer for raw inputs (batch, features)."""
        a = self._as_raw_inputs(x_raw)
        results = []
        for layer, w in enumerate(self._weights):
            result = forward(w, a, self.config, self.spec.layer_activation(layer))
            results.append(result)
            a = result.activation
        return results

    def outputs(self, x_raw) -> np.ndarray:
        """Raw output activations (int64, activation format)."""
        return _as_int(self.forward(x_raw)[-1].activation)

    def predict(self, x_raw, chunk: int = 4096) -> np.ndarray:
        """Class indices: the first largest raw output (inference draws nothing)."""
        given = np.asarray(x_raw)
        if np.issubdtype(given.dtype, np.floating) and not np.array_equal(given, np.rint(given)):
            # Real features (0.53, ...) would be read as raw words and predict nonsense.
            raise ValueError("raw inputs must be whole numbers (raw values of the activation format); "
                             "convert real features with quantize_inputs first")
        x_raw = self._as_raw_inputs(given)
        return np.concatenate(
            [np.argmax(self.forward(x_raw[i : i + chunk])[-1].activation, axis=1) for i in range(0, len(x_raw), chunk)]
            or [np.zeros(0, dtype=np.int64)]
        )

    # -- training -----------------------------------------------------------------------------

    def train_step(self, x_raw, target, *, trace: bool = False) -> StepTrace | None:
        """One sample, as the hardware trains: raw inputs (features,) and a class index.

        Returns a ``StepTrace`` when ``trace`` is true.
        """
        x_raw = np.asarray(x_raw)
        if x_raw.ndim != 1:
            raise ValueError(f"train_step takes one sample of shape ({self.spec.inputs},), not {x_raw.shape}")
        return self.train_batch(x_raw[None, :], np.asarray([target]), trace=trace)

    def train_batch(self, x_raw, targets, *, trace: bool = False) -> StepTrace | None:
        """One training step on raw inputs (batch, features) and class indices (batch,).

        Batch 1 is ``train_step``; larger batches are the batched mode of §7 (one weight-step
        cast and draw per weight per batch, one delta draw per sample).
        """
        spec, cfg = self.spec, self.config
        x = self._as_raw_inputs(x_raw)
        targets = np.asarray(targets)
        batch = x.shape[0]
        if batch > self.max_batch:
            raise ValueError(f"batch of {batch} samples is larger than the {self.max_batch} this network was sized for")
        if targets.shape != (batch,) or not self._are_classes(targets):
            raise ValueError(f"targets must be {batch} class indices in 0..{spec.outputs - 1}")
        if not cfg.activation.contains(x):
            raise ValueError(f"raw inputs must lie within the activation format {cfg.activation}")
        if trace or not batch:
            # An empty batch still advances the LFSRs over every weight (§5.3): the plain path.
            result = self._traced_step(x, targets)
            return result if trace else None
        self._kernel_step(x, targets)
        return None

    def _are_classes(self, targets) -> bool:
        if targets.size == 1:  # a scalar test: two reductions cost more at batch 1
            return bool(0 <= targets[0] < self.spec.outputs)
        return not targets.size or bool(targets.min() >= 0 and targets.max() < self.spec.outputs)

    def _kernel_step(self, x, targets) -> None:
        """The training step of §9 through the layer kernels (bit for bit ``_traced_step``'s)."""
        kernels, batch, last = self._kernels, x.shape[0], self.num_layers - 1
        kernels[0].set_inputs(x)

        # 1. Forward (§4), each layer on the inputs that are not zero when few are not.
        columns, outputs, derivatives = [], None, []
        for kernel in kernels:
            columns.append(kernel.changing_columns(batch))
            outputs, _, derivative = kernel.forward(batch, columns[-1])
            derivatives.append(derivative)

        # 2. Output error (§6.0), in place of the output layer's y.
        errors = kernels[last].output_error(outputs, targets, batch)

        # Draws (§5.3): per neuron, a hidden layer's delta draws (one per sample) come before
        # its fan_in + 1 weight-step draws; only the rows of the updated weights are taken.
        delta_draws = [None] * self.num_layers
        step_draws = [None] * self.num_layers
        if self._stochastic:
            for layer, (bank, kernel) in enumerate(zip(self._banks, kernels)):
                per_sample = batch if layer < last else 0
                delta_draws[layer], step_draws[layer] = bank.step_rows(
                    per_sample + kernel.fan_in + 1, per_sample, columns[layer]
                )

        # 3. Deltas (§6.1-§6.3); BP goes from the output back, using the weights before update.
        deltas: list = [None] * self.num_layers
        deltas[last] = errors
        for layer in range(last - 1, -1, -1):
            if self.spec.algorithm is Algorithm.BP:
                deltas[layer] = backprop_delta(
                    deltas[layer + 1], kernels[layer + 1].delta_frac, self._weights[layer + 1], derivatives[layer],
                    self.config, self.spec.activation, delta_draws[layer],
                )
            else:
                deltas[layer] = kernels[layer].feedback_delta(errors, batch, delta_draws[layer])

        # 4. Weight updates (§7), every layer from this step's activations.
        for layer, kernel in enumerate(kernels):
            kernel.update(batch, deltas[layer], step_draws[layer])

    def _traced_step(self, x, targets) -> StepTrace:
        """The training step of §9, one ``neuron_ops`` function per operation, recorded."""
        spec, cfg = self.spec, self.config
        batch = x.shape[0]
        last = self.num_layers - 1
        states_before = [bank.states.copy() for bank in self._banks]
        weights_before = [_as_int(w) for w in self._weights]

        # 1. Forward (§4): keep every layer's input x and f'.
        inputs = [x]
        results: list[ForwardResult] = []
        for layer, w in enumerate(self._weights):
            result = forward(w, inputs[-1], cfg, spec.layer_activation(layer))
            results.append(result)
            inputs.append(result.activation)

        # 2. Output error (§6.0).
        errors = output_error(results[last].activation, targets, cfg)

        # Draws (§5.3): per neuron, a hidden layer's delta draws (one per sample) come before
        # its fan_in + 1 weight-step draws, so one call per layer gives both, in order.
        delta_draws: list = [None] * self.num_layers
        step_draws: list = [None] * self.num_layers
        if self._stochastic:
            for layer, (bank, shape) in enumerate(zip(self._banks, self._shapes)):
                per_sample = batch if layer < last else 0
                draws = bank.draw(per_sample + shape.fan_in + 1)
                if per_sample:
                    delta_draws[layer] = draws[:, :per_sample].T
                step_draws[layer] = draws[:, per_sample:]

        # 3. Deltas (§6.1-§6.3); BP goes from the output back, using the weights before update.
        deltas: list = [None] * self.num_layers
        delta_fracs = [cfg.delta.frac_bits] * self.num_layers
        deltas[last] = errors
        delta_fracs[last] = cfg.error.frac_bits
        for layer in range(last - 1, -1, -1):
            derivative = results[layer].derivative
            if spec.algorithm is Algorithm.BP:
                deltas[layer] = backprop_delta(
                    deltas[layer + 1], delta_fracs[layer + 1], self._weights[layer + 1], derivative, cfg,
                    spec.activation, delta_draws[layer],
                )
            else:
                deltas[layer] = feedback_delta(
                    errors, derivative, self._feedback_dense[layer], cfg, spec.activation, delta_draws[layer]
                )

        # 4. Weight updates (§7), every layer from this step's activations.
        for layer in range(self.num_layers):
            updated = weight_update(
                self._weights[layer], deltas[layer], delta_fracs[layer], inputs[layer], cfg, step_draws[layer]
            )
            np.copyto(self._weights[layer], updated)  # into the (transposed) storage

        return StepTrace(
            inputs=tuple(_as_int(a) for a in inputs[:-1]),
            pre_activations=tuple(_as_int(r.pre_activation) for r in results),
            activations=tuple(_as_int(r.activation) for r in results),
            derivatives=tuple(_as_int(r.derivative) for r in results),
            errors=_as_int(errors),
            deltas=tuple(_as_int(d) for d in deltas),
            delta_draws=tuple(None if d is None else d.copy() for d in delta_draws),
            step_draws=tuple(None if d is None else d.copy() for d in step_draws),
            lfsr_states=tuple(states_before),
            weights_before=tuple(weights_before),
            weights_after=tuple(_as_int(w) for w in self._weights),
        )
