"""The study engine: resumes after SIGKILL with every finished cell kept once and never rerun;
runs sharing a database run each cell once; an unreachable scheduler is one quick, clean error."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ssdfa.study.database import ResultsDatabase
from ssdfa.study.spec import load_spec, spec_from_dict

QUICK = Path(__file__).resolve().parents[1] / "studies" / "quick.toml"
#: The quick study at a tiny size: every cell trains for a fraction of a second.
TINY = ["data.train_limit=120", "data.test_limit=60", "network.hidden=[16]", "network.epochs=1", "study.seeds=2"]

#: Runs the quick study through the engine with a runner that logs each cell it starts (to a
#: file, from the worker processes) and slows down, so that the study can be killed mid-way.
SCRIPT = textwrap.dedent(
    """
    import faulthandler, sys, time
    from ssdfa.study.cells import cell_key
    from ssdfa.study.engine import run_study
    from ssdfa.study.runner import run_cell
    from ssdfa.study.spec import load_spec, spec_from_dict

    def logged_run_cell(task):
        key = cell_key({k: v for k, v in task.items() if k != "data_dir"})
        with open(LOG, "a") as log:
            log.write(f"{RUN} {key} {time.time()}\\n")
        # Hold this run's first cell (only that one: a WAIT_FOR run that died early then costs one
        # wait, not one per cell) until the run named WAIT_FOR has started one.
        if WAIT_FOR and [line.split()[0] for line in open(LOG)].count(RUN) == 1:
            # Generous: the other run's Dask cluster may take long to start on a loaded machine.
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and f"{WAIT_FOR} " not in open(LOG).read():
                time.sleep(0.05)
        time.sleep(SLEEP)
        return {"test_accuracy": 0.5} if STUB else run_cell(task)

    if __name__ == "__main__":
        # A run that hangs prints where each of its threads is, and exits, before the test
        # gives up on it: the failure then says where it stuck.
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
        spec_path, db_path, LOG, RUN, workers, lease, STUB, WAIT_FOR, SLEEP, *overrides = sys.argv[1:]
        STUB, SLEEP = STUB == "stub", float(SLEEP)
        outcome = run_study(
            load_spec(spec_path, overrides), db_path, workers=int(workers), progress=False,
            runner=logged_run_cell, lease_seconds=float(lease),
        )
        sys.exit(0 if outcome.complete else 1)
    """
)


#: Seconds after which a run started by ``start_study`` dumps its threads' stacks and exits.
HANG_SECONDS = 240
SCRIPT = f"HANG_SECONDS = {HANG_SECONDS}\n{SCRIPT}"


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    """Kill what a failed test left running: a live run would hold the database and the CPU, and
    its unread pipe would be reported against whichever test comes next."""
    yield
    for run in _started:
        _kill(run)
        run.wait()
        run.stdout.close()
    _started.clear()


_started: list[subprocess.Popen] = []


def _kill(run: subprocess.Popen) -> None:
    """SIGKILL ``run``'s process group: the run, its Dask scheduler and workers (they outlive a
    run that exited on its own after a hang)."""
    try:
        os.killpg(run.pid, signal.SIGKILL)
    except ProcessLookupError:  # nothing of the group is left
        pass


def finish(runs: dict[str, subprocess.Popen], tmp_path: Path, timeout: float = HANG_SECONDS + 60) -> list[str]:
    """Wait for every run; their outputs. A run still going after ``timeout`` seconds fails the
    test with every run's output and the cells started so far."""
    deadline = time.monotonic() + timeout
    outputs = {}
    for name, run in runs.items():
        try:
            outputs[name] = run.communicate(timeout=max(0.0, deadline - time.monotonic()))[0]
        except subprocess.TimeoutExpired:
            for other in runs.values():
                _kill(other)
            texts = {other: (outputs.get(other) or runs[other].communicate()[0]) for other in runs}
            log = tmp_path / "log.txt"
            pytest.fail(f"run {name} still going after {timeout:.0f} s\n"
                        + "".join(f"--- run {n}, exit status {runs[n].returncode}:\n{t}\n" for n, t in texts.items())
                        + f"--- cells started:\n{log.read_text() if log.exists() else ''}")
    return [outputs[name] for name in runs]


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


def start_study(
    tmp_path: Path, run: str, *, workers: int = 2, lease_seconds: float = 60, stub: bool = False, wait_for: str = "",
    seconds: float = 0.4, overrides: tuple[str, ...] = (),
) -> subprocess.Popen:
    """Start SCRIPT on ``tmp_path/quick.db``; each cell takes at least ``seconds``; ``stub``
    returns a fixed result instead of training."""
    script = tmp_path / "run_study.py"
    script.write_text(SCRIPT)
    run = subprocess.Popen(
        [sys.executable, str(script), str(QUICK), str(tmp_path / "quick.db"), str(tmp_path / "log.txt"), run,
         str(workers), str(lease_seconds), "stub" if stub else "train", wait_for, str(seconds), *TINY, *overrides],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
    )
    _started.append(run)
    return run


def executions(tmp_path: Path) -> list[tuple[str, str, float]]:
    """(run, key, Unix time) of every cell a runner started, in order."""
    return [
        (run, key, float(when))
        for run, key, when in (line.split() for line in (tmp_path / "log.txt").read_text().splitlines())
    ]


def test_study_killed_mid_way_resumes_without_losing_or_repeating_a_cell(tmp_path):
    cells = {cell.key for cell in load_spec(QUICK, TINY).cells}
    db_path = tmp_path / "quick.db"
    # A short lease: the killed run's leases stay in the file, and the next run takes them.
    first = start_study(tmp_path, "first", lease_seconds=2)
    deadline = time.monotonic() + 60
    while len(finished_rows(db_path)) < 3:
        assert first.poll() is None, f"the study ended before it could be killed:\n{first.stdout.read()}"
        assert time.monotonic() < deadline, "no results within 60 s"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the client, its scheduler and its workers, at once
    first.communicate()
    before = finished_rows(db_path)
    assert 3 <= len(before) < len(cells), "the kill came too late to test resuming"
    with ResultsDatabase.open_existing(db_path) as db:
        orphaned = set(db.leases())
    assert orphaned and not orphaned & set(before)  # the dead run's unfinished cells were leased

    second = start_study(tmp_path, "second", lease_seconds=2)
    output, = finish({"second": second}, tmp_path)
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
        assert db.leases() == {}


def test_two_runs_started_together_on_one_database_run_each_cell_once(tmp_path):
    cells = {cell.key for cell in load_spec(QUICK, TINY).cells}
    # The first run holds its first cell until the second has started one, so the two overlap.
    first = start_study(tmp_path, "first", workers=1, stub=True, wait_for="second")
    second = start_study(tmp_path, "second", workers=1, stub=True)
    outputs = finish({"first": first, "second": second}, tmp_path)
    if [first.returncode, second.returncode] != [0, 0]:
        # Each run's whole output (an assertion's message would be cut to a few lines).
        pytest.fail("".join(f"--- run {name}, exit status {run.returncode}:\n{output}\n"
                            for name, run, output in zip(("first", "second"), (first, second), outputs)))
    started = executions(tmp_path)
    keys = [key for _, key, _ in started]
    assert sorted(keys) == sorted(cells), f"cells run more than once: {len(keys)} runs of {len(cells)} cells"
    assert {run for run, _, _ in started} == {"first", "second"}  # the work was shared
    assert any("finished by another run" in output for output in outputs)
    with ResultsDatabase.open_existing(tmp_path / "quick.db") as db:
        assert db.count() == {"ok": len(cells), "diverged": 0, "failed": 0}
        assert db.leases() == {}


def test_a_live_run_keeps_the_lease_of_a_cell_that_outlasts_it(tmp_path):
    # Cells of 2.5 s under 1 s leases: only the heartbeat keeps the second run off them.
    one_seed = ("study.seeds=1",)
    cells = {cell.key for cell in load_spec(QUICK, [*TINY, *one_seed]).cells}
    first = start_study(tmp_path, "first", workers=1, lease_seconds=1, stub=True, wait_for="second", seconds=2.5,
                        overrides=one_seed)
    second = start_study(tmp_path, "second", workers=1, lease_seconds=1, stub=True, seconds=2.5, overrides=one_seed)
    outputs = finish({"first": first, "second": second}, tmp_path)
    assert [first.returncode, second.returncode] == [0, 0], outputs
    keys = [key for _, key, _ in executions(tmp_path)]
    assert sorted(keys) == sorted(cells), f"cells run more than once: {len(keys)} runs of {len(cells)} cells"


def test_a_lease_whose_owner_stopped_renewing_it_is_retried_when_it_expires(tmp_path):
    cells = load_spec(QUICK, TINY).cells
    held = cells[0]
    with ResultsDatabase.create_or_open(tmp_path / "quick.db") as db:
        # A run on another host (so never known dead here) that claimed a cell and then vanished.
        claimed, _ = db.claim([held.key], "elsewhere:4242:deadbeef", 3.0, 1, db.attempts())
        (_, expires), = db.leases().values()
    assert claimed == [held.key]
    run = start_study(tmp_path, "next", workers=1, stub=True)
    output, = finish({"next": run}, tmp_path)
    assert run.returncode == 0, output
    started = executions(tmp_path)
    assert sorted(key for _, key, _ in started) == sorted(cell.key for cell in cells)  # each once, the held one too
    assert next(when for _, key, when in started if key == held.key) >= expires  # but not before its lease expired


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


def test_a_lease_time_that_is_not_a_positive_number_is_one_error_line(tmp_path, capsys):
    from ssdfa.cli import main

    for bad in ("0", "-5", "inf", "nan"):
        assert main(["study", str(QUICK), "--db", str(tmp_path / "q.db"), "--lease-seconds", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--lease-seconds must be a positive number" in err
    assert not (tmp_path / "q.db").exists()


def test_a_missing_dataset_is_one_error_line_before_any_cell_runs(tmp_path, capsys):
    """Read once before the cluster starts: not one failed row and message per cell."""
    from ssdfa.cli import main

    (tmp_path / "empty").mkdir()
    overrides = [arg for override in TINY for arg in ("--set", override)]
    for data in (['data.dataset="mnist"', f'data.data_dir="{tmp_path / "empty"}"'],
                 [f'data.dataset="features:{tmp_path / "none.npz"}"']):
        argv = ["study", str(QUICK), "--db", str(tmp_path / "q.db"), "--no-progress", *overrides,
                *sum((["--set", o] for o in data), [])]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and ("no mnist IDX files" in err or "no such features file" in err), err
        assert not (tmp_path / "q.db").exists()


@pytest.mark.parametrize("address", ["127.0.0.1", "garbage", "tcp://host:port"])
def test_a_scheduler_address_without_a_port_is_one_error_line_at_once(tmp_path, capsys, address):
    from ssdfa.cli import main

    assert main(["study", str(QUICK), "--db", str(tmp_path / "q.db"), "--scheduler", address, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--scheduler {address!r}" in err and "tcp://host:8786" in err
    assert not (tmp_path / "q.db").exists()
