"""Whole-network MAC utilisation of the RTL learner: every PE split of a network, its schedule's
minimum and utilisation bound, and (``--measure``) the figures a bit-exact Verilator run gives.

Useful MACs per training sample are the forward MACs and the weight updates, biases included
(``rtl.network.useful_macs``); utilisation is useful MACs over (PEs x clocks). For each split
of the PEs (every count that divides its layer) the table gives:

- ``minimum``: ``rtl.network.schedule_minimum``, the clocks per sample of the RTL's schedule
  counting work only. The model trains one sample at a time (batch 1, docs/arithmetic.md §9):
  sample t+1's forward pass may read a weight only after sample t has updated it, and an
  input-major PE completes its neurons only with its last input, so the output layer's forward
  pass cannot start before the hidden layer's update and forward pass are over.
- ``bound``: ``rtl.network.utilisation_bound``, the utilisation at that minimum.
- ``streaming bound`` (one hidden layer only): the same bound for a hidden layer whose PEs
  would finish one neuron every ``F + 1`` clocks (neuron-major forward pass, not built) and an
  output layer that takes each activation as it comes, with no pipeline latency and no ERROR
  clocks:
  ``max(2 W_1, W_0 + F_0 + 1 + (N_0 + 1) K_1, 2 W_0 + (P_0 + 1) K_1)`` clocks per sample, with
  ``W_l = K_l (F_l + 1)``. It is what overlapping the layers further could reach at best while
  keeping the model's batch-1 order.

``--measure 4,2 4,1`` trains the network on the digits training split in the model and in the
RTL under Verilator (``ssdfa cosim --network``'s job, seed 0, every weight and prediction
checked bit for bit) and prints the measured clocks per sample and utilisation; each split is
one Verilator build (about a minute) and one epoch.

Run: ``python benchmarks/bench_network_utilisation.py [--hidden 32] [--measure 4,2 4,1]``.
"""

from __future__ import annotations

import argparse
import itertools
import sys

from ssdfa.cli import run_script
from ssdfa.errors import SsdfaError
from ssdfa.model.neuron_ops import ArithmeticConfig
from ssdfa.rtl.network import (
    default_pes,
    network_layer_configs,
    schedule_minimum,
    useful_macs,
    utilisation_bound,
)


def streaming_minimum(configs) -> int | None:
    """Clocks per sample with a streaming hidden layer and no latency (one hidden layer only)."""
    if len(configs) != 2:
        return None
    hidden, output = configs
    w0 = hidden.neurons_per_pe * (hidden.shape.fan_in + 1)
    w1 = output.neurons_per_pe * (output.shape.fan_in + 1)
    k1 = output.neurons_per_pe
    return max(2 * w1, w0 + hidden.shape.fan_in + 1 + (hidden.shape.neurons + 1) * k1,
               2 * w0 + (hidden.pes + 1) * k1)


def splits(sizes):
    """Every PE count per layer that divides the layer's neurons."""
    choices = [[p for p in range(1, n + 1) if n % p == 0] for n in sizes[1:]]
    return list(itertools.product(*choices))


def parse_pes(text: str) -> tuple[int, ...]:
    try:
        pes = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"PE counts must be integers separated by commas, not {text!r}") from None
    return pes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=64, help="input width (64: digits)")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--outputs", type=int, default=10)
    parser.add_argument("--max-pes", type=int, default=16, help="leave out splits with more PEs in all")
    parser.add_argument("--measure", type=parse_pes, nargs="*", default=[],
                        help="PE splits to train for one digits epoch under Verilator, e.g. 4,2 4,1")
    args = parser.parse_args(argv)
    sizes = (args.inputs, args.hidden, args.outputs)
    arithmetic = ArithmeticConfig()
    try:  # refuse a bad size or split in one line, before anything runs
        for pes in [None] + list(args.measure):
            network_layer_configs(sizes, arithmetic, pes=pes)
    except SsdfaError as exc:
        parser.error(str(exc))
    defaults = default_pes(sizes)
    rows = []
    for pes in splits(sizes):
        if sum(pes) > args.max_pes:
            continue
        configs = network_layer_configs(sizes, arithmetic, pes=pes)
        streaming = streaming_minimum(configs)
        rows.append((pes, schedule_minimum(configs), utilisation_bound(configs),
                     streaming, useful_macs(configs) / (sum(pes) * streaming)))
    if not rows:
        parser.error(f"no split of {'-'.join(map(str, sizes))} has at most --max-pes {args.max_pes} PEs")
    print(f"network {'-'.join(map(str, sizes))}: {useful_macs(network_layer_configs(sizes, arithmetic)):,} useful "
          f"MACs per training sample; default PEs {'+'.join(map(str, defaults))}")
    print(f"{'PEs':>8} {'minimum':>8} {'bound':>6} {'streaming minimum':>18} {'streaming bound':>16}")
    for pes, minimum, bound, streaming, streaming_bound in sorted(rows, key=lambda r: -r[2]):
        mark = "  (default)" if pes == defaults else ""
        print(f"{'+'.join(map(str, pes)):>8} {minimum:>8,} {bound:>6.3f} {streaming:>18,} {streaming_bound:>16.3f}{mark}")
    best = max(rows, key=lambda r: r[4])
    print(f"highest streaming bound: {best[4]:.3f} on {'+'.join(map(str, best[0]))} PEs "
          f"(goal 0.9: {'reachable' if best[4] >= 0.9 else 'NOT reachable'} in batch-1 order with one MAC or update "
          f"per PE per clock)")

    if args.measure:
        from ssdfa.sim.network_cosim import NetworkJob, run_network_cosim

        print("measured (digits training split, one epoch, seed 0, Verilator, bit-exact against the model):")
        for pes in args.measure:
            report = run_network_cosim(NetworkJob(hidden=(args.hidden,), pes=pes, simulator="verilator"),
                                       out=lambda line: None)
            figures = report.figures
            print(f"  PEs {'+'.join(map(str, pes))}: {figures['cycles_per_sample']:.1f} clocks per sample "
                  f"(minimum {figures['schedule_minimum']:,}), utilisation {figures['utilisation']:.3f}, "
                  f"bit-exact: {report.passed}")
            if not report.passed:
                return 1
    return 0


if __name__ == "__main__":
    run_script(main)
