"""The scripts under examples/ run as documented (docs/api.md), in order, in a fresh directory:
train and save, evaluate, export to Verilog, run in RTL. Every script there must be listed here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Script -> (arguments, a line its output must contain (regex), the simulator it needs or None).
RUNS = {
    "train_and_save.py": (["net.npz"], r"^saved net\.npz \(SHA-256 [0-9a-f]{64}\)$", None),
    "evaluate.py": (["net.npz"], r"^test accuracy 0\.(8[5-9]|9\d)\d* on 359 samples$", None),
    "export_verilog.py": (["net.npz", "rtl"], r"^wrote rtl/ssdfa_network\.v \(\d+ KiB\): weight memories", None),
    "rtl_inference.py": (["net.npz", "icarus", "10"], r"^RTL predictions identical to the model's$", "icarus"),
}


def test_every_example_is_run_by_this_test():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUNS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("examples")


@pytest.mark.parametrize("script", list(RUNS))  # in order: each uses the file the first one writes
def test_example_runs_and_prints_what_it_promises(script, workdir, require_tool):
    arguments, expected, tool = RUNS[script]
    if tool is not None:
        require_tool(tool)
    run = subprocess.run([sys.executable, str(EXAMPLES / script), *arguments], cwd=workdir, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert re.search(expected, run.stdout, re.MULTILINE), run.stdout
    if script == "export_verilog.py":
        assert (workdir / "rtl" / "ssdfa_network.v").read_text().count("weights[0] = ") >= 1
