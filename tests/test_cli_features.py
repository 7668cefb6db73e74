"""``ssdfa features``: a BP-trained CNN's frozen features, read back by ``ssdfa train``; one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssdfa.cli import main
from ssdfa.model.datasets import load_dataset

QUICK = ["--dataset", "digits", "--conv", "12c3p2", "--hidden", "16", "--train-limit", "400", "--lr", "0.125"]


def _run(capsys, argv):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_features_file_feeds_a_fixed_point_ssdfa_head(capsys, tmp_path):
    path = tmp_path / "digits-features.npz"
    status, out, err = _run(capsys, ["features", *QUICK, "--out", str(path), "--json"])
    assert status == 0, err
    report = json.loads(out)
    assert report["feature_width"] == 4 * 4 * 12  # the 8x8 map pooled to 4x4, 12 filters
    assert report["samples"]["train"] == 400
    with np.load(path) as archive:
        assert set(archive.files) == {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}
        assert archive["x_train"].dtype == np.float32 and archive["y_train"].dtype == np.int64
        assert np.abs(archive["x_test"]).max() <= 1.0  # tanh outputs
    dataset = load_dataset(f"features:{path}")
    assert dataset.num_features == 192 and len(dataset.y_val) == report["samples"]["val"]
    status, out, err = _run(
        capsys,
        ["train", "--dataset", f"features:{path}", "--algo", "ssdfa", "--fixed", "--epochs", "2", "--hidden", "24",
         "--json"],
    )
    assert status == 0, err
    assert json.loads(out)["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--conv", "3x3"], "bad convolution layer '3x3'"),
        (["--dataset", "cifar10"], "features need images"),
        (["--lr", "-1"], "--lr must be a positive number"),
    ],
)
def test_bad_arguments_are_one_line_and_write_nothing(capsys, tmp_path, arguments, message):
    path = tmp_path / "out.npz"
    status, out, err = _run(capsys, ["features", *QUICK, *arguments, "--out", str(path)])
    assert status == 2 and message in err and err.count("\n") == 1, err
    assert not path.exists()


def test_missing_output_directory_is_refused_before_training(capsys, tmp_path):
    status, _, err = _run(capsys, ["features", *QUICK, "--out", str(tmp_path / "missing" / "f.npz")])
    assert status == 2 and "no such directory" in err
