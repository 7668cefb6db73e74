"""The FPGAs ``ssdfa implement`` places designs on: family, part, package, user I/O pins.

One package per device, chosen to be the one on a common, cheap board (so that a result is a
result on hardware people own) and documented in docs/implement.md:

=============  ==========================  ========  =====  ===============================
name           part                        package   pins   board with this part
=============  ==========================  ========  =====  ===============================
ice40-up5k     iCE40 UltraPlus UP5K        SG48      39     iCEBreaker, UPduino
ice40-hx8k     iCE40 HX8K                  CT256     206    iCE40-HX8K breakout board
ecp5-25f       ECP5 LFE5U-25F, speed 6     CABGA381  197    ULX3S (25F)
ecp5-45f       ECP5 LFE5U-45F, speed 6     CABGA381  203    ULX3S (45F)
ecp5-85f       ECP5 LFE5U-85F, speed 6     CABGA381  205    ULX3S (85F)
=============  ==========================  ========  =====  ===============================

``io_pins`` is the number of user I/O sites nextpnr offers in that package (its ``SB_IO`` /
``TRELLIS_IO`` capacity; tests/test_rtl_implement.py checks the table against it). Resource
capacities are not kept here: nextpnr reports them with the utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssdfa.errors import SsdfaError

__all__ = ["Device", "DEVICES", "FAMILIES", "device"]


@dataclass(frozen=True)
class Device:
    """One FPGA part in one package.

    Attributes
    ----------
    name : str
        What ``--device`` takes (``ice40-up5k``).
    family : str
        ``ice40`` or ``ecp5``: selects Yosys's ``synth_<family>`` and ``nextpnr-<family>``.
    part : str
        The part as a person would name it.
    package : str
        nextpnr's package name.
    io_pins : int
        User I/O pins in the package.
    nextpnr_args : tuple of str
        The part, package and speed grade as nextpnr arguments.
    synth_options : tuple of str
        Extra ``synth_<family>`` options: ``-dsp`` maps multipliers to the UltraPlus's
        ``SB_MAC16`` (HX parts have no DSPs; ``synth_ecp5`` maps to ``MULT18X18D`` by default).
    logic_resource, ram_resource, dsp_resource : str
        nextpnr's names of the logic cell (a LUT4 with its flip-flop on iCE40, a LUT4 on ECP5),
        the block RAM and the multiplier, which the figure tables compare.
    """

    name: str
    family: str
    part: str
    package: str
    io_pins: int
    nextpnr_args: tuple[str, ...]
    synth_options: tuple[str, ...] = ()
    logic_resource: str = ""
    ram_resource: str = ""
    dsp_resource: str = ""


FAMILIES = ("ice40", "ecp5")

DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device("ice40-up5k", "ice40", "iCE40 UltraPlus UP5K", "sg48", 39,
               ("--up5k", "--package", "sg48"), ("-dsp",), "ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP"),
        Device("ice40-hx8k", "ice40", "iCE40 HX8K", "ct256", 206,
               ("--hx8k", "--package", "ct256"), (), "ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP"),
        Device("ecp5-25f", "ecp5", "ECP5 LFE5U-25F speed 6", "CABGA381", 197,
               ("--25k", "--package", "CABGA381", "--speed", "6"), (), "TRELLIS_COMB", "DP16KD", "MULT18X18D"),
        Device("ecp5-45f", "ecp5", "ECP5 LFE5U-45F speed 6", "CABGA381", 203,
               ("--45k", "--package", "CABGA381", "--speed", "6"), (), "TRELLIS_COMB", "DP16KD", "MULT18X18D"),
        Device("ecp5-85f", "ecp5", "ECP5 LFE5U-85F speed 6", "CABGA381", 205,
               ("--85k", "--package", "CABGA381", "--speed", "6"), (), "TRELLIS_COMB", "DP16KD", "MULT18X18D"),
    )
}


def device(name: str) -> Device:
    """The ``Device`` called *name*.

    Raises
    ------
    SsdfaError
        Naming the unknown device and the known ones.
    """
    try:
        return DEVICES[name]
    except (KeyError, TypeError):
        raise SsdfaError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}") from None
