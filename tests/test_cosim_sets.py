"""Golden sets through the generated Verilog of the layer, its PEs and its router, bit for bit,
on Icarus Verilog and Verilator, and a deliberately broken layer that must fail.

One simulation per simulator holds every job of this module (one compiled design: Verilator
builds cost tens of seconds each). The jobs cover several word widths (8, 12 to 16 mixed, 16,
24 bits), every rounding mode on the signal path and on the learning path (STOCH included),
both overflow modes, SSDFA, SDFA s = 2 and dense DFA, the output layer, one and several
neurons per PE, P = 1 and P > 1, random stalls on every stream, and both read-back schedules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ssdfa.golden.format import canonical_set_dirs, read_golden_set
from ssdfa.golden.layer_vectors import generate_layer_set
from ssdfa.model.layer_config import layer_config_from_dict
from ssdfa.sim import runner
from ssdfa.sim.cosim import TOPLEVEL, CosimJob, run_jobs
from ssdfa.sim.runner import SIMULATORS

REPO_ROOT = Path(__file__).resolve().parent.parent
CANONICAL = {path.name: path for path in canonical_set_dirs()}


def extra_config(**changes):
    """A layer configuration beyond the canonical sets' (generated here, not committed)."""
    layer = {"fan_in": 5, "neurons": 6, "pes": 3, "outputs": 4, "connections": 1, "activation": "hardtanh"}
    formats = {"activation": "SQ(4,8)", "weight": "SQ(2,10)", "feedback": "SQ(2,10)", "error": "SQ(3,9)",
               "delta": "SQ(1,11)"}
    modes = {"rounding": "RND_CONV", "update_rounding": "TRN", "overflow": "WRAP", "shift": 2, "seed": 3}
    for section, values in changes.items():
        {"layer": layer, "formats": formats, "modes": modes}[section].update(values)
    return layer_config_from_dict({"layer": layer, "formats": formats, "modes": modes})


def build_jobs() -> list[CosimJob]:
    sets = {name: read_golden_set(path) for name, path in CANONICAL.items()}
    jobs = [CosimJob(name, golden) for name, golden in sets.items()]
    extras = {
        # 12-bit formats, TRN update rounding, WRAP, three PEs of two neurons.
        "trn-update-wrap-q12-p3": extra_config(),
        # 24-bit formats, TRN_ZERO update rounding, one PE of three neurons, a large shift.
        "trn-zero-update-q24-p1": extra_config(
            layer={"fan_in": 7, "neurons": 3, "pes": 1, "outputs": 5, "activation": "relu"},
            formats={"activation": "SQ(6,18)", "weight": "SQ(3,21)", "feedback": "SQ(2,22)", "error": "SQ(4,20)",
                     "delta": "SQ(3,21)"},
            modes={"rounding": "TRN", "update_rounding": "TRN_ZERO", "overflow": "SAT", "shift": 6}),
        # An unsigned activation format (relu), SDFA s = 2, STOCH, under random stalls.
        "unsigned-sdfa2-stoch": extra_config(
            layer={"fan_in": 3, "neurons": 4, "pes": 2, "outputs": 3, "connections": 2, "activation": "relu"},
            formats={"activation": "UQ(2,8)"},
            modes={"rounding": "RND", "update_rounding": "STOCH", "overflow": "SAT", "seed": 12}),
    }
    for name, config in extras.items():
        jobs.append(CosimJob(name, generate_layer_set(config, 6), stall=96 if "stoch" in name else 0))
    # Back to back with one read-back at the end: at full speed, and under random stalls.
    jobs.append(CosimJob("dfa_dense_relu-back-to-back", sets["dfa_dense_relu"], every=False))
    jobs.append(CosimJob("sdfa2_tanh_wrap-stalled", sets["sdfa2_tanh_wrap"], every=False, stall=120, stall_seed=5))
    # The PE top: one PE of four neurons; two PEs of three (SDFA, tanh, STOCH); the output layer.
    for name in ("ssdfa_relu_rnd16", "sdfa2_tanh_wrap", "output_identity_stoch"):
        jobs.append(CosimJob(name, sets[name], top="pe", stall=64 if name == "sdfa2_tanh_wrap" else 0))
    # The router top: two ports of three neurons with two connections each; four ports of one.
    jobs.append(CosimJob("sdfa2_tanh_wrap", sets["sdfa2_tanh_wrap"], top="router", stall=128))
    jobs.append(CosimJob("ssdfa_hardtanh_stoch8", sets["ssdfa_hardtanh_stoch8"], top="router"))
    # Deliberately broken layers: they must fail, with a report naming the first difference.
    jobs.append(CosimJob("broken-signal-rounding", sets["ssdfa_relu_rnd16"], mutation="swap-rounding"))
    jobs.append(CosimJob("broken-update-rounding", sets["dfa_dense_relu"], mutation="swap-update-rounding"))
    return jobs


JOB_NAMES = [f"{job.top}-{job.name}" for job in build_jobs() if job.mutation is None]
# RND -> TRN on the signal path shows first in y; RND_CONV -> TRN on the learning path in delta.
BROKEN = {"broken-signal-rounding": ("pre_activation", 0), "broken-update-rounding": ("delta", 0)}

@pytest.fixture(scope="module", params=SIMULATORS)
def campaign(request, require_tool, tmp_path_factory):
    require_tool(request.param)
    work = tmp_path_factory.mktemp(f"cosim-{request.param}")
    # Unoptimised Verilator model: a third of the compile time, and these runs are short.
    return run_jobs(build_jobs(), simulator=request.param, work_dir=work, quick_build=True)


def outcome(run, label: str):
    matches = [o for o in run.outcomes if f"{o.job.top}-{o.job.name}" == label or o.job.name == label]
    assert len(matches) == 1, label
    return matches[0]


@pytest.mark.parametrize("label", JOB_NAMES)
def test_the_dut_reproduces_the_golden_set_bit_for_bit(campaign, label):
    result = outcome(campaign, label)
    assert result.passed, result.summary()
    assert result.result.checks == result.expected_checks > 0
    assert result.result.cycles > 0


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_layer_with_a_swapped_rounding_mode_fails_with_a_report_of_the_first_difference(campaign, name):
    broken = outcome(campaign, name)
    assert not broken.passed
    assert broken.result.finished and broken.result.mismatch_count > 0
    first = broken.first_mismatch
    quantity, sample = BROKEN[name]
    assert (first.quantity.name, first.sample) == (quantity, sample), str(first)
    assert first.neuron is not None and first.expected != first.actual
    text = str(first)
    assert f"sample {sample}, layer " in text and f"neuron {first.neuron}" in text
    assert f"expected raw {first.expected} (= " in text and f"actual raw {first.actual} (= " in text
    # The testbench itself fails too: a broken design never makes a passing run.
    assert not campaign.sim.ok and campaign.sim.failures == ("golden_sets_match",)


def test_back_to_back_samples_take_the_clocks_layer_cycles_promises(campaign):
    from ssdfa.rtl.layer import layer_cycles

    run = outcome(campaign, "layer-dfa_dense_relu-back-to-back")
    config = run.job.golden.config
    cycles = layer_cycles(fan_in=config.shape.fan_in, neurons_per_pe=config.neurons_per_pe,
                          connections=config.shape.connections)
    # From the clock of the first SAMPLE's transfer to the last `done`: one period per sample.
    assert run.result.run_end - run.result.run_start == run.shape.samples * cycles.sample


def test_builds_live_outside_the_checkout_and_a_second_build_of_the_same_design_is_reused(campaign):
    build = campaign.build
    assert not build.directory.is_relative_to(REPO_ROOT)
    again = runner.build(list(campaign.sources), TOPLEVEL, simulator=campaign.simulator,
                         build_args=list(campaign.build_args))
    assert again.directory == build.directory
    assert not again.rebuilt and again.seconds == 0.0
