"""The board figures of docs/board.md: both bitstreams (utilisation, fmax against the board
clock, whether the design fits) and the goal run (digits, one epoch, over the simulated UART).

    .venv/bin/python benchmarks/bench_board.py [--out DIR] [--skip-build] [--skip-train]

Each step is the `ssdfa board` command that docs/board.md shows; this prints their JSON. The
builds take minutes each and the training run several minutes on two cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

SSDFA = [sys.executable, "-m", "ssdfa"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="build directory (default: a temporary one)")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="ssdfa-boards-"))
    status = 0
    if not args.skip_build:
        for board in ("icebreaker", "ulx3s"):
            done = subprocess.run(SSDFA + ["board", "build", "--board", board, "--out", str(out / board), "--json"],
                                  capture_output=True, text=True)
            print(done.stdout.strip() or done.stderr.strip(), flush=True)
            status = max(status, 0 if done.returncode in (0, 1) else done.returncode)
    if not args.skip_train:
        done = subprocess.run(SSDFA + ["board", "train", "--sim", "verilator", "--board", "icebreaker", "--dataset",
                                       "digits", "--epochs", "1", "--json"], capture_output=True, text=True)
        print(done.stdout.strip() or done.stderr.strip(), flush=True)
        status = max(status, done.returncode)
    return status


if __name__ == "__main__":
    sys.exit(main())
