"""Files that users name: read with an error that names the path, written whole or not at all.

Every reader of a user's text file (layer configurations, study specs, energy tables) goes
through ``read_text``, so that a missing, unreadable or non-UTF-8 file is one ``SsdfaError``
naming the path. Every writer of an output file goes through ``write_atomically``: the data go
to a temporary file beside the target, which is renamed over it only when complete, so an
interrupted or failed run never leaves a half-written file. ``output_directory`` checks (and
creates) a directory named by an option before anything is computed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from ssdfa.errors import SsdfaError

__all__ = ["read_bytes", "read_text", "write_atomically", "output_directory", "os_error_text", "refuse_special_file",
           "check_output_file", "directory_kept_on_success", "through_links"]


def os_error_text(exc: OSError) -> str:
    """The reason of an OSError without its errno prefix: 'Permission denied'."""
    return exc.strerror or str(exc)


def read_bytes(path, what: str) -> bytes:
    """The bytes of ``path``; ``what`` names the file's role ('weight file'). A missing or
    unreadable file, or a directory, is one SsdfaError naming it."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            # /dev/zero or a pipe would be read without end.
            raise SsdfaError(f"{what} {path} is not a regular file (a device, pipe or socket)")
        return path.read_bytes()
    except FileNotFoundError:
        raise SsdfaError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise SsdfaError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise SsdfaError(f"cannot read {what} {path}: {os_error_text(exc)}") from None


def read_text(path, what: str) -> str:
    """The UTF-8 text of ``path``; ``what`` names the file's role ('configuration file')."""
    path = Path(path)
    data = read_bytes(path, what)
    try:
        # A byte order mark (Windows editors write one) is not part of the text.
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise SsdfaError(
            f"{what} {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None


def through_links(path) -> Path:
    """The file a path names, through symbolic links: an output written beside its target and
    renamed over it replaces the file a link points to, not the link (which would become a plain
    file, and its target stay as it was)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def refuse_special_file(path, what: str) -> None:
    """Refuse an output target that is there and is not a regular file (SsdfaError naming it).

    Files are written beside their target and renamed over it, which would put a regular file in
    the place of a device (``/dev/null``), a named pipe or a socket, and as root replace
    ``/dev/full`` itself: such a target is refused instead. A missing target is fine.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode  # through a symbolic link: /dev/stdout is one
    except OSError:
        return
    if stat.S_ISDIR(mode):
        raise SsdfaError(f"{what} {path}: is a directory, not a file name")
    if not stat.S_ISREG(mode):
        raise SsdfaError(f"{what} {path}: not a regular file (a device, pipe or socket), not replaced")


def check_output_file(path, option: str) -> None:
    """Refuse, before a long run, an output file named by ``option`` that could not be written at
    its end: a directory, a device or pipe, a missing or read-only parent directory."""
    target = Path(path)
    refuse_special_file(target, option)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise SsdfaError(f"{option} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise SsdfaError(f"{option} {path}: directory {parent} is not writable")
    try:  # as root, os.access says yes to /proc and to read-only mounts: try it
        descriptor, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise SsdfaError(f"{option} {path}: cannot write in directory {parent} ({os_error_text(exc)})") from None
    os.close(descriptor)
    os.unlink(probe)


def write_atomically(path, data: bytes | str) -> Path:
    """Write ``data`` (str as UTF-8, newlines as given) to ``path`` all at once.

    The parent directory must exist. Raises OSError (which the command line reports as one
    line naming the path); the target is then untouched and no temporary file is left. A
    target that is a device, a pipe or a socket is an SsdfaError (``refuse_special_file``).
    """
    path = through_links(path)
    refuse_special_file(path, "output file")
    if isinstance(data, str):
        data = data.encode("utf-8")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def output_directory(path, option: str, *, create: bool = True) -> Path:
    """The directory ``path`` named by ``option`` (e.g. '--out'), created if needed.

    An existing file there, or a file where a parent directory should be, is an SsdfaError
    naming the option and the path. With ``create=False`` only that check is made (for a
    command that creates the directory once its inputs have been read).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SsdfaError(f"{option} {path} is a file, not a directory")
    ancestor = path.parent  # as the user wrote it: "." ends a relative path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SsdfaError(f"{option} {path}: cannot create the directory ({ancestor} is a file)")
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SsdfaError(f"{option} {path}: cannot create the directory ({os_error_text(exc)})") from None
    return path


@contextlib.contextmanager
def directory_kept_on_success(path, option: str):
    """``output_directory(path, option)`` for the block; if the block fails or is interrupted and
    the directory was made for it and is still empty, it is removed again (a refused input or a
    Ctrl-C leaves no empty directory behind)."""
    path = Path(path)
    created = not path.exists()
    output_directory(path, option)
    try:
        yield path
    except BaseException:
        if created and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        raise
