"""Redraw a committed report from its own tables, without the study database it came from.

A report folder keeps ``cells.csv`` (every finished cell's settings and measurements) and, with
areas, ``area.csv``; the study database is not committed. ``python -m ssdfa.study.redraw DIR
SPEC.toml`` rebuilds a database from ``cells.csv`` (each row's configuration is the spec cell of
the same key; its result is the row's accuracies and angle) and runs ``write_report`` on it into
``DIR`` again, with the PE areas of ``area.csv``: the areas of the PE as it was when the study
ran, which the report's text quotes. The CSV keeps six digits of each accuracy, so the exact
fraction of the test set is restored from the test set's size (``--test-samples``), and the
tables come out as they were; the figures and the Markdown follow the current report code.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

from ssdfa.errors import SsdfaError

from .area import AREA_COLUMNS, AreaEstimator
from .database import ResultsDatabase
from .report import write_report
from .spec import load_spec

__all__ = ["database_from_cells_csv", "recorded_areas", "redraw"]

#: How the committed areas were counted (``ssdfa report``'s synthesis, at the time of the study).
RECORDED_AREA_SOURCE = (
    "synthesised for iCE40 by Yosys (synth_ice40, multipliers in LUTs: no DSPs) when the study was run, "
    "as recorded in area.csv"
)


def database_from_cells_csv(
    cells_csv: Path, spec, db_path: Path, *, features: int, classes: int, test_samples: int,
) -> int:
    """Write a study database at ``db_path`` holding the finished cells of ``cells_csv``.

    ``spec`` gives each row's configuration (by its key); ``features``, ``classes`` and
    ``test_samples`` are the dataset's, which ``cells.csv`` does not record. Returns the number
    of cells.
    """
    by_key = {cell.key: cell for cell in spec.cells}
    rows = _read_csv(cells_csv)
    with ResultsDatabase.create_or_open(db_path) as database:
        for number, row in enumerate(rows, start=2):
            cell = by_key.get(row.get("key", ""))
            if cell is None:
                raise SsdfaError(f"{cells_csv}, line {number}: cell {row.get('key')!r} is not a cell of {spec.name}")
            if row.get("status", "ok") != "ok":
                # cells.csv keeps neither the criterion nor the message of a diverged cell.
                raise SsdfaError(f"{cells_csv}, line {number}: cell {row['key'][:12]} is {row['status']}; a "
                                 "report with diverged cells is redrawn only by running its study again")
            try:
                result, seconds = _result(row, test_samples, classes, features), float(row["seconds"])
            except (KeyError, ValueError, TypeError) as exc:
                raise SsdfaError(f"{cells_csv}, line {number}: {type(exc).__name__}: {exc}") from None
            database.record(cell, result, None, seconds, spec.name)
    return len(rows)


def _result(row: dict, test_samples: int, classes: int, features: int) -> dict:
    """A ``run_cell`` result from a ``cells.csv`` row (the fields a report reads)."""
    # Six digits pin the count of correct test images down exactly (n << 10**6 / 2).
    correct = round(float(row["test_accuracy"]) * test_samples)
    if abs(correct / test_samples - float(row["test_accuracy"])) > 1e-6:
        raise ValueError(f"test accuracy {row['test_accuracy']} is not a fraction of {test_samples} test samples")
    return {
        "test_accuracy": correct / test_samples,
        "train_accuracy": float(row["train_accuracy"]) if row["train_accuracy"] else None,
        "angles": [float(row["angle_deg"])] if row["angle_deg"] else None,
        "num_classes": classes,
        "num_features": features,
    }


def recorded_areas(area_csv: Path):
    """A ``synthesize`` stand-in that answers from ``area_csv``, by hidden size, word and update rounding."""
    table = {
        (row["hidden"], int(row["word"]), row["update_rounding"]): {c: int(row[c]) for c in AREA_COLUMNS}
        for row in _read_csv(area_csv)
    }

    def synthesize(layer: dict) -> dict:
        weight = layer["formats"]["weight"]
        word = sum(int(n) for n in weight[weight.index("(") + 1 : -1].split(","))
        key = (str(layer["layer"]["neurons"]), word, layer["modes"]["update_rounding"])
        if key not in table:
            raise SsdfaError(f"{area_csv} has no area for hidden {key[0]}, {key[1]} bits, {key[2]}")
        return table[key]

    return synthesize


def redraw(
    report_dir: Path, spec_path: Path, overrides: list[str], *, features: int, classes: int, test_samples: int,
) -> list[Path]:
    """Rewrite the report in ``report_dir`` from its ``cells.csv`` (and ``area.csv``); the files written."""
    spec = load_spec(spec_path, overrides)
    area_csv = report_dir / "area.csv"
    if area_csv.exists():
        estimator = AreaEstimator(synthesize=recorded_areas(area_csv), description=RECORDED_AREA_SOURCE)
    else:
        estimator = AreaEstimator(disabled=True)
    with tempfile.TemporaryDirectory() as scratch:
        # The report's title names the database: the one the study wrote, beside its spec.
        db_path = Path(scratch) / spec_path.with_suffix(".db").name
        database_from_cells_csv(
            report_dir / "cells.csv", spec, db_path, features=features, classes=classes, test_samples=test_samples,
        )
        return write_report(db_path, report_dir, area=estimator).files


def _read_csv(path: Path) -> list[dict]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise SsdfaError(f"cannot read {path}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssdfa.study.redraw", description=__doc__.splitlines()[0])
    parser.add_argument("report_dir", type=Path, metavar="DIR", help="a report folder with cells.csv")
    parser.add_argument("spec", type=Path, metavar="SPEC.toml", help="the spec the study ran")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="the overrides the study ran with; repeatable")
    parser.add_argument("--features", type=int, required=True, help="the dataset's features (64 for digits, 784 for MNIST)")
    parser.add_argument("--classes", type=int, required=True, help="the dataset's classes")
    parser.add_argument("--test-samples", type=int, required=True, help="the test set's size the cells were measured on")
    args = parser.parse_args(argv)
    for name in ("features", "classes", "test_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")
    try:
        for path in redraw(
            args.report_dir, args.spec, args.overrides,
            features=args.features, classes=args.classes, test_samples=args.test_samples,
        ):
            print(path)
    except SsdfaError as exc:
        print(f"ssdfa: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
