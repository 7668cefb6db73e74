"""The weight flow through the RTL: a network trained in the model and saved by ``ssdfa train
--save`` runs in the RTL network with the model's predictions, loaded through the host port on
any PE partition (``ssdfa eval --sim``), or baked into the generated Verilog's memories
(``ssdfa verilog --network --weights``) and simulated without any host load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssdfa.cli import main
from ssdfa.model.datasets import limit_samples, load_dataset
from ssdfa.model.weight_file import load_network
from ssdfa.sim.network_cosim import network_design
from ssdfa.sim.network_weights import hardware_configs, hardware_state, simulate_inference

#: The network of these tests: 64-32-10 SSDFA, trained on 300 digits samples for one epoch. With
#: the default PEs its Verilator build is the one the suite's network test and the demo use.
TRAIN = ["train", "--dataset", "digits", "--hidden", "32", "--fixed", "--epochs", "1", "--train-limit", "300",
         "--seed", "3", "--json"]
TEST_SAMPLES = 12


@pytest.fixture(scope="module")
def saved_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "digits32.npz"
    assert main([*TRAIN, "--save", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def test_split():
    """The first test samples (class-balanced), as ``ssdfa eval --limit`` takes them."""
    dataset = limit_samples(load_dataset("digits"), test=TEST_SAMPLES)
    return dataset.x_test, np.asarray(dataset.y_test)


def _model_predictions(saved, x):
    network = saved.network()
    return network.predict(network.quantize_inputs(x))


# Verilator's build of the default 64-32-10 network is the one the suite's network test and the
# demo share (cached by the Verilog's hash); built fresh it takes about a minute, hence slow.
@pytest.mark.parametrize("simulator, pes", [("icarus", "2,1"), pytest.param("verilator", None, marks=pytest.mark.slow)])
def test_eval_runs_the_saved_network_in_rtl_with_the_models_predictions(
        require_tool, saved_file, test_split, capsys, simulator, pes):
    require_tool(simulator)
    argv = ["eval", str(saved_file), "--limit", str(TEST_SAMPLES), "--sim", simulator, "--json"]
    status = main(argv + (["--pes", pes] if pes else []))
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    rtl = report["rtl"]
    assert rtl["identical"] and rtl["predictions_sha256"] == report["predictions_sha256"]
    assert rtl["accuracy"] == report["accuracy"] and report["samples"] == TEST_SAMPLES
    assert rtl["pes"] == ([2, 1] if pes else [4, 2])
    predictions = _model_predictions(load_network(saved_file), test_split[0])
    assert len(set(predictions.tolist())) > 1, "a test that predicts one class could not tell weights apart"


def test_generated_verilog_starts_trained_and_infers_without_a_host_load(require_tool, saved_file, test_split,
                                                                          tmp_path, capsys):
    require_tool("icarus")
    out = tmp_path / "verilog"
    assert main(["verilog", "--network", "--weights", str(saved_file), "--out", str(out), "--pes", "2,1"]) == 0
    written = (out / "ssdfa_network.v").read_text()
    assert capsys.readouterr().out.strip() == str(out / "ssdfa_network.v")
    saved = load_network(saved_file)
    configs = hardware_configs(saved, (2, 1))
    state = hardware_state(saved, configs)
    # The file says how a host scales raw features (digits: pixels 0..16, max-abs scaling).
    (inputs,) = [line for line in written.splitlines() if line.startswith("// inputs: ")]
    assert "raw feature r of digits (max-abs scaling of its training split): x = r / 16, rounded" in inputs
    # Apart from that line, the simulated design is exactly the file the command wrote.
    assert network_design(configs, initial_state=state, build_root=tmp_path).verilog == written.replace(
        inputs + "\n", "")
    assert "weight memories and index tables start trained" in written
    x, labels = test_split
    network = saved.network()
    result = simulate_inference(configs, state, network.quantize_inputs(x), labels, simulator="icarus",
                                preloaded=True, build_root=tmp_path)
    expected = _model_predictions(saved, x)
    np.testing.assert_array_equal(result.predictions, expected)
    # Without the trained memories the same design predicts something else (all weights 0).
    assert len(set(expected.tolist())) > 1


def test_cosim_network_starts_from_the_saved_file_and_saves_the_rtl_state(require_tool, saved_file, tmp_path,
                                                                          capsys):
    """``cosim --network --load-weights`` trains on from the file in model and RTL, bit for bit,
    and ``--save-weights`` writes the RTL's state as a saved network the model reads back."""
    require_tool("icarus")
    after = tmp_path / "after.npz"
    status = main(["cosim", "--network", "--sim", "icarus", "--dataset", "digits", "--hidden", "32", "--seed", "3",
                   "--train-limit", "20", "--test-limit", "6", "--load-weights", str(saved_file),
                   "--save-weights", str(after)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "weights: all 2,410 identical to the model's" in out
    before, trained_on = load_network(saved_file), load_network(after)
    assert trained_on.fixed and trained_on.spec == before.spec
    assert any(not np.array_equal(a, b) for a, b in zip(before.weights, trained_on.weights))
    assert any(not np.array_equal(a, b) for a, b in zip(before.lfsr_states, trained_on.lfsr_states))


def test_verilog_refuses_an_output_it_cannot_create_before_elaborating(saved_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status = main(["verilog", "--network", "--weights", str(saved_file), "--out", str(blocker / "v")])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err == f"ssdfa: error: --out {blocker / 'v'}: cannot create the directory ({blocker} is a file)\n"


INTERRUPTED_ELABORATION = """
import sys
from amaranth import Elaboratable
import ssdfa.rtl.network
from ssdfa.cli import main

class Unfinished(Elaboratable):
    def elaborate(self, platform):
        raise AssertionError("never elaborated")

def interrupted(*args, **kwargs):
    unfinished = Unfinished()  # what Ctrl-C leaves half built: Amaranth warns of it when collected
    raise KeyboardInterrupt

ssdfa.rtl.network.generate_network = interrupted
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_while_elaborating_is_one_line_and_leaves_no_directory(saved_file, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "new" / "v"
    run = subprocess.run([sys.executable, "-c", INTERRUPTED_ELABORATION, "verilog", "--network", "--weights",
                          str(saved_file), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stderr, run.stdout) == (130, "ssdfa: interrupted\n", "")
    assert not out.exists()


def test_eval_fails_when_the_rtl_predicts_otherwise_naming_the_first_sample(saved_file, capsys, monkeypatch):
    """The comparison itself, without a simulator: the RTL's result is replaced by one with a
    changed prediction, and ``ssdfa eval --sim`` must exit 1 and name that sample."""
    from ssdfa.sim import network_weights

    def one_wrong(configs, state, x_raw, labels, *, simulator, **options):
        saved = load_network(saved_file)
        predictions = saved.network().predict(x_raw).astype(np.int64)
        predictions[4] = (predictions[4] + 1) % 10
        return network_weights.InferenceResult(predictions, 1000, 0.5, 0.0, False)

    monkeypatch.setattr(network_weights, "simulate_inference", one_wrong)
    status = main(["eval", str(saved_file), "--limit", str(TEST_SAMPLES), "--sim", "icarus"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL: 1 of 12 RTL predictions differ; the first is sample 4: RTL" in out


def test_hardware_configs_names_what_it_takes(saved_file):
    from ssdfa.sim.network_weights import hardware_state

    with pytest.raises(TypeError, match=r"expected a SavedNetwork \(ssdfa\.model\.load_network\(path\)\), not a str"):
        hardware_configs(str(saved_file))
    saved = load_network(saved_file)
    for pes in (4, (4.0, 2), "4,2"):
        with pytest.raises(ValueError, match="pes must be a sequence of whole PE counts"):
            hardware_configs(saved, pes=pes)
    with pytest.raises(TypeError, match="expected a SavedNetwork"):
        hardware_state(saved.network(), hardware_configs(saved))
