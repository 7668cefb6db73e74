"""The area of the processing element that a fixed-point cell's first hidden layer needs.

A cell's matching PE is the layer configuration (``ssdfa.model.layer_config``) of its first
hidden layer: fan-in = the dataset's features, the hidden size, s connections (1 for SSDFA,
M for DFA), the cell's formats and modes, and ``neurons_per_pe`` neurons time-multiplexed on one
PE. Its area comes from the synthesis command's Python function (``ssdfa synth``), which needs
Yosys; without either, the estimator says why and the report leaves the figure out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ssdfa.errors import SsdfaError

from .cells import canonical_json

__all__ = ["AreaEstimator", "layer_config_for"]

#: Counts of a synthesis report, as the report's area table shows them.
AREA_COLUMNS = ("luts", "flip_flops", "block_rams", "dsps")


def layer_config_for(config: dict, settings: dict, neurons_per_pe: int) -> dict:
    """The TOML-shaped layer configuration of a fixed-point cell's first hidden layer."""
    formats = config["formats"]
    neurons = config["hidden"][0]
    if neurons % neurons_per_pe:
        # Another split would be synthesised than the one the report names.
        raise SsdfaError(f"--neurons-per-pe {neurons_per_pe} does not divide the hidden layer of {neurons} neurons")
    return {
        "layer": {
            "fan_in": settings["num_features"],
            "neurons": neurons,
            "pes": neurons // neurons_per_pe,
            "outputs": settings["num_classes"],
            "connections": 1 if config["algorithm"] == "bp" else settings["connections"],
            "activation": config["activation"],
            "index": 0,
            "learning": True,
        },
        "formats": {q: formats[q] for q in ("activation", "weight", "feedback", "error", "delta")},
        "modes": {
            "rounding": config["rounding"],
            "update_rounding": config["update_rounding"],
            "overflow": config["overflow"],
            "shift": config["shift"],
            "seed": 1,
        },
    }


class AreaEstimator:
    """PE areas by synthesis, each distinct layer configuration synthesised once.

    Parameters
    ----------
    neurons_per_pe : int
        Neurons time-multiplexed on one PE (K).
    synthesize : callable, optional
        ``synthesize(layer_config_dict) -> dict`` with the ``AREA_COLUMNS`` counts; default the
        synthesis command's function.
    jobs : int
        Syntheses run at once.
    disabled : bool
        Estimate nothing (the report leaves the figure out and says so).
    description : str, optional
        How ``synthesize`` counts, for the report's text (default: said for the synthesis
        command's function; "by synthesis" for another).
    """

    metric = "luts"
    metric_label = "LUTs"
    columns = AREA_COLUMNS

    def __init__(
        self, neurons_per_pe: int = 1, synthesize=None, jobs: int = 2, disabled: bool = False,
        description: str | None = None,
    ) -> None:
        self.neurons_per_pe = neurons_per_pe
        self.description = description
        self.disabled = disabled
        self._synthesize = synthesize
        self.jobs = jobs
        self._cache: dict[str, dict | None] = {}
        self.failures: list[str] = []  #: configurations that could not be synthesised, and why

    def unavailable(self) -> str | None:
        """Why areas cannot be estimated here, or None."""
        if self.disabled:
            return "left out on request (--no-area)"
        if self._synthesize is not None:
            return None
        if shutil.which("yosys") is None:
            return "Yosys is not installed (apt-get install yosys), so no PE can be synthesised"
        try:
            from ssdfa.cli.synth import synth_config  # noqa: F401
        except ImportError as exc:
            return f"this installation cannot synthesise a PE ({exc})"
        self._synthesize = synthesize_pe
        return None

    def describe(self) -> str:
        if self.description is not None:
            how = self.description
        elif self._synthesize is synthesize_pe:
            how = "synthesised for iCE40 by Yosys (synth_ice40, multipliers in LUTs: no DSPs)"
        else:
            how = "by synthesis"
        neurons = "1 neuron" if self.neurons_per_pe == 1 else f"{self.neurons_per_pe} neurons"
        return (f"Area: {self.metric_label} of one processing element of the first hidden layer "
                f"({neurons} per PE), {how}.")

    def prefetch(self, jobs: list[tuple[dict, dict]]) -> None:
        """Synthesise the distinct configurations of ``(config, settings)`` pairs in parallel."""
        todo = {}
        for config, settings in jobs:
            layer = layer_config_for(config, settings, self.neurons_per_pe)
            todo.setdefault(_layer_key(layer), layer)
        todo = {k: v for k, v in todo.items() if k not in self._cache}
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for key, area in zip(todo, pool.map(self._run, todo.values())):
                self._cache[key] = area

    def area(self, config: dict, settings: dict) -> dict | None:
        layer = layer_config_for(config, settings, self.neurons_per_pe)
        key = _layer_key(layer)
        if key not in self._cache:
            self._cache[key] = self._run(layer)
        return self._cache[key]

    def _run(self, layer: dict) -> dict | None:
        """The counts, or None (the reason kept in ``failures``) if the PE cannot be built."""
        if self._synthesize is None and self.unavailable():
            raise SsdfaError(self.unavailable())
        try:
            counts = self._synthesize(layer)
        except (SsdfaError, ValueError) as exc:
            self.failures.append(f"{layer['formats']['weight']} {layer['modes']['update_rounding']}: {exc}")
            return None
        return {column: int(counts[column]) for column in AREA_COLUMNS}


def synthesize_pe(layer: dict) -> dict:
    """LUTs, flip-flops, block RAMs and DSPs of the PE of a layer configuration (iCE40, no DSPs).

    A synthesis takes tens of seconds, so its counts are kept in a cache folder
    (``$XDG_CACHE_HOME/ssdfa/pe-area``), keyed by the configuration, the RTL's source files and
    the Yosys version: a change to any of them synthesises again.
    """
    from ssdfa.cli.synth import synth_config
    from ssdfa.model.layer_config import layer_config_from_dict

    cache = _cache_path(layer)
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    report = synth_config(layer_config_from_dict(layer, "the matching PE"), dsp=False)
    counts = {"luts": report.luts, "flip_flops": report.flip_flops, "block_rams": report.block_rams, "dsps": report.dsps}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(counts, sort_keys=True), encoding="utf-8")
        partial.replace(cache)  # atomic: a reader sees the whole file or none
    except OSError:
        pass  # no cache: the next report synthesises again
    return counts


def _cache_path(layer: dict) -> Path:
    import subprocess

    import ssdfa.rtl

    digest = hashlib.sha256(_layer_key(layer).encode())
    digest.update(b"ice40 no-dsp neuron_pe")
    for source in sorted(Path(ssdfa.rtl.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    version = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    digest.update(version.encode())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "ssdfa" / "pe-area" / f"{digest.hexdigest()}.json"


def _layer_key(layer: dict) -> str:
    return canonical_json(layer)
