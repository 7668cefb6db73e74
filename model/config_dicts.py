"""Plain JSON values of a ``NetworkSpec`` and an ``ArithmeticConfig``, and their checked inverses.

What a saved network's manifest (model/weight_file.py) records of the network and its arithmetic:
``NetworkSpec.describe()`` and ``arithmetic_to_dict``. Reading them back refuses, with an
``SsdfaError`` naming where and what, anything that is not exactly what the writer stores.
"""

from __future__ import annotations

from ssdfa.errors import SsdfaError

from .arithmetic import FixedFormat, Overflow, Rounding
from .network import NetworkSpec
from .neuron_ops import ArithmeticConfig

__all__ = ["FORMAT_FIELDS", "arithmetic_to_dict", "arithmetic_from_dict", "network_spec_from_dict"]

#: The ``ArithmeticConfig`` fields that are formats, in the order they are recorded.
FORMAT_FIELDS = ("activation", "weight", "feedback", "error", "delta", "bp_error")


def arithmetic_to_dict(config: ArithmeticConfig) -> dict:
    """Formats as ``SQ(i,f)`` strings, modes by name, shift and seed (what the manifest stores)."""
    values = {name: str(getattr(config, name)) for name in FORMAT_FIELDS}
    values.update(rounding=config.rounding.name, update_rounding=config.update_rounding.name,
                  overflow=config.overflow.name, shift=int(config.shift), seed=int(config.seed))
    return values


def arithmetic_from_dict(values, where: str) -> ArithmeticConfig:
    """The inverse of ``arithmetic_to_dict``; SsdfaError names ``where`` and the bad entry."""
    expected = set(FORMAT_FIELDS) | {"rounding", "update_rounding", "overflow", "shift", "seed"}
    if not isinstance(values, dict) or set(values) != expected:
        keys = sorted(values) if isinstance(values, dict) else values
        raise SsdfaError(f"{where}: the arithmetic must list exactly {sorted(expected)}, not {keys!r}")
    try:
        formats = {name: FixedFormat.parse(values[name]) for name in FORMAT_FIELDS}
        for name in ("shift", "seed"):
            if type(values[name]) is not int:
                raise ValueError(f"{name} must be an integer, not {values[name]!r}")
        return ArithmeticConfig(
            **formats,
            rounding=Rounding.parse(values["rounding"]),
            update_rounding=Rounding.parse(values["update_rounding"]),
            overflow=Overflow.parse(values["overflow"]),
            shift=values["shift"],
            seed=values["seed"],
        )
    except (ValueError, TypeError) as exc:
        raise SsdfaError(f"{where}: arithmetic: {exc}") from None


def network_spec_from_dict(values, where: str) -> NetworkSpec:
    """The ``NetworkSpec`` whose ``describe()`` gave ``values``; SsdfaError names the problem."""
    keys = {"layer_sizes", "algorithm", "activation", "connections", "rank", "balanced", "power_of_two",
            "lfsr_connectivity", "seed", "weight_gain", "feedback_gain"}
    if not isinstance(values, dict) or set(values) != keys:
        listed = sorted(values) if isinstance(values, dict) else values
        raise SsdfaError(f"{where}: the network spec must list exactly {sorted(keys)}, not {listed!r}")
    try:
        algorithm = str(values["algorithm"])
        spec = NetworkSpec(
            tuple(values["layer_sizes"]),
            algorithm=algorithm,
            activation=values["activation"],
            # describe() records s for every feedback algorithm; only SDFA takes it as a parameter.
            connections=values["connections"] if algorithm == "sdfa" else None,
            rank=values["rank"],
            balanced=values["balanced"],
            power_of_two=values["power_of_two"],
            lfsr_connectivity=values["lfsr_connectivity"],
            seed=values["seed"],
            weight_gain=values["weight_gain"],
            feedback_gain=values["feedback_gain"],
        )
    except (ValueError, TypeError) as exc:
        raise SsdfaError(f"{where}: network spec: {exc}") from None
    if spec.describe() != values:
        raise SsdfaError(f"{where}: the network spec is not as the writer stores it: {values!r}")
    return spec
