"""``ssdfa train`` and ``ssdfa demo``: JSON output, determinism, one-line errors, clean interrupt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssdfa.cli import main

QUICK = ["--epochs", "1", "--train-limit", "200", "--hidden", "24"]


def _run(capsys, argv):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_train_json_reports_accuracies_and_configuration(capsys):
    status, out, err = _run(capsys, ["train", *QUICK, "--fixed", "--json", "--seed", "3"])
    assert status == 0, err
    report = json.loads(out)
    assert report["mode"] == "fixed"
    assert report["network"]["layer_sizes"] == [64, 24, 10]
    assert report["network"]["algorithm"] == "ssdfa"
    assert report["arithmetic"]["weight"] == "SQ(2,14)" and report["arithmetic"]["update_rounding"] == "STOCH"
    assert report["feedback"][0]["connections"] == 1 and report["feedback"][0]["rank"] == 10
    for split in ("train", "val", "test"):
        assert 0.0 <= report[f"{split}_accuracy"] <= 1.0
    assert report["test_accuracy"] > 0.2
    assert len(report["history"]) == 1
    assert err == ""  # --json: no progress bar


def test_fixed_training_is_bit_for_bit_repeatable(capsys):
    argv = ["train", *QUICK, "--fixed", "--json", "--seed", "5", "--weight-format", "SQ(2,10)"]
    first = json.loads(_run(capsys, argv)[1])
    second = json.loads(_run(capsys, argv)[1])
    for report in (first, second):
        report.pop("seconds")
        for epoch in report["history"]:
            epoch.pop("seconds")
    assert first == second


def test_float_train_text_output(capsys):
    status, out, err = _run(capsys, ["train", *QUICK, "--algo", "bp", "--lr", "0.125", "--batch", "4"])
    assert status == 0, err
    assert "bp 64-24-10 relu on digits, float" in out
    assert "accuracy: train" in out and "test" in out


def test_sdfa_with_sparsity_and_rank(capsys):
    status, out, err = _run(capsys, ["train", *QUICK, "--algo", "sdfa", "--sparsity", "3", "--rank", "5", "--json"])
    assert status == 0, err
    feedback = json.loads(out)["feedback"][0]
    assert feedback["connections"] == 3 and feedback["rank"] == 5


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--fixed", "--weight-format", "SQ(-1,4)"], "SQ(-1,4)"),
        (["--fixed", "--delta-format", "SQ(40,30)"], "not 70"),
        (["--fixed", "--weight-format", "Q1.15"], "Q1.15"),
        (["--fixed", "--activation-format", "SQ(20,30)", "--weight-format", "SQ(10,30)"], "accumulator needs"),
        (["--fixed", "--update-rounding", "SOMETIMES"], "SOMETIMES"),
        (["--fixed", "--rounding", "STOCH"], "deterministic"),
        (["--fixed", "--overflow", "CLAMP"], "CLAMP"),
        (["--fixed", "--shift", "40"], "not 40"),
        (["--algo", "feedforward"], "feedforward"),
        (["--activation", "sigmoid"], "sigmoid"),
        (["--hidden", "0"], "not 0"),
        (["--algo", "sdfa", "--sparsity", "2", "--rank", "3"], "rank r=3 x sparsity s=2"),
        (["--algo", "sdfa", "--sparsity", "11"], "s=11"),
        (["--algo", "sdfa"], "sdfa needs the sparsity"),
        (["--algo", "bp", "--sparsity", "2"], "bp uses no feedback"),
        (["--connectivity", "star"], "star"),
        (["--lr", "0.1", "--fixed"], "--lr"),
        (["--shift", "3"], "--shift"),
        (["--epochs", "0"], "not 0"),
        (["--dataset", "imagenet"], "imagenet"),
    ],
)
def test_bad_input_is_one_error_line_naming_it(capsys, argv, named):
    status, out, err = _run(capsys, ["train", "--epochs", "1", *argv] if "--epochs" not in argv else ["train", *argv])
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssdfa: error: "), err
    assert named in lines[0]
    assert "Traceback" not in err


def test_missing_and_corrupt_dataset_files_are_refused(capsys, tmp_path):
    missing = tmp_path / "absent.npz"
    status, out, err = _run(capsys, ["train", "--epochs", "1", "--dataset", f"features:{missing}"])
    assert status == 2 and out == "" and "absent.npz" in err and len(err.strip().splitlines()) == 1
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip archive")
    status, out, err = _run(capsys, ["train", "--epochs", "1", "--dataset", f"features:{corrupt}"])
    assert status == 2 and out == "" and "corrupt.npz" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.npz"]  # nothing written


def test_interrupt_exits_130_without_output(capsys, monkeypatch):
    import ssdfa.model.training as training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    status, out, err = _run(capsys, ["train", *QUICK])
    assert status == 130
    assert out == ""
    assert err.strip() == "ssdfa: interrupted"


def test_features_file_trains(capsys, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "features.npz"
    centers = rng.normal(size=(3, 8))
    y_train, y_test = rng.integers(3, size=120), rng.integers(3, size=60)
    np.savez(
        path,
        x_train=(centers[y_train] + 0.1 * rng.normal(size=(120, 8))).astype(np.float32),
        y_train=y_train.astype(np.int64),
        x_test=(centers[y_test] + 0.1 * rng.normal(size=(60, 8))).astype(np.float32),
        y_test=y_test.astype(np.int64),
    )
    argv = ["train", "--epochs", "3", "--hidden", "16", "--dataset", f"features:{path}", "--fixed", "--json"]
    status, out, err = _run(capsys, argv)
    assert status == 0, err
    report = json.loads(out)
    assert report["network"]["layer_sizes"] == [8, 16, 3]
    assert report["test_accuracy"] > 0.8


def test_demo_trains_then_verifies_the_rtl_learner_bit_for_bit(capsys, require_tool):
    require_tool("verilator")
    status, out, err = _run(capsys, ["demo", "--epochs", "1"])
    assert status == 0, err
    steps = ("[1/5] data", "[2/5] configure", "[3/5] train (fixed point)", "[4/5] RTL", "[5/5] summary")
    for step in steps:
        assert step in out
    assert "SQ(2,14)" in out and "STOCH" in out and "test" in out
    assert "PASS: the RTL learner matches the model bit for bit" in out


def test_fixed_batched_mode_shift_defaults_to_the_per_sample_rate(capsys):
    status, out, err = _run(capsys, ["train", *QUICK, "--fixed", "--batch", "4", "--json"])
    assert status == 0, err
    report = json.loads(out)
    assert report["arithmetic"]["shift"] == 4 + 2 and report["training"]["batch"] == 4
    status, out, err = _run(capsys, ["train", *QUICK, "--fixed", "--batch", "4", "--shift", "3", "--json"])
    assert json.loads(out)["arithmetic"]["shift"] == 3


def test_defaults_come_from_the_rule_for_the_datasets_fan_in(capsys, tmp_path):
    report = json.loads(_run(capsys, ["train", *QUICK, "--fixed", "--json"])[1])
    assert report["network"]["feedback_gain"] == 8.0 and report["arithmetic"]["shift"] == 4
    assert report["network"]["balanced"] is True
    report = json.loads(_run(capsys, ["train", *QUICK, "--json"])[1])
    assert report["network"]["feedback_gain"] == 8.0 and report["training"]["lr"] == 2**-4
    # 784 features (MNIST's width): shift 5 and gain 4.
    rng = np.random.default_rng(1)
    path = tmp_path / "wide.npz"
    y = rng.integers(10, size=60)
    x = rng.random((60, 784)).astype(np.float32)
    np.savez(path, x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    argv = ["train", "--epochs", "1", "--hidden", "64", "--dataset", f"features:{path}", "--fixed", "--json"]
    report = json.loads(_run(capsys, argv)[1])
    assert report["network"]["feedback_gain"] == 4.0 and report["arithmetic"]["shift"] == 5
    # A narrower hidden layer: the bound gain / N stays at most 2^-4 (docs/model.md section 1.1).
    narrow = json.loads(_run(capsys, [*argv[:3], "--hidden", "32", *argv[5:]])[1])
    assert narrow["network"]["feedback_gain"] == 2.0 and narrow["arithmetic"]["shift"] == 5
    given = json.loads(_run(capsys, [*argv, "--feedback-gain", "2", "--shift", "7"])[1])
    assert given["network"]["feedback_gain"] == 2.0 and given["arithmetic"]["shift"] == 7


@pytest.mark.parametrize(
    "argv",
    [
        ["--lr", "4", "--feedback-gain", "64", "--epochs", "3"],
        ["--fixed", "--shift", "2", "--feedback-gain", "4", "--epochs", "4", "--train-limit", "600"],
    ],
)
def test_a_diverged_run_is_one_line_exit_1_and_no_accuracy(capsys, argv):
    status, out, err = _run(capsys, ["train", "--hidden", "24", *argv])
    assert status == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssdfa: diverged: "), err
    assert "lower the learning rate" in lines[0] and "%" not in lines[0].split("fell from")[0]
    status, out, err = _run(capsys, ["train", "--hidden", "24", *argv, "--json"])
    assert status == 1 and len(err.strip().splitlines()) == 1
    report = json.loads(out)
    assert report["status"] == "diverged" and report["divergence"]["message"] in err
    assert not any("accuracy" in key for key in report)  # no accuracy, not even null


def test_schedule_keep_and_angles_in_the_json(capsys):
    argv = ["train", *QUICK, "--epochs", "3", "--shift-steps", "2,3", "--keep", "best", "--angles", "--fixed", "--json"]
    status, out, err = _run(capsys, argv)
    assert status == 0, err
    report = json.loads(out)
    assert report["status"] == "ok"
    assert [h["lr"] for h in report["history"]] == [2**-4, 2**-5, 2**-6]
    assert report["training"]["shift_steps"] == [2, 3] and report["training"]["keep"] == "best"
    for record in report["history"]:
        assert len(record["alignment_angles"]) == 1 and len(record["update_angles"]) == 1
    selection = report["selection"]
    assert selection["keep"] == "best" and selection["last"]["epoch"] == 3
    assert report["test_accuracy"] == selection["best"]["test_accuracy"]
    assert selection["best"]["val_accuracy"] == max(h["val_accuracy"] for h in report["history"])
    status, out, err = _run(capsys, argv[:-1])  # the text output names both choices and the angles
    assert "eq. 14" in out and "last epoch (3)" in out and "best epoch" in out and "halved at epochs 2,3" in out


@pytest.mark.parametrize(("argv", "named"), [(["--shift-steps", "1"], "epochs from 2"),
                                             (["--shift-steps", "x"], "'x'"),
                                             (["--keep", "first"], "first"),
                                             (["--feedback-gain", "0"], "not 0")])
def test_bad_schedule_keep_and_gain_are_one_error_line(capsys, argv, named):
    status, out, err = _run(capsys, ["train", *QUICK, *argv])
    assert status == 2 and out == "" and named in err and len(err.strip().splitlines()) == 1


def test_a_request_builds_no_network_before_the_rule_has_set_its_defaults():
    from ssdfa.cli import build_parser
    from ssdfa.cli.train import build_request, resolve_defaults

    request = build_request(build_parser().parse_args(["train", "--fixed"]))
    with pytest.raises(RuntimeError, match="resolve_defaults"):
        request.network_spec(64, 10)
    resolved = resolve_defaults(request, 784)
    assert resolved.network_spec(784, 10).feedback_gain == 4.0 and resolved.config.shift == 5


def test_classes_without_a_training_sample_are_noted(tmp_path, capsys):
    """Labels counted from 1 give an output that nothing trains: said on stderr, the run goes on."""
    rng = np.random.default_rng(3)
    path = tmp_path / "from_one.npz"
    y = 1 + np.arange(60) % 3
    np.savez(path, x_train=rng.random((60, 5)), y_train=y, x_test=rng.random((9, 5)), y_test=y[:9])
    status, out, err = _run(capsys, ["train", "--dataset", f"features:{path}", "--hidden", "8", "--epochs", "1",
                                     "--algo", "dfa", "--json"])
    assert status == 0, err
    assert "ssdfa: note: 1 of the 4 classes (labels 0 to 3) have no training sample: 0" in err
    assert json.loads(out)["network"]["layer_sizes"] == [5, 8, 4]
