"""``ssdfa study SPEC.toml``: run a grid of training runs, resumably, on a Dask cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssdfa.study.leases import DEFAULT_LEASE_SECONDS

EXIT_INCOMPLETE = 1


#: The longest --connect-timeout or --lease-seconds: a day.
MAX_SECONDS = 86_400


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "study",
        help="run a grid of training runs (formats, rounding, algorithm, rank, ...) into a results database",
        description=(
            "Run every cell of a study spec that the results database does not hold yet, on a Dask "
            "LocalCluster (one single-threaded worker process per core) or an existing scheduler. "
            "Results are saved as each cell finishes, so an interrupted study resumes where it stopped."
        ),
    )
    parser.add_argument("spec", type=Path, metavar="SPEC.toml", help="the study specification (see docs/studies.md)")
    parser.add_argument("--db", type=Path, metavar="PATH", help="results database (default: SPEC's stem + .db, beside SPEC)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="use the running Dask scheduler at ADDRESS (e.g. tcp://host:8786)")
    parser.add_argument("--workers", type=int, metavar="N", help="LocalCluster worker processes (default: the cores available)")
    parser.add_argument(
        "--connect-timeout", type=float, default=5.0, metavar="SECONDS",
        help="how long to wait for --scheduler before giving up (default: 5)",
    )
    parser.add_argument(
        "--lease-seconds", type=float, default=DEFAULT_LEASE_SECONDS, metavar="SECONDS",
        help=(
            "runs sharing a database lease each cell they run; a lease not renewed for this long "
            f"(its run died) frees the cell for another run (default: {DEFAULT_LEASE_SECONDS:g})"
        ),
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override a spec value (TOML syntax), e.g. --set network.epochs=1; repeatable",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate the spec, list the cells and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssdfa.errors import SsdfaError
    from ssdfa.study.engine import run_study
    from ssdfa.study.spec import load_spec

    if args.workers is not None and args.workers < 1:
        raise SsdfaError(f"--workers must be a positive integer, not {args.workers}")
    # At most a day: longer waits overflow the timers below (and are never what was meant).
    if not 0 < args.connect_timeout <= MAX_SECONDS:
        raise SsdfaError(f"--connect-timeout must be a positive number of seconds up to {MAX_SECONDS:,}, "
                         f"not {args.connect_timeout}")
    if not 0 < args.lease_seconds <= MAX_SECONDS:
        raise SsdfaError(f"--lease-seconds must be a positive number of seconds up to {MAX_SECONDS:,}, "
                         f"not {args.lease_seconds}")
    spec = load_spec(args.spec, args.overrides)
    if spec.skipped:
        print(f"study {spec.name}: skipping {spec.skipped} combinations whose rank x connections is below the outputs")
    if args.dry_run:
        for cell in spec.cells:
            print(f"{cell.key[:12]}  {cell.label()}")
        print(f"{len(spec.cells)} cells")
        return 0
    db_path = args.db if args.db is not None else args.spec.with_suffix(".db")
    outcome = run_study(
        spec,
        db_path,
        scheduler=args.scheduler,
        workers=args.workers,
        connect_timeout=args.connect_timeout,
        progress=not args.no_progress,
        lease_seconds=args.lease_seconds,
    )
    print(
        f"study {spec.name}: {outcome.already_done + outcome.finished + outcome.by_others} of {outcome.cells} cells "
        f"finished ({outcome.finished} this run) in {db_path}"
    )
    return 0 if outcome.complete else EXIT_INCOMPLETE
