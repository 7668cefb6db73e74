"""A saved network (model/weight_file.py) on the RTL: the hardware layers it needs, the state the
host loads, and inference runs in simulation.

The weight file holds the logical network (weights per layer, neuron-major, bias last); the
hardware spreads each layer's neurons over its PEs (``--pes``), and ``NetworkDriver`` maps
neuron ``n`` of layer ``l`` to PE ``n // K_l``, slot ``n % K_l``. Any PE partition that divides
the layers therefore runs the same file. Only fixed-point SSDFA files fit the hardware: a float
file, another algorithm, a hidden activation or arithmetic the RTL cannot build is refused with
one line naming the file and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.model.layer_config import LayerConfig
from ssdfa.model.weight_file import SavedNetwork

from .network_driver import NetworkDriver, NetworkState

__all__ = ["hardware_configs", "hardware_state", "InferenceResult", "simulate_inference"]


def _require_fixed_saved(saved, source: str) -> None:
    if not isinstance(saved, SavedNetwork):
        raise TypeError(f"expected a SavedNetwork (ssdfa.model.load_network(path)), not a {type(saved).__name__}")
    if not saved.fixed:
        raise SsdfaError(f"{source} holds float weights; the RTL takes fixed-point weights (train with --fixed)")


def hardware_configs(saved: SavedNetwork, pes: Sequence[int] | None = None, *, source: str = "weight file"
                     ) -> tuple[LayerConfig, ...]:
    """The ``LayerConfig`` of every hardware layer for ``saved`` (``rtl.network.network_layer_configs``).

    Raises
    ------
    SsdfaError
        ``<source>: <reason>`` for a float network, an algorithm other than SSDFA, or layers the
        hardware cannot build (a PE count that does not divide its layer, for instance).
    """
    from ssdfa.model.network import Algorithm
    from ssdfa.rtl.network import network_layer_configs

    _require_fixed_saved(saved, source)
    if pes is not None:
        if isinstance(pes, (str, bytes)) or not isinstance(pes, Sequence) or not all(
                isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pes):
            raise ValueError(f"pes must be a sequence of whole PE counts, one per layer, not {pes!r}")
    if saved.spec.algorithm is not Algorithm.SSDFA:
        raise SsdfaError(f"{source} holds a {saved.spec.algorithm.value} network; the RTL learner is SSDFA")
    try:
        return network_layer_configs(saved.spec.layer_sizes, saved.config, pes=pes, activation=saved.spec.activation)
    except SsdfaError as exc:
        raise SsdfaError(f"{source}: {exc}") from None


def hardware_state(saved: SavedNetwork, configs: Sequence[LayerConfig], *, source: str = "weight file"
                   ) -> NetworkState:
    """What the host loads for ``saved`` on ``configs``: its weights, feedback tables and LFSR
    states, checked against the hardware's layer sizes, activation, formats and modes."""
    _require_fixed_saved(saved, source)
    try:
        return NetworkDriver(configs).state_from_model(saved.network())
    except SsdfaError as exc:
        raise SsdfaError(f"{source}: {exc}") from None


@dataclass(frozen=True)
class InferenceResult:
    """Predictions of the RTL on one inference run, and what the simulation cost."""

    predictions: np.ndarray
    cycles: int
    seconds: float
    build_seconds: float
    rebuilt: bool


def simulate_inference(configs: Sequence[LayerConfig], state: NetworkState, x_raw, labels, *, simulator: str,
                       preloaded: bool = False, build_root=None, work_dir=None) -> InferenceResult:
    """Run the samples through the RTL network in INFER mode and return its predictions.

    ``preloaded`` simulates the Verilog elaborated with ``state`` in its memories and loads
    nothing through the host port (what ``ssdfa verilog --network --weights`` writes).
    """
    from .network_cosim import NetworkSimulationFailed, RunRequest, simulate_network
    from .runner import SimulationError

    if len(np.asarray(labels)) == 0:
        raise SsdfaError("there are no samples to run through the RTL")
    try:
        sim = simulate_network(configs, state, [RunRequest("inference", "infer", x_raw, labels)],
                               simulator=simulator, preloaded=preloaded, build_root=build_root, work_dir=work_dir)
    except (NetworkSimulationFailed, SimulationError) as error:
        raise NetworkSimulationFailed(f"RTL inference failed: {error}") from None
    record = sim.runs[0]
    return InferenceResult(sim.predictions["inference"][0], int(record["cycles"]), float(record["seconds"]),
                           sim.build_seconds, sim.rebuilt)
