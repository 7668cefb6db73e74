"""The results file of a study: SQLite, one row per cell, keyed by the cell's SHA-256.

Layout (schema version ``SCHEMA_VERSION``)::

    PRAGMA application_id = 0x53534446   -- "SSDF": marks the file as a study database
    PRAGMA user_version   = SCHEMA_VERSION
    study_schema(name TEXT PRIMARY KEY, value TEXT)  -- format = ssdfa-study, schema_version
    cells(
        key     TEXT PRIMARY KEY,   -- SHA-256 of the canonical configuration (hex)
        config  TEXT NOT NULL,      -- the canonical configuration (JSON)
        status  TEXT NOT NULL,      -- 'ok', 'diverged' or 'failed'
        result  TEXT,               -- what run_cell returned (JSON), when ok or diverged
        error   TEXT,               -- the exception, one line, when failed; what diverged, when diverged
        seconds REAL NOT NULL,      -- wall time of the run
        study   TEXT NOT NULL       -- the spec that ran it
    )
    leases(
        key     TEXT PRIMARY KEY,   -- a cell being run now
        owner   TEXT NOT NULL,      -- the study run that claimed it (``leases.lease_owner``)
        expires REAL NOT NULL       -- Unix time after which another run may take the cell
    )

``leases`` coordinates study runs that share the file: a run claims a cell before it starts it
and gives the lease back with the cell's result, in one transaction. It holds no results, so a
version-1 file without it is complete; opening such a file for writing adds the table.

The file is in WAL mode and every row is written in its own transaction as its result
arrives, so a study stopped at any moment (Ctrl-C, kill -9, a dead worker) keeps every row
it finished. A finished row ('ok', or 'diverged': a run that diverged is a result, which the
same configuration would repeat bit for bit) is never replaced; a failed one is replaced when
it is run again. A version 1 file (no 'diverged' status) is upgraded in place when a study
writes to it; a report reads either version.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ssdfa.errors import SsdfaError

from .cells import Cell, canonical_json

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "ResultsDatabase", "CellRow", "holds_nothing"]

APPLICATION_ID = 0x53534446  # "SSDF"
SCHEMA_VERSION = 2
#: Versions this code reads; older ones are upgraded when opened for writing.
READABLE_VERSIONS = (1, 2)
FORMAT_NAME = "ssdfa-study"

_SQLITE_HEADER = b"SQLite format 3\x00"

#: Statuses of a row that a rerun does not run again.
FINISHED_STATUSES = ("ok", "diverged")

_CELLS_TABLE = """
CREATE TABLE cells (
    key     TEXT PRIMARY KEY CHECK (length(key) = 64),
    config  TEXT NOT NULL,
    status  TEXT NOT NULL CHECK (status IN ('ok', 'diverged', 'failed')),
    result  TEXT,
    error   TEXT,
    seconds REAL NOT NULL,
    study   TEXT NOT NULL
);
"""

_CREATE = f"""
CREATE TABLE study_schema (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
{_CELLS_TABLE}
INSERT INTO study_schema VALUES ('format', '{FORMAT_NAME}'), ('schema_version', '{SCHEMA_VERSION}');
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

# Added to version 1 without a version bump: readers of results never look at it, and a
# file opened for writing gets it if it lacks it (a file made before leases existed).
_CREATE_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    key     TEXT PRIMARY KEY CHECK (length(key) = 64),
    owner   TEXT NOT NULL,
    expires REAL NOT NULL
);
"""

#: A cell's outcome as a claim compares it: (status, error, seconds), or None without a row.
Attempt = tuple[str, str | None, float] | None


@dataclass(frozen=True)
class CellRow:
    """One row of ``cells``, decoded."""

    key: str
    config: dict
    status: str
    result: dict | None
    error: str | None
    seconds: float
    study: str


class ResultsDatabase:
    """An open study database. Use ``create_or_open`` (studies) or ``open_existing`` (reports)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create_or_open(cls, path) -> ResultsDatabase:
        """Open a study database for writing, creating it if there is no file (or an empty one).

        Raises SsdfaError for a file that is not a study database; such a file is not modified.
        """
        path = Path(path)
        # SQLite refuses some lock upgrades at once instead of waiting for the busy timeout (a
        # connection that reads and then needs the write lock another holds, as when switching
        # to WAL while another run creates the file): such a refusal is retried from the start.
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            fresh = _is_fresh(path)
            if not fresh:
                _check_header(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(path, isolation_level=None, timeout=_LOCK_WAIT_SECONDS)
            except (sqlite3.Error, OSError) as exc:
                raise SsdfaError(f"cannot open study database {path}: {exc}") from None
            try:
                _prepare_for_writing(connection, path, fresh)
            except sqlite3.OperationalError as exc:
                connection.close()
                if _is_locked(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise SsdfaError(f"{path}: cannot use it as a study database: {exc}") from None
            except sqlite3.Error as exc:
                connection.close()
                raise SsdfaError(f"{path}: cannot use it as a study database: {exc}") from None
            except SsdfaError:
                connection.close()
                raise
            return cls(path, connection)

    @classmethod
    def open_existing(cls, path) -> ResultsDatabase:
        """Open an existing study database read-only (a report never writes)."""
        path = Path(path)
        if not path.exists():
            raise SsdfaError(f"study database {path} does not exist")
        if not path.is_file():
            raise SsdfaError(f"{path} is not a file, so not a study database")
        _check_header(path)
        try:
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30)
            _check_identity(connection, path)
        except sqlite3.Error as exc:
            raise SsdfaError(f"{path}: cannot read it as a study database: {exc}") from None
        return cls(path, connection)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ResultsDatabase:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- reading and writing -------------------------------------------------------------------

    def finished_keys(self) -> set[str]:
        """Keys of the cells that finished (status 'ok' or 'diverged'): a rerun skips them."""
        query = f"SELECT key FROM cells WHERE status IN {FINISHED_STATUSES}"
        return {key for (key,) in self._connection.execute(query)}

    def record(
        self, cell: Cell, result: dict | None, error: str | None, seconds: float, study: str, owner: str | None = None
    ) -> None:
        """Write one cell's outcome in its own transaction.

        ``result`` for a finished run, else ``error``. A result with a ``divergence`` is a run
        that diverged: status 'diverged', its message in ``error``. A finished row is kept as it
        is; a failed row is replaced by the new outcome.
        With ``owner``, that run's lease on the cell is given back in the same transaction.
        """
        if (result is None) == (error is None):
            raise ValueError("record needs exactly one of result and error")
        status = "ok" if result is not None else "failed"
        if result is not None and result.get("divergence"):
            status, error = "diverged", result["divergence"]["message"]
        result_text = canonical_json(result) if result is not None else None
        with _transaction(self._connection):
            self._connection.execute(
                """INSERT INTO cells (key, config, status, result, error, seconds, study)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET
                       status = excluded.status, result = excluded.result, error = excluded.error,
                       seconds = excluded.seconds, study = excluded.study
                   WHERE cells.status = 'failed'""",
                (cell.key, canonical_json(cell.config), status, result_text, error, float(seconds), study),
            )
            if owner is not None:
                self._connection.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (cell.key, owner))

    # -- leases: runs sharing the file run each cell once ---------------------------------------

    def attempts(self) -> dict[str, Attempt]:
        """Every row's (status, error, seconds): what ``claim`` compares to see another run's work."""
        return {key: (status, error, seconds) for key, status, error, seconds in self._connection.execute(
            "SELECT key, status, error, seconds FROM cells"
        )}

    def claim(
        self,
        keys: Sequence[str],
        owner: str,
        lease_seconds: float,
        limit: int,
        seen: dict[str, Attempt],
        owner_is_dead: Callable[[str], bool] = lambda owner: False,
    ) -> tuple[list[str], list[str]]:
        """Lease up to ``limit`` of ``keys`` to ``owner``, in one ``BEGIN IMMEDIATE`` transaction.

        A key is taken, in the order given, when no other owner holds a lease on it that is
        unexpired and whose owner ``owner_is_dead`` does not say is gone, and its row is still
        what ``seen`` (from ``attempts``) says. A key whose row is finished, or has changed
        since (another run failed it again), is not taken but returned as settled.

        Returns
        -------
        (claimed, settled) : lists of keys, in the order of ``keys``
        """
        claimed, settled = [], []
        now = time.time()
        with _transaction(self._connection):
            held = dict(self._connection.execute(
                "SELECT key, owner FROM leases WHERE owner != ? AND expires > ?", (owner, now)
            ))
            current = self.attempts()
            for key in keys:
                # Finished is settled even if ``seen`` was read after it finished.
                if current.get(key) != seen.get(key) or (current.get(key) or ("",))[0] in FINISHED_STATUSES:
                    settled.append(key)
                elif len(claimed) < limit and (key not in held or owner_is_dead(held[key])):
                    claimed.append(key)
            self._connection.executemany(
                """INSERT INTO leases (key, owner, expires) VALUES (?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires""",
                [(key, owner, now + lease_seconds) for key in claimed],
            )
        return claimed, settled

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Push back the expiry of every lease ``owner`` holds; returns how many it holds."""
        with _transaction(self._connection):
            cursor = self._connection.execute(
                "UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + lease_seconds, owner)
            )
        return cursor.rowcount

    def release(self, owner: str, keys: Iterable[str] | None = None) -> None:
        """Give back ``owner``'s leases on ``keys`` (all of them by default)."""
        with _transaction(self._connection):
            if keys is None:
                self._connection.execute("DELETE FROM leases WHERE owner = ?", (owner,))
            else:
                self._connection.executemany(
                    "DELETE FROM leases WHERE key = ? AND owner = ?", [(key, owner) for key in keys]
                )

    def leases(self) -> dict[str, tuple[str, float]]:
        """Every lease: key -> (owner, expiry as Unix time)."""
        return {key: (owner, expires) for key, owner, expires in self._connection.execute(
            "SELECT key, owner, expires FROM leases"
        )}

    def rows(self) -> list[CellRow]:
        """Every row, ordered by key (so the order depends only on the contents)."""
        rows = []
        query = "SELECT key, config, status, result, error, seconds, study FROM cells ORDER BY key"
        for key, config, status, result, error, seconds, study in self._connection.execute(query):
            rows.append(CellRow(key, json.loads(config), status, json.loads(result) if result else None, error, seconds, study))
        return rows

    def count(self) -> dict[str, int]:
        """Rows per status."""
        counts = {"ok": 0, "diverged": 0, "failed": 0}
        counts.update(dict(self._connection.execute("SELECT status, count(*) FROM cells GROUP BY status")))
        return counts


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.connection.execute("COMMIT" if exc_type is None else "ROLLBACK")


#: How long opening a database waits for another run's lock (the busy timeout, and the retries
#: of a lock SQLite refuses at once).
_LOCK_WAIT_SECONDS = 30.0


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _prepare_for_writing(connection: sqlite3.Connection, path: Path, fresh: bool) -> None:
    """Create the tables (``fresh``) or check and upgrade them; WAL, the leases, synchronous FULL."""
    # A file with an SQLite header and nothing in it is one that another run started
    # together with this one is creating (it switched to WAL, its tables are not yet
    # committed): join the creation below rather than refuse it as a foreign database.
    fresh = fresh or _holds_nothing(connection)
    if fresh:
        connection.execute("PRAGMA journal_mode = WAL")
        # Runs started together may all find no file: the first to take the write lock
        # creates the tables, and the others find them made.
        with _transaction(connection):
            if not connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'study_schema'"
            ).fetchone():
                for statement in filter(str.strip, _CREATE.split(";")):
                    connection.execute(statement)
        _check_identity(connection, path)
    else:
        version = _check_identity(connection, path)
        connection.execute("PRAGMA journal_mode = WAL")
        if version < SCHEMA_VERSION:
            _upgrade(connection)
    connection.executescript(f"BEGIN IMMEDIATE; {_CREATE_LEASES} COMMIT;")
    # A committed row survives the process being killed (WAL + synchronous FULL).
    connection.execute("PRAGMA synchronous = FULL")


def holds_nothing(path) -> bool:
    """True for no file, an empty one, or an SQLite file with no schema object and no application
    id: a database that ``create_or_open`` creates, or that a run started together with this one
    is creating (its tables are not committed yet). Reads only; False for anything else."""
    path = Path(path)
    if _is_fresh(path):
        return True
    try:
        _check_header(path)
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_LOCK_WAIT_SECONDS)
    except (SsdfaError, sqlite3.Error):
        return False
    try:
        return _holds_nothing(connection)
    except sqlite3.Error:
        return False
    finally:
        connection.close()


def _is_fresh(path: Path) -> bool:
    """No file, or an empty one: a database to create (unless another run creates it first)."""
    return not path.exists() or (path.is_file() and path.stat().st_size == 0)


def _holds_nothing(connection: sqlite3.Connection) -> bool:
    """An SQLite file without a schema object and without an application id: empty."""
    (objects,) = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    return objects == 0 and application_id == 0


def _upgrade(connection: sqlite3.Connection) -> None:
    """Version 1 to 2: the cells table gains the 'diverged' status (SQLite cannot alter a CHECK)."""
    connection.executescript(
        "BEGIN IMMEDIATE;"
        "ALTER TABLE cells RENAME TO cells_version1;"
        f"{_CELLS_TABLE}"
        "INSERT INTO cells SELECT * FROM cells_version1;"
        "DROP TABLE cells_version1;"
        f"UPDATE study_schema SET value = '{SCHEMA_VERSION}' WHERE name = 'schema_version';"
        f"PRAGMA user_version = {SCHEMA_VERSION};"
        "COMMIT;"
    )


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise SsdfaError(f"cannot read {path}: {exc.strerror}") from None
    if header != _SQLITE_HEADER:
        raise SsdfaError(f"{path} is not a study database (not an SQLite file)")


def _check_identity(connection: sqlite3.Connection, path: Path) -> int:
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    if application_id != APPLICATION_ID:
        raise SsdfaError(
            f"{path} is an SQLite database but not a study database "
            f"(application_id {application_id:#x}, expected {APPLICATION_ID:#x})"
        )
    try:
        schema = dict(connection.execute("SELECT name, value FROM study_schema"))
    except sqlite3.Error:
        raise SsdfaError(f"{path} claims to be a study database but has no study_schema table") from None
    if schema.get("format") != FORMAT_NAME:
        raise SsdfaError(f"{path}: study_schema.format is {schema.get('format')!r}, expected {FORMAT_NAME!r}")
    version = schema.get("schema_version")
    if version not in {str(v) for v in READABLE_VERSIONS}:
        raise SsdfaError(
            f"{path}: study database schema version {version}, this ssdfa reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    columns = {row[1] for row in connection.execute("PRAGMA table_info(cells)")}
    missing = {"key", "config", "status", "result", "error", "seconds", "study"} - columns
    if missing:
        what = "no cells table" if not columns else f"a cells table without {', '.join(sorted(missing))}"
        raise SsdfaError(f"{path} claims to be a study database but has {what}")
    return int(version)
