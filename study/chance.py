"""Chance level: the accuracy of a network that learned nothing, and the margin around it.

A classifier that guesses is right 1/classes of the time. A design is *at chance level* when its
mean test accuracy is below chance + ``CHANCE_MARGIN`` x (1 - chance): it has come less than a
tenth of the way from guessing to perfect (below 19% for ten classes, 55% for two). Such a design
is drawn apart in the report and never counts as a point of a Pareto front: its low area buys
nothing.
"""

from __future__ import annotations

__all__ = ["CHANCE_MARGIN", "chance_accuracy", "chance_threshold", "at_chance_level"]

#: The fraction of the way from chance to perfect accuracy below which a design is at chance.
CHANCE_MARGIN = 0.1


def chance_accuracy(classes: int) -> float:
    """1 / classes."""
    return 1.0 / classes


def chance_threshold(classes: int) -> float:
    """The accuracy below which a design of ``classes`` classes is at chance level."""
    chance = chance_accuracy(classes)
    return chance + CHANCE_MARGIN * (1.0 - chance)


def at_chance_level(accuracy: float, classes: int | None) -> bool:
    """True when ``accuracy`` (a fraction) is at chance level; False when classes are unknown."""
    return classes is not None and accuracy < chance_threshold(classes)
