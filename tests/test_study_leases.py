"""Leases on cells: a live owner keeps its cells (renewed by its heartbeat), an expired or dead
owner's cells go to the next run, and a cell another run settled is not taken again."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from ssdfa.study.database import ResultsDatabase
from ssdfa.study.leases import Heartbeat, lease_owner, owner_is_dead
from ssdfa.study.spec import spec_from_dict


@pytest.fixture
def cells():
    return spec_from_dict({"study": {"seeds": 4}}).cells


def test_a_live_lease_is_not_taken_and_an_expired_one_is(tmp_path, cells):
    keys = [cell.key for cell in cells]
    with ResultsDatabase.create_or_open(tmp_path / "s.db") as db:
        seen = db.attempts()
        assert db.claim(keys, "a:1:x", 60, 2, seen) == (keys[:2], [])  # no more than asked for
        assert db.claim(keys, "b:2:y", 0.2, 10, seen) == (keys[2:], [])  # a's two are left to a
        time.sleep(0.3)  # b's leases expire
        assert db.claim(keys[2:], "a:1:x", 60, 10, seen) == (keys[2:], [])
        assert {owner for owner, _ in db.leases().values()} == {"a:1:x"}


def test_recording_a_result_gives_the_lease_back_and_settles_the_cell_for_others(tmp_path, cells):
    with ResultsDatabase.create_or_open(tmp_path / "s.db") as db:
        seen = db.attempts()
        db.claim([cells[0].key, cells[1].key], "a:1:x", 60, 2, seen)
        db.record(cells[0], {"test_accuracy": 0.5}, None, 1.0, "s", owner="a:1:x")
        db.record(cells[1], None, "ValueError: too narrow", 1.0, "s", owner="a:1:x")
        assert db.leases() == {}
        # Another run that read the file before: both cells changed since, so neither is run again.
        assert db.claim([cells[0].key, cells[1].key, cells[2].key], "b:2:y", 60, 5, seen) == (
            [cells[2].key], [cells[0].key, cells[1].key],
        )
        # A run that starts now retries the failed cell, and never the finished one.
        assert db.claim([cells[0].key, cells[1].key], "c:3:z", 60, 5, db.attempts()) == (
            [cells[1].key], [cells[0].key],
        )


def test_heartbeat_keeps_a_live_owners_lease_past_its_expiry(tmp_path, cells):
    path = tmp_path / "s.db"
    with ResultsDatabase.create_or_open(path) as db:
        db.claim([cells[0].key], "a:1:x", 0.4, 1, db.attempts())
        with Heartbeat(path, "a:1:x", 0.4) as heartbeat:
            time.sleep(1.2)  # three leases long
            assert db.claim([cells[0].key], "b:2:y", 60, 1, db.attempts()) == ([], [])
        assert heartbeat.beats >= 3
        time.sleep(0.5)  # no heartbeat any more: the lease runs out
        assert db.claim([cells[0].key], "b:2:y", 60, 1, db.attempts()) == ([cells[0].key], [])


def test_a_dead_process_of_this_host_is_a_dead_owner(tmp_path, cells):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    host = socket.gethostname()
    assert owner_is_dead(f"{host}:{dead_pid}:0123abcd")
    assert not owner_is_dead(lease_owner())  # this process
    assert not owner_is_dead(f"{host}-elsewhere:{dead_pid}:0123abcd")  # another host: only expiry frees it
    assert not owner_is_dead("not an owner")
    with ResultsDatabase.create_or_open(tmp_path / "s.db") as db:
        db.claim([cells[0].key], f"{host}:{dead_pid}:0123abcd", 60, 1, db.attempts())
        assert db.claim([cells[0].key], lease_owner(), 60, 1, db.attempts(), owner_is_dead) == ([cells[0].key], [])


def test_owner_names_host_and_process_and_differs_per_run():
    host, pid, token = lease_owner().rsplit(":", 2)
    assert host == socket.gethostname() and int(pid) == os.getpid() and len(token) == 8
    assert lease_owner() != lease_owner()


def test_a_database_made_before_leases_gets_the_table_when_opened_for_writing(tmp_path, cells):
    path = tmp_path / "old.db"
    with ResultsDatabase.create_or_open(path) as db:
        db.record(cells[0], {"test_accuracy": 0.5}, None, 1.0, "s")
    connection = sqlite3.connect(path)
    connection.execute("DROP TABLE leases")
    connection.commit()
    connection.close()
    with ResultsDatabase.open_existing(path) as db:  # a report reads it as it is
        assert db.finished_keys() == {cells[0].key}
    with ResultsDatabase.create_or_open(path) as db:
        assert db.leases() == {} and db.finished_keys() == {cells[0].key}
        assert db.claim([cells[1].key], "a:1:x", 60, 1, db.attempts()) == ([cells[1].key], [])


def test_a_run_that_finds_the_database_made_by_another_run_since_it_looked_uses_it(tmp_path, cells, monkeypatch):
    from ssdfa.study import database

    path = tmp_path / "s.db"
    with ResultsDatabase.create_or_open(path) as db:
        db.record(cells[0], {"test_accuracy": 0.5}, None, 1.0, "s")
    # As if this run had looked before the other created the file: it must not create it again.
    monkeypatch.setattr(database, "_is_fresh", lambda path: True)
    with ResultsDatabase.create_or_open(path) as db:
        assert db.finished_keys() == {cells[0].key}
