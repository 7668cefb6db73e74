"""The study engine: resumes after SIGKILL with every finished cell kept once and never rerun;
an unreachable scheduler is one quick, clean error."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from ssdfa.study.database import ResultsDatabase
from ssdfa.study.spec import load_spec, spec_from_dict

QUICK = Path(__file__).resolve().parents[1] / "studies" / "quick.toml"
#: The quick study at a tiny size: every cell trains for a fraction of a second.
TINY = ["data.train_limit=120", "data.test_limit=60", "network.hidden=[16]", "network.epochs=1", "study.seeds=2"]

#: Runs the quick study through the engine with a runner that logs each cell it starts (to a
#: file, from the worker processes) and slows down, so that the study can be killed mid-way.
SCRIPT = textwrap.dedent(
    """
    import sys, time
    from ssdfa.study.cells import cell_key
    from ssdfa.study.engine import run_study
    from ssdfa.study.runner import run_cell
    from ssdfa.study.spec import load_spec, spec_from_dict

    def logged_run_cell(task):
        key = cell_key({k: v for k, v in task.items() if k != "data_dir"})
        with open(LOG, "a") as log:
            log.write(f"{RUN} {key}\\n")
        time.sleep(0.4)
        return run_cell(task)

    if __name__ == "__main__":
        spec_path, db_path, LOG, RUN, *overrides = sys.argv[1:]
        outcome = run_study(load_spec(spec_path, overrides), db_path, workers=2, progress=False, runner=logged_run_cell)
        sys.exit(0 if outcome.complete else 1)
    """
)


def finished_rows(db_path: Path) -> dict[str, tuple]:
    if not db_path.exists():
        return {}
    connection = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0]: row for row in connection.execute("SELECT key, config, status, result, seconds FROM cells")}
    except sqlite3.OperationalError:  # the tables are not created yet
        return {}
    finally:
        connection.close()


def start_study(tmp_path: Path, run: str) -> subprocess.Popen:
    script = tmp_path / "run_study.py"
    script.write_text(SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(QUICK), str(tmp_path / "quick.db"), str(tmp_path / "log.txt"), run, *TINY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
    )


def test_study_killed_mid_way_resumes_without_losing_or_repeating_a_cell(tmp_path):
    cells = {cell.key for cell in load_spec(QUICK, TINY).cells}
    db_path = tmp_path / "quick.db"
    first = start_study(tmp_path, "first")
    deadline = time.monotonic() + 60
    while len(finished_rows(db_path)) < 3:
        assert first.poll() is None, f"the study ended before it could be killed:\n{first.stdout.read()}"
        assert time.monotonic() < deadline, "no results within 60 s"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the client, its scheduler and its workers, at once
    first.communicate()
    before = finished_rows(db_path)
    assert 3 <= len(before) < len(cells), "the kill came too late to test resuming"

    second = start_study(tmp_path, "second")
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert f"{len(before)} already finished" in output

    after = finished_rows(db_path)
    assert set(after) == cells  # every cell, each exactly once (the key is the primary key)
    assert all(row[2] == "ok" for row in after.values())
    assert all(after[key] == row for key, row in before.items())  # finished rows untouched
    reran = {line.split()[1] for line in (tmp_path / "log.txt").read_text().splitlines() if line.startswith("second")}
    assert reran == cells - set(before)  # the second run computed exactly the missing cells
    with ResultsDatabase.open_existing(db_path) as db:
        assert db.count() == {"ok": len(cells), "diverged": 0, "failed": 0}


def test_unreachable_scheduler_is_one_quick_error_line(tmp_path):
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "ssdfa", "study", str(QUICK), "--db", str(tmp_path / "q.db"),
         "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1", "--no-progress", *sum((["--set", o] for o in TINY), [])],
        capture_output=True, text=True, timeout=60,
    )
    elapsed = time.monotonic() - started
    assert completed.returncode == 2
    error_lines = completed.stderr.strip().splitlines()
    assert error_lines == [error_lines[-1]] and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in error_lines[0]
    assert "Traceback" not in completed.stderr
    assert elapsed < 20


def test_run_cell_trains_the_model_and_returns_json_values():
    import json

    from ssdfa.study.runner import run_cell

    spec = load_spec(QUICK, TINY)
    fixed = next(c for c in spec.cells if c.config["precision"] == "fixed" and c.config["update_rounding"] == "STOCH")
    floating = next(c for c in spec.cells if c.config["precision"] == "float")
    for cell in (fixed, floating):
        result = run_cell(cell.as_task())
        assert json.loads(json.dumps(result, allow_nan=False)) == result
        assert 0.0 <= result["test_accuracy"] <= 1.0
        assert len(result["epoch_train_accuracy"]) == cell.config["epochs"]
        assert result["num_classes"] == 10 and result["num_features"] == 64
        assert result["train_samples"] == 120 and result["test_samples"] == 60
        assert len(result["angles"]) == 1 and (result["angles"][0] is None or 0 <= result["angles"][0] <= 180)
        # Angles per epoch and hidden layer, and both selections.
        assert len(result["epoch_alignment_angles"]) == len(result["epoch_update_angles"]) == cell.config["epochs"]
        assert all(len(angles) == 1 for angles in result["epoch_update_angles"])
        assert result["last"]["epoch"] == cell.config["epochs"] and result["best"]["val"] >= result["last"]["val"]
    assert run_cell(fixed.as_task()) == run_cell(fixed.as_task())  # bit-exact: the same cell, the same result


def test_run_cell_reports_a_diverged_run_without_accuracy():
    from ssdfa.study.runner import run_cell

    # Float with batch 4 and shift 0: learning rate 4, as in the command-line test.
    cell = spec_from_dict({"data": {"train_limit": 300}, "network": {"hidden": [24], "epochs": 3, "batch": 4},
                           "arithmetic": {"precision": "float", "shift": 0}, "feedback": {"gain": 64}}).cells[0]
    result = run_cell(cell.as_task())
    assert result["divergence"]["criterion"] == "runaway"  # float64 grows past 2^16 before it overflows
    assert not any(key.endswith("accuracy") and not key.startswith("epoch_") for key in result)
    assert result["feedback_gain"] == 64.0 and result["shift"] == 0


def test_rerun_of_a_finished_study_starts_nothing(tmp_path, capsys):
    from ssdfa.cli import main

    db_path = tmp_path / "done.db"
    with ResultsDatabase.create_or_open(db_path) as db:
        for cell in load_spec(QUICK, TINY).cells:
            db.record(cell, {"test_accuracy": 0.5}, None, 0.1, "quick")
    before = db_path.read_bytes()
    overrides = [arg for override in TINY for arg in ("--set", override)]
    assert main(["study", str(QUICK), "--db", str(db_path), "--no-progress", *overrides]) == 0
    assert "all 14 cells already finished" in capsys.readouterr().err
    assert db_path.read_bytes() == before
