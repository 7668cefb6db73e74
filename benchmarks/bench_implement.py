"""Place and route of the PE and of whole learners on iCE40 and ECP5: utilisation, fmax, throughput.

Every row is ``ssdfa implement`` (Yosys 0.23, nextpnr 0.11 from the yowasp wheels, nextpnr seed
1, placement and routing aimed at 50 MHz) of:

- the PE of configs/ssdfa_64x100_10pe.toml (fan-in 64, 10 neurons per PE, 16-bit words), learning
  and inference-only (``learning = false``), on ice40-up5k and ecp5-45f;
- the demo's whole learner, 64-32-10 (PEs 4+2), on ice40-up5k;
- the paper-sized learner, 64-100-10 (PEs 20+2: at most 8 neurons per PE), on ecp5-45f.

For the learners it then prints the training throughput on chip, fmax / clocks per training
sample, where the clocks per sample are measured by training the same RTL under Verilator on
the first digits samples (bit for bit against the model: a run that differs stops the table),
beside the bit-exact model's own training throughput on this CPU at batch 1 (CPU time,
single-threaded BLAS), measured in the same run.

A PE takes about a minute per device, a learner many minutes (``--only pe`` or ``--only
network`` runs one part; ``--learner 32:ecp5-45f`` places other learners). Run:
``python benchmarks/bench_implement.py``.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from ssdfa.cli.implement import network_configs  # noqa: E402
from ssdfa.errors import SsdfaError  # noqa: E402
from ssdfa.model.layer_config import load_layer_config  # noqa: E402
from ssdfa.rtl.devices import device  # noqa: E402
from ssdfa.rtl.implement import implement  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PE_CONFIG = ROOT / "configs" / "ssdfa_64x100_10pe.toml"
SEED = 1
PE_DEVICES = ("ice40-up5k", "ecp5-45f")
LEARNERS = (((32,), None, "ice40-up5k"), ((100,), None, "ecp5-45f"))


def _learner(text: str) -> tuple[tuple[int, ...], tuple[int, ...] | None, str]:
    """``HIDDEN[/PES]:DEVICE``, e.g. ``32:ecp5-45f``, ``64,32:ecp5-85f`` or ``32/1,1:ice40-up5k``."""
    shape, _, name = text.partition(":")
    hidden, _, pes = shape.partition("/")
    try:
        sizes = tuple(int(part) for part in hidden.split(","))
        counts = tuple(int(part) for part in pes.split(",")) if pes else None
        device(name)
    except (ValueError, SsdfaError):
        raise argparse.ArgumentTypeError(f"expected HIDDEN[/PES]:DEVICE such as 32:ecp5-45f or 32/1,1:ice40-up5k, "
                                         f"not {text!r}") from None
    return sizes, counts, name


def _cells(report, name: str) -> str:
    if not name or name not in report.utilisation:
        return "-"
    used, available = report.utilisation[name]
    return f"{used:,} / {available:,}"


def _row(label: str, report, seconds: float) -> str:
    chosen = device(report.device)
    fmax = f"{report.fmax_mhz:.2f}" if report.fmax_mhz is not None else "-"
    path = report.critical_path
    path_text = f"{path.ns:.1f} ns, {path.logic_levels} levels" if path else "-"
    return (f"| {label} | {report.device} | {'yes' if report.fits else 'NO'} | "
            f"{_cells(report, chosen.logic_resource)} | {_cells(report, chosen.ram_resource)} | "
            f"{_cells(report, chosen.dsp_resource)} | {fmax} | {path_text} | "
            f"{'yes' if report.wrapper else 'no'} | {seconds:.0f} |")


def implement_pe(config, top: str, name: str):
    from ssdfa.rtl.verilog import generate

    with tempfile.TemporaryDirectory(prefix="ssdfa-bench-") as scratch:
        (path,) = generate(config, scratch, tops=[top])
        started = time.perf_counter()
        report = implement(path, top, name, seed=SEED, work_dir=scratch)
        return report, time.perf_counter() - started


def implement_network(configs, name: str, layer_counters: bool = True):
    from ssdfa.rtl.network import NETWORK_TOP, generate_network

    with tempfile.TemporaryDirectory(prefix="ssdfa-bench-") as scratch:
        path = generate_network(configs, scratch, layer_counters=layer_counters)
        started = time.perf_counter()
        report = implement(path, NETWORK_TOP, name, seed=SEED, work_dir=scratch)
        return report, time.perf_counter() - started


def measured_clocks_per_sample(hidden: tuple[int, ...], samples: int, pes=None) -> float:
    """Clocks per training sample of the RTL learner under Verilator (``ssdfa cosim --network``'s
    job on the first ``samples`` digits samples), checked bit for bit against the model."""
    from ssdfa.sim.network_cosim import NetworkJob, run_network_cosim

    job = NetworkJob(hidden=hidden, pes=pes, train_limit=samples, test_limit=0)
    report = run_network_cosim(job, out=lambda line: None)
    if not report.passed:
        raise SystemExit(f"the {hidden} learner's RTL differs from the model: its clock count does not count")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("pe", "network"), help="run only the PE rows or only the learners")
    parser.add_argument("--learner", type=_learner, action="append", metavar="HIDDEN[/PES]:DEVICE",
                        help="a learner to place instead of the default ones (repeat for several)")
    parser.add_argument("--counters", choices=("all", "network"), default="all",
                        help="the learners' counters: all (default) or the network's own only, as the board "
                             "cores build them (ssdfa implement --counters)")
    parser.add_argument("--samples", type=int, default=200,
                        help="digits samples for the clocks-per-sample and model-speed measurements (default 200)")
    args = parser.parse_args(argv)

    print(f"ssdfa implement, nextpnr seed {SEED}, aiming at 50 MHz; utilisation is used / available")
    print()
    print("| design | device | fits | logic cells | block RAMs | DSPs | fmax (MHz) | critical path | "
          "pin wrapper | seconds |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    pe_reports = {}
    if args.only in (None, "pe"):
        learning = load_layer_config(PE_CONFIG)
        inference = dataclasses.replace(learning, learning=False)
        for name in PE_DEVICES:
            for label, config in (("PE 64x100/10 learning", learning), ("PE 64x100/10 inference-only", inference)):
                report, seconds = implement_pe(config, "neuron_pe", name)
                pe_reports[label, name] = report
                print(_row(label, report, seconds), flush=True)
    learner_reports = []
    if args.only in (None, "network"):
        for hidden, pes, name in args.learner or LEARNERS:
            configs = network_configs("digits", hidden, pes=pes)
            sizes = "-".join(str(s) for s in (configs[0].shape.fan_in, *hidden, configs[-1].shape.neurons))
            label = f"learner {sizes} (PEs {'+'.join(str(c.pes) for c in configs)})"
            if args.counters == "network":
                label += ", network counters only"
            report, seconds = implement_network(configs, name, layer_counters=args.counters == "all")
            learner_reports.append((label, hidden, pes, report))
            print(_row(label, report, seconds), flush=True)

    paths = [(label, report) for (label, _), report in pe_reports.items()] + [
        (label, report) for label, _, _, report in learner_reports]
    if any(report.critical_path for _, report in paths):
        print()
        print("Critical paths (start -> end):")
        for label, report in paths:
            if report.critical_path:
                path = report.critical_path
                print(f"  {label} on {report.device}: {path.start} -> {path.end}")
    if pe_reports:
        print()
        print("Logic cells of the learning PE against the inference-only PE:")
        for name in PE_DEVICES:
            logic = device(name).logic_resource
            with_learning = pe_reports["PE 64x100/10 learning", name].utilisation[logic][0]
            without = pe_reports["PE 64x100/10 inference-only", name].utilisation[logic][0]
            print(f"  {name}: {with_learning:,} against {without:,} {logic} ({with_learning / without:.2f}x)")
    if learner_reports:
        print()
        print(f"Training throughput: on chip (fmax / clocks per sample, clocks measured in RTL under Verilator on "
              f"{args.samples} digits samples) beside the bit-exact model on this CPU at batch 1")
        print()
        print("| learner | device | fmax (MHz) | clocks per sample | on chip (samples/s) | model, batch 1 (samples/s) "
              "| on chip / model |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for label, hidden, pes, report in learner_reports:
            clocks = measured_clocks_per_sample(hidden, args.samples, pes)
            model_rate = model_samples_per_second(hidden, args.samples)
            if report.fmax_mhz is None:
                print(f"| {label} | {report.device} | - | {clocks:.1f} | does not fit | {model_rate:,.0f} | - |")
                continue
            chip_rate = report.fmax_mhz * 1e6 / clocks
            print(f"| {label} | {report.device} | {report.fmax_mhz:.2f} | {clocks:.1f} | {chip_rate:,.0f} | "
                  f"{model_rate:,.0f} | {chip_rate / model_rate:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
