"""``ssdfa.cli.run_script``: the benchmarks' entry point handles bad input, a closed standard
output and Ctrl-C as every ``ssdfa`` command does."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from ssdfa.cli import run_script
    from ssdfa.errors import SsdfaError

    def main():
        what = sys.argv[1]
        if what == "bad":
            raise SsdfaError("--size 0 is not a size")
        if what == "value":
            raise ValueError("batch must be a positive integer, not 0")
        if what == "missing":
            open("no-such-file.csv")
        if what == "status":
            return 3
        if what == "wait":
            print("ready", flush=True)
            time.sleep(60)
        for _ in range(100_000):
            print("a line of the table")
        return 0

    run_script(main)
    """
)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "some_bench.py"
    path.write_text(SCRIPT)
    return path


def test_bad_input_is_one_line_naming_the_script(script):
    done = subprocess.run([sys.executable, str(script), "bad"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (2, "some_bench: error: --size 0 is not a size\n")


@pytest.mark.parametrize(("what", "line"), [
    ("value", "some_bench: error: batch must be a positive integer, not 0\n"),
    ("missing", "some_bench: error: no-such-file.csv: No such file or directory\n"),
])
def test_a_value_error_or_a_missing_file_is_one_line_as_in_the_cli(script, tmp_path, what, line):
    done = subprocess.run([sys.executable, str(script), what], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, line)


def test_the_status_of_main_is_the_exit_status(script):
    assert subprocess.run([sys.executable, str(script), "status"], timeout=60).returncode == 3


def test_a_closed_standard_output_ends_quietly_with_141(script):
    run = subprocess.Popen([sys.executable, str(script), "print"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run.stdout.close()
    _, stderr = run.communicate(timeout=60)
    assert (run.returncode, stderr) == (141, b"")


@pytest.mark.parametrize(("stop", "status", "line"), [
    (signal.SIGINT, 130, "some_bench: interrupted\n"),
    (signal.SIGTERM, 143, "some_bench: terminated\n"),  # unwinds like Ctrl-C: clean-up runs
])
def test_ctrl_c_and_sigterm_are_one_line_and_their_status(script, stop, status, line):
    run = subprocess.Popen([sys.executable, str(script), "wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    assert run.stdout.readline() == "ready\n"
    run.send_signal(stop)
    _, stderr = run.communicate(timeout=60)
    assert (run.returncode, stderr) == (status, line)


def test_the_cli_restores_the_sigterm_handler_it_installs(capsys):
    from ssdfa.cli import main

    before = signal.getsignal(signal.SIGTERM)
    assert main(["costs", "--net", "mnist-fc"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before
