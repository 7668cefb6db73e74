"""A cell: one training run, named by the SHA-256 of its canonical configuration.

The canonical configuration is a JSON object with every setting spelled out (defaults filled
in, irrelevant settings set to null: a float run has no formats, BP has no feedback rank), so
that two ways of writing the same run give the same key and are run once. It includes the
version of the arithmetic contract and of this layout: a change to either gives new keys, so
results computed under old rules are never mistaken for new ones.

Where the data files live (``data_dir``) travels with the cell but is not part of the key: the
same dataset read from another folder is the same experiment. The runner records a fingerprint
of the arrays it trained on, so that a report can tell if two folders held different data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ssdfa.model.arithmetic import FixedFormat

#: Version of the canonical configuration's layout and of how a cell is trained; bump when a
#: field is added or its meaning changes, or when the same configuration would train differently.
CELL_LAYOUT_VERSION = 3

#: Version of the arithmetic contract (docs/arithmetic.md) whose numbers a result reflects.
#: Bump with any change to the contract that can change a trained network's bits.
ARITHMETIC_VERSION = 1

#: The ``versions`` field of every cell this code makes.
CURRENT_VERSIONS = {"arithmetic": ARITHMETIC_VERSION, "cell": CELL_LAYOUT_VERSION}

ALGORITHMS = ("bp", "dfa", "sdfa", "ssdfa")
PRECISIONS = ("fixed", "float")
#: The quantities of ``ArithmeticConfig`` that have a format, in its field order.
QUANTITIES = ("activation", "weight", "feedback", "error", "delta", "bp_error")


def canonical_json(config: dict) -> str:
    """The one text of a configuration: sorted keys, no spaces, plain ASCII."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cell_key(config: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Cell:
    """One run of a study.

    Attributes
    ----------
    config : dict
        The canonical configuration (JSON types only); its hash is ``key``.
    data_dir : str or None
        The folder the dataset's files are read from (absolute), or None.
    """

    config: dict
    data_dir: str | None = None

    @property
    def key(self) -> str:
        return cell_key(self.config)

    def as_task(self) -> dict:
        """The dictionary that ``run_cell`` takes: the configuration plus ``data_dir``."""
        return {**self.config, "data_dir": self.data_dir}

    def label(self) -> str:
        """A short human-readable summary, for messages."""
        c = self.config
        feedback = c["algorithm"]
        if c["algorithm"] == "sdfa":
            feedback += f" s={c['connections']}"
        if c["rank"] is not None:
            feedback += f" rank={c['rank']}"
        if c["precision"] == "float":
            arithmetic = "float"
        else:
            words = sorted({format_word(fmt) for fmt in c["formats"].values()})
            arithmetic = f"{'/'.join(map(str, words))}-bit {c['update_rounding']}"
        hidden = "x".join(map(str, c["hidden"]))
        return f"{c['dataset']} {hidden} {feedback} {arithmetic} seed={c['seed']}"


def format_word(fmt: str) -> int:
    """The word width of a format written ``SQ(i,f)``."""
    return FixedFormat.parse(fmt).word
