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


class _FakeBoard:
    """A link to a board reporting ``inputs`` and ``classes``: records the SELECT words written
    and stops the run at its first sample."""

    def __init__(self, inputs: int, classes: int, layers: int = 2):
        from ssdfa import learner_regs as regs
        from ssdfa.board.link import Hello

        self.regs = regs
        self.hello_reply = Hello(last_seq=0, has_last=False, inputs=inputs, feature_bytes=2, classes=classes,
                                 map_version=regs.MAP_VERSION)
        self.layers = layers
        self.selects: list[int] = []
        self.transport = type("Port", (), {"name": "fake"})()

    def hello(self):
        return self.hello_reply

    def read(self, address, count=1):
        if address == self.regs.REG_ID:
            return [self.regs.IDENTIFIER]
        return [self.layers << self.regs.VERSION_LAYERS_SHIFT]

    def write(self, address, words):
        if address == self.regs.REG_SELECT:
            self.selects += list(words)

    def sample(self, features, label):
        from ssdfa.board.link import LinkError

        raise LinkError("fake board: stop at the first sample")


@pytest.fixture(scope="module")
def weights_24(tmp_path_factory):
    path = tmp_path_factory.mktemp("board") / "w24.npz"
    assert main(["train", "--dataset", "digits", "--hidden", "24", "--fixed", "--epochs", "1", "--train-limit", "50",
                 "--save", str(path), "--json"]) == 0
    return path


def _eval_on(board, weights, monkeypatch, capsys, *extra):
    import contextlib

    from ssdfa.cli import board as board_cli

    monkeypatch.setattr(board_cli, "_link", lambda args, configs, b: (contextlib.ExitStack(), board))
    capsys.readouterr()
    status = main(["board", "eval", str(weights), "--board", "icebreaker", "--port", "fake", *extra])
    return status, capsys.readouterr().err


def test_board_eval_loads_the_boards_own_pe_split(weights_24, monkeypatch, capsys):
    """The iCEBreaker's learner is 64-24-10 on PEs 1+1: every write goes to PE 0 of its layer."""
    board = _FakeBoard(64, 10)
    status, err = _eval_on(board, weights_24, monkeypatch, capsys)
    assert status == 2 and "stop at the first sample" in err
    assert board.selects and {(word & board.regs.SELECT_PE_MASK) >> board.regs.SELECT_PE_SHIFT
                              for word in board.selects} == {0}


def test_board_eval_refuses_a_board_of_another_shape_before_loading(weights_24, monkeypatch, capsys):
    board = _FakeBoard(100, 3)
    status, err = _eval_on(board, weights_24, monkeypatch, capsys)
    assert status == 2 and "the board's learner has 100 inputs, 3 classes" in err and err.count("\n") == 1
    assert board.selects == []


@pytest.mark.parametrize(("content", "problem"), [
    ('{"phase": "load", "pending": [41]}', "pending [41] is not [SEQ, command, payload]"),
    ('{"phase": "test", "counters": {"a": 1}}', "counters lack cycles, train_samples or train_correct"),
    ('{"phase": "bogus"}', "phase 'bogus' is not one of load, train, test, readback"),
    ('{"phase": "train", "next_sample": -4}', "next_sample -4 is not a sample index"),
    ('{"phase": "train", "train_predictions": [1, "x"]}', "train_predictions is not a list of class indices"),
    ('{"phase": "train", "colour": 3}', "unexpected keyword argument 'colour'"),
    ("[1, 2]", "argument after ** must be a mapping"),
])
def test_a_resume_file_that_is_not_a_progress_file_is_one_line(tmp_path, capsys, content, problem):
    path = tmp_path / "progress.json"
    path.write_text(content)
    status = main(["board", "train", "--board", "icebreaker", "--port", "/dev/null", "--resume", str(path)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and f"cannot resume from {path}" in err and problem in err, err
