"""Operation and data-movement counts of BP, DFA, SDFA and SSDFA per training example.

This module reconstructs Table 1 and Figure 8 of Crafton et al. (2019), "Direct Feedback
Alignment With Sparse Connections for Local Learning", per layer and per pass. Every rule it
applies is stated in docs/costs.md; section numbers (§) refer to that document. Counts are exact
integers for one training example (a batch of one); nothing here depends on data.

The four counts of a pass (``Counts``):

- ``macs``: multiply-accumulates (§3.1);
- ``reads`` / ``writes``: words read from / written to memory, each operand word once per layer
  and pass (perfect reuse within a layer, §3.2);
- ``movement``: words that cross a neuron's boundary (§3.3). In the backward pass this is the
  paper's definition: the error words delivered to the neurons for DFA/SDFA/SSDFA on a
  near-memory substrate, and the words moved between main memory and the compute for BP on a
  von Neumann machine (``|W| + |A| + |E|``).
"""

from __future__ import annotations

import enum
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ssdfa.errors import SsdfaError
from ssdfa.model.paper_architectures import Layer, Network, fully_connected, network
from ssdfa.user_files import read_text

__all__ = [
    "Algorithm",
    "Scope",
    "Counts",
    "LayerCosts",
    "NetworkCosts",
    "Ratios",
    "PAPER_RATIOS",
    "DEFAULT_SDFA_SPARSITY",
    "feedback_connections",
    "costs_of_layer",
    "layer_costs",
    "network_costs",
    "compare",
    "headline_ratios",
    "megabytes",
    "EnergyTable",
    "Energy",
    "DEFAULT_ENERGY_TABLE",
    "energy_table_from_mapping",
    "read_energy_table",
    "energy",
]


class Algorithm(enum.Enum):
    """How the error reaches a hidden neuron (§1)."""

    BP = "bp"  #: backpropagation: W^T of the layer above, on a von Neumann machine
    DFA = "dfa"  #: direct feedback alignment: a dense B, every output error to every hidden neuron
    SDFA = "sdfa"  #: sparse DFA: s of the errors to each hidden neuron
    SSDFA = "ssdfa"  #: single-connection SDFA: exactly one error to each hidden neuron

    @property
    def label(self) -> str:
        return self.name

    @property
    def substrate(self) -> str:
        """Where the backward pass runs, as in the paper's Figure 4 (§3.3)."""
        return "von Neumann" if self is Algorithm.BP else "near-memory"

    @classmethod
    def parse(cls, name) -> Algorithm:
        if isinstance(name, cls):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            raise SsdfaError(
                f"unknown algorithm {name!r}; expected one of {', '.join(a.value for a in cls)}"
            ) from None


class Scope(enum.Enum):
    """Which layers a network's counts cover (§2.2)."""

    FC = "fc"  #: the fully connected layers only (convolutions transferred and frozen, Table 5)
    ALL = "all"  #: every layer with weights, all trained by the algorithm

    @classmethod
    def parse(cls, name) -> Scope:
        if isinstance(name, cls):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise SsdfaError(f"unknown scope {name!r}; expected one of {choices}") from None


#: SDFA's default: 90% of each feedback row is zero (the paper's Figure 2 example).
DEFAULT_SDFA_SPARSITY = 0.9


@dataclass(frozen=True)
class Counts:
    """The four counts of one pass, in operations and words (§3)."""

    macs: int = 0
    reads: int = 0
    writes: int = 0
    movement: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class LayerCosts:
    """Counts of one layer for one example: forward and backward pass (the update is backward)."""

    layer: Layer
    forward: Counts
    backward: Counts

    @property
    def total(self) -> Counts:
        return self.forward + self.backward


@dataclass(frozen=True)
class NetworkCosts:
    """Per-layer and summed counts of one algorithm on one network, per training example.

    Attributes
    ----------
    network : Network
        The layers counted (after ``scope`` was applied).
    algorithm : Algorithm
    connections : int or None
        Feedback connections per hidden unit (``None`` for BP).
    scope : Scope
    input_error : bool
        Whether BP's first layer computes the error at its own input (§3.1).
    layers : tuple of LayerCosts
        In network order.
    """

    network: Network
    algorithm: Algorithm
    connections: int | None
    scope: Scope
    input_error: bool
    layers: tuple[LayerCosts, ...]

    @property
    def forward(self) -> Counts:
        return sum((layer.forward for layer in self.layers), Counts())

    @property
    def backward(self) -> Counts:
        return sum((layer.backward for layer in self.layers), Counts())

    @property
    def total(self) -> Counts:
        return self.forward + self.backward

    @property
    def label(self) -> str:
        """``SDFA (s=100)`` for SDFA, the plain name otherwise."""
        if self.algorithm is Algorithm.SDFA:
            return f"SDFA (s={self.connections})"
        return self.algorithm.label


def feedback_connections(algorithm, errors: int, sparsity=None, connections=None) -> int | None:
    """Errors delivered to each hidden unit: ``None`` for BP, ``errors`` for DFA, 1 for SSDFA.

    For SDFA give either ``connections`` (an integer 1..errors) or ``sparsity`` S, the fraction of
    zeros in each row of the feedback matrix (the paper's definition), so that
    ``connections = errors * (1 - S)``; that must be a whole number of at least one. Without
    either, S = ``DEFAULT_SDFA_SPARSITY``.
    """
    algorithm = Algorithm.parse(algorithm)
    if algorithm is Algorithm.BP:
        return None
    if algorithm is Algorithm.DFA:
        return errors
    if algorithm is Algorithm.SSDFA:
        return 1
    if sparsity is not None and connections is not None:
        raise SsdfaError(
            f"give SDFA either a sparsity ({sparsity!r}) or connections ({connections!r}), not both"
        )
    if connections is not None:
        whole = isinstance(connections, int) and not isinstance(connections, bool)
        if not whole or not 1 <= connections <= errors:
            raise SsdfaError(
                f"SDFA connections must be an integer from 1 to {errors} (the errors), not {connections!r}"
            )
        return connections
    sparsity = DEFAULT_SDFA_SPARSITY if sparsity is None else sparsity
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise SsdfaError(
            f"sparsity must be a number in [0, 1) (the fraction of zero feedback weights), not {sparsity!r}"
        )
    exact = errors * (1 - sparsity)
    kept = round(exact)
    if kept < 1 or abs(exact - kept) > 1e-6 * errors:
        raise SsdfaError(
            f"sparsity {sparsity!r} keeps {exact:g} of {errors} errors per neuron; "
            f"choose a sparsity that keeps a whole number of at least one"
        )
    return kept


def costs_of_layer(
    layer: Layer, algorithm, *, connections: int | None, is_output: bool, input_error: bool = True
) -> LayerCosts:
    """Counts of one layer for one example (the formulas of docs/costs.md §4).

    Parameters
    ----------
    layer : Layer
        ``N = layer.inputs``, ``M = layer.neurons``, ``|W| = layer.weights``,
        ``X = layer.connections`` (``N * M`` for a fully connected layer).
    algorithm : Algorithm or str
    connections : int or None
        Errors delivered to each unit of a hidden layer (``s``); ignored for BP.
    is_output : bool
        The output layer receives its own error ``e`` and needs no feedback matrix.
    input_error : bool
        BP only: whether the layer computes the error at its input (``W^T delta``). True for every
        layer but possibly the first, whose input may need no error (§3.1).
    """
    algorithm = Algorithm.parse(algorithm)
    n, m, w, x = layer.inputs, layer.neurons, layer.weights, layer.connections
    forward = Counts(
        macs=x,
        reads=w + n,  # the weights and the input activations
        writes=m,  # the activations, kept for the backward pass
        movement=n + (m if is_output else 0),  # the inputs arrive; the outputs leave for the loss
    )
    derivative_reads = 0 if is_output else m  # f'(y) from the stored activations
    if algorithm is Algorithm.BP:
        below = x if input_error else 0
        backward = Counts(
            macs=x + below,  # weight update, and W^T delta for the layer below
            reads=w + n + m + derivative_reads,  # W, the stored inputs, the incoming error
            writes=w + (n if input_error else 0),  # the updated weights, the error for the layer below
            movement=w + n + m,  # |W| + |A| + |E|: what crosses between main memory and compute
        )
    else:
        s = 1 if is_output else connections
        if s is None:
            raise SsdfaError(f"{algorithm.label} needs the number of feedback connections per neuron")
        feedback = 0 if is_output else s * m  # the non-zero entries of this layer's B
        backward = Counts(
            macs=x + feedback,  # weight update, and B e for each hidden unit
            reads=w + n + derivative_reads + feedback + s * m,  # W, inputs, B, the received errors
            writes=w,  # the updated weights
            movement=s * m,  # the error words delivered to the layer's units
        )
    return LayerCosts(layer, forward, backward)


def _network_costs(
    net: Network, algorithm: Algorithm, connections, scope: Scope, input_error: bool
) -> NetworkCosts:
    counted = net.fully_connected_part() if scope is Scope.FC else net
    last = len(counted.layers) - 1
    layers = tuple(
        costs_of_layer(
            layer,
            algorithm,
            connections=connections,
            is_output=index == last,
            input_error=input_error or index > 0,
        )
        for index, layer in enumerate(counted.layers)
    )
    return NetworkCosts(counted, algorithm, connections, scope, input_error, layers)


def _resolve(net) -> Network:
    return net if isinstance(net, Network) else network(net)


def network_costs(
    net, algorithm, sparsity=None, *, connections=None, scope="fc", input_error: bool = True
) -> NetworkCosts:
    """Counts of ``algorithm`` on a network of the paper (by name) or any ``Network``.

    Parameters
    ----------
    net : str or Network
        ``mnist-fc``, ``cifar10-fc``, ``cifar100-fc``, ``alexnet``, ``vgg16``, or a Network.
    algorithm : Algorithm or str
        ``bp``, ``dfa``, ``sdfa`` or ``ssdfa``.
    sparsity, connections
        SDFA's feedback density; see ``feedback_connections``.
    scope : Scope or str
        ``fc``: the fully connected layers (the paper's setting for the ImageNet networks, §2.2);
        ``all``: every layer with weights. The same for a fully connected network.
    input_error : bool
        Whether BP's first counted layer computes the error at its input. True reproduces the
        paper's ``2|W|`` backward MACs; False counts only what training needs (§3.1).
    """
    net = _resolve(net)
    algorithm = Algorithm.parse(algorithm)
    connections = feedback_connections(algorithm, net.errors, sparsity, connections)
    return _network_costs(net, algorithm, connections, Scope.parse(scope), bool(input_error))


def layer_costs(
    layer_sizes, algorithm, sparsity=None, *, connections=None, input_error: bool = True
) -> tuple[LayerCosts, ...]:
    """Per-layer counts for a fully connected network given by its sizes, input first.

    ``layer_costs([784, 400, 10], "ssdfa")`` counts a 784-400-10 network with 10 errors. See
    ``network_costs`` for the other arguments.
    """
    net = fully_connected(layer_sizes)
    return network_costs(net, algorithm, sparsity, connections=connections, input_error=input_error).layers


def compare(
    net, sparsity=None, *, connections=None, scope="fc", input_error: bool = True
) -> dict[Algorithm, NetworkCosts]:
    """``network_costs`` for all four algorithms, in the order BP, DFA, SDFA, SSDFA."""
    return {
        algorithm: network_costs(
            net, algorithm, sparsity, connections=connections, scope=scope, input_error=input_error
        )
        for algorithm in Algorithm
    }


@dataclass(frozen=True)
class Ratios:
    """The headline comparisons of the paper's §4.4, per training example (§5).

    ``movement_*`` and ``macs_*`` are backward-pass ratios (the paper's claims concern the
    backward pass); ``total_*`` add the forward pass, which is the same for every algorithm.
    """

    movement_bp_ssdfa: float
    movement_dfa_ssdfa: float
    movement_dfa_ssdfa_hidden: float
    macs_bp_ssdfa: float
    macs_bp_ssdfa_without_input_error: float
    total_movement_bp_ssdfa: float
    total_macs_bp_ssdfa: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: What the paper's text states (§4.4). Figure 8's bar heights are an image and not stated.
PAPER_RATIOS = {
    "movement_bp_ssdfa": (6400.0, "ImageNet: 'a 6,400x reduction in data movement from BP to SSDFA'"),
    "movement_dfa_ssdfa": (1000.0, "ImageNet: 'a 1,000x reduction ... a single error rather than 1,000'"),
    "macs_bp_ssdfa": (2.0, "CIFAR100 and ImageNet: 'nearly a factor of two', 2|W| -> |W| + |b|"),
}


def _hidden_movement(costs: NetworkCosts) -> int:
    return sum(layer.backward.movement for layer in costs.layers[:-1])


def headline_ratios(results: Mapping[Algorithm, NetworkCosts]) -> Ratios:
    """The paper's ratios from ``compare``'s result (BP, DFA and SSDFA must be present)."""
    bp, dfa, ssdfa = (results[a] for a in (Algorithm.BP, Algorithm.DFA, Algorithm.SSDFA))
    bp_exact = _network_costs(bp.network, Algorithm.BP, None, bp.scope, input_error=False)
    hidden_ssdfa = _hidden_movement(ssdfa)
    return Ratios(
        movement_bp_ssdfa=bp.backward.movement / ssdfa.backward.movement,
        movement_dfa_ssdfa=dfa.backward.movement / ssdfa.backward.movement,
        movement_dfa_ssdfa_hidden=_hidden_movement(dfa) / hidden_ssdfa if hidden_ssdfa else math.nan,
        macs_bp_ssdfa=bp.backward.macs / ssdfa.backward.macs,
        macs_bp_ssdfa_without_input_error=bp_exact.backward.macs / ssdfa.backward.macs,
        total_movement_bp_ssdfa=bp.total.movement / ssdfa.total.movement,
        total_macs_bp_ssdfa=bp.total.macs / ssdfa.total.macs,
    )


def megabytes(words: int, word_bits: int) -> float:
    """``words`` of ``word_bits`` bits in MB (10**6 bytes)."""
    return words * word_bits / 8 / 1e6


# --------------------------------------------------------------------------------------------
# Energy (§6)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation, in picojoules per word of ``word_bits`` bits (§6).

    The defaults are Horowitz (ISSCC 2014), 45 nm, 0.9 V, for 32-bit floating point: a MAC is a
    multiply (3.7 pJ) plus an add (0.9 pJ); a read or write is half of the 10 pJ quoted for a
    64-bit access to an 8 KB SRAM; a main-memory word is the 640 pJ per 32 bits commonly quoted
    from the same table (1.3-2.6 nJ per 64-bit DRAM access). ``link_pj``, a word sent across the
    chip between neurons, has no entry in that table; we use a 32-bit access to a 1 MB SRAM
    (half of 100 pJ) as a stand-in for a chip-scale wire.
    """

    name: str = "Horowitz ISSCC 2014, 45 nm, 32-bit float"
    word_bits: int = 32
    mac_pj: float = 4.6
    read_pj: float = 5.0
    write_pj: float = 5.0
    main_memory_pj: float = 640.0
    link_pj: float = 50.0

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_ENERGY_TABLE = EnergyTable()

_ENERGY_KEYS = tuple(f.name for f in fields(EnergyTable))


#: Bounds of an energy table's values: a word of 1,024 bits, and 1 J (10^12 pJ) per operation.
MAX_WORD_BITS = 1024
MAX_PICOJOULES = 1e12


def energy_table_from_mapping(mapping, source: str = "energy table") -> EnergyTable:
    """An EnergyTable from a mapping of some of its keys; the others keep their defaults.

    Raises SsdfaError, naming ``source`` and the key, on an unknown key or a bad value: ``name``
    must be a string, ``word_bits`` a positive integer, every ``*_pj`` a finite number >= 0.
    """
    if not isinstance(mapping, Mapping):
        raise SsdfaError(
            f"{source}: expected a table of keys ({', '.join(_ENERGY_KEYS)}), not {type(mapping).__name__}"
        )
    values = {}
    for key, value in mapping.items():
        if key not in _ENERGY_KEYS:
            raise SsdfaError(f"{source}: unknown key {key!r}; expected some of {', '.join(_ENERGY_KEYS)}")
        if key == "name":
            if not isinstance(value, str):
                raise SsdfaError(f"{source}: name must be a string, not {value!r}")
        elif key == "word_bits":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WORD_BITS:
                raise SsdfaError(f"{source}: word_bits must be an integer from 1 to {MAX_WORD_BITS}, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= MAX_PICOJOULES):
            # Bounded so that every total stays finite (a JSON number) whatever the network.
            raise SsdfaError(f"{source}: {key} must be a number of picojoules from 0 to {MAX_PICOJOULES:g}, "
                             f"not {value!r}")
        else:
            value = float(value)
        values[key] = value
    return replace(DEFAULT_ENERGY_TABLE, **values)


def read_energy_table(path) -> EnergyTable:
    """Read an energy table from a ``.toml`` or ``.json`` file (see ``energy_table_from_mapping``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise SsdfaError(f"energy table {path}: expected a .toml or .json file")
    text = read_text(path, "energy table")
    try:
        mapping = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SsdfaError(f"energy table {path}: not valid {suffix[1:].upper()}: {exc}") from None
    return energy_table_from_mapping(mapping, source=f"energy table {path}")


@dataclass(frozen=True)
class Energy:
    """Energy of one pass, in picojoules, by what spends it."""

    macs: float
    reads: float
    writes: float
    movement: float

    @property
    def total(self) -> float:
        return self.macs + self.reads + self.writes + self.movement

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def _energy_of(counts: Counts, table: EnergyTable, movement_pj: float) -> Energy:
    return Energy(
        macs=counts.macs * table.mac_pj,
        reads=counts.reads * table.read_pj,
        writes=counts.writes * table.write_pj,
        movement=counts.movement * movement_pj,
    )


def energy(costs: NetworkCosts, table: EnergyTable = DEFAULT_ENERGY_TABLE) -> dict[str, Energy]:
    """Energy per example, ``{"forward": ..., "backward": ..., "total": ...}`` (§6).

    Forward movement (activations between layers) is priced as on-chip links for every algorithm;
    backward movement as main-memory words for BP and as on-chip links for the others.
    """
    backward_pj = table.main_memory_pj if costs.algorithm is Algorithm.BP else table.link_pj
    forward = _energy_of(costs.forward, table, table.link_pj)
    backward = _energy_of(costs.backward, table, backward_pj)
    total = Energy(*(getattr(forward, f.name) + getattr(backward, f.name) for f in fields(Energy)))
    return {"forward": forward, "backward": backward, "total": total}
