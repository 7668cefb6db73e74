"""``ssdfa board build``: the build plans of both boards and the reading of nextpnr's report
without the tools, and one whole iCEBreaker build (about 110 s), which guards its fit (the ULX3S
build, minutes, is in docs/board.md §5)."""

from __future__ import annotations

import pytest

from ssdfa.board.boards import BOARDS, board
from ssdfa.rtl.implement import read_nextpnr_log

NEXTPNR_LOG = """\
Info: Device utilisation:
Info: 	         ICESTORM_LC:   20018/   5280   379%
Info: 	        ICESTORM_RAM:      13/     30    43%
Info: 	               SB_IO:       3/     39     7%
Info: Max frequency for clock 'clk12_0__io': 20.50 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock 'clk12_0__io': 19.25 MHz (PASS at 12.00 MHz)
"""


def test_nextpnr_report_gives_the_last_fmax_and_every_resource():
    fmax, utilisation = read_nextpnr_log(NEXTPNR_LOG)
    assert fmax == 19.25
    assert utilisation == {"ICESTORM_LC": (20018, 5280), "ICESTORM_RAM": (13, 30), "SB_IO": (3, 39)}
    assert read_nextpnr_log("nothing") == (None, {})


def test_unknown_board_is_refused_by_name():
    from ssdfa.errors import SsdfaError

    with pytest.raises(SsdfaError, match="unknown board 'de10'; expected one of icebreaker, ulx3s"):
        board("de10")


def _text(content) -> str:
    return content.decode() if isinstance(content, bytes) else content


@pytest.mark.parametrize("name, constraint, clock", [("icebreaker", "pcf", "set_frequency clk12_0__io 12.0"),
                                                      ("ulx3s", "lpf", 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ')])
def test_board_top_plan_constrains_the_oscillator_and_places_the_uart(name, constraint, clock):
    from ssdfa.board.build import BUILD_NAME, board_plan
    from ssdfa.model.neuron_ops import ArithmeticConfig
    from ssdfa.rtl.network import network_layer_configs

    target = BOARDS[name]
    configs = network_layer_configs((64, 10, 10), ArithmeticConfig(seed=0), pes=(1, 1))
    plan, sizes = board_plan(target, configs)
    assert sizes == (64, 10, 10)
    text = _text(plan.files[f"{BUILD_NAME}.{constraint}"])
    assert clock in text
    assert "uart_0__rx__io" in text and "uart_0__tx__io" in text
    assert target.clocks_per_bit == round(target.clock_hz / 115_200)


def test_board_plan_writes_each_layers_pe_module_once_and_instances_it():
    """The board's netlist holds each layer's PE once, as a Verilog file of the plan that Yosys
    reads, and one instance of it per PE; the design's own netlist has no copy of it."""
    import re

    from ssdfa.board.build import BUILD_NAME, board_plan
    from ssdfa.model.neuron_ops import ArithmeticConfig
    from ssdfa.rtl.network import network_layer_configs

    configs = network_layer_configs((64, 6, 4), ArithmeticConfig(seed=0), pes=(3, 2))
    plan, _ = board_plan(BOARDS["ulx3s"], configs)
    design = _text(plan.files[f"{BUILD_NAME}.il"])
    script = _text(plan.files[f"{BUILD_NAME}.ys"])
    assert not re.search(r"^module \\\S*pe_\d", design, re.M), "a PE copied into the design's netlist"
    for layer, pes in enumerate((3, 2)):
        module = f"{BUILD_NAME}.layer{layer}.neuron_pe"
        verilog = _text(plan.files[f"{module}.v"])
        assert len(re.findall(r"^module \\" + re.escape(module) + r"\s*\(", verilog, re.M)) == 1
        assert len(re.findall(r"^\s*cell \\" + re.escape(module) + r" ", design, re.M)) == pes
        assert f"read_verilog  {module}.v" in script or f"read_verilog {module}.v" in script


def test_the_icebreaker_default_learner_fits_the_up5k_and_meets_its_clock(require_tool, tmp_path):
    """The whole board build (about 110 s): the iCEBreaker core uses about 98% of the UP5K's logic
    cells, so a change anywhere in the PE, the network or the bridge can tip it over."""
    require_tool("yosys")
    require_tool("nextpnr-ice40")
    from ssdfa.board.build import build_board
    from ssdfa.model.neuron_ops import ArithmeticConfig
    from ssdfa.rtl.network import network_layer_configs

    target = BOARDS["icebreaker"]
    configs = network_layer_configs((64, *target.hidden, 10), ArithmeticConfig(seed=0), pes=target.pes)
    report = build_board(target, configs, tmp_path, out=lambda line: None)
    assert report.fits, report.utilisation
    assert report.meets_timing, report.fmax_mhz
    assert report.bitstream_sha256 is not None and (tmp_path / "ssdfa_board.bin").stat().st_size > 0


def test_a_refused_build_leaves_no_out_directory(tmp_path, capsys):
    from ssdfa.cli import main

    out = tmp_path / "new" / "build"
    assert main(["board", "build", "--board", "icebreaker", "--out", str(out), "--pes", "1"]) == 2
    assert "expected 2 PE counts" in capsys.readouterr().err
    assert not out.exists()
