"""When a training run has diverged: the documented criteria (docs/model.md section 6.2).

A diverged run never reports an accuracy. ``train`` checks, after every epoch and, in float,
every ``NON_FINITE_CHECK_EVERY`` samples within one:

1. **Non-finite or runaway weights** (float): a NaN or an infinity in any layer's weights, or
   a weight beyond ``FLOAT_WEIGHT_LIMIT`` in magnitude (a float64 run can grow for a long
   time before it overflows; no fixed-point weight format of this project reaches it).
2. **Pinned weights** (fixed point, saturating overflow): at least ``PINNED_LIMIT`` of a layer's
   weights (bias included) sit at the weight format's largest or smallest value. Saturation
   holds a weight that keeps being pushed outward there; a healthy run pins a few percent at
   most, a runaway most of them.
3. **Saturated outputs** (fixed point): at a checkpoint (see 4), at least ``SATURATED_LIMIT``
   of the output layer's activations sit at the activation format's bounds. The targets are
   0 and 1, far inside any usable activation format; outputs held at its bounds mean that the
   weights have run away even when no single weight reached its own bound.
4. **Collapse** (both): validation accuracy (training accuracy without a validation split)
   falls to at most ``COLLAPSE_FACTOR`` times chance, ``1 / classes``, after it had reached
   ``LEARNED_FACTOR`` times chance: the network had learned and then lost it. It is checked
   after every epoch on the whole split and ``CHECKPOINTS_PER_EPOCH`` times within an epoch on
   its first ``CHECKPOINT_SAMPLES`` samples, since a fixed-point run that takes too large
   steps typically learns and loses it within its first epoch (its weights then stay within
   their bounds: hidden neurons die and the outputs saturate).

Each criterion gives a ``Divergence``: what diverged, where and when, and the likely remedy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arithmetic import Overflow

__all__ = [
    "Divergence",
    "non_finite_weights",
    "pinned_shares",
    "pinned_weights",
    "collapse",
    "PINNED_LIMIT",
    "FLOAT_WEIGHT_LIMIT",
    "SATURATED_LIMIT",
    "saturated_outputs",
    "COLLAPSE_FACTOR",
    "LEARNED_FACTOR",
    "NON_FINITE_CHECK_EVERY",
    "CHECKPOINTS_PER_EPOCH",
    "CHECKPOINT_SAMPLES",
]

PINNED_LIMIT = 0.25
FLOAT_WEIGHT_LIMIT = 2.0**16
SATURATED_LIMIT = 0.25
COLLAPSE_FACTOR = 1.5
LEARNED_FACTOR = 3.0
#: Float runs look for NaN and infinity this often (samples) within an epoch, so that a run
#: that blows up early stops early.
NON_FINITE_CHECK_EVERY = 1024
CHECKPOINTS_PER_EPOCH = 4
CHECKPOINT_SAMPLES = 512

_REMEDY = "lower the learning rate (a larger shift) or the feedback gain"


@dataclass(frozen=True)
class Divergence:
    """Why a run was stopped.

    Attributes
    ----------
    criterion : str
        ``non-finite``, ``runaway``, ``pinned``, ``saturated`` or ``collapse``.
    epoch : int
        The epoch (1-based) during or after which it was found.
    message : str
        One line: what diverged and the likely remedy.
    layer : int, optional
        The layer concerned (0 = first hidden layer), for the weight criteria.
    """

    criterion: str
    epoch: int
    message: str
    layer: int | None = None

    def describe(self) -> dict:
        return {"criterion": self.criterion, "epoch": self.epoch, "layer": self.layer, "message": self.message}


def non_finite_weights(weights, epoch: int) -> Divergence | None:
    """The first layer of float ``weights`` that holds a NaN, an infinity or a runaway weight."""
    for layer, w in enumerate(weights):
        if not np.isfinite(w).all():
            kind = "NaN" if np.isnan(w).any() else "infinite"
            return Divergence(
                "non-finite", epoch, f"layer {layer} weights became {kind} in epoch {epoch}; {_REMEDY}", layer
            )
        largest = float(np.abs(w).max(initial=0.0))
        if largest > FLOAT_WEIGHT_LIMIT:
            return Divergence(
                "runaway",
                epoch,
                f"layer {layer} weights ran away to {largest:.3g} in epoch {epoch} (limit 2^16); {_REMEDY}",
                layer,
            )
    return None


def pinned_shares(raw_weights, weight_format) -> list:
    """Per layer, the share of raw weights at the format's smallest or largest value."""
    low, high = weight_format.min_raw, weight_format.max_raw
    return [float(np.mean((w <= low) | (w >= high))) for w in raw_weights]


def pinned_weights(shares, config, epoch: int) -> Divergence | None:
    """The first layer with at least ``PINNED_LIMIT`` of its weights pinned (saturating runs)."""
    if config.overflow is not Overflow.SAT:
        return None  # wrapping weights never pin
    for layer, share in enumerate(shares):
        if share >= PINNED_LIMIT:
            return Divergence(
                "pinned",
                epoch,
                f"{100 * share:.0f}% of layer {layer}'s weights are pinned at the bounds of {config.weight} "
                f"after epoch {epoch}; {_REMEDY}, or give the weights more integer bits",
                layer,
            )
    return None


def saturated_outputs(raw_outputs, activation_format, epoch: int) -> Divergence | None:
    """Raw output activations (samples, outputs) at the format's bounds in ``SATURATED_LIMIT``
    of the cases or more."""
    raw_outputs = np.asarray(raw_outputs)
    if raw_outputs.size == 0:
        return None
    share = float(np.mean((raw_outputs <= activation_format.min_raw) | (raw_outputs >= activation_format.max_raw)))
    if share < SATURATED_LIMIT:
        return None
    return Divergence(
        "saturated",
        epoch,
        f"{100 * share:.0f}% of the outputs are saturated at the bounds of {activation_format} in epoch {epoch}; "
        f"{_REMEDY}",
    )


def collapse(accuracies, classes: int, epoch: int, split: str = "validation") -> Divergence | None:
    """Accuracy back at chance after it had learned (``accuracies``: one per epoch so far)."""
    values = [a for a in accuracies if a is not None]
    if len(values) < 2 or classes < 2:
        return None
    chance = 1.0 / classes
    best = max(values[:-1])
    if best >= LEARNED_FACTOR * chance and values[-1] <= COLLAPSE_FACTOR * chance:
        return Divergence(
            "collapse",
            epoch,
            f"{split} accuracy fell from {100 * best:.1f}% to {100 * values[-1]:.1f}% (chance {100 * chance:.0f}%) "
            f"in epoch {epoch}; {_REMEDY}, or halve it as training goes (--shift-steps)",
        )
    return None
