"""The report's figures (matplotlib, Agg backend): same groups in, same PNG bytes out.

Each figure has one panel per *context*: the settings that vary in the data but are neither on
the figure's axes nor its lines (dataset, network, algorithm, ...). Points are the mean over
seeds; error bars span the minimum to the maximum over seeds. Every figure's title names the
dataset and the network (``subject``), every accuracy axis shows chance level (``chance``),
and a log axis gets at least three labelled ticks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from ssdfa.user_files import write_atomically

from .chance import chance_accuracy, chance_threshold
from .records import Group

__all__ = ["plot_width", "plot_area", "plot_rank", "plot_sparsity", "plot_angles", "subject", "PNG_METADATA"]

#: No version or date in the PNG, so that the same data gives the same bytes.
PNG_METADATA = {"Software": None}
_DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _panels(groups: Sequence[Group], context_fields: Sequence[str]) -> dict[str, list[Group]]:
    panels: dict[str, list[Group]] = {}
    fields = [f for f in ("dataset", "hidden", "epochs") if f not in context_fields] + list(context_fields)
    for group in groups:
        title = ", ".join(f"{_short(f)}={group.settings[f]}" for f in fields)
        panels.setdefault(title, []).append(group)
    return panels


def _short(field: str) -> str:
    return {"update_rounding": "update", "format_weight": "W", "hidden": "hidden"}.get(field, field)


def _grid(plt, count: int, width: float = 5.0, height: float = 3.6):
    columns = min(count, 2)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for extra in axes.flat[count:]:
        extra.set_visible(False)
    return figure, list(axes.flat)


def _errorbar(ax, xs, stats, **style) -> None:
    means = [s[0] * 100 for s in stats]
    # max(0, ...): the mean of equal values can differ from them in the last bit.
    below = [max(0.0, s[0] - s[2]) * 100 for s in stats]
    above = [max(0.0, s[3] - s[0]) * 100 for s in stats]
    ax.errorbar(xs, means, yerr=[below, above], capsize=3, marker="o", markersize=4, linewidth=1.2, **style)


def _save(plt, figure, path: Path):
    figure.tight_layout()
    # Rendered in memory, then written whole (never a truncated PNG).
    image = io.BytesIO()
    try:
        figure.savefig(image, format="png", dpi=_DPI, metadata=PNG_METADATA)
    finally:
        plt.close(figure)
    write_atomically(path, image.getvalue())
    return figure


def subject(groups: Sequence[Group]) -> str:
    """The dataset(s) and network(s) of ``groups``, and their arithmetic when they share it:
    ``digits, network 64-64-10 relu, 5 epochs; fixed point``.

    The network is written as its layer sizes, input to output.
    """
    parts = []
    for group in groups:
        record = group.records[0]
        sizes = [record.num_features, *group.settings["hidden"].split("x"), record.num_classes]
        settings = group.settings
        part = (f"{settings['dataset']}, network {'-'.join('?' if n is None else str(n) for n in sizes)} "
                f"{settings['activation']}, {settings['epochs']} epoch{'s' if settings['epochs'] != 1 else ''}")
        if part not in parts:
            parts.append(part)
    # Float or fixed point, when every group shares it (else the panels or the legend say it).
    precisions = {group.settings["precision"] for group in groups}
    arithmetic = {"float": "float", "fixed": "fixed point"}.get(precisions.pop()) if len(precisions) == 1 else None
    return "; ".join(parts) + (f"; {arithmetic}" if arithmetic else "")


def _classes(groups: Sequence[Group]) -> int | None:
    """The number of classes, when every group has the same one."""
    classes = {group.records[0].num_classes for group in groups}
    return classes.pop() if len(classes) == 1 and None not in classes else None


def _chance(ax, classes: int | None) -> None:
    """Chance level (1/classes) dotted, and the band of accuracies counted as chance shaded."""
    if classes is None:
        return
    ax.axhspan(0, chance_threshold(classes) * 100, color="0.85", alpha=0.5, linewidth=0, zorder=0)
    ax.axhline(chance_accuracy(classes) * 100, color="0.4", linestyle=":", linewidth=1,
               label=f"chance (1/{classes}); shaded: at chance level")


def _log_ticks(ax, values: Sequence[float]) -> None:
    """Plain-number ticks on a log x axis, at least three of them in view.

    matplotlib labels only the powers of ten, which a span of less than a decade leaves with
    one or two labels: use the first of these mantissa sets that gives four ticks, else the
    densest if it gives three, else widen the view until it does.
    """
    import math

    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    low, high = min(values) / 1.1, max(values) * 1.1
    ticks: list[float] = []
    for _ in range(8):
        for mantissas in ((1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
            ticks = [m * 10 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                     for m in mantissas if low <= m * 10 ** e <= high]
            if len(ticks) >= 4:
                break
        if len(ticks) >= 3:
            break
        low, high = low / 1.25, high * 1.25
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_width(groups: Sequence[Group], float_groups: Sequence[Group], context_fields: Sequence[str],
               line_fields: Sequence[str], path: Path, diverged: Sequence[Group] = ()):
    """Test accuracy against word width, one line per rounding mode; float as a dashed line;
    configurations whose every seed diverged as red crosses at 0%.

    Returns the (closed) figure, for inspection.
    """
    plt = _pyplot()
    panels = _panels(groups, context_fields)
    lost = _panels(diverged, context_fields)
    figure, axes = _grid(plt, len(panels), width=7.0)
    for ax, (title, members) in zip(axes, panels.items()):
        lines: dict[str, list[Group]] = {}
        for group in members:
            label = " / ".join(str(group.settings[f]) for f in line_fields) or "fixed"
            lines.setdefault(label, []).append(group)
        for label, line in lines.items():
            line = sorted(line, key=lambda g: g.settings["word"])
            _errorbar(ax, [g.settings["word"] for g in line], [g.summary("test_accuracy") for g in line], label=label)
        for reference in _matching_float(members[0], float_groups, context_fields):
            mean = reference.summary("test_accuracy")[0] * 100
            ax.axhline(mean, color="black", linestyle="--", linewidth=1, label=f"float ({mean:.1f}%)")
        _chance(ax, _classes(members))
        crosses = lost.get(title, [])
        if crosses:
            ax.plot([g.settings["word"] for g in crosses], [0] * len(crosses), "x", color="red", markersize=8,
                    markeredgewidth=2, label="diverged", clip_on=False)
        words = sorted({g.settings["word"] for g in members + crosses})
        ax.set_xticks(words)
        ax.set_xlabel("word width (bits, every quantity)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(title, fontsize=8)
        ax.legend(title=" / ".join(_short(f) for f in line_fields) or None, fontsize=7, title_fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside: never over a line
    figure.suptitle(f"Test accuracy against word width\n{subject(groups)}", fontsize=9)
    return _save(plt, figure, path)


def _matching_float(group: Group, float_groups: Sequence[Group], context_fields: Sequence[str]) -> list[Group]:
    """The float runs of ``group``'s network and training: every setting but the arithmetic's equal.

    (``context_fields`` is what the panels vary; a float run must match beyond it too, or the
    reference of another network would be drawn.)
    """
    arithmetic = ("precision", "word", "rounding", "update_rounding", "overflow")
    shared = [f for f in group.settings if f not in arithmetic and not f.startswith("format_")]
    return [g for g in float_groups if all(g.settings[f] == group.settings[f] for f in shared)]


def plot_area(points: Sequence[dict], front: Sequence[dict], metric: str, title: str, classes: int | None,
              path: Path):
    """Test accuracy against PE area; the Pareto front (no cheaper point is as accurate) marked.

    ``points``: dicts with ``area``, ``accuracy`` (mean, fraction), ``low``, ``high``, ``label``
    and ``chance`` (true for a design at chance level: drawn apart as grey crosses, and never
    on ``front``). ``title`` names the dataset and network; ``classes`` gives chance level.
    Returns the (closed) figure, for inspection.
    """
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8.4, 4.6))
    learned = [p for p in points if not p["chance"]]
    for label in sorted({p["label"] for p in learned}):
        chosen = [p for p in learned if p["label"] == label]
        ax.errorbar(
            [p["area"] for p in chosen], [p["accuracy"] * 100 for p in chosen],
            yerr=[[max(0.0, p["accuracy"] - p["low"]) * 100 for p in chosen],
                  [max(0.0, p["high"] - p["accuracy"]) * 100 for p in chosen]],
            fmt="o", markersize=4, capsize=2, label=label,
        )
    at_chance = [p for p in points if p["chance"]]
    if at_chance:
        ax.scatter([p["area"] for p in at_chance], [p["accuracy"] * 100 for p in at_chance], marker="x", s=18,
                   color="0.45", linewidths=1, label=f"at chance level ({len(at_chance)} designs, not on the front)")
    _chance(ax, classes)
    ordered = sorted(front, key=lambda p: p["area"])
    ax.step([p["area"] for p in ordered], [p["accuracy"] * 100 for p in ordered], where="post",
            color="black", linewidth=1, label="Pareto front")
    for p in ordered:
        ax.annotate(f"{p['word']}b", (p["area"], p["accuracy"] * 100), textcoords="offset points",
                    xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    _log_ticks(ax, [p["area"] for p in points])
    ax.set_xlabel(f"PE area ({metric}, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Test accuracy against PE area\n{title}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside: never over a point
    return _save(plt, figure, path)


def plot_rank(groups: Sequence[Group], context_fields: Sequence[str], path: Path):
    """Accuracy (top) and angle (bottom) against the rank of B, one line per sparsity (paper Fig. 5).

    Returns the (closed) figure, for inspection.
    """
    plt = _pyplot()
    panels = _panels(groups, context_fields)
    figure, axes = plt.subplots(2, len(panels), figsize=(5.0 * len(panels), 6.4), squeeze=False)
    for column, (title, members) in enumerate(panels.items()):
        lines: dict[float, list[Group]] = {}
        for group in members:
            lines.setdefault(group.settings["sparsity"], []).append(group)
        for sparsity in sorted(lines, reverse=True):
            line = sorted(lines[sparsity], key=lambda g: g.settings["rank"])
            ranks = [g.settings["rank"] for g in line]
            label = f"sparsity {sparsity * 100:.0f}%"
            _errorbar(axes[0][column], ranks, [g.summary("test_accuracy") for g in line], label=label)
            angles = [(r, g.summary("angle")) for r, g in zip(ranks, line) if g.summary("angle") is not None]
            if angles:
                axes[1][column].errorbar(
                    [r for r, _ in angles], [s[0] for _, s in angles],
                    yerr=[[max(0.0, s[0] - s[2]) for _, s in angles], [max(0.0, s[3] - s[0]) for _, s in angles]],
                    capsize=3, marker="o", markersize=4, linewidth=1.2, label=label,
                )
        _chance(axes[0][column], _classes(members))
        axes[0][column].set_title(title, fontsize=8)
        axes[0][column].set_ylabel("test accuracy (%)")
        axes[1][column].set_ylabel("angle between B and W (degrees)")
        for ax in (axes[0][column], axes[1][column]):
            ax.set_xlabel("rank of B")
            ax.legend(fontsize=7)
    figure.suptitle(f"Accuracy and alignment against the rank of B\n{subject(groups)}", fontsize=9)
    return _save(plt, figure, path)


def plot_sparsity(groups: Sequence[Group], context_fields: Sequence[str], path: Path,
                  diverged: Sequence[Group] = ()):
    """Accuracy (top) and angle (bottom) against the sparsity of B, one line per rank (paper
    Fig. 6); bars span one standard deviation over seeds either side, as in the paper.
    Configurations whose every seed diverged are red crosses at 0% on the accuracy axis."""
    plt = _pyplot()
    panels = _panels(groups, context_fields)
    lost = _panels(diverged, context_fields)
    titles = list(panels) + [t for t in lost if t not in panels]
    figure, axes = plt.subplots(2, len(titles), figsize=(5.0 * len(titles), 6.4), squeeze=False)
    for column, title in enumerate(titles):
        top, bottom = axes[0][column], axes[1][column]
        lines: dict[int, list[Group]] = {}
        for group in panels.get(title, []):
            lines.setdefault(group.settings["rank"], []).append(group)
        for index, rank in enumerate(sorted(lines)):
            line = sorted(lines[rank], key=lambda g: g.settings["sparsity"])
            style = {"capsize": 3, "marker": "o", "markersize": 4, "linewidth": 1.2, "color": f"C{index % 10}",
                     "label": f"rank {rank}"}
            stats = [g.summary("test_accuracy") for g in line]
            top.errorbar([g.settings["sparsity"] * 100 for g in line], [s[0] * 100 for s in stats],
                         yerr=[s[1] * 100 for s in stats], **style)
            angles = [(g.settings["sparsity"] * 100, g.summary("angle")) for g in line if g.summary("angle") is not None]
            if angles:
                bottom.errorbar([x for x, _ in angles], [s[0] for _, s in angles], yerr=[s[1] for _, s in angles],
                                **style)
        crosses = lost.get(title, [])
        if crosses:
            top.plot([g.settings["sparsity"] * 100 for g in crosses], [0] * len(crosses), "x", color="red",
                     markersize=8, markeredgewidth=2, label="every seed diverged", clip_on=False)
        top.set_title(title, fontsize=8)
        top.set_ylabel("test accuracy (%)")
        top.set_ylim(0, 100)
        bottom.set_ylabel("angle between B and W (degrees)")
        for ax in (top, bottom):
            ax.set_xlabel("sparsity of B (%)")
            ax.legend(fontsize=7)
    if groups:
        figure.suptitle(f"Accuracy and alignment against the sparsity of B\n{subject(groups)}", fontsize=9)
    return _save(plt, figure, path)


def plot_angles(groups: Sequence[Group], line_fields: Sequence[str], path: Path):
    """Angles against the epoch (the paper's Figure 4): eq. 14 (left) and the update's angle to
    BP's gradient (right), one line per configuration, mean over seeds and hidden layers; a
    configuration with a diverged seed ends in a red cross."""
    plt = _pyplot()
    # A third column holds the legend: one entry per configuration can be many.
    rows = max(1, -(-len(groups) // 2))
    figure, axes = plt.subplots(1, 3, figsize=(13.0, max(3.8, 0.16 * rows + 1.0)), squeeze=False,
                                gridspec_kw={"width_ratios": [1, 1, 0.8]})
    highest = 0.0
    for index, group in enumerate(groups):
        label = ", ".join(f"{_short(f)}={group.settings[f]}" for f in line_fields if group.settings[f] is not None)
        diverged = any(r.status == "diverged" for r in group.records)
        for panel, (ax, field) in enumerate(zip(axes[0][:2], ("epoch_alignment", "epoch_update"))):
            means = group.epoch_means(field)
            points = [(epoch, value) for epoch, value in enumerate(means, 1) if value is not None]
            if not points:
                continue
            highest = max(highest, *(p[1] for p in points))
            # One colour per configuration in both panels; the legend takes the left panel's.
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, linewidth=1.2,
                    color=f"C{index % 10}", linestyle=("-", "--", ":")[index // 10 % 3],
                    label=label if panel == 0 else None)
            if diverged:
                ax.plot([points[-1][0]], [points[-1][1]], "x", color="red", markersize=8, markeredgewidth=2)
    titles = ("B against W (eq. 14)", "the update against BP's gradient")
    for ax, title in zip(axes[0][:2], titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("degrees")
        # Angles lie in [0, 180]; most stay under 90, which keeps their differences readable.
        ax.set_ylim(0, 90 if highest <= 90 else 180)
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][2].axis("off")
    axes[0][2].legend(handles, labels, loc="center left", fontsize=6, ncol=1 if len(labels) <= 24 else 2,
                      title="red cross: a seed diverged" if any(
                          r.status == "diverged" for g in groups for r in g.records) else None, title_fontsize=6)
    if groups:
        figure.suptitle(f"Angles over training\n{subject(groups)}", fontsize=9)
    return _save(plt, figure, path)

