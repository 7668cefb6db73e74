"""The results database: marked as a study database, one row per cell, finished rows never replaced."""

from __future__ import annotations

import sqlite3

import pytest

from ssdfa.cli import main
from ssdfa.errors import SsdfaError
from ssdfa.study.database import APPLICATION_ID, ResultsDatabase
from ssdfa.study.spec import spec_from_dict


@pytest.fixture
def cells():
    return spec_from_dict({"study": {"seeds": 3}}).cells


def test_new_database_is_marked_and_in_wal_mode(tmp_path):
    path = tmp_path / "s.db"
    ResultsDatabase.create_or_open(path).close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert dict(connection.execute("SELECT name, value FROM study_schema"))["format"] == "ssdfa-study"


def test_a_run_opening_a_database_another_run_is_creating_joins_it(tmp_path):
    # The other run has switched the new file to WAL (the header is written) and holds the write
    # lock while it creates the tables: this run must wait for them, not refuse the file.
    import threading

    from ssdfa.study.database import _CREATE

    path = tmp_path / "s.db"
    creator = sqlite3.connect(path, isolation_level=None)
    creator.execute("PRAGMA journal_mode = WAL")
    creator.execute("BEGIN IMMEDIATE")
    counts: list = []

    def open_and_count():
        with ResultsDatabase.create_or_open(path) as db:
            counts.append(db.count())

    joiner = threading.Thread(target=open_and_count)
    joiner.start()
    joiner.join(0.5)
    assert joiner.is_alive()  # waiting for the write lock, not refusing the file
    for statement in filter(str.strip, _CREATE.split(";")):
        creator.execute(statement)
    creator.execute("COMMIT")
    joiner.join(30)
    assert counts == [{"ok": 0, "diverged": 0, "failed": 0}]
    assert sqlite3.connect(path).execute("SELECT count(*) FROM study_schema").fetchone()[0] == 2


def test_a_run_that_finds_the_new_file_before_its_switch_to_wal_waits_for_the_lock(tmp_path):
    # The other run holds the write lock of the new file while it is still a rollback-journal
    # file: SQLite refuses this run's switch to WAL at once (no busy wait: a reader asking for
    # the lock a writer holds), and opening must wait and retry rather than fail (it did, in a
    # test of two runs started together).
    import threading
    import time

    path = tmp_path / "s.db"
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE placeholder (x)")  # uncommitted: the file holds a header only
    threading.Timer(0.5, lambda: creator.execute("ROLLBACK")).start()
    started = time.monotonic()
    with ResultsDatabase.create_or_open(path) as db:
        assert db.count() == {"ok": 0, "diverged": 0, "failed": 0}
    assert time.monotonic() - started >= 0.4  # it waited for the other run's lock
    creator.close()


def test_a_run_reading_a_database_another_run_is_creating_finds_nothing_finished(tmp_path):
    # A run's first look (before its cluster starts) can come while a run started with it creates
    # the file: empty, then switched to WAL, then its tables in an open transaction.
    from ssdfa.study.database import _CREATE
    from ssdfa.study.engine import _finished_keys

    path = tmp_path / "s.db"
    creator = sqlite3.connect(path, isolation_level=None)
    creator.execute("SELECT count(*) FROM sqlite_master").fetchone()
    assert path.stat().st_size == 0 and _finished_keys(path) == set()
    creator.execute("PRAGMA journal_mode = WAL")
    assert _finished_keys(path) == set()
    creator.execute("BEGIN IMMEDIATE")
    for statement in filter(str.strip, _CREATE.split(";")):
        creator.execute(statement)
    assert _finished_keys(path) == set()
    creator.execute("COMMIT")
    assert _finished_keys(path) == set()
    creator.close()


def test_an_empty_sqlite_file_becomes_a_study_database(tmp_path):
    path = tmp_path / "s.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")  # writes the header, no table
    connection.close()
    ResultsDatabase.create_or_open(path).close()
    assert sqlite3.connect(path).execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_another_sqlite_file_is_refused_and_left_unchanged(tmp_path, capsys):
    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.executemany("INSERT INTO notes VALUES (?)", [("a",), ("b",)])
    connection.commit()
    connection.close()
    before = path.read_bytes()
    with pytest.raises(SsdfaError, match=r"an SQLite database but not a study database \(application_id 0x0"):
        ResultsDatabase.create_or_open(path)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "not a study database" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert sqlite3.connect(path).execute("SELECT count(*) FROM notes").fetchone()[0] == 2


def test_a_file_that_is_not_sqlite_is_refused(tmp_path, capsys):
    path = tmp_path / "results.db"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(SsdfaError, match=r"results\.db is not a study database \(not an SQLite file\)"):
        ResultsDatabase.create_or_open(path)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an SQLite file" in err
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_report_of_a_missing_database_does_not_create_it(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(SsdfaError, match="does not exist"):
        ResultsDatabase.open_existing(path)
    assert not path.exists()


def test_one_row_per_cell_and_finished_rows_are_kept(tmp_path, cells):
    with ResultsDatabase.create_or_open(tmp_path / "s.db") as db:
        db.record(cells[0], {"test_accuracy": 0.5}, None, 1.0, "first")
        db.record(cells[0], {"test_accuracy": 0.9}, None, 2.0, "second")  # already finished: ignored
        db.record(cells[1], None, "ValueError: too narrow", 0.1, "first")
        assert db.finished_keys() == {cells[0].key}
        db.record(cells[1], {"test_accuracy": 0.7}, None, 1.5, "second")  # a failed cell is retried
        rows = {row.key: row for row in db.rows()}
    assert len(rows) == 2
    assert rows[cells[0].key].result == {"test_accuracy": 0.5} and rows[cells[0].key].study == "first"
    assert rows[cells[1].key].status == "ok" and rows[cells[1].key].error is None


def test_rows_survive_reopening_and_are_read_back_in_key_order(tmp_path, cells):
    path = tmp_path / "s.db"
    with ResultsDatabase.create_or_open(path) as db:
        for cell in reversed(cells):
            db.record(cell, {"test_accuracy": 0.25}, None, 0.5, "s")
    with ResultsDatabase.open_existing(path) as db:
        rows = db.rows()
        assert [row.key for row in rows] == sorted(cell.key for cell in cells)
        assert rows[0].config == next(c.config for c in cells if c.key == rows[0].key)
        assert db.count() == {"ok": len(cells), "diverged": 0, "failed": 0}


def test_a_version_1_database_is_upgraded_to_take_diverged_rows(tmp_path):
    """A file written before the 'diverged' status keeps its rows and accepts the new status."""
    import sqlite3

    from ssdfa.study.spec import spec_from_dict

    cells = spec_from_dict({"study": {"seeds": 2}, "arithmetic": {"precision": "float"}}).cells
    path = tmp_path / "old.db"
    with ResultsDatabase.create_or_open(path) as db:
        db.record(cells[0], {"test_accuracy": 0.5}, None, 1.0, "s")
    # Rewrite it as version 1 wrote it: the CHECK without 'diverged', schema version 1.
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(
        "BEGIN; ALTER TABLE cells RENAME TO newer;"
        "CREATE TABLE cells (key TEXT PRIMARY KEY CHECK (length(key) = 64), config TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), result TEXT, error TEXT,"
        " seconds REAL NOT NULL, study TEXT NOT NULL);"
        "INSERT INTO cells SELECT * FROM newer; DROP TABLE newer;"
        "UPDATE study_schema SET value = '1' WHERE name = 'schema_version'; PRAGMA user_version = 1; COMMIT;"
    )
    connection.close()
    with ResultsDatabase.open_existing(path) as db:  # a report reads version 1 as it is
        assert db.count()["ok"] == 1
    divergence = {"criterion": "non-finite", "epoch": 1, "layer": 0, "message": "layer 0 weights became NaN"}
    with ResultsDatabase.create_or_open(path) as db:
        db.record(cells[1], {"divergence": divergence}, None, 1.0, "s")
        assert db.count() == {"ok": 1, "diverged": 1, "failed": 0}
        assert [row.error for row in db.rows() if row.status == "diverged"] == ["layer 0 weights became NaN"]


def test_a_study_database_without_its_cells_table_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "damaged.db"
    with ResultsDatabase.create_or_open(path):
        pass
    connection = sqlite3.connect(path)
    connection.execute("DROP TABLE cells")
    connection.commit()
    connection.close()
    for opener in (ResultsDatabase.open_existing, ResultsDatabase.create_or_open):
        with pytest.raises(SsdfaError, match="damaged.db claims to be a study database but has no cells table"):
            opener(path)
    assert main(["report", str(path), "--out", str(tmp_path / "r"), "--no-area"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
