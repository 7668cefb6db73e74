"""Reading the generated Verilog: continuous assignments, their tokens, declared widths, ports.

Yosys' ``write_verilog`` output, which Amaranth produces, is regular: one ``assign LHS = RHS;``
per line, operands that are identifiers (``\\$35 `` escaped ones end at a space), slices,
``$signed(...)``, sized literals (``16'h7fff``) and concatenations, with at most one operator
at the top level of most right-hand sides, or a ternary. This module reads just that much, by
tokens rather than by line numbers, so that mutation sites (:mod:`ssdfa.sim.mutants`) follow the
design when the RTL changes. It also reads a module's port list (``module_ports``), for the
port check of a user-supplied file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ssdfa.errors import SsdfaError

__all__ = ["Token", "Assign", "tokenize", "assignments", "declared_widths", "module_ports", "literal_value"]

_TOKEN = re.compile(
    r"""
     (?P<esc>\\\S+)                                      # escaped identifier (ends at white space)
    |(?P<num>\d+\s*'s?[hdbo][0-9a-fA-FxXzZ_]+|\d+)     # sized literal or plain decimal
    |(?P<sys>\$[A-Za-z_]\w*)                            # $signed, $unsigned
    |(?P<id>[A-Za-z_][\w$.]*)
    |(?P<op><<<|>>>|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!<>?:{}()\[\],])
    |(?P<ws>\s+)
    """,
    re.X,
)

#: Tokens after which a ``+``, ``&``, ... is a binary operator, not a unary one.
_OPERAND_END = {"esc", "num", "id"}


@dataclass(frozen=True)
class Token:
    """One token of a right-hand side: its kind (``esc``, ``num``, ``sys``, ``id``, ``op``),
    text, position in the line, and bracket depth (parentheses, braces and brackets together)."""

    kind: str
    text: str
    start: int
    end: int
    depth: int


@dataclass(frozen=True)
class Assign:
    """One ``assign LHS = RHS;`` line.

    Attributes
    ----------
    line : int
        1-based line number in the file.
    text : str
        The whole line.
    lhs : str
        The assigned name as written, without a trailing slice (``\\$35``, ``y_cast_below_max``).
    rhs_start : int
        Where the right-hand side starts in ``text``.
    tokens : tuple of Token
        The right-hand side's tokens (positions in ``text``), white space left out.
    """

    line: int
    text: str
    lhs: str
    rhs_start: int
    tokens: tuple

    @property
    def rhs(self) -> str:
        return self.text[self.rhs_start : self.text.rindex(";")].strip()

    def top_level(self) -> list:
        """The tokens at bracket depth 0."""
        return [token for token in self.tokens if token.depth == 0]

    def binary_operators(self) -> list:
        """Top-level binary operator tokens (a ``&`` after an operand, not a reduction)."""
        found = []
        previous = None
        for token in self.tokens:
            if token.depth == 0 and token.kind == "op" and previous is not None and (
                previous.kind in _OPERAND_END or previous.text in (")", "]", "}")
            ) and token.text not in ("(", ")", "[", "]", "{", "}", ",", "?", ":"):
                found.append(token)
            previous = token
        return found

    def ternary(self):
        """(condition, true branch, false branch) as text when the RHS is ``c ? a : b`` at top level."""
        top = self.top_level()
        question = [t for t in top if t.text == "?"]
        colon = [t for t in top if t.text == ":"]
        if len(question) != 1 or len(colon) != 1:
            return None
        end = self.text.rindex(";")
        q, c = question[0], colon[0]
        return (self.text[self.rhs_start : q.start].strip(), self.text[q.end : c.start].strip(),
                self.text[c.end : end].strip())

    def replace(self, start: int, end: int, new: str) -> str:
        """The line with ``text[start:end]`` replaced."""
        return self.text[:start] + new + self.text[end:]


def tokenize(text: str, offset: int = 0) -> list:
    """The tokens of ``text`` (positions shifted by ``offset``), white space left out."""
    tokens = []
    depth = 0
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SsdfaError(f"cannot read Verilog near {text[position:position + 20]!r}")
        kind = match.lastgroup
        value = match.group()
        if kind != "ws":
            if value in (")", "}", "]"):
                depth -= 1
            tokens.append(Token(kind, value, offset + match.start(), offset + match.end(), depth))
            if value in ("(", "{", "["):
                depth += 1
        position = match.end()
    return tokens


_ASSIGN = re.compile(r"^\s*assign\s+(?P<lhs>\\\S+|[A-Za-z_][\w$.]*)\s*(?:\[[^\]]*\]\s*)?=\s*")


def assignments(verilog: str) -> list:
    """Every single-line ``assign`` of ``verilog``, in file order."""
    found = []
    for number, line in enumerate(verilog.splitlines(), 1):
        match = _ASSIGN.match(line)
        if match is None or not line.rstrip().endswith(";"):
            continue
        rhs_end = line.rindex(";")
        try:
            tokens = tokenize(line[match.end() : rhs_end], match.end())
        except SsdfaError:
            continue
        found.append(Assign(number, line, match.group("lhs"), match.end(), tuple(tokens)))
    return found


_DECLARATION = re.compile(
    r"^\s*(?:input|output|inout|wire|reg)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[(\d+):(\d+)\]\s*)?(\\\S+|[A-Za-z_][\w$.]*)"
)


def declared_widths(verilog: str) -> dict:
    """Name -> width of every one-per-line declaration (the last one wins: ports are declared
    twice, as ``output`` and as ``wire``/``reg``)."""
    widths = {}
    for line in verilog.splitlines():
        match = _DECLARATION.match(line)
        if match:
            high, low = match.group(1), match.group(2)
            widths[match.group(3)] = abs(int(high) - int(low)) + 1 if high is not None else 1
    return widths


_PORT_DECLARATION = re.compile(
    r"\b(input|output|inout)\b\s*(?:wire\b|reg\b|logic\b)?\s*(?:signed\b)?\s*(?:\[\s*(\d+)\s*:\s*(\d+)\s*\])?\s*"
    r"(\\\S+|[A-Za-z_][\w$]*)"
)


def module_ports(verilog: str, module: str) -> dict:
    """Port name -> (direction, width) of ``module``: ``input``/``output``/``inout``
    declarations in its body or in an ANSI header, one name per declaration.

    Raises
    ------
    SsdfaError
        If the text declares no module ``module``.
    """
    start = re.search(rf"^\s*module\s+{re.escape(module)}\b", verilog, flags=re.MULTILINE)
    if start is None:
        raise SsdfaError(f"declares no module {module!r}")
    end = verilog.find("endmodule", start.end())
    body = verilog[start.end() : end if end >= 0 else len(verilog)]
    body = re.sub(r"//[^\n]*|/\*.*?\*/|\(\*.*?\*\)", " ", body, flags=re.DOTALL)
    ports = {}
    for match in _PORT_DECLARATION.finditer(body):
        high, low = match.group(2), match.group(3)
        width = abs(int(high) - int(low)) + 1 if high is not None else 1
        ports.setdefault(match.group(4), (match.group(1), width))
    return ports


_LITERAL = re.compile(r"(\d+)\s*'(s?)([hdbo])([0-9a-fA-F_]+)$")


def literal_value(text: str):
    """(width, value) of a sized literal such as ``16'h7fff``, or None (plain decimals, X/Z)."""
    match = _LITERAL.match(text)
    if match is None:
        return None
    base = {"h": 16, "d": 10, "b": 2, "o": 8}[match.group(3)]
    return int(match.group(1)), int(match.group(4).replace("_", ""), base)
