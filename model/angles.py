"""Angles that measure how well feedback alignment follows back-propagation.

- ``alignment_angles``: the paper's eq. 14, per hidden layer ``l``, the angle between the
  vectorised feedback matrix ``B_l`` and the product of the weights downstream of the layer,
  ``W_n ... W_{l+1}`` (biases excluded), transposed to B's (neurons, outputs) shape.
- ``update_angles``: per hidden layer, the angle between the weight update a network's own
  algorithm (DFA, SDFA, SSDFA) makes and the BP gradient, for the same weights and samples.

Angles are in degrees, in [0, 180]; 90 means unrelated, 0 identical directions. A network is a
``FloatNetwork`` or a ``FixedNetwork`` (its raw weights and feedback constants as reals).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .fixed_network import FixedNetwork
from .float_network import FloatNetwork
from .network import Algorithm

__all__ = ["angle", "alignment_angles", "update_angles"]


def angle(a, b) -> float:
    """Degrees between two arrays taken as vectors; NaN when either is all zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a == 0 or norm_b == 0:
        return float("nan")
    a, b = a / norm_a, b / norm_b
    # 2 atan2(|a - b|, |a + b|): accurate near 0 and 180 degrees, where arccos is not.
    return float(np.degrees(2 * np.arctan2(np.linalg.norm(a - b), np.linalg.norm(a + b))))


def _real_state(network: FloatNetwork | FixedNetwork) -> tuple[list, list]:
    """float64 weights (neurons, fan_in + 1) and feedback matrices (neurons, outputs)."""
    if isinstance(network, FixedNetwork):
        fmt = network.config.feedback
        feedback = [fmt.to_real(m.raw_matrix(fmt)) for m in network.feedback]
        return network.real_weights(), feedback
    weights = [np.asarray(w, dtype=np.float64) for w in network.weights]
    return weights, [np.asarray(b, dtype=np.float64) for b in network.feedback]


def alignment_angles(network: FloatNetwork | FixedNetwork) -> list:
    """Eq. 14 of the paper for every hidden layer (empty for BP, which has no B)."""
    weights, feedback = _real_state(network)
    angles = []
    for layer, b in enumerate(feedback):
        downstream = np.eye(weights[-1].shape[0])
        for w in reversed(weights[layer + 1 :]):
            downstream = downstream @ w[:, :-1]  # (outputs, neurons of layer)
        angles.append(angle(b, downstream.T))
    return angles


def update_angles(network: FloatNetwork | FixedNetwork, x, targets) -> list:
    """Angle between the network's update and BP's gradient, per hidden layer.

    ``x`` are real features (batch, inputs) and ``targets`` class indices; both updates use
    the squared-error output error at the network's current weights (bias column included).
    For BP itself every angle is 0.
    """
    weights, feedback = _real_state(network)
    spec = network.spec
    own = None
    if spec.algorithm.uses_feedback:
        own = FloatNetwork(spec, dtype=np.float64, weights=weights, feedback=feedback)
    bp_spec = dataclasses.replace(
        spec,
        algorithm=Algorithm.BP,
        connections=None,
        rank=None,
        lfsr_connectivity=False,
        balanced=False,
        power_of_two=False,
    )
    bp = FloatNetwork(bp_spec, dtype=np.float64, weights=weights, feedback=[])
    bp_grads = bp.gradients(x, targets)
    own_grads = bp_grads if own is None else own.gradients(x, targets)
    return [angle(own_grads[layer], bp_grads[layer]) for layer in range(len(weights) - 1)]
