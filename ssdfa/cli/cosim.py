"""``ssdfa cosim``: golden sets through the generated Verilog on Icarus or Verilator (docs/cosim.md)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ._argtypes import natural_int, positive_int

HELP = "co-simulate golden sets (or random configurations) against the generated Verilog"

DESCRIPTION = """\
Run the layer, its PEs or its router, generated as Verilog, through golden sets on Icarus
Verilog or Verilator, and compare every output bit for bit with the reference model's values.
With --golden DIR it runs the given set(s); with --fuzz N it draws N random configurations and
vector sets from --seed K. --verilog FILE.v runs the sets against a Verilog file you supply
(its ports are checked first) instead of the generated design. --mutants runs the sets against
every mutant of the generated design (docs/cosim.md) and reports the kill ratio and every
survivor. Exit status: 0 when every check passed, 1 on a mismatch (or a DUT
that does not build or hangs), 2 on bad input (a corrupted golden set, a bad option)."""

EXIT_PASS, EXIT_MISMATCH = 0, 1


def _stall(text: str) -> int:
    value = natural_int(text)
    if value > 255:
        raise argparse.ArgumentTypeError(f"expected 0..255 (a probability in 256ths), not {value}")
    return value


def register(subparsers) -> None:
    from ssdfa.sim.golden_drive import TOPS
    from ssdfa.sim.mutants import KINDS
    from ssdfa.sim.runner import SIMULATORS

    parser = subparsers.add_parser("cosim", help=HELP, description=DESCRIPTION)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--golden", type=Path, action="append", metavar="DIR",
                        help="a golden set directory (repeat to run several sets in one simulation)")
    source.add_argument("--fuzz", type=positive_int, metavar="N", help="draw N random configurations and vector sets")
    source.add_argument("--network", action="store_true",
                        help="train the whole SSDFA network in RTL against the model (docs/network.md)")
    parser.add_argument("--sim", required=True, choices=SIMULATORS, help="the simulator")
    parser.add_argument("--top", choices=TOPS, default="layer",
                        help="the DUT: the whole layer (default), its PEs one at a time, or its error router")
    parser.add_argument("--waves", action="store_true",
                        help="record waves (Icarus: FST, Verilator: VCD) and print where they are")
    parser.add_argument("--check", choices=("every", "final"), default="every",
                        help="read the whole state (deltas, f', LFSR states, every weight) back after every "
                             "sample (default), or run samples back to back and read it back after the last")
    parser.add_argument("--stall", type=_stall, default=0, metavar="L",
                        help="0..255: chance (in 256ths) of an idle clock before each input word and of a "
                             "low ready on each output stream (default 0)")
    parser.add_argument("--seed", type=natural_int, default=1, metavar="K",
                        help="--fuzz: the campaign seed (default 1); also seeds --stall")
    parser.add_argument("--samples", type=positive_int, default=16, metavar="S",
                        help="--fuzz: samples per configuration (default 16)")
    parser.add_argument("--first", type=natural_int, default=0, metavar="I",
                        help="--fuzz: start at configuration I of the seed's sequence (to replay one)")
    parser.add_argument("--batch", type=positive_int, default=8, metavar="B",
                        help="--fuzz: configurations per simulation (one build each; default 8)")
    parser.add_argument("--mutate", choices=("swap-rounding", "swap-update-rounding"),
                        help="elaborate a deliberately broken DUT (one rounding mode swapped); the run must fail")
    parser.add_argument("--verilog", type=Path, metavar="FILE.v",
                        help="verify this Verilog file (the --top module, with the generated ports) instead of the "
                             "generated design")
    parser.add_argument("--mutants", action="store_true",
                        help="run the sets against every mutant of the generated design; report the kill ratio "
                             "and every survivor (exit 1 if any survives)")
    parser.add_argument("--mutant-sample", type=positive_int, metavar="N",
                        help="--mutants: only N mutants per design, picked by --seed")
    parser.add_argument("--mutant-kind", action="append", choices=list(KINDS), metavar="KIND",
                        help="--mutants: only this kind (repeat for several): " + ", ".join(KINDS))
    parser.add_argument("--mutant-batch", type=positive_int, default=64, metavar="B",
                        help="--mutants: jobs (mutant x set) per simulation, one build each (default 64)")
    parser.add_argument("--hdl-clock", action="store_true",
                        help="let the top make its own clock instead of cocotb (faster: no callback per edge)")
    parser.add_argument("--quick-build", action="store_true",
                        help="Verilator: compile the model without optimisation (faster build, slower run)")
    parser.add_argument("--bus", choices=("axi",),
                        help="--network: train through the standard-bus wrapper (AXI4-Lite, AXI4-Stream) with "
                             "cocotbext-axi's bus models; --stall L pauses every channel with chance L/256 "
                             "(docs/bus.md)")
    parser.add_argument("--work-dir", type=Path, metavar="DIR",
                        help="keep the harness files (stimulus, expected values, results) in DIR")
    from ssdfa.sim.network_cosim import add_network_arguments

    add_network_arguments(parser)
    parser.set_defaults(func=run)


#: The largest layer ``--fuzz`` draws (sim/cosim.py ``draw_config``): fan-in, neurons, outputs.
_FUZZ_LARGEST = (40, 16, 10)


def _check_sizes(args: argparse.Namespace) -> None:
    """Refuse sizes that cannot fit in memory before anything is built."""
    from ssdfa.model.memory_budget import golden_set_bytes, require_memory, training_bytes
    from ssdfa.user_files import output_directory

    if args.work_dir is not None:
        output_directory(args.work_dir, "--work-dir", create=False)
    if args.network:
        from ssdfa.sim.network_cosim import job_from_args

        hidden = job_from_args(args).hidden
        # The input and class counts are known once the data are read; one and two are a floor.
        require_memory(training_bytes([1, *hidden, 2]), f"--hidden {args.hidden}")
    elif args.fuzz is not None:
        per_job = golden_set_bytes(*_FUZZ_LARGEST, args.samples)
        require_memory(min(args.batch, args.fuzz) * per_job, f"--samples {args.samples} with --batch {args.batch}")


def _check_combinations(args: argparse.Namespace) -> None:
    from ssdfa.errors import SsdfaError

    if args.verilog is not None and args.golden is None:
        raise SsdfaError("--verilog needs --golden DIR: the golden sets to verify the file against")
    if args.verilog is not None and (args.mutants or args.mutate):
        raise SsdfaError("--verilog cannot be combined with --mutants or --mutate: they mutate the generated design")
    if args.mutants and args.network:
        raise SsdfaError("--mutants works with --golden or --fuzz, not --network")
    if not args.mutants and (args.mutant_sample is not None or args.mutant_kind):
        raise SsdfaError("--mutant-sample and --mutant-kind need --mutants")
    if args.bus and not args.network:
        raise SsdfaError(f"--bus {args.bus} applies to --network")
    if args.network and args.top != "layer":
        raise SsdfaError(f"--top {args.top} applies to --golden or --fuzz; --network co-simulates the whole learner")
    if not args.network:
        from ssdfa.sim.network_cosim import network_options

        # Options of --network that a layer co-simulation would ignore: refused instead.
        for names, settings in network_options():
            name = names[0]
            if name in ("--seed",):
                continue  # the layer co-simulation's own
            if getattr(args, name[2:].replace("-", "_"), None) != settings.get("default"):
                raise SsdfaError(f"{name} applies to --network")


def run(args: argparse.Namespace) -> int:
    _check_combinations(args)
    _check_sizes(args)
    if args.network and args.bus:
        from ssdfa.sim.axi_cosim import run_bus_from_args

        return run_bus_from_args(args)
    if args.network:
        from ssdfa.sim.network_cosim import run_from_args

        return run_from_args(args)
    if args.fuzz is not None:
        return _run_fuzz(args)
    return _run_golden(args)


def _job_options(args) -> dict:
    return {"top": args.top, "mutation": args.mutate, "every": args.check == "every", "stall": args.stall,
            "stall_seed": args.seed}


def _run_golden(args: argparse.Namespace) -> int:
    # Imported here so that `ssdfa --help` stays fast.
    from ssdfa.golden.format import read_golden_set
    from ssdfa.sim.cosim import CosimJob, config_line

    jobs = []
    names = set()
    for directory in args.golden:
        golden = read_golden_set(directory)  # refuses a corrupted set, naming the file and problem
        name = directory.resolve().name
        while name in names:
            name += "'"
        names.add(name)
        print(f"golden set {directory}: {config_line(golden.config)}; {golden.parameters['samples']} samples")
        jobs.append(CosimJob(name, golden, **_job_options(args)))
    if args.verilog is not None:
        from ssdfa.sim.cosim import user_design

        # Every set must fit the file: its ports are checked against each set's generated design.
        jobs = [dataclasses.replace(job, design=user_design(args.verilog, args.top, job.golden.config))
                for job in jobs]
        print(f"verilog {args.verilog}: module {jobs[0].design.module}, ports match the generated {args.top} top")
    if args.mutants:
        return _run_mutants(jobs, args)
    return _report([jobs], args, label="golden")


def _run_mutants(jobs, args: argparse.Namespace) -> int:
    from ssdfa.sim.mutation_campaign import report_lines, run_mutants

    report = run_mutants(jobs, simulator=args.sim, count=args.mutant_sample, seed=args.seed, kinds=args.mutant_kind,
                         batch=args.mutant_batch, hdl_clock=args.hdl_clock, quick_build=args.quick_build,
                         progress=lambda line: print(line, flush=True))
    for line in report_lines(report):
        print(line)
    return EXIT_PASS if report.passed else EXIT_MISMATCH


def _run_fuzz(args: argparse.Namespace) -> int:
    from ssdfa.sim.cosim import config_line, fuzz_jobs

    print(f"fuzz: seed {args.seed}, {args.fuzz} configurations from #{args.first}, {args.samples} samples each, "
          f"top {args.top}, {args.sim}; replay configuration I with "
          f"--fuzz 1 --seed {args.seed} --first I --samples {args.samples}")

    def batches():
        for start in range(args.first, args.first + args.fuzz, args.batch):
            count = min(args.batch, args.first + args.fuzz - start)
            jobs = fuzz_jobs(count, args.seed, samples=args.samples, top=args.top, start=start,
                             every=args.check == "every", stall=args.stall)
            if args.mutate:
                jobs = [dataclasses.replace(job, mutation=args.mutate) for job in jobs]
            for index, job in enumerate(jobs, start):
                print(f"config #{index} ({job.name}): {config_line(job.golden.config)}", flush=True)
            yield jobs

    if args.mutants:
        return _run_mutants([job for jobs in batches() for job in jobs], args)
    return _report(batches(), args, label=f"fuzz seed {args.seed}")


def _report(batches, args, *, label: str) -> int:
    from ssdfa.sim.cosim import run_jobs
    from ssdfa.sim.runner import SimulationError

    totals = {"jobs": 0, "passed": 0, "vectors": 0, "checks": 0, "mismatches": 0, "cycles": 0, "seconds": 0.0,
              "cpu": 0.0}
    failed = False
    for number, jobs in enumerate(batches, 1):
        try:
            run = run_jobs(jobs, simulator=args.sim, waves=args.waves, hdl_clock=args.hdl_clock,
                           quick_build=args.quick_build, work_dir=args.work_dir / f"run{number}" if args.work_dir else None)
        except SimulationError as error:
            # A DUT that does not compile fails verification; it is not bad input.
            print(f"FAIL: {error}")
            failed = True
            continue
        build = run.build
        built = f"built in {build.seconds:.1f} s" if build.rebuilt else "reused the cached build"
        print(f"{args.sim}: {len(jobs)} job(s) in one design; {built} ({build.directory})")
        for outcome in run.outcomes:
            print(outcome.summary())
            totals["jobs"] += 1
            totals["passed"] += outcome.passed
            totals["vectors"] += outcome.vectors
            totals["checks"] += outcome.result.checks
            totals["mismatches"] += outcome.result.mismatch_count
            failed |= not outcome.passed
        totals["cycles"] += run.cycles
        totals["seconds"] += run.seconds
        totals["cpu"] += run.cpu_seconds
        if run.wave_file is not None:
            print(f"waves: {run.wave_file}")
        if not run.sim.ok and all(outcome.passed for outcome in run.outcomes):
            print(f"FAIL: the testbench failed although every harness passed; log {run.sim.log_file}")
            failed = True
    rate = totals["cycles"] / totals["seconds"] if totals["seconds"] > 0 else 0.0
    cpu_rate = totals["cycles"] / totals["cpu"] if totals["cpu"] > 0 else 0.0
    status = "FAIL" if failed else "PASS"
    print(f"{status} ({label}, {args.sim}, top {args.top}): {totals['passed']}/{totals['jobs']} passed, "
          f"{totals['vectors']} vectors, {totals['checks']} checks, {totals['mismatches']} mismatches; "
          f"{totals['cycles']} cycles in {totals['seconds']:.2f} s ({rate:,.0f} cycles/s; "
          f"{cpu_rate:,.0f} cycles per CPU second)")
    return EXIT_MISMATCH if failed else EXIT_PASS
