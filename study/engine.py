"""Run the pending cells of a study on a Dask cluster and record each result as it arrives.

The client (this process) owns the results database: workers only compute. Each future's
outcome is written in its own transaction the moment ``as_completed`` hands it over, so a
study stopped at any point keeps everything that finished, and a rerun submits only the cells
that have no finished row. A worker that dies takes its cell with it; Dask retries the cell on
another worker, and one that still cannot finish is reported as lost (not written), so the next
run tries it again.

Runs that share a database share its cells: a run claims a cell (a lease, see ``leases``)
before it submits it, only as many as its cluster has threads, and claims more as cells
finish. A cell leased by another live run is left to it; one whose run died is taken once its
lease expires. A cell that another run finished or failed while this one ran is not run again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ssdfa.errors import SsdfaError

from .database import FINISHED_STATUSES, ResultsDatabase, holds_nothing
from .leases import DEFAULT_LEASE_SECONDS, Heartbeat, lease_owner, owner_is_dead
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
        with their worker (not recorded). ``failed`` counts the cells that another run sharing
        the database failed while this one ran, too.
    by_others : int
        Cells that another run sharing the database finished while this one ran.
    """

    cells: int
    already_done: int
    finished: int
    failed: int
    lost: int
    by_others: int = 0

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.lost == 0 and self.already_done + self.finished + self.by_others == self.cells


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_datasets(cells) -> None:
    """Read each dataset the cells name once, before any cluster starts: a missing or unreadable
    dataset is one SsdfaError naming it, instead of one failed row and message per cell."""
    from ssdfa.model.datasets import load_dataset

    for name, data_dir in sorted({(c.config["dataset"], c.data_dir) for c in cells}, key=str):
        load_dataset(name, data_dir)


def run_study(
    spec: StudySpec,
    db_path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    connect_timeout: float = 5.0,
    progress: bool = True,
    runner: Callable[[dict], dict] = run_cell,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
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
    lease_seconds : float
        How long another run sharing the database waits for a cell of this run that stops
        being renewed (this run renews its leases every quarter of it while it is alive).

    Raises
    ------
    SsdfaError
        The database is not a study database, the scheduler cannot be reached, ...
    """
    # Looked up per call, not bound at import: a caller (or a test) may have replaced sys.stderr.
    log = sys.stderr if log is None else log
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SsdfaError(f"--workers must be a positive integer, not {workers!r}")
    if not 0 < lease_seconds < float("inf"):
        raise SsdfaError(f"--lease-seconds must be a positive number of seconds, not {lease_seconds!r}")
    db_path = Path(db_path)
    # Read what is finished first: a file that is not a study database stops here, and a study
    # with nothing left to run starts no cluster.
    done = _finished_keys(db_path)
    remaining = sum(cell.key not in done for cell in spec.cells)
    if not remaining:
        print(f"study {spec.name}: all {len(spec.cells)} cells already finished in {db_path}", file=log)
        return StudyOutcome(len(spec.cells), len(spec.cells), 0, 0, 0)
    if runner is run_cell:
        _check_datasets(cell for cell in spec.cells if cell.key not in done)
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
            owner = lease_owner()
            with Heartbeat(db_path, owner, lease_seconds):
                counts = _run_pending(
                    client, spec, pending, already_done, database, _Leasing(owner, lease_seconds), progress, runner, log,
                )
    outcome = StudyOutcome(len(spec.cells), already_done, *counts)
    if outcome.by_others:
        print(f"study {spec.name}: {_cells(outcome.by_others)} finished by another run of the database", file=log)
    if outcome.failed or outcome.lost:
        print(
            f"study {spec.name}: {outcome.failed} cells failed, {outcome.lost} lost with their worker; "
            "rerun the same command to retry them",
            file=log,
        )
    return outcome


def _finished_keys(db_path: Path) -> set[str]:
    # No file, or one that a run started together with this one is creating (empty, or its tables
    # not committed yet): nothing is finished, and create_or_open below joins the creation.
    if holds_nothing(db_path):
        return set()
    with ResultsDatabase.open_existing(db_path) as database:
        return database.finished_keys()


@dataclass(frozen=True)
class _Leasing:
    owner: str
    lease_seconds: float

    @property
    def poll_seconds(self) -> float:
        """How often to look again when every pending cell is leased by another live run."""
        return min(2.0, self.lease_seconds / 4)


def _run_pending(
    client, spec, pending, already_done, database, leasing, progress, runner, log,
) -> tuple[int, int, int, int]:
    """Claim, submit and record cells until none of ``pending`` is left to anyone."""
    from distributed import as_completed
    from tqdm import tqdm

    seen = database.attempts()  # a row that changes from this was written by another run
    waiting = {cell.key: cell for cell in pending}
    running = {}  # Dask key -> cell
    futures = as_completed(loop=client.loop)
    finished = failed = lost = by_others = 0
    bar = tqdm(
        total=len(spec.cells), initial=already_done, unit="cell", desc=spec.name, file=log,
        disable=not progress, dynamic_ncols=True,
    )
    said_waiting = False
    try:
        while waiting or running:
            # As many cells as the cluster has threads (asked each time: workers may join later).
            capacity = max(1, sum(client.nthreads().values()))
            if waiting and len(running) < capacity:
                claimed, settled = database.claim(
                    list(waiting), leasing.owner, leasing.lease_seconds, capacity - len(running), seen, owner_is_dead,
                )
                if settled:
                    outcomes = database.attempts()
                for key in settled:
                    cell = waiting.pop(key)
                    if outcomes[key][0] in FINISHED_STATUSES:  # 'ok' or 'diverged': a finished outcome
                        by_others += 1
                    else:
                        failed += 1
                        bar.write(f"cell failed in another run: {cell.label()}: {outcomes[key][1]}", file=log)
                    bar.update(1)
                for key in claimed:
                    cell = waiting.pop(key)
                    name = f"ssdfa-cell-{key}"
                    running[name] = cell
                    futures.add(client.submit(execute_cell, runner, cell.as_task(), key=name, pure=False))
            if not running:
                if not waiting:
                    break
                if not said_waiting:
                    bar.write(
                        f"study {spec.name}: waiting for {_cells(len(waiting))} that another run of {database.path} "
                        "is running", file=log,
                    )
                    said_waiting = True
                time.sleep(leasing.poll_seconds)
                continue
            future = next(futures)
            cell = running.pop(future.key)
            if future.status == "finished":
                result, error, seconds = future.result()
                database.record(cell, result, error, seconds, spec.name, owner=leasing.owner)
                if error is None:
                    finished += 1
                    if result.get("divergence"):
                        # A finished outcome (status 'diverged'), shown as such by reports.
                        bar.write(f"cell diverged: {cell.label()}: {result['divergence']['message']}", file=log)
                else:
                    failed += 1
                    bar.write(f"cell failed: {cell.label()}: {error}", file=log)
            else:
                database.release(leasing.owner, [cell.key])
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
    finally:
        # Cells this run will not finish go back at once rather than when their leases expire.
        database.release(leasing.owner)
    bar.close()
    return finished, failed, lost, by_others


def _cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def _describe(future) -> str:
    try:
        exception = future.exception(timeout=1)
    except Exception as exc:  # the future was cancelled: say so rather than fail here
        return type(exc).__name__
    return f"{type(exception).__name__}: {exception}" if exception is not None else future.status


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while the block runs (a process started meanwhile keeps ignoring it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _sigint_deferred():
    """A Ctrl-C during the block is held and raised when the block is over: a cluster half
    started when the run stopped would leave worker processes failing, each with a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


class _connect:
    """A Dask client: on ``address``, or on a new LocalCluster closed on exit."""

    def __init__(self, address: str | None, workers: int, pending: int, timeout: float) -> None:
        self.address, self.workers, self.pending, self.timeout = address, workers, pending, timeout
        self.cluster = self.client = None

    def __enter__(self):
        import multiprocessing.forkserver

        from distributed import Client, LocalCluster
        from distributed.utils import get_mp_context

        if self.address is not None:
            from distributed.comm.addressing import parse_address, parse_host_port

            try:  # checked first: a Client given no port fails late and warns again when collected
                parse_host_port(parse_address(self.address, strict=False)[1])
            except ValueError as exc:
                raise SsdfaError(f"--scheduler {self.address!r}: {exc}; expected an address such as "
                                 "tcp://host:8786") from None
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
        # Runs sharing a database each start a cluster: the second one's scheduler finds the
        # default HTTP port taken and takes another, which is no news to the user.
        with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
            # Worker processes ignore SIGINT: Ctrl-C reaches the whole process group, and this
            # process alone stops the run (one line) and closes the cluster; workers that took it
            # themselves would print tracebacks. Workers are forked from the forkserver and take
            # its SIGINT disposition, so it is started here, for the moment, with SIGINT ignored.
            get_mp_context()  # gives the forkserver its preload first
            with _sigint_ignored():
                multiprocessing.forkserver.ensure_running()
            try:
                with _sigint_deferred():
                    self.cluster = LocalCluster(
                        n_workers=min(self.workers, self.pending),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                        env=dict(WORKER_ENVIRONMENT),
                    )
                    self.client = Client(self.cluster, set_as_default=False)
            except BaseException:  # Ctrl-C while the cluster started: close it, then stop
                self.__exit__(None, None, None)
                raise
        return self.client

    def __exit__(self, *exc_info) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
