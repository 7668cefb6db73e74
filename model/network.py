"""The description of a network that the float and the fixed-point models share.

A ``NetworkSpec`` names the layer sizes, the training algorithm (BP, DFA, SDFA, SSDFA), the
hidden activation, the feedback matrices' options and the seed. From it come the same initial
weights and feedback matrices for both models: the float model uses the reals, the fixed-point
model quantises them (``arithmetic.quantize``) into its formats.

Weights are (neurons, fan_in + 1) arrays with the bias in the last column, as in
``neuron_ops``. Initial weights are uniform in ``[-g/fanout, g/fanout]`` (paper, section 6),
where fanout is the number of neurons of the layer (the width of the weight matrix's output
side) and ``g`` the ``weight_gain`` (1 by default); biases start at 0.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from .arithmetic import layer_seed
from .feedback import FeedbackMatrix, build_feedback
from .memory_budget import require_memory, training_bytes
from .neuron_ops import Activation

__all__ = ["Algorithm", "NetworkSpec", "connectivity_seed", "feedback_connections", "HIDDEN_ACTIVATIONS"]

#: Non-linearities a hidden layer may use; the output layer is always the identity (§6.0).
HIDDEN_ACTIVATIONS = (Activation.RELU, Activation.HARDTANH, Activation.TANH)

#: Keeps the weight initialisation's random stream apart from other users of the same seed.
_WEIGHT_DOMAIN = 0x5EED
#: Offset of the connectivity LFSR seeds from the layer seeds of stochastic rounding (§5.2).
_CONNECTIVITY_OFFSET = 500


class Algorithm(enum.Enum):
    """How hidden layers receive their error."""

    BP = "bp"  #: back-propagation through the transposed weights
    DFA = "dfa"  #: dense random feedback from every output error
    SDFA = "sdfa"  #: sparse feedback: s errors per neuron
    SSDFA = "ssdfa"  #: single-connection sparse feedback: one error per neuron

    @classmethod
    def parse(cls, name: Algorithm | str) -> Algorithm:
        if isinstance(name, cls):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            raise ValueError(
                f"unknown algorithm {name!r}; expected one of {', '.join(a.value for a in cls)}"
            ) from None

    @property
    def uses_feedback(self) -> bool:
        return self is not Algorithm.BP


def connectivity_seed(network_seed: int, layer: int) -> int:
    """The seed of hidden layer ``layer``'s LFSR-regenerated connectivity (docs/model.md).

    ``network_seed * 1000 + 500 + layer``: the same scheme as ``arithmetic.layer_seed`` with an
    offset, so that these LFSRs never share a seed with the stochastic-rounding ones.
    """
    return layer_seed(network_seed, layer) + _CONNECTIVITY_OFFSET


def _check_positive_int(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)



def feedback_connections(algorithm: Algorithm, outputs: int, connections) -> int | None:
    """s, the output errors each neuron receives: none for BP, 1 for SSDFA, every output for
    DFA, ``connections`` for SDFA."""
    if algorithm is Algorithm.BP:
        return None
    if algorithm is Algorithm.SSDFA:
        return 1
    if algorithm is Algorithm.DFA:
        return outputs
    return int(connections)

#: The largest weight or feedback gain a spec takes.
MAX_GAIN = float(2**20)


@dataclass(frozen=True)
class NetworkSpec:
    """A fully connected network and how it learns.

    Parameters
    ----------
    layer_sizes : tuple of int
        ``(inputs, hidden..., outputs)``: at least one hidden layer.
    algorithm : Algorithm
        BP, DFA, SDFA or SSDFA.
    activation : Activation
        The hidden layers' non-linearity (relu, hardtanh or tanh); the output is the identity.
    connections : int, optional
        s, errors per hidden neuron. SSDFA is 1 and DFA is M (the number of outputs); SDFA
        needs it. BP takes none.
    rank : int, optional
        Rank of every feedback matrix; default full rank (paper, section 4.2).
    balanced : bool
        Balanced feedback connectivity (same fan-out per error, ``build_feedback``).
    power_of_two : bool
        Feedback constants ``+-2**k``.
    lfsr_connectivity : bool
        SSDFA: each neuron's error index comes from an LFSR (``feedback.lfsr_connectivity``,
        seeded with ``connectivity_seed``), so hardware can regenerate it.
    seed : int
        Seeds the initial weights and feedback matrices (and, in the fixed model, nothing
        else: the LFSR seeds come from ``ArithmeticConfig.seed``).
    weight_gain, feedback_gain : float
        Multiply the paper's initialisation bounds (1 = the paper).
    """

    layer_sizes: tuple
    algorithm: Algorithm = Algorithm.SSDFA
    activation: Activation = Activation.RELU
    connections: int | None = None
    rank: int | None = None
    balanced: bool = False
    power_of_two: bool = False
    lfsr_connectivity: bool = False
    seed: int = 0
    weight_gain: float = 1.0
    feedback_gain: float = 1.0

    def __post_init__(self) -> None:
        sizes = tuple(self.layer_sizes)
        if len(sizes) < 3:
            raise ValueError(f"a network needs inputs, at least one hidden layer and outputs, not sizes {sizes}")
        names = ["inputs"] + ["hidden layer size"] * (len(sizes) - 2) + ["outputs"]
        object.__setattr__(self, "layer_sizes", tuple(_check_positive_int(n, v) for n, v in zip(names, sizes)))
        object.__setattr__(self, "algorithm", Algorithm.parse(self.algorithm))
        activation = self.activation if isinstance(self.activation, Activation) else Activation.parse(self.activation)
        if activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"hidden activation {activation.value!r} is not allowed; expected one of "
                f"{', '.join(a.value for a in HIDDEN_ACTIVATIONS)}"
            )
        object.__setattr__(self, "activation", activation)
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")
        for name in ("weight_gain", "feedback_gain"):
            value = getattr(self, name)
            # At most 2^20: beyond, initial values overflow every format (and float32) at once.
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= MAX_GAIN:
                raise ValueError(f"{name} must be a number above 0 and at most 2^20 ({MAX_GAIN:,.0f}), not {value!r}")
        outputs = self.outputs
        algo = self.algorithm
        s = self.connections
        if algo is Algorithm.BP:
            if s is not None or self.rank is not None or self.lfsr_connectivity:
                raise ValueError("bp uses no feedback matrix: sparsity, rank and LFSR connectivity do not apply")
        elif algo is Algorithm.SSDFA and s not in (None, 1):
            raise ValueError(f"ssdfa has exactly one connection per neuron, not sparsity s={s}; use sdfa")
        elif algo is Algorithm.DFA and s not in (None, outputs):
            raise ValueError(f"dfa is dense (s = {outputs} outputs), not sparsity s={s}; use sdfa")
        elif algo is Algorithm.SDFA and s is None:
            raise ValueError("sdfa needs the sparsity s (connections per hidden neuron)")
        if self.lfsr_connectivity and self.feedback_connections != 1:
            raise ValueError("LFSR-regenerated connectivity needs one connection per neuron (ssdfa)")
        # Before anything is built for it: a size that cannot fit in memory is one error, not a
        # long wait for the allocator (the float estimate, the least any use of the network needs).
        require_memory(training_bytes(self.layer_sizes, fixed=False), f"layer sizes {self.layer_sizes}")
        if algo.uses_feedback:
            # Refuse impossible s and r here, where the network is described.
            self.feedback()

    # -- shape --------------------------------------------------------------------------------

    @property
    def inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def num_layers(self) -> int:
        """Layers with weights: the hidden layers and the output layer."""
        return len(self.layer_sizes) - 1

    @property
    def hidden_sizes(self) -> tuple:
        return self.layer_sizes[1:-1]

    def layer_activation(self, layer: int) -> Activation:
        """The hidden activation, or the identity for the output layer."""
        return Activation.IDENTITY if layer == self.num_layers - 1 else self.activation

    @property
    def feedback_connections(self) -> int | None:
        """s of the feedback matrices (None for BP)."""
        return feedback_connections(self.algorithm, self.outputs, self.connections)

    # -- initial state ------------------------------------------------------------------------

    def initial_weights(self) -> list:
        """float64 weights (neurons, fan_in + 1) per layer: uniform in +-gain/neurons, bias 0."""
        weights = []
        for layer in range(self.num_layers):
            fan_in, neurons = self.layer_sizes[layer], self.layer_sizes[layer + 1]
            rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), _WEIGHT_DOMAIN, layer]))
            bound = self.weight_gain / neurons
            w = np.zeros((neurons, fan_in + 1), dtype=np.float64)
            w[:, :fan_in] = rng.uniform(-bound, bound, size=(neurons, fan_in))
            weights.append(w)
        return weights

    def feedback(self) -> list:
        """One ``FeedbackMatrix`` (neurons, outputs) per hidden layer; empty for BP."""
        if not self.algorithm.uses_feedback:
            return []
        matrices: list[FeedbackMatrix] = []
        for layer, neurons in enumerate(self.hidden_sizes):
            matrices.append(
                build_feedback(
                    neurons,
                    self.outputs,
                    connections=self.feedback_connections,
                    rank=self.rank,
                    balanced=self.balanced,
                    power_of_two=self.power_of_two,
                    seed=layer_seed(self.seed, layer),
                    lfsr_seed=connectivity_seed(self.seed, layer) if self.lfsr_connectivity else None,
                    gain=self.feedback_gain,
                )
            )
        return matrices

    def describe(self) -> dict:
        """Plain values for reports and JSON."""
        return {
            "layer_sizes": list(self.layer_sizes),
            "algorithm": self.algorithm.value,
            "activation": self.activation.value,
            "connections": self.feedback_connections,
            "rank": self.rank,
            "balanced": self.balanced,
            "power_of_two": self.power_of_two,
            "lfsr_connectivity": self.lfsr_connectivity,
            "seed": int(self.seed),
            "weight_gain": self.weight_gain,
            "feedback_gain": self.feedback_gain,
        }
