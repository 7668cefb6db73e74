"""Study specs: every bad key or value is refused by name before anything runs; cells are canonical."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssdfa.cli import main
from ssdfa.errors import SsdfaError
from ssdfa.study.cells import ARITHMETIC_VERSION, cell_key
from ssdfa.study.spec import load_spec, spec_from_dict

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def spec(**sections):
    return spec_from_dict(sections, source="test.toml")


def refused(match: str, **sections) -> None:
    with pytest.raises(SsdfaError, match=match):
        spec(**sections)


def test_unknown_section_is_refused_by_name():
    refused(r"unknown section \[trainig\]", trainig={"epochs": 1})


def test_unknown_key_is_refused_by_name():
    refused(r"unknown key network\.epoch\b", network={"epoch": 1})
    refused(r"unknown key arithmetic\.formats\.weights", arithmetic={"formats": {"weights": "SQ(2,6)"}})
    refused(r"unknown key arithmetic\.int_bits\.bias", arithmetic={"word": 8, "int_bits": {"bias": 2}})


def test_a_dotted_override_of_one_format_says_to_set_the_whole_table():
    with pytest.raises(SsdfaError, match=r"unknown key arithmetic\.formats\.weight; .*set the whole table: "
                                         r"--set 'arithmetic\.formats=\{weight=\.\.\.\}'"):
        load_spec(STUDIES / "quick.toml", ['arithmetic.formats.weight="SQ(2,6)"'])


def test_a_format_too_wide_says_why():
    refused(r"arithmetic\.formats\.weight = 'SQ\(2,70\)': SQ\(2,70\): the word must have 1 to \d+ bits, not 72",
            arithmetic={"formats": {"weight": "SQ(2,70)"}})


@pytest.mark.parametrize(
    ("sections", "match"),
    [
        ({"feedback": {"algorithm": "fa"}}, r"feedback\.algorithm = 'fa'.*bp, dfa, sdfa, ssdfa"),
        ({"arithmetic": {"update_rounding": ["RND", "ROUND"]}}, r"update_rounding = 'ROUND'"),
        ({"arithmetic": {"rounding": "STOCH"}}, r"rounding = 'STOCH'.*STOCH is for update_rounding"),
        ({"arithmetic": {"overflow": "CLAMP"}}, r"overflow = 'CLAMP'.*WRAP, SAT"),
        ({"arithmetic": {"precision": "double"}}, r"precision = 'double'"),
        ({"arithmetic": {"shift": 31}}, r"shift = 31"),
        ({"arithmetic": {"word": [8, 1]}}, r"word = 1 "),
        ({"arithmetic": {"formats": {"weight": "Q(2,6)"}}}, r"formats\.weight = 'Q\(2,6\)'"),
        ({"data": {"dataset": "imagenet"}}, r"dataset = 'imagenet'.*features:PATH\.npz"),
        ({"network": {"hidden": [100, 0]}}, r"network\.hidden = \[100, 0\]"),
        ({"network": {"activation": "sigmoid"}}, r"activation = 'sigmoid'"),
        ({"network": {"epochs": 0}}, r"network\.epochs = 0"),
        ({"study": {"seeds": []}}, r"study\.seeds is an empty list"),
        ({"arithmetic": {"update_rounding": ["RND", "RND"]}}, r"lists 'RND' twice"),
        ({"feedback": {"rank": "half"}}, r"feedback\.rank = 'half'"),
    ],
)
def test_bad_value_is_refused_naming_key_and_value(sections, match):
    refused(match, **sections)


def test_word_narrower_than_integer_bits_is_refused():
    refused(r"word = 2 is narrower than arithmetic\.int_bits\.activation = 3",
            arithmetic={"word": [8, 2], "int_bits": {"activation": 3}})


def test_formats_too_wide_for_the_models_words_are_refused_before_running():
    refused(r"weight SQ\(2,28\).*needs 67 bits", arithmetic={"word": [16, 30], "int_bits": {"weight": 2}})


def test_feedback_shape_is_checked_against_the_dataset():
    refused(r"'sdfa' needs feedback\.connections", feedback={"algorithm": "sdfa"})
    refused(r"connections \(s\) applies only to algorithm 'sdfa'", feedback={"algorithm": "dfa", "connections": 2})
    refused(r"connections = 11 exceeds the dataset's 10 outputs", feedback={"algorithm": "sdfa", "connections": 11})
    refused(r"rank = 12 exceeds min\(hidden size, outputs\)", feedback={"algorithm": "dfa", "rank": 12})
    refused(r"hidden layer of 8 neurons with s = 1 connections each cannot receive all 10 output errors",
            network={"hidden": [100, 8]})


def test_files_datasets_need_a_data_folder(tmp_path):
    refused(r"dataset 'mnist' is read from files: set data\.data_dir", data={"dataset": "mnist"})
    refused(r"data\.data_dir 'nowhere' is not a folder", data={"dataset": "mnist", "data_dir": "nowhere"})
    study = spec_from_dict({"data": {"dataset": "features:run.npz"}}, base_dir=tmp_path)
    assert study.cells[0].data_dir == str(tmp_path)  # a relative features path starts beside the spec


def test_grid_is_the_product_of_the_axes_times_the_seeds():
    study = spec(study={"seeds": 3}, arithmetic={"word": [4, 8], "update_rounding": ["RND", "TRN", "STOCH"]})
    assert len(study.cells) == 2 * 3 * 3
    assert len({cell.key for cell in study.cells}) == len(study.cells)


def test_float_cells_ignore_the_fixed_point_axes():
    study = spec(arithmetic={"precision": ["fixed", "float"], "word": [4, 8, 16], "update_rounding": ["RND", "STOCH"]})
    floats = [c for c in study.cells if c.config["precision"] == "float"]
    assert len(floats) == 1 and floats[0].config["formats"] is None
    assert len(study.cells) == 3 * 2 + 1


def test_equivalent_feedback_is_one_cell():
    # sdfa with s = 1 is ssdfa, with s = M is dfa; full rank written as a number is "full".
    study = spec(feedback={"algorithm": ["sdfa", "ssdfa", "dfa"], "connections": [1, 10], "rank": ["full", 10]})
    assert sorted(c.config["algorithm"] for c in study.cells) == ["dfa", "ssdfa"]
    assert all(c.config["rank"] is None for c in study.cells)


def test_combinations_whose_errors_cannot_all_be_fed_back_are_skipped():
    study = spec(feedback={"algorithm": "sdfa", "connections": [2, 5], "rank": [1, 2, 5]}, network={"hidden": [20]})
    kept = sorted((c.config["connections"], c.config["rank"]) for c in study.cells)
    assert kept == [(2, 5), (5, 2), (5, 5)]  # rank x s >= 10 outputs
    assert study.skipped == 3


def test_key_depends_on_every_setting_and_the_arithmetic_version():
    base = spec().cells[0].config
    assert base["versions"]["arithmetic"] == ARITHMETIC_VERSION
    changed = {**base, "versions": {**base["versions"], "arithmetic": ARITHMETIC_VERSION + 1}}
    assert cell_key(changed) != cell_key(base)
    assert cell_key({**base, "shift": base["shift"] + 1}) != cell_key(base)
    assert cell_key(dict(reversed(list(base.items())))) == cell_key(base)


def test_data_folder_is_not_part_of_the_key(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    keys = [spec(data={"dataset": "mnist", "data_dir": str(d)}).cells[0].key for d in (first, second)]
    assert keys[0] == keys[1]


def test_overrides_change_values_and_are_checked(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[network]\nepochs = 5\n[data]\ndataset = "digits"\n')
    assert load_spec(path, ["network.epochs=1", "data.train_limit=50"]).cells[0].config["epochs"] == 1
    with pytest.raises(SsdfaError, match=r"unknown key network\.epoch\b"):
        load_spec(path, ["network.epoch=1"])
    with pytest.raises(SsdfaError, match="expected SECTION.KEY=VALUE"):
        load_spec(path, ["epochs=1"])


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.name)
def test_committed_specs_are_valid(path, tmp_path):
    study = load_spec(path, [f"data.data_dir={str(tmp_path)!r}"])
    assert study.cells


def test_cli_prints_one_error_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[arithmetic]\nupdate_rounding = ["RND", "NEAREST"]\n')
    assert main(["study", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "update_rounding = 'NEAREST'" in err and str(path) in err
    assert not path.with_suffix(".db").exists()  # nothing ran, nothing was created


def test_cli_dry_run_lists_the_cells(capsys):
    assert main(["study", str(STUDIES / "quick.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith(f"{len(load_spec(STUDIES / 'quick.toml').cells)} cells")


def test_cells_take_ssdfa_trains_defaults_unless_the_spec_sets_them():
    """Without gain, shift and connectivity a cell is the network `ssdfa train` builds."""
    cell = spec(arithmetic={"precision": "fixed"}).cells[0].config
    assert (cell["feedback_gain"], cell["shift"], cell["connectivity"]) == (8.0, 4, "balanced")
    assert (cell["shift_steps"], cell["keep"], cell["input_shift"]) == ([], "last", 0)
    mnist = spec(data={"dataset": "mnist", "data_dir": "."}, network={"batch": 4}).cells[0].config
    assert (mnist["feedback_gain"], mnist["shift"]) == (4.0, 5 + 2)
    bp = spec(feedback={"algorithm": "bp", "gain": 2}).cells[0].config
    assert bp["feedback_gain"] is None and bp["connectivity"] is None
    given = spec(feedback={"gain": [1, 2.5], "connectivity": ["random", "lfsr"]},
                 network={"epochs": 4, "shift_steps": [[], [2, 4]], "keep": ["last", "best"]},
                 data={"input_shift": [0, 2]}, arithmetic={"shift": 6})
    assert len(given.cells) == 2 * 2 * 2 * 2 * 2
    assert {c.config["feedback_gain"] for c in given.cells} == {1.0, 2.5}
    assert {tuple(c.config["shift_steps"]) for c in given.cells} == {(), (2, 4)}
    assert {c.config["shift"] for c in given.cells} == {6}


@pytest.mark.parametrize(
    ("sections", "match"),
    [
        ({"feedback": {"gain": 0}}, r"feedback\.gain = 0"),
        ({"feedback": {"connectivity": "star"}}, r"feedback\.connectivity = 'star'"),
        ({"feedback": {"algorithm": "dfa", "connectivity": "lfsr"}}, "needs ssdfa"),
        ({"network": {"shift_steps": [3, 2]}}, r"network\.shift_steps = \[3, 2\]"),
        ({"network": {"epochs": 2, "shift_steps": [3]}}, "beyond 2 epochs"),
        ({"network": {"keep": "first"}}, r"network\.keep = 'first'"),
        ({"data": {"input_shift": -1}}, r"data\.input_shift = -1"),
    ],
)
def test_new_keys_refuse_bad_values_by_name(sections, match):
    refused(match, **sections)


def test_an_empty_spec_is_refused_rather_than_run_as_one_cell_of_defaults(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("# nothing yet\n")
    with pytest.raises(SsdfaError, match="empty.toml: the study spec holds no settings"):
        load_spec(path)
