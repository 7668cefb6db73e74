"""What the directed corner cases buy: the kill ratio of the PE's mutants with golden sets whose
samples are steered onto corner cases (``generate_layer_set``, as shipped) and with the same
configurations and sample counts drawn at random only (``draw_stimulus``, no steering).

By default it uses the five canonical configurations with their sample counts; ``--config``
and ``--samples`` measure one other layer instead (for example the paper-sized hidden layer,
``configs/ssdfa_64x100_10pe.toml``). Every mutant of each design runs against its set through
the co-simulation harness (``sim/mutation_campaign.py``), on the PE top. Run:
``python benchmarks/bench_mutants_directed.py [--sim icarus] [--config FILE --samples S]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ssdfa.cli import run_script
from ssdfa.golden.format import GoldenSet, canonical_set_dirs
from ssdfa.golden.layer_vectors import GENERATOR, draw_stimulus, generate_layer_set, simulate_layer
from ssdfa.model.layer_config import load_layer_config
from ssdfa.sim.cosim import CosimJob
from ssdfa.sim.mutation_campaign import run_mutants


def _random_set(config, samples: int, full_weights: bool) -> GoldenSet:
    """The set as generator version 1 made it: the drawn stimulus, not steered."""
    arrays = simulate_layer(config, draw_stimulus(config, samples), full_weights=full_weights)
    return GoldenSet(kind="layer", config=config, parameters={"samples": samples, "full_weights": full_weights},
                     arrays=arrays, generator=dict(GENERATOR, version=1))


def _cases(args) -> list:
    if args.config is not None:
        return [(args.config.stem, load_layer_config(args.config), args.samples, False)]
    cases = []
    for directory in canonical_set_dirs():
        parameters = json.loads((directory / "manifest.json").read_text())["parameters"]
        cases.append((directory.name, load_layer_config(directory / "config.toml"), parameters["samples"],
                      parameters["full_weights"]))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", default="icarus", choices=("icarus", "verilator"))
    parser.add_argument("--config", type=Path, help="one layer configuration instead of the canonical ones")
    parser.add_argument("--samples", type=int, default=8, help="with --config: samples of its sets (default 8)")
    args = parser.parse_args()
    cases = _cases(args)
    for label, make in (("directed", lambda c, s, f: generate_layer_set(c, s, full_weights=f)),
                        ("random only", _random_set)):
        jobs = [CosimJob(name, make(config, samples, full), top="pe") for name, config, samples, full in cases]
        started = time.perf_counter()
        report = run_mutants(jobs, simulator=args.sim, hdl_clock=True, batch=64)
        seconds = time.perf_counter() - started
        checks = ", ".join(f"{job.name}: {job.golden.parameters['samples']} samples" for job in jobs)
        print(f"{label}: {report.summary()}  [{seconds:.0f} s; {checks}]")
        for outcome in report.survivors:
            print(f"  survivor: {outcome.mutant.description}")


if __name__ == "__main__":
    run_script(main)
