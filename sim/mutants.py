"""Mutants of a generated design: the defined set of small faults a verification must catch.

``enumerate_mutants(design)`` reads the design's Verilog (:mod:`ssdfa.sim.verilog_parse`) and
returns every mutant of the catalogue (``KINDS``) that has a site in it, in file order, each
with a stable id and a one-line description, plus the catalogue entries that have no site in
this design ("not applicable", for example the LFSR of a design without stochastic rounding)
and the mutants left out because they provably compute the same function ("equivalent").

Sites are found by tokens and signal names, never by line numbers, so that the set follows
the RTL when it changes:

* **Datapath assignments** (the operator, comparison and literal mutants): assignments whose
  right-hand side has a ``$signed(...)`` operand (Amaranth writes every signed arithmetic
  operand that way), or that drive the stored derivative (``fprime*``). The control logic
  (counters, addresses, the host port) is left out: its faults hang or misaddress the run,
  which any set catches, and its host-only paths (out-of-range host addresses) no set reaches.
* **Named sites**: the casts' saturation multiplexers (``<q>_cast_below_max`` and the
  multiplexer that reads it, ``hw_cast`` in rtl/building_blocks.py), the stored derivative
  (``fprime_next``), the LFSR's exclusive-ors (assignments that XOR slices of a signal named
  ``lfsr*``) and sign extensions (a concatenation that repeats one bit before the value it
  extends).

The set is deterministic for a given Verilog text; ``sample`` picks a seeded subset of it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .verilog_parse import Assign, assignments, declared_widths, literal_value

__all__ = ["KINDS", "CASTS", "Mutant", "NotApplicable", "MutantSet", "enumerate_mutants", "sample"]

#: The catalogue: each kind of mutant and what it breaks.
KINDS = {
    "op-swap": "a datapath operator swapped (+ <-> -, & <-> |)",
    "cmp-flip": "a datapath comparison reversed (> <-> <, >= <-> <=, == <-> !=)",
    "const": "a datapath literal one higher or one lower (rounding constants, bounds, saturation values)",
    "sat-drop": "a saturation clamp removed (the positive or the negative one of a cast)",
    "fprime-stuck": "the stored derivative f' stuck at 0 or at 1",
    "lfsr-tap": "one tap of the LFSR's update moved by one bit",
    "sign-ext-drop": "a sign extension replaced by zero bits",
}

#: The casts of the PE (``hw_cast`` names, rtl/neuron_pe.py): each has a saturation site under SAT.
CASTS = ("y", "fprime", "delta", "step", "w")

_SWAP = {"+": "-", "-": "+", "&": "|", "|": "&"}
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "!=", "!=": "=="}
_DESCRIPTION_WIDTH = 150


@dataclass(frozen=True)
class Mutant:
    """One mutant: one line of the design replaced.

    Attributes
    ----------
    id : str
        Stable for a given design: ``kind:site:change`` (``op-swap:acc_sum:+>-``).
    kind : str
        A key of ``KINDS``.
    line : int
        The 1-based line of the design's Verilog that changes.
    original, mutated : str
        That line before and after.
    description : str
        One line: what changed, where, and the original assignment.
    """

    id: str
    kind: str
    line: int
    original: str
    mutated: str
    description: str

    def apply(self, verilog: str) -> str:
        """``verilog`` with this mutant's line replaced (the text it was enumerated from)."""
        lines = verilog.split("\n")
        if lines[self.line - 1] != self.original:
            raise ValueError(f"mutant {self.id}: line {self.line} is not the one it was made from")
        lines[self.line - 1] = self.mutated
        return "\n".join(lines)


@dataclass(frozen=True)
class NotApplicable:
    """A catalogue entry without a site in the design, and why."""

    id: str
    reason: str


@dataclass(frozen=True)
class MutantSet:
    """What ``enumerate_mutants`` found in one design.

    Attributes
    ----------
    mutants : list of Mutant
        Applicable mutants, in file order (then by kind).
    not_applicable : list of NotApplicable
    equivalent : list of NotApplicable
        Mutants left out because they compute the same function (with the argument).
    """

    mutants: list
    not_applicable: list
    equivalent: list


def _clean(name: str) -> str:
    return name.lstrip("\\")


def _describe(kind: str, change: str, assign: Assign) -> str:
    text = f"{kind} {change} at line {assign.line}: {assign.text.strip()}"
    return text if len(text) <= _DESCRIPTION_WIDTH else text[: _DESCRIPTION_WIDTH - 3] + "..."


def _is_datapath(assign: Assign, offset_cone: set) -> bool:
    name = _clean(assign.lhs)
    return (any(token.text == "$signed" for token in assign.tokens) or name == "fprime_next"
            or name.startswith("fprime_cast") or assign.lhs in offset_cone or name == _CARRY)


#: The PE's shared rounding (``_SharedRound`` in rtl/neuron_pe.py): the offset, a multiplexer of
#: the casts' rounding constants and draws, and the adder of the offset and the dropped bits,
#: both unsigned, so without a ``$signed`` operand.
_OFFSET = "round_offset"
_CARRY = "round_carry"
_UNNAMED = re.compile(r"\\\$\d+")


def _offset_cone(by_lhs: dict) -> set:
    """The left-hand sides of ``round_offset`` and of the unnamed wires (``\\$N``) it reads,
    transitively: where the rounding constants of the casts are."""
    cone, pending = set(), [_OFFSET]
    while pending:
        name = pending.pop()
        assign = by_lhs.get(name)
        if assign is None or name in cone:
            continue
        cone.add(name)
        pending.extend(token.text for token in assign.tokens
                       if token.kind == "esc" and _UNNAMED.fullmatch(token.text))
    return cone


def _signed(width: int, value: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


class _Builder:
    """Collects mutants with unique ids and unique mutated lines."""

    def __init__(self) -> None:
        self.mutants: list[Mutant] = []
        self._ids: set[str] = set()
        self._lines: set[tuple[int, str]] = set()

    def add(self, kind: str, site: str, change: str, assign: Assign, mutated: str) -> None:
        if mutated == assign.text or (assign.line, mutated) in self._lines:
            return
        ident = f"{kind}:{site}:{change}"
        base, count = ident, 2
        while ident in self._ids:
            ident, count = f"{base}#{count}", count + 1
        self._ids.add(ident)
        self._lines.add((assign.line, mutated))
        self.mutants.append(Mutant(ident, kind, assign.line, assign.text, mutated, _describe(kind, change, assign)))


def _equivalent_bounds(assigns: list, by_lhs: dict) -> set:
    """(line, literal start, direction) of bound literals whose off-by-one mutant is equivalent:
    in ``x > K ? S : x`` with S == K, the bound ``K - 1`` gives the same result (at x == K both
    give K); likewise ``x < K ? S : x`` with ``K + 1``."""
    equivalent = set()
    for assign in assigns:
        ternary = assign.ternary()
        if ternary is None:
            continue
        condition, chosen, _ = ternary
        source = by_lhs.get(condition)
        chosen_literal = literal_value(chosen)
        if source is None or chosen_literal is None:
            continue
        operators = source.binary_operators()
        if len(operators) != 1 or operators[0].text not in (">", "<"):
            continue
        for token in source.tokens:
            bound = literal_value(token.text) if token.kind == "num" else None
            if bound is None or token.start < operators[0].end:
                continue
            if _signed(*bound) == _signed(*chosen_literal):
                equivalent.add((source.line, token.start, -1 if operators[0].text == ">" else +1))
    return equivalent


def _operator_mutants(builder: _Builder, assign: Assign, equivalent: set, skipped: list) -> None:
    site = _clean(assign.lhs)
    for token in assign.binary_operators():
        if token.text in _SWAP:
            new = _SWAP[token.text]
            builder.add("op-swap", site, f"{token.text}>{new}", assign, assign.replace(token.start, token.end, new))
        elif token.text in _FLIP:
            new = _FLIP[token.text]
            builder.add("cmp-flip", site, f"{token.text}>{new}", assign, assign.replace(token.start, token.end, new))
    for token in assign.tokens:
        literal = literal_value(token.text) if token.kind == "num" else None
        if literal is None:
            continue
        width, value = literal
        digits = max(1, (width + 3) // 4)
        for step in (+1, -1):
            new_value = value + step
            change = f"{token.text}{'+' if step > 0 else '-'}1"
            if not 0 <= new_value < (1 << width):
                continue
            if (assign.line, token.start, step) in equivalent:
                skipped.append(NotApplicable(f"const:{site}:{change}",
                                             f"equivalent: the bound of a clamp to the same value (line {assign.line})"))
                continue
            builder.add("const", site, change, assign,
                        assign.replace(token.start, token.end, f"{width}'h{new_value:0{digits}x}"))


def unreachable_clamps(config) -> dict:
    """(cast, "pos"/"neg") -> why the formats alone keep that clamp from ever acting, for the
    casts whose range follows from the formats: tanh's f' = 1 - a^2 lies in [0, 1], and the
    weight step ``delta x 2^-shift`` may be too small to leave the weight format. Dropping
    such a clamp (or changing the value it clamps to) is an equivalent mutant."""
    from ssdfa.model.neuron_ops import Activation

    found = {}
    if config is None:
        return found
    a = config.arithmetic
    if config.activation is Activation.TANH:
        for side in ("pos", "neg"):
            found[("fprime", side)] = "f' = 1 - a^2 lies in [0, 1]"
    delta = a.error if config.is_output_layer else a.delta
    x = a.activation
    dropped = delta.frac_bits + x.frac_bits + a.shift - a.weight.frac_bits
    # The exact product's extremes (the bias input is 1.0), then one LSB for rounding up.
    x_values = (x.min_raw, max(x.max_raw, 1 << x.frac_bits))
    products = [d * v for d in (delta.min_raw, delta.max_raw) for v in x_values]
    high = (max(products) >> dropped) + 1 if dropped >= 0 else max(products) << -dropped
    low = min(products) >> dropped if dropped >= 0 else min(products) << -dropped
    if high <= a.weight.max_raw:
        found[("step", "pos")] = f"|delta x 2^-{a.shift}| stays within the weight format's maximum"
    if low >= a.weight.min_raw:
        found[("step", "neg")] = f"|delta x 2^-{a.shift}| stays within the weight format's minimum"
    return found


def _saturation_mutants(builder: _Builder, assigns: list, not_applicable: list, unreachable: dict,
                        equivalent: list) -> None:
    by_condition = {}
    for assign in assigns:
        ternary = assign.ternary()
        if ternary is not None:
            by_condition.setdefault(ternary[2], []).append((assign, ternary))
    for cast in CASTS:
        below_max = f"{cast}_cast_below_max"
        positive = next((a for a in assigns if a.lhs == below_max and a.ternary()), None)
        negative = next(iter(by_condition.get(below_max, [])), None)
        if positive is None:
            not_applicable.append(NotApplicable(f"sat-drop:{cast}:pos", f"no {below_max} (cast {cast!r} absent or "
                                                "sharing another cast's saturation, WRAP, or its value "
                                                "cannot exceed the maximum)"))
        elif (cast, "pos") in unreachable:
            equivalent.append(NotApplicable(f"sat-drop:{cast}:pos", "equivalent: " + unreachable[(cast, "pos")]))
        else:
            kept = positive.ternary()[2]
            builder.add("sat-drop", cast, "pos", positive,
                        positive.text[: positive.rhs_start] + kept + ";")
        if negative is None:
            not_applicable.append(NotApplicable(f"sat-drop:{cast}:neg", f"no clamp reading {below_max}"))
        elif (cast, "neg") in unreachable:
            equivalent.append(NotApplicable(f"sat-drop:{cast}:neg", "equivalent: " + unreachable[(cast, "neg")]))
        else:
            assign, (_, _, kept) = negative
            builder.add("sat-drop", cast, "neg", assign, assign.text[: assign.rhs_start] + kept + ";")


def _reads(verilog: str) -> dict:
    """Name -> how many times it occurs in ``verilog`` (declarations and assignments included)."""
    counts: dict[str, int] = {}
    for match in re.finditer(r"\\\S+|[A-Za-z_][\w$.]*", verilog):
        counts[match.group()] = counts.get(match.group(), 0) + 1
    return counts


_ALIAS = re.compile(r"^(\\\S+|[A-Za-z_][\w$.]*)\s*(?:\[(\d+)(?::(\d+))?\])?$")


def _driver(name: str, by_lhs: dict, reads: dict):
    """(assignment that really drives ``name``, bit offset of ``name`` in it). Yosys keeps a
    named alias (``assign fprime_next = \\$42 [9:0];``) at the end of the module while the logic
    reads the source (``\\$42``) directly; mutating the alias would change nothing, so follow it."""
    assign, offset = by_lhs.get(name), 0
    while assign is not None and reads.get(assign.lhs, 0) <= 2:
        match = _ALIAS.match(assign.rhs)
        if match is None or match.group(1) not in by_lhs:
            break
        offset += int(match.group(3) or match.group(2) or 0)
        assign = by_lhs[match.group(1)]
    return assign, offset


def _fprime_mutants(builder: _Builder, assigns: list, widths: dict, reads: dict, not_applicable: list) -> None:
    by_lhs = {assign.lhs: assign for assign in assigns}
    alias = by_lhs.get("fprime_next")
    if alias is None:
        for value in (0, 1):
            not_applicable.append(NotApplicable(f"fprime-stuck:{value}", "no fprime_next (an inference-only PE)"))
        return
    if literal_value(alias.rhs) is not None:
        for value in (0, 1):
            not_applicable.append(NotApplicable(f"fprime-stuck:{value}",
                                                f"f' is the constant {alias.rhs} here (the output layer does not use it)"))
        return
    site, offset = _driver("fprime_next", by_lhs, reads)
    width = widths.get("fprime_next", 1)
    site_width = widths.get(site.lhs, width)
    # f' is UQ(1, 0), or UQ(1, f) for tanh: 1.0 is its top bit.
    for value, raw in ((0, 0), (1, 1 << (width - 1))):
        digits = max(1, (site_width + 3) // 4)
        builder.add("fprime-stuck", "fprime_next", str(value), site,
                    site.text[: site.rhs_start] + f"{site_width}'h{raw << offset:0{digits}x};")


_SLICE = re.compile(r"^\[(\d+)(?::(\d+))?\]$")


def _lfsr_mutants(builder: _Builder, assigns: list, widths: dict, not_applicable: list) -> None:
    before = len(builder.mutants)
    for assign in assigns:
        if "^" not in [t.text for t in assign.binary_operators()]:
            continue
        tokens = assign.tokens
        for index, token in enumerate(tokens):
            name = _clean(token.text)
            if token.kind not in ("id", "esc") or not name.startswith("lfsr") or index + 1 >= len(tokens):
                continue
            if tokens[index + 1].text != "[":
                continue
            close = next(i for i in range(index + 1, len(tokens)) if tokens[i].text == "]")
            text = assign.text[tokens[index + 1].start : tokens[close].end].replace(" ", "")
            match = _SLICE.match(text)
            width = widths.get(token.text)
            if match is None or width is None:
                continue
            high = int(match.group(1))
            low = int(match.group(2)) if match.group(2) is not None else high
            step = 1 if high + 1 < width else -1
            if low + step < 0:
                continue
            new = f"[{high + step}:{low + step}]" if match.group(2) is not None else f"[{high + step}]"
            builder.add("lfsr-tap", _clean(assign.lhs), f"{name}{text}>{name}{new}", assign,
                        assign.replace(tokens[index + 1].start, tokens[close].end, new))
    if len(builder.mutants) == before:
        not_applicable.append(NotApplicable("lfsr-tap", "no LFSR (no STOCH rounding in this design)"))


_REPEATED = re.compile(r"\{ ((?:(?P<bit>[^,{}]+\[\d+\]), )(?:(?P=bit), )*)(?P<value>[^,{}]+) \}")


def _only_low_bits_used(name: str, kept: int, assigns: list) -> bool:
    """Every use of ``name`` in the assignments is a slice within its ``kept`` low bits."""
    pattern = re.compile(rf"{re.escape(name)}(?![\w$])\s*(\[(\d+)(?::\d+)?\])?")
    uses = [match for assign in assigns for match in pattern.finditer(assign.text, assign.rhs_start)]
    return bool(uses) and all(match.group(1) is not None and int(match.group(2)) < kept for match in uses)


def _sign_extension_mutants(builder: _Builder, assigns: list, widths: dict, reads: dict,
                            not_applicable: list, equivalent: list) -> None:
    before = len(builder.mutants)
    for assign in assigns:
        for match in _REPEATED.finditer(assign.text, assign.rhs_start):
            bit = match.group("bit")
            value = match.group("value")
            # Only a sign extension: the repeated bit is the top bit of the value it extends.
            name = bit[: bit.rindex("[")].strip()
            if value.strip() != name and not value.replace(" ", "").startswith(name.replace(" ", "") + "["):
                continue
            copies = match.group(1).count(bit)
            new = "{ " + f"{copies}'h0, {value}" + " }"
            site = f"sign-ext-drop:{_clean(assign.lhs)}:{copies}x{bit.strip()}>0"
            # A named wire Yosys keeps for a value the logic reads from elsewhere (its declaration
            # and this assignment are its only occurrences): no bit of it reaches anything.
            if reads.get(assign.lhs, 0) <= 2:
                equivalent.append(NotApplicable(site, "equivalent: nothing reads the result"))
                continue
            width = widths.get(assign.lhs)
            if width is not None and _only_low_bits_used(assign.lhs, width - copies, assigns):
                equivalent.append(NotApplicable(site, "equivalent: every use of the result drops the extension bits"))
                continue
            builder.add("sign-ext-drop", _clean(assign.lhs), f"{copies}x{bit.strip()}>0", assign,
                        assign.text[: match.start()] + new + assign.text[match.end():])
    if len(builder.mutants) == before:
        not_applicable.append(NotApplicable("sign-ext-drop", "no sign extension by repetition"))


def _clamp_values(assigns: list, unreachable: dict) -> dict:
    """Line -> reason, for the clamp multiplexers of unreachable clamps (their literals' mutants
    are equivalent too)."""
    lines = {}
    consumers = {}
    for assign in assigns:
        ternary = assign.ternary()
        if ternary is not None:
            consumers.setdefault(ternary[2], assign)
    for (cast, side), reason in unreachable.items():
        below_max = f"{cast}_cast_below_max"
        site = next((a for a in assigns if a.lhs == below_max), None) if side == "pos" else consumers.get(below_max)
        if site is not None:
            lines[site.line] = reason
    return lines


def enumerate_mutants(verilog: str, kinds=None, config=None) -> MutantSet:
    """Every mutant of the catalogue with a site in ``verilog``, in file order.

    Parameters
    ----------
    verilog : str
        One design (the file ``rtl.verilog.generate`` writes, or a ``Design``'s text).
    kinds : iterable of str, optional
        Only these keys of ``KINDS`` (default: all).
    config : LayerConfig, optional
        The design's configuration: with it, clamps that the formats keep from ever acting
        (``unreachable_clamps``) give equivalent mutants, reported but not run.
    """
    chosen = set(KINDS if kinds is None else kinds)
    unknown = chosen - set(KINDS)
    if unknown:
        raise ValueError(f"unknown mutant kind(s) {sorted(unknown)}; expected some of {', '.join(KINDS)}")
    assigns = assignments(verilog)
    widths = declared_widths(verilog)
    by_lhs = {assign.lhs: assign for assign in assigns}
    reads = _reads(verilog)
    builder = _Builder()
    not_applicable: list[NotApplicable] = []
    equivalent: list[NotApplicable] = []
    unreachable = unreachable_clamps(config)
    if chosen & {"op-swap", "cmp-flip", "const"}:
        bounds = _equivalent_bounds(assigns, by_lhs)
        offset_cone = _offset_cone(by_lhs)
        clamp_lines = _clamp_values(assigns, unreachable)
        for assign in assigns:
            if assign.line in clamp_lines:
                for token in assign.tokens:
                    if token.kind == "num" and literal_value(token.text) is not None:
                        equivalent.append(NotApplicable(f"const:{_clean(assign.lhs)}:{token.text}+-1",
                                                        "equivalent: " + clamp_lines[assign.line]))
                continue
            # An assignment nothing reads (a named alias Yosys keeps) cannot change the design.
            if _is_datapath(assign, offset_cone) and reads.get(assign.lhs, 0) > 2 and literal_value(assign.rhs) is None:
                _operator_mutants(builder, assign, bounds, equivalent)
        if "cmp-flip" in chosen and not any(mutant.kind == "cmp-flip" for mutant in builder.mutants):
            # The pipelined casts test the bits above the kept range (reductions, which the
            # sat-drop mutants cover) rather than compare with the bounds.
            not_applicable.append(NotApplicable("cmp-flip", "no datapath comparison (the casts test upper bits)"))
    if "sat-drop" in chosen:
        _saturation_mutants(builder, assigns, not_applicable, unreachable, equivalent)
    if "fprime-stuck" in chosen:
        _fprime_mutants(builder, assigns, widths, reads, not_applicable)
    if "lfsr-tap" in chosen:
        _lfsr_mutants(builder, assigns, widths, not_applicable)
    if "sign-ext-drop" in chosen:
        _sign_extension_mutants(builder, assigns, widths, reads, not_applicable, equivalent)
    kept = [mutant for mutant in builder.mutants if mutant.kind in chosen]
    kept.sort(key=lambda mutant: (mutant.line, list(KINDS).index(mutant.kind)))
    equivalent = [entry for entry in equivalent if entry.id.split(":")[0] in chosen]
    return MutantSet(kept, not_applicable, equivalent)


def sample(mutants: list, count: int | None, seed: int) -> list:
    """``count`` of ``mutants`` picked by ``seed`` (all of them when ``count`` is None or not
    smaller), in their original order."""
    if count is None or count >= len(mutants):
        return list(mutants)
    picked = sorted(random.Random(f"ssdfa-mutants/{seed}").sample(range(len(mutants)), count))
    return [mutants[i] for i in picked]
