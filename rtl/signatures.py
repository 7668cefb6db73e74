"""Interfaces shared by the PE, the error router and the layer: commands, host port, streams.

Every stream here is an ``amaranth.lib.stream`` stream (``payload``, ``valid``, ``ready``; a
transfer happens on a clock edge where both are high; ``valid`` never waits for ``ready``).
Raw fixed-point values travel as the raw integers of their format (§1 of docs/arithmetic.md):
``signed(word)`` for ``SQ`` formats, ``unsigned(word)`` for ``UQ`` ones (see ``format_shape``).

Directions are written from the point of view of the component that *drives* the interface
(the host, the sender); a component that receives it declares ``In(...)``.
"""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ssdfa.model.arithmetic import LFSR_WIDTH, FixedFormat

__all__ = [
    "Command",
    "Space",
    "format_shape",
    "ActivationLayout",
    "HostSignature",
    "host_data_width",
    "host_addr_width",
]


class Command(enum.Enum, shape=2):
    """The phase a PE (or a layer) runs when it accepts a command (docs/rtl.md, "Phases")."""

    FORWARD = 0  #: stream x in, MAC, cast, activation, stream (y, a) out (§4)
    ERROR = 1  #: stream e in, delta = cast(b * e * f') per neuron (§6.1) or delta = e (§6.2)
    UPDATE = 2  #: stream x in again, one weight read-modify-write per clock (§7)


class Space(enum.Enum, shape=3):
    """What a host-port address refers to. ``K`` = neurons per PE, ``N`` = fan-in, ``s`` = connections.

    ========== =================== ====================================================
    space      address             data (raw, right-aligned, sign-extended on read)
    ========== =================== ====================================================
    WEIGHT     ``k * (N + 1) + j`` ``W[k, j]``; ``j = N`` is the bias (weight format)
    FEEDBACK   ``k * s + t``       ``b[k, t]``, the t-th feedback constant (feedback format)
    LFSR       ``k``               the 32-bit LFSR state of neuron k (load the seed, §5.2)
    DELTA      ``k``               delta of neuron k (delta format; error format for the
                                   output layer, §6.2)
    DERIVATIVE ``k``               the stored f' of neuron k (§4.3), unsigned
    ========== =================== ====================================================
    """

    WEIGHT = 0
    FEEDBACK = 1
    LFSR = 2
    DELTA = 3
    DERIVATIVE = 4


def format_shape(fmt: FixedFormat) -> Shape:
    """The Amaranth shape of a raw value of ``fmt``: ``signed(word)`` or ``unsigned(word)``."""
    if not isinstance(fmt, FixedFormat):
        raise TypeError(f"expected a FixedFormat, not {fmt!r}")
    return signed(fmt.word) if fmt.signed else unsigned(fmt.word)


class ActivationLayout(data.StructLayout):
    """Payload of a PE's forward output stream: ``y`` (pre-activation) and ``a = f(y)``.

    Both are raw values of the activation format (§4.1, §4.2).

    Parameters
    ----------
    shape : ShapeLike
        ``format_shape(activation format)``.
    """

    def __init__(self, shape):
        super().__init__({"y": shape, "a": shape})


def host_data_width(*formats: FixedFormat) -> int:
    """Host-port data width: the widest of the given formats, and at least the LFSR's 32 bits."""
    return max([LFSR_WIDTH] + [fmt.word for fmt in formats])


def host_addr_width(depth: int) -> int:
    """Address bits for ``depth`` words (at least 1)."""
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")
    return max(1, (depth - 1).bit_length())


class HostSignature(wiring.Signature):
    """A simple addressed read/write port, driven by the host (the PE declares ``In(...)``).

    Use it only while the receiver is idle (``busy`` low); accesses during a phase are ignored.

    Members
    -------
    space : Out(Space)
        Which storage ``addr`` indexes (see ``Space``).
    addr : Out(addr_width)
        Word address within the space.
    w_en : Out(1)
        Write ``w_data`` (low bits, truncated to the word of the space) at the next clock edge.
    w_data : Out(data_width)
    r_en : Out(1)
        Read: ``r_data`` shows the word at (``space``, ``addr``) on the cycle after ``r_en``
        (one clock of latency, as a synchronous memory), and holds it until the next ``r_en``
        or the next phase.
    r_data : In(data_width)
        Sign-extended for signed formats, zero-extended otherwise.

    Parameters
    ----------
    addr_width : int
    data_width : int
    """

    def __init__(self, *, addr_width: int, data_width: int):
        for name, value in (("addr_width", addr_width), ("data_width", data_width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__(
            {
                "space": Out(Space),
                "addr": Out(addr_width),
                "w_en": Out(1),
                "w_data": Out(data_width),
                "r_en": Out(1),
                "r_data": In(data_width),
            }
        )

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    def __eq__(self, other):
        return (
            isinstance(other, HostSignature)
            and other.addr_width == self.addr_width
            and other.data_width == self.data_width
        )

    def __repr__(self):
        return f"HostSignature(addr_width={self.addr_width}, data_width={self.data_width})"
