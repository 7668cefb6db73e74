"""Fixtures shared by the whole suite. Keep each one small and generic."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from ssdfa.errors import SsdfaError


def _tool_checks() -> dict[str, Callable[[], object]]:
    """Each external tool a test may need, and the check that raises SsdfaError when it is missing."""
    from ssdfa.rtl.implement import require_nextpnr
    from ssdfa.rtl.synth import require_yosys
    from ssdfa.sim.runner import require_simulator

    return {
        "icarus": lambda: require_simulator("icarus"),
        "verilator": lambda: require_simulator("verilator"),
        "yosys": require_yosys,
        "nextpnr-ice40": lambda: require_nextpnr("ice40"),
        "nextpnr-ecp5": lambda: require_nextpnr("ecp5"),
    }


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], None]:
    """``require_tool(name)``: go on if tool *name* is installed, else skip the test.

    When the environment variable ``CI`` is set (to anything but the empty string) a missing
    tool fails the test instead: CI must never pass by skipping. Session-scoped so that
    module-scoped fixtures can call it too.
    """

    def require(name: str) -> None:
        checks = _tool_checks()
        if name not in checks:
            raise ValueError(f"unknown tool {name!r}; expected one of {', '.join(checks)}")
        try:
            checks[name]()
        except SsdfaError as missing:
            if os.environ.get("CI"):
                pytest.fail(f"{name} is missing and CI is set, so this test may not skip: {missing}")
            pytest.skip(f"{name} is missing: {missing}")

    return require
