"""The output-error unit: e = cast(a_L - onehot(target)) and the predicted class, per sample.

Section numbers (§) refer to docs/arithmetic.md; docs/network.md has the architecture.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ssdfa.model.neuron_ops import ArithmeticConfig

from .building_blocks import hw_cast, index_width
from .signatures import format_shape

__all__ = ["OutputErrorUnit", "PredictionLayout", "class_shape"]


def class_shape(outputs: int):
    """The shape of a class index ``0 .. outputs - 1`` (at least one bit)."""
    return unsigned(index_width(outputs))


class PredictionLayout(data.StructLayout):
    """One sample's outcome: the predicted class and whether it equals the label.

    Parameters
    ----------
    outputs : int
        M, the number of classes.
    """

    def __init__(self, outputs: int):
        super().__init__({"index": class_shape(outputs), "correct": unsigned(1)})


class OutputErrorUnit(wiring.Component):
    """Turns the output layer's activations into output errors (§6.0) and a prediction.

    The M activations ``a_0 .. a_{M-1}`` of a sample arrive on ``a`` in neuron order, with the
    sample's class on ``label`` (taken with the last activation). For each activation, in the
    same clock (no register on the path):

    ``e_k = cast(a_k - onehot(label)_k, f_a, error format, rounding, overflow)``

    with the one-hot target exactly 1 (raw ``2^f_a``, even if 1 is not representable in the
    activation format), the signal path's deterministic ``rounding`` and the ``overflow`` mode:
    the model's ``neuron_ops.output_error`` bit for bit. The word goes out on ``e`` only while
    ``train`` is high; otherwise the activations are consumed without errors (inference).

    The prediction is the index of the largest activation, the first one on a tie (a later
    activation replaces the running maximum only when strictly larger): the model's
    ``FixedNetwork.predict`` (``numpy.argmax``). It is registered with the last activation and
    offered on ``prediction`` until taken; a sample's last activation waits while the previous
    prediction has not been taken.

    Parameters
    ----------
    outputs : int
        M, activations (and classes) per sample, >= 1.
    arithmetic : ArithmeticConfig
        The network's formats and modes: activation and error formats, ``rounding``, ``overflow``.

    Attributes
    ----------
    a : In(stream.Signature(activation word))
        The output layer's activations, neuron 0 first.
    label : In(stream.Signature(class index))
        One per sample; ``ready`` with the sample's last activation.
    train : In(1)
        Emit error words on ``e`` (training); low: inference, no error words.
    e : Out(stream.Signature(error word))
        ``e_0 .. e_{M-1}`` per sample, in training only.
    prediction : Out(stream.Signature(PredictionLayout(M)))
        One per sample: ``index`` (argmax, first on ties) and ``correct`` (index == label).

    Raises
    ------
    ValueError
        If ``outputs`` is not a positive integer.
    TypeError
        If ``arithmetic`` is not an ``ArithmeticConfig``.
    """

    def __init__(self, *, outputs: int, arithmetic: ArithmeticConfig):
        self._MustUse__silence = True  # a refused instance is not an unused design
        if not isinstance(outputs, int) or isinstance(outputs, bool) or outputs < 1:
            raise ValueError(f"outputs must be a positive integer, not {outputs!r}")
        if not isinstance(arithmetic, ArithmeticConfig):
            raise TypeError(f"arithmetic must be an ArithmeticConfig, not {arithmetic!r}")
        self._outputs = outputs
        self._arithmetic = arithmetic
        super().__init__({
            "a": In(stream.Signature(format_shape(arithmetic.activation))),
            "label": In(stream.Signature(class_shape(outputs))),
            "train": In(1),
            "e": Out(stream.Signature(format_shape(arithmetic.error))),
            "prediction": Out(stream.Signature(PredictionLayout(outputs))),
        })
        self._MustUse__silence = False

    @property
    def outputs(self) -> int:
        return self._outputs

    @property
    def arithmetic(self) -> ArithmeticConfig:
        return self._arithmetic

    def elaborate(self, platform):
        m = Module()
        cfg = self._arithmetic
        act = cfg.activation
        outputs = self._outputs

        k = Signal(class_shape(outputs))  # position of the current activation in its sample
        # k = M - 1, a register of its own (a decoded k sat in front of every handshake).
        last = Signal(init=int(outputs == 1))
        pending = Signal()  # a prediction waits on `prediction`
        # The argmax runs a clock behind the handshake, on a registered copy of each activation
        # taken (stage "s"): compared with the running best straight from the output layer's
        # buffer, the comparison's carry chain and the handshake's enable were an ECP5
        # learner's slowest path. A sample's last activation in that stage counts as a pending
        # prediction, so that no later one overtakes it.
        s_valid = Signal()
        s_last = Signal(reset_less=True)
        # From a last activation's transfer until its prediction's: one register, not the
        # stage's and `pending`'s logic, in front of the handshake.
        in_flight = Signal()

        ok = self.a.valid & self.label.valid & (~last | ~in_flight)
        m.d.comb += [
            self.e.valid.eq(ok & self.train),
            self.a.ready.eq(ok & (~self.train | self.e.ready)),
            self.label.ready.eq(self.a.ready & last),
        ]
        take = self.a.valid & self.a.ready

        # §6.0: the difference is exact at f_a fraction bits; one is raw 2^f_a. An unsigned
        # activation is zero-extended into a signed word first.
        a_value = self.a.payload
        if not act.signed:
            a_value = Cat(a_value, C(0, 1)).as_signed()
        width = max(act.word + 1, act.frac_bits + 2) + 1
        target = Signal()
        m.d.comb += target.eq(k == self.label.payload)
        difference = Signal(signed(width))
        # a - 1 is formed beside the label comparison and chosen after it, so that k's decoding
        # does not sit in front of the subtraction's carry chain (an ECP5 learner's slow path).
        minus_one = Signal(signed(width))
        m.d.comb += [minus_one.eq(a_value - C(1 << act.frac_bits, act.frac_bits + 1)),
                     difference.eq(Mux(target, minus_one, a_value))]
        error = Signal(format_shape(cfg.error))
        m.d.comb += error.eq(hw_cast(difference, act.frac_bits, cfg.error, cfg.rounding, cfg.overflow))
        m.d.comb += self.e.payload.eq(error)

        s_a = Signal(format_shape(act), reset_less=True)
        s_k = Signal(class_shape(outputs), reset_less=True)
        s_first, s_target = Signal(reset_less=True), Signal(reset_less=True)
        s_label = Signal(class_shape(outputs), reset_less=True)
        m.d.sync += s_valid.eq(take)
        with m.If(take):
            m.d.sync += [s_a.eq(self.a.payload), s_k.eq(k), s_first.eq(~k.any()), s_last.eq(last),
                         s_target.eq(target), s_label.eq(self.label.payload)]
            m.d.sync += k.eq(Mux(last, 0, k + 1))
            if outputs > 1:
                m.d.sync += last.eq(k == outputs - 2)
            with m.If(last):
                m.d.sync += in_flight.eq(1)

        # Running argmax: a later activation wins only when strictly larger (first on ties).
        best = Signal(format_shape(act), reset_less=True)
        best_index = Signal(class_shape(outputs), reset_less=True)
        larger = Signal()
        m.d.comb += larger.eq(s_first | (s_a > best))
        with m.If(s_valid):
            with m.If(larger):
                m.d.sync += [best.eq(s_a), best_index.eq(s_k)]
            with m.If(s_last):
                m.d.sync += [
                    pending.eq(1),
                    self.prediction.payload.index.eq(Mux(larger, s_k, best_index)),
                    # Both comparisons with the label sit beside the argmax's, not behind it.
                    self.prediction.payload.correct.eq(Mux(larger, s_target, best_index == s_label)),
                ]
        m.d.comb += self.prediction.valid.eq(pending)
        with m.If(self.prediction.valid & self.prediction.ready):
            m.d.sync += [pending.eq(0), in_flight.eq(0)]
        return m
