"""Users' files: read with errors that name the path, written whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from ssdfa.errors import SsdfaError
from ssdfa.user_files import output_directory, read_text, write_atomically


def test_non_utf8_text_is_refused_naming_the_file_and_the_byte(tmp_path):
    path = tmp_path / "layer.toml"
    path.write_bytes(b"fan_in = 4\n\x80\n")
    with pytest.raises(SsdfaError, match=rf"configuration file {path} is not UTF-8 text: byte 0x80 at offset 11"):
        read_text(path, "configuration file")


def test_a_directory_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(SsdfaError, match="is a directory, not a file"):
        read_text(tmp_path, "study spec")
    with pytest.raises(SsdfaError, match="nothing.toml does not exist"):
        read_text(tmp_path / "nothing.toml", "study spec")


def test_an_atomic_write_replaces_the_file_with_the_ordinary_mode(tmp_path):
    path = tmp_path / "out.v"
    path.write_text("old")
    write_atomically(path, "module m;\nendmodule\n")
    assert path.read_text() == "module m;\nendmodule\n"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.v"]


def test_a_failed_atomic_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    path.write_text("previous report\n")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, b"x" * 100_000)
    assert path.read_text() == "previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_an_output_directory_that_is_a_file_or_below_one_is_refused(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SsdfaError, match=rf"--out {afile} is a file, not a directory"):
        output_directory(afile, "--out")
    with pytest.raises(SsdfaError, match=rf"--out {afile}/a/b: cannot create the directory \({afile} is a file\)"):
        output_directory(afile / "a" / "b", "--out", create=False)
    assert output_directory(tmp_path / "new" / "dir", "--out").is_dir()
    assert not output_directory(tmp_path / "unmade", "--out", create=False).exists()


def test_a_pipe_or_a_device_is_never_replaced_by_a_file(tmp_path):
    """Writing beside a target and renaming over it would turn /dev/null or a named pipe into a
    regular file (as root, the device itself): such targets are refused and stay what they were."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(SsdfaError, match=rf"output file {fifo}: not a regular file"):
        write_atomically(fifo, "data")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    with pytest.raises(SsdfaError, match="not a regular file"):
        write_atomically(link, "data")
    assert link.is_symlink()


def test_a_device_is_not_read_as_a_file_and_a_byte_order_mark_is_not_text(tmp_path):
    with pytest.raises(SsdfaError, match="weight file /dev/zero is not a regular file"):
        read_text("/dev/zero", "weight file")
    spec = tmp_path / "spec.toml"
    spec.write_bytes(b"\xef\xbb\xbf[study]\nseeds = 1\n")
    assert read_text(spec, "study spec") == "[study]\nseeds = 1\n"
