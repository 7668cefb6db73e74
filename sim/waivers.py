"""The Verilator warnings we waive, each with the reason: the one list for builds and lint.

Every entry is a pattern that Amaranth's Verilog backend emits for correct designs, so no change
to a design can remove it. Anything else Verilator reports stays fatal: we never pass
``-Wno-fatal``, and a new warning means a new, argued entry here, not a blanket switch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Waiver", "VERILATOR_WAIVERS", "verilator_waiver_flags"]


@dataclass(frozen=True)
class Waiver:
    """One Verilator warning waived by name.

    Attributes
    ----------
    rule : str
        Verilator's warning name, as in ``%Warning-<rule>``.
    reason : str
        Why the warning is inherent in Amaranth's output rather than a design bug.
    """

    rule: str
    reason: str

    @property
    def flag(self) -> str:
        return f"-Wno-{self.rule}"


VERILATOR_WAIVERS: tuple[Waiver, ...] = (
    Waiver(
        "WIDTHEXPAND",
        "Amaranth's arithmetic grows the word, and its backend writes each operand at its own "
        "width (`$signed(acc) + $signed(x)` into a wider wire), relying on Verilog's "
        "context-determined extension, which is the behaviour we want.",
    ),
    Waiver(
        "PROCASSINIT",
        "Amaranth gives every register its init value in the declaration (`reg [7:0] q = 8'h00;`) "
        "and assigns it in an always block; that is how it expresses reset-free initial state.",
    ),
    Waiver(
        "UNUSEDSIGNAL",
        "Amaranth keeps a named wire for every signal for debugging, and intermediate `$n` wires "
        "whose carry bits a slice drops; unused logic is better found in the Amaranth source.",
    ),
    Waiver(
        "DECLFILENAME",
        "Amaranth writes the whole hierarchy into one file named after the top module, so "
        "submodules never match the file name.",
    ),
)


def verilator_waiver_flags() -> list[str]:
    """The ``-Wno-<rule>`` flags for every waiver, in a fixed order."""
    return [waiver.flag for waiver in VERILATOR_WAIVERS]
