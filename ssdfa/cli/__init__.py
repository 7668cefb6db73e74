"""The ``ssdfa`` command: one subcommand per module in this package.

Each module here (other than private ``_`` ones) exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a callable taking the parsed arguments and returning an exit
status. Modules are found automatically, so adding a subcommand touches only its own file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    try:
        status = args.func(args)
    except (SsdfaError, ValueError, TypeError, FileNotFoundError) as exc:
        # Bad input named by the code that found it: one line, no traceback.
        print(f"ssdfa: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ssdfa: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
