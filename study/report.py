"""``write_report``: CSV and Markdown tables and PNG figures of a study database.

Files written to the output folder (a figure only when the database holds cells for it):

- ``cells.csv``: every finished cell, one row each, settings and measurements.
- ``summary.csv``: every configuration, accuracy and angle summarised over its seeds.
- ``accuracy-vs-width.png``: accuracy against word width per rounding mode (fixed point cells
  whose quantities share one word width), the float reference dashed.
- ``accuracy-vs-area.png``, ``area.csv``: accuracy against the area of the matching processing
  element from synthesis, with the Pareto front of the designs above chance level (``chance``);
  needs Yosys and the synthesis command.
- ``rank-sparsity.png``: accuracy and angle against the rank of B grouped by sparsity (the
  paper's Figures 5 and 6), when the database holds cells of more than one rank.
- ``accuracy-vs-sparsity.png``: accuracy and angle against the sparsity of B, one line per rank
  (the paper's Figure 6, ranks 5 and 10 when the database holds them), when it holds cells of
  more than one sparsity at one rank.
- ``angles-over-training.png``: eq. 14's angle and the update's angle to BP's gradient against
  the epoch, one line per configuration (the paper's Figure 4), when cells recorded them.

Cells whose run diverged (status ``diverged``) have no accuracy: the tables count them per
configuration and list them with what diverged, the width figure marks a configuration whose
every seed diverged with a red cross at 0%, and the angle figure ends their lines with one.
- ``report.md``: the tables in Markdown, the figures and why any figure was left out.

The output depends only on the database's contents: rows are sorted by their settings, numbers
are written with fixed precision and the PNGs carry no date or version.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ssdfa.errors import SsdfaError
from ssdfa.user_files import write_atomically

from .area import AreaEstimator
from .cells import CURRENT_VERSIONS
from .chance import CHANCE_MARGIN, at_chance_level, chance_threshold
from .database import ResultsDatabase
from .records import (
    SETTING_COLUMNS,
    Group,
    Record,
    diverged_records,
    group_over_seeds,
    records_from_rows,
    shared_settings,
    varying_settings,
)

__all__ = ["write_report", "ReportResult", "REPORT_FILES"]

REPORT_FILES = (
    "cells.csv", "summary.csv", "accuracy-vs-width.png", "accuracy-vs-area.png", "area.csv",
    "rank-sparsity.png", "accuracy-vs-sparsity.png", "angles-over-training.png", "report.md",
)

_WIDTH_AXES = ("word", "rounding", "update_rounding", *(f for f in SETTING_COLUMNS if f.startswith("format_")))
_RANK_AXES = ("rank", "sparsity", "connections", "algorithm")


@dataclass
class ReportResult:
    """The files written and the notes about figures left out."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_report(db_path, out_dir, *, area: AreaEstimator | None = None, keys: set[str] | None = None) -> ReportResult:
    """Write the report of the study database ``db_path`` into ``out_dir`` (created if needed).

    ``area`` estimates PE areas for the area figure (default: synthesis, when available).
    ``keys`` restricts the report to those cells (a spec's), when the database holds more.
    """
    with ResultsDatabase.open_existing(db_path) as database:
        rows = database.rows()
    missing_note = None
    if keys is not None:
        held = len(rows)
        rows = [row for row in rows if row.key in keys]
        if held and not rows:
            raise SsdfaError(f"{db_path} holds none of the spec's cells ({len(keys)}): its {held} cells are of another "
                             "spec, or of the same spec with other --set options")
        if len(rows) < len(keys):
            missing_note = (f"{len(keys) - len({row.key for row in rows})} of the spec's {len(keys)} cells are not in "
                            "the database (not run yet)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Written into a folder of its own inside out_dir and moved into place when complete, so an
    # interrupted report leaves the previous one as it was.
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir))
    try:
        report = _write_files(staging, db_path, rows, area)
        for name in REPORT_FILES:  # a figure that is not drawn this time must not linger
            if (staging / name).exists():
                os.replace(staging / name, out_dir / name)
            else:
                (out_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.files = [out_dir / path.name for path in report.files]
    if missing_note:
        report.notes.insert(0, missing_note)
    return report


def _write_files(out_dir: Path, db_path, rows, area) -> ReportResult:
    """Every file of the report of ``rows`` into ``out_dir``."""
    report = ReportResult()
    # Cells computed under another version of the arithmetic or of the training are another
    # experiment: they are counted, not mixed in.
    outdated = [row for row in rows if row.config.get("versions") != CURRENT_VERSIONS]
    rows = [row for row in rows if row.config.get("versions") == CURRENT_VERSIONS]
    records = records_from_rows(rows)
    diverged = diverged_records(rows)
    failed = [row for row in rows if row.status == "failed"]
    groups = group_over_seeds(records)
    diverged_groups = group_over_seeds(diverged)
    shown = varying_settings(records + diverged, exclude=("seed",)) or ["dataset"]

    _write_csv(out_dir / "cells.csv", _cell_table(sorted(records + diverged, key=lambda r: r.key)), report)
    _write_csv(out_dir / "summary.csv", _summary_table(groups, diverged_groups, list(SETTING_COLUMNS[:-1])), report)

    sections = [_overview(Path(db_path).name, rows, records, failed, len(outdated), diverged)]
    sections.append("## Configurations\n\nAccuracy in %, over seeds: mean, standard deviation, minimum, maximum "
                    "(of the seeds that did not diverge; `diverged` counts those that did).\n\n"
                    + _markdown(_summary_table(groups, diverged_groups, shown)))
    sections.append(_width_section(groups, out_dir, report, diverged_groups))
    sections.append(_area_section(groups, out_dir, report, area if area is not None else AreaEstimator()))
    sections.append(_rank_section(groups, out_dir, report))
    sections.append(_sparsity_section(groups, out_dir, report, diverged_groups))
    sections.append(_angle_section(groups + diverged_groups, out_dir, report))
    if diverged:
        sections.append(_diverged_section(diverged, shown))
    if failed:
        sections.append("## Failed cells\n\n" + "\n".join(f"- `{row.key[:12]}`: {row.error}" for row in failed))
    if report.notes:
        sections.append("## Figures left out\n\n" + "\n".join(f"- {note}" for note in report.notes))
    write_atomically(out_dir / "report.md", "\n\n".join(s for s in sections if s).rstrip() + "\n")
    report.files.append(out_dir / "report.md")
    return report


# -- tables ------------------------------------------------------------------------------------


def _cell_table(records: list[Record]) -> list[dict]:
    return [
        {
            "key": r.key,
            **r.settings,
            "status": r.status,
            "test_accuracy": _fixed(r.test_accuracy, 6),
            "train_accuracy": _fixed(r.train_accuracy, 6),
            "angle_deg": _fixed(r.angle, 3),
            "seconds": _fixed(r.seconds, 2),
        }
        for r in records
    ]


def _summary_table(groups: list[Group], diverged_groups: list[Group], columns: list[str]) -> list[dict]:
    """One row per configuration, in settings order; a configuration whose every seed diverged
    has ``diverged`` in place of its accuracy."""
    diverged = {_settings_key(g): g for g in diverged_groups}
    rows = []
    for group in groups:
        accuracy = group.summary("test_accuracy")
        angle = group.summary("angle")
        lost = diverged.pop(_settings_key(group), None)
        rows.append((_settings_key(group), {
            **{c: group.settings[c] for c in columns},
            "seeds": group.seeds + (lost.seeds if lost else 0),
            "diverged": lost.seeds if lost else 0,
            "accuracy_mean": _fixed(accuracy[0] * 100, 2),
            "accuracy_std": _fixed(accuracy[1] * 100, 2),
            "accuracy_min": _fixed(accuracy[2] * 100, 2),
            "accuracy_max": _fixed(accuracy[3] * 100, 2),
            "angle_mean": _fixed(angle[0], 1) if angle else "",
        }))
    for key, group in diverged.items():
        rows.append((key, {
            **{c: group.settings[c] for c in columns}, "seeds": group.seeds, "diverged": group.seeds,
            "accuracy_mean": "diverged", "accuracy_std": "", "accuracy_min": "", "accuracy_max": "", "angle_mean": "",
        }))
    rows.sort(key=lambda item: item[0])
    return [row for _, row in rows]


def _settings_key(group: Group) -> tuple:
    # None first; numbers and strings each among themselves (as records sort).
    return tuple((v is not None, isinstance(v, str), v if v is not None else 0) for v in group.settings.values())


def _fixed(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _write_csv(path: Path, table: list[dict], report: ReportResult) -> None:
    buffer = io.StringIO()
    if table:
        writer = csv.DictWriter(buffer, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in table)
    write_atomically(path, buffer.getvalue())
    report.files.append(path)


def _markdown(table: list[dict]) -> str:
    if not table:
        return "(none)"
    columns = list(table[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        lines.append("| " + " | ".join("" if row[c] is None else str(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def _overview(db_name: str, rows, records: list[Record], failed, outdated: int, diverged: list[Record]) -> str:
    datasets = sorted({r.settings["dataset"] for r in records + diverged})
    lines = [
        f"# Study report: {db_name}",
        "",
        f"{len(rows)} cells in the database: {len(records)} finished, {len(diverged)} diverged, "
        f"{len(failed)} failed. Datasets: {', '.join(datasets) or 'none'}.",
    ]
    shared = shared_settings(records + diverged)
    if shared:
        # The tables show only what varies: what every cell shares (float or fixed point first)
        # is said once here, or two studies of one grid would read alike.
        lines += ["", "Every cell: " + ", ".join(f"{name} {value}" for name, value in shared.items()) + "."]
    if outdated:
        lines.append(f"\n{outdated} more cells were computed by another version of the arithmetic or "
                     f"the training ({CURRENT_VERSIONS} now) and are left out.")
    # Cells of one dataset and split read from two different folders saw different data.
    data_keys = ("dataset", "split_seed", "train_limit", "test_limit")
    fingerprints: dict[tuple, set] = {}
    for r in records:
        fingerprints.setdefault(tuple(r.settings[k] for k in data_keys), set()).add(r.fingerprint)
    for data, prints in sorted(fingerprints.items(), key=lambda item: str(item[0])):
        if len(prints) > 1:
            lines.append(f"\nWarning: the cells of dataset {data[0]!r} were trained on {len(prints)} different "
                         "sets of data (different data folders); their results are not comparable.")
    return "\n".join(lines)


# -- figures -----------------------------------------------------------------------------------


def _width_section(groups: list[Group], out_dir: Path, report: ReportResult, diverged_groups: list[Group]) -> str:
    from .plots import plot_width

    fixed = [g for g in groups if g.settings["precision"] == "fixed" and g.settings["word"] is not None]
    words = {g.settings["word"] for g in fixed}
    if len(words) < 2:
        report.notes.append("accuracy-vs-width.png skipped: the database has fixed-point cells of fewer than two word widths")
        return ""
    float_groups = [g for g in groups if g.settings["precision"] == "float"]
    records = [r for g in fixed for r in g.records]
    context = varying_settings(records, exclude=("seed", *_WIDTH_AXES))
    lines = [f for f in ("rounding", "update_rounding") if len({g.settings[f] for g in fixed}) > 1] or ["update_rounding"]
    path = out_dir / "accuracy-vs-width.png"
    ok = {_settings_key(g) for g in groups}
    lost = [g for g in diverged_groups if g.settings["precision"] == "fixed" and g.settings["word"] is not None
            and _settings_key(g) not in ok]
    plot_width(fixed, float_groups, context, lines, path, diverged=lost)
    report.files.append(path)
    table = []
    for group in sorted(fixed, key=lambda g: tuple(str(g.settings[f]) for f in context) + (g.settings["word"],)):
        stats = group.summary("test_accuracy")
        table.append({
            **{f: group.settings[f] for f in context}, "word": group.settings["word"],
            **{f: group.settings[f] for f in lines}, "seeds": group.seeds,
            "mean %": _fixed(stats[0] * 100, 2), "min %": _fixed(stats[2] * 100, 2), "max %": _fixed(stats[3] * 100, 2),
        })
    return ("## Accuracy against word width\n\n![accuracy against word width](accuracy-vs-width.png)\n\n"
            + _markdown(table))


def _area_section(groups: list[Group], out_dir: Path, report: ReportResult, estimator: AreaEstimator) -> str:
    from .plots import plot_area, subject

    fixed = [g for g in groups if g.settings["precision"] == "fixed"]
    if not fixed:
        report.notes.append("accuracy-vs-area.png skipped: the database has no fixed-point cells")
        return ""
    reason = estimator.unavailable()
    if reason:
        note = f"accuracy-vs-area.png skipped: {reason}"
        report.notes.append(note)
        return f"## Accuracy against area\n\nSkipped: {reason}."
    estimator.prefetch([(g.records[0].config, g.records[0].hardware_settings()) for g in fixed])
    points = []
    for group in fixed:
        area = estimator.area(group.records[0].config, group.records[0].hardware_settings())
        if area is None:
            continue
        stats = group.summary("test_accuracy")
        points.append({
            "area": area[estimator.metric], "accuracy": stats[0], "low": stats[2], "high": stats[3],
            "word": group.settings["word"], "label": f"{group.settings['algorithm']} {group.settings['update_rounding']}",
            "settings": group.settings, "synth": area,
            "chance": at_chance_level(stats[0], group.records[0].num_classes),
        })
    failures = "".join(f"\n- not synthesised: {failure}" for failure in sorted(set(estimator.failures)))
    if not points:
        report.notes.append("accuracy-vs-area.png skipped: no configuration could be synthesised")
        return f"## Accuracy against area\n\nSkipped: no configuration could be synthesised.{failures}"
    # A design at chance level learned nothing: its small area is no trade-off to offer.
    front = pareto_front([p for p in points if not p["chance"]])
    plotted = [g for g in fixed if any(p["settings"] is g.settings for p in points)]
    classes = sorted({g.records[0].num_classes for g in plotted if g.records[0].num_classes})
    path = out_dir / "accuracy-vs-area.png"
    plot_area(points, front, estimator.metric_label, subject(plotted), classes[0] if len(classes) == 1 else None, path)
    report.files.append(path)
    on_front = {id(p) for p in front}
    table = [
        {
            "dataset": p["settings"]["dataset"], "hidden": p["settings"]["hidden"], "algorithm": p["settings"]["algorithm"],
            "word": p["settings"]["word"], "update_rounding": p["settings"]["update_rounding"],
            **{k: p["synth"][k] for k in estimator.columns}, "accuracy_mean": _fixed(p["accuracy"] * 100, 2),
            "chance_level": "yes" if p["chance"] else "", "pareto": "yes" if id(p) in on_front else "",
        }
        for p in sorted(points, key=lambda p: (p["area"], -p["accuracy"], str(p["label"])))
    ]
    _write_csv(out_dir / "area.csv", table, report)
    thresholds = [chance_threshold(c) for c in classes]
    chance_note = (
        f"Designs at chance level (mean accuracy below chance + {CHANCE_MARGIN:g} x (1 - chance)"
        + (f": {', '.join(f'{t * 100:.0f}%' for t in thresholds)}" if thresholds else "")
        + ") are drawn as grey crosses and left out of the Pareto front."
    )
    return (f"## Accuracy against area\n\n{estimator.describe()}{failures}\n\n{chance_note}\n\n"
            "![accuracy against area](accuracy-vs-area.png)\n\n" + _markdown(table))


def _angle_section(groups: list[Group], out_dir: Path, report: ReportResult) -> str:
    """The paper's Figure 4: angles against the epoch, for the configurations that recorded them."""
    from .plots import plot_angles

    recorded = [g for g in groups if g.settings["algorithm"] != "bp"
                and any(any(a is not None for a in r.epoch_alignment) for r in g.records)]
    if not recorded:
        report.notes.append("angles-over-training.png skipped: no feedback cell recorded its angles per epoch")
        return ""
    lines = _informative(varying_settings([r for g in recorded for r in g.records], exclude=("seed",)), recorded)
    path = out_dir / "angles-over-training.png"
    plot_angles(recorded, lines, path)
    report.files.append(path)
    table = []
    for group in recorded:
        alignment = group.epoch_means("epoch_alignment")
        update = group.epoch_means("epoch_update")
        table.append({
            **{f: group.settings[f] for f in lines}, "seeds": group.seeds,
            "diverged": sum(r.status == "diverged" for r in group.records),
            "eq. 14, first epoch": _fixed(alignment[0], 1) if alignment else "",
            "eq. 14, last epoch": _fixed(alignment[-1], 1) if alignment else "",
            "update vs BP, first epoch": _fixed(update[0], 1) if update else "",
            "update vs BP, last epoch": _fixed(update[-1], 1) if update else "",
        })
    return ("## Angles over training (paper Figure 4)\n\nDegrees, mean over hidden layers and seeds: between B and "
            "the product of the weights above (eq. 14), and between the update and BP's gradient.\n\n"
            "![angles over training](angles-over-training.png)\n\n" + _markdown(table))


#: Settings that only fixed-point cells have (None for float ones, which ``precision`` tells).
_FIXED_ONLY = ("word", "rounding", "update_rounding", "overflow", *(f for f in SETTING_COLUMNS if f.startswith("format_")))


def _informative(fields: list[str], groups: list[Group]) -> list[str]:
    """``fields`` without the fixed-point settings that vary only by being None in float cells,
    so that a figure's labels stay short; at least ``algorithm``."""
    kept = [f for f in fields if f not in _FIXED_ONLY
            or len({g.settings[f] for g in groups if g.settings[f] is not None}) > 1]
    return kept or ["algorithm"]


def _diverged_section(diverged: list[Record], shown: list[str]) -> str:
    table = [
        {**{f: r.settings[f] for f in shown}, "seed": r.settings["seed"],
         "criterion": (r.divergence or {}).get("criterion", ""), "epoch": (r.divergence or {}).get("epoch", ""),
         "what diverged": (r.divergence or {}).get("message", "")}
        for r in diverged
    ]
    return ("## Diverged cells\n\nThese runs diverged (docs/model.md section 6.2) and report no accuracy.\n\n"
            + _markdown(table))


def pareto_front(points: list[dict]) -> list[dict]:
    """Points that no other point beats: at most the area and more accurate, or less area and as accurate."""
    front = []
    for p in points:
        dominated = any(
            q is not p and q["area"] <= p["area"] and q["accuracy"] >= p["accuracy"]
            and (q["area"] < p["area"] or q["accuracy"] > p["accuracy"])
            for q in points
        )
        if not dominated:
            front.append(p)
    return front


def _rank_section(groups: list[Group], out_dir: Path, report: ReportResult) -> str:
    from .plots import plot_rank

    feedback = [g for g in groups if g.settings["algorithm"] != "bp" and g.settings["rank"] is not None]
    # Only the contexts (dataset, network, arithmetic, ...) that hold more than one rank.
    context = varying_settings([r for g in feedback for r in g.records], exclude=("seed", *_RANK_AXES))
    ranks: dict[tuple, set] = {}
    for group in feedback:
        ranks.setdefault(tuple(group.settings[f] for f in context), set()).add(group.settings["rank"])
    feedback = [g for g in feedback if len(ranks[tuple(g.settings[f] for f in context)]) > 1]
    if not feedback:
        report.notes.append("rank-sparsity.png skipped: the database has no feedback cells that differ only in rank")
        return ""
    records = [r for g in feedback for r in g.records]
    context = varying_settings(records, exclude=("seed", *_RANK_AXES))
    path = out_dir / "rank-sparsity.png"
    plot_rank(feedback, context, path)
    report.files.append(path)
    table = []
    for group in sorted(feedback, key=lambda g: tuple(str(g.settings[f]) for f in context) + (-g.settings["sparsity"], g.settings["rank"])):
        stats = group.summary("test_accuracy")
        angle = group.summary("angle")
        table.append({
            **{f: group.settings[f] for f in context}, "sparsity %": _fixed(group.settings["sparsity"] * 100, 0),
            "rank": group.settings["rank"], "seeds": group.seeds, "accuracy mean %": _fixed(stats[0] * 100, 2),
            "accuracy std": _fixed(stats[1] * 100, 2), "angle mean": _fixed(angle[0], 1) if angle else "",
            "angle std": _fixed(angle[1], 1) if angle else "",
        })
    return ("## Accuracy and angle against rank, by sparsity (paper Figures 5 and 6)\n\n"
            "![accuracy and angle against rank](rank-sparsity.png)\n\n" + _markdown(table))


#: The ranks of the paper's Figure 6, drawn when the database holds them.
_FIGURE6_RANKS = (5, 10)


def _sparsity_section(groups: list[Group], out_dir: Path, report: ReportResult, diverged_groups: list[Group]) -> str:
    """The paper's Figure 6: accuracy and angle against sparsity at ranks 5 and 10 (or, without
    those, at every rank that has more than one sparsity)."""
    from .plots import plot_sparsity

    def feedback(candidates: list[Group]) -> list[Group]:
        return [g for g in candidates if g.settings["algorithm"] != "bp" and g.settings["sparsity"] is not None]

    ok = {_settings_key(g) for g in groups}
    finished, lost = feedback(groups), [g for g in feedback(diverged_groups) if _settings_key(g) not in ok]
    records = [r for g in finished + lost for r in g.records]
    # Formats and modes that are only None in float cells are told apart by ``precision``:
    # left out, they would fill the panel titles.
    context = [f for f in varying_settings(records, exclude=("seed", *_RANK_AXES)) if f not in _FIXED_ONLY
               or len({r.settings[f] for r in records if r.settings[f] is not None}) > 1]

    def line(group: Group) -> tuple:
        return tuple(group.settings[f] for f in context) + (group.settings["rank"],)

    sparsities: dict[tuple, set] = {}
    for group in finished + lost:
        sparsities.setdefault(line(group), set()).add(group.settings["sparsity"])
    lines = {key for key, values in sparsities.items() if len(values) > 1}
    preferred = {key for key in lines if key[-1] in _FIGURE6_RANKS}
    lines = preferred or lines
    finished = [g for g in finished if line(g) in lines]
    lost = [g for g in lost if line(g) in lines]
    if not finished and not lost:
        report.notes.append("accuracy-vs-sparsity.png skipped: the database has no feedback cells that differ "
                            "only in sparsity")
        return ""
    path = out_dir / "accuracy-vs-sparsity.png"
    plot_sparsity(finished, context, path, diverged=lost)
    report.files.append(path)
    diverged_seeds = {_settings_key(g): g.seeds for g in feedback(diverged_groups)}
    table = []
    for group in sorted(finished + lost, key=lambda g: tuple(str(g.settings[f]) for f in context)
                        + (g.settings["rank"], g.settings["sparsity"])):
        stats = group.summary("test_accuracy") if _settings_key(group) in ok else None
        angle = group.summary("angle") if _settings_key(group) in ok else None
        table.append({
            **{f: group.settings[f] for f in context}, "rank": group.settings["rank"],
            "sparsity %": _fixed(group.settings["sparsity"] * 100, 0), "s": group.settings["connections"],
            "seeds": group.seeds if stats else 0, "diverged": diverged_seeds.get(_settings_key(group), 0),
            "accuracy mean %": _fixed(stats[0] * 100, 2) if stats else "diverged",
            "accuracy std": _fixed(stats[1] * 100, 2) if stats else "",
            "angle mean": _fixed(angle[0], 1) if angle else "", "angle std": _fixed(angle[1], 1) if angle else "",
        })
    return ("## Accuracy and angle against sparsity, by rank (paper Figure 6)\n\n"
            "Bars: one standard deviation over seeds either side.\n\n"
            "![accuracy and angle against sparsity](accuracy-vs-sparsity.png)\n\n" + _markdown(table))
