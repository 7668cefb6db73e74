"""``ssdfa report DB --out DIR``: CSV and Markdown tables and PNG figures of a study database."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="tables and figures of a study database (accuracy vs width, area, rank and sparsity)",
        description=(
            "Write CSV and Markdown tables and PNG figures of a study database: accuracy against word "
            "width per rounding mode, against PE area with the Pareto front (needs Yosys), and accuracy "
            "and angle against the rank of B by sparsity. The same database gives the same files."
        ),
    )
    parser.add_argument("db", type=Path, metavar="DB", help="a study database written by `ssdfa study`")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the report (created)")
    parser.add_argument(
        "--neurons-per-pe", type=int, default=1, metavar="K",
        help="neurons time-multiplexed on the PE whose area is estimated (default: 1)",
    )
    parser.add_argument("--no-area", action="store_true", help="leave out the area figure (no synthesis)")
    parser.add_argument(
        "--spec", type=Path, metavar="SPEC.toml",
        help="report only the cells of this study spec (the database may hold other studies' cells)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="with --spec: the overrides the study ran with; repeatable",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssdfa.errors import SsdfaError
    from ssdfa.study.area import AreaEstimator
    from ssdfa.study.report import write_report

    if args.neurons_per_pe < 1:
        raise SsdfaError(f"--neurons-per-pe must be a positive integer, not {args.neurons_per_pe}")
    if args.overrides and args.spec is None:
        raise SsdfaError("--set applies to --spec; give the spec the study ran")
    keys = None
    if args.spec is not None:
        from ssdfa.study.spec import load_spec

        keys = {cell.key for cell in load_spec(args.spec, args.overrides).cells}
    from ssdfa.user_files import directory_kept_on_success, output_directory

    output_directory(args.out, "--out", create=False)
    estimator = AreaEstimator(neurons_per_pe=args.neurons_per_pe, disabled=args.no_area)
    with directory_kept_on_success(args.out, "--out"):  # an interrupted first report leaves no folder
        result = write_report(args.db, args.out, area=estimator, keys=keys)
    for path in result.files:
        print(path)
    for note in result.notes:
        print(f"note: {note}")
    return 0
