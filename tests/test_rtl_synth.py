"""Area estimates through the OS's Yosys (ssdfa.rtl.synth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssdfa.errors import SsdfaError
from ssdfa.rtl.synth import SynthReport, synthesize
from ssdfa.sim.smoke_mac import ACC_WIDTH, COUNT_WIDTH, TOPLEVEL, smoke_verilog

REGISTER_BITS = ACC_WIDTH + COUNT_WIDTH


@pytest.fixture(scope="module")
def smoke_source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synth") / f"{TOPLEVEL}.v"
    path.write_text(smoke_verilog())
    return path


@pytest.fixture(scope="module")
def ice40_report(require_tool, smoke_source) -> SynthReport:
    require_tool("yosys")
    return synthesize(smoke_source, TOPLEVEL, target="ice40")


def test_ice40_synthesis_counts_luts_registers_and_the_multiplier_dsp(ice40_report):
    assert ice40_report.luts > 0
    assert ice40_report.luts == ice40_report.cells["SB_LUT4"]
    assert ice40_report.flip_flops == REGISTER_BITS, ice40_report.cells
    assert ice40_report.dsps == 1, ice40_report.cells  # the 8x8 multiply, with -dsp
    assert ice40_report.block_rams == 0


def test_ice40_without_dsp_builds_the_multiplier_from_luts(ice40_report, smoke_source):
    without = synthesize(smoke_source, TOPLEVEL, target="ice40", dsp=False)
    assert without.dsps == 0
    assert without.luts > ice40_report.luts


def test_generic_synthesis_counts_luts_and_registers(require_tool, smoke_source):
    require_tool("yosys")
    report = synthesize(smoke_source, TOPLEVEL, target="generic")
    assert report.luts > 0
    assert report.flip_flops == REGISTER_BITS, report.cells
    assert (report.block_rams, report.dsps) == (0, 0)


def test_unknown_target_and_missing_file_are_named(smoke_source, tmp_path):
    with pytest.raises(SsdfaError, match="'ecp5'"):
        synthesize(smoke_source, TOPLEVEL, target="ecp5")
    with pytest.raises(SsdfaError, match="nowhere.v"):
        synthesize(tmp_path / "nowhere.v", TOPLEVEL)


def test_a_wrong_top_module_is_reported_with_yosys_output(require_tool, smoke_source):
    require_tool("yosys")
    with pytest.raises(SsdfaError, match="'no_such_top'"):
        synthesize(smoke_source, "no_such_top")


def test_missing_yosys_names_the_install_command(monkeypatch, tmp_path, smoke_source):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SsdfaError, match=r"'yosys'.*apt-get install .*yosys"):
        synthesize(smoke_source, TOPLEVEL)
