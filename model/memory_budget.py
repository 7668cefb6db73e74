"""Memory a run will need, checked against the memory available before anything is allocated.

Sizes come from users (``--hidden``, ``--samples``, a configuration's ``neurons``); one that
cannot fit would otherwise die in a ``MemoryError`` or push the machine into swap after minutes.
The readers and argument checks call ``require_memory`` with an estimate from one of the
functions here, and refuse such a size in one line that names it, the estimate and what is
available. The estimates count the arrays the model holds at its peak (an upper bound within a
small factor, not an exact figure); they stay well below the available memory for every size
that runs in practice, so only sizes that cannot fit are refused.
"""

from __future__ import annotations

import os

from ssdfa.errors import SsdfaError

__all__ = [
    "available_memory",
    "require_memory",
    "format_bytes",
    "training_bytes",
    "layer_bytes",
    "golden_set_bytes",
    "MEMORY_ENV",
]

#: Overrides the available memory (bytes): for tests, and for machines whose limit is not
#: MemAvailable (a container's cgroup limit, a share of a cluster node).
MEMORY_ENV = "SSDFA_MEMORY_BYTES"

#: Bytes of one raw value (int64 or integer-valued float64) and one LFSR draw.
_RAW = 8
_DRAW = 2
#: Draws an LFSR stream keeps per neuron (arithmetic.LfsrBank: four histories of 1,792 draws),
#: plus those of one step that it may grow by (fan-in + 1 weights and a delta, twice).
_STREAM_DRAWS = 4 * 1792


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None when the system does not say.

    ``SSDFA_MEMORY_BYTES`` when set; else MemAvailable of /proc/meminfo (free memory plus what
    the kernel can reclaim); else the free physical pages from ``os.sysconf``.
    """
    override = os.environ.get(MEMORY_ENV)
    if override:
        try:
            return int(override)
        except ValueError:
            raise SsdfaError(f"{MEMORY_ENV} must be a number of bytes, not {override!r}") from None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB (KiB)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count: int) -> str:
    """``count`` bytes in the largest binary unit that keeps a number of at least 1: '12.3 GiB'."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{count:,} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def require_memory(needed: int, what: str) -> None:
    """Refuse a run whose estimate ``needed`` (bytes) exceeds the memory available.

    ``what`` names the size that asks for it, e.g. ``"--hidden 100000000"``; the message reads
    ``<what> needs about <estimate> of memory, more than the <available> available``.
    Does nothing when the system does not report its available memory.
    """
    available = available_memory()
    if available is not None and needed > available:
        raise SsdfaError(
            f"{what} needs about {format_bytes(needed)} of memory, more than the "
            f"{format_bytes(available)} available"
        )


def layer_bytes(fan_in: int, neurons: int, outputs: int, batch: int = 1, *, lfsr: bool = True) -> int:
    """One trained layer: weights, weight step and its copy, dense feedback, per-sample
    vectors, and (``lfsr``: fixed point, which may round stochastically) the neurons' LFSR
    draw stream."""
    weights = (fan_in + 1) * neurons
    feedback = outputs * neurons
    vectors = 8 * batch * neurons
    stream = neurons * max(_STREAM_DRAWS, 2 * (1754 + 1140 + fan_in + 2)) * _DRAW if lfsr else 0
    return _RAW * (3 * weights + 2 * feedback + vectors) + stream


def training_bytes(layer_sizes, batch: int = 1, *, fixed: bool = True) -> int:
    """A network of ``layer_sizes`` (inputs, hidden..., outputs) in training, in fixed point
    (with LFSR streams) or in floating point (float64 counted)."""
    sizes = [int(size) for size in layer_sizes]
    outputs = sizes[-1]
    return sum(
        layer_bytes(fan_in, neurons, outputs, batch, lfsr=fixed) for fan_in, neurons in zip(sizes, sizes[1:])
    )


def golden_set_bytes(fan_in: int, neurons: int, outputs: int, samples: int, *, full_weights: bool = False) -> int:
    """A golden set of ``samples`` samples (docs/golden.md): the layer, the per-sample arrays
    (inputs, errors, four per-neuron values, LFSR states, checksums, and with ``full_weights``
    the weights), each held twice at the peak (the arrays and their serialised file)."""
    per_sample = _RAW * (fan_in + outputs + 5 * neurons) + 32
    if full_weights:
        per_sample += _RAW * (fan_in + 1) * neurons
    return layer_bytes(fan_in, neurons, outputs) + 2 * samples * per_sample
