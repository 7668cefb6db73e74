"""The host driver against the Verilator board core through its simulated UART (docs/board.md
§4): bit for bit against the model, through damaged requests and replies, and resumed after a
link that went dead after a sample reached the board but before its reply came back."""

from __future__ import annotations

import pytest

from ssdfa.board import frames
from ssdfa.board.frames import Command

SIZES = (64, 10, 10)
PES = (2, 2)


class FaultyCable:
    """A transport that damages the ``damage_request``-th request, the reply to the
    ``damage_reply``-th, and goes dead for good once the ``cut_after_sample``-th SAMPLE request
    has been delivered (its reply and everything after are lost)."""

    def __init__(self, inner, *, damage_request: int, damage_reply: int, cut_after_sample: int):
        self.inner, self.name = inner, inner.name
        self.damage_request, self.damage_reply, self.cut_after_sample = damage_request, damage_reply, cut_after_sample
        self.requests = self.samples = 0
        self.damage_next_reply = False
        self.dead = False

    def write(self, data):
        if self.dead:
            return
        self.requests += 1
        data = bytearray(data)
        if self.requests == self.damage_request:
            data[-1] ^= 0x01
        self.damage_next_reply = self.requests == self.damage_reply
        if data[2] == Command.SAMPLE:
            self.samples += 1
            if self.samples == self.cut_after_sample:
                self.dead = True
        self.inner.write(bytes(data))

    def read(self, count, timeout):
        if self.dead:
            return self.inner.read(count, 0.01) and b""  # the reply is lost on the way
        data = bytearray(self.inner.read(count, timeout))
        if self.damage_next_reply and count > 2 and data:
            data[-1] ^= 0x80  # the CRC's low byte
            self.damage_next_reply = False
        return bytes(data)

    def discard_input(self):
        self.inner.discard_input()

    def close(self):
        self.inner.close()


@pytest.fixture(scope="module")
def digits_model_inputs():
    from ssdfa.model.datasets import limit_samples, load_dataset
    from ssdfa.model.fixed_network import FixedNetwork
    from ssdfa.model.network import Algorithm, NetworkSpec
    from ssdfa.model.neuron_ops import ArithmeticConfig

    dataset = limit_samples(load_dataset("digits"), 12, test=6)

    def model():
        spec = NetworkSpec(SIZES, algorithm=Algorithm.SSDFA, seed=3, balanced=True, feedback_gain=8.0)
        return FixedNetwork(spec, ArithmeticConfig(seed=3))

    network = model()
    return model, (network.quantize_inputs(dataset.x_train), dataset.y_train,
                   network.quantize_inputs(dataset.x_test), dataset.y_test)


@pytest.mark.slow
def test_board_training_over_the_simulated_uart_survives_damage_and_resumes_bit_exact(require_tool,
                                                                                       digits_model_inputs, tmp_path):
    require_tool("verilator")
    from ssdfa.board.boards import board
    from ssdfa.board.driver import Progress, train_on_board
    from ssdfa.board.link import Link, LinkError
    from ssdfa.rtl.network import network_layer_configs
    from ssdfa.sim.board_sim import SimulatedBoard

    make_model, data = digits_model_inputs
    model = make_model()
    configs = network_layer_configs(SIZES, model.config, pes=PES, activation=model.spec.activation)
    progress_file = tmp_path / "progress.json"
    icebreaker = board("icebreaker")
    with SimulatedBoard(configs) as simulated:
        cable = FaultyCable(simulated.transport, damage_request=5, damage_reply=9, cut_after_sample=5)
        link = Link(cable, timeout=20.0, retries=1)
        with pytest.raises(LinkError, match=r"SAMPLE request SEQ \d+ failed .*resume from sample 4 of train"):
            train_on_board(link, model, PES, *data, board=icebreaker, progress_file=progress_file,
                           out=lambda line: None)
        assert link.retransmissions >= 2 + 1  # the damaged request, the damaged reply, the dead link
        progress = Progress.load(progress_file)
        assert (progress.phase, progress.next_sample) == ("train", 4)
        assert progress.pending[1] == Command.SAMPLE
        # The board got sample 4; its reply was lost. The resumed run sends it again with the
        # same SEQ, and the bridge answers from its record instead of training on it twice.
        resumed = Link(simulated.transport, timeout=20.0)
        run = train_on_board(resumed, make_model(), PES, *data, board=icebreaker, progress=progress,
                             out=lambda line: None)
    assert run.bit_exact, run.lines
    assert run.figures["train_samples"] == 12 and run.figures["test_samples"] == 6
    assert run.figures["link_samples_per_second"] == pytest.approx(115200 / 10 / (6 + 129 + 6 + 1), rel=1e-3)


@pytest.mark.slow
def test_bridge_answers_bad_length_and_bad_command_and_unknown_registers(require_tool):
    require_tool("verilator")
    from ssdfa.board.link import Link
    from ssdfa.model.neuron_ops import ArithmeticConfig
    from ssdfa.rtl.network import network_layer_configs
    from ssdfa.sim.board_sim import SimulatedBoard
    from ssdfa import learner_regs as regs

    configs = network_layer_configs(SIZES, ArithmeticConfig(seed=3), pes=PES)
    with SimulatedBoard(configs) as simulated:
        link = Link(simulated.transport, timeout=20.0)
        hello = link.hello()
        assert (hello.inputs, hello.classes, hello.feature_bytes) == (64, 10, 2)
        assert link.exchange(Command.SAMPLE, b"\x00" * 5).status == frames.Status.BAD_LENGTH
        assert link.exchange(0x7E, b"").status == frames.Status.BAD_COMMAND
        assert link.exchange(Command.READ, bytes([0x0F, 0xF0, 1])).status == frames.Status.BUS_DECERR
        assert link.exchange(Command.WRITE, bytes([0, regs.REG_ID]) + b"\0\0\0\0").status == frames.Status.BUS_SLVERR
        assert link.read(regs.REG_ID) == [regs.IDENTIFIER]
        link.write(regs.REG_SAMPLES, [123456])
        assert link.read(regs.REG_SAMPLES, 3) == [123456] * 3
        # A repeated SEQ is answered from the record, not carried out again: ADDRESS moves once.
        link.write(regs.REG_ADDRESS, [0])
        seq = link.next_seq
        first = link.exchange(Command.READ, bytes([0, regs.REG_DATA, 2]), seq=seq)
        again = link.exchange(Command.READ, bytes([0, regs.REG_DATA, 2]), seq=seq)
        assert first == again and link.read(regs.REG_ADDRESS) == [2]


@pytest.mark.slow
def test_board_eval_runs_saved_weights_with_the_models_predictions(require_tool, tmp_path, capsys):
    require_tool("verilator")
    import json

    from ssdfa.cli import main

    weights = tmp_path / "digits.npz"
    assert main(["train", "--dataset", "digits", "--hidden", "10", "--fixed", "--epochs", "1", "--seed", "3",
                 "--save", str(weights), "--json"]) == 0
    capsys.readouterr()
    status = main(["board", "eval", str(weights), "--board", "icebreaker", "--sim", "verilator", "--pes", "2,2",
                   "--limit", "8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["identical"] and report["samples"] == 8
    assert report["accuracy"] == report["model_accuracy"]
