"""Finished cells as flat records, and their grouping over seeds, for tables and plots.

A record is one finished cell: its settings (one column each, the word width and the
feedback's sparsity derived) and its measurements. A group is every record that differs only
in its seed; its accuracy is summarised by the mean, the sample standard deviation, the minimum
and the maximum over the seeds.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


from .cells import QUANTITIES, format_word
from .database import CellRow

__all__ = [
    "Record", "Group", "records_from_rows", "diverged_records", "group_over_seeds", "SETTING_COLUMNS",
    "varying_settings", "shared_settings",
]

#: The settings of a record, in table order (``seed`` last, so that a group drops it).
SETTING_COLUMNS = (
    "dataset", "hidden", "activation", "epochs", "batch", "shift_steps", "keep", "train_limit", "test_limit",
    "split_seed", "input_shift", "algorithm", "connections", "sparsity", "rank", "feedback_gain", "connectivity", "precision", "word",
    *(f"format_{q}" for q in QUANTITIES),
    "rounding", "update_rounding", "overflow", "shift", "seed",
)


@dataclass(frozen=True)
class Record:
    key: str
    settings: dict  #: SETTING_COLUMNS -> str/int/float/None
    test_accuracy: float | None  #: None for a run that diverged
    train_accuracy: float | None
    angle: float | None  #: mean over hidden layers, degrees (None for BP)
    seconds: float
    fingerprint: str | None  #: of the data trained and tested on
    num_features: int | None
    num_classes: int | None
    config: dict
    status: str = "ok"  #: "ok" or "diverged"
    #: Per epoch, the mean over hidden layers of eq. 14 and of the update's angle to BP (None
    #: where undefined); empty for cells computed before angles were recorded per epoch.
    epoch_alignment: tuple = ()
    epoch_update: tuple = ()
    divergence: dict | None = None

    def hardware_settings(self) -> dict:
        """The settings plus the dataset's features and classes (what a layer configuration needs)."""
        return {**self.settings, "num_features": self.num_features, "num_classes": self.num_classes}


@dataclass(frozen=True)
class Group:
    settings: dict  #: SETTING_COLUMNS without seed
    records: tuple[Record, ...]

    @property
    def seeds(self) -> int:
        return len(self.records)

    def summary(self, field: str) -> tuple[float, float, float, float] | None:
        """(mean, standard deviation, min, max) of a measurement over the seeds, or None."""
        values = [getattr(r, field) for r in self.records if getattr(r, field) is not None]
        if not values:
            return None
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), spread, min(values), max(values)

    def epoch_means(self, field: str) -> list:
        """Per epoch, the mean of a per-epoch angle (``epoch_alignment``, ``epoch_update``)
        over the seeds that reached that epoch with a value; None where none did."""
        series = [getattr(r, field) for r in self.records]
        means = []
        for epoch in range(max(len(values) for values in series)):
            present = [values[epoch] for values in series if epoch < len(values) and values[epoch] is not None]
            means.append(statistics.fmean(present) if present else None)
        while means and means[-1] is None:
            means.pop()
        return means


def records_from_rows(rows: list[CellRow], status: str = "ok") -> list[Record]:
    """Rows of ``status`` ('ok': finished with an accuracy) as records, sorted by their
    settings (then key): the same DB, the same order."""
    records = []
    for row in rows:
        if row.status != status or row.result is None:
            continue
        config, result = row.config, row.result
        diverged = status == "diverged"
        records.append(
            Record(
                key=row.key,
                settings=_settings(config, result),
                test_accuracy=None if diverged else float(result["test_accuracy"]),
                train_accuracy=None if diverged else _optional_float(result.get("train_accuracy")),
                angle=_mean(result.get("angles")),
                seconds=float(row.seconds),
                fingerprint=result.get("data_fingerprint"),
                num_features=result.get("num_features"),
                num_classes=result.get("num_classes"),
                config=config,
                status=row.status,
                epoch_alignment=tuple(_mean(a) for a in result.get("epoch_alignment_angles") or ()),
                epoch_update=tuple(_mean(a) for a in result.get("epoch_update_angles") or ()),
                divergence=result.get("divergence"),
            )
        )
    records.sort(key=lambda r: (_sort_key(r.settings), r.key))
    return records


def diverged_records(rows: list[CellRow]) -> list[Record]:
    """The rows of runs that diverged, as records without accuracy."""
    return records_from_rows(rows, status="diverged")


def _mean(angles) -> float | None:
    finite = [a for a in (angles or []) if a is not None and math.isfinite(a)]
    return statistics.fmean(finite) if finite else None


def group_over_seeds(records: list[Record]) -> list[Group]:
    """Records grouped by every setting but the seed, in record order."""
    groups: dict[tuple, list[Record]] = {}
    for record in records:
        settings = {k: v for k, v in record.settings.items() if k != "seed"}
        groups.setdefault(tuple(settings.items()), []).append(record)
    return [Group(dict(key), tuple(members)) for key, members in groups.items()]


def varying_settings(records: list[Record], exclude: tuple[str, ...] = ()) -> list[str]:
    """The settings that take more than one value among ``records`` (table order)."""
    return [
        column for column in SETTING_COLUMNS
        if column not in exclude and len({_hashable(r.settings[column]) for r in records}) > 1
    ]


def shared_settings(records: list[Record]) -> dict:
    """The settings that every one of ``records`` has, with the same value, other than None and
    the seed: ``precision`` first, then in table order."""
    if not records:
        return {}
    order = ["precision", *(c for c in SETTING_COLUMNS if c not in ("precision", "seed"))]
    shared = {}
    for column in order:
        values = {_hashable(r.settings[column]) for r in records}
        if len(values) == 1 and (value := values.pop()) is not None:
            shared[column] = value
    return shared


def _settings(config: dict, result: dict) -> dict:
    outputs = result.get("num_classes")
    formats = config.get("formats") or {}
    words = {format_word(f) for f in formats.values()}
    algorithm = config["algorithm"]
    connections = config["connections"]
    if algorithm == "dfa":
        connections = outputs
    sparsity = None
    if algorithm != "bp" and connections is not None and outputs:
        sparsity = round(1.0 - connections / outputs, 6)
    rank = config["rank"]
    if algorithm != "bp" and rank is None and outputs:
        rank = min(outputs, min(config["hidden"]))
    settings = {
        "dataset": config["dataset"],
        "hidden": "x".join(str(n) for n in config["hidden"]),
        "activation": config["activation"],
        "epochs": config["epochs"],
        "batch": config["batch"],
        "shift_steps": ",".join(map(str, config.get("shift_steps") or ())) or None,
        "keep": config.get("keep", "last"),
        "train_limit": config["train_limit"],
        "test_limit": config["test_limit"],
        "split_seed": config["split_seed"],
        "input_shift": config.get("input_shift", 0),
        "algorithm": algorithm,
        "connections": connections,
        "sparsity": sparsity,
        "rank": rank,
        # As trained: a cell without a gain took the rule's, which its result records.
        "feedback_gain": result.get("feedback_gain", config.get("feedback_gain")),
        "connectivity": config.get("connectivity"),
        "precision": config["precision"],
        "word": words.pop() if len(words) == 1 else None,
        **{f"format_{q}": formats.get(q) for q in QUANTITIES},
        "rounding": config["rounding"],
        "update_rounding": config["update_rounding"],
        "overflow": config["overflow"],
        "shift": result.get("shift", config["shift"]),
        "seed": config["seed"],
    }
    return settings


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _sort_key(settings: dict) -> tuple:
    # None sorts first; numbers and strings each compare among themselves.
    return tuple((v is not None, isinstance(v, str), v if v is not None else 0) for v in settings.values())
