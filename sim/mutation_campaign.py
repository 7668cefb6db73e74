"""Mutation testing: run golden or fuzz sets against every mutant of their designs.

``run_mutants(jobs, ...)`` takes ordinary co-simulation jobs (one golden set on one top each),
finds each job's design, enumerates its mutants (:mod:`ssdfa.sim.mutants`), and runs every
mutant against every set of its design through the co-simulation harness itself
(``cosim.run_jobs``): each mutant is a renamed copy of the design, so many mutants share one
simulation and one build. A mutant is **killed** when any of its sets fails (a mismatch, a
timeout, a wrong check count), **killed by compile** when the simulator refuses it alone
(checked first, so that one broken mutant does not take a whole batch down), and **survives**
when every set passes. The unmutated designs run in the first batch as the control: a
campaign whose control fails reports that and counts nothing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ssdfa.errors import SsdfaError

from . import cosim
from .mutants import Mutant, enumerate_mutants, sample

__all__ = ["MutantOutcome", "DesignReport", "MutationReport", "run_mutants", "report_lines", "MUTANT_WATCHDOG"]

#: Clocks without progress before a harness gives a mutant up as hung (the DUT's longest
#: legitimate pause is a few clocks; the default watchdog of 100,000 would make every hung
#: mutant cost that many clocks of the whole batch).
MUTANT_WATCHDOG = 2_000


@dataclass
class MutantOutcome:
    """What happened to one mutant.

    Attributes
    ----------
    mutant : Mutant
    status : str
        ``killed``, ``killed-by-compile``, ``survived`` or ``error`` (the batch did not run).
    detail : str
        Killed: the set and its first mismatch; by compile: the compiler's first line.
    """

    mutant: Mutant
    status: str
    detail: str = ""

    def line(self) -> str:
        label = {"killed": "KILLED", "killed-by-compile": "KILLED-BY-COMPILE", "survived": "SURVIVED",
                 "error": "ERROR"}[self.status]
        text = f"{label} {self.mutant.id}: {self.mutant.description}"
        return text + (f"\n    {self.detail}" if self.detail else "")


@dataclass
class DesignReport:
    """The mutants of one design and their fate."""

    design: cosim.Design
    sets: list
    outcomes: list = field(default_factory=list)
    not_applicable: list = field(default_factory=list)
    equivalent: list = field(default_factory=list)
    enumerated: int = 0


@dataclass
class MutationReport:
    """A whole campaign: per design, and the totals."""

    designs: list
    control_passed: bool
    control_detail: str = ""

    def _count(self, *statuses) -> int:
        return sum(o.status in statuses for d in self.designs for o in d.outcomes)

    @property
    def applicable(self) -> int:
        return sum(len(d.outcomes) for d in self.designs)

    @property
    def killed(self) -> int:
        return self._count("killed", "killed-by-compile")

    @property
    def killed_by_compile(self) -> int:
        return self._count("killed-by-compile")

    @property
    def survivors(self) -> list:
        return [o for d in self.designs for o in d.outcomes if o.status == "survived"]

    @property
    def errors(self) -> int:
        return self._count("error")

    @property
    def kill_ratio(self) -> float:
        return self.killed / self.applicable if self.applicable else 0.0

    @property
    def passed(self) -> bool:
        """The control passed and every mutant run was killed."""
        return self.control_passed and self.killed == self.applicable and self.applicable > 0

    def summary(self) -> str:
        not_applicable = sum(len(d.not_applicable) for d in self.designs)
        equivalent = sum(len(d.equivalent) for d in self.designs)
        return (f"mutants: {self.killed}/{self.applicable} killed ({self.kill_ratio:.1%}; {self.killed_by_compile} "
                f"by compile), {len(self.survivors)} survived, {self.errors} not run; {not_applicable} not "
                f"applicable, {equivalent} equivalent (not run); {len(self.designs)} design(s)")


def _design_of(job: cosim.CosimJob, build_root) -> cosim.Design:
    if job.design is not None:
        return job.design
    return cosim.elaborate(job.top, job.golden.config, job.mutation, build_root=build_root)


def _mutant_design(design: cosim.Design, mutant: Mutant, number: int) -> cosim.Design:
    module = f"{design.module}_m{number}"
    text = cosim._rename_module(mutant.apply(design.verilog), design.module, module)
    return dataclasses.replace(design, module=module, verilog=text)


def _compile_check(design: cosim.Design, simulator: str) -> str | None:
    """None if the simulator accepts the design alone, else the first line of its complaint."""
    from .runner import compile_icarus, lint_verilog

    with tempfile.TemporaryDirectory(prefix="ssdfa-mutant-") as scratch:
        path = Path(scratch) / f"{design.module}.v"
        path.write_text(design.verilog)
        try:
            if simulator == "icarus":
                compile_icarus(path, design.module)
            else:
                lint_verilog(path, design.module)
        except SsdfaError as error:
            lines = [line for line in str(error).splitlines()[1:] if line.strip()] or [str(error)]
            return lines[0].replace(str(path), design.module + ".v")
    return None


def _batches(items: list, size_of: Callable, limit: int) -> list:
    """``items`` cut into consecutive batches of at most ``limit`` jobs (an item of more jobs
    than that makes a batch alone)."""
    batches, current, jobs = [], [], 0
    for item in items:
        size = size_of(item)
        if current and jobs + size > limit:
            batches.append(current)
            current, jobs = [], 0
        current.append(item)
        jobs += size
    if current:
        batches.append(current)
    return batches


def run_mutants(
    jobs: Sequence[cosim.CosimJob],
    *,
    simulator: str,
    count: int | None = None,
    seed: int = 0,
    kinds=None,
    batch: int = 64,
    hdl_clock: bool = False,
    quick_build: bool = False,
    watchdog: int = MUTANT_WATCHDOG,
    build_root=None,
    progress: Callable[[str], None] | None = None,
) -> MutationReport:
    """Run every mutant of the jobs' designs against the jobs' sets.

    Parameters
    ----------
    jobs : sequence of CosimJob
        The sets (golden or fuzz) and their tops; jobs on the same design share its mutants.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    count : int, optional
        Run a sample of ``count`` mutants per design, picked by ``seed`` (default: all).
    kinds : iterable of str, optional
        Only these mutant kinds (keys of ``mutants.KINDS``).
    batch : int
        Jobs (mutant x set) per simulation; each simulation is one build.
    hdl_clock, quick_build, watchdog, build_root
        As for ``cosim.run_jobs``.
    progress : callable, optional
        Called with a line after each batch.
    """
    from .runner import SimulationError

    if not jobs:
        raise SsdfaError("mutation testing needs at least one golden or fuzz set")
    say = progress or (lambda line: None)
    by_module: dict[str, DesignReport] = {}
    for job in jobs:
        design = _design_of(job, build_root)
        report = by_module.get(design.module)
        if report is None:
            report = by_module[design.module] = DesignReport(design, [])
        report.sets.append(job)
    work = []  # (DesignReport, mutant number, Mutant, mutant Design)
    number = 0
    for report in by_module.values():
        found = enumerate_mutants(report.design.verilog, kinds, report.design.config)
        report.not_applicable = list(found.not_applicable)
        report.equivalent = list(found.equivalent)
        report.enumerated = len(found.mutants)
        for mutant in sample(found.mutants, count, seed):
            work.append((report, number, mutant, _mutant_design(report.design, mutant, number)))
            number += 1

    runnable = []
    for report, index, mutant, design in work:
        failure = _compile_check(design, simulator)
        if failure is not None:
            report.outcomes.append(MutantOutcome(mutant, "killed-by-compile", failure))
        else:
            runnable.append((report, index, mutant, design))
    say(f"{len(work)} mutant(s) of {len(by_module)} design(s); {len(work) - len(runnable)} killed by compile; "
        f"running the rest in batches of up to {batch} jobs")

    control = [dataclasses.replace(job, design=_design_of(job, build_root)) for r in by_module.values() for job in r.sets]
    run_options = dict(simulator=simulator, hdl_clock=hdl_clock, quick_build=quick_build, watchdog=watchdog,
                       build_root=build_root)
    result = MutationReport(list(by_module.values()), control_passed=True)
    batches = _batches(runnable, lambda item: len(item[0].sets), batch) or [[]]
    for position, items in enumerate(batches):
        batch_jobs = list(control) if position == 0 else []
        owners = []
        for report, index, mutant, design in items:
            for job in report.sets:
                batch_jobs.append(dataclasses.replace(job, name=f"{job.name}@m{index}", design=design, mutation=None))
                owners.append((report, mutant, job.name))
        try:
            run = cosim.run_jobs(batch_jobs, **run_options)
        except SimulationError as error:
            first = str(error).splitlines()[0]
            if position == 0:
                result.control_passed, result.control_detail = False, f"the control run failed: {first}"
            for report, _, mutant, _ in items:
                report.outcomes.append(MutantOutcome(mutant, "error", first))
            say(f"batch {position + 1}/{len(batches)}: did not run: {first}")
            continue
        outcomes = run.outcomes
        if position == 0:
            failed = [o for o in outcomes[: len(control)] if not o.passed]
            if failed:
                result.control_passed = False
                result.control_detail = "the unmutated design failed: " + failed[0].summary().splitlines()[0]
            outcomes = outcomes[len(control):]
        verdicts: dict[str, MutantOutcome] = {}
        for (report, mutant, set_name), outcome in zip(owners, outcomes):
            verdict = verdicts.get(mutant.id + report.design.module)
            if verdict is None:
                verdict = verdicts[mutant.id + report.design.module] = MutantOutcome(mutant, "survived")
                report.outcomes.append(verdict)
            if not outcome.passed and verdict.status == "survived":
                verdict.status = "killed"
                first = outcome.first_mismatch
                reason = str(first) if first is not None else (outcome.summary().splitlines()[0])
                verdict.detail = f"by {set_name}: {reason}"
        say(f"batch {position + 1}/{len(batches)}: {len(items)} mutant(s), {len(batch_jobs)} job(s), "
            f"{run.cycles} cycles in {run.seconds:.1f} s")
    order = {mutant.id: i for i, (_, _, mutant, _) in enumerate(work)}
    for report in result.designs:
        report.outcomes.sort(key=lambda outcome: order.get(outcome.mutant.id, 0))
    return result


def report_lines(report: MutationReport) -> list:
    """The campaign's report: per design its sets, every mutant's fate, the entries that do not
    apply, and the totals; survivors are listed again at the end."""
    lines = []
    for design_report in report.designs:
        design = design_report.design
        sets = ", ".join(job.name for job in design_report.sets)
        run = len(design_report.outcomes)
        lines.append(f"design {design.module} (top {design.top}): {design_report.enumerated} mutant(s), {run} run; "
                     f"sets: {sets}")
        for outcome in design_report.outcomes:
            lines.append("  " + outcome.line().replace("\n", "\n  "))
        for entry in design_report.not_applicable:
            lines.append(f"  NOT-APPLICABLE {entry.id}: {entry.reason}")
        for entry in design_report.equivalent:
            lines.append(f"  EQUIVALENT {entry.id}: {entry.reason}")
    if not report.control_passed:
        lines.append(f"CONTROL FAILED: {report.control_detail}")
    for outcome in report.survivors:
        lines.append(f"survivor: {outcome.mutant.id}: {outcome.mutant.description}")
    lines.append(report.summary())
    return lines

