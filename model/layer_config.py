"""A hardware layer's configuration: shape, PE mapping, formats and modes, read from TOML.

One ``LayerConfig`` describes what ``ssdfa verilog``, ``ssdfa synth`` and ``ssdfa golden`` build
for one layer: N neurons of fan-in F on P processing elements (N/P neurons each), receiving s of
the M output errors, with the arithmetic of docs/arithmetic.md. Every value is checked here,
where it enters, so that nothing downstream elaborates a layer that cannot exist.

Example (every key optional except those marked)::

    [layer]
    fan_in = 64          # required
    neurons = 32         # required
    pes = 4              # neurons must be a multiple of pes
    outputs = 10         # M, the output errors the router sees
    connections = 1      # s: 1 for SSDFA, 2 for SDFA s=2, M for DFA
    activation = "relu"  # relu | hardtanh | tanh | identity (identity = output layer)
    index = 0            # the layer's position, for its LFSR seeds (§5.2)
    learning = true      # false elaborates an inference-only PE (for area comparisons)

    [formats]            # "SQ(i,f)" / "UQ(i,f)" or { word = 16, frac = 12 }
    activation = "SQ(4,12)"
    weight = "SQ(2,14)"
    feedback = "SQ(2,14)"
    error = "SQ(2,14)"
    delta = "SQ(2,14)"

    [modes]
    rounding = "RND"            # signal path, deterministic
    update_rounding = "STOCH"   # delta and weight step
    overflow = "SAT"
    shift = 4
    seed = 1
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ssdfa.errors import SsdfaError
from ssdfa.user_files import read_text

from .arithmetic import FixedFormat, Overflow, Rounding
from .memory_budget import layer_bytes, require_memory
from .neuron_ops import Activation, ArithmeticConfig, LayerShape

__all__ = ["LayerConfig", "load_layer_config", "parse_format", "layer_config_from_dict"]

_SECTIONS = {
    "layer": {"fan_in", "neurons", "pes", "outputs", "connections", "activation", "index", "learning"},
    "formats": {"activation", "weight", "feedback", "error", "delta"},
    "modes": {"rounding", "update_rounding", "overflow", "shift", "seed"},
}


@dataclass(frozen=True)
class LayerConfig:
    """One layer as the hardware builds it. Construct through ``layer_config_from_dict``."""

    shape: LayerShape
    pes: int = 1
    outputs: int = 10
    activation: Activation = Activation.RELU
    index: int = 0
    learning: bool = True
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.pes, int) or self.pes < 1:
            raise ValueError(f"pes must be a positive integer, not {self.pes!r}")
        if self.shape.neurons % self.pes:
            raise ValueError(
                f"neurons ({self.shape.neurons}) must be a multiple of pes ({self.pes})"
            )
        if not isinstance(self.outputs, int) or self.outputs < 1:
            raise ValueError(f"outputs must be a positive integer, not {self.outputs!r}")
        if self.shape.connections > self.outputs:
            raise ValueError(
                f"connections ({self.shape.connections}) cannot exceed outputs ({self.outputs})"
            )
        if not isinstance(self.index, int) or self.index < 0:
            raise ValueError(f"layer index must be a non-negative integer, not {self.index!r}")
        self.arithmetic.check_layer(self.shape, self.activation)

    @property
    def neurons_per_pe(self) -> int:
        return self.shape.neurons // self.pes

    @property
    def is_output_layer(self) -> bool:
        return self.activation is Activation.IDENTITY

    def with_(self, **changes) -> LayerConfig:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """The TOML-shaped dictionary that ``layer_config_from_dict`` reads back."""
        a = self.arithmetic
        return {
            "layer": {
                "fan_in": self.shape.fan_in,
                "neurons": self.shape.neurons,
                "pes": self.pes,
                "outputs": self.outputs,
                "connections": self.shape.connections,
                "activation": self.activation.value,
                "index": self.index,
                "learning": self.learning,
            },
            "formats": {
                name: str(getattr(a, name)) for name in ("activation", "weight", "feedback", "error", "delta")
            },
            "modes": {
                "rounding": a.rounding.name,
                "update_rounding": a.update_rounding.name,
                "overflow": a.overflow.name,
                "shift": a.shift,
                "seed": a.seed,
            },
        }


def parse_format(value, where: str) -> FixedFormat:
    """``"SQ(i,f)"``/``"UQ(i,f)"`` or ``{word = W, frac = F, signed = true}``."""
    if isinstance(value, str):
        try:
            return FixedFormat.parse(value)
        except (ValueError, TypeError) as exc:
            raise SsdfaError(f"{where}: {exc}") from None
    if isinstance(value, dict):
        unknown = set(value) - {"word", "frac", "signed"}
        if unknown:
            raise SsdfaError(f"{where}: unknown key(s) {sorted(unknown)}; expected word, frac, signed")
        word, frac = value.get("word"), value.get("frac")
        signed = value.get("signed", True)
        if not isinstance(word, int) or word < 1:
            raise SsdfaError(f"{where}: word must be a positive integer, not {word!r}")
        if not isinstance(frac, int) or frac < 0:
            raise SsdfaError(f"{where}: frac must be a non-negative integer, not {frac!r}")
        if frac > word - (1 if signed else 0):
            raise SsdfaError(
                f"{where}: {frac} fraction bits do not fit a {word}-bit "
                f"{'signed ' if signed else ''}word"
            )
        try:
            return FixedFormat(word - frac, frac, signed=bool(signed))
        except (ValueError, TypeError) as exc:
            raise SsdfaError(f"{where}: {exc}") from None
    raise SsdfaError(f"{where}: expected a format string like 'SQ(4,12)' or a table, not {value!r}")


def layer_config_from_dict(data: dict, source: str = "configuration") -> LayerConfig:
    """Validate a TOML-shaped dictionary; SsdfaError names the file, the key and the value."""
    if not isinstance(data, dict):
        raise SsdfaError(f"{source}: expected a table at the top level")
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise SsdfaError(f"{source}: unknown section(s) {sorted(unknown)}; expected {sorted(_SECTIONS)}")
    for section, keys in _SECTIONS.items():
        extra = set(data.get(section, {})) - keys
        if extra:
            raise SsdfaError(f"{source}: unknown key(s) {sorted(extra)} in [{section}]; expected {sorted(keys)}")
    layer = data.get("layer", {})
    formats = data.get("formats", {})
    modes = data.get("modes", {})
    for key in ("fan_in", "neurons"):
        if key not in layer:
            raise SsdfaError(f"{source}: [layer] {key} is required")
    defaults = ArithmeticConfig()
    try:
        arithmetic = ArithmeticConfig(
            activation=parse_format(formats.get("activation", str(defaults.activation)), f"{source}: formats.activation"),
            weight=parse_format(formats.get("weight", str(defaults.weight)), f"{source}: formats.weight"),
            feedback=parse_format(formats.get("feedback", str(defaults.feedback)), f"{source}: formats.feedback"),
            error=parse_format(formats.get("error", str(defaults.error)), f"{source}: formats.error"),
            delta=parse_format(formats.get("delta", str(defaults.delta)), f"{source}: formats.delta"),
            rounding=Rounding.parse(modes.get("rounding", defaults.rounding.name)),
            update_rounding=Rounding.parse(modes.get("update_rounding", defaults.update_rounding.name)),
            overflow=Overflow.parse(modes.get("overflow", defaults.overflow.name)),
            shift=modes.get("shift", defaults.shift),
            seed=modes.get("seed", defaults.seed),
        )
        shape = LayerShape(layer["fan_in"], layer["neurons"], layer.get("connections", 1))
        learning = layer.get("learning", True)
        if not isinstance(learning, bool):
            raise ValueError(f"learning must be true or false, not {learning!r}")
        outputs = layer.get("outputs", 10)
        if isinstance(outputs, int):  # else LayerConfig names it
            require_memory(
                layer_bytes(shape.fan_in, shape.neurons, outputs),
                f"{source}: a layer of {shape.neurons} neurons x {shape.fan_in} inputs",
            )
        return LayerConfig(
            shape=shape,
            pes=layer.get("pes", 1),
            outputs=outputs,
            activation=Activation.parse(layer.get("activation", "relu")),
            index=layer.get("index", 0),
            learning=learning,
            arithmetic=arithmetic,
        )
    except (ValueError, TypeError) as exc:
        raise SsdfaError(f"{source}: {exc}") from None


def load_layer_config(path) -> LayerConfig:
    """Read and validate a layer configuration TOML file."""
    path = Path(path)
    text = read_text(path, "configuration file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SsdfaError(f"{path}: not valid TOML: {exc}") from None
    return layer_config_from_dict(data, str(path))
