"""``benchmarks/table4_mnist_cnn.py`` on a tiny stand-in for MNIST (random 28x28 IDX files): its
JSON records only the settings its rows used, and bad input is one line before any training."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "table4_mnist_cnn.py"
#: A network small enough to train in a second: 10 filters, 16 hidden neurons (SSDFA needs
#: rank x connections >= 10 outputs).
SMALL = ["--conv", "10c3p2", "--hidden", "16", "--batch", "8"]


def _idx(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x08 and the number of dimensions, the sizes, the data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(4)
    (directory / "t10k-images-idx3-ubyte").write_bytes(_idx(rng.integers(0, 256, size=(200, 28, 28))))
    (directory / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.arange(200) % 10))
    return directory


def _run(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(data_dir), *arguments],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("arithmetic, flags, absent", [("float32", [], "fixed"),
                                                        ("fixed", ["--fixed", "--no-float"], "float_lr")])
def test_the_json_holds_every_row_and_only_the_settings_its_rows_used(data_dir, tmp_path, arithmetic, flags, absent):
    out = tmp_path / "table.json"
    done = _run(data_dir, *SMALL, "--algorithms", "bp,ssdfa", *flags, "--json", str(out))
    assert done.returncode == 0, done.stderr
    table = json.loads(out.read_text())
    assert [(row["arithmetic"], row["algorithm"]) for row in table["rows"]] == [(arithmetic, "bp"), (arithmetic, "ssdfa")]
    assert absent not in table["setup"]
    assert str(data_dir) not in out.read_text()  # the data directory is recorded as DIR
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]  # no temporary file left


@pytest.mark.parametrize("arguments, message", [
    (["--conv", "4c3p2", "--hidden", "16", "--algorithms", "ssdfa"], "cannot receive all 10 output errors"),
    (["--algorithms", "bp,nope"], "unknown algorithm 'nope'"),
    (["--epochs", "0"], "--epochs: expected a positive integer, not 0"),
    (["--json", "/nonexistent-directory/table.json"], "no directory /nonexistent-directory"),
])
def test_bad_input_is_one_line_before_any_training(data_dir, arguments, message):
    done = _run(data_dir, *arguments)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "test acc" not in done.stdout  # nothing trained


def test_a_closed_standard_output_ends_the_run_quietly(data_dir):
    run = subprocess.Popen([sys.executable, str(SCRIPT), "--data-dir", str(data_dir), *SMALL, "--algorithms", "bp"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run.stdout.close()  # the reader went away before the first line
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 141 and stderr == b"", stderr.decode()
