"""The training step's layer arithmetic on preallocated buffers (docs/model.md §4).

``neuron_ops`` defines what a layer computes, one function per operation, on fresh arrays in
the hardware's layout (weights (neurons, fan_in + 1)). Training runs those operations on every
sample, where at batch 1 NumPy's cost per call and the allocations outweigh the arithmetic.
``LayerKernel`` computes the same values with the same casts (``arithmetic.CastPlan``, the
steps ``cast`` itself runs), changing only the form, never a bit (tests compare the two on
random layers):

- Weights are held transposed, (fan_in + 1, neurons). The weights of one input are then a
  contiguous row, and so are their LFSR draws (``LfsrBank.step_rows``): a batch-1 update of
  the inputs that are not zero gathers and scatters whole rows.
- A layer's input buffer carries the bias input (raw ``2**f_x``, §4.1) as its last column, so
  one product gives the accumulator with the bias and one product the weight step with its
  bias row (§7). Only the first layer's input at larger batches is used where it is, with the
  bias's terms added apart.
- With float64 raw values, the power-of-two multiplication a cast starts with
  (``CastPlan.prescale``, exact) is applied to one factor of the exact product before it: to
  the delta for the weight step, to the feedback constants (once) for the delta.
- A cast whose inputs provably fit leaves out its overflow step (``CastPlan``'s
  ``value_range``): the weight step, whose bound follows from the formats and the batch.
"""

from __future__ import annotations

import math

import numpy as np

from .arithmetic import FixedFormat, Rounding, _clip, cast_plan
from .neuron_ops import Activation, ArithmeticConfig, activate, activation_derivative

__all__ = ["LayerKernel"]

#: Update only the rows of non-zero inputs when they are at most this share of the weights;
#: beyond it, gathering and scattering them costs more than it saves.
_BLOCK_UPDATE_SHARE = 0.5
#: Look for inputs that are zero in every sample only up to this batch: over more samples
#: (MNIST-like pixels) more than half the inputs are non-zero somewhere, and the search is
#: a pass over the whole batch.
_COLUMN_SEARCH_MAX_BATCH = 8


def _magnitude(fmt: FixedFormat) -> int:
    """The largest absolute raw value of ``fmt``."""
    return max(-fmt.min_raw, fmt.max_raw)


class LayerKernel:
    """One layer's forward pass, delta and weight update, in place on its own buffers.

    Parameters
    ----------
    weights_t : ndarray (fan_in + 1, neurons)
        The layer's raw weights, transposed (bias row last); updated in place.
    cfg : ArithmeticConfig
    activation : Activation
        The layer's f (identity for the output layer).
    delta_fmt : FixedFormat
        The format of the layer's delta: ``cfg.delta``, or ``cfg.error`` for the output layer
        (whose delta is e, §6.2).
    max_batch : int
        The largest batch; the buffers are sized for it.
    feedback : ndarray (neurons, outputs), optional
        A hidden layer's dense raw feedback matrix B (``neuron_ops.dense_feedback``), for
        ``feedback_delta``.

    Attributes
    ----------
    inputs : ndarray (max_batch, fan_in + 1)
        The layer input x of each sample, the bias input last. The network writes the first
        layer's; a hidden layer writes its activations into the next layer's (``next_inputs``).
    """

    def __init__(
        self,
        weights_t,
        cfg: ArithmeticConfig,
        activation: Activation,
        delta_fmt: FixedFormat,
        max_batch: int,
        feedback=None,
    ) -> None:
        dtype = weights_t.dtype
        fan_in, neurons = weights_t.shape[0] - 1, weights_t.shape[1]
        self.weights_t = weights_t
        self.cfg = cfg
        self.activation = activation
        self.fan_in, self.neurons = fan_in, neurons
        self.delta_frac = delta_fmt.frac_bits
        x_frac = cfg.activation.frac_bits
        self.inputs = np.zeros((max_batch, fan_in + 1), dtype=dtype)
        self.inputs[:, fan_in] = 1 << x_frac
        self.next_inputs = None
        self._acc = np.empty((max_batch, neurons), dtype=dtype)
        self._derivative = np.empty((max_batch, neurons), dtype=dtype)
        self._delta = np.empty((max_batch, neurons), dtype=dtype)
        self._scaled_delta = np.empty((max_batch, neurons), dtype=dtype)
        self._step = np.empty((fan_in + 1, neurons), dtype=dtype)
        self._samples = np.arange(max_batch)

        is_float = dtype.kind == "f"
        self._y_plan = cast_plan(cfg.weight.frac_bits + x_frac, cfg.activation, cfg.rounding, cfg.overflow, is_float)
        self._error_plan = cast_plan(x_frac, cfg.error, cfg.rounding, cfg.overflow, is_float)
        delta_product_frac = cfg.feedback.frac_bits + cfg.error.frac_bits + cfg.fprime_frac(activation)
        delta_bound = None
        if feedback is not None:
            # |(e B^T) f'| <= (largest row sum of |B|) |e| f'
            fprime_max = (1 << cfg.fprime_word(activation)) - 1
            # A float sum, rounded up with a margin far above its rounding error: an upper bound.
            row_sum = math.ceil(float(np.abs(feedback).sum(axis=1, dtype=np.float64).max(initial=0)) * (1 + 2**-20))
            delta_bound = row_sum * _magnitude(cfg.error) * fprime_max
        self._delta_plan = cast_plan(
            delta_product_frac, cfg.delta, cfg.update_rounding, cfg.overflow, is_float,
            value_range=None if delta_bound is None else (-delta_bound, delta_bound),
        )
        # B^T for the product e B^T, (outputs, neurons). Float plans fold the delta cast's first
        # multiplication (a power of two: exact) into these constants.
        self._feedback_t = None
        if feedback is not None:
            self._feedback_t = np.array(feedback.T, dtype=dtype, order="C")
            if is_float:
                self._feedback_t *= self._delta_plan.prescale
        # |sum over the batch of delta x| <= batch * |delta| * |x|; the bias input 2**f_x is an x.
        x_magnitude = max(_magnitude(cfg.activation), 1 << x_frac)
        bound = max_batch * _magnitude(delta_fmt) * x_magnitude
        step_frac = delta_fmt.frac_bits + x_frac + cfg.shift
        self._step_plan = cast_plan(
            step_frac, cfg.weight, cfg.update_rounding, cfg.overflow, is_float, value_range=(-bound, bound)
        )
        self._weight_plan = cast_plan(cfg.weight.frac_bits, cfg.weight, Rounding.TRN, cfg.overflow, is_float)
        # Float plans fold the step cast's first multiplication into the delta (exact: a power
        # of two); there is nothing to fold when it is 1.
        self._prescaled = is_float
        self._prescale = self._step_plan.prescale if is_float and self._step_plan.prescale != 1.0 else None

        self._bias_input = 1 << x_frac
        self._zero, self._one = dtype.type(0), dtype.type(1)
        self._bias_acc = np.empty(neurons, dtype=dtype)

        # The first layer's input of this step when it is not copied into ``inputs``.
        self._outside = None
        # What forward() leaves for update(): the inputs and weight rows of this step.
        self._x = None
        self._w = None
        self._columns = None

    # -- forward (§4) --------------------------------------------------------------------------

    def set_inputs(self, x) -> None:
        """The first layer's input of this step, (batch, fan_in) raw values of this dtype.

        Small batches are copied into ``inputs``, where ``changing_columns`` looks for zero
        inputs. Larger ones are used where they are (the copy would cost a pass over them);
        the bias input then enters the sums separately.
        """
        batch = x.shape[0]
        if batch <= _COLUMN_SEARCH_MAX_BATCH:
            np.copyto(self.inputs[:batch, : self.fan_in], x)
            self._outside = None
        else:
            self._outside = x

    def changing_columns(self, batch: int):
        """Weight rows whose step can be non-zero (bias last), or None to update them all.

        An input that is 0 in every sample of the step gives zero steps to its weights, and a
        zero step leaves a weight unchanged in every rounding mode (a cast of 0 is 0, even with
        a STOCH offset below one LSB, and W - 0 is in range). The bias input is never 0.
        """
        x = self.inputs[:batch]
        if batch == 1:
            columns = x[0].nonzero()[0]
        elif batch <= _COLUMN_SEARCH_MAX_BATCH:
            columns = x.any(axis=0).nonzero()[0]
        else:
            return None
        if columns.size > _BLOCK_UPDATE_SHARE * (self.fan_in + 1):
            return None
        return columns

    def forward(self, batch: int, columns=None):
        """y and f' of the first ``batch`` inputs (§4.1-§4.3); a goes into ``next_inputs``.

        With ``columns``, only those inputs take part (the others are 0: the same sums), and
        their weight rows are gathered once for this product and the update that follows.
        Returns (y, a, f'), views of buffers that the next step overwrites; f' is None for the
        identity (the output layer's delta is e itself, §6.2).
        """
        acc = self._acc[:batch]
        if self._outside is not None:
            # The inputs without the bias column: add the bias's term W_bias * 2**f_x apart.
            x, w = self._outside, self.weights_t
            np.matmul(x, w[: self.fan_in], out=acc)
            acc += np.multiply(w[self.fan_in], self._bias_input, out=self._bias_acc)
        else:
            if columns is None:
                x, w = self.inputs[:batch], self.weights_t
            else:
                x, w = self.inputs[:batch].take(columns, axis=1), self.weights_t.take(columns, axis=0)
            np.matmul(x, w, out=acc)
        self._x, self._w, self._columns = x, w, columns
        y = self._y_plan(acc, out=acc)
        if self.activation is Activation.IDENTITY:
            return y, y, None
        a = self._activate(y, batch)
        return y, a, self._fprime(y, a, batch)

    def _activate(self, y, batch: int):
        a = self.next_inputs[:batch]
        if self.activation is Activation.RELU:
            return np.maximum(y, 0, out=a)
        np.copyto(a, activate(y, self.cfg.activation, self.activation))
        return a

    def _fprime(self, y, a, batch: int):
        derivative = self._derivative[:batch]
        if self.activation is Activation.RELU:
            # 1 where y > 0, else 0: y clipped to [0, 1], as y is an integer (no bool array,
            # and y is contiguous where a is a view into the next layer's inputs).
            return _clip(y, self._zero, self._one, out=derivative)
        np.copyto(derivative, activation_derivative(y, a, self.cfg.activation, self.activation))
        return derivative

    # -- errors and deltas (§6) ------------------------------------------------------------------

    def output_error(self, y, targets, batch: int):
        """e = cast(a_L - onehot(target)) (§6.0), in place of this output layer's y."""
        one = 1 << self.cfg.activation.frac_bits
        if batch == 1:
            y[0, int(targets[0])] -= one
        else:
            y[self._samples[:batch], targets] -= one
        return self._error_plan(y, out=y)

    def feedback_delta(self, errors, batch: int, random_bits=None):
        """delta = cast((e B^T) * f') (§6.1) of a hidden layer of SSDFA, SDFA or DFA."""
        delta = np.matmul(errors, self._feedback_t, out=self._delta[:batch])  # sum_k b_ik e_k: exact
        delta *= self._derivative[:batch]  # exact
        return self._delta_plan(delta, random_bits, out=delta, prescaled=self._prescaled)

    # -- weight update (§7) ----------------------------------------------------------------------

    def update(self, batch: int, delta, random_bits=None) -> None:
        """W <- cast(W - cast(sum_batch delta x * 2**-shift)) on the rows ``forward`` used.

        ``random_bits`` holds the weight-step draws of those rows, (rows, neurons), for STOCH.
        """
        x, w = self._x, self._w
        step = self._step[: w.shape[0]]
        if self._prescale is not None:
            delta = np.multiply(delta, self._prescale, out=self._scaled_delta[:batch])
        if batch == 1:
            np.multiply.outer(x[0], delta[0], out=step)  # the hardware's case
        elif self._outside is not None:
            np.matmul(x.T, delta, out=step[: self.fan_in])  # exact: BLAS in float64, or int64
            bias_step = np.sum(delta, axis=0, out=step[self.fan_in])
            bias_step *= self._bias_input
        else:
            np.matmul(x.T, delta, out=step)
        self._step_plan(step, random_bits, out=step, prescaled=self._prescaled)
        np.subtract(w, step, out=w)
        self._weight_plan(w, out=w)
        if self._columns is not None:
            self.weights_t[self._columns] = w
        self._x = self._w = self._columns = self._outside = None
