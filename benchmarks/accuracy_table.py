"""The accuracy table of docs/model.md: ``ssdfa train`` configurations, mean over seeds.

Each row is a list of ``ssdfa train`` arguments; every seed runs exactly what that command runs
(the same parser, defaults and training loop), with ``--seed`` set. The table reports the test
accuracy of the final weights (mean, standard deviation, range) and the validation accuracy,
which is what the defaults were chosen on. Run:

    python benchmarks/accuracy_table.py                 # digits, 64-100-10, seeds 0-4
    python benchmarks/accuracy_table.py --seeds 3 --rows "float BP" "fixed SSDFA, 16-bit, STOCH"
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ssdfa.cli import build_parser, run_script
from ssdfa.cli._argtypes import positive_int
from ssdfa.cli.train import build_request, load_data, prepare, resolve_defaults
from ssdfa.errors import SsdfaError
from ssdfa.model.training import train

#: 8-bit weights: SQ(1,7) (|W| < 1 throughout), learning rate 2^-5 and 40 epochs, chosen on the
#: validation split (shift 4 and 6, SQ(2,6), gains and 20 epochs were worse there).
EIGHT_BIT = ["--weight-format", "SQ(1,7)", "--shift", "5", "--epochs", "40"]

#: (label, ssdfa train arguments). Defaults: digits, 64-100-10 relu, 20 epochs, batch 1, squared
#: error, balanced feedback with gain 8; float lr 2^-4; fixed 16-bit formats, shift 4 (the rule's
#: values for digits' 64 inputs, docs/model.md section 1.1).
ROWS = [
    ("float BP", ["--algo", "bp"]),
    ("float DFA", ["--algo", "dfa"]),
    ("float SSDFA", ["--algo", "ssdfa"]),
    ("fixed BP, 16-bit, STOCH", ["--algo", "bp", "--fixed"]),
    ("fixed SSDFA, 16-bit, STOCH", ["--algo", "ssdfa", "--fixed"]),
    ("fixed SSDFA, 16-bit, RND", ["--algo", "ssdfa", "--fixed", "--update-rounding", "RND"]),
    ("fixed SSDFA, 8-bit weights, STOCH", ["--algo", "ssdfa", "--fixed", *EIGHT_BIT]),
    ("fixed SSDFA, 8-bit weights, RND", ["--algo", "ssdfa", "--fixed", *EIGHT_BIT, "--update-rounding", "RND"]),
]


def run_row(arguments: list, seeds: range, common: list) -> dict:
    parser = build_parser()
    tests, vals, seconds, diverged = [], [], 0.0, 0
    for seed in seeds:
        args = parser.parse_args(["train", *common, *arguments, "--seed", str(seed)])
        request = build_request(args)
        dataset = load_data(request)
        request = resolve_defaults(request, dataset.num_features)
        spec = prepare(request, dataset)
        result = train(spec, dataset, config=request.config, options=request.options)
        seconds += result.seconds
        if result.diverged:  # no accuracy to average: the row says how many seeds diverged
            diverged += 1
            continue
        tests.append(result.test_accuracy)
        vals.append(result.val_accuracy)
    return {"test": np.array(tests), "val": np.array(vals), "seconds": seconds, "diverged": diverged}


def main() -> None:
    parser = argparse.ArgumentParser(description="Accuracy table: ssdfa train configurations over seeds.")
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds 0 .. N-1 (default 5)")
    parser.add_argument("--rows", nargs="+", default=None, help="labels of the rows to run (default all)")
    parser.add_argument("common", nargs=argparse.REMAINDER, help="arguments added to every row (after --)")
    args = parser.parse_args()
    common = [a for a in args.common if a != "--"]
    unknown = sorted(set(args.rows or ()) - {row[0] for row in ROWS})
    if unknown:
        raise SsdfaError(f"--rows: no row {unknown[0]!r}; the rows are " + "; ".join(repr(row[0]) for row in ROWS))
    rows = [row for row in ROWS if args.rows is None or row[0] in args.rows]
    seeds = range(args.seeds)
    started = time.perf_counter()
    print(f"Test accuracy of the final weights, mean over seeds {seeds.start}-{seeds.stop - 1}; "
          f"common arguments: {' '.join(common) or '(defaults)'}")
    print()
    print("| configuration | `ssdfa train` arguments | test accuracy (mean ± std) | test min-max | validation mean |")
    print("| --- | --- | --- | --- | --- |")
    for label, arguments in rows:
        outcome = run_row(arguments, seeds, common)
        test, val = 100 * outcome["test"], 100 * outcome["val"]
        if outcome["diverged"]:
            print(f"| {label} | `{' '.join(arguments)}` | diverged with {outcome['diverged']} of {len(seeds)} "
                  f"seeds; {len(test)} finished | | |", flush=True)
            continue
        print(
            f"| {label} | `{' '.join(arguments)}` | {test.mean():.2f}% ± {test.std():.2f} | "
            f"{test.min():.2f}-{test.max():.2f}% | {val.mean():.2f}% |",
            flush=True,
        )
    print()
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    run_script(main)
