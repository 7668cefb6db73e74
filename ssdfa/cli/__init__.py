"""The ``ssdfa`` command: one subcommand per module in this package.

Each module here (other than private ``_`` ones) exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a callable taking the parsed arguments and returning an exit
status. Modules are found automatically, so adding a subcommand touches only its own file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import pkgutil
import signal
import sys
import threading
import warnings

from ssdfa.errors import SsdfaError


def subcommand_modules() -> list[str]:
    """Names of the subcommand modules, sorted (the order `ssdfa --help` lists them)."""
    return sorted(
        f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse prints its usage on error; we keep its one-line message and exit status 2."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse's hook
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ssdfa",
        description="Fixed-point SSDFA: reference model, Verilog generation, co-simulation and studies.",
    )
    from ssdfa import __version__

    parser.add_argument("--version", action="version", version=f"ssdfa {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in subcommand_modules():
        importlib.import_module(name).register(subparsers)
    return parser


#: Exit status when standard output is closed early (``ssdfa costs --json | head -1``): the
#: shell's status for a command ended by SIGPIPE (128 + 13), which ``set -o pipefail`` reports
#: like any other such command (``yes | head -1``). Nothing is printed.
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    """Run one ``ssdfa`` command; return its exit status.

    Every command inherits the handling here: bad input (``SsdfaError``, ``ValueError``,
    ``TypeError``), an OSError on a path, undecodable text and exhausted memory become one line
    ``ssdfa: error: ...`` and status 2; a closed standard output ends the command quietly with
    status 141.
    """
    if _standard_streams_closed("ssdfa"):
        return EXIT_USAGE
    with _terminate_like_interrupt():
        try:
            status = _run(argv)
            # Flush here, inside the handler: at interpreter exit a closed pipe would print a warning.
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()
            return EXIT_BROKEN_PIPE
        except KeyboardInterrupt as stop:  # while the subcommands' modules were being imported
            return _interrupted("ssdfa", stop)
    return status


def _standard_streams_closed(program: str) -> bool:
    """A command started with standard error closed (``2>&-``) finds None there: its messages go
    nowhere and it runs on. With standard output closed (``>&-``) it says so on standard error
    and stops (True), as ``echo >&-`` does: what it was asked to print cannot be printed."""
    if sys.stderr is None:
        # /dev/null on descriptor 2 too: else the next file opened (a database) would get it,
        # and whatever a library or a child process writes to "stderr" would go into that file.
        try:
            os.fstat(2)
        except OSError:
            descriptor = os.open(os.devnull, os.O_WRONLY)
            if descriptor != 2:
                os.dup2(descriptor, 2)
                os.close(descriptor)
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    if sys.stdout is None:
        print(f"{program}: error: standard output is closed", file=sys.stderr)
        return True
    return False


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it unwinds as on Ctrl-C: temporary files
    removed, a study's leases released, nothing half-written."""


@contextlib.contextmanager
def _terminate_like_interrupt():
    """SIGTERM raises ``Terminated`` for the duration (the previous handler is restored after:
    ``main`` also runs inside other programs, the tests')."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: Exit status after SIGTERM: the shell's for a command ended by it (128 + 15).
EXIT_TERMINATED = 143


def _interrupted(program: str, stop: BaseException | None = None) -> int:
    """One line and status 130 for Ctrl-C (143 for SIGTERM). Warnings are silenced for the exit:
    objects that a command built but did not finish (Amaranth's unelaborated designs, say) would
    otherwise print a warning each as they are collected."""
    warnings.simplefilter("ignore")
    if isinstance(stop, Terminated):
        print(f"{program}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    print(f"{program}: interrupted", file=sys.stderr)
    return 130


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    return _handled(lambda: args.func(args), "ssdfa")


def _handled(call, program: str) -> int:
    """``call()``'s exit status, with bad input one line naming ``program`` and status 2, and
    Ctrl-C one line and status 130. A closed standard output (BrokenPipeError) goes up to the
    caller, which ends quietly."""
    try:
        status = call()
    except BrokenPipeError:
        raise
    except (SsdfaError, ValueError, TypeError) as exc:
        # Bad input named by the code that found it: one line, no traceback. (UnicodeDecodeError
        # is a ValueError; readers of user files name the file, see ssdfa.user_files.)
        return _error(str(exc), program)
    except OSError as exc:
        return _error(_os_error_line(exc), program)
    except MemoryError:
        # The size checks (model/memory_budget.py) refuse what cannot fit; this is the backstop.
        return _error("out of memory; try smaller sizes (or free memory)", program)
    except KeyboardInterrupt as stop:
        return _interrupted(program, stop)
    return int(status or 0)


def _error(message: str, program: str = "ssdfa") -> int:
    # One line even when a message carries a newline (a TOML or JSON parser's, say), and no
    # warnings after it: designs elaborated for a command that then failed would each print one.
    warnings.simplefilter("ignore")
    print(f"{program}: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


def _os_error_line(exc: OSError) -> str:
    """'PATH: reason' (or 'PATH -> PATH2: reason') for an OSError on a path."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    where = str(exc.filename) if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    return f"{where}: {reason}"


def _discard_stdout() -> None:
    """Point standard output at /dev/null so that nothing more is written to the closed pipe
    (Python's documented recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a real file (a test's capture): nothing will flush to a pipe


def run_script(main) -> None:
    """Run a script's ``main()`` (the benchmarks') and exit with its status, handling what every
    ``ssdfa`` command handles: bad input (``SsdfaError``, ``ValueError``, ``TypeError``, an
    ``OSError`` on a path) is one line naming the script and status 2, Ctrl-C one line and status
    130, a closed standard output a quiet status 141."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    if _standard_streams_closed(name):
        sys.exit(EXIT_USAGE)
    with _terminate_like_interrupt():
        try:
            status = _handled(main, name)
            sys.stdout.flush()  # inside the handler: at interpreter exit a closed pipe would print a warning
        except BrokenPipeError:
            _discard_stdout()
            status = EXIT_BROKEN_PIPE
    sys.exit(int(status or 0))


if __name__ == "__main__":
    sys.exit(main())

