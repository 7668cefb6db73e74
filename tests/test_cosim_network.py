"""The whole learner in RTL under cocotb: the 64-32-10 digits network of ``ssdfa cosim --network``
trains on digits samples in Icarus Verilog (and in Verilator when its build is cached or the
budget allows), bit for bit against the model.

The run checks every final weight, every training-time and test prediction, the counters
against the cost model (one error word per hidden neuron per sample) and the clocks per sample
against the schedule's minimum; the printed report names the first differing weight on a
mismatch. Bad inputs are refused before anything is elaborated or simulated.
"""

from __future__ import annotations

import numpy as np
import pytest

from ssdfa.errors import SsdfaError
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import ArithmeticConfig
from ssdfa.model.weight_file import save_network
from ssdfa.rtl.network import network_layer_configs
from ssdfa.sim import network_cosim
from ssdfa.sim.network_cosim import NetworkJob, RunRequest, _first_difference, run_network_cosim, simulate_network
from ssdfa.sim.network_driver import NetworkDriver, NetworkState

#: The digits network of ``ssdfa cosim --network`` on 30 training and 10 test samples (Icarus
#: Verilog simulates it at about two thousand clocks per CPU second: some 40,000 clocks here).
DIGITS = dict(dataset="digits", hidden=(32,), epochs=1, seed=0, train_limit=30, test_limit=10)


def _check(report, train: int, test: int) -> None:
    text = "\n".join(report.lines)
    assert report.passed, text
    assert "weights: all 2,410 identical to the model's" in text
    assert f"predictions: all {train} training-time and {test} test predictions identical" in text
    assert f"error words received: every hidden neuron of layer 0: {train} (1 per sample)" in text
    assert "0      backward      2,080     2,208     2,048        32  equal" in text
    assert report.figures["test_accuracy"] == report.figures["model_test_accuracy"]
    # The minimum is a lower bound that the hardware meets within its latencies.
    assert report.figures["schedule_minimum"] <= report.figures["cycles_per_sample"]
    assert report.figures["cycles_per_sample"] <= 1.10 * report.figures["schedule_minimum"]
    assert report.figures["utilisation"] <= report.figures["utilisation_bound"]


def test_digits_network_trains_bit_exact_on_icarus(require_tool):
    require_tool("icarus")
    lines = []
    report = run_network_cosim(NetworkJob(simulator="icarus", **DIGITS), out=lines.append)
    _check(report, 30, 10)
    assert report.lines == lines


@pytest.mark.slow
def test_digits_network_trains_bit_exact_on_verilator_and_a_wrong_weight_fails_the_run(require_tool, monkeypatch):
    """The same run on Verilator: the suite's one build of the network, shared with the demo.
    Then the run against a reference with one weight changed must fail, naming that weight."""
    require_tool("verilator")
    job = NetworkJob(simulator="verilator", **DIGITS)
    _check(run_network_cosim(job, out=lambda line: None), 30, 10)

    honest = network_cosim.model_reference

    def tampered(*args, **kwargs):
        reference = honest(*args, **kwargs)
        reference.weights[1][3, 5] += 1
        return reference

    monkeypatch.setattr(network_cosim, "model_reference", tampered)
    report = run_network_cosim(job, out=lambda line: None)
    assert not report.passed and report.exit_status == 1
    mismatch = [line for line in report.lines if line.startswith("MISMATCH first differing weight")]
    assert mismatch and "layer 1, neuron 3, index 5 (input 5)" in mismatch[0], report.lines


def test_bad_inputs_are_refused_before_anything_is_simulated(tmp_path):
    configs = network_layer_configs((64, 32, 10), ArithmeticConfig())
    driver = NetworkDriver(configs)
    state = NetworkState(
        weights=[np.zeros((32, 65), dtype=np.int64), np.zeros((10, 33), dtype=np.int64)],
        feedback=[(np.zeros((32, 1), dtype=np.int64), np.ones((32, 1), dtype=np.int64))],
        lfsr_states=[np.ones(32, dtype=np.uint64), np.ones(10, dtype=np.uint64)],
    )
    x = np.zeros((2, 64), dtype=np.int64)
    # No simulator is needed: these fail while checking, before elaboration or a build.
    with pytest.raises(SsdfaError, match="sample 0 has label 12"):
        simulate_network(configs, state, [RunRequest("epoch 1", "train", x, [12, 0])], simulator="icarus",
                         build_root=tmp_path)
    with pytest.raises(SsdfaError, match="a sample has 60 features"):
        simulate_network(configs, state, [RunRequest("epoch 1", "train", x[:, :60], [1, 0])], simulator="icarus",
                         build_root=tmp_path)
    with pytest.raises(SsdfaError, match="mode must be one of train, infer"):
        simulate_network(configs, state, [RunRequest("epoch 1", "learn", x, [1, 0])], simulator="icarus",
                         build_root=tmp_path)
    path = tmp_path / "other.npz"
    save_network(path, FixedNetwork(NetworkSpec((64, 16, 10)), ArithmeticConfig()))
    with pytest.raises(SsdfaError, match="other.npz: the model's layer sizes 64-16-10 are not the hardware's 64-32-10"):
        run_network_cosim(NetworkJob(simulator="icarus", load_weights=str(path), **DIGITS), out=lambda line: None)
    assert not list(tmp_path.glob("elaborated/*")), "nothing may be elaborated for refused inputs"


def test_the_first_differing_weight_is_named_by_layer_neuron_and_index():
    expected = [np.zeros((3, 4), dtype=np.int64), np.zeros((2, 4), dtype=np.int64)]
    actual = [w.copy() for w in expected]
    assert _first_difference(expected, actual) is None
    actual[1][1, 2] = -5
    actual[1][0, 3] = 7
    assert _first_difference(expected, actual) == (1, 0, 3, 0, 7)


def test_network_job_takes_ssdfa_trains_rule_and_refuses_a_bad_shift(tmp_path, monkeypatch):
    """Without --feedback-gain and --shift the job builds the network `ssdfa train` builds (the
    rule: gain 8, shift 4 on digits); the model and the RTL get the same shift."""
    seen = {}

    def stop(configs, state, runs, **kwargs):
        seen["shift"] = {c.arithmetic.shift for c in configs}
        raise network_cosim.NetworkSimulationFailed("stopped before simulating")

    monkeypatch.setattr(network_cosim, "simulate_network", stop)
    lines = []
    report = run_network_cosim(NetworkJob(simulator="icarus", **DIGITS), out=lines.append)
    assert not report.passed
    assert "(gain 8)" in lines[0] and "learning rate 2^-4" in lines[1] and seen["shift"] == {4}
    lines.clear()
    run_network_cosim(NetworkJob(simulator="icarus", feedback_gain=2.0, shift=6, **DIGITS), out=lines.append)
    assert "(gain 2)" in lines[0] and "learning rate 2^-6" in lines[1] and seen["shift"] == {6}
    with pytest.raises(SsdfaError, match="shift must be an integer from 0 to 30, not 40"):
        run_network_cosim(NetworkJob(simulator="icarus", shift=40, **DIGITS), out=lambda line: None)
