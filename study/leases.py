"""Who holds a cell: lease owners, and the heartbeat that keeps a live owner's leases.

Study runs that share a database claim each cell before they start it (``ResultsDatabase.claim``).
A lease names its owner, ``HOST:PID:RANDOM``, and expires ``lease_seconds`` after its last
renewal. While a run is alive, a ``Heartbeat`` thread renews its leases every quarter of that
time, so a cell that trains for hours keeps its lease; a run that dies stops renewing, and its
cells go to the next run that asks once the leases have expired. A lease whose owner is a
process of this host that no longer exists is taken at once: nothing can renew it.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
from pathlib import Path

__all__ = ["DEFAULT_LEASE_SECONDS", "lease_owner", "owner_is_dead", "Heartbeat"]

#: How long a lease lasts without renewal. A live run renews every quarter of it, so it would
#: have to miss three heartbeats in a row to lose a cell; a run that died on another host
#: holds its cells this long.
DEFAULT_LEASE_SECONDS = 60.0


def lease_owner() -> str:
    """A name for this run: host, process id and a random part (process ids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer exists.

    An owner on another host, or one whose name does not parse, is never called dead: only
    the expiry of its lease frees its cells.
    """
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid, _ = parts
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # alive but another user's; or not a pid at all
        return False
    return False


class Heartbeat:
    """A thread that renews ``owner``'s leases in ``db_path`` every ``lease_seconds / 4``.

    Use as a context manager around the time the owner runs cells. It has its own connection
    (SQLite connections stay in their thread); a renewal that meets a locked database tries
    again at the next beat.
    """

    def __init__(self, db_path, owner: str, lease_seconds: float) -> None:
        self.db_path = Path(db_path)
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ssdfa-lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from .database import ResultsDatabase

        with ResultsDatabase.create_or_open(self.db_path) as database:
            while not self._stop.wait(self.lease_seconds / 4):
                try:
                    database.renew(self.owner, self.lease_seconds)
                except sqlite3.OperationalError:  # locked past the busy timeout: next beat
                    continue
                self.beats += 1
