"""Reports: the expected tables and figures, the same bytes from the same database, honest skips."""

from __future__ import annotations

import csv
import random

import pytest

from ssdfa.cli import main
from ssdfa.study.area import AreaEstimator
from ssdfa.study.database import ResultsDatabase
from ssdfa.study.report import pareto_front, write_report
from ssdfa.study.spec import spec_from_dict

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_result(config: dict) -> dict:
    """Accuracy that grows with the word width and with STOCH; angle that falls with the rank."""
    rng = random.Random(str(sorted(config.items())))
    word = 16 if config["formats"] is None else int(config["formats"]["weight"][3:-1].split(",")[1]) + 2
    accuracy = min(0.97, 0.4 + 0.04 * word + (0.08 if config["update_rounding"] == "STOCH" else 0.0))
    rank = config["rank"] or 10
    epochs = config["epochs"]
    return {
        "test_accuracy": accuracy + rng.uniform(-0.01, 0.01),
        "train_accuracy": accuracy,
        "angles": [80.0 - 3 * rank + rng.uniform(-1, 1)],
        "epoch_alignment_angles": [[88.0 - 5 * e - rank + rng.uniform(-1, 1)] for e in range(epochs)],
        "epoch_update_angles": [[70.0 - 4 * e + rng.uniform(-1, 1)] for e in range(epochs)],
        "num_classes": 10,
        "num_features": 64,
        "data_fingerprint": "0" * 64,
    }


def fill(path, *specs) -> None:
    with ResultsDatabase.create_or_open(path) as db:
        for spec in specs:
            for cell in spec_from_dict(spec).cells:
                db.record(cell, fake_result(cell.config), None, 1.0, "test")


WIDTH = {
    "study": {"seeds": 2},
    "arithmetic": {"precision": ["fixed", "float"], "word": [4, 8, 12], "int_bits": {"activation": 2, "bp_error": 2},
                   "update_rounding": ["RND", "STOCH"]},
}
RANK = {
    "study": {"seeds": 2},
    "network": {"hidden": [20]},
    "feedback": {"algorithm": "sdfa", "connections": [1, 2, 5, 10], "rank": [2, 5, 10]},
    "arithmetic": {"precision": "float"},
}


def fake_synthesis(layer: dict) -> dict:
    word = sum(int(n) for n in layer["formats"]["weight"][3:-1].split(","))
    stochastic = layer["modes"]["update_rounding"] == "STOCH"
    return {"luts": 40 * word + (200 if stochastic else 0), "flip_flops": 10 * word, "block_rams": 1, "dsps": 0}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One database with width, rounding, rank and sparsity cells, reported twice."""
    root = tmp_path_factory.mktemp("report")
    fill(root / "study.db", WIDTH, RANK)
    results = [write_report(root / "study.db", root / out, area=AreaEstimator(synthesize=fake_synthesis))
               for out in ("a", "b")]
    return root, results


def test_report_writes_tables_and_all_four_figures(reports):
    root, (result, _) = reports
    out = root / "a"
    names = sorted(p.name for p in result.files)
    assert names == sorted(["cells.csv", "summary.csv", "accuracy-vs-width.png", "accuracy-vs-area.png",
                            "area.csv", "rank-sparsity.png", "accuracy-vs-sparsity.png", "angles-over-training.png",
                            "report.md"])
    for name in ("accuracy-vs-width.png", "accuracy-vs-area.png", "rank-sparsity.png", "accuracy-vs-sparsity.png",
                 "angles-over-training.png"):
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE)
    with (out / "cells.csv").open() as handle:
        cells = list(csv.DictReader(handle))
    with ResultsDatabase.open_existing(root / "study.db") as db:
        assert len(cells) == len(db.rows())
    report = (out / "report.md").read_text()
    assert "## Accuracy against word width" in report and "(paper Figures 5 and 6)" in report
    assert "(paper Figure 6)" in report
    assert "## Angles over training (paper Figure 4)" in report
    assert result.notes == []


def test_the_same_database_gives_the_same_bytes(reports):
    root, _ = reports
    for path in (root / "a").iterdir():
        assert path.read_bytes() == (root / "b" / path.name).read_bytes(), path.name


def test_area_table_marks_the_pareto_front(reports):
    root, _ = reports
    with (root / "a" / "area.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    front = [row for row in rows if row["pareto"] == "yes"]
    assert front and len(front) < len(rows)
    best = -1.0
    for row in front:  # sorted by area: along the front, accuracy only rises
        assert float(row["accuracy_mean"]) > best
        best = float(row["accuracy_mean"])


def test_pareto_front_keeps_only_undominated_points():
    points = [{"area": 1, "accuracy": 0.5}, {"area": 2, "accuracy": 0.4}, {"area": 2, "accuracy": 0.9},
              {"area": 3, "accuracy": 0.9}]
    assert pareto_front(points) == [points[0], points[2]]


def test_figures_without_data_are_skipped_with_the_reason(tmp_path, capsys):
    path = tmp_path / "float.db"
    fill(path, {"arithmetic": {"precision": "float"}})
    assert main(["report", str(path), "--out", str(tmp_path / "out"), "--no-area"]) == 0
    out = capsys.readouterr().out
    assert "accuracy-vs-width.png skipped: the database has fixed-point cells of fewer than two word widths" in out
    assert "rank-sparsity.png skipped" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "angles-over-training.png", "cells.csv", "report.md", "summary.csv"]


def test_area_figure_is_skipped_when_synthesis_is_unavailable(tmp_path):
    path = tmp_path / "fixed.db"
    fill(path, {"arithmetic": {"word": 8}})
    result = write_report(path, tmp_path / "out", area=AreaEstimator(disabled=True))
    assert not (tmp_path / "out" / "accuracy-vs-area.png").exists()
    assert "accuracy-vs-area.png skipped: left out on request (--no-area)" in result.notes
    assert "Skipped: left out on request" in (tmp_path / "out" / "report.md").read_text()


def test_cells_of_another_code_version_are_left_out_and_counted(tmp_path):
    from ssdfa.study.cells import Cell

    path = tmp_path / "mixed.db"
    fill(path, {"arithmetic": {"precision": "float"}})
    old = spec_from_dict({"arithmetic": {"precision": "float"}, "study": {"seeds": [7]}}).cells[0]
    old = Cell({**old.config, "versions": {"arithmetic": 0, "cell": 0}})
    with ResultsDatabase.create_or_open(path) as db:
        db.record(old, fake_result(old.config), None, 1.0, "old")
    write_report(path, tmp_path / "out", area=AreaEstimator(disabled=True))
    with (tmp_path / "out" / "cells.csv").open() as handle:
        assert [row["seed"] for row in csv.DictReader(handle)] == ["0"]
    assert "1 more cells were computed by another version" in (tmp_path / "out" / "report.md").read_text()


def test_report_of_one_spec_leaves_out_the_other_cells(tmp_path, capsys):
    path = tmp_path / "two.db"
    fill(path, {"arithmetic": {"precision": "float"}, "study": {"seeds": 3}})
    spec = tmp_path / "two.toml"
    spec.write_text('[arithmetic]\nprecision = "float"\n[study]\nseeds = 2\n')
    assert main(["report", str(path), "--out", str(tmp_path / "out"), "--no-area", "--spec", str(spec)]) == 0
    with (tmp_path / "out" / "cells.csv").open() as handle:
        assert sorted(row["seed"] for row in csv.DictReader(handle)) == ["0", "1"]


def test_a_spec_none_of_whose_cells_the_database_holds_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "two.db"
    fill(path, {"arithmetic": {"precision": "float"}, "study": {"seeds": 2}})
    spec = tmp_path / "other.toml"
    spec.write_text('[arithmetic]\nprecision = "float"\n[network]\nhidden = [12]\n')
    assert main(["report", str(path), "--out", str(tmp_path / "out"), "--no-area", "--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds none of the spec's cells (1): its 2 cells are of another spec" in err
    assert not (tmp_path / "out").exists()
    # A spec of which only some cells ran: the report says how many are missing.
    spec.write_text('[arithmetic]\nprecision = "float"\n[study]\nseeds = 3\n')
    assert main(["report", str(path), "--out", str(tmp_path / "out"), "--no-area", "--spec", str(spec)]) == 0
    assert "note: 1 of the spec's 3 cells are not in the database (not run yet)" in capsys.readouterr().out


def test_an_interrupted_report_leaves_the_previous_one_as_it_was(tmp_path, monkeypatch):
    from ssdfa.study import report as report_module

    fill(tmp_path / "study.db", WIDTH)
    out = tmp_path / "out"
    write_report(tmp_path / "study.db", out, area=AreaEstimator(disabled=True))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module, "_angle_section", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(tmp_path / "study.db", out, area=AreaEstimator(disabled=True))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# -- figures a reader can use -------------------------------------------------------------------


def visible_tick_labels(ax) -> list[str]:
    low, high = ax.get_xlim()
    return [label.get_text() for label in ax.get_xticklabels() if label.get_text() and low <= label.get_position()[0] <= high]


def chance_point(area: float, accuracy: float, chance: bool = False) -> dict:
    return {"area": area, "accuracy": accuracy, "low": accuracy, "high": accuracy, "label": "ssdfa STOCH",
            "word": 8, "chance": chance}


def test_width_and_rank_figures_name_their_dataset_and_network(reports, tmp_path):
    from ssdfa.study.plots import plot_rank, plot_width
    from ssdfa.study.records import group_over_seeds, records_from_rows

    root, _ = reports
    with ResultsDatabase.open_existing(root / "study.db") as db:
        groups = group_over_seeds(records_from_rows(db.rows()))
    fixed = [g for g in groups if g.settings["precision"] == "fixed"]
    floats = [g for g in groups if g.settings["precision"] == "float"]
    width = plot_width(fixed, floats, [], ["update_rounding"], tmp_path / "w.png")
    assert "digits" in width.get_suptitle() and "network 64-100-10" in width.get_suptitle()
    # One float reference, the one of this network (not the rank study's 64-20-10 runs).
    own = [r.test_accuracy for g in floats if g.settings["hidden"] == "100" for r in g.records]
    assert [line.get_label() for line in width.axes[0].get_lines() if line.get_label().startswith("float")] == [
        f"float ({100 * sum(own) / len(own):.1f}%)"]
    ranked = [g for g in floats if g.settings["hidden"] == "20"]
    rank = plot_rank(ranked, [], tmp_path / "r.png")
    assert "digits" in rank.get_suptitle() and "network 64-20-10" in rank.get_suptitle()
    assert rank.get_suptitle().endswith("; float") and width.get_suptitle().endswith("; fixed point")


@pytest.mark.parametrize("precision", ["fixed", "float"])
def test_the_report_says_what_every_cell_shares_float_or_fixed_point_first(tmp_path, precision):
    """The tables show only the settings that vary: two studies of one grid, one in float and one
    in fixed point, must not read alike."""
    fill(tmp_path / "one.db", {**RANK, "arithmetic": {"precision": precision}})
    write_report(tmp_path / "one.db", tmp_path / "out", area=AreaEstimator(disabled=True))
    shared = next(line for line in (tmp_path / "out" / "report.md").read_text().splitlines()
                  if line.startswith("Every cell: "))
    assert shared.startswith(f"Every cell: precision {precision}, dataset digits, hidden 20, ")
    names = [item.split(" ")[0] for item in shared.removeprefix("Every cell: ").removesuffix(".").split(", ")]
    assert ("update_rounding" in names) == (precision == "fixed")  # a float cell has no rounding
    assert "seed" not in names and "rank" not in names  # seeds and the rank vary


def test_area_figure_names_dataset_and_network_and_labels_its_log_axis(tmp_path):
    from ssdfa.study.plots import plot_area

    for areas in ([296, 480, 950, 1400, 2050], [510, 520, 540], [700]):
        points = [chance_point(area, 0.5 + 0.01 * i) for i, area in enumerate(areas)]
        figure = plot_area(points, points, "LUTs", "mnist, network 784-64-10 relu, 3 epochs", 10, tmp_path / "a.png")
        ax = figure.axes[0]
        assert ax.get_xscale() == "log"
        assert "mnist" in ax.get_title() and "784-64-10" in ax.get_title()
        labels = visible_tick_labels(ax)
        assert len(labels) >= 3, (areas, labels)
        low, high = ax.get_xlim()
        assert low <= min(areas) and max(areas) <= high


def test_designs_at_chance_level_are_drawn_apart_and_never_on_the_pareto_front(tmp_path):
    from ssdfa.study.chance import at_chance_level, chance_threshold

    assert chance_threshold(10) == pytest.approx(0.19) and chance_threshold(2) == pytest.approx(0.55)
    assert at_chance_level(0.12, 10) and not at_chance_level(0.25, 10) and not at_chance_level(0.12, None)

    path = tmp_path / "chance.db"
    spec = {"study": {"seeds": 2}, "arithmetic": {"word": [4, 6, 8, 12], "int_bits": {"activation": 2, "bp_error": 2},
                                                   "update_rounding": ["RND", "STOCH"]}}
    with ResultsDatabase.create_or_open(path) as db:
        for cell in spec_from_dict(spec).cells:
            result = fake_result(cell.config)
            if cell.config["formats"]["weight"] in ("SQ(2,2)", "SQ(2,4)"):  # 4- and 6-bit: learned nothing
                result["test_accuracy"] = 0.1003
            db.record(cell, result, None, 1.0, "test")
    write_report(path, tmp_path / "out", area=AreaEstimator(synthesize=fake_synthesis))
    with (tmp_path / "out" / "area.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    at_chance = [row for row in rows if row["chance_level"] == "yes"]
    assert sorted({row["word"] for row in at_chance}) == ["4", "6"] and len(at_chance) == 4
    assert all(row["pareto"] == "" for row in at_chance)  # the cheapest designs, yet not on the front
    front = [row for row in rows if row["pareto"] == "yes"]
    assert front and all(float(row["accuracy_mean"]) > 19 for row in front)
    assert front[0]["word"] == "8"  # the cheapest design that learned is where the front starts
    assert "drawn as grey crosses and left out of the Pareto front" in (tmp_path / "out" / "report.md").read_text()


def test_a_report_redrawn_from_its_own_tables_keeps_them_byte_for_byte(tmp_path, capsys):
    from ssdfa.study.redraw import main as redraw_main

    spec_path = tmp_path / "width.toml"
    spec_path.write_text(
        '[study]\nseeds = 2\n[arithmetic]\nprecision = ["fixed", "float"]\nword = [4, 8, 12]\n'
        'int_bits = { activation = 2, bp_error = 2 }\nupdate_rounding = ["RND", "STOCH"]\n'
    )
    from ssdfa.study.spec import load_spec

    with ResultsDatabase.create_or_open(tmp_path / "width.db") as db:
        for cell in load_spec(spec_path).cells:
            result = fake_result(cell.config)
            result["test_accuracy"] = round(result["test_accuracy"] * 359) / 359  # a count of 359 test images
            db.record(cell, result, None, 1.0, "width")
    out = tmp_path / "report"
    write_report(tmp_path / "width.db", out, area=AreaEstimator(synthesize=fake_synthesis))
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    args = [str(out), str(spec_path), "--features", "64", "--classes", "10", "--test-samples", "359"]
    assert redraw_main(args) == 0
    for name in ("cells.csv", "summary.csv", "area.csv"):
        assert (out / name).read_bytes() == before[name], name
    # Every table from cells.csv comes back; per-epoch angles are not in cells.csv, so a redrawn
    # report has no "Angles over training" section (a section of its own: drop it from both).
    def tables_outside_angles(text: bytes) -> list[bytes]:
        sections = text.split(b"\n## ")
        kept = [section for section in sections if not section.startswith(b"Angles over training")]
        return [line for section in kept for line in section.splitlines() if line.startswith(b"|")]

    tables = [tables_outside_angles(text) for text in (before["report.md"], (out / "report.md").read_bytes())]
    assert tables[0] == tables[1] and len(tables[0]) > 20
    assert "as recorded in area.csv" in (out / "report.md").read_text()  # says where the areas came from
    # A test-set size that the accuracies are not fractions of is refused, naming the value.
    capsys.readouterr()
    assert redraw_main([*args[:-1], "360"]) == 2
    assert "is not a fraction of 360 test samples" in capsys.readouterr().err


def test_diverged_cells_are_reported_as_diverged_without_accuracy(tmp_path):
    """A 'diverged' row counts in its configuration, has a section naming what diverged, is
    a red cross in the width figure when every seed diverged, and never shows an accuracy."""
    path = tmp_path / "diverged.db"
    spec = spec_from_dict({"study": {"seeds": 2}, "arithmetic": {"word": [8, 12, 16]}})
    message = "layer 0 weights are pinned at the bounds; lower the learning rate"
    with ResultsDatabase.create_or_open(path) as db:
        for cell in spec.cells:
            if cell.config["formats"]["weight"] == "SQ(2,6)":
                result = {"divergence": {"criterion": "pinned", "epoch": 1, "layer": 0, "message": message},
                          "epoch_alignment_angles": [[85.0]], "epoch_update_angles": [[60.0]],
                          "num_classes": 10, "num_features": 64}
            else:
                result = fake_result(cell.config)
            db.record(cell, result, None, 1.0, "test")
        assert db.count() == {"ok": 4, "diverged": 2, "failed": 0}
        assert len(db.finished_keys()) == 6  # a diverged run is an outcome: not run again
    write_report(path, tmp_path / "out", area=AreaEstimator(disabled=True))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "6 cells in the database: 4 finished, 2 diverged, 0 failed" in report
    assert "## Diverged cells" in report and message in report
    with (tmp_path / "out" / "summary.csv").open() as handle:
        rows = {row["word"]: row for row in csv.DictReader(handle)}
    assert rows["8"]["accuracy_mean"] == "diverged" and rows["8"]["diverged"] == "2"
    assert rows["12"]["diverged"] == "0" and float(rows["12"]["accuracy_mean"]) > 0
    with (tmp_path / "out" / "cells.csv").open() as handle:
        cells = [row for row in csv.DictReader(handle) if row["status"] == "diverged"]
    assert len(cells) == 2 and all(row["test_accuracy"] == "" for row in cells)
    assert (tmp_path / "out" / "accuracy-vs-width.png").read_bytes().startswith(PNG_SIGNATURE)


def test_sparsity_figure_names_dataset_and_network_and_has_the_angle_axis(tmp_path, monkeypatch):
    """Figure 6: one line per rank (5 and 10 of the ranks 2, 5, 10), accuracy above the angle,
    the panel titled with the dataset and the network."""
    from ssdfa.study import plots

    drawn = []
    original = plots._save

    def capture(plt, figure, path):
        if path.name == "accuracy-vs-sparsity.png":
            drawn.append([(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_legend_handles_labels()[1])
                          for ax in figure.axes])
        original(plt, figure, path)

    monkeypatch.setattr(plots, "_save", capture)
    fill(tmp_path / "rank.db", RANK)
    result = write_report(tmp_path / "rank.db", tmp_path / "out", area=AreaEstimator(disabled=True))
    assert tmp_path / "out" / "accuracy-vs-sparsity.png" in result.files
    [(accuracy, angle)] = drawn
    assert "digits" in accuracy[0] and "20" in accuracy[0]  # the dataset and the hidden layer
    assert accuracy[1:3] == ("sparsity of B (%)", "test accuracy (%)")
    assert angle[1:3] == ("sparsity of B (%)", "angle between B and W (degrees)")
    assert accuracy[3] == angle[3] == ["rank 5", "rank 10"]
    report = (tmp_path / "out" / "report.md").read_text()
    section = report.split("(paper Figure 6)")[1]
    assert "| 5 | 80 | 2 |" in section and "| 10 | 90 | 1 |" in section and "| 2 |" not in section.split("|---|")[0]


def test_sparsity_figure_shows_diverged_configurations_as_diverged(tmp_path):
    """A sparsity whose every seed diverged has no accuracy in the Figure 6 table."""
    path = tmp_path / "diverged.db"
    message = "layer 0 weights are pinned at the bounds; lower the learning rate"
    with ResultsDatabase.create_or_open(path) as db:
        for cell in spec_from_dict(RANK).cells:
            if cell.config["connections"] == 1:
                result = {"divergence": {"criterion": "pinned", "epoch": 1, "layer": 0, "message": message},
                          "epoch_alignment_angles": [[85.0]], "epoch_update_angles": [[60.0]],
                          "num_classes": 10, "num_features": 64}
            else:
                result = fake_result(cell.config)
            db.record(cell, result, None, 1.0, "test")
    write_report(path, tmp_path / "out", area=AreaEstimator(disabled=True))
    assert (tmp_path / "out" / "accuracy-vs-sparsity.png").read_bytes().startswith(PNG_SIGNATURE)
    section = (tmp_path / "out" / "report.md").read_text().split("(paper Figure 6)")[1].split("##")[0]
    [row] = [line for line in section.splitlines() if line.startswith("| 10 | 90 |")]
    assert row.split("|")[3:7] == [" 1 ", " 0 ", " 2 ", " diverged "]


@pytest.mark.parametrize(("angles", "top"), [((80.0, 60.0), 90), ((97.9, 104.0), 180)])
def test_the_angle_figure_shows_angles_above_90_degrees(tmp_path, monkeypatch, angles, top):
    """DFA's eq. 14 angle can exceed 90 degrees; the axis must not cut it off."""
    from types import SimpleNamespace

    from ssdfa.study import plots

    drawn = {}

    def keep(plt, figure, path):
        drawn["limits"] = [ax.get_ylim() for ax in figure.axes[:2]]
        plt.close(figure)

    monkeypatch.setattr(plots, "_save", keep)
    monkeypatch.setattr(plots, "subject", lambda groups: "")
    record = SimpleNamespace(status="ok")
    group = SimpleNamespace(settings={"algorithm": "dfa"}, records=(record,),
                            epoch_means=lambda field: list(angles))
    plots.plot_angles([group], ["algorithm"], tmp_path / "angles.png")
    assert drawn["limits"] == [(0.0, top), (0.0, top)]


def test_an_area_split_that_does_not_divide_the_layer_is_refused_not_relabelled(tmp_path):
    """The area table would name 3 neurons per PE and hold the areas of 1."""
    from ssdfa.errors import SsdfaError

    fill(tmp_path / "study.db", WIDTH)
    with pytest.raises(SsdfaError, match="--neurons-per-pe 3 does not divide the hidden layer of 100 neurons"):
        write_report(tmp_path / "study.db", tmp_path / "out",
                     area=AreaEstimator(neurons_per_pe=3, synthesize=fake_synthesis))
    assert not (tmp_path / "out" / "area.csv").exists()
