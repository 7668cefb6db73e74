"""The host driver of ``ssdfa board train`` and ``ssdfa board eval`` (docs/board.md §3): load a
learner through the link, stream samples, collect predictions, read weights and counters back,
and check them against the reference model.

The driver sees only a ``Link``: a serial port and the Verilator board core are the same to it.
``Progress`` records the last acknowledged sample and the SEQ of the next request, so that a run
stopped by a link error resumes from there (``resume=``) on a board that kept its state.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ssdfa import learner_regs as regs
from ssdfa.errors import SsdfaError

from . import frames
from .link import Link, LinkError

__all__ = ["Progress", "BoardRun", "check_learner", "load_state", "stream_samples", "read_words", "train_on_board", "link_figures"]


@dataclass
class Progress:
    """Where a run stands: the phase, the next sample to send and the SEQ it goes with."""

    phase: str = "load"  # load, train, test, readback
    next_sample: int = 0
    #: [SEQ, command, payload as hex] of the request the link lost, sent again first on resume.
    pending: list | None = None
    counters: dict | None = None
    train_predictions: list = field(default_factory=list)
    test_predictions: list = field(default_factory=list)
    #: What the run is (network, PEs, seed, samples): a resume with other options is refused.
    run: dict | None = None

    PHASES = ("load", "train", "test", "readback")

    def resend_pending(self, link: Link) -> None:
        """Send the lost request again with its SEQ: the bridge carries it out if it never got
        it, or answers from its record if it did; either way its reply is taken here once."""
        if self.pending is None:
            return
        seq, command, payload = self.pending[0], self.pending[1], bytes.fromhex(self.pending[2])
        answer = link.request(frames.Command(command), payload, seq=seq)
        predictions = self.train_predictions if self.phase == "train" else self.test_predictions
        if command == frames.Command.SAMPLE and self.phase in ("train", "test"):
            predictions += list(answer)
            self.next_sample += 1
        elif command == frames.Command.PREDICTIONS and self.phase in ("train", "test"):
            predictions += list(answer)
        self.pending = None

    def save(self, path) -> None:
        path = Path(path)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        partial.write_text(json.dumps(asdict(self)))
        os.replace(partial, path)

    @classmethod
    def load(cls, path) -> Progress:
        try:
            progress = cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise SsdfaError(f"cannot resume from {path}: {error}") from None
        problem = progress._problem()
        if problem:
            raise SsdfaError(f"cannot resume from {path}: {problem}; not a progress file of ssdfa board train")
        return progress

    def _problem(self) -> str:
        """What makes the fields impossible (a hand-edited or foreign file), or ''."""
        def whole(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        if self.phase not in self.PHASES:
            return f"phase {self.phase!r} is not one of {', '.join(self.PHASES)}"
        if not whole(self.next_sample):
            return f"next_sample {self.next_sample!r} is not a sample index"
        if self.pending is not None:
            if not (isinstance(self.pending, list) and len(self.pending) == 3 and whole(self.pending[0])
                    and self.pending[1] in {c.value for c in frames.Command} and isinstance(self.pending[2], str)):
                return f"pending {self.pending!r} is not [SEQ, command, payload]"
            try:
                bytes.fromhex(self.pending[2])
            except ValueError:
                return f"pending payload {self.pending[2]!r} is not hexadecimal"
        if self.counters is not None and not (
                isinstance(self.counters, dict) and {"cycles", "train_samples", "train_correct"} <= set(self.counters)
                and all(whole(v) for v in self.counters.values())):
            return "counters lack cycles, train_samples or train_correct"
        for name in ("train_predictions", "test_predictions"):
            if not (isinstance(getattr(self, name), list) and all(whole(v) for v in getattr(self, name))):
                return f"{name} is not a list of class indices"
        if self.run is not None and not isinstance(self.run, dict):
            return "run is not a table"
        return ""


def _select_word(layer: int, pe: int, space: int) -> int:
    return (layer << regs.SELECT_LAYER_SHIFT) | (pe << regs.SELECT_PE_SHIFT) | (space << regs.SELECT_SPACE_SHIFT)


def _runs(accesses):
    """Consecutive accesses of one (layer, PE, space) at consecutive addresses, grouped."""
    groups = []
    for access in accesses:
        key = (access.layer, access.pe, access.space)
        if groups and groups[-1][0] == key and groups[-1][1] + len(groups[-1][2]) == access.addr:
            groups[-1][2].append(access)
        else:
            groups.append((key, access.addr, [access]))
    return groups


def check_learner(link: Link, sizes, feature_bytes: int, *, read_registers: bool = True) -> None:
    """Refuse a board whose learner is not the one the host is about to drive: its HELLO's inputs,
    classes and feature bytes, and (``read_registers``) the ID and the layer count in VERSION.
    (The board reports no hidden width or PE split: a bitstream of the same inputs, classes and
    layers but another hidden layer is not told apart here.)"""
    hello = link.hello()  # numbering goes on after the board's last SEQ
    if (hello.inputs, hello.classes, hello.feature_bytes) != (sizes[0], sizes[-1], feature_bytes):
        raise LinkError(f"{link.transport.name}: the board's learner has {hello.inputs} inputs, {hello.classes} "
                        f"classes and {hello.feature_bytes}-byte features, not {sizes[0]}, {sizes[-1]} and "
                        f"{feature_bytes}")
    if read_registers:
        identifier, version = link.read(regs.REG_ID)[0], link.read(regs.REG_VERSION)[0]
        layers = (version & regs.VERSION_LAYERS_MASK) >> regs.VERSION_LAYERS_SHIFT
        if identifier != regs.IDENTIFIER or layers != len(sizes) - 1:
            raise LinkError(f"{link.transport.name}: ID 0x{identifier:08X}, {layers} layers: not this learner")


def load_state(link: Link, writes) -> int:
    """Learner writes through SELECT, ADDRESS and bursts of DATA; returns the frames sent."""
    sent = 0
    for (layer, pe, space), address, group in _runs(writes):
        link.write(regs.REG_SELECT, [_select_word(layer, pe, space)])
        link.write(regs.REG_ADDRESS, [address])
        link.write(regs.REG_DATA, [w.data for w in group])
        sent += 2 + -(-len(group) // frames.MAX_BURST_WORDS)
    return sent


def read_words(link: Link, reads) -> list[int]:
    """Learner reads (the counters through the counter window), in order."""
    words = []
    for (layer, pe, space), address, group in _runs(reads):
        if space == regs.SPACE_COUNTER:
            for read in group:
                words += link.read(regs.COUNTER_WINDOW + 4 * read.addr)
            continue
        link.write(regs.REG_SELECT, [_select_word(layer, pe, space)])
        link.write(regs.REG_ADDRESS, [address])
        words += link.read(regs.REG_DATA, len(group))
    return words


def _sample_payload(x_row, feature_bytes: int) -> bytes:
    mask = (1 << (8 * feature_bytes)) - 1
    return b"".join((int(v) & mask).to_bytes(feature_bytes, "little") for v in x_row)


def stream_samples(link: Link, x_raw, labels, *, mode: int, feature_bytes: int, progress: Progress, phase: str,
                   predictions: list, poll_seconds: float = 0.0) -> None:
    """One run: SAMPLES and START (unless resuming inside it), every sample, then the predictions
    still in flight; ``predictions`` grows as replies bring them."""
    count = len(labels)
    if progress.phase != phase:
        link.write(regs.REG_SAMPLES, [count])
        link.write(regs.REG_CONTROL, [regs.CONTROL_START_MASK | (mode << regs.CONTROL_MODE_SHIFT)])
        progress.phase, progress.next_sample = phase, 0
        predictions.clear()
    for index in range(progress.next_sample, count):
        predictions += list(link.sample(_sample_payload(x_raw[index], feature_bytes), int(labels[index])))
        progress.next_sample = index + 1
    deadline = time.monotonic() + max(30.0, 10 * link.timeout)
    while len(predictions) < count:
        got = list(link.predictions())
        predictions += got
        if not got:
            if time.monotonic() > deadline:
                raise LinkError(f"{link.transport.name}: {count - len(predictions)} of {count} predictions never "
                                "came back")
            time.sleep(poll_seconds)
    while True:  # the run ends with its last prediction; DONE confirms it
        status = link.read(regs.REG_STATUS)[0]
        if status & regs.STATUS_DONE_MASK and not status & regs.STATUS_BUSY_MASK:
            break
        if time.monotonic() > deadline:
            raise LinkError(f"{link.transport.name}: the run did not finish (STATUS 0x{status:X})")
    if status & (regs.STATUS_FRAME_ERROR_MASK | regs.STATUS_LABEL_ERROR_MASK):
        raise LinkError(f"{link.transport.name}: the learner flagged its input stream (STATUS 0x{status:X})")


@dataclass
class BoardRun:
    """What a board run measured and how it compares with the model."""

    bit_exact: bool
    lines: list
    figures: dict


def link_figures(board, inputs: int, feature_bytes: int, cycles_per_sample: float, fmax_mhz: float | None) -> dict:
    """Samples per second that the UART allows at the board's baud rate (stop and wait, one
    SAMPLE request and its reply with one prediction per sample), against what the learner
    computes at the board clock and at fmax, taking ``cycles_per_sample`` clocks a sample."""
    request = frames.request_overhead() + inputs * feature_bytes + 1
    reply = frames.reply_overhead() + 1
    link_rate = board.baud / 10 / (request + reply)
    figures = {
        "baud": board.baud,
        "bytes_per_sample": request + reply,
        "link_samples_per_second": round(link_rate, 1),
        "board_clock_mhz": board.clock_hz / 1e6,
        "compute_samples_per_second_at_board_clock": round(board.clock_hz / cycles_per_sample, 1),
    }
    if fmax_mhz:
        figures["fmax_mhz"] = fmax_mhz
        figures["compute_samples_per_second_at_fmax"] = round(fmax_mhz * 1e6 / cycles_per_sample, 1)
    return figures


def train_on_board(link: Link, model, pes, x_train, y_train, x_test, y_test, *, board, fmax_mhz=None,
                   progress: Progress | None = None, progress_file=None,
                   out: Callable[[str], None] = print) -> BoardRun:
    """Train ``model`` (``FixedNetwork``, SSDFA) for one epoch on the board and in the model from
    the same state; compare every weight, every prediction and the sample counter.

    Raises
    ------
    LinkError
        The link failed; ``progress_file`` (if given) then holds where to resume.
    """
    from ssdfa.sim.network_cosim import _first_difference, prepare_epoch
    from ssdfa.sim.network_driver import MODE

    started = time.perf_counter()
    setup = prepare_epoch(model, pes, x_train, y_train, x_test, y_test)
    sizes, pes, configs, driver, state = setup.sizes, setup.pes, setup.configs, setup.driver, setup.state
    y_train, y_test, order, reference = setup.y_train, setup.y_test, setup.order, setup.reference
    resumed = progress is not None
    progress = progress or Progress()
    run = {"network": list(sizes), "pes": list(pes), "train_samples": len(y_train), "test_samples": len(y_test),
           "seed": model.spec.seed}
    if resumed and progress.run is not None and progress.run != run:
        raise SsdfaError(f"the progress file is of another run ({progress.run}), not of this one ({run}); "
                         "resume with the options it was started with")
    progress.run = run
    lines = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    feature_bytes = -(-driver.arithmetic.activation.word // 8)
    # A resumed run's first numbered request is its lost one: the registers are read only when
    # nothing is pending.
    check_learner(link, sizes, feature_bytes, read_registers=progress.pending is None)
    start = f"resuming at {progress.phase} sample {progress.next_sample}" if resumed else "loading its state"
    say(f"board {board.name} over {link.transport.name}: learner {'-'.join(map(str, sizes))} "
        f"(PEs {'+'.join(map(str, pes))}), {start}")
    try:
        progress.resend_pending(link)
        if progress.phase == "load":
            load_state(link, driver.load_writes(state) + [driver.clear_counters_write()])
        if progress.phase in ("load", "train"):
            stream_samples(link, x_train[order], y_train[order], mode=MODE["train"], feature_bytes=feature_bytes,
                           progress=progress, phase="train", predictions=progress.train_predictions)
        if progress.counters is None:  # read once: the test run adds to the cycles counter
            progress.counters = driver.decode_counters(read_words(link, driver.counter_reads()))
        counters = progress.counters
        if len(y_test) and progress.phase in ("train", "test"):
            stream_samples(link, x_test, y_test, mode=MODE["infer"], feature_bytes=feature_bytes, progress=progress,
                           phase="test", predictions=progress.test_predictions)
        progress.phase = "readback"
        weights = driver.decode_weights(read_words(link, driver.weight_reads()))
    except LinkError as error:
        if progress_file is not None:
            if link.pending is not None:
                seq, command, payload = link.pending
                progress.pending = [seq, command, payload.hex()]
            progress.save(progress_file)
            raise LinkError(f"{error} (resume from sample {progress.next_sample} of {progress.phase} with "
                            f"--resume {progress_file})") from None
        raise
    bit_exact = True
    difference = _first_difference(reference.weights, weights)
    total = sum(w.size for w in reference.weights)
    if difference is None:
        say(f"weights: all {total:,} identical to the model's after the epoch")
    else:
        bit_exact = False
        say("MISMATCH first differing weight: layer {}, neuron {}, index {}: expected {}, actual {}".format(*difference))
    train_predictions = np.array(progress.train_predictions, dtype=np.int64)
    if not np.array_equal(train_predictions, reference.train_predictions[0]):
        bit_exact = False
        say("MISMATCH a training-time prediction differs from the model's")
    test_predictions = np.array(progress.test_predictions, dtype=np.int64)
    accuracy = float(np.mean(test_predictions == y_test)) if len(y_test) else None
    if len(y_test) and not np.array_equal(test_predictions, reference.test_predictions):
        bit_exact = False
        say("MISMATCH a test prediction differs from the model's")
    elif len(y_test):
        say(f"predictions: all {len(y_train):,} training-time and {len(y_test):,} test predictions identical; "
            f"test accuracy {accuracy:.4f} (model {reference.test_accuracy:.4f})")
    expected_counts = {"train_samples": len(y_train),
                       "train_correct": int(np.sum(reference.train_predictions[0] == y_train[order]))}
    for name, expected in expected_counts.items():
        if counters[name] != expected:
            bit_exact = False
            say(f"MISMATCH counter {name} = {counters[name]}, expected {expected}")
    from ssdfa.rtl.network import schedule_minimum

    # The cycles counter counts every clock of the run, also those spent waiting for the UART;
    # the learner's own rate is that of its schedule (met within a few percent when samples
    # arrive without gaps, docs/network.md).
    cycles_per_sample = counters["cycles"] / max(1, len(y_train))
    compute_clocks = schedule_minimum(configs)
    figures = {"bit_exact": bit_exact, "board": board.name, "network": "-".join(map(str, sizes)), "pes": list(pes),
               "train_samples": len(y_train), "test_samples": len(y_test), "test_accuracy": accuracy,
               # No test samples: no accuracy (null in JSON), not the NaN of an empty mean.
               "model_test_accuracy": reference.test_accuracy if len(y_test) else None,
               "clocks_per_sample": round(cycles_per_sample, 1),
               "compute_clocks_per_sample": compute_clocks,
               **link_figures(board, sizes[0], feature_bytes, compute_clocks, fmax_mhz),
               "retransmissions": link.retransmissions, "link_bytes_sent": link.bytes_sent,
               "link_bytes_received": link.bytes_received, "wall_seconds": round(time.perf_counter() - started, 1)}
    say(f"clocks per training sample: {cycles_per_sample:.1f} by the cycles counter (the run, UART waits included), "
        f"{compute_clocks} by the learner's schedule; UART at {board.baud} baud allows "
        f"{figures['link_samples_per_second']} samples/s, the learner computes "
        f"{figures['compute_samples_per_second_at_board_clock']:,} samples/s at the {board.clock_hz / 1e6:g} MHz clock")
    say(f"{'PASS' if bit_exact else 'FAIL'}: the learner on the board {'matches' if bit_exact else 'does not match'} "
        "the model bit for bit")
    return BoardRun(bit_exact, lines, figures)
