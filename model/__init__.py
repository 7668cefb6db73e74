"""NumPy reference model: float and bit-accurate fixed-point training (pure NumPy).

The public names, for scripts and notebooks (docs/api.md)::

    from ssdfa.model import ArithmeticConfig, FixedNetwork, NetworkSpec, load_dataset, train, save_network

Each name lives in the module listed in ``_PUBLIC`` and is imported on first use, so that
``import ssdfa.model.arithmetic`` (what the command line and the RTL do) stays light.
"""

from __future__ import annotations

import importlib

#: Public name -> the module (in this package) that defines it.
_PUBLIC = {
    # the network and how it learns
    "NetworkSpec": "network",
    "Algorithm": "network",
    "Activation": "neuron_ops",
    "FloatNetwork": "float_network",
    "Loss": "float_network",
    "FixedNetwork": "fixed_network",
    "FeedbackMatrix": "feedback",
    # the arithmetic contract
    "ArithmeticConfig": "neuron_ops",
    "FixedFormat": "arithmetic",
    "Rounding": "arithmetic",
    "Overflow": "arithmetic",
    "quantize": "arithmetic",
    # data
    "Dataset": "datasets",
    "dataset_names": "datasets",
    "load_dataset": "datasets",
    "limit_samples": "datasets",
    # training
    "TrainingOptions": "training",
    "TrainingResult": "training",
    "train": "training",
    "accuracy": "training",
    # saved networks
    "SavedNetwork": "weight_file",
    "save_network": "weight_file",
    "load_network": "weight_file",
    "data_provenance": "training_data",
    "dataset_as_trained": "training_data",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
