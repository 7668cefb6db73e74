"""Place and route of the PE and of whole learners on iCE40 and ECP5: utilisation, fmax, throughput.

Every row is ``ssdfa implement`` (``rtl.implement.implement``: Yosys 0.23, nextpnr 0.11 from the
yowasp wheels, nextpnr seed 1) of:

- the PE of configs/ssdfa_64x100_10pe.toml (fan-in 64, 10 neurons per PE, 16-bit words), learning
  and inference-only (``learning = false``), on ice40-up5k (aiming at 50 MHz) and ecp5-45f
  (aiming at 125 MHz), through the ``registered`` pin wrapper: every port of the PE starts or
  ends at a flip-flop with no logic between, so its fmax includes the paths to and from its ports;
- the demo's whole learner, 64-32-10, on ice40-up5k (aiming at 30 MHz) with as many PEs as fit:
  one per layer, and only the network's own counters (the board cores' choice; the demo's 4+2
  PEs with every counter take about three UP5Ks);
- the paper-sized learner, 64-100-10 with 10+1 PEs (the layer of configs/ssdfa_64x100_10pe.toml
  and its output layer), on ecp5-45f (aiming at 100 MHz), placed with timing-weighted placement
  (``TIMING_WEIGHTED``, named in its row: with nextpnr's default weights it misses 100 MHz).

For every learner that fits it then prints the training throughput on chip, fmax / clocks per
training sample, where the clocks per sample are measured by training the same RTL under
Verilator on the first digits samples (bit for bit against the model: a run that differs stops
the table), beside the bit-exact model's own training throughput on this CPU at batch 1 (CPU
time, single-threaded BLAS) for the same network, measured in the same run.

A PE takes about a minute per device, a learner many minutes (the 64-100-10 one most of an
hour on a loaded 2-core machine). ``--only pe`` or ``--only network`` runs one part;
``--learner 100/10,1:ecp5-45f`` places other learners (HIDDEN[/PES]:DEVICE); ``--implemented
FILE`` takes a learner's placement from the report ``ssdfa implement --network ... --json``
printed instead of placing it again (the clocks per sample and the model's speed are still
measured in this run); ``--seeds 2,3,4`` places each PE and learner again with those nextpnr
seeds and prints its fmax over every seed (min, median, max): a learner that fills much of the
die moves by several MHz from one placement to the next, and the tables stay at seed 1;
``--nextpnr-opts '...'`` places every row with those nextpnr options instead (the default rows'
own included). Run: ``python benchmarks/bench_implement.py``.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from ssdfa.cli import run_script  # noqa: E402
from ssdfa.cli._argtypes import nextpnr_opts as nextpnr_opts_argument  # noqa: E402
from ssdfa.cli.implement import network_configs  # noqa: E402
from ssdfa.errors import SsdfaError  # noqa: E402
from ssdfa.model.layer_config import load_layer_config  # noqa: E402
from ssdfa.rtl.devices import device  # noqa: E402
from ssdfa.rtl.implement import implement  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PE_CONFIG = ROOT / "configs" / "ssdfa_64x100_10pe.toml"
SEED = 1
#: The PE's goals: nextpnr aims at them.
PE_TARGETS = {"ice40-up5k": 50.0, "ecp5-45f": 125.0}
#: The learners' goals per device family.
LEARNER_TARGETS = {"ice40": 30.0, "ecp5": 100.0}
#: (hidden sizes, PEs per layer or None for ``default_pes``, device).
#: nextpnr's heap placer weighing timing more against wirelength than its defaults (2 and 10):
#: the 64-100-10 learner's placement (docs/implement.md §5.1 compares the weightings).
TIMING_WEIGHTED = ("--placer-heap-critexp", "10", "--placer-heap-timingweight", "200")
LEARNERS = (((32,), (1, 1), "ice40-up5k", False), ((100,), (10, 1), "ecp5-45f", True, TIMING_WEIGHTED))


@dataclasses.dataclass(frozen=True)
class Learner:
    hidden: tuple
    pes: tuple | None
    device: str
    #: False: only the network's own counters (``ssdfa implement --counters network``).
    layer_counters: bool = True
    #: Extra nextpnr options of this row (``ssdfa implement --nextpnr-opts``).
    nextpnr_opts: tuple = ()

    @property
    def target_mhz(self) -> float:
        return LEARNER_TARGETS[device(self.device).family]


def _learner(text: str) -> Learner:
    """``HIDDEN[/PES]:DEVICE``, e.g. ``32:ecp5-45f``, ``100/10,1:ecp5-45f`` or ``64,32:ecp5-85f``."""
    shape, _, name = text.partition(":")
    hidden, _, pes = shape.partition("/")
    try:
        sizes = tuple(int(part) for part in hidden.split(","))
        counts = tuple(int(part) for part in pes.split(",")) if pes else None
        device(name)
    except (ValueError, SsdfaError):
        raise argparse.ArgumentTypeError(f"expected HIDDEN[/PES]:DEVICE such as 100/10,1:ecp5-45f, not {text!r}") from None
    return Learner(sizes, counts, name)


def _implemented(text: str) -> dict:
    """A report printed by ``ssdfa implement --network ... --json``."""
    try:
        report = json.loads(Path(text).read_text())
        report["network"]["sizes"], report["network"]["pes"], report["device"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a report of ssdfa implement --network --json") from None
    return report


def _seeds(text: str) -> tuple[int, ...]:
    """``2,3,4``: nextpnr seeds, each a non-negative integer."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
        if any(seed < 0 for seed in seeds):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected non-negative seeds such as 2,3,4, not {text!r}") from None
    return seeds


def _mhz(fmax: float | None) -> str:
    return "-" if fmax is None else f"{fmax:.2f}"


def _path_text(report: dict) -> str:
    path = report["critical_path"]
    return f"{path['from']} -> {path['to']}, {path['ns']:.1f} ns" if path else "-"


def _cells(report: dict, name: str) -> str:
    entry = report["utilisation"].get(name)
    return "-" if not name or entry is None else f"{entry['used']:,} / {entry['available']:,}"


def _row(label: str, report: dict, seconds: float | None) -> str:
    chosen = device(report["device"])
    fmax = _mhz(report["fmax_mhz"])
    path = report["critical_path"]
    levels = path["logic_levels"] if path else 0
    path_text = f"{path['ns']:.1f} ns, {levels} level{'' if levels == 1 else 's'}" if path else "-"
    wrapper = report["wrapper"]["mode"] if report["wrapper"] else "none"
    took = "from file" if seconds is None else f"{seconds:.0f}"
    return (f"| {label} | {report['device']} | {'yes' if report['fits'] else 'NO'} | "
            f"{_cells(report, chosen.logic_resource)} | {_cells(report, chosen.ram_resource)} | "
            f"{_cells(report, chosen.dsp_resource)} | {report['target_mhz']:g} | {fmax} | {path_text} | "
            f"{wrapper} | {took} |")


def _place_again(label: str, name: str, report: dict, seeds, place) -> list:
    """Place a design again with each of ``seeds`` other than ``SEED`` (``place(seed)`` returns
    (report, seconds)), printing each; ``[(label, name, [(seed, fmax), ...])]`` with seed 1's
    ``report`` first, or ``[]`` when no other seed was asked for."""
    spread = [(SEED, report["fmax_mhz"])]
    for seed in dict.fromkeys(s for s in seeds if s != SEED):
        again, seconds = place(seed)
        print(f"  {label} on {name}, seed {seed}: fmax {_mhz(again['fmax_mhz'])} MHz, "
              f"critical path {_path_text(again)} ({seconds:.0f} s)", flush=True)
        spread.append((seed, again["fmax_mhz"]))
    return [(label, name, spread)] if len(spread) > 1 else []


def implement_pe(config, top: str, name: str, seed: int = SEED, nextpnr_opts=()) -> tuple[dict, float]:
    from ssdfa.rtl.verilog import generate

    with tempfile.TemporaryDirectory(prefix="ssdfa-bench-") as scratch:
        (path,) = generate(config, scratch, tops=[top])
        started = time.perf_counter()
        report = implement(path, top, name, seed=seed, target_mhz=PE_TARGETS[name], wrapper="registered",
                           work_dir=scratch, nextpnr_opts=nextpnr_opts)
        return report.to_json(), time.perf_counter() - started


def implement_network(configs, learner: Learner, keep: Path | None, seed: int = SEED,
                      nextpnr_opts=()) -> tuple[dict, float]:
    """What ``ssdfa implement --network --hidden H [--pes P] --device D --target-mhz T --seed S
    [--nextpnr-opts O] [--out DIR]`` reports."""
    from ssdfa.rtl.network import NETWORK_TOP, generate_network

    def place(directory) -> tuple[dict, float]:
        path = generate_network(configs, directory, layer_counters=learner.layer_counters)
        started = time.perf_counter()
        report = implement(path, NETWORK_TOP, learner.device, seed=seed, target_mhz=learner.target_mhz,
                           work_dir=directory, nextpnr_opts=nextpnr_opts)
        return report.to_json(), time.perf_counter() - started

    if keep is not None:
        hidden = ",".join(map(str, learner.hidden))
        directory = keep / f"{hidden}_{'+'.join(map(str, learner.pes))}_{learner.device}"
        if seed != SEED:
            directory = directory.with_name(f"{directory.name}_seed{seed}")
        directory.mkdir(parents=True, exist_ok=True)
        return place(directory)
    with tempfile.TemporaryDirectory(prefix="ssdfa-bench-") as scratch:
        return place(scratch)


def measured_clocks_per_sample(learner: Learner, samples: int) -> float:
    """Clocks per training sample of the RTL learner under Verilator (``ssdfa cosim --network``'s
    job on the first ``samples`` digits samples), checked bit for bit against the model."""
    from ssdfa.sim.network_cosim import NetworkJob, run_network_cosim

    job = NetworkJob(hidden=learner.hidden, pes=learner.pes, train_limit=samples, test_limit=0)
    report = run_network_cosim(job, out=lambda line: None)
    if not report.passed:
        raise SystemExit(f"the {learner.hidden} learner's RTL differs from the model: its clock count does not count")
    return float(report.figures["cycles_per_sample"])


def model_samples_per_second(hidden: tuple[int, ...], samples: int) -> float:
    """Training samples per CPU second of the bit-exact model at batch 1 on digits."""
    from ssdfa.model.datasets import load_dataset
    from ssdfa.model.fixed_network import FixedNetwork
    from ssdfa.model.network import Algorithm, NetworkSpec
    from ssdfa.model.neuron_ops import ArithmeticConfig

    data = load_dataset("digits")
    spec = NetworkSpec((data.num_features, *hidden, data.num_classes), algorithm=Algorithm.SSDFA, seed=0,
                       balanced=True, feedback_gain=8.0)
    model = FixedNetwork(spec, ArithmeticConfig(seed=0))
    x = model.quantize_inputs(data.x_train[:samples]).astype(model.dtype)
    y = data.y_train[:samples]
    model.train_batch(x[:1], y[:1])  # warm-up: tables and the LFSR stream
    best = float("inf")
    for _ in range(3):  # the best of three passes: other jobs on the machine only add time
        started = time.process_time()
        for i in range(len(y)):
            model.train_batch(x[i : i + 1], y[i : i + 1])
        best = min(best, time.process_time() - started)
    return len(y) / best


def _label(sizes, pes) -> str:
    return f"learner {'-'.join(str(s) for s in sizes)} (PEs {'+'.join(str(p) for p in pes)})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("pe", "network"), help="run only the PE rows or only the learners")
    parser.add_argument("--learner", type=_learner, action="append", metavar="HIDDEN[/PES]:DEVICE",
                        help="a learner to place instead of the default ones (repeat for several)")
    parser.add_argument("--implemented", type=_implemented, action="append", metavar="FILE",
                        help="a learner's `ssdfa implement --network --json` report, used instead of placing it "
                             "(repeat for several; replaces the default learners)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each learner's files (Verilog, netlist, logs, nextpnr's report) in DIR")
    parser.add_argument("--counters", choices=("all", "network"), default="all",
                        help="the --learner learners' counters: all (default) or the network's own only, as the "
                             "board cores build them (ssdfa implement --counters)")
    parser.add_argument("--seeds", type=_seeds, default=(), metavar="S,S,...",
                        help="place each PE and learner again with these nextpnr seeds and print its fmax over all "
                             "seeds (min, median, max; the tables stay at seed 1): how much of a figure is placement")
    parser.add_argument("--nextpnr-opts", type=nextpnr_opts_argument, default=(), metavar="OPTIONS",
                        help="extra nextpnr options for every placement, as ssdfa implement --nextpnr-opts")
    parser.add_argument("--samples", type=int, default=200,
                        help="digits samples for the clocks-per-sample and model-speed measurements (default 200)")
    args = parser.parse_args(argv)

    tuned = f", nextpnr options {' '.join(args.nextpnr_opts)}" if args.nextpnr_opts else ""
    print(f"ssdfa implement, nextpnr seed {SEED}{tuned}; utilisation is used / available")
    print()
    print("| design | device | fits | logic cells | block RAMs | DSPs | target (MHz) | fmax (MHz) | critical path | "
          "pin wrapper | seconds |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    pe_reports = {}
    spreads = []  # (label, device, [(seed, fmax or None)])
    if args.only in (None, "pe"):
        learning = load_layer_config(PE_CONFIG)
        inference = dataclasses.replace(learning, learning=False)
        for name in PE_TARGETS:
            for label, config in (("PE 64x100/10 learning", learning), ("PE 64x100/10 inference-only", inference)):
                report, seconds = implement_pe(config, "neuron_pe", name, nextpnr_opts=args.nextpnr_opts)
                pe_reports[label, name] = report
                print(_row(label, report, seconds), flush=True)
                spreads += _place_again(label, name, report, args.seeds,
                                        lambda seed: implement_pe(config, "neuron_pe", name, seed=seed,
                                                                  nextpnr_opts=args.nextpnr_opts))
    learner_reports = []  # (label, Learner, report)
    if args.only in (None, "network"):
        for report in args.implemented or []:
            network = report["network"]
            learner = Learner(tuple(network["sizes"][1:-1]), tuple(network["pes"]), report["device"])
            label = _label(network["sizes"], network["pes"])
            learner_reports.append((label, learner, report))
            print(_row(label, report, None), flush=True)
        chosen = [dataclasses.replace(learner, layer_counters=args.counters == "all") for learner in args.learner or []]
        for learner in chosen or ([] if args.implemented else [Learner(*row) for row in LEARNERS]):
            configs = network_configs("digits", learner.hidden, pes=learner.pes)
            sizes = (configs[0].shape.fan_in, *learner.hidden, configs[-1].shape.neurons)
            # --nextpnr-opts, when given, places every row; otherwise a default row's own options.
            learner = dataclasses.replace(learner, pes=tuple(c.pes for c in configs),
                                          nextpnr_opts=args.nextpnr_opts or learner.nextpnr_opts)
            label = _label(sizes, learner.pes) + ("" if learner.layer_counters else ", network counters only")
            if learner.nextpnr_opts != args.nextpnr_opts:
                label += f", nextpnr {' '.join(learner.nextpnr_opts)}"
            report, seconds = implement_network(configs, learner, args.keep, nextpnr_opts=learner.nextpnr_opts)
            learner_reports.append((label, learner, report))
            print(_row(label, report, seconds), flush=True)
            spreads += _place_again(label, learner.device, report, args.seeds,
                                    lambda seed: implement_network(configs, learner, args.keep, seed=seed,
                                                                   nextpnr_opts=learner.nextpnr_opts))

    paths = [(label, report) for (label, _), report in pe_reports.items()] + [
        (label, report) for label, _, report in learner_reports]
    if any(report["critical_path"] for _, report in paths):
        print()
        print("Critical paths (start -> end):")
        for label, report in paths:
            if report["critical_path"]:
                path = report["critical_path"]
                print(f"  {label} on {report['device']}: {path['from']} -> {path['to']}")
    for label, name, spread in spreads:
        placed = sorted(f for _, f in spread if f is not None)
        seeds = ", ".join(f"{seed}: {_mhz(f)}" for seed, f in spread)
        print()
        print(f"Placement spread of the {label} on {name}, fmax (MHz) by nextpnr seed: {seeds}")
        if placed:
            print(f"  min {placed[0]:.2f}, median {statistics.median(placed):.2f}, max {placed[-1]:.2f} "
                  f"over {len(placed)} placements")
    if pe_reports:
        print()
        print("Logic cells of the learning PE against the inference-only PE (wrapper included in both):")
        for name in PE_TARGETS:
            logic = device(name).logic_resource
            with_learning = pe_reports["PE 64x100/10 learning", name]["utilisation"][logic]["used"]
            without = pe_reports["PE 64x100/10 inference-only", name]["utilisation"][logic]["used"]
            print(f"  {name}: {with_learning:,} against {without:,} {logic} ({with_learning / without:.2f}x)")
    if learner_reports:
        print()
        print(f"Training throughput: on chip (fmax / clocks per sample, clocks measured in RTL under Verilator on "
              f"{args.samples} digits samples) beside the bit-exact model of the same network on this CPU at batch 1, "
              f"measured in this run")
        print()
        print("| learner | device | fmax (MHz) | clocks per sample | on chip (samples/s) | model, batch 1 (samples/s) "
              "| on chip / model |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for label, learner, report in learner_reports:
            clocks = measured_clocks_per_sample(learner, args.samples)
            model_rate = model_samples_per_second(learner.hidden, args.samples)
            if report["fmax_mhz"] is None:
                print(f"| {label} | {report['device']} | - | {clocks:.1f} | does not fit | {model_rate:,.0f} | - |")
                continue
            chip_rate = report["fmax_mhz"] * 1e6 / clocks
            print(f"| {label} | {report['device']} | {report['fmax_mhz']:.2f} | {clocks:.1f} | {chip_rate:,.0f} | "
                  f"{model_rate:,.0f} | {chip_rate / model_rate:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    run_script(main)
