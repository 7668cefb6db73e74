"""``ssdfa cosim``: exit status 0 on a pass, 1 on a mismatch, 2 on bad input; a corrupted golden
set is refused naming the file and the problem and never passes; waves; random campaigns on
both simulators."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ssdfa.cli import main
from ssdfa.golden.format import canonical_set_dirs

CANONICAL = {path.name: path for path in canonical_set_dirs()}
SET = "ssdfa_relu_rnd16"


def cosim(capsys, *args) -> tuple[int, str, str]:
    status = main(["cosim", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def golden_copy(tmp_path) -> Path:
    target = tmp_path / SET
    shutil.copytree(CANONICAL[SET], target)
    return target


def _truncate(directory: Path) -> tuple[str, str]:
    path = directory / "vectors.npz"
    path.write_bytes(path.read_bytes()[:-100])
    return "vectors.npz", "truncated"


def _change_byte(directory: Path) -> tuple[str, str]:
    path = directory / "vectors.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return "vectors.npz", "does not match its SHA-256"


def _manifest_shape(directory: Path) -> tuple[str, str]:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["arrays"]["inputs"]["shape"] = [4, 6]
    path.write_text(json.dumps(manifest))
    return "vectors.npz", "array inputs has shape [5, 6], but manifest.json says [4, 6]"


def _schema_version(directory: Path) -> tuple[str, str]:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["schema_version"] = 2
    path.write_text(json.dumps(manifest))
    return "manifest.json", "unknown schema version 2"


def _missing_vectors(directory: Path) -> tuple[str, str]:
    (directory / "vectors.npz").unlink()
    return "vectors.npz", "is missing"


CORRUPTIONS = {
    "truncated-file": _truncate,
    "changed-byte": _change_byte,
    "manifest-disagrees-with-arrays": _manifest_shape,
    "unknown-schema-version": _schema_version,
    "missing-vectors": _missing_vectors,
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupted_golden_set_is_refused_naming_the_file_and_problem(capsys, golden_copy, corruption):
    file_name, problem = CORRUPTIONS[corruption](golden_copy)
    # Refused before any simulator is needed: the reader checks the set first.
    status, out, err = cosim(capsys, "--golden", golden_copy, "--sim", "icarus")
    assert status == 2, out + err
    assert "PASS" not in out
    assert str(golden_copy / file_name) in err and problem in err, err


def test_bad_options_are_usage_errors(capsys):
    status, _, err = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--stall", "300")
    assert status == 2 and "0..255" in err
    status, _, err = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "modelsim")
    assert status == 2 and "invalid choice" in err
    status, _, err = cosim(capsys, "--golden", CANONICAL[SET], "--fuzz", "2", "--sim", "icarus")
    assert status == 2 and "not allowed with" in err


def test_a_golden_set_passes_and_the_command_prints_counts_and_speed(capsys, require_tool):
    require_tool("icarus")
    status, out, _ = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus")
    assert status == 0, out
    # 225 values of the set and its 4 feedback constants, read back after loading.
    assert re.search(r"^PASS ssdfa_relu_rnd16 \(layer\): 5 vectors, 229 checks, 0 mismatches, \d+ cycles$", out, re.M), out
    assert re.search(r"^PASS \(golden, icarus, top layer\): 1/1 passed, 5 vectors, .* cycles in .* s \([\d,]+ cycles/s", out,
                     re.M), out


@pytest.mark.parametrize("top", ["pe", "router"])
def test_the_pe_and_router_tops_run_from_the_command(capsys, require_tool, top):
    require_tool("icarus")
    status, out, _ = cosim(capsys, "--golden", CANONICAL["output_identity_stoch"], "--sim", "icarus", "--top", top,
                           "--stall", "50")
    assert status == 0, out
    assert f"PASS output_identity_stoch ({top})" in out


def test_a_broken_rtl_variant_exits_1_and_names_the_first_difference(capsys, require_tool):
    require_tool("icarus")
    status, out, _ = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--mutate", "swap-rounding")
    assert status == 1, out
    assert "FAIL ssdfa_relu_rnd16 (layer)" in out
    assert re.search(r"first mismatch: sample 0, layer 0, neuron \d+: pre_activation: expected raw -?\d+ \(= .* in "
                     r"SQ\(4,12\)\), actual raw -?\d+", out), out


def test_waves_are_recorded_and_their_place_printed(capsys, require_tool, tmp_path):
    require_tool("icarus")
    status, out, _ = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--waves", "--hdl-clock",
                           "--check", "final", "--work-dir", tmp_path)
    assert status == 0, out
    match = re.search(r"^waves: (\S+)$", out, re.M)
    assert match, out
    waves = Path(match.group(1))
    assert waves.suffix == ".fst" and waves.stat().st_size > 0
    assert (tmp_path / "run1" / "h0_result.txt").is_file()  # --work-dir keeps the harness files


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_a_small_random_campaign_passes_and_prints_its_seed_and_configurations(capsys, require_tool, simulator):
    require_tool(simulator)
    # Verilator: the top makes its own clock (--hdl-clock), the fast path of big campaigns, and
    # the model is compiled unoptimised (--quick-build): a fraction of the compile time.
    extra = ["--hdl-clock", "--quick-build"] if simulator == "verilator" else []
    status, out, _ = cosim(capsys, "--fuzz", 3, "--seed", 2024, "--samples", 5, "--sim", simulator, *extra)
    assert status == 0, out
    assert "fuzz: seed 2024, 3 configurations from #0, 5 samples each" in out
    assert len(re.findall(r"^config #\d \(fuzz-2024-\d\): \w+ F=\d+ N=\d+ P=\d+", out, re.M)) == 3, out
    assert re.search(r"^PASS \(fuzz seed 2024, .*\): 3/3 passed, 15 vectors", out, re.M), out


# --------------------------------------------------------------------------------------------
# --verilog FILE.v and --mutants
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated_pe(tmp_path_factory) -> Path:
    """The PE of ssdfa_relu_rnd16 as `ssdfa verilog` writes it (module neuron_pe)."""
    from ssdfa.rtl.verilog import generate

    (path,) = generate(CANONICAL[SET] / "config.toml", tmp_path_factory.mktemp("pe"), tops=["neuron_pe"])
    return path


def test_user_verilog_that_is_the_generated_pe_passes(capsys, require_tool, generated_pe):
    require_tool("icarus")
    status, out, _ = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--top", "pe",
                           "--verilog", generated_pe)
    assert status == 0, out
    assert f"verilog {generated_pe}: module neuron_pe_user_" in out and "ports match the generated pe top" in out
    assert "PASS ssdfa_relu_rnd16 (pe): 5 vectors, 226 checks, 0 mismatches" in out


def test_hand_mutated_user_verilog_fails_naming_the_mismatch(capsys, require_tool, generated_pe, tmp_path):
    require_tool("icarus")
    # The round-to-nearest offset of the y cast (shared with the delta cast) one too low: ties
    # round down.
    text = generated_pe.read_text()
    mutated, count = re.subn(r"(assign round_offset = in_update \? 16'h8000 : )16'h2000;", r"\g<1>16'h1fff;", text)
    assert count == 1
    path = tmp_path / "neuron_pe.v"
    path.write_text(mutated)
    status, out, _ = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--top", "pe", "--verilog", path)
    assert status == 1, out
    assert re.search(r"^FAIL ssdfa_relu_rnd16 \(pe\): 5 vectors, 226 checks, [1-9]\d* mismatches", out, re.M), out
    assert re.search(r"first mismatch: sample \d+, layer 0, neuron \d+: pre_activation: expected raw", out), out


@pytest.mark.parametrize("change, message", [
    (("host__addr", "host__adr"), "module neuron_pe has no port 'host__addr' (expected input, 5 bit(s)); "
                                  "it has 'host__adr' instead"),
    (("input [15:0] x__payload;", "input [14:0] x__payload;"), "port 'x__payload' of module neuron_pe is input, "
                                                               "15 bit(s); expected input, 16 bit(s)"),
    (("module neuron_pe(", "module neuron_pe_v2("), "declares no module 'neuron_pe' (the pe top)"),
])
def test_user_verilog_with_a_wrong_port_is_refused_in_one_line(capsys, generated_pe, tmp_path, change, message):
    path = tmp_path / "neuron_pe.v"
    text = generated_pe.read_text()
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1]))
    status, out, err = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--top", "pe", "--verilog", path)
    assert status == 2, out + err
    assert err.strip() == f"ssdfa: error: {path}: {message}", err
    assert "PASS" not in out and "Traceback" not in err


def test_user_verilog_needs_golden_sets_and_no_mutation(capsys, generated_pe):
    status, _, err = cosim(capsys, "--fuzz", 1, "--sim", "icarus", "--verilog", generated_pe)
    assert status == 2 and "--verilog needs --golden DIR" in err
    status, _, err = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--verilog", generated_pe,
                           "--mutants")
    assert status == 2 and "cannot be combined with --mutants" in err
    status, _, err = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--verilog", generated_pe.parent / "nope.v")
    assert status == 2 and "nope.v: no such Verilog file" in err


def test_mutants_from_the_command_report_the_kill_ratio_and_each_mutant(capsys, require_tool):
    require_tool("icarus")
    status, out, _ = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--top", "pe", "--mutants",
                           "--mutant-kind", "sat-drop", "--mutant-kind", "fprime-stuck", "--mutant-kind", "lfsr-tap",
                           "--hdl-clock")
    assert status == 0, out
    # The clamps of the saturation that y, delta and step share, and of w (4), and f' stuck at 0
    # and 1; the step has no clamps of its own.
    assert len(re.findall(r"^  KILLED (sat-drop|fprime-stuck):\S+: .* at line \d+: ", out, re.M)) == 6, out
    assert re.search(r"^  NOT-APPLICABLE lfsr-tap: no LFSR", out, re.M), out
    assert re.search(r"^  NOT-APPLICABLE sat-drop:step:pos: no step_cast_below_max \(cast 'step' absent or sharing",
                     out, re.M), out
    assert re.search(r"^mutants: 6/6 killed \(100\.0%; 0 by compile\), 0 survived", out, re.M), out
    status, _, err = cosim(capsys, "--golden", CANONICAL[SET], "--sim", "icarus", "--mutant-sample", "3")
    assert status == 2 and "need --mutants" in err
