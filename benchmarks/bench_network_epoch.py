"""A full digits epoch of the 64-32-10 SSDFA network in RTL under Verilator: wall time.

Trains the network on the whole digits training split (1,258 samples of 64 features) in the
model and in the RTL (``ssdfa cosim --network``'s job), checks every weight and prediction bit
for bit, and reports the epoch's simulation wall time and speed besides the build and
elaboration times. The simulation touches the design only at the epoch's start and end (the
stream harness plays the samples from a file), so the epoch's time is the simulator's own.

Run: ``python benchmarks/bench_network_epoch.py [--sim verilator] [--epochs 1]``. The first run
elaborates and compiles the design (minutes on a busy machine); later runs reuse both.
"""

from __future__ import annotations

import argparse
import sys
import time

from ssdfa.cli import run_script
from ssdfa.sim.network_cosim import NetworkJob, run_network_cosim

#: The goal: a verified digits epoch in at most this many seconds of simulation wall time.
EPOCH_GOAL_SECONDS = 60.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = (lambda line: None) if args.quiet else print
    report = run_network_cosim(NetworkJob(hidden=(args.hidden,), epochs=args.epochs, simulator=args.sim), out=out)
    total = time.perf_counter() - started
    figures = report.figures
    epoch = figures["epoch_seconds"]
    print(f"digits epoch on {args.sim}: {epoch:.1f} s simulation wall time per epoch "
          f"({figures['clocks_per_second']:,.0f} clocks/s, {figures['cycles_per_sample']:.1f} clocks per sample); "
          f"{total:.1f} s in all (model, elaboration, build, simulation, checks); bit-exact: {report.passed}; "
          f"goal {EPOCH_GOAL_SECONDS:.0f} s: {'met' if epoch <= EPOCH_GOAL_SECONDS else 'NOT met'}")
    return report.exit_status


if __name__ == "__main__":
    run_script(main)
