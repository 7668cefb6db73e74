"""``ssdfa train --save FILE.npz``: the option, the early check of its target, and the write.

Kept apart from ``train.py`` so that the training command only adds the option and calls these.
A fixed-point run saves raw weights, feedback tables and LFSR states; a float run saves float64
weights and feedback matrices, which ``ssdfa eval`` runs in the model and the RTL paths refuse
(docs/api.md, "Saved networks").
"""

from __future__ import annotations

import os

from ssdfa.errors import SsdfaError


def add_save_argument(parser) -> None:
    parser.add_argument(
        "--save",
        default=None,
        metavar="FILE.npz",
        help="write the trained network (weights, feedback tables, LFSR states, formats, spec; SHA-256) "
        "for ssdfa eval, ssdfa verilog --weights and ssdfa cosim --load-weights",
    )


def check_save_target(path: str | None, dataset: str | None = None, data_dir=None, option: str = "--save") -> None:
    """Refuse, before training, a target that cannot receive the file, or that is the features
    file the run reads (``dataset`` ``features:PATH``): it would be replaced by the weights."""
    if path is None:
        return
    from ssdfa.model.datasets import features_file
    from ssdfa.user_files import check_output_file

    check_output_file(path, option)
    features = None if dataset is None else features_file(dataset, data_dir)
    if features is not None:
        if os.path.realpath(features) == os.path.realpath(path):
            raise SsdfaError(f"{option} {path} is the features file the run reads ({dataset}); save elsewhere")


def save_trained(
    path: str, result, dataset, split_seed: int, train_limit: int | None, input_shift: int = 0, data_dir=None
) -> dict:
    """Write ``result.network`` to ``path`` with the run's provenance; return ``{"path", "sha256"}``."""
    from ssdfa.model.training_data import data_provenance
    from ssdfa.model.weight_file import save_network

    provenance = {
        "written_by": "ssdfa train",
        # Where the data came from and how raw features became inputs (model/training_data.py).
        **data_provenance(dataset, split_seed=split_seed, input_shift=input_shift, data_dir=data_dir),
        "train_limit": train_limit,
        "epochs": result.options.epochs,
        "batch": result.options.batch,
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
    }
    saved = save_network(path, result.network, provenance=provenance)
    return {"path": str(path), "sha256": saved.sha256}
