"""``ssdfa board`` link errors: a port where no board answers is one line and exit 2."""

from __future__ import annotations

import os

import pytest

from ssdfa.cli import main


def test_a_silent_port_times_out_in_one_line_with_exit_2(capsys):
    pytest.importorskip("serial")
    master, slave = os.openpty()  # a terminal that nothing answers on
    try:
        status = main(["board", "train", "--board", "icebreaker", "--port", os.ttyname(slave), "--timeout", "0.1",
                       "--train-limit", "10", "--test-limit", "0"])
    finally:
        os.close(master)
        os.close(slave)
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "HELLO request SEQ 0 failed after 4 attempts: no valid reply within 0.1 s" in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
