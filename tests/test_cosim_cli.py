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
    assert re.search(r"^PASS ssdfa_relu_rnd16 \(layer\): 5 vectors, 225 checks, 0 mismatches, \d+ cycles$", out, re.M), out
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
