"""Run the pending cells of a study on a Dask cluster and record each result as it arrives.

The client (this process) owns the results database: workers only compute. Each future's
outcome is written in its own transaction the moment ``as_completed`` hands it over, so a
study stopped at any point keeps everything that finished, and a rerun submits only the cells
that have no finished row. A worker that dies takes its cell with it; Dask retries the cell on
another worker, and one that still cannot finish is reported as lost (not written), so the next
run tries it again.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ssdfa.errors import SsdfaError

from .database import ResultsDatabase
from .runner import execute_cell, run_cell
from .spec import StudySpec

__all__ = ["StudyOutcome", "run_study", "default_workers", "WORKER_ENVIRONMENT"]

#: One thread per worker process: the cells are the parallelism, and BLAS threads would only
#: compete with them for the cores.
WORKER_ENVIRONMENT = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class StudyOutcome:
    """What one run of a study did.

    Attributes
    ----------
    cells : int
        Cells in the spec.
    already_done : int
        Cells that had a finished row before this run (not run again).
    finished, failed, lost : int
        Cells of this run that finished, raised an error (recorded as failed) or were lost
        with their worker (not recorded).
    """

    cells: int
    already_done: int
    finished: int
    failed: int
    lost: int

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.lost == 0 and self.already_done + self.finished == self.cells


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_study(
    spec: StudySpec,
    db_path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    connect_timeout: float = 5.0,
    progress: bool = True,
    runner: Callable[[dict], dict] = run_cell,
    log=None,
) -> StudyOutcome:
    """Run every cell of ``spec`` that ``db_path`` does not hold a finished row for.

    Parameters
    ----------
    spec : StudySpec
    db_path : path
        The results database; created if missing.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default a LocalCluster.
    workers : int, optional
        LocalCluster worker processes (default: the cores available). Ignored with ``scheduler``.
    connect_timeout : float
        Seconds to wait for ``scheduler`` before giving up.
    progress : bool
        Show a progress bar with an ETA on ``log``.
    runner : callable
        ``run_cell`` or a stand-in with the same contract (for tests).

    Raises
    ------
    SsdfaError
        The database is not a study database, the scheduler cannot be reached, ...
    """
    # Looked up at each call: a default bound at import would keep whatever stream sys.stderr
    # was then (a test's capture, closed since).
    log = sys.stderr if log is None else log
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SsdfaError(f"--workers must be a positive integer, not {workers!r}")
    db_path = Path(db_path)
    # Read what is finished first: a file that is not a study database stops here, and a study
    # with nothing left to run starts no cluster.
    done = _finished_keys(db_path)
    remaining = sum(cell.key not in done for cell in spec.cells)
    if not remaining:
        print(f"study {spec.name}: all {len(spec.cells)} cells already finished in {db_path}", file=log)
        return StudyOutcome(len(spec.cells), len(spec.cells), 0, 0, 0)
    workers = workers or default_workers()
    with _connect(scheduler, workers, remaining, connect_timeout) as client:
        with ResultsDatabase.create_or_open(db_path) as database:
            done = database.finished_keys()
            pending = [cell for cell in spec.cells if cell.key not in done]
            already_done = len(spec.cells) - len(pending)
            print(
                f"study {spec.name}: {len(spec.cells)} cells, {already_done} already finished in {db_path}, "
                f"{len(pending)} to run",
                file=log,
            )
            counts = _run_pending(client, spec, pending, already_done, database, progress, runner, log)
    outcome = StudyOutcome(len(spec.cells), already_done, *counts)
    if outcome.failed or outcome.lost:
        print(
            f"study {spec.name}: {outcome.failed} cells failed, {outcome.lost} lost with their worker; "
            "rerun the same command to retry them",
            file=log,
        )
    return outcome


def _finished_keys(db_path: Path) -> set[str]:
    if not db_path.exists():
        return set()
    with ResultsDatabase.open_existing(db_path) as database:
        return database.finished_keys()


def _run_pending(client, spec, pending, already_done, database, progress, runner, log) -> tuple[int, int, int]:
    from distributed import as_completed
    from tqdm import tqdm

    by_key = {f"ssdfa-cell-{cell.key}": cell for cell in pending}
    futures = [client.submit(execute_cell, runner, cell.as_task(), key=name, pure=False) for name, cell in by_key.items()]
    finished = failed = lost = 0
    bar = tqdm(
        total=len(spec.cells), initial=already_done, unit="cell", desc=spec.name, file=log,
        disable=not progress, dynamic_ncols=True,
    )
    try:
        for future in as_completed(futures, loop=client.loop):
            cell = by_key[future.key]
            if future.status == "finished":
                result, error, seconds = future.result()
                database.record(cell, result, error, seconds, spec.name)
                if error is None:
                    finished += 1
                    if result.get("divergence"):
                        # A finished outcome (status 'diverged'), shown as such by reports.
                        bar.write(f"cell diverged: {cell.label()}: {result['divergence']['message']}", file=log)
                else:
                    failed += 1
                    bar.write(f"cell failed: {cell.label()}: {error}", file=log)
            else:
                lost += 1
                bar.write(f"cell lost: {cell.label()}: {_describe(future)}", file=log)
            future.release()
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"study {spec.name}: interrupted; {already_done + finished} of {len(spec.cells)} cells are "
            "saved, rerun the same command to resume",
            file=log,
        )
        raise
    bar.close()
    return finished, failed, lost


def _describe(future) -> str:
    try:
        exception = future.exception(timeout=1)
    except Exception as exc:  # the future was cancelled: say so rather than fail here
        return type(exc).__name__
    return f"{type(exception).__name__}: {exception}" if exception is not None else future.status


class _connect:
    """A Dask client: on ``address``, or on a new LocalCluster closed on exit."""

    def __init__(self, address: str | None, workers: int, pending: int, timeout: float) -> None:
        self.address, self.workers, self.pending, self.timeout = address, workers, pending, timeout
        self.cluster = self.client = None

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.address is not None:
            started = time.monotonic()
            try:
                self.client = Client(self.address, timeout=self.timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                waited = time.monotonic() - started
                raise SsdfaError(
                    f"cannot reach the Dask scheduler at {self.address} (gave up after {waited:.1f} s: "
                    f"{_first_line(exc)})"
                ) from None
            return self.client
        import dask

        for name, value in WORKER_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        # forkserver starts workers in about half the time of spawn, and, unlike fork, never
        # copies this process's threads.
        with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
            self.cluster = LocalCluster(
                n_workers=min(self.workers, self.pending),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                env=dict(WORKER_ENVIRONMENT),
            )
        self.client = Client(self.cluster, set_as_default=False)
        return self.client

    def __exit__(self, *exc_info) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
