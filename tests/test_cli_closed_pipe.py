"""A closed standard output ends every command quietly: no traceback, exit status 141.

``ssdfa costs --json | head -1`` closes the pipe while the command still prints. The
subprocess tests close the reading end before the command starts, so that its first write
fails every time (no race with the pipe's buffer); the in-process tests give ``main`` a
standard output whose writes fail, for commands that are cheap to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssdfa.cli import EXIT_BROKEN_PIPE, main

REPO = Path(__file__).resolve().parents[1]


def run_with_closed_stdout(*argv: str) -> subprocess.CompletedProcess:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the command's first write fails with EPIPE
    try:
        return subprocess.run(
            [sys.executable, "-m", "ssdfa", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            cwd=REPO,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv",
    [
        ("costs", "--net", "alexnet", "--json"),
        ("train", "--hidden", "16", "--epochs", "1", "--train-limit", "20", "--json"),
        ("study", "studies/quick.toml", "--dry-run"),
    ],
    ids=" ".join,
)
def test_a_closed_pipe_ends_the_command_quietly(argv):
    result = run_with_closed_stdout(*argv)
    assert result.returncode == EXIT_BROKEN_PIPE, result.stderr
    assert result.stderr == ""


class _ClosedPipe:
    """A standard output whose reader has gone."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self):
        return False


@pytest.mark.parametrize(
    "argv",
    [
        ["costs", "--net", "cifar100-fc"],
        ["costs", "--net", "alexnet", "--per-layer", "--json"],
        ["--help"],
        ["--version"],
        ["costs", "--help"],
    ],
    ids=" ".join,
)
def test_main_turns_a_broken_pipe_into_status_141_without_output(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(argv) == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def _run_with_closed(descriptor: int, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ssdfa", *argv], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.close(descriptor))


def test_a_closed_standard_error_leaves_the_command_running(tmp_path):
    """``2>&-``: the messages go nowhere, the output and the files are as usual."""
    done = _run_with_closed(2, "costs", "--net", "mnist-fc", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["net"] == "mnist-fc"


def test_a_closed_standard_output_is_one_error_line(tmp_path):
    """``>&-``: what was asked to be printed cannot be, as ``echo >&-`` says."""
    done = _run_with_closed(1, "costs", "--net", "mnist-fc")
    assert (done.returncode, done.stderr) == (2, "ssdfa: error: standard output is closed\n")
