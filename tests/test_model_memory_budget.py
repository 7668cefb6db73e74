"""Sizes that cannot fit in memory are refused before anything is allocated."""

from __future__ import annotations

import pytest

from ssdfa.errors import SsdfaError
from ssdfa.model import memory_budget
from ssdfa.model.memory_budget import (
    MEMORY_ENV,
    available_memory,
    format_bytes,
    golden_set_bytes,
    require_memory,
    training_bytes,
)


def test_available_memory_is_read_from_the_system_or_the_override(monkeypatch):
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    available = available_memory()
    assert available is None or available > 0
    monkeypatch.setenv(MEMORY_ENV, "123456")
    assert available_memory() == 123456
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(SsdfaError, match=f"{MEMORY_ENV} must be a number of bytes, not 'lots'"):
        available_memory()


def test_a_size_beyond_the_budget_is_refused_naming_it_and_both_figures(monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, str(1 << 30))
    require_memory(1 << 29, "--samples 10")
    with pytest.raises(SsdfaError, match=r"^--hidden 5 needs about 2\.0 GiB of memory, more than the 1\.0 GiB available$"):
        require_memory(2 << 30, "--hidden 5")


def test_an_unknown_budget_refuses_nothing(monkeypatch):
    monkeypatch.setattr(memory_budget, "available_memory", lambda: None)
    require_memory(1 << 80, "anything")


def test_estimates_grow_with_every_size_they_depend_on():
    base = training_bytes([64, 100, 10])
    assert training_bytes([64, 200, 10]) > base
    assert training_bytes([64, 100, 10], batch=64) > base
    assert training_bytes([64, 100, 10], fixed=False) < base  # no LFSR streams
    assert golden_set_bytes(16, 8, 10, 1000) > golden_set_bytes(16, 8, 10, 10)
    assert golden_set_bytes(16, 8, 10, 10, full_weights=True) > golden_set_bytes(16, 8, 10, 10)


def test_the_estimate_counts_at_least_the_weights_themselves():
    # Two 10^5 x 10^5 float64 weight matrices alone are 160 GB.
    assert training_bytes([1, 100_000, 100_000, 1]) >= 2 * 8 * 100_000**2


@pytest.mark.parametrize(("count", "text"), [(512, "512 bytes"), (1536, "1.5 KiB"), (3 << 30, "3.0 GiB"), (5 << 50, "5.0 PiB")])
def test_sizes_print_in_binary_units(count, text):
    assert format_bytes(count) == text
