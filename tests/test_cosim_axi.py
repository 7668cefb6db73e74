"""The learner behind AXI4-Lite and AXI4-Stream (``AXILearner``), driven by cocotbext-axi's bus
models under Icarus Verilog and Verilator (docs/bus.md).

- The register map's generated copies (docs table, C header, Python module) are up to date.
- Random register traffic from fixed seeds answers as the register model says, then a short
  training run with random pauses on every channel (both streams and the five AXI4-Lite
  channels) is bit for bit the model's, and learner accesses during the run answer SLVERR.
- A digits training epoch through the bus (64-16-10) is bit for bit the model's: every weight,
  every training-time and test prediction (Verilator).
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path

import pytest

from ssdfa import learner_regs
from ssdfa.errors import SsdfaError
from ssdfa.model.datasets import limit_samples, load_dataset
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.network import Algorithm, NetworkSpec
from ssdfa.model.neuron_ops import ArithmeticConfig
from ssdfa.rtl import register_map
from ssdfa.rtl.network import network_layer_configs
from ssdfa.sim import network_cosim
from ssdfa.sim.axi_cosim import (
    BusJob,
    bus_training_check,
    busy_probes,
    first_register_mismatch,
    probe_mismatch,
    random_register_traffic,
    run_bus_training,
    simulate_axi_learner,
)

ROOT = Path(__file__).resolve().parents[1]
#: The bus tests' network: digits through 16 hidden neurons on 4 + 2 PEs (one Verilator build
#: shared by the traffic test and the epoch test).
SIZES, PES = (64, 16, 10), (4, 2)
#: Pause probability per clock on each channel: the bus models hold valid low or ready low.
PAUSES = {"axil": 0.3, "source": 0.5, "sink": 0.5}


def _configs():
    return network_layer_configs(SIZES, ArithmeticConfig(), pes=PES)


def test_the_generated_register_map_copies_are_up_to_date():
    stale = register_map.stale_artefacts(ROOT)
    assert not stale, f"regenerate with `python -m ssdfa.rtl.register_map`: {stale}"
    assert learner_regs.REG_DATA == register_map.register("DATA").offset


def test_register_offsets_are_distinct_words_and_fields_do_not_overlap():
    offsets = [r.offset for r in register_map.REGISTERS]
    assert len(set(offsets)) == len(offsets) and all(o % 4 == 0 for o in offsets)
    assert max(offsets) < register_map.COUNTER_WINDOW
    assert register_map.COUNTER_WINDOW + 4 * register_map.COUNTER_WINDOW_WORDS <= 1 << register_map.ADDR_WIDTH
    for reg in register_map.REGISTERS:
        masks = [f.mask for f in reg.fields]
        assert sum(masks) == functools.reduce(operator.or_, masks, 0), reg.name
        assert all(f.lsb + f.width <= register_map.DATA_WIDTH for f in reg.fields), reg.name


def test_the_register_check_names_the_first_wrong_answer():
    configs = _configs()
    accesses = [["r", learner_regs.REG_ID], ["w", learner_regs.REG_SAMPLES, 7, 4], ["r", learner_regs.REG_SAMPLES],
                ["r", 0x300]]
    right = [[0, learner_regs.IDENTIFIER], [0, 0], [0, 7], [learner_regs.RESP_DECERR, 0]]
    assert first_register_mismatch(configs, 0, accesses, right) is None
    wrong = [list(a) for a in right]
    wrong[2][1] = 8
    assert first_register_mismatch(configs, 0, accesses, wrong) == "access 2 (r SAMPLES): read 0x00000008, expected 0x00000007"
    wrong = [list(a) for a in right]
    wrong[3][0] = learner_regs.RESP_OKAY
    assert first_register_mismatch(configs, 0, accesses, wrong) == "access 3 (r 0x300): response 0, expected 3"


def test_a_learner_access_that_succeeds_during_a_run_is_named():
    probes = busy_probes(_configs(), 1, 6)
    answers = [[0, learner_regs.STATUS_BUSY_MASK] if p[1] == learner_regs.REG_STATUS else [learner_regs.RESP_SLVERR, 0]
               for p in probes]
    assert probe_mismatch(probes, answers) is None
    index = next(i for i, p in enumerate(probes) if p[1] != learner_regs.REG_STATUS)
    answers[index] = [learner_regs.RESP_OKAY, 0]
    assert probe_mismatch(probes, answers).startswith(f"probe {index} ")


def test_the_traffic_covers_every_kind_of_access():
    accesses = random_register_traffic(_configs(), 11, 300)
    addresses = {a[1] for a in accesses}
    assert set(learner_regs.REGISTERS.values()) <= addresses
    assert any(a[1] >= learner_regs.COUNTER_WINDOW for a in accesses)
    assert any(a[0] == "w" and a[3] != 4 for a in accesses), "partial strobes"
    assert any(learner_regs.REG_DATA < a[1] < learner_regs.COUNTER_WINDOW for a in accesses), "holes"


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_random_register_traffic_and_a_run_under_back_pressure_answer_as_documented(require_tool, simulator):
    require_tool(simulator)
    traffic_seed, pause_seed, model_seed = 11, 7, 2
    configs = _configs()
    dataset = limit_samples(load_dataset("digits"), 6, test=4)
    model = FixedNetwork(NetworkSpec(SIZES, algorithm=Algorithm.SSDFA, seed=model_seed), ArithmeticConfig(seed=model_seed))
    lines = []
    report = bus_training_check(
        model, PES, model.quantize_inputs(dataset.x_train), dataset.y_train, model.quantize_inputs(dataset.x_test),
        dataset.y_test, simulator=simulator, traffic=random_register_traffic(configs, traffic_seed, 300),
        pause={"seed": pause_seed, **PAUSES}, probes=12, out=lines.append)
    text = "\n".join(lines)
    assert report.passed, f"seeds: traffic {traffic_seed}, pauses {pause_seed}, model {model_seed}\n{text}"
    assert "register traffic: all 300 accesses answered as the register model says" in text
    assert "busy: all 13 accesses made during the run answered as documented" in text
    assert "weights: all 1,210 identical" in text and "all 6 training-time and 4 test predictions identical" in text


def test_a_wrong_reference_weight_fails_the_bus_run(require_tool, monkeypatch):
    """The comparison can fail: one reference weight changed makes the run fail, naming it."""
    require_tool("icarus")
    honest = network_cosim.model_reference

    def tampered(*args, **kwargs):
        reference = honest(*args, **kwargs)
        reference.weights[0][5, 64] += 1
        return reference

    monkeypatch.setattr(network_cosim, "model_reference", tampered)
    dataset = limit_samples(load_dataset("digits"), 2, test=0)
    model = FixedNetwork(NetworkSpec(SIZES, algorithm=Algorithm.SSDFA, seed=1), ArithmeticConfig(seed=1))
    report = bus_training_check(model, PES, model.quantize_inputs(dataset.x_train), dataset.y_train,
                                model.quantize_inputs(dataset.x_test), dataset.y_test, simulator="icarus", probes=2,
                                out=lambda line: None)
    assert not report.passed and report.exit_status == 1
    assert "MISMATCH first differing weight: layer 0, neuron 5, index 64" in "\n".join(report.lines)


@pytest.mark.slow
def test_digits_epoch_through_the_bus_is_bit_exact_on_verilator(require_tool):
    """One full digits training epoch (1,258 samples) and the test split (359), every word
    through AXI4-Lite and AXI4-Stream, against the model."""
    require_tool("verilator")
    lines = []
    report = run_bus_training(BusJob(hidden=(16,), pes=PES, seed=0, simulator="verilator"), out=lines.append)
    text = "\n".join(lines)
    assert report.passed, text
    assert "weights: all 1,210 identical to the model's" in text
    assert "all 1,258 training-time and 359 test predictions identical" in text
    assert report.figures["test_accuracy"] == report.figures["model_test_accuracy"]


def test_a_misplaced_tlast_and_a_bad_label_set_their_status_bits_until_the_next_start(require_tool):
    """The wrapper frames by counting F + 1 words: a sample split over two packets still goes in
    whole (the run finishes), but FRAME_ERROR is set; a label of 12 (10 classes) sets
    LABEL_ERROR. A clean run after them clears both."""
    require_tool("icarus")
    inputs = SIZES[0]
    sample = list(range(inputs))
    frames = [sample + [3], sample[:10], sample[10:] + [4], sample + [12]]
    clean = [sample + [1]]
    steps = [
        {"op": "run", "name": "bad", "mode": learner_regs.MODE_INFER, "samples": 3, "packets": frames,
         "max_cycles": 20_000},
        {"op": "run", "name": "clean", "mode": learner_regs.MODE_INFER, "packets": clean, "max_cycles": 20_000},
    ]
    result = simulate_axi_learner(_configs(), steps, simulator="icarus").result
    bad, good = result["runs"]
    flags = learner_regs.STATUS_FRAME_ERROR_MASK | learner_regs.STATUS_LABEL_ERROR_MASK
    assert bad["status"] == [0, learner_regs.STATUS_DONE_MASK | flags], bad
    assert bad["predictions_register"] == [0, 3] and [len(f) for f in bad["frames"]] == [3]
    assert good["status"] == [0, learner_regs.STATUS_DONE_MASK], good


def test_networks_the_register_map_cannot_address_are_refused():
    from ssdfa.rtl.axi_learner import AXILearner

    with pytest.raises(SsdfaError, match="at most 255 classes, not 256"):
        AXILearner(layers=network_layer_configs((4, 4, 256), ArithmeticConfig(), pes=(1, 32)))


def test_the_bus_run_from_the_command_line_passes_and_refuses_what_it_cannot_do(capsys, require_tool):
    from ssdfa.cli import main

    require_tool("icarus")
    status = main(["cosim", "--network", "--bus", "axi", "--sim", "icarus", "--hidden", "16", "--pes", "4,2",
                   "--train-limit", "2", "--test-limit", "2", "--stall", "64", "--seed", "5"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS: the learner behind the bus matches the model bit for bit" in out
    for args, message in ((["--network", "--bus", "axi", "--epochs", "2"], "--epochs is not supported with --bus axi"),
                          (["--fuzz", "1", "--bus", "axi"], "--bus axi applies to --network")):
        assert main(["cosim", "--sim", "icarus", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_the_wrapped_network_is_written_from_a_saved_network(capsys, tmp_path):
    from ssdfa.cli import main
    from ssdfa.model.weight_file import save_network

    path = tmp_path / "small.npz"
    save_network(path, FixedNetwork(NetworkSpec((8, 4, 3)), ArithmeticConfig()))
    assert main(["verilog", "--network", "--weights", str(path), "--bus", "axi", "--out", str(tmp_path / "v")]) == 0
    written = Path(capsys.readouterr().out.strip())
    text = written.read_text()
    assert written.name == "ssdfa_axi_learner.v"
    assert "module ssdfa_axi_learner(" in text
    assert all(port in text for port in ("s_axil_awaddr", "s_axis_tlast", "m_axis_tlast", "s_axil_rresp"))
    assert main(["verilog", "--config", str(path), "--bus", "axi", "--out", str(tmp_path / "w")]) == 2
    assert "--bus applies to --network" in capsys.readouterr().err


def test_the_c_header_compiles_and_agrees_with_the_register_map(tmp_path):
    """Every constant of the generated header, checked by the C compiler itself (_Static_assert)."""
    import os
    import shutil
    import subprocess

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        if os.environ.get("CI"):
            pytest.fail("no C compiler, and CI is set (Verilator's builds need one too)")
        pytest.skip("no C compiler")
    checks = [f'_Static_assert(SSDFA_{name} == {value}u, "{name}");' for name, value, _ in register_map.constants()]
    source = tmp_path / "check.c"
    source.write_text('#include "ssdfa_learner_regs.h"\n' + "\n".join(checks) + "\n")
    done = subprocess.run([compiler, "-std=c11", "-Wall", "-Werror", "-fsyntax-only", "-I", str(ROOT / "drivers"),
                           str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(checks) > 50
