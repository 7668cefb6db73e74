"""The whole learner in RTL: train an SSDFA network on a dataset in simulation, bit for bit
against the reference model, and print what the hardware measured (docs/network.md).

``run_network_cosim(job)`` trains ``FixedNetwork`` (the model) and ``SSDFANetwork`` (the RTL,
under Icarus Verilog or Verilator) from the same initial state on the same samples in the same
order, then compares every weight, every training-time prediction and every test prediction,
and reports accuracy, clocks per sample against the schedule's analytical minimum, MAC
utilisation, simulation speed, the hardware counters against the cost model's counts
(model/costs.py), and the paper's Table 1 comparison with BP and DFA.

The simulation touches the design only at run boundaries: the ``network_stream`` harness
(sim/harness/network_stream.v) plays the samples and labels from files and records the
predictions; the cocotb testbench (:mod:`ssdfa.sim.tb_network`) loads the state through the
host port, starts each run (an epoch, then the test set) and reads the results back.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.model.layer_config import LayerConfig
from ssdfa.user_files import write_atomically

from .network_driver import MODE, NetworkDriver, NetworkState

__all__ = [
    "TOPLEVEL",
    "TB_MODULE",
    "HARNESS",
    "VERILATOR_BUILD_ARGS",
    "NetworkJob",
    "RunRequest",
    "SimulatedNetwork",
    "NetworkReport",
    "NetworkSimulationFailed",
    "network_design",
    "simulate_network",
    "model_reference",
    "hardware_costs",
    "run_network_cosim",
    "add_network_arguments",
    "int_list",
    "job_from_args",
    "run_from_args",
    "run_demo_rtl_steps",
    "rtl_demo_step",
]

TOPLEVEL = "network_top"
TB_MODULE = "ssdfa.sim.tb_network"
HARNESS = Path(__file__).resolve().parent / "harness" / "network_stream.v"
#: ``--output-split 0`` keeps Verilator's model in one C++ file, which builds with less CPU
#: and wall time than the split files of this design (39 s against 45 s of CPU, measured) and
#: needs no precompiled header (the wheel's ``verilated.mk`` leaves that flag empty). ``--no-public-flat-rw``
#: undoes the runner's ``--public-flat-rw``: the testbench touches only the top's ports, and
#: making every internal signal public more than doubles the C++ and blocks Verilator's
#: optimisations (a build of minutes instead of about one; a slower model).
VERILATOR_BUILD_ARGS = ("--output-split", "0", "--no-public-flat-rw")
#: The network's stream ports, which the harness drives instead of the testbench.
_STREAM_PORTS = ("x__payload", "x__valid", "x__ready", "label__payload", "label__valid", "label__ready",
                 "prediction__payload", "prediction__valid", "prediction__ready")


# --------------------------------------------------------------------------------------------
# The design: the network's Verilog (elaborated once per configuration), the harness, the top
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _rtl_fingerprint() -> str:
    """A hash of what shapes the elaborated Verilog: the RTL and model sources, Amaranth's version."""
    import ssdfa.model
    import ssdfa.rtl

    digest = hashlib.sha256(importlib.metadata.version("amaranth").encode())
    for package in (ssdfa.rtl, ssdfa.model):
        for path in sorted(Path(package.__file__).parent.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _configs_json(configs: Sequence[LayerConfig]) -> str:
    return json.dumps([c.to_dict() for c in configs], sort_keys=True)


@dataclass(frozen=True)
class NetworkDesign:
    """The network's Verilog and its ports (name -> (is an input, width)), clock and reset excluded."""

    verilog: str
    ports: dict
    elaborate_seconds: float
    cached: bool


def network_design(configs: Sequence[LayerConfig], *, build_root=None, initial_state: NetworkState | None = None
                   ) -> NetworkDesign:
    """The Verilog of ``SSDFANetwork(configs, initial_state=...)`` (module ``ssdfa_network``), cached.

    Elaborating the digits network takes seconds, so the text is kept beside the simulator
    builds (``<build root>/elaborated/network-<hash>.json``), keyed by the configuration, the
    initial state, the RTL and model sources and Amaranth's version.
    """
    from .runner import default_build_root

    root = Path(build_root).absolute() if build_root is not None else default_build_root()
    preload = ""
    if initial_state is not None:  # Amaranth is imported only when the design is elaborated, else
        from ssdfa.rtl.network import initial_state_digest

        preload = initial_state_digest(initial_state)
    key = hashlib.sha256((_configs_json(configs) + _rtl_fingerprint() + preload).encode()).hexdigest()[:32]
    cached = root / "elaborated" / f"network-{key}.json"
    started = time.perf_counter()
    try:
        stored = json.loads(cached.read_text())
        return NetworkDesign(stored["verilog"], {k: tuple(v) for k, v in stored["ports"].items()},
                             time.perf_counter() - started, True)
    except (OSError, ValueError, KeyError):
        pass
    from ssdfa.rtl import shared_modules
    from ssdfa.rtl.network import NETWORK_TOP, SSDFANetwork, network_header
    from ssdfa.rtl.signatures import verilog_ports

    network = SSDFANetwork(layers=configs, initial_state=initial_state)
    ports = {name: (is_input, len(value)) for name, _, is_input, value in verilog_ports(network)}
    text = network_header(network.configs, NETWORK_TOP, initial_state) + shared_modules.convert(network, NETWORK_TOP)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.name}.{uuid.uuid4().hex}")
    partial.write_text(json.dumps({"verilog": text, "ports": ports}))
    partial.replace(cached)  # atomic: a concurrent reader sees no file or the whole file
    return NetworkDesign(text, ports, time.perf_counter() - started, False)


#: Yosys's Verilog backend (behind Amaranth's) makes every combinational ``always @*`` block
#: sensitive to one ``reg \$auto$verilog_backend...dump_module$N = 0`` per module, so that the
#: blocks run once at time 0. Under cocotb, Icarus Verilog 11 misses that first run, and a block
#: whose inputs never change afterwards (a multiplexer over registers still at their initial
#: value) stays X: a neuron whose f' is 0 in the first sample got an X delta.
_TIME_ZERO_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) +(= 0;)$", re.MULTILINE)


def icarus_verilog(text: str) -> str:
    """The network's Verilog for Icarus: each module's time-0 trigger register also rises at
    1 ns (during reset), which runs every combinational block once more. Combinational blocks are
    functions of their inputs, so the extra run changes nothing but X values left from time 0."""
    return _TIME_ZERO_TRIGGER.sub(lambda m: f"{m.group(1)}reg {m.group(2)}  {m.group(3)}\n"
                                            f"{m.group(1)}initial #1 {m.group(2)}  = 1'h1;", text)


def top_verilog(design: NetworkDesign) -> str:
    """``network_top``: the network and its ``network_stream`` harness; the host and run ports
    and the harness's word counts are the top's ports."""
    from ssdfa.rtl.network import NETWORK_TOP

    ports = design.ports
    outer = [name for name in ports if name not in _STREAM_PORTS]
    # The testbench reaches only these ports; the comment keeps them (and so this scope)
    # visible to it when Verilator builds without --public-flat-rw (VERILATOR_BUILD_ARGS).
    public = " /*verilator public_flat_rw*/"
    declarations = [f"    input wire clk{public}", f"    input wire rst{public}"]
    for name in outer:
        direction = "input" if ports[name][0] else "output"
        declarations.append(f"    {direction} wire [{ports[name][1] - 1}:0] {name}{public}")
    # The harness's prediction count is `stream_predictions` here: the network has a port named
    # `predictions_taken` of its own (the run's count, which the bus wrapper reads).
    declarations += [f"    output wire [31:0] {name}{public}" for name in ("x_taken", "labels_taken", "stream_predictions")]
    declarations.append(f"    output wire missing{public}")
    lines = [
        "// network_top: generated by ssdfa.sim.network_cosim: SSDFANetwork and its stream harness.",
        f"module {TOPLEVEL} (",
        ",\n".join(declarations),
        ");",
    ]
    lines += [f"    wire [{ports[name][1] - 1}:0] {name};" for name in _STREAM_PORTS]
    connections = ["        .clk(clk)", "        .rst(rst)"] + [f"        .{name}({name})" for name in ports]
    lines.append(f"    {NETWORK_TOP} dut (\n" + ",\n".join(connections) + "\n    );")
    parameters = (f".X_W({ports['x__payload'][1]}), .L_W({ports['label__payload'][1]}), "
                  f".P_W({ports['prediction__payload'][1]})")
    harness = {
        "clk": "clk", "rst": "rst",
        "x_valid": "x__valid", "x_payload": "x__payload", "x_ready": "x__ready",
        "label_valid": "label__valid", "label_payload": "label__payload", "label_ready": "label__ready",
        "prediction_valid": "prediction__valid", "prediction_payload": "prediction__payload",
        "prediction_ready": "prediction__ready",
        "x_taken": "x_taken", "labels_taken": "labels_taken", "predictions_taken": "stream_predictions",
        "missing": "missing",
    }
    lines.append(f"    network_stream #({parameters}) stream (\n"
                 + ",\n".join(f"        .{port}({net})" for port, net in harness.items()) + "\n    );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


class NetworkSimulationFailed(SsdfaError):
    """The design was simulated but the run did not finish as it must (a run that never ended,
    a missing result): a verification failure, not bad input. The message names the log."""


@dataclass(frozen=True)
class RunRequest:
    """One run: ``mode`` ("train" or "infer") over raw samples and their labels."""

    name: str
    mode: str
    x_raw: np.ndarray
    labels: np.ndarray


@dataclass
class SimulatedNetwork:
    """What one simulation returned.

    Attributes
    ----------
    weights : list of int64 arrays
        Every layer's weights at the end, read through the host port.
    counters_after : dict of str to dict
        The counters read after each run, by run name (counters are cleared after loading).
    error_counts : list of int64 arrays
        Error words received by each neuron (its router's counter), after the last run.
    lfsr_states : list of uint64 arrays
        Every neuron's LFSR state at the end (meaningful when ``update_rounding`` is STOCH: a
        PE without stochastic rounding has no LFSR).
    predictions : dict of str to (index array, correct array)
        Every run's predictions, in sample order.
    runs : list of dict
        Per run: name, cycles (simulated clocks from start to ``done``), seconds (wall),
        cpu_seconds (the simulator process's).
    build_seconds, elaborate_seconds, simulate_seconds : float
    rebuilt : bool
        The simulator compiled the design in this call (False: a cached build).
    """

    weights: list
    counters_after: dict
    error_counts: list
    predictions: dict
    runs: list
    simulator: str
    build_seconds: float
    elaborate_seconds: float
    simulate_seconds: float
    rebuilt: bool
    elaborate_cached: bool = False
    lfsr_states: list = field(default_factory=list)
    log_file: Path | None = None
    wave_file: Path | None = None


def _max_cycles(driver: NetworkDriver, samples: int) -> int:
    from ssdfa.rtl.network import schedule_minimum

    per_sample = 2 * schedule_minimum(driver.configs) + 64 * (driver.num_layers + driver.outputs)
    return samples * per_sample + 100_000


def simulate_network(
    configs: Sequence[LayerConfig],
    state: NetworkState,
    runs: Sequence[RunRequest],
    *,
    simulator: str,
    waves: bool = False,
    build_root=None,
    work_dir=None,
    preloaded: bool = False,
) -> SimulatedNetwork:
    """Load ``state`` into the RTL network, play ``runs`` in order, read everything back.

    Every input is checked by ``NetworkDriver`` before anything is elaborated or simulated.
    With ``preloaded``, the design is elaborated with ``state``'s weights and index tables in
    its memories (``SSDFANetwork``'s ``initial_state``) and the host loads nothing: inference
    runs only, since feedback constants and LFSR states are not part of the design.

    Raises
    ------
    SsdfaError
        A bad input (named), a missing simulator, a build that fails, or a simulation that
        ends without its result (a run that did not finish within its clock budget).
    """
    from .runner import run_cocotb
    from .tb_network import PROGRAM_ENV

    driver = NetworkDriver(configs)
    load = driver.load_writes(state)
    checked = []
    for run in runs:
        if run.mode not in MODE:
            raise SsdfaError(f"run {run.name!r}: mode must be one of {', '.join(MODE)}, not {run.mode!r}")
        x, labels = driver.check_samples(run.x_raw, run.labels, f"run {run.name!r}")
        checked.append((run, x, labels))
    if not checked:
        raise SsdfaError("a network simulation needs at least one run")
    if preloaded:
        if any(run.mode != "infer" for run, _, _ in checked):
            raise SsdfaError("a preloaded design holds weights and index tables only: it runs inference, not training")
        load = []

    design = network_design(configs, build_root=build_root, initial_state=state if preloaded else None)
    temporary = work_dir is None
    directory = Path(tempfile.mkdtemp(prefix="ssdfa-network-")) if temporary else Path(work_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        network_file = directory / "ssdfa_network.v"
        network_file.write_text(icarus_verilog(design.verilog) if simulator == "icarus" else design.verilog)
        top_file = directory / f"{TOPLEVEL}.v"
        top_file.write_text(top_verilog(design))
        with open(directory / "x.hex", "w") as x_file, open(directory / "labels.hex", "w") as label_file:
            for _, x, labels in checked:
                x_file.write("\n".join(f"{word:x}" for word in driver.x_words(x)) + "\n")
                label_file.write("\n".join(f"{int(v):x}" for v in labels) + "\n")
        steps = [{"op": "write", "words": [w.as_list() for w in load + [driver.clear_counters_write()]]}]
        final_reads = driver.weight_reads() + driver.error_count_reads() + driver.lfsr_reads()
        for run, x, _ in checked:
            steps.append({"op": "run", "name": run.name, "mode": MODE[run.mode], "samples": len(x),
                          "max_cycles": _max_cycles(driver, len(x))})
            steps.append({"op": "read", "name": f"counters {run.name}",
                          "reads": [r.as_list() for r in driver.counter_reads()]})
        steps.append({"op": "read", "name": "final", "reads": [r.as_list() for r in final_reads]})
        result_file = directory / "result.json"
        program = {"steps": steps, "result": str(result_file)}
        program_file = directory / "program.json"
        program_file.write_text(json.dumps(program))
        predictions_file = directory / "predictions.hex"
        plusargs = [f"+network_x={directory / 'x.hex'}", f"+network_labels={directory / 'labels.hex'}",
                    f"+network_predictions={predictions_file}"]
        started = time.perf_counter()
        sim = run_cocotb(
            [HARNESS, network_file, top_file], TOPLEVEL, TB_MODULE, simulator=simulator,
            extra_env={PROGRAM_ENV: str(program_file)}, plusargs=plusargs,
            build_args=VERILATOR_BUILD_ARGS if simulator == "verilator" else (),
            waves=waves, build_root=build_root,
        )
        simulate_seconds = time.perf_counter() - started - sim.build.seconds
        if not sim.ok or not result_file.is_file():
            raise NetworkSimulationFailed(f"the network simulation failed ({sim.summary()})")
        result = json.loads(result_file.read_text())
        final = result["reads"]["final"]
        weights_words = len(driver.weight_reads())
        counts_end = weights_words + len(driver.error_count_reads())
        words = [int(w, 16) for w in predictions_file.read_text().split()]
        predictions, at = {}, 0
        for run, x, _ in checked:
            decoded = [driver.decode_prediction(word) for word in words[at:at + len(x)]]
            at += len(x)
            predictions[run.name] = (np.array([d[0] for d in decoded], dtype=np.int64),
                                     np.array([d[1] for d in decoded], dtype=bool))
        if at != len(words):
            raise SsdfaError(f"the network produced {len(words)} predictions for {at} samples")
        return SimulatedNetwork(
            weights=driver.decode_weights(final[:weights_words]),
            counters_after={run.name: driver.decode_counters(result["reads"][f"counters {run.name}"])
                            for run, _, _ in checked},
            error_counts=driver.decode_error_counts(final[weights_words:counts_end]),
            lfsr_states=driver.decode_lfsr_states(final[counts_end:]),
            predictions=predictions,
            runs=result["runs"],
            simulator=simulator,
            build_seconds=sim.build.seconds,
            elaborate_seconds=design.elaborate_seconds,
            simulate_seconds=simulate_seconds,
            rebuilt=sim.build.rebuilt,
            elaborate_cached=design.cached,
            log_file=sim.log_file,
            wave_file=sim.wave_file,
        )
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The job: model and RTL side by side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkJob:
    """What ``ssdfa cosim --network`` runs.

    Attributes
    ----------
    dataset : str
        A dataset name (``load_dataset``); ``digits`` is embedded.
    hidden : tuple of int
        Hidden layer sizes.
    epochs : int
    seed : int
        The NetworkSpec seed (initial weights, feedback, sample order) and the LFSR seed.
    pes : tuple of int, optional
        PEs per layer; ``rtl.network.default_pes`` by default.
    simulator : str
    train_limit, test_limit : int, optional
        Keep only this many training / test samples (``limit_samples``), for short runs.
    activation : str
    connectivity : str
        ``balanced`` (equal fan-out per error) or ``random`` feedback connectivity.
    feedback_gain : float, optional
        Multiplies the paper's feedback range; None (default) takes ``ssdfa train``'s rule
        (``model.defaults``: 8 on digits, 4 on MNIST). ``balanced`` is ``ssdfa train``'s default too.
    shift : int, optional
        Learning rate ``2**-shift``; None (default) takes the same rule (4 on digits, 5 on MNIST).
    data_dir : str, optional
    load_weights, save_weights : str, optional
        Start from a saved network (``model.weight_file``; its weights, feedback tables and
        LFSR states, checked against the configuration); write the RTL's final state as one.
    """

    dataset: str = "digits"
    hidden: tuple = (32,)
    epochs: int = 1
    seed: int = 0
    pes: tuple | None = None
    simulator: str = "verilator"
    train_limit: int | None = None
    test_limit: int | None = None
    activation: str = "relu"
    connectivity: str = "balanced"
    feedback_gain: float | None = None
    shift: int | None = None
    data_dir: str | None = None
    load_weights: str | None = None
    save_weights: str | None = None
    waves: bool = False
    work_dir: str | None = None


@dataclass
class ModelReference:
    """The model's run: final weights, training-time and test predictions, accuracies."""

    network: object
    weights: list
    train_predictions: list
    test_predictions: np.ndarray
    test_accuracy: float
    seconds: float


def model_reference(model, x_train, y_train, x_test, y_test, orders) -> ModelReference:
    """Train ``model`` (a ``FixedNetwork``) one sample at a time in the given epoch orders,
    recording each sample's prediction before its update; then predict the test set."""
    started = time.perf_counter()
    train_predictions = []
    x_train = np.asarray(x_train).astype(model.dtype)
    for order in orders:
        predictions = np.empty(len(order), dtype=np.int64)
        for position, sample in enumerate(order):
            predictions[position] = model.predict(x_train[sample])[0]
            model.train_step(x_train[sample], int(y_train[sample]))
        train_predictions.append(predictions)
    test_predictions = model.predict(x_test) if len(x_test) else np.zeros(0, dtype=np.int64)
    accuracy = float(np.mean(test_predictions == y_test)) if len(y_test) else float("nan")
    return ModelReference(model, model.raw_weights(), train_predictions, test_predictions, accuracy,
                          time.perf_counter() - started)


def hardware_costs(counters: dict, configs: Sequence[LayerConfig], samples: int):
    """The hardware counters per training sample, as the cost model's ``LayerCosts`` per layer.

    The hardware computes the bias like a weight (one MAC, one weight read and one write per
    neuron and pass); the cost model does not count biases (docs/costs.md §3.1), so those are
    taken out here. Raises SsdfaError if a count is not a whole number per sample.
    """
    from ssdfa.model.costs import Counts, LayerCosts
    from ssdfa.model.paper_architectures import Layer

    def per_sample(name: str) -> int:
        total = counters[name]
        if total % samples:
            raise SsdfaError(f"counter {name} = {total} is not a whole number per sample ({samples} samples)")
        return total // samples

    layers = []
    for index, config in enumerate(configs):
        c = {name: per_sample(f"layer{index}.{name}") for name in (
            "forward_macs", "update_macs", "error_words", "derivative_reads", "inputs_received",
            "inputs_replayed", "activations_written")}
        neurons, output = config.shape.neurons, config.is_output_layer
        forward_weights = c["forward_macs"] - neurons  # the bias is not a weight in the cost model
        update_weights = c["update_macs"] - neurons
        feedback = 0 if output else c["error_words"]
        forward = Counts(
            macs=forward_weights,
            reads=forward_weights + c["inputs_received"],
            writes=c["activations_written"],
            movement=c["inputs_received"] + (c["activations_written"] if output else 0),
        )
        backward = Counts(
            macs=update_weights + feedback,
            reads=update_weights + c["inputs_replayed"] + c["derivative_reads"] + feedback + c["error_words"],
            writes=update_weights,
            movement=c["error_words"],
        )
        layers.append(LayerCosts(Layer.fc(f"fc{index + 1}", config.shape.fan_in, neurons), forward, backward))
    return tuple(layers)


@dataclass(frozen=True)
class EpochSetup:
    """What a one-epoch check against the model needs, whatever drives the RTL (the host port,
    the AXI wrapper, the board's UART): the layer configurations, a driver, the model's state
    to load, and the model's reference run over the epoch's sample order."""

    sizes: tuple
    pes: tuple
    configs: tuple
    driver: object
    state: object
    y_train: np.ndarray
    y_test: np.ndarray
    order: np.ndarray
    reference: ModelReference


def prepare_epoch(model, pes, x_train, y_train, x_test, y_test) -> EpochSetup:
    """Configurations for ``model`` on ``pes`` (default: ``default_pes``), its state, and the
    model's reference epoch (sample order of epoch 0), checking the samples first."""
    from ssdfa.model.training import epoch_order
    from ssdfa.rtl.network import default_pes, network_layer_configs

    spec, config = model.spec, model.config
    sizes = tuple(spec.layer_sizes)
    pes = tuple(pes) if pes else default_pes(sizes)
    configs = tuple(network_layer_configs(sizes, config, pes=pes, activation=spec.activation))
    driver = NetworkDriver(configs)
    state = driver.state_from_model(model)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    driver.check_samples(x_train, y_train, "training samples")
    order = epoch_order(spec.seed, 0, len(y_train))
    reference = model_reference(model, x_train, y_train, x_test, y_test, [order])
    return EpochSetup(sizes, pes, configs, driver, state, y_train, y_test, order, reference)


@dataclass
class NetworkReport:
    """The outcome of ``run_network_cosim``: ``passed`` and the lines printed."""

    passed: bool
    lines: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        return 0 if self.passed else 1


def _first_difference(expected: list, actual: list):
    """(layer, neuron, index, expected, actual) of the first differing weight, or None."""
    for layer, (e, a) in enumerate(zip(expected, actual)):
        differs = np.argwhere(e != a)
        if differs.size:
            neuron, index = (int(v) for v in differs[0])
            return layer, neuron, index, int(e[neuron, index]), int(a[neuron, index])
    return None


def _fmt_int(value: int) -> str:
    return f"{value:,}"


def run_network_cosim(job: NetworkJob, *, out: Callable[[str], None] = print) -> NetworkReport:
    """Train the network in the model and in RTL, compare, print the figures (docs/network.md).

    Returns a ``NetworkReport``; ``passed`` is False (exit status 1) on any difference: a weight
    (the first one is printed: layer, neuron, index, expected, actual), a prediction, a counter
    that disagrees with the cost model, or an error-word count other than one per hidden neuron
    per sample.

    Raises
    ------
    SsdfaError
        For bad arguments (named) before anything is simulated, or a simulation that fails.
    """
    from ssdfa.model.datasets import limit_samples, load_dataset
    from ssdfa.model.defaults import default_hyperparameters
    from ssdfa.model.fixed_network import FixedNetwork
    from ssdfa.model.network import Algorithm, NetworkSpec
    from ssdfa.model.neuron_ops import Activation, ArithmeticConfig
    from ssdfa.model.arithmetic import Rounding
    from ssdfa.model.training import epoch_order
    from ssdfa.model.weight_file import SavedNetwork, load_network, save_network
    from ssdfa.rtl.network import (default_pes, network_layer_configs, schedule_minimum, schedule_steps,
                                   utilisation_bound)

    from .network_weights import hardware_configs, hardware_state

    wall_start = time.perf_counter()
    report = NetworkReport(passed=True)

    def say(line: str = "") -> None:
        report.lines.append(line)
        out(line)

    if not isinstance(job.epochs, int) or job.epochs < 1:
        raise SsdfaError(f"epochs must be a positive integer, not {job.epochs!r}")
    if not job.hidden or any(not isinstance(h, int) or h < 1 for h in job.hidden):
        raise SsdfaError(f"hidden layer sizes must be positive integers, not {job.hidden!r}")
    dataset = load_dataset(job.dataset, job.data_dir)
    if job.train_limit is not None or job.test_limit is not None:
        dataset = limit_samples(dataset, job.train_limit, test=job.test_limit)
    sizes = (dataset.num_features, *job.hidden, dataset.num_classes)
    activation = Activation.parse(job.activation)
    if job.connectivity not in ("balanced", "random"):
        raise SsdfaError(f"connectivity must be balanced or random, not {job.connectivity!r}")
    try:
        # The defaults of `ssdfa train`: the rule's gain and shift for this fan-in (docs/model.md).
        rule = default_hyperparameters(sizes[0], job.hidden, feedback_format=ArithmeticConfig().feedback)
        gain = rule.feedback_gain if job.feedback_gain is None else job.feedback_gain
        config = ArithmeticConfig(seed=job.seed, shift=rule.shift if job.shift is None else job.shift)
        spec = NetworkSpec(sizes, algorithm=Algorithm.SSDFA, activation=activation, seed=job.seed,
                           balanced=job.connectivity == "balanced", feedback_gain=gain)
    except ValueError as exc:
        raise SsdfaError(str(exc)) from None
    pes = tuple(job.pes) if job.pes else default_pes(sizes)
    configs = network_layer_configs(sizes, config, pes=pes, activation=activation)
    driver = NetworkDriver(configs)
    model = FixedNetwork(spec, config)
    if job.load_weights:
        # The file's weights, feedback tables and LFSR states, checked against this network.
        saved = load_network(job.load_weights)
        source = f"weight file {job.load_weights}"
        hardware_configs(saved, pes, source=source)
        state = hardware_state(saved, configs, source=source)
        model = saved.network()
    state = driver.state_from_model(model)
    x_train = model.quantize_inputs(dataset.x_train)
    x_test = model.quantize_inputs(dataset.x_test)
    y_train, y_test = np.asarray(dataset.y_train), np.asarray(dataset.y_test)
    driver.check_samples(x_train, y_train, "training split")
    if len(y_test):
        driver.check_samples(x_test, y_test, "test split")
    samples = len(y_train)
    orders = [epoch_order(spec.seed, epoch, samples) for epoch in range(job.epochs)]

    a = config
    ks = [c.neurons_per_pe for c in configs]
    say(f"network {'-'.join(map(str, sizes))}, SSDFA, hidden {activation.value}, {job.connectivity} feedback "
        f"(gain {spec.feedback_gain:g}); PEs per layer {'+'.join(map(str, pes))} (neurons per PE "
        f"{', '.join(map(str, ks))}); seed {job.seed}")
    say(f"arithmetic (the model's defaults): activation {a.activation}, weight {a.weight}, feedback {a.feedback}, "
        f"error {a.error}, delta {a.delta}; rounding {a.rounding.name}, update {a.update_rounding.name}, "
        f"overflow {a.overflow.name}, learning rate 2^-{a.shift}")
    say(f"dataset {dataset.name}: {samples} training samples x {job.epochs} epoch(s), {len(y_test)} test samples")

    # -- the model --------------------------------------------------------------------------
    reference = model_reference(model, x_train, y_train, x_test, y_test, orders)
    tested = f"test accuracy {reference.test_accuracy:.4f}" if len(y_test) else "no test samples"
    say(f"model: trained and tested in {reference.seconds:.1f} s; {tested}")

    # -- the RTL ----------------------------------------------------------------------------
    runs = [RunRequest(f"epoch {e + 1}", "train", x_train[order], y_train[order]) for e, order in enumerate(orders)]
    if len(y_test):
        runs.append(RunRequest("test", "infer", x_test, y_test))
    from .runner import SimulationError

    try:
        sim = simulate_network(configs, state, runs, simulator=job.simulator, waves=job.waves,
                               work_dir=job.work_dir)
    except (NetworkSimulationFailed, SimulationError) as error:
        # A design that does not build, hangs or ends early fails verification (exit status 1).
        report.passed = False
        say(f"FAIL: {error}")
        return report
    build = f"built in {sim.build_seconds:.1f} s" if sim.rebuilt else "build cached"
    elaborated = "Verilog cached" if sim.elaborate_cached else f"Verilog elaborated in {sim.elaborate_seconds:.1f} s"
    say(f"RTL ({job.simulator}): {elaborated}, {build}, simulated in {sim.simulate_seconds:.1f} s")
    for record in sim.runs:
        speed = record["cycles"] / record["seconds"] if record["seconds"] > 0 else 0.0
        say(f"  {record['name']}: {_fmt_int(record['cycles'])} clocks in {record['seconds']:.2f} s "
            f"({_fmt_int(round(speed))} clocks/s)")

    # -- bit-exactness ----------------------------------------------------------------------
    difference = _first_difference(reference.weights, sim.weights)
    total_weights = sum(w.size for w in reference.weights)
    if difference is None:
        say(f"weights: all {_fmt_int(total_weights)} identical to the model's after {job.epochs} epoch(s)")
    else:
        layer, neuron, index, expected, actual = difference
        report.passed = False
        say(f"MISMATCH first differing weight: layer {layer}, neuron {neuron}, index {index} "
            f"({'bias' if index == configs[layer].shape.fan_in else 'input ' + str(index)}): "
            f"expected {expected}, actual {actual}")
    predictions_agree = True
    for expected, run in zip(reference.train_predictions, runs):
        actual = sim.predictions[run.name][0]
        wrong = np.flatnonzero(expected != actual)
        if wrong.size:
            report.passed = predictions_agree = False
            say(f"MISMATCH {run.name}: training prediction of sample {int(wrong[0])} (position in the epoch): "
                f"expected {int(expected[wrong[0]])}, actual {int(actual[wrong[0]])}")
    train_correct = sum(int(np.sum(sim.predictions[run.name][1])) for run in runs if run.mode == "train")
    if len(y_test):
        rtl_test = sim.predictions["test"][0]
        wrong = np.flatnonzero(rtl_test != reference.test_predictions)
        if wrong.size:
            report.passed = False
            say(f"MISMATCH test prediction of sample {int(wrong[0])}: expected "
                f"{int(reference.test_predictions[wrong[0]])}, actual {int(rtl_test[wrong[0]])}")
        elif predictions_agree:
            say(f"predictions: all {_fmt_int(samples * job.epochs)} training-time and {_fmt_int(len(y_test))} test "
                f"predictions identical to the model's")
        rtl_accuracy = float(np.mean(rtl_test == y_test))
        from_weights = FixedNetwork(spec, config)
        from_weights.set_raw_weights(sim.weights)
        weights_accuracy = float(np.mean(from_weights.predict(x_test) == y_test))
        say(f"accuracy: test {rtl_accuracy:.4f} (RTL inference run), {weights_accuracy:.4f} (RTL weights in the model), "
            f"{reference.test_accuracy:.4f} (model); training-time {train_correct / (samples * job.epochs):.4f} "
            f"(each sample predicted before its update)")
        report.figures.update(test_accuracy=rtl_accuracy, model_test_accuracy=reference.test_accuracy,
                              weights_test_accuracy=weights_accuracy)
        if not rtl_accuracy == weights_accuracy == reference.test_accuracy:
            report.passed = False

    # -- timing and utilisation ---------------------------------------------------------------
    trained = samples * job.epochs
    last_train = runs[job.epochs - 1].name
    counters = sim.counters_after[last_train]
    cycles = counters["cycles"]
    per_sample = cycles / trained
    minimum = schedule_minimum(configs)
    excess = per_sample / minimum - 1
    useful = sum(counters[f"layer{l}.forward_macs"] + counters[f"layer{l}.update_macs"] for l in range(len(configs)))
    utilisation = useful / (sum(pes) * cycles)
    say(f"clocks per training sample: {per_sample:.1f} measured, {minimum} analytical minimum of the "
        f"schedule ({excess:+.1%}; {'within' if abs(excess) <= 0.10 else 'NOT within'} 10%)")
    chain = []
    for layer, (k, c, done) in enumerate(zip(ks, configs, schedule_steps(configs))):
        work = k * (c.shape.fan_in + 1)
        start = f"update {work}" if not layer else f"max(update {work}, {chain[-1][1]})"
        chain.append((f"layer {layer}: {start} + forward {work} = {done}", done))
    say(f"  minimum, from the errors of one sample to those of the next: {'; '.join(text for text, _ in chain)}")
    say(f"MAC utilisation: {utilisation:.3f} ({_fmt_int(useful // trained)} useful MACs per sample, forward and "
        f"update, bias included, on {sum(pes)} PEs; at most {utilisation_bound(configs):.3f} in this schedule)")
    say("  per layer and sample (PE 0's clocks in each phase; FORWARD counts from the command, so it includes "
        "waiting for the layer below):")
    for layer in range(len(configs)):
        wait = counters[f"layer{layer}.error_wait_cycles"] / trained
        say(f"  layer {layer}: FORWARD {counters[f'layer{layer}.forward_cycles'] / trained:.0f}, ERROR "
            f"{counters[f'layer{layer}.error_cycles'] / trained:.0f} (of which {wait:.0f} waiting for the output "
            f"error), UPDATE {counters[f'layer{layer}.update_cycles'] / trained:.0f}")
    say("  every layer takes the errors in the same clocks and updates as soon as its own deltas are written; "
        "no layer waits for another's backward pass")
    train_records = [r for r in sim.runs if r["name"].startswith("epoch ")]
    sim_cycles = sum(r["cycles"] for r in train_records)
    sim_seconds = sum(r["seconds"] for r in train_records)
    sim_cpu = sum(r["cpu_seconds"] for r in train_records)
    speed = sim_cycles / sim_seconds if sim_seconds > 0 else 0.0
    cpu_speed = sim_cycles / sim_cpu if sim_cpu > 0 else 0.0
    say(f"simulation speed: {_fmt_int(round(speed))} clocks/s ({_fmt_int(round(cpu_speed))} per CPU second of the "
        f"simulator) over {_fmt_int(sim_cycles)} training clocks ({sim_seconds:.1f} s, "
        f"{sim_seconds / job.epochs:.1f} s per epoch)")
    report.figures.update(cycles_per_sample=per_sample, schedule_minimum=minimum, utilisation=utilisation,
                          utilisation_bound=utilisation_bound(configs),
                          clocks_per_second=speed, clocks_per_cpu_second=cpu_speed,
                          epoch_seconds=sim_seconds / job.epochs)
    if excess > 0.10:
        report.passed = False

    # -- counters against the cost model ------------------------------------------------------
    if not _report_costs(say, counters, sim.error_counts, configs, trained, sizes):
        report.passed = False

    if job.save_weights:
        # Without STOCH the PEs hold no LFSR and draw nothing: the states are the model's seeds.
        stoch = config.update_rounding is Rounding.STOCH
        trained = SavedNetwork(model.spec, model.config, sim.weights, model.feedback_tables(),
                               sim.lfsr_states if stoch else model.lfsr_states(),
                               provenance={"written_by": "ssdfa cosim --network", "simulator": job.simulator,
                                           "dataset": dataset.name, "epochs": job.epochs})
        written = save_network(job.save_weights, trained)
        say(f"RTL weights written to {job.save_weights} (SHA-256 {written.sha256[:16]}...)")
    total = time.perf_counter() - wall_start
    report.figures["wall_seconds"] = total
    say(f"wall time: {total:.1f} s in all; {'PASS' if report.passed else 'FAIL'}: the RTL learner "
        f"{'matches' if report.passed else 'does not match'} the model bit for bit")
    return report


def _report_costs(say, counters: dict, error_counts: list, configs, trained: int, sizes) -> bool:
    """Print the counters against the cost model and Table 1; True when they agree."""
    from ssdfa.model.costs import Algorithm as CostAlgorithm
    from ssdfa.model.costs import layer_costs

    ok = True
    hardware = hardware_costs(counters, configs, trained)
    model = layer_costs(list(sizes), CostAlgorithm.SSDFA)
    say("hardware counters per training sample against the cost model (SSDFA; biases taken out):")
    say(f"  {'layer':<6} {'pass':<9} {'MACs':>9} {'reads':>9} {'writes':>9} {'movement':>9}  cost model")
    for index, (hw, cm) in enumerate(zip(hardware, model)):
        for name in ("forward", "backward"):
            h, c = getattr(hw, name), getattr(cm, name)
            same = h == c
            ok &= same
            say(f"  {index:<6} {name:<9} {h.macs:>9,} {h.reads:>9,} {h.writes:>9,} {h.movement:>9,}  "
                f"{'equal' if same else f'DIFFERS: {c.macs:,} {c.reads:,} {c.writes:,} {c.movement:,}'}")
    for index, (config, counts) in enumerate(zip(configs, error_counts)):
        expected = trained * config.shape.connections
        if np.all(counts == expected):
            kind = "output" if config.is_output_layer else "hidden"
            say(f"  error words received: every {kind} neuron of layer {index}: {expected:,} "
                f"({config.shape.connections} per sample)")
        else:
            ok = False
            neuron = int(np.flatnonzero(counts != expected)[0])
            say(f"  MISMATCH error words received by layer {index} neuron {neuron}: {int(counts[neuron]):,}, "
                f"expected {expected:,}")
    say("Table 1, per training example of this network (cost model; SSDFA also from the RTL's counters):")
    say(f"  {'algorithm':<22} {'fwd MACs':>9} {'bwd MACs':>9} {'reads':>9} {'writes':>9} {'bwd movement':>13}")
    rows = []
    for algorithm in (CostAlgorithm.BP, CostAlgorithm.DFA, CostAlgorithm.SSDFA):
        layers = layer_costs(list(sizes), algorithm)
        rows.append((algorithm.label, layers))
    rows.append(("SSDFA (RTL counters)", hardware))
    totals = {}
    for label, layers in rows:
        forward = sum(l.forward.macs for l in layers)
        backward = sum(l.backward.macs for l in layers)
        reads = sum(l.total.reads for l in layers)
        writes = sum(l.total.writes for l in layers)
        movement = sum(l.backward.movement for l in layers)
        totals[label] = (backward, movement)
        say(f"  {label:<22} {forward:>9,} {backward:>9,} {reads:>9,} {writes:>9,} {movement:>13,}")
    bp, ssdfa = totals["BP"], totals["SSDFA (RTL counters)"]
    dfa = totals["DFA"]
    say(f"  backward data movement: BP/SSDFA {bp[1] / ssdfa[1]:.1f}x, DFA/SSDFA {dfa[1] / ssdfa[1]:.1f}x; "
        f"backward MACs: BP/SSDFA {bp[0] / ssdfa[0]:.2f}x")
    return ok


# --------------------------------------------------------------------------------------------
# Command line and demo
# --------------------------------------------------------------------------------------------


def int_list(text: str) -> tuple[int, ...]:
    """``"64,32"`` (or ``"64+32"``) as positive integers: the ``--hidden`` and ``--pes`` lists."""
    try:
        values = tuple(int(part) for part in str(text).replace("+", ",").split(",") if part.strip())
    except ValueError:
        raise SsdfaError(f"expected comma-separated positive integers, not {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise SsdfaError(f"expected comma-separated positive integers, not {text!r}")
    return values


def add_network_arguments(parser) -> None:
    """The options of ``ssdfa cosim --network`` (the caller adds ``--network`` and ``--sim``).

    An option the parser already has (``ssdfa cosim``'s own ``--seed``, ``--waves``,
    ``--work-dir``) is left to it and read from the parsed arguments by ``job_from_args``.
    """
    import argparse

    group = parser.add_argument_group("network co-simulation (--network)")
    for names, settings in network_options():
        try:
            group.add_argument(*names, **settings)
        except argparse.ArgumentError:
            pass  # the host command already has this option


def network_options() -> list:
    """(names, argparse settings) of every ``--network`` option (``add_network_arguments``)."""
    from ssdfa.cli._argtypes import natural_int, positive_int, seed_int

    return [
        (("--dataset",), dict(default="digits", help="dataset to train on (default: digits, embedded)")),
        (("--data-dir",), dict(metavar="DIR", help="directory of the dataset's files (not needed for digits)")),
        (("--hidden",), dict(default="32", metavar="N[,N...]", help="hidden layer sizes (default 32)")),
        (("--epochs",), dict(type=positive_int, default=1, help="training epochs (default 1)")),
        (("--seed",), dict(type=seed_int, default=0, help="seed of weights, feedback, order and LFSRs (default 0)")),
        (("--pes",), dict(metavar="P[,P...]", help="PEs per layer with weights (default: at most 8 neurons per PE)")),
        (("--train-limit",), dict(type=positive_int, metavar="N", help="train on the first N samples only")),
        (("--test-limit",), dict(type=natural_int, metavar="N", help="test on the first N samples only")),
        (("--activation",), dict(default="relu", help="hidden activation: relu, hardtanh, tanh (default relu)")),
        (("--connectivity",), dict(default="balanced", choices=("balanced", "random"),
                                    help="feedback connectivity (default balanced, as ssdfa train)")),
        (("--feedback-gain",), dict(type=float, default=None, metavar="G",
                                     help="multiplies the paper's feedback range (default: ssdfa train's rule, "
                                          "8 on digits)")),
        (("--shift",), dict(type=int, default=None, metavar="N",
                             help="learning rate 2^-N (default: ssdfa train's rule, 4 on digits)")),
        (("--load-weights",), dict(metavar="FILE.npz", help="start from a saved network (ssdfa train --save; "
                                                             "weights, feedback tables and LFSR states, checked)")),
        (("--save-weights",), dict(metavar="FILE.npz", help="write the RTL's final state as a saved network")),
    ]


def job_from_args(args) -> NetworkJob:
    """A ``NetworkJob`` from parsed arguments (``--sim`` gives the simulator; default Verilator)."""
    simulator = getattr(args, "sim", None) or "verilator"
    if isinstance(simulator, (list, tuple)):
        if len(simulator) != 1:
            raise SsdfaError(f"--network runs on one simulator, not {', '.join(simulator)}")
        simulator = simulator[0]
    for name in ("train_limit", "test_limit"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise SsdfaError(f"--{name.replace('_', '-')} must be a non-negative integer, not {value}")
    return NetworkJob(
        dataset=args.dataset,
        hidden=int_list(args.hidden),
        epochs=args.epochs,
        seed=args.seed,
        pes=int_list(args.pes) if args.pes else None,
        simulator=simulator,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        activation=args.activation,
        connectivity=args.connectivity,
        feedback_gain=args.feedback_gain,
        shift=getattr(args, "shift", None),
        data_dir=args.data_dir,
        load_weights=args.load_weights,
        save_weights=args.save_weights,
        waves=bool(getattr(args, "waves", False)),
        work_dir=str(args.work_dir) if getattr(args, "work_dir", None) else None,
    )


def run_from_args(args) -> int:
    """``ssdfa cosim --network ...``: exit status 0 when the RTL matches, 1 otherwise."""
    if args.save_weights:  # refused now, not after the epoch
        from ssdfa.cli._weights import check_save_target

        check_save_target(args.save_weights, args.dataset, args.data_dir, "--save-weights")
    return run_network_cosim(job_from_args(args)).exit_status


def run_demo_rtl_steps(*, out: Callable[[str], None] = print, verilog_dir="build/demo", hidden: int = 32,
                       epochs: int = 1, seed: int = 0, simulator: str = "verilator",
                       connectivity: str = "balanced", feedback_gain: float | None = None,
                       shift: int | None = None) -> NetworkReport:
    """The demo's RTL steps on the embedded digits data: write the network's Verilog, then
    train it in RTL under ``simulator`` against the model and print the figures.

    Returns the ``NetworkReport`` (``passed``: bit for bit identical; ``lines``: what was printed).
    """
    from ssdfa.model.datasets import load_dataset
    from ssdfa.model.neuron_ops import ArithmeticConfig
    from ssdfa.rtl.network import NETWORK_TOP, default_pes, network_layer_configs

    from ssdfa.model.defaults import default_hyperparameters

    dataset = load_dataset("digits")
    sizes = (dataset.num_features, hidden, dataset.num_classes)
    if shift is None:
        shift = default_hyperparameters(sizes[0], (hidden,), feedback_format=ArithmeticConfig().feedback).shift
    configs = network_layer_configs(sizes, ArithmeticConfig(seed=seed, shift=shift), pes=default_pes(sizes))
    # The text `rtl.network.generate_network` writes, elaborated once and cached for the simulation too.
    design = network_design(configs)
    path = Path(verilog_dir) / f"{NETWORK_TOP}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, design.verilog)  # whole or not at all
    how = "cached" if design.cached else f"elaborated in {design.elaborate_seconds:.1f} s"
    out(f"Verilog of the {'-'.join(map(str, sizes))} SSDFA network (PEs {'+'.join(str(c.pes) for c in configs)}): "
        f"{path} ({path.stat().st_size // 1024} KiB, {how})")
    job = NetworkJob(dataset="digits", hidden=(hidden,), epochs=epochs, seed=seed, simulator=simulator,
                     connectivity=connectivity, feedback_gain=feedback_gain, shift=shift)
    return run_network_cosim(job, out=out)


def rtl_demo_step(ctx) -> None:
    """``ssdfa demo``'s RTL step: the 64-32-10 network for one digits epoch under Verilator, with
    the demo's seed and feedback options; raises SsdfaError when the RTL differs from the model."""
    spec = ctx.spec
    report = run_demo_rtl_steps(
        out=lambda line: ctx.say(f"  {line}"), seed=ctx.args.seed,
        connectivity="balanced" if spec is None or spec.balanced else "random",
        feedback_gain=None if spec is None else spec.feedback_gain,
        shift=None if ctx.config is None else ctx.config.shift,
    )
    figures = report.figures
    if not report.passed:
        raise SsdfaError("the RTL learner does not match the model bit for bit (see the lines above)")
    ctx.summary.append(
        f"RTL 64-32-10 learner, one digits epoch on Verilator: bit-exact with the model; test accuracy "
        f"{100 * figures['test_accuracy']:.2f}%; {figures['cycles_per_sample']:.0f} clocks per sample "
        f"(minimum {figures['schedule_minimum']}), MAC utilisation {figures['utilisation']:.3f} (at most "
        f"{figures['utilisation_bound']:.3f} in this schedule), {figures['clocks_per_second']:,.0f} clocks/s")
