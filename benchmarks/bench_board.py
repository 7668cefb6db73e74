"""The board figures of docs/board.md: both bitstreams (utilisation, fmax against the board
clock, whether the design fits) and the goal run (digits, one epoch, over the simulated UART).

    .venv/bin/python benchmarks/bench_board.py [--out DIR] [--board B] [--repeat] [--skip-build] [--skip-train]

Each step is the `ssdfa board` command that docs/board.md shows; this prints their JSON. The
builds take minutes each and the training run several minutes on two cores. ``--repeat`` builds
each board a second time in another directory and says whether the two bitstreams are the same
bytes (same inputs, same bitstream).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ssdfa.cli import run_script

SSDFA = [sys.executable, "-m", "ssdfa"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="build directory (default: a temporary one)")
    parser.add_argument("--board", action="append", choices=("icebreaker", "ulx3s"),
                        help="build only this board (repeat for both; default both)")
    parser.add_argument("--repeat", action="store_true",
                        help="build each board twice and compare the bitstreams' SHA-256")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="ssdfa-boards-"))
    status = 0
    if not args.skip_build:
        for board in args.board or ("icebreaker", "ulx3s"):
            digests = []
            for build in (board, f"{board}-again")[:2 if args.repeat else 1]:
                done = subprocess.run(SSDFA + ["board", "build", "--board", board, "--out", str(out / build),
                                               "--json"], capture_output=True, text=True)
                print(done.stdout.strip() or done.stderr.strip(), flush=True)
                status = max(status, 0 if done.returncode in (0, 1) else done.returncode)
                digests.append(json.loads(done.stdout)["bitstream_sha256"] if done.stdout.strip() else None)
            if args.repeat:
                same = digests[0] is not None and digests[0] == digests[1]
                print(f"{board}: two builds from the same inputs, bitstream SHA-256 {digests[0]} and {digests[1]}: "
                      f"{'identical' if same else 'NOT identical'}", flush=True)
                status = max(status, 0 if same else 1)
    if not args.skip_train:
        done = subprocess.run(SSDFA + ["board", "train", "--sim", "verilator", "--board", "icebreaker", "--dataset",
                                       "digits", "--epochs", "1", "--json"], capture_output=True, text=True)
        print(done.stdout.strip() or done.stderr.strip(), flush=True)
        status = max(status, done.returncode)
    return status


if __name__ == "__main__":
    run_script(main)
