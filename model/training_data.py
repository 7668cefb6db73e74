"""Where a saved network's data came from, and how raw features became its inputs.

A network learns on features scaled by its training split's statistics (``Dataset.feature_offset``
and ``feature_scale``) and, optionally, an input shift. Evaluating it, on another machine, from
another directory or on a file whose training part differs, must feed it inputs scaled the same
way. ``data_provenance`` is what ``ssdfa train --save`` records in a weight file's provenance
(docs/api.md, "Saved networks"); ``dataset_as_trained`` loads a dataset for a saved network with
that scaling, as ``ssdfa eval`` and ``ssdfa board eval`` do.
"""

from __future__ import annotations

from pathlib import Path

from .datasets import FEATURES_PREFIX, Dataset, features_file, load_dataset, renormalized, shift_features

__all__ = ["data_provenance", "dataset_as_trained"]


def data_provenance(dataset: Dataset, *, split_seed: int = 0, input_shift: int = 0, data_dir=None) -> dict:
    """The provenance entries that let ``dataset_as_trained`` rebuild ``dataset``'s inputs: the
    dataset (a features file as an absolute path, resolved as ``load_dataset`` resolves it), its
    data directory (absolute), the split seed, the normalisation with its per-feature offset and
    scale, and the input shift. JSON values only."""
    name = dataset.name
    path = features_file(name, data_dir)
    if path is not None:
        name = FEATURES_PREFIX + str(path.resolve())
    return {
        "dataset": name,
        "data_dir": None if data_dir is None else str(Path(data_dir).expanduser().resolve()),
        "split_seed": int(split_seed),
        "normalization": dataset.normalization.value,
        "feature_offset": [float(v) for v in dataset.feature_offset],
        "feature_scale": [float(v) for v in dataset.feature_scale],
        "input_shift": int(input_shift),
    }


def dataset_as_trained(saved, name: str | None = None, data_dir=None, split_seed: int | None = None) -> Dataset:
    """The dataset ``saved`` (a ``SavedNetwork``) was trained on, or ``name``, with its features
    scaled as in that training: the recorded offset and scale (whatever the training part of the
    file read now) and input shift. Without those records (a file saved without
    ``data_provenance``), the dataset's own scaling."""
    provenance = saved.provenance
    if name is None and data_dir is None:
        data_dir = provenance.get("data_dir")  # where the training run read it
    name = name or provenance.get("dataset") or "digits"
    split_seed = split_seed if split_seed is not None else provenance.get("split_seed", 0)
    dataset = load_dataset(name, data_dir, seed=split_seed)
    if "feature_scale" in provenance:
        dataset = renormalized(dataset, provenance["feature_offset"], provenance["feature_scale"])
    return shift_features(dataset, provenance.get("input_shift", 0))
