"""Small HDL building blocks shared by the RTL components: registers, named signals, comparisons,
multiplexers, index widths, and the hardware form of the fixed-point cast.

Most of them exist to keep the generated Verilog clean for Verilator's lint and fast in its
simulation (docs/rtl.md §2). Section numbers (§) refer to docs/arithmetic.md.
"""

from __future__ import annotations

from amaranth.hdl import C, Array, Cat, Const, Module, Mux, ResetSignal, Signal, Value
from amaranth.utils import ceil_log2

from ssdfa.model.arithmetic import STOCH_BITS, FixedFormat, Overflow, Rounding

__all__ = ["register", "wire", "share", "equals", "select", "index_width", "extend", "hw_cast", "hw_round",
           "round_offset", "hw_saturate"]


# ------------------------------------------------------------------------------------------
# Signals and registers
# ------------------------------------------------------------------------------------------


def register(m: Module, shape, name: str, init=0) -> tuple[Signal, Signal]:
    """A register with the domain's synchronous reset, and the signal that sets its next value.

    Assign the second signal in the combinational domain wherever the register would be
    assigned in the synchronous one (the register keeps its value otherwise); the last
    assignment wins, as for the register. The register itself is reset-less and takes
    ``Mux(reset, init, next)``: the behaviour of a register with a reset, written so that only
    that multiplexer reads the reset input. Verilator evaluates everything that a top-level
    input (the reset) reaches on every call of the model, so the next-state logic itself stays
    out of that region.
    """
    state = Signal(shape, name=name, init=init, reset_less=True)
    next_value = Signal(shape, name=f"{name}_next")
    m.d.comb += next_value.eq(state)
    m.d.sync += state.eq(Mux(ResetSignal(), init, next_value))
    return state, next_value


def wire(m: Module, value, name: str) -> Signal:
    """A named combinational signal carrying ``value``, so that its bits are shared, not re-built."""
    value = Value.cast(value)
    signal = Signal(value.shape(), name=name)
    m.d.comb += signal.eq(value)
    return signal


def share(m: Module | None, value, name: str) -> Value:
    """``value`` as a named signal if it is an expression: Amaranth's backend writes an
    expression out again at each of its uses (nested uses multiply), a signal once. Without a
    module, ``value`` itself."""
    value = Value.cast(value)
    if m is None or isinstance(value, (Signal, Const)):
        return value
    return wire(m, value, name)


# ------------------------------------------------------------------------------------------
# Comparisons, multiplexers and widths
# ------------------------------------------------------------------------------------------


def equals(value, constant) -> Value:
    """``value == constant``, written as a reduction for zero: Amaranth's backend prints
    ``x == 0`` as ``!x``, which Verilator's lint flags on a multi-bit ``x``.

    ``value`` may be an enum-shaped view; ``constant`` an integer, an enum member or a value.
    """
    value = Value.cast(value)
    constant = Value.cast(constant)
    if isinstance(constant, Const) and constant.value == 0:
        return ~value.any()
    return value == constant


def below(value, count: int) -> Value:
    """``value < count`` for an unsigned ``value`` and a constant ``count``, as two shallow
    functions: the bits above ``count``'s width all zero, and the low bits below ``count``.

    Synthesis maps a comparison with a constant to a carry chain as long as ``value``; this
    form is a LUT or two whatever the width (a host address's range check was a PE's slowest
    path on an iCE40 as a chain).
    """
    value = Value.cast(value)
    if count >= 1 << len(value):
        return C(1, 1)
    if count <= 0:
        return C(0, 1)
    low = count.bit_length()
    high_zero = ~value[low:].any() if len(value) > low else C(1, 1)
    return high_zero & (value[:low] < count)


def select(items, index):
    """``items[index]`` as a multiplexer that covers every value of ``index`` (an index beyond
    the items selects the last one), so that the Verilog case statement is complete: the items
    are padded to a power of two, since Verilator's lint flags an incomplete case. A single item
    is returned as it is, whatever the index."""
    if len(items) == 1:
        return items[0]
    items = list(items) + [items[-1]] * ((1 << len(index)) - len(items))
    return Array(items)[index]


def index_width(count: int) -> int:
    """Bits of an index into ``count`` items (at least 1, so that no signal is empty)."""
    return max(1, ceil_log2(count))


# ------------------------------------------------------------------------------------------
# The fixed-point cast (§2, §3), combinational
# ------------------------------------------------------------------------------------------


def extend(value, width: int):
    """``value`` sign- or zero-extended to at least ``width`` bits, keeping its signedness."""
    value = Value.cast(value)
    extra = width - len(value)
    if extra <= 0:
        return value
    if value.shape().signed:
        return Cat(value, value[-1].replicate(extra)).as_signed()
    return Cat(value, C(0, extra))


def hw_cast(value, frac_bits: int, fmt: FixedFormat, rounding: Rounding, overflow: Overflow, draw=None,
            *, m: Module | None = None, name: str = "cast"):
    """Hardware ``cast`` (§2, §3): round ``value`` (``frac_bits`` fraction bits) into ``fmt``.

    ``draw`` is the 16-bit LFSR draw for STOCH (§2.1). Returns a value of ``format_shape(fmt)``.
    Given the module ``m``, intermediate values used more than once become signals named after
    ``name`` (the same logic, written once: a smaller and faster simulation model). It is
    ``hw_saturate(hw_round(...))``; a pipeline puts a register between the two.
    """
    rounded = hw_round(value, frac_bits, fmt, rounding, draw, m=m, name=name)
    return hw_saturate(rounded, fmt, overflow, m=m, name=name)


def hw_round(value, frac_bits: int, fmt: FixedFormat, rounding: Rounding, draw=None,
             *, m: Module | None = None, name: str = "cast"):
    """The rounding half of ``hw_cast`` (§2): ``value`` with ``frac_bits`` fraction bits, rounded
    to ``fmt.frac_bits`` fraction bits and not yet brought into the format's range (its word is
    as wide as it needs to be; ``hw_saturate`` finishes the cast)."""
    value = share(m, value, f"{name}_in")
    dropped = frac_bits - fmt.frac_bits
    if dropped <= 0:
        rounded = value.shift_left(-dropped)
    else:
        # Two spare bits above the dropped ones keep every slice below well defined.
        value = share(m, extend(value, dropped + 2), f"{name}_wide")
        if rounding is Rounding.TRN:
            rounded = value.shift_right(dropped)
        else:
            rounded = (value + round_offset(value, dropped, rounding, draw)).shift_right(dropped)
    return share(m, rounded, f"{name}_rounded")


def round_offset(value, dropped: int, rounding: Rounding, draw=None):
    """What a cast that drops ``dropped`` (> 0) bits of ``value`` adds before its arithmetic
    shift right by ``dropped`` (§2): every mode is ``(value + offset) >> dropped``.

    TRN adds 0; TRN_ZERO ``2^d - 1`` to a negative value (rounding it up); RND ``2^(d-1)``;
    RND_CONV ``2^(d-1) - 1`` plus the kept LSB (``value[d]``: a tie reaches the next multiple
    only from an odd one, so it rounds to even, and anything above one half rounds up); STOCH
    the 16-bit ``draw`` aligned under the kept LSB (its bits below the dropped ones dropped,
    which the floor of the shift ignores anyway). ``value`` must have at least ``dropped + 1``
    bits. The result is below ``2^dropped``, unsigned.
    """
    value = Value.cast(value)
    if dropped < 1:
        raise ValueError(f"a rounding offset needs at least one dropped bit, not {dropped}")
    if rounding is Rounding.TRN:
        return C(0, 1)
    if rounding is Rounding.TRN_ZERO:
        if not value.shape().signed:
            return C(0, 1)
        return Mux(value[-1], (1 << dropped) - 1, 0)
    if rounding is Rounding.RND:
        return C(1 << (dropped - 1), dropped)
    if rounding is Rounding.RND_CONV:
        return C((1 << (dropped - 1)) - 1, dropped) + value[dropped]
    if rounding is Rounding.STOCH:
        if draw is None:
            raise ValueError("a STOCH cast needs a draw")
        draw = Value.cast(draw).as_unsigned()
        if dropped >= STOCH_BITS:
            return draw.shift_left(dropped - STOCH_BITS)
        return draw.shift_right(STOCH_BITS - dropped)
    raise ValueError(f"unknown rounding mode {rounding!r}")


def hw_saturate(value, fmt: FixedFormat, overflow: Overflow, *, m: Module | None = None, name: str = "cast"):
    """The overflow half of ``hw_cast`` (§3): an integer already at ``fmt.frac_bits`` fraction
    bits into ``fmt``'s word: WRAP keeps the low bits, SAT clamps to the format's range."""
    return _overflow(value, fmt, overflow, m=m, name=name)


def _overflow(value, fmt: FixedFormat, overflow: Overflow, *, m: Module | None = None, name: str = "cast"):
    """§3: WRAP keeps the low ``word`` bits; SAT clamps to the format's range."""
    value = share(m, extend(value, fmt.word), f"{name}_rounded")
    shape = value.shape()
    if overflow is Overflow.SAT:
        low = -(1 << (shape.width - 1)) if shape.signed else 0
        high = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
        # Test only where the value can be out of range (no constant-result tests). The
        # format's range is its word's, so out of range means: bits at and above the format's
        # sign bit (or above its word, unsigned) that are not all copies of the value's sign.
        # These are reductions of a few bits, not comparisons along a carry chain, and both
        # read the unclamped value, side by side: the clamp to the minimum cannot undo the
        # clamp to the maximum (min <= max).
        negative = value[-1] if shape.signed else C(0, 1)
        upper = value[fmt.word - 1 if fmt.signed else fmt.word:]
        clamped = value
        if high > fmt.max_raw:
            above = share(m, ~negative & upper.any(), f"{name}_above_max")
            clamped = share(m, Mux(above, fmt.max_raw, value), f"{name}_below_max")
        if low < fmt.min_raw:
            below = negative & ~upper.all() if fmt.signed else negative
            below = share(m, below, f"{name}_below_min")
            clamped = Mux(below, fmt.min_raw, clamped)
        value = clamped
    elif overflow is not Overflow.WRAP:
        raise ValueError(f"unknown overflow mode {overflow!r}")
    bits = value[: fmt.word]
    return bits.as_signed() if fmt.signed else bits
