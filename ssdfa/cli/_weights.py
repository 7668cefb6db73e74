"""``ssdfa train --save FILE.npz``: the option, the early check of its target, and the write.

Kept apart from ``train.py`` so that the training command only adds the option and calls these.
A fixed-point run saves raw weights, feedback tables and LFSR states; a float run saves float64
weights and feedback matrices, which ``ssdfa eval`` runs in the model and the RTL paths refuse
(docs/api.md, "Saved networks").
"""

from __future__ import annotations

from pathlib import Path


def add_save_argument(parser) -> None:
    parser.add_argument(
        "--save",
        default=None,
        metavar="FILE.npz",
        help="write the trained network (weights, feedback tables, LFSR states, formats, spec; SHA-256) "
        "for ssdfa eval, ssdfa verilog --weights and ssdfa cosim --load-weights",
    )


def check_save_target(path: str | None) -> None:
    """Refuse, before training, a target that cannot receive the file (named, one line)."""
    if path is not None:
        from ssdfa.user_files import check_output_file

        check_output_file(path, "--save")


def _absolute_source(name: str, data_dir) -> tuple[str, str | None]:
    """(dataset name, data directory) as absolute paths, so that ``ssdfa eval`` finds the data
    from any working directory: a relative features path is resolved as ``load_dataset`` does."""
    from ssdfa.model.datasets import FEATURES_PREFIX

    if name.startswith(FEATURES_PREFIX):
        path = Path(name[len(FEATURES_PREFIX):]).expanduser()
        if not path.is_absolute() and data_dir is not None:
            path = Path(data_dir) / path
        name = FEATURES_PREFIX + str(path.resolve())
    return name, None if data_dir is None else str(Path(data_dir).expanduser().resolve())


def save_trained(
    path: str, result, dataset, split_seed: int, train_limit: int | None, input_shift: int = 0, data_dir=None
) -> dict:
    """Write ``result.network`` to ``path`` with the run's provenance; return ``{"path", "sha256"}``."""
    from ssdfa.model.weight_file import save_network

    name, data_dir = _absolute_source(dataset.name, data_dir)
    provenance = {
        "written_by": "ssdfa train",
        "dataset": name,
        "data_dir": data_dir,
        "split_seed": split_seed,
        "train_limit": train_limit,
        # How raw features became the network's inputs: (raw - offset) / scale from the training
        # split, then times 2^-input_shift. Evaluation and the hardware's host must do the same.
        "normalization": dataset.normalization.value,
        "feature_offset": [float(v) for v in dataset.feature_offset],
        "feature_scale": [float(v) for v in dataset.feature_scale],
        "input_shift": input_shift,
        "epochs": result.options.epochs,
        "batch": result.options.batch,
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
    }
    saved = save_network(path, result.network, provenance=provenance)
    return {"path": str(path), "sha256": saved.sha256}


def dataset_as_trained(saved, name: str | None = None, data_dir=None, split_seed: int | None = None):
    """The dataset a saved network was trained on (or ``name``), its features scaled as in that
    training: the saved offset and scale (the training split's statistics) and input shift."""
    from ssdfa.model.datasets import load_dataset, renormalized, shift_features

    provenance = saved.provenance
    if name is None and data_dir is None:
        data_dir = provenance.get("data_dir")  # where the training run read it
    name = name or provenance.get("dataset") or "digits"
    split_seed = split_seed if split_seed is not None else provenance.get("split_seed", 0)
    dataset = load_dataset(name, data_dir, seed=split_seed)
    if "feature_scale" in provenance:
        # Whatever the training part of the file evaluated on, the inputs the network saw.
        dataset = renormalized(dataset, provenance["feature_offset"], provenance["feature_scale"])
    return shift_features(dataset, provenance.get("input_shift", 0))
