"""Golden sets in, harness files out; harness results in, mismatch reports out.

The co-simulation harnesses (``sim/harness/*.v``, docs/cosim.md) run a DUT from plain text
files and compare every output on the fly. This module is the Python side of that contract:

* ``write_harness_files`` turns one ``GoldenSet`` (golden/format.py) into the files of one
  harness instance, for the layer, one PE or the error router;
* ``read_harness_result`` reads the result file a harness writes at the end of a run;
* ``Mismatch`` names a differing value the way the golden set does: sample, layer, neuron or
  weight index, the expected and the actual raw value and their real values.

Nothing here rounds a fixed-point value: expected values are the golden set's arrays, masked
to the width the harness compares. A set stored with checksums only (no ``weights_per_sample``)
gets its per-sample weights from the model's bit-exact path re-run on the set's own stimulus,
and they are used only after their SHA-256 matches every checksum of the set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.golden.format import GoldenSet, derivative_format, weight_checksum
from ssdfa.model.arithmetic import FixedFormat, Rounding
from ssdfa.model.layer_config import LayerConfig

__all__ = [
    "TOPS",
    "Quantity",
    "QUANTITIES",
    "HarnessShape",
    "harness_shape",
    "expected_weights",
    "write_harness_files",
    "HarnessResult",
    "Mismatch",
    "read_harness_result",
    "vectors_of",
    "expected_checks",
]

#: The DUTs a golden set can drive: the whole layer, its PEs one at a time, its router.
TOPS = ("layer", "pe", "router")

# Host-port spaces (rtl/signatures.py Space, rtl/layer.py LayerSpace).
_WEIGHT, _FEEDBACK, _LFSR, _DELTA, _DERIVATIVE, _INDEX = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Quantity:
    """What a harness check code refers to.

    Attributes
    ----------
    code : int
        The code in the harness's mismatch lines (sim/harness/cosim_common.vh).
    name : str
        The golden array (or a short phrase) it is compared with.
    description : str
    """

    code: int
    name: str
    description: str


QUANTITIES = {
    q.code: q
    for q in (
        Quantity(1, "pre_activation", "y, the pre-activation (§4.1)"),
        Quantity(2, "activation", "a = f(y) (§4.2)"),
        Quantity(3, "derivative", "the stored f' (§4.3)"),
        Quantity(4, "delta", "delta (§6.1, §6.2)"),
        Quantity(5, "lfsr_state", "LFSR state after the sample's draws (§5)"),
        Quantity(6, "weights", "weight after the sample's update (§7)"),
        Quantity(7, "errors", "error word delivered by the router (§6.1)"),
        Quantity(8, "counter", "counter or word count at the end of the run"),
        Quantity(9, "timeout", "no progress: the DUT stopped taking or giving words"),
        Quantity(10, "extra word", "a word the DUT should not have produced"),
        Quantity(11, "file", "a harness file is missing or ended early"),
        Quantity(12, "feedback_value", "a feedback constant read back through the host port after loading"),
    )
}


@dataclass(frozen=True)
class HarnessShape:
    """The numbers a harness of one set needs, and the widths it compares at.

    Attributes
    ----------
    config : LayerConfig
    samples : int
        S.
    passes : int
        1 for the layer and the router; P for the PE top, which runs each PE's neurons in turn.
    host_data_width : int
        Width of host-port data (reads are compared at this width, sign-extended).
    """

    config: LayerConfig
    samples: int
    passes: int
    host_data_width: int

    @property
    def neurons(self) -> int:
        return self.config.shape.neurons

    @property
    def fan_in(self) -> int:
        return self.config.shape.fan_in

    @property
    def slots(self) -> int:
        """K, neurons per PE."""
        return self.config.neurons_per_pe

    @property
    def connections(self) -> int:
        return self.config.shape.connections

    @property
    def stochastic(self) -> bool:
        return self.config.arithmetic.update_rounding is Rounding.STOCH


def harness_shape(golden: GoldenSet, top: str, host_data_width: int) -> HarnessShape:
    """The ``HarnessShape`` of ``golden`` on ``top`` (``"layer"``, ``"pe"`` or ``"router"``)."""
    if top not in TOPS:
        raise SsdfaError(f"unknown top {top!r}; expected one of {', '.join(TOPS)}")
    if golden.kind != "layer":
        raise SsdfaError(f"co-simulation drives layer sets, not sets of kind {golden.kind!r}")
    passes = golden.config.pes if top == "pe" else 1
    return HarnessShape(golden.config, int(golden.parameters["samples"]), passes, host_data_width)


def expected_checks(shape: HarnessShape, top: str, every: bool) -> int:
    """How many values a harness compares for ``shape``: a run that compared fewer (a harness
    that skipped a check, a file that ended early) does not pass, whatever its mismatch count.

    Once, after loading: the s feedback constants of every neuron of a hidden layer. Per
    sample: (y, a) of every neuron; per read-back (after every sample, or once): delta,
    f', LFSR state (STOCH) and every weight of every neuron; the router: every delivered word.
    At the end: the layer's counters and word counts (P + 4), the PE's word counts (2), the
    router's counters, fault flag, busy flag and word count (P + 4).
    """
    s, n, k, f, p = shape.samples, shape.neurons, shape.slots, shape.fan_in, shape.config.pes
    readbacks = s if every else 1
    if top == "router":
        return s * p * k * shape.connections + p + 4
    per_neuron = 2 + int(shape.stochastic) + (f + 1)  # delta, f', LFSR, weights
    feedback = 0 if shape.config.is_output_layer else shape.connections  # per neuron, after loading
    if top == "pe":
        return p * (k * feedback + s * 2 * k + readbacks * k * per_neuron) + 2
    return n * feedback + s * 2 * n + readbacks * n * per_neuron + p + 4


def vectors_of(shape: HarnessShape) -> int:
    """Vectors a run checks: one vector is one training sample through one layer (all its
    neurons); the PE top runs a sample once per PE, so it counts S x P."""
    return shape.samples * shape.passes


# --------------------------------------------------------------------------------------------
# Expected values
# --------------------------------------------------------------------------------------------


def expected_weights(golden: GoldenSet) -> np.ndarray:
    """The weights after every sample, (S, N, F + 1), each proven by the set's checksums.

    ``weights_per_sample`` when the set stores it. Otherwise the model's bit-exact path
    (``golden.layer_vectors.simulate_layer``) is re-run on the set's own stimulus, and the
    result is used only if its SHA-256 equals the set's ``weight_checksum`` at every sample.

    Raises
    ------
    SsdfaError
        If the model does not reproduce the set's checksums (the set was made by a model that
        computes differently): the message names the first sample that differs.
    """
    if "weights_per_sample" in golden.arrays:
        return np.asarray(golden["weights_per_sample"])
    from ssdfa.golden.layer_vectors import LayerStimulus, simulate_layer

    config: LayerConfig = golden.config
    if config.is_output_layer:
        stimulus = LayerStimulus(golden["weights_initial"], golden["inputs"], targets=golden["targets"])
    else:
        stimulus = LayerStimulus(
            golden["weights_initial"], golden["inputs"], golden["feedback_index"], golden["feedback_value"],
            errors=golden["errors"],
        )
    history = simulate_layer(config, stimulus, full_weights=True)["weights_per_sample"]
    checksums = golden["weight_checksum"]
    for sample in range(history.shape[0]):
        if weight_checksum(history[sample]) != bytes(checksums[sample]):
            raise SsdfaError(
                f"the golden set stores weight checksums only, and the model's weights after sample {sample} "
                "do not match its checksum: the set was made by a model that computes differently; "
                "regenerate it (docs/golden.md section 6)"
            )
    return history


def _masked(values, width: int) -> np.ndarray:
    """Raw integers as unsigned ``width``-bit words (two's complement for negative values)."""
    array = np.asarray(values).astype(np.int64).astype(np.uint64)
    return array & np.uint64((1 << width) - 1)


def _hex(values, width: int) -> str:
    words = _masked(values, width).ravel().tolist()
    return "".join(f"{word:x}\n" for word in words)


def _hex_rows(rows, width: int) -> str:
    """One line per row, the row's words separated by spaces."""
    masked = _masked(rows, width)
    return "".join(" ".join(f"{word:x}" for word in row) + "\n" for row in masked.tolist())


def _readback(golden: GoldenSet, shape: HarnessShape, sample: int, weights: np.ndarray,
              neurons: slice) -> list[np.ndarray]:
    """One read-back's expected words in the harness's order: deltas, derivatives, LFSR states
    (STOCH only), weights neuron-major, for ``neurons``."""
    parts = [golden["delta"][sample, neurons], golden["derivative"][sample, neurons]]
    if shape.stochastic:
        parts.append(golden["lfsr_state"][sample, neurons])
    parts.append(weights[sample, neurons].ravel())
    return [np.asarray(part).astype(np.int64) for part in parts]


def _readback_text(golden, shape, weights, every: bool, neurons: slice) -> str:
    """The rb file of ``neurons``: their feedback constants (hidden layers), which the harness
    reads back once after loading, then every read-back after a sample."""
    samples = range(shape.samples) if every else [shape.samples - 1]
    pieces = []
    if not shape.config.is_output_layer:
        pieces.append(_hex(golden["feedback_value"][neurons], shape.host_data_width))
    for sample in samples:
        pieces.extend(_hex(part, shape.host_data_width) for part in _readback(golden, shape, sample, weights, neurons))
    return "".join(pieces)


def _routed_errors(golden: GoldenSet, neuron: int) -> np.ndarray:
    """(S, s): the error words neuron ``neuron`` receives per sample, in connection order."""
    errors = golden["errors"]
    if golden.config.is_output_layer:
        return errors[:, neuron : neuron + 1]
    return errors[:, golden["feedback_index"][neuron]]


def _host_writes(golden: GoldenSet, shape: HarnessShape, pe: int, *, with_index: bool) -> list[tuple]:
    """The host writes that load PE ``pe``'s neurons: (pe, space, address, raw value)."""
    config = shape.config
    rows = shape.fan_in + 1
    s = shape.connections
    writes = []
    for k in range(shape.slots):
        neuron = pe * shape.slots + k
        for j in range(rows):
            writes.append((pe, _WEIGHT, k * rows + j, int(golden["weights_initial"][neuron, j])))
        if not config.is_output_layer:
            for t in range(s):
                writes.append((pe, _FEEDBACK, k * s + t, int(golden["feedback_value"][neuron, t])))
                if with_index:
                    writes.append((pe, _INDEX, k * s + t, int(golden["feedback_index"][neuron, t])))
        if shape.stochastic:
            writes.append((pe, _LFSR, k, int(golden["lfsr_seed"][neuron])))
    return writes


def _writes_text(writes: list[tuple], width: int) -> str:
    mask = (1 << width) - 1
    return "".join(f"{pe:x} {space:x} {addr:x} {value & mask:x}\n" for pe, space, addr, value in writes)


def write_harness_files(directory, instance: int, golden: GoldenSet, top: str, *, every: bool,
                        host_data_width: int, stall: int = 0, stall_seed: int = 1,
                        weights: np.ndarray | None = None) -> HarnessShape:
    """Write the files harness instance ``instance`` reads (``h<instance>_*.hex``).

    Parameters
    ----------
    directory : path
        Where the files go (the ``+cosim_dir`` of the run).
    instance : int
        The harness's ``ID``.
    golden : GoldenSet
        A validated layer set.
    top : str
        ``"layer"``, ``"pe"`` or ``"router"``.
    every : bool
        Read the state back after every sample (``True``) or only after the last.
    host_data_width : int
        The DUT's host data width (ignored for the router).
    stall, stall_seed : int
        0..255: probability (/256) of an idle clock before each stimulus word and of a low
        ``ready`` on each output stream; the seed of the harness's generator.
    weights : array (S, N, F + 1), optional
        ``expected_weights(golden)``, when the caller has it already.

    Returns
    -------
    HarnessShape
    """
    directory = Path(directory)
    if not isinstance(stall, int) or not 0 <= stall <= 255:
        raise SsdfaError(f"stall must be an integer from 0 to 255, not {stall!r}")
    shape = harness_shape(golden, top, host_data_width)
    stalls = [stall, stall_seed & 0xFFFFFFFF]
    config = shape.config
    a = config.arithmetic
    act, err = a.activation.word, a.error.word
    files: dict[str, str] = {}
    if top in ("layer", "pe") and weights is None:
        weights = expected_weights(golden)

    if top == "layer":
        writes = []
        for pe in range(config.pes):
            writes += _host_writes(golden, shape, pe, with_index=True)
        files["load"] = _hex([shape.samples, int(every), *stalls, len(writes)], 32) + _writes_text(writes, host_data_width)
        files["x"] = _hex(golden["inputs"], act)
        files["e"] = _hex(golden["errors"], err)
        files["ya"] = _hex_rows(np.stack([golden["pre_activation"], golden["activation"]], axis=-1).reshape(-1, 2), act)
        files["rb"] = _readback_text(golden, shape, weights, every, slice(None))
    elif top == "pe":
        load, xs, es, ya, rb = [_hex([shape.samples, int(every), *stalls], 32)], [], [], [], []
        inputs = golden["inputs"]
        for pe in range(config.pes):
            neurons = slice(pe * shape.slots, (pe + 1) * shape.slots)
            writes = _host_writes(golden, shape, pe, with_index=False)
            load.append(_hex([len(writes)], 32) + _writes_text([(0, *w[1:]) for w in writes], host_data_width))
            # FORWARD streams x once, UPDATE streams it again.
            xs.append(_hex(np.concatenate([inputs, inputs], axis=1), act))
            routed = np.concatenate([_routed_errors(golden, n) for n in range(neurons.start, neurons.stop)], axis=1)
            es.append(_hex(routed, err))
            pairs = np.stack([golden["pre_activation"][:, neurons], golden["activation"][:, neurons]], axis=-1)
            ya.append(_hex_rows(pairs.reshape(-1, 2), act))
            rb.append(_readback_text(golden, shape, weights, every, neurons))
        files.update(load="".join(load), x="".join(xs), e="".join(es), ya="".join(ya), rb="".join(rb))
    else:
        table = _router_table(golden)
        writes = [(pe, 0, k * shape.connections + t, int(table[pe * shape.slots + k, t]))
                  for pe in range(config.pes) for k in range(shape.slots) for t in range(shape.connections)]
        files["load"] = _hex([shape.samples, *stalls, len(writes)], 32) + _writes_text(writes, 32)
        files["e"] = _hex(golden["errors"], err)
        for pe in range(config.pes):
            neurons = range(pe * shape.slots, (pe + 1) * shape.slots)
            routed = np.concatenate([_routed_errors(golden, n) for n in neurons], axis=1)
            files[f"route{pe}"] = _hex(routed, err)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"h{instance}_{name}.hex").write_text(text)
    return shape


def _router_table(golden: GoldenSet) -> np.ndarray:
    """(N, s) output-error index of each neuron's connections (identity for the output layer)."""
    if golden.config.is_output_layer:
        return np.arange(golden.config.shape.neurons)[:, None]
    return np.asarray(golden["feedback_index"])


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """One differing value, named as the golden set names it.

    Attributes
    ----------
    quantity : Quantity
    sample : int
        Training sample (0-based), or -1 when the check is not tied to one.
    layer : int
        The layer's index in its network (``[layer] index``).
    neuron : int or None
        Neuron number ``0..N-1``.
    column : int or None
        Weights: input ``j`` (``F`` is the bias); routed errors: connection ``t``; counters:
        which counter.
    expected, actual : int or None
        Raw values as the format reads them (None when the harness saw X or Z bits).
    fmt : FixedFormat or None
        The format of the raw values, for their real values.
    expected_bits, actual_bits : str
        The compared words in hexadecimal, as the harness printed them.
    detail : str
        What the indices alone do not say (the bias, the router port, the counter's name).
    """

    quantity: Quantity
    sample: int
    layer: int
    neuron: int | None
    column: int | None
    expected: int | None
    actual: int | None
    fmt: FixedFormat | None
    expected_bits: str
    actual_bits: str
    detail: str = ""

    def _value(self, raw) -> str:
        if raw is None:
            return "unknown (X/Z bits)"
        if self.fmt is None:
            return str(raw)
        real = raw / (1 << self.fmt.frac_bits)
        return f"raw {raw} (= {real!r} in {self.fmt})"  # exact: raw / 2^f is a binary fraction

    def where(self) -> str:
        parts = []
        if self.sample >= 0:
            parts.append(f"sample {self.sample}")
        parts.append(f"layer {self.layer}")
        if self.neuron is not None:
            parts.append(f"neuron {self.neuron}")
        return ", ".join(parts)

    def __str__(self) -> str:
        q = self.quantity
        if q.code in (9, 11):
            return f"{q.name}: {self.detail or q.description}"
        what = q.name
        if q.code == 6 and self.column is not None:
            what = f"weight W[{self.neuron},{self.column}]" + (" (bias)" if self.detail == "bias" else "")
        elif q.code == 7 and self.column is not None:
            what = f"error word of connection {self.column} ({self.detail})"
        elif q.code == 8:
            what = f"counter {self.detail}"
        elif q.code == 10:
            what = f"extra word ({self.detail})"
        elif q.code == 12 and self.column is not None:
            what = f"feedback constant b[{self.neuron},{self.column}] read back after loading"
        return (
            f"{self.where()}: {what}: expected {self._value(self.expected)}, actual {self._value(self.actual)} "
            f"[bits 0x{self.expected_bits} vs 0x{self.actual_bits}]"
        )


@dataclass
class HarnessResult:
    """What one harness instance reported.

    Attributes
    ----------
    finished : bool
        The harness wrote its summary line.
    checks, mismatch_count : int
        Values compared, and how many differed.
    cycles : int
        Clocks from reset to the end of this instance's run.
    run_start, run_end : int
        The clocks of the first command transfer and of the last ``done`` (layer) or of the
        run's start and end (PE, router).
    mismatches : list of Mismatch
        The first ones (at most 32), in the order they happened.
    notes : list of str
        Other lines (a file that ended early).
    """

    finished: bool = False
    checks: int = 0
    mismatch_count: int = 0
    cycles: int = 0
    run_start: int = 0
    run_end: int = 0
    mismatches: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.finished and self.mismatch_count == 0 and self.checks > 0


_COUNTERS_LAYER = ("errors_received", "commands completed")


def _to_raw(bits: str, width: int, signed: bool) -> int | None:
    if not re.fullmatch(r"[0-9a-fA-F]+", bits):
        return None
    value = int(bits, 16) & ((1 << width) - 1)
    if signed and value >> (width - 1):
        value -= 1 << width
    return value


def _decode(shape: HarnessShape, top: str, code: int, pass_: int, sample: int, index: int,
            expected: str, actual: str, table: np.ndarray | None) -> Mismatch:
    config = shape.config
    a = config.arithmetic
    quantity = QUANTITIES.get(code, Quantity(code, f"code {code}", "unknown check"))
    layer = config.index
    host = shape.host_data_width
    base = pass_ * shape.slots  # the PE top numbers neurons within its pass
    neuron = column = None
    fmt = None
    width, signed = 64, False
    detail = ""
    if code in (1, 2):
        fmt, width, signed = a.activation, a.activation.word, a.activation.signed
        neuron = base + index
    elif code == 3:
        fmt, width, signed = derivative_format(config), host, False
        neuron = base + index
    elif code == 4:
        fmt = a.error if config.is_output_layer else a.delta
        width, signed = host, fmt.signed
        neuron = base + index
    elif code == 5:
        width, signed = host, False
        neuron = base + index
    elif code == 6:
        fmt, width, signed = a.weight, host, a.weight.signed
        rows = shape.fan_in + 1
        neuron, column = base + index // rows, index % rows
        detail = "bias" if column == shape.fan_in else ""
    elif code == 12:
        fmt, width, signed = a.feedback, host, a.feedback.signed
        neuron, column = base + index // shape.connections, index % shape.connections
        sample = -1  # read back after loading, before any sample
    elif code == 7:
        fmt, width, signed = a.error, a.error.word, a.error.signed
        per_port = shape.slots * shape.connections
        port, position = divmod(index, per_port)
        neuron = port * shape.slots + position // shape.connections
        column = position % shape.connections
        detail = f"PE port {port}, word {position} of the sample"
    elif code == 8:
        names = _counter_names(shape, top)
        detail = names[index] if index < len(names) else f"#{index}"
    elif code == 10:
        detail = f"output word {index} of sample {sample}" if top != "router" else f"word {index}"
    elif code == 9:
        detail = f"no progress for {int(expected, 16)} clocks (at clock {int(actual, 16)})"
        sample = -1
    elif code == 11:
        sample = -1
    expected_raw = _to_raw(expected, width, signed)
    actual_raw = _to_raw(actual, width, signed)
    if code == 7 and table is not None and neuron < table.shape[0]:
        detail += f", expected e[{int(table[neuron, column])}]"
    return Mismatch(quantity, sample, layer, neuron, column, expected_raw, actual_raw, fmt,
                    expected.lstrip("0") or "0", actual.lstrip("0") or "0", detail)


def _counter_names(shape: HarnessShape, top: str) -> list[str]:
    p = shape.config.pes
    if top == "layer":
        return [*_COUNTERS_LAYER, *(f"errors_delivered[{i}]" for i in range(p)), "x words taken", "e words taken"]
    if top == "pe":
        return ["x words taken", "e words taken"]
    return ["received", *(f"delivered[{i}]" for i in range(p)), "table_fault", "busy", "e words taken"]


def read_harness_result(path, shape: HarnessShape, top: str, golden: GoldenSet | None = None) -> HarnessResult:
    """Parse the result file of one harness instance (``h<ID>_result.txt``).

    A missing file or one without its summary line gives a result that did not pass
    (``finished`` False): a run that stopped early never counts as a pass.
    """
    result = HarnessResult()
    path = Path(path)
    if not path.is_file():
        result.notes.append(f"no result file {path.name}: the harness did not run")
        return result
    table = _router_table(golden) if golden is not None else None
    for line in path.read_text(errors="replace").splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "mismatch" and len(fields) == 7:
            code, pass_, sample, index = (int(v) for v in fields[1:5])
            result.mismatches.append(_decode(shape, top, code, pass_, sample, index, fields[5], fields[6], table))
        elif fields[0] == "summary" and len(fields) == 7:
            checks, count, cycles, start, end, _samples = (int(v) for v in fields[1:])
            result.checks, result.mismatch_count, result.cycles = checks, count, cycles
            result.run_start, result.run_end = start, end
            result.finished = True
        elif fields[0] == "file":
            note = " ".join(fields[1:])
            result.notes.append(note)
            result.mismatches = [
                Mismatch(m.quantity, m.sample, m.layer, m.neuron, m.column, m.expected, m.actual, m.fmt,
                         m.expected_bits, m.actual_bits, note) if m.quantity.code == 11 else m
                for m in result.mismatches
            ]
        elif fields[0] != "harness":
            result.notes.append(line)
    return result

