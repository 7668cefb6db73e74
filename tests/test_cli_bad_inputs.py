"""Every subcommand refuses bad input the same way: one line naming the bad value, exit 2.

``ROWS`` is the table: (argv, a fragment the error line must contain). Each row runs
``ssdfa.cli.main`` in-process and checks that the command exits with status 2, prints exactly
one line to standard error (and no traceback), nothing to standard output, and leaves the
scratch directory as it was (nothing half-written). A new subcommand adds its rows here.

Paths in argv are written with placeholders filled from ``scratch``: {tmp} (the scratch
directory), {config} (a valid layer configuration), {file} (a regular file), {binary} (a
non-UTF-8 file), {empty_dir}, and the other names below. Sizes are checked against a fixed
memory budget (``SSDFA_MEMORY_BYTES``), so the rows do not depend on the machine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ssdfa.cli import main
from ssdfa.model.memory_budget import MEMORY_ENV

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "ssdfa_relu_16bit.toml"
SPEC = REPO / "studies" / "quick.toml"
BUDGET = 4 << 30  # 4 GiB: more than any valid row needs, less than every huge size asks

HUGE = "1000000000000"  # 10^12

ROWS: list[tuple[list[str], str]] = [
    # -- the command itself -------------------------------------------------------------------
    ([], "required"),
    (["nope"], "invalid choice"),
    # -- train --------------------------------------------------------------------------------
    (["train", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["train", "--epochs", "x"], "invalid int value: 'x'"),
    (["train", "--batch", "0"], "--batch must be at least 1, not 0"),
    (["train", "--batch", "-3"], "--batch must be at least 1, not -3"),
    (["train", "--hidden", "0"], "--hidden sizes must be positive integers, not 0"),
    (["train", "--hidden", "100", "-5"], "not -5"),
    (["train", "--hidden", "1e3"], "invalid int value: '1e3'"),
    (["train", "--hidden", HUGE], f"--hidden {HUGE} with --batch 1 needs about"),
    (["train", "--hidden", "100000", "100000", "100000"], "needs about"),
    (["train", "--fixed", "--hidden", "10000000"], "--hidden 10000000 with --batch 1 needs about"),
    (["train", "--hidden", "1000", "--batch", HUGE], f"--batch {HUGE} needs about"),
    (["train", "--train-limit", "0"], "--train-limit must be at least 1, not 0"),
    (["train", "--seed", "-1"], "expected a seed from 0 to 2^32 - 1, not -1"),
    (["train", "--seed", "4294967296"], "expected a seed from 0 to 2^32 - 1, not 4294967296"),
    (["train", "--dataset", "features:{file}", "--save", "{file}"], "is the features file the run reads"),
    (["train", "--split-seed", "-2"], "--split-seed must be non-negative, not -2"),
    (["train", "--algo", "backprop"], "'backprop'"),
    (["train", "--activation", "sigmoid"], "unknown hidden activation 'sigmoid'"),
    (["train", "--connectivity", "ring"], "unknown connectivity 'ring'"),
    (["train", "--connectivity", "lfsr", "--algo", "dfa"], "--connectivity lfsr"),
    (["train", "--algo", "bp", "--sparsity", "2"], "bp uses no feedback matrix"),
    (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["train", "--dataset", "features:{tmp}/missing.npz"], "missing.npz"),
    (["train", "--dataset", "features:{binary}"], "{binary}"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}/no-such-dir"], "no-such-dir"),
    (["train", "--fixed", "--weight-format", "SQ(0,4)"], "--weight-format"),
    (["train", "--fixed", "--activation-format", "Q4.12"], "bad fixed-point format 'Q4.12'"),
    (["train", "--fixed", "--delta-format", "SQ(40,30)"], "SQ(40,30)"),
    (["train", "--fixed", "--rounding", "nearest"], "unknown rounding mode 'nearest'"),
    (["train", "--fixed", "--update-rounding", "up"], "unknown rounding mode 'up'"),
    (["train", "--fixed", "--overflow", "clamp"], "unknown overflow mode 'clamp'"),
    (["train", "--fixed", "--lr", "0.1"], "--lr applies to float training"),
    (["train", "--shift", "3"], "--shift applies to fixed point only"),
    (["train", "--rounding", "RND"], "--rounding applies to fixed point only"),
    (["train", "--loss", "hinge"], "'hinge'"),
    (["train", "--feedback-gain", "x"], "invalid float value: 'x'"),
    # -- demo (cheap refusals only) --------------------------------------------------------------
    (["demo", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["demo", "--epochs", "-1"], "--epochs must be at least 1, not -1"),
    (["demo", "--epochs", "two"], "invalid int value: 'two'"),
    (["demo", "--seed", "-1"], "expected a seed from 0 to 2^32 - 1, not -1"),
    (["demo", "--seed", "x"], "expected a seed from 0 to 2^32 - 1, not 'x'"),
    (["demo", "--fast"], "unrecognized arguments: --fast"),
    # -- costs --------------------------------------------------------------------------------
    (["costs", "--net", "resnet9000"], "resnet9000"),
    (["costs", "--net", "alexnet", "--algo", "hebbian"], "hebbian"),
    (["costs", "--net", "alexnet", "--scope", "everything"], "everything"),
    (["costs", "--net", "alexnet", "--sparsity", "-1"], "sparsity must be a number in [0, 1)"),
    (["costs", "--net", "alexnet", "--sparsity", "x"], "--sparsity"),
    (["costs", "--net", "alexnet", "--connections", "0"], "connections must be an integer from 1 to 1000 (the errors), not 0"),
    (["costs", "--net", "alexnet", "--word-bits", "0"], "--word-bits"),
    (["costs", "--net", "alexnet", "--word-bits", "8", "--energy"], "--word-bits is 8"),
    (["costs", "--net", "alexnet", "--energy-table", "{tmp}/missing.toml"], "missing.toml does not exist"),
    (["costs", "--net", "alexnet", "--energy-table", "{binary_toml}"], "{binary_toml} is not UTF-8 text"),
    (["costs", "--net", "alexnet", "--energy-table", "{bad_toml}"], "not valid TOML"),
    (["costs", "--net", "alexnet", "--energy-table", "{file}"], "expected a .toml or .json file"),
    (["costs", "--net", "alexnet", "--energy-table", "{empty_dir}/x.json"], "x.json does not exist"),
    (["costs", "--net", "alexnet", "--plot", "{file}/costs.png"], "--plot {file}/costs.png: cannot write it"),
    (["costs", "--net", "alexnet", "--plot", "{tmp}/no-such-dir/costs.png"], "cannot write it"),
    # -- verilog ------------------------------------------------------------------------------
    (["verilog", "--config", "{tmp}/missing.toml", "--out", "{tmp}/v"], "missing.toml does not exist"),
    (["verilog", "--config", "{binary}", "--out", "{tmp}/v"], "{binary} is not UTF-8 text: byte 0xe9 at offset 24"),
    (["verilog", "--config", "{bad_toml}", "--out", "{tmp}/v"], "not valid TOML"),
    (["verilog", "--config", "{empty_dir}", "--out", "{tmp}/v"], "is a directory, not a file"),
    (["verilog", "--config", "{huge_layer}", "--out", "{tmp}/v"], "neurons x 64 inputs needs about"),
    (["verilog", "--config", "{no_neurons}", "--out", "{tmp}/v"], "[layer] neurons is required"),
    (["verilog", "--config", "{bad_format}", "--out", "{tmp}/v"], "formats.weight"),
    (["verilog", "--config", "{config}", "--out", "{file}"], "--out {file} is a file, not a directory"),
    (["verilog", "--config", "{config}", "--out", "{file}/sub"], "--out {file}/sub: cannot create the directory"),
    (["verilog", "--config", "{config}"], "--out"),
    (["verilog", "--config", "{config}", "--out", "{tmp}/v", "--top", "cpu"], "cpu"),
    # -- synth --------------------------------------------------------------------------------
    (["synth", "--config", "{tmp}/missing.toml"], "missing.toml does not exist"),
    (["synth", "--config", "{binary}"], "is not UTF-8 text"),
    (["synth", "--config", "{bad_toml}"], "not valid TOML"),
    (["synth", "--config", "{huge_layer}"], "needs about"),
    (["synth", "--config", "{config}", "--generic", "--no-dsp"], "--no-dsp applies to the iCE40 target only"),
    (["synth"], "--config"),
    # -- golden -------------------------------------------------------------------------------
    (["golden", "--config", "{config}", "--samples", "0", "--out", "{tmp}/g"], "expected a positive integer, not 0"),
    (["golden", "--config", "{config}", "--samples", "x", "--out", "{tmp}/g"], "expected a positive integer, not 'x'"),
    (["golden", "--config", "{config}", "--samples", HUGE, "--out", "{tmp}/g"], f"--samples {HUGE}"),
    (["golden", "--config", "{config}", "--samples", "100000000", "--full-weights", "--out", "{tmp}/g"],
     "--samples 100000000 with --full-weights"),
    (["golden", "--config", "{tmp}/missing.toml", "--samples", "1", "--out", "{tmp}/g"], "does not exist"),
    (["golden", "--config", "{binary}", "--samples", "1", "--out", "{tmp}/g"], "is not UTF-8 text"),
    (["golden", "--config", "{huge_layer}", "--samples", "1", "--out", "{tmp}/g"], "needs about"),
    (["golden", "--config", "{config}", "--samples", "1", "--out", "{file}"], "--out {file} is a file"),
    (["golden", "--config", "{config}", "--samples", "1", "--out", "{file}/g"], "cannot create the directory"),
    (["golden", "--config", "{config}", "--samples", "1", "--out", "{tmp}/g", "--seed", "-1"],
     "expected a seed from 0 to 2^32 - 1, not -1"),
    (["golden", "--config", "{config}", "--samples", "1", "--out", "{full_dir}"], "is not empty"),
    # -- cosim --------------------------------------------------------------------------------
    (["cosim", "--golden", "{tmp}/missing", "--sim", "icarus"], "missing"),
    (["cosim", "--golden", "{file}", "--sim", "icarus"], "{file}"),
    (["cosim", "--golden", "{empty_dir}", "--sim", "icarus"], "{empty_dir}"),
    (["cosim", "--golden", "{bad_golden}", "--sim", "icarus"], "{bad_golden}"),
    (["cosim", "--fuzz", "0", "--sim", "icarus"], "expected a positive integer, not 0"),
    (["cosim", "--fuzz", "x", "--sim", "icarus"], "expected a positive integer, not 'x'"),
    (["cosim", "--fuzz", "1", "--sim", "modelsim"], "invalid choice: 'modelsim'"),
    (["cosim", "--fuzz", "1"], "--sim"),
    (["cosim", "--sim", "icarus"], "one of the arguments"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--stall", "300"], "expected 0..255"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--seed", "-1"], "not -1"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--samples", "0"], "not 0"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--batch", "0"], "not 0"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--samples", "100000000000"], "--samples 100000000000 with --batch"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--top", "alu"], "invalid choice: 'alu'"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--work-dir", "{file}"], "--work-dir {file} is a file"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--work-dir", "{file}/w"], "cannot create the directory"),
    (["cosim", "--network", "--sim", "icarus", "--hidden", "0"], "'0'"),
    (["cosim", "--network", "--sim", "icarus", "--hidden", "x"], "'x'"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--hidden", "16"], "--hidden applies to --network"),
    (["cosim", "--network", "--sim", "verilator", "--top", "pe"], "--top pe applies to --golden or --fuzz"),
    (["cosim", "--network", "--sim", "icarus", "--hidden", "100000000,100000"], "--hidden 100000000,100000 needs about"),
    (["cosim", "--network", "--sim", "icarus", "--train-limit", "-1"], "--train-limit: expected a positive integer, not -1"),
    # -- eval ---------------------------------------------------------------------------------
    (["eval", "{tmp}/missing.npz"], "weight file {tmp}/missing.npz does not exist"),
    (["eval", "{file}"], "weight file {file} is not a readable npz archive"),
    (["eval", "{binary}"], "weight file {binary} is not a readable npz archive"),
    (["eval", "{empty_dir}"], "{empty_dir}"),
    (["eval"], "the following arguments are required: FILE.npz"),
    (["eval", "{file}", "--sim", "modelsim"], "invalid choice: 'modelsim'"),
    (["eval", "{file}", "--split", "dev"], "invalid choice: 'dev'"),
    (["eval", "{file}", "--limit", "0"], "expected a positive integer, not 0"),
    (["eval", "{file}", "--split-seed", "-1"], "expected a non-negative integer, not -1"),
    (["verilog", "--network", "--weights", "{file}", "--out", "{tmp}/v"], "weight file {file} is not a readable npz"),
    (["verilog", "--network", "--weights", "{tmp}/missing.npz", "--out", "{tmp}/v"], "does not exist"),
    (["train", "--save", "{file}/x.npz"], "--save {file}/x.npz"),
    (["train", "--save", "{tmp}/no-such-dir/x.npz"], "no-such-dir does not exist"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--bus", "axi"], "--bus axi applies to --network"),
    (["cosim", "--network", "--sim", "icarus", "--bus", "pcie"], "invalid choice: 'pcie'"),
    (["verilog", "--config", "{config}", "--out", "{tmp}/v", "--bus", "axi"], "--bus applies to --network"),
    (["cosim", "--verilog", "{file}", "--sim", "icarus", "--fuzz", "1"], "--verilog needs --golden DIR"),
    (["cosim", "--network", "--mutants", "--sim", "icarus"], "--mutants works with --golden or --fuzz"),
    (["cosim", "--fuzz", "1", "--sim", "icarus", "--mutant-sample", "3"], "need --mutants"),
    # -- implement ----------------------------------------------------------------------------
    (["implement", "--device", "ice40-up99k", "--config", "{config}"], "unknown device 'ice40-up99k'"),
    (["implement", "--device", "xc7a35t", "--config", "{config}"], "unknown device 'xc7a35t'"),
    (["implement", "--config", "{config}"], "the following arguments are required: --device"),
    (["implement", "--device", "ice40-up5k", "--config", "{config}", "--top", "cpu"], "invalid choice: 'cpu'"),
    (["implement", "--device", "ice40-up5k", "--config", "{tmp}/missing.toml"], "missing.toml does not exist"),
    (["implement", "--device", "ice40-up5k", "--config", "{binary}"], "is not UTF-8 text"),
    (["implement", "--device", "ice40-up5k", "--config", "{bad_toml}"], "not valid TOML"),
    (["implement", "--device", "ice40-up5k", "--config", "{huge_layer}"], "needs about"),
    (["implement", "--device", "ice40-up5k", "--config", "{config}", "--seed", "-1"], "not -1"),
    (["implement", "--device", "ice40-up5k", "--config", "{config}", "--wrapper", "always"], "invalid choice: 'always'"),
    (["implement", "--device", "ice40-up5k", "--config", "{config}", "--out", "{file}"], "--out {file} is a file"),
    (["implement", "--device", "ice40-up5k", "--config", "{config}", "--out", "{file}/sub"], "cannot create the directory"),
    (["implement", "--device", "ice40-up5k", "--config", "{config}", "--pes", "3"], "--pes applies to --network"),
    (["implement", "--device", "ecp5-25f", "--config", "{config}", "--nextpnr-opts=--opt-timing"],
     "nextpnr option --opt-timing is nextpnr-ice40's"),
    (["implement", "--device", "ice40-up5k", "--config", "{config}", "--dataset", "mnist"], "--dataset applies to --network"),
    (["implement", "--device", "ice40-up5k", "--network", "--hidden", "0"], "'0'"),
    (["implement", "--device", "ice40-up5k", "--network", "--hidden", "100000000"], "--hidden 100000000 needs about"),
    # -- features -----------------------------------------------------------------------------
    (["features", "--out", "{tmp}/f.npz", "--epochs", "0"], "expected a positive integer, not 0"),
    (["features", "--out", "{tmp}/f.npz", "--epochs", "x"], "'x'"),
    (["features", "--out", "{file}/f.npz"], "{file}/f.npz"),
    (["features", "--out", "{tmp}/no-such-dir/f.npz"], "no-such-dir"),
    (["features"], "the following arguments are required: --out"),
    # -- study --------------------------------------------------------------------------------
    (["study", "{tmp}/missing.toml", "--dry-run"], "missing.toml does not exist"),
    (["study", "{binary}", "--dry-run"], "is not UTF-8 text"),
    (["study", "{bad_toml}", "--dry-run"], "not valid TOML"),
    (["study", "{empty_dir}", "--dry-run"], "is a directory, not a file"),
    (["study", "{spec}", "--dry-run", "--workers", "0"], "--workers must be a positive integer, not 0"),
    (["study", "{spec}", "--dry-run", "--connect-timeout", "0"], "--connect-timeout must be a positive number"),
    (["study", "{spec}", "--dry-run", "--connect-timeout", "inf"], "--connect-timeout must be a positive number"),
    (["board", "train", "--board", "icebreaker", "--sim", "verilator", "--timeout", "1e12"], "at most 3600 seconds"),
    (["train", "--feedback-gain", "1e308"], "at most 2^20 (1,048,576), not 1e+308"),
    (["study", "{spec}", "--dry-run", "--set", "network.hidden"], "network.hidden"),
    (["study", "{spec}", "--dry-run", "--set", "nosuch.key=1"], "nosuch"),
    (["study", "{spec}", "--dry-run", "--set", "network.epochs=0"], "epochs"),
    (["study", "{spec}", "--dry-run", "--set", f"network.hidden=[{HUGE}]"], f"network.hidden = [{HUGE}]"),
    (["study", "{spec}", "--dry-run", "--set", "network.batch=100000000"], "needs about"),
    # -- report -------------------------------------------------------------------------------
    (["report", "{tmp}/missing.db", "--out", "{tmp}/r"], "missing.db"),
    (["report", "{file}", "--out", "{tmp}/r"], "{file}"),
    (["report", "{binary}", "--out", "{tmp}/r"], "{binary}"),
    (["report", "{tmp}/missing.db", "--out", "{file}"], "--out {file} is a file"),
    (["report", "{tmp}/missing.db", "--out", "{file}/r"], "cannot create the directory"),
    (["report", "{tmp}/missing.db", "--out", "{tmp}/r", "--neurons-per-pe", "0"], "--neurons-per-pe must be"),
    (["report", "{tmp}/missing.db", "--out", "{tmp}/r", "--set", "network.epochs=1"], "--set applies to --spec"),
    (["report", "{tmp}/missing.db", "--out", "{tmp}/r", "--spec", "{binary}"], "is not UTF-8 text"),
    # -- board ---------------------------------------------------------------------------------
    (["board", "train", "--board", "nope", "--sim", "verilator"], "invalid choice: 'nope'"),
    (["board", "train", "--board", "icebreaker", "--sim", "verilator", "--epochs", "2"], "one epoch, not --epochs 2"),
    (["board", "train", "--board", "icebreaker", "--sim", "verilator", "--resume", "{file}"],
     "--resume needs a board that keeps its state"),
    (["board", "train", "--board", "icebreaker", "--sim", "verilator", "--progress", "{tmp}/p.json"],
     "--progress needs a board that keeps its state"),
    (["board", "train", "--board", "icebreaker", "--port", "{tmp}/ttyNONE"], "cannot open serial port {tmp}/ttyNONE"),
    (["board", "train", "--board", "icebreaker", "--port", "{tmp}/ttyNONE", "--resume", "{tmp}/none.json"],
     "cannot resume from {tmp}/none.json"),
    (["board", "build", "--board", "ulx3s", "--out", "{file}"], "--out {file} is a file, not a directory"),
    (["board", "eval", "{file}", "--board", "icebreaker", "--sim", "verilator"], "{file}"),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> dict[str, str]:
    """The files the rows name, in one directory: the placeholders of ``ROWS``."""
    tmp = tmp_path_factory.mktemp("bad-inputs")
    (tmp / "afile").write_text("not a directory\n")
    (tmp / "binary.toml").write_bytes(b"[layer]\nfan_in = 4 # caf\xe9\n\xff\xfe\n")
    (tmp / "bad.toml").write_text("[layer\nfan_in = \n")
    (tmp / "empty").mkdir()
    layer = CONFIG.read_text()
    (tmp / "huge.toml").write_text(
        layer.replace("fan_in = 16", "fan_in = 64").replace("neurons = 8", f"neurons = {HUGE}").replace("pes = 2", "pes = 1")
    )
    (tmp / "no_neurons.toml").write_text(layer.replace("neurons = 8\n", ""))
    (tmp / "bad_format.toml").write_text(layer.replace('weight = "SQ(2,14)"', 'weight = "SQ(2,99)"'))
    shutil.copy(CONFIG, tmp / "config.toml")
    shutil.copy(SPEC, tmp / "spec.toml")
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("an earlier file\n")
    (tmp / "bad_golden").mkdir()
    (tmp / "bad_golden" / "manifest.json").write_text("{ not json")
    names = {
        "tmp": tmp,
        "config": tmp / "config.toml",
        "spec": tmp / "spec.toml",
        "file": tmp / "afile",
        "binary": tmp / "binary.toml",
        "binary_toml": tmp / "binary.toml",
        "bad_toml": tmp / "bad.toml",
        "empty_dir": tmp / "empty",
        "huge_layer": tmp / "huge.toml",
        "no_neurons": tmp / "no_neurons.toml",
        "bad_format": tmp / "bad_format.toml",
        "full_dir": tmp / "full",
        "bad_golden": tmp / "bad_golden",
    }
    return {key: str(value) for key, value in names.items()}


def _snapshot(root: str) -> dict[str, bytes]:
    files = {}
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories:
            files[os.path.join(directory, name) + "/"] = b""
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                files[path] = handle.read()
    return files


def test_the_table_covers_every_subcommand_with_at_least_100_rows():
    from ssdfa.cli import subcommand_modules

    covered = {argv[0] for argv, _ in ROWS if argv}
    commands = {name.rsplit(".", 1)[1] for name in subcommand_modules()}
    assert commands <= covered, f"subcommands without rows: {sorted(commands - covered)}"
    assert len(ROWS) >= 100


@pytest.mark.parametrize(("argv", "fragment"), ROWS, ids=[" ".join(argv) or "(none)" for argv, _ in ROWS])
def test_bad_input_is_refused_in_one_line_with_status_2(argv, fragment, scratch, capsys, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, str(BUDGET))
    argv = [arg.format(**scratch) for arg in argv]
    fragment = fragment.format(**scratch)
    before = _snapshot(scratch["tmp"])
    status = main(argv)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert status == 2, f"{argv}: status {status}, stderr {err!r}"
    assert len(lines) == 1 and "Traceback" not in err, f"{argv}: {err!r}"
    assert fragment in lines[0], f"{argv}: {lines[0]!r} does not name {fragment!r}"
    assert out == "", f"{argv} printed {out!r}"
    assert _snapshot(scratch["tmp"]) == before, f"{argv} changed the scratch directory"
