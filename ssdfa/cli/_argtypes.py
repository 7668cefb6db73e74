"""argparse ``type=`` converters shared by the subcommands.

Each raises ``argparse.ArgumentTypeError`` naming the bad value, which the parser turns into one
error line and exit status 2.
"""

from __future__ import annotations

import argparse
import math


def _integer_at_least(text: str, least: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {wanted}, not {value}")
    return value


def positive_int(text: str) -> int:
    """A count: an integer >= 1."""
    return _integer_at_least(text, 1, "a positive integer")


def natural_int(text: str) -> int:
    """A seed or an index: an integer >= 0."""
    return _integer_at_least(text, 0, "a non-negative integer")


def seed_int(text: str) -> int:
    """A seed of the model (weights, feedback, order, LFSRs): 0 to 2^32 - 1, the range in which
    seeds do not alias (LFSR seeds are taken modulo 2^32, docs/arithmetic.md §5.2)."""
    value = _integer_at_least(text, 0, "a seed from 0 to 2^32 - 1")
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2^32 - 1, not {value}")
    return value


def positive_number(text: str) -> float:
    """A frequency or a time: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text}")
    return value


def nextpnr_opts(text: str) -> tuple[str, ...]:
    """Extra nextpnr options in one string (``ssdfa.rtl.implement.nextpnr_options`` checks them)."""
    from ssdfa.errors import SsdfaError
    from ssdfa.rtl.implement import nextpnr_options

    try:
        return nextpnr_options(text)
    except SsdfaError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
