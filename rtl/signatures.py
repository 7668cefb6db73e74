"""Interfaces shared by the PE, the error router and the layer: commands, host port, streams.

Every stream here is an ``amaranth.lib.stream`` stream (``payload``, ``valid``, ``ready``; a
transfer happens on a clock edge where both are high; ``valid`` never waits for ``ready``).
Raw fixed-point values travel as the raw integers of their format (§1 of docs/arithmetic.md):
``signed(word)`` for ``SQ`` formats, ``unsigned(word)`` for ``UQ`` ones (see ``format_shape``).

Directions are written from the point of view of the component that *drives* the interface
(the host, the sender); a component that receives it declares ``In(...)``.
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Shape, ValueCastable, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ssdfa.model.arithmetic import LFSR_WIDTH, FixedFormat

__all__ = [
    "Command",
    "Space",
    "format_shape",
    "ActivationLayout",
    "HostPortSignature",
    "HostSignature",
    "host_data_width",
    "host_addr_width",
    "verilog_ports",
    "signature_only",
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


class HostPortSignature(wiring.Signature):
    """What every host port has, driven by the host: the members that select a unit (none
    here), then an address space, an address, a write and a read.

    The base of ``HostSignature`` (a PE's port) and of the layer's and the network's host
    ports, which put their unit selects in front (``_selects``) and bring their own
    enumeration of spaces. Every parameter must be a positive integer; two signatures are equal
    when they are of the same class with the same parameters.

    Members
    -------
    space : Out(space)
        What ``addr`` refers to.
    addr : Out(addr_width)
    w_en, w_data : Out(1), Out(data_width)
        Write at the next clock edge.
    r_en : Out(1)
    r_data : In(data_width)
        The word read, one clock after ``r_en``, held until the next ``r_en``.

    Parameters
    ----------
    space : enumeration shape
        What ``addr`` can refer to.
    **params : int
        The port's parameters, ``addr_width`` and ``data_width`` among them, in the order that
        ``repr`` names them.
    """

    def __init__(self, space, **params):
        for name, value in params.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self._params = params
        super().__init__({
            **self._selects(),
            "space": Out(space),
            "addr": Out(params["addr_width"]),
            "w_en": Out(1),
            "w_data": Out(params["data_width"]),
            "r_en": Out(1),
            "r_data": In(params["data_width"]),
        })

    def _selects(self) -> dict:
        """The members in front of ``space`` that select the unit addressed, from the parameters."""
        return {}

    @property
    def addr_width(self) -> int:
        return self._params["addr_width"]

    @property
    def data_width(self) -> int:
        return self._params["data_width"]

    def __eq__(self, other):
        return type(other) is type(self) and other._params == self._params

    def __repr__(self):
        params = ", ".join(f"{name}={value}" for name, value in self._params.items())
        return f"{type(self).__name__}({params})"


class HostSignature(HostPortSignature):
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
        super().__init__(Space, addr_width=addr_width, data_width=data_width)


def verilog_ports(component):
    """``(name, path, is_input, value)`` for every member of ``component``'s signature, named as
    ``amaranth.back.verilog.convert`` names a top's ports: the member's path joined by ``__``.
    ``value`` is the member's ``Value`` (a layout's view as its bits); the clock and reset of the
    ``sync`` domain (``clk``, ``rst``) are not members and not listed."""
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        yield "__".join(str(part) for part in path), path, member.flow == wiring.In, value


def signature_only(component, seen=None) -> None:
    """Mark ``component`` and the elaboratables it holds as used for their signature only, never
    elaborated: intended, not a forgotten design, so Amaranth need not warn about them."""
    seen = set() if seen is None else seen
    if id(component) in seen:
        return
    seen.add(id(component))
    component._MustUse__silence = True
    for value in vars(component).values():
        for part in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(part, Elaboratable):
                signature_only(part, seen)
