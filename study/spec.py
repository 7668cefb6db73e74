"""Study specifications: a TOML file that names a grid of training runs.

Any value marked *axis* may be a list; the study runs every combination of the axes (times the
seeds). Everything is checked here, before anything runs: an unknown section, key or value
raises ``SsdfaError`` naming the file, the key and the value. Example::

    [study]
    description = "word width x update rounding, fixed-point SSDFA"
    seeds = 3                    # 0, 1, 2; or a list of seeds

    [data]
    dataset = "digits"           # axis: digits | mnist | fashion-mnist | cifar10 | "features:PATH.npz"
    data_dir = "../data/mnist"   # folder of the dataset's files, relative to this file
    train_limit = 2000           # optional: keep this many training samples (class-balanced)
    test_limit = 1000            # optional: likewise for the test split
    split_seed = 0               # seed of the train/validation/test split, the same for every cell
    input_shift = 2              # axis: features times 2**-input_shift (default 0)

    [network]
    hidden = [100]               # axis: one list of hidden sizes, or a list of such lists
    activation = "relu"          # axis: relu | hardtanh | tanh
    epochs = 5                   # axis
    batch = 1                    # axis
    shift_steps = [3, 5]         # axis (a list of such lists): epochs at whose start the rate halves
    keep = "best"                # axis: last | best (the weights of the best validation epoch)

    [feedback]
    algorithm = "ssdfa"          # axis: bp | dfa | sdfa | ssdfa
    connections = 2              # axis, sdfa only: s, the errors each neuron receives
    rank = "full"                # axis: "full" or the rank of each B (dfa, sdfa)
    gain = 4                     # axis: multiplies the paper's feedback range (default: the rule)
    connectivity = "balanced"    # axis: balanced | random | lfsr (ssdfa), as ssdfa train's

    [arithmetic]
    precision = "fixed"          # axis: fixed | float
    word = [4, 8, 16]            # axis: word width of every quantity not in [arithmetic.formats]
    int_bits = { activation = 2, weight = 2, feedback = 2, error = 2, delta = 2, bp_error = 3 }
    rounding = "RND"             # axis: signal path (TRN, TRN_ZERO, RND, RND_CONV)
    update_rounding = "STOCH"    # axis: learning path (the four above, or STOCH)
    overflow = "SAT"             # axis: SAT | WRAP
    shift = 4                    # axis: learning rate 2**-shift (fixed and float; default: the rule)

    [arithmetic.formats]         # optional fixed formats, each an axis: "SQ(i,f)" / "UQ(i,f)"
    feedback = "SQ(2,2)"

Without ``gain`` and ``shift`` a cell takes ``ssdfa train``'s rule (``model.defaults``) for the
dataset's fan-in, and ``connectivity`` defaults to ``balanced``, so that a study cell and
``ssdfa train`` with the same settings build the same network. Every cell records the paper's
eq. 14 angle and the update's angle to BP's gradient after every epoch.

Sparsity of B is ``1 - s / M`` (M outputs): DFA is s = M, SSDFA s = 1. Combinations whose rank
times s is below M are skipped, as in the paper: some errors would never be fed back.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ssdfa.errors import SsdfaError
from ssdfa.model.arithmetic import FixedFormat, Overflow, Rounding
from ssdfa.model.datasets import FEATURES_PREFIX, dataset_names
from ssdfa.model.defaults import default_feedback_gain, default_shift
from ssdfa.model.memory_budget import require_memory, training_bytes
from ssdfa.model.neuron_ops import Activation, ArithmeticConfig, LayerShape
from ssdfa.user_files import read_text

from .cells import (
    ALGORITHMS,
    CURRENT_VERSIONS,
    PRECISIONS,
    QUANTITIES,
    Cell,
)

__all__ = ["StudySpec", "load_spec", "spec_from_dict", "apply_overrides", "KNOWN_CLASSES"]

_SECTIONS = {
    "study": ("description", "seeds"),
    "data": ("dataset", "data_dir", "train_limit", "test_limit", "split_seed", "input_shift"),
    "network": ("hidden", "activation", "epochs", "batch", "shift_steps", "keep"),
    "feedback": ("algorithm", "connections", "rank", "gain", "connectivity"),
    "arithmetic": ("precision", "word", "int_bits", "formats", "rounding", "update_rounding", "overflow", "shift"),
}

#: Outputs M of the named datasets, so that rank and s are checked before anything runs
#: (a features file's class count is known only once it is read).
KNOWN_CLASSES = {"digits": 10, "mnist": 10, "fashion-mnist": 10, "cifar10": 10}
#: Features (the first layer's fan-in) of the named datasets, for the same reason.
KNOWN_FEATURES = {"digits": 64, "mnist": 784, "fashion-mnist": 784, "cifar10": 3072}

_HIDDEN_ACTIVATIONS = tuple(a.value for a in Activation if a is not Activation.IDENTITY)
_SIGNAL_ROUNDINGS = tuple(m.name for m in Rounding if m is not Rounding.STOCH)
_UPDATE_ROUNDINGS = tuple(m.name for m in Rounding)
_OVERFLOWS = tuple(m.name for m in Overflow)
_DEFAULT_ARITHMETIC = ArithmeticConfig()
_CONNECTIVITY = ("balanced", "random", "lfsr")
_KEEP = ("last", "best")


@dataclass(frozen=True)
class StudySpec:
    """A validated study: its cells in grid order and what was left out of the grid.

    Attributes
    ----------
    name : str
        The spec file's stem.
    description : str
    cells : tuple of Cell
        Distinct cells, in the order of the grid (seeds innermost).
    skipped : int
        Combinations left out because rank x s < M.
    """

    name: str
    description: str
    cells: tuple[Cell, ...]
    skipped: int = 0


def load_spec(path, overrides: list[str] | None = None) -> StudySpec:
    """Read, override (``section.key=value``) and validate a study spec file."""
    path = Path(path)
    text = read_text(path, "study spec")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SsdfaError(f"{path}: not valid TOML: {exc}") from None
    if not data:  # an empty file (or comments only) is more likely a mistake than a study of defaults
        raise SsdfaError(f"{path}: the study spec holds no settings (an empty file?); give at least a [study] table")
    data = apply_overrides(data, overrides or [], str(path))
    return spec_from_dict(data, source=str(path), name=path.stem, base_dir=path.resolve().parent)


def apply_overrides(data: dict, overrides: list[str], source: str) -> dict:
    """Set ``section.key=value`` (value in TOML syntax; a bare word is a string) in a copy."""
    data = {section: dict(values) if isinstance(values, dict) else values for section, values in data.items()}
    for override in overrides:
        target, sep, text = override.partition("=")
        section, dot, key = target.strip().partition(".")
        if not sep or not dot or not section or not key:
            raise SsdfaError(f"override {override!r}: expected SECTION.KEY=VALUE, e.g. network.epochs=1")
        try:
            value = tomllib.loads(f"value = {text.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        if section not in _SECTIONS:
            raise SsdfaError(f"override {override!r}: unknown section [{section}]; expected one of {sorted(_SECTIONS)}")
        data.setdefault(section, {})[key] = value
    return data


def spec_from_dict(data: dict, source: str = "study spec", name: str = "study", base_dir: Path | None = None) -> StudySpec:
    """Validate a TOML-shaped dictionary and expand it into cells.

    ``base_dir`` is the folder that relative ``data_dir`` and features paths start from.
    """
    reader = _Reader(source)
    reader.check_keys(data)
    study = data.get("study", {})
    data_section = data.get("data", {})
    network = data.get("network", {})
    feedback = data.get("feedback", {})
    arithmetic = data.get("arithmetic", {})
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()

    description = study.get("description", "")
    if not isinstance(description, str):
        raise reader.error("study.description", description, "a string")
    seeds = reader.seeds(study.get("seeds", 1))

    datasets = reader.axis("data.dataset", data_section.get("dataset", "digits"), reader.dataset)
    data_dir = reader.data_dir(data_section.get("data_dir"), base_dir, datasets)
    train_limit = reader.optional_count("data.train_limit", data_section.get("train_limit"))
    test_limit = reader.optional_count("data.test_limit", data_section.get("test_limit"))
    split_seed = reader.natural("data.split_seed", data_section.get("split_seed", 0))
    input_shifts = reader.axis("data.input_shift", data_section.get("input_shift", 0), reader.input_shift)

    hiddens = reader.hidden(network.get("hidden", [100]))
    activations = reader.axis("network.activation", network.get("activation", "relu"), reader.choice(_HIDDEN_ACTIVATIONS, lower=True))
    epochs = reader.axis("network.epochs", network.get("epochs", 1), reader.positive)
    batches = reader.axis("network.batch", network.get("batch", 1), reader.positive)
    schedules = reader.schedules(network.get("shift_steps", []))
    keeps = reader.axis("network.keep", network.get("keep", "last"), reader.choice(_KEEP, lower=True))

    algorithms = reader.axis("feedback.algorithm", feedback.get("algorithm", "ssdfa"), reader.choice(ALGORITHMS, lower=True))
    if "connections" in feedback:
        if "sdfa" not in algorithms:
            raise SsdfaError(f"{source}: feedback.connections (s) applies only to algorithm 'sdfa', which the study does not run")
        connections = reader.axis("feedback.connections", feedback["connections"], reader.positive)
    elif "sdfa" in algorithms:
        raise SsdfaError(f"{source}: algorithm 'sdfa' needs feedback.connections (s, the errors each neuron receives)")
    else:
        connections = [None]
    ranks = reader.axis("feedback.rank", feedback.get("rank", "full"), reader.rank)
    gains = reader.axis("feedback.gain", feedback.get("gain", "rule"), reader.gain)
    connectivities = reader.axis(
        "feedback.connectivity", feedback.get("connectivity", "balanced"), reader.choice(_CONNECTIVITY, lower=True)
    )

    precisions = reader.axis("arithmetic.precision", arithmetic.get("precision", "fixed"), reader.choice(PRECISIONS, lower=True))
    format_axes = reader.format_axes(arithmetic)
    roundings = reader.axis("arithmetic.rounding", arithmetic.get("rounding", _DEFAULT_ARITHMETIC.rounding.name), reader.choice(_SIGNAL_ROUNDINGS, key_hint="STOCH is for update_rounding"))
    update_roundings = reader.axis("arithmetic.update_rounding", arithmetic.get("update_rounding", _DEFAULT_ARITHMETIC.update_rounding.name), reader.choice(_UPDATE_ROUNDINGS))
    overflows = reader.axis("arithmetic.overflow", arithmetic.get("overflow", _DEFAULT_ARITHMETIC.overflow.name), reader.choice(_OVERFLOWS))
    shifts = reader.axis("arithmetic.shift", arithmetic.get("shift", "rule"), reader.shift)

    cells: dict[str, Cell] = {}
    skipped = 0
    grid = itertools.product(
        datasets, input_shifts, hiddens, activations, epochs, batches, schedules, keeps, algorithms, connections, ranks,
        gains, connectivities, precisions, format_axes, roundings, update_roundings, overflows, shifts, seeds,
    )
    for (dataset, input_shift, hidden, activation, epoch_count, batch, schedule, keep, algorithm, s, rank, gain, connectivity,
         precision, formats, rounding, update_rounding, overflow, shift, seed) in grid:
        outputs = KNOWN_CLASSES.get(dataset)
        feedback_config = _canonical_feedback(algorithm, s, rank, outputs, min(hidden), source)
        if feedback_config is None:
            skipped += 1
            continue
        if schedule and schedule[-1] > epoch_count:
            raise SsdfaError(f"{source}: network.shift_steps {list(schedule)} go beyond {epoch_count} epochs")
        if connectivity == "lfsr" and feedback_config["algorithm"] != "ssdfa":
            raise SsdfaError(f"{source}: feedback.connectivity 'lfsr' gives one error per neuron: it needs ssdfa")
        # The rule (model.defaults) where the spec gives no value and the fan-in is known; a
        # features file's cells keep null and the runner applies the rule once it reads the file.
        fan_in = KNOWN_FEATURES.get(dataset)
        feedback_format = FixedFormat.parse(str(formats["feedback"])) if precision == "fixed" else None
        if feedback_config["algorithm"] == "bp":
            gain, connectivity = None, None
        elif gain == "rule":
            gain = None if fan_in is None else default_feedback_gain(fan_in, min(hidden), feedback_format)
        if shift == "rule":
            shift = None if fan_in is None else default_shift(fan_in, batch)
        config = {
            "versions": dict(CURRENT_VERSIONS),
            "dataset": dataset,
            "split_seed": split_seed,
            "train_limit": train_limit,
            "test_limit": test_limit,
            "input_shift": input_shift,
            "hidden": list(hidden),
            "activation": activation,
            "epochs": epoch_count,
            "batch": batch,
            "shift_steps": list(schedule),
            "keep": keep,
            **feedback_config,
            "feedback_gain": gain,
            "connectivity": connectivity,
            "precision": precision,
            "shift": shift,
            "seed": seed,
        }
        if precision == "fixed":
            config["formats"] = {q: str(formats[q]) for q in QUANTITIES}
            config["rounding"], config["update_rounding"], config["overflow"] = rounding, update_rounding, overflow
            _check_arithmetic(config, source)
        else:  # a float run has no formats or modes: one cell, whatever those axes hold
            config["formats"] = None
            config["rounding"] = config["update_rounding"] = config["overflow"] = None
        _check_memory(config, source)
        cell = Cell(config, data_dir)
        cells.setdefault(cell.key, cell)
    if not cells:
        raise SsdfaError(
            f"{source}: the grid has no runnable cell: every combination has rank x connections "
            "below the number of outputs"
        )
    return StudySpec(name=name, description=description, cells=tuple(cells.values()), skipped=skipped)


def _canonical_feedback(algorithm: str, s: int | None, rank: int | None, outputs: int | None, narrowest: int, source: str) -> dict | None:
    """algorithm, connections and rank as stored in a cell; None for a combination to skip.

    SDFA with s = 1 is SSDFA and with s = M is DFA, so they are stored that way (DFA's s as
    null: all outputs). A rank that equals min(neurons, M) is full rank (null). With M unknown
    (a features file) the model checks s and the rank when it reads the file.
    """
    if algorithm == "bp":
        return {"algorithm": "bp", "connections": None, "rank": None}
    if algorithm == "ssdfa":
        s = 1
    elif algorithm == "dfa":
        s = None
    elif s == 1:
        algorithm = "ssdfa"
    elif s == outputs:
        algorithm, s = "dfa", None
    if outputs is None:
        return {"algorithm": algorithm, "connections": s, "rank": rank}
    if s is not None and s > outputs:
        raise SsdfaError(f"{source}: feedback.connections = {s} exceeds the dataset's {outputs} outputs")
    received = s or outputs
    full = min(outputs, narrowest)
    if rank is None:
        if full * received < outputs:
            raise SsdfaError(
                f"{source}: a hidden layer of {narrowest} neurons with s = {received} connections each cannot "
                f"receive all {outputs} output errors (rank x s < outputs); widen it or raise s"
            )
    elif rank > full:
        raise SsdfaError(
            f"{source}: feedback.rank = {rank} exceeds min(hidden size, outputs) = "
            f"min({narrowest}, {outputs}), the largest rank B can have"
        )
    elif rank * received < outputs:
        return None
    elif rank == full:
        rank = None
    return {"algorithm": algorithm, "connections": s, "rank": rank}


def _check_memory(config: dict, source: str) -> None:
    """A cell's network fits in the memory available (a worker runs one cell at a time)."""
    inputs, outputs = KNOWN_FEATURES.get(config["dataset"]), KNOWN_CLASSES.get(config["dataset"])
    # A features file's sizes are known once it is read: count one input and two classes.
    sizes = [inputs or 1, *config["hidden"], outputs or 2]
    require_memory(
        training_bytes(sizes, config["batch"], fixed=config["precision"] == "fixed"),
        f"{source}: network.hidden = {config['hidden']} with batch {config['batch']}",
    )


def _check_arithmetic(config: dict, source: str) -> None:
    """The formats and modes make an ArithmeticConfig, and (for a named dataset) every layer's
    exact intermediates fit the model's words."""
    try:
        arithmetic = ArithmeticConfig(
            **{q: FixedFormat.parse(config["formats"][q]) for q in QUANTITIES},
            rounding=Rounding[config["rounding"]],
            update_rounding=Rounding[config["update_rounding"]],
            overflow=Overflow[config["overflow"]],
            shift=_DEFAULT_ARITHMETIC.shift if config["shift"] is None else config["shift"],
        )
        inputs, outputs = KNOWN_FEATURES.get(config["dataset"]), KNOWN_CLASSES.get(config["dataset"])
        if inputs is None:
            return
        sizes = [inputs, *config["hidden"], outputs]
        for layer, (fan_in, neurons) in enumerate(zip(sizes, sizes[1:])):
            hidden = layer < len(sizes) - 2
            connections = (config["connections"] or outputs) if hidden and config["algorithm"] != "bp" else 1
            activation = Activation.parse(config["activation"]) if hidden else Activation.IDENTITY
            arithmetic.check_layer(LayerShape(fan_in, neurons, connections), activation, config["batch"])
    except (ValueError, TypeError) as exc:
        raise SsdfaError(f"{source}: {', '.join(f'{q} {f}' for q, f in config['formats'].items())}: {exc}") from None


class _Reader:
    """Checks values of one spec file; every error names the file, the key and the value."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, value, expected: str) -> SsdfaError:
        return SsdfaError(f"{self.source}: {key} = {value!r} is not valid; expected {expected}")

    def check_keys(self, data: dict) -> None:
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise SsdfaError(f"{self.source}: unknown section [{unknown[0]}]; expected sections {', '.join(_SECTIONS)}")
        for section, keys in _SECTIONS.items():
            values = data.get(section, {})
            if not isinstance(values, dict):
                raise SsdfaError(f"{self.source}: {section} must be a [{section}] table, not {values!r}")
            extra = sorted(set(values) - set(keys))
            if extra:
                hint = ""
                table, _, quantity = extra[0].partition(".")
                if section == "arithmetic" and table in ("formats", "int_bits") and quantity:
                    # --set arithmetic.formats.weight=... names a key of its own; the table is set whole.
                    hint = (f" (set the whole table: --set 'arithmetic.{table}={{{quantity}=...}}', "
                            f"or {table} = {{ {quantity} = ... }} in the file)")
                raise SsdfaError(f"{self.source}: unknown key {section}.{extra[0]}; [{section}] takes "
                                 f"{', '.join(keys)}{hint}")

    def axis(self, key: str, value, check) -> list:
        """A scalar is a one-value axis; a list is an axis (non-empty, no repeats)."""
        values = value if isinstance(value, list) else [value]
        if not values:
            raise SsdfaError(f"{self.source}: {key} is an empty list; give at least one value")
        checked = [check(key, v) for v in values]
        for i, v in enumerate(checked):
            if v in checked[:i]:
                raise SsdfaError(f"{self.source}: {key} lists {values[i]!r} twice")
        return checked

    def choice(self, allowed: tuple[str, ...], lower: bool = False, key_hint: str = ""):
        def check(key: str, value):
            text = value.lower() if lower and isinstance(value, str) else value.upper() if isinstance(value, str) else value
            if text not in allowed:
                hint = f" ({key_hint})" if key_hint else ""
                raise self.error(key, value, f"one of {', '.join(allowed)}{hint}")
            return text
        return check

    def positive(self, key: str, value) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(key, value, "a positive integer")
        return value

    def natural(self, key: str, value) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.error(key, value, "a non-negative integer")
        return value

    def optional_count(self, key: str, value) -> int | None:
        return None if value is None else self.positive(key, value)

    def input_shift(self, key: str, value) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 16:
            raise self.error(key, value, "an integer from 0 to 16 (features times 2**-input_shift)")
        return value

    def gain(self, key: str, value):
        if isinstance(value, str) and value.lower() == "rule":
            return "rule"
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
            raise self.error(key, value, '"rule" or a positive number')
        return float(value)

    def schedules(self, value) -> list[tuple[int, ...]]:
        """``[3, 5]`` (one schedule), ``[]`` (none) or ``[[], [3, 5]]`` (an axis)."""
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            candidates = value
        else:
            candidates = [value]
        checked = []
        for schedule in candidates:
            if not isinstance(schedule, list) or not all(
                isinstance(e, int) and not isinstance(e, bool) and e >= 2 for e in schedule
            ) or any(b <= a for a, b in zip(schedule, schedule[1:])):
                raise self.error("network.shift_steps", schedule, "increasing epochs from 2, or a list of such lists")
            if tuple(schedule) in checked:
                raise SsdfaError(f"{self.source}: network.shift_steps lists {schedule!r} twice")
            checked.append(tuple(schedule))
        return checked

    def shift(self, key: str, value) -> int | str:
        if isinstance(value, str) and value.lower() == "rule":
            return "rule"
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 30:
            raise self.error(key, value, '"rule" or an integer from 0 to 30 (learning rate 2**-shift)')
        return value

    def rank(self, key: str, value) -> int | None:
        if isinstance(value, str) and value.lower() == "full":
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(key, value, '"full" or a positive integer')
        return value

    def seeds(self, value) -> list[int]:
        expected = "a positive count or a list of seeds from 0 to 2^32 - 1"
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= 2**32:
                raise self.error("study.seeds", value, expected)
            return list(range(value))

        def seed(key: str, item) -> int:
            # LFSR seeds are taken modulo 2^32 (docs/arithmetic.md §5.2): a larger one would alias.
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < 2**32:
                raise self.error(key, item, expected)
            return item

        return self.axis("study.seeds", value, seed)

    def dataset(self, key: str, value) -> str:
        if not isinstance(value, str):
            raise self.error(key, value, "a dataset name")
        if value.startswith(FEATURES_PREFIX):
            if len(value) == len(FEATURES_PREFIX):
                raise self.error(key, value, f"{FEATURES_PREFIX}PATH.npz with a path after the colon")
            return value
        if value.lower() not in dataset_names():
            raise self.error(key, value, f"one of {', '.join(dataset_names())} or {FEATURES_PREFIX}PATH.npz")
        return value.lower()

    def data_dir(self, value, base_dir: Path, datasets: list[str]) -> str | None:
        if value is None:
            needs_files = [d for d in datasets if d != "digits" and not d.startswith(FEATURES_PREFIX)]
            if needs_files:
                raise SsdfaError(f"{self.source}: dataset {needs_files[0]!r} is read from files: set data.data_dir")
            # A relative features path starts from the spec's folder.
            return str(base_dir) if any(d.startswith(FEATURES_PREFIX) for d in datasets) else None
        if not isinstance(value, str) or not value:
            raise self.error("data.data_dir", value, "a folder path")
        directory = (base_dir / Path(value).expanduser()).resolve()
        if not directory.is_dir():
            raise SsdfaError(f"{self.source}: data.data_dir {value!r} is not a folder ({directory} does not exist)")
        return str(directory)

    def hidden(self, value) -> list[tuple[int, ...]]:
        """``100``, ``[100, 50]`` (one network) or ``[[100], [100, 50]]`` (an axis)."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            networks = value
        elif isinstance(value, list):
            networks = [value]
        else:
            networks = [value]
        checked = []
        for network in networks:
            if (not isinstance(network, list) or not network
                    or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in network)):
                raise self.error("network.hidden", network, "a list of positive layer sizes, or a list of such lists")
            if tuple(network) in checked:
                raise SsdfaError(f"{self.source}: network.hidden lists {network!r} twice")
            checked.append(tuple(network))
        return checked

    def format_axes(self, arithmetic: dict) -> list[dict[str, FixedFormat]]:
        """Every combination of the formats: explicit ones, else SQ(int_bits, word - int_bits)."""
        explicit = arithmetic.get("formats", {})
        if not isinstance(explicit, dict):
            raise self.error("arithmetic.formats", explicit, "a table of formats per quantity")
        unknown = sorted(set(explicit) - set(QUANTITIES))
        if unknown:
            raise SsdfaError(f"{self.source}: unknown key arithmetic.formats.{unknown[0]}; quantities are {', '.join(QUANTITIES)}")
        int_bits = arithmetic.get("int_bits", {})
        if not isinstance(int_bits, dict):
            raise self.error("arithmetic.int_bits", int_bits, "a table of integer bits per quantity")
        unknown = sorted(set(int_bits) - set(QUANTITIES))
        if unknown:
            raise SsdfaError(f"{self.source}: unknown key arithmetic.int_bits.{unknown[0]}; quantities are {', '.join(QUANTITIES)}")
        for quantity, bits in int_bits.items():
            if not isinstance(bits, int) or isinstance(bits, bool) or bits < 1:
                raise self.error(f"arithmetic.int_bits.{quantity}", bits, "a positive integer (it counts the sign bit)")
        if int_bits and "word" not in arithmetic:
            raise SsdfaError(f"{self.source}: arithmetic.int_bits needs arithmetic.word (the word width it splits)")

        def parse(key: str, value) -> FixedFormat:
            expected = "a format such as 'SQ(2,14)' or 'UQ(0,8)'"
            if not isinstance(value, str):
                raise self.error(key, value, expected)
            try:
                return FixedFormat.parse(value)
            except (ValueError, TypeError) as exc:
                # A well-formed format out of range says what is wrong with it (a word too wide).
                if str(exc).startswith("format "):
                    raise SsdfaError(f"{self.source}: {key} = {value!r}: {str(exc)[len('format '):]}") from None
                raise self.error(key, value, expected) from None

        per_quantity = {q: self.axis(f"arithmetic.formats.{q}", explicit[q], parse) for q in explicit}
        words = self.axis("arithmetic.word", arithmetic["word"], self._word) if "word" in arithmetic else [None]
        combinations = []
        for word in words:
            derived = {}
            for quantity in QUANTITIES:
                if quantity in per_quantity:
                    continue
                default = getattr(_DEFAULT_ARITHMETIC, quantity)
                if word is None:
                    derived[quantity] = [default]
                    continue
                bits = int_bits.get(quantity, default.int_bits)
                if bits > word:
                    raise SsdfaError(
                        f"{self.source}: arithmetic.word = {word} is narrower than "
                        f"arithmetic.int_bits.{quantity} = {bits}"
                    )
                derived[quantity] = [FixedFormat(bits, word - bits)]
            axes = {**derived, **per_quantity}
            for choice in itertools.product(*(axes[q] for q in QUANTITIES)):
                combinations.append(dict(zip(QUANTITIES, choice)))
        return combinations

    def _word(self, key: str, value) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 2 <= value <= 32:
            raise self.error(key, value, "a word width from 2 to 32 bits")
        return value
