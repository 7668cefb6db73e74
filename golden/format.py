"""The golden-set file format: writer, reader and validation (see docs/golden.md).

A golden set is a directory holding two files:

- ``vectors.npz``: integer arrays, one ``<name>.npy`` member each, stored uncompressed with a
  fixed zip timestamp so that the same arrays always give the same bytes;
- ``manifest.json``: the schema version, the kind of set, the configuration that produced it,
  the generator's name and version, and for every array its shape, dtype, value format and
  the SHA-256 of its bytes, plus the size and SHA-256 of ``vectors.npz``.

Each *kind* of set defines which arrays it holds, their shapes, dtypes and value ranges, as a
function of its configuration (``SetKind``). This module defines the ``"layer"`` kind (one
hardware layer, ``LayerConfig``); a network-level kind is one more entry in ``KINDS``.

The reader trusts nothing: it refuses, with an ``SsdfaError`` naming the file and the problem,
a missing or truncated file, a changed byte, a manifest that disagrees with the arrays, an
unknown schema version or kind, and values outside their format's range.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ssdfa.errors import SsdfaError
from ssdfa.model.arithmetic import FixedFormat, layer_seed, lfsr_seed
from ssdfa.model.layer_config import LayerConfig, layer_config_from_dict
from ssdfa.model.npz_archive import ZIP_DATE_TIME, array_sha256, npz_bytes

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST_NAME",
    "VECTORS_NAME",
    "ZIP_DATE_TIME",
    "ArraySpec",
    "GoldenSet",
    "SetKind",
    "KINDS",
    "weight_checksum",
    "array_sha256",
    "npz_bytes",
    "encode_golden_set",
    "write_golden_set",
    "read_golden_set",
    "CANONICAL_SETS",
    "canonical_set_dirs",
    "layer_array_specs",
    "layer_derived",
    "derivative_format",
]

#: The manifest layout this module writes and the only one it reads.
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
VECTORS_NAME = "vectors.npz"

#: Where the committed canonical sets live, one directory each (with the config.toml that made it).
CANONICAL_SETS = Path(__file__).resolve().parent / "sets"

_LFSR_MAX = (1 << 32) - 1
_INT64 = np.dtype("<i8")
_INT32 = np.dtype("<i4")
_UINT32 = np.dtype("<u4")
_UINT8 = np.dtype("u1")
_SHA256_BYTES = 32


@dataclass(frozen=True)
class ArraySpec:
    """What one array of a set must be.

    Attributes
    ----------
    name : str
        The array's name (the npz member is ``<name>.npy``).
    shape : tuple of int
    dtype : numpy.dtype
        Exact dtype, little-endian.
    format : str
        The value format, for people and testbenches: ``SQ(i,f)``, ``UQ(i,f)``, or a short phrase.
    low, high : int
        Inclusive range of every value.
    description : str
        One line: what the array holds.
    """

    name: str
    shape: tuple
    dtype: np.dtype
    format: str
    low: int
    high: int
    description: str

    @classmethod
    def fixed(cls, name: str, shape: tuple, fmt: FixedFormat, description: str) -> ArraySpec:
        """Raw values of a fixed-point format, stored as int64."""
        return cls(name, tuple(shape), _INT64, str(fmt), fmt.min_raw, fmt.max_raw, description)

    def manifest_entry(self, array: np.ndarray) -> dict:
        return {
            "shape": list(self.shape),
            "dtype": self.dtype.str,
            "format": self.format,
            "range": [self.low, self.high],
            "sha256": array_sha256(array),
            "description": self.description,
        }


@dataclass(frozen=True)
class GoldenSet:
    """A golden set in memory: what ``write_golden_set`` stores and ``read_golden_set`` returns.

    Attributes
    ----------
    kind : str
        A key of ``KINDS`` (``"layer"``).
    config : object
        The kind's configuration (a ``LayerConfig`` for ``"layer"``).
    parameters : mapping
        Generation parameters that shape the arrays (``samples``, ``full_weights`` for a layer).
    arrays : mapping of str to numpy.ndarray
        Every array the kind's schema lists, in the schema's order, with the schema's dtypes.
    generator : mapping
        ``{"name": ..., "version": ...}`` of the code that computed the arrays.
    """

    kind: str
    config: Any
    parameters: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]
    generator: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def set_kind(self) -> SetKind:
        return KINDS[self.kind]


@dataclass(frozen=True)
class SetKind:
    """One kind of golden set: its configuration type and the arrays it holds.

    Attributes
    ----------
    name : str
    config_from_dict : callable (dict, source) -> config
        Parses the manifest's ``configuration``; raises ``SsdfaError`` naming ``source``.
    config_to_dict : callable config -> dict
        The canonical dictionary stored in the manifest.
    parameters : mapping of str to type
        Names and types of the generation parameters.
    array_specs : callable (config, parameters) -> list of ArraySpec
        The arrays, in file order.
    derived : callable config -> dict
        Values computed from the configuration and recorded for readers (LFSR seeds).
    check : callable (GoldenSet, where) -> None
        Consistency between arrays beyond their ranges; raises ``SsdfaError``.
    """

    name: str
    config_from_dict: Callable[[dict, str], Any]
    config_to_dict: Callable[[Any], dict]
    parameters: Mapping[str, type]
    array_specs: Callable[[Any, Mapping[str, Any]], list]
    derived: Callable[[Any], dict]
    check: Callable[[GoldenSet, str], None]


# --------------------------------------------------------------------------------------------
# Checksums and the deterministic npz
# --------------------------------------------------------------------------------------------


def weight_checksum(weights) -> bytes:
    """SHA-256 (32 bytes) of a weight array as row-major little-endian int64 bytes.

    For a layer's (neurons, fan_in + 1) weights, that is ``W[0,0], W[0,1], ..., W[0,N]``,
    ``W[1,0]``, ..., each as 8 bytes, least significant first. A testbench computes the same
    with ``hashlib.sha256(b"".join(w.to_bytes(8, "little", signed=True) for w in flat))``.
    """
    return hashlib.sha256(np.ascontiguousarray(weights, dtype=_INT64).tobytes()).digest()


# --------------------------------------------------------------------------------------------
# Validation shared by the writer and the reader
# --------------------------------------------------------------------------------------------


def _check_parameters(kind: SetKind, parameters, where: str) -> dict:
    if not isinstance(parameters, Mapping):
        raise SsdfaError(f"{where}: parameters must be a table, not {parameters!r}")
    names = set(kind.parameters)
    if set(parameters) != names:
        raise SsdfaError(
            f"{where}: parameters {sorted(parameters)} do not match the {kind.name} schema's {sorted(names)}"
        )
    for name, expected in kind.parameters.items():
        value = parameters[name]
        if type(value) is not expected:  # bool is an int subclass: compare exactly
            raise SsdfaError(f"{where}: parameter {name} must be {expected.__name__}, not {value!r}")
        if expected is int and value < 1:  # integer parameters are counts (samples)
            raise SsdfaError(f"{where}: parameter {name} must be at least 1, not {value}")
    return dict(parameters)


def _check_arrays(golden: GoldenSet, specs: list, where: str) -> None:
    """Names, dtypes, shapes and value ranges against the kind's schema."""
    expected = [spec.name for spec in specs]
    missing = [name for name in expected if name not in golden.arrays]
    if missing:
        raise SsdfaError(f"{where}: the {golden.kind} schema requires array(s) {missing}, which the set lacks")
    extra = [name for name in golden.arrays if name not in expected]
    if extra:
        raise SsdfaError(f"{where}: array(s) {extra} are not part of the {golden.kind} schema")
    for spec in specs:
        array = golden.arrays[spec.name]
        if array.dtype != spec.dtype:
            raise SsdfaError(
                f"{where}: array {spec.name} has dtype {array.dtype.str}, expected {spec.dtype.str} "
                f"(the {golden.kind} schema)"
            )
        if array.shape != spec.shape:
            raise SsdfaError(
                f"{where}: array {spec.name} has shape {array.shape}, but the configuration and "
                f"parameters make it {spec.shape}"
            )
        if array.size:
            outside = (array < spec.low) | (array > spec.high)
            if outside.any():
                position = tuple(int(i) for i in np.argwhere(outside)[0])
                raise SsdfaError(
                    f"{where}: array {spec.name} holds {int(array[position])} at {list(position)}, "
                    f"outside its format {spec.format} (range {spec.low}..{spec.high})"
                )


def _validate(golden: GoldenSet, where: str) -> list:
    """Everything that makes a set valid; returns the specs. Raises SsdfaError."""
    kind = KINDS.get(golden.kind)
    if kind is None:
        raise SsdfaError(f"{where}: unknown kind {golden.kind!r}; expected one of {sorted(KINDS)}")
    parameters = _check_parameters(kind, golden.parameters, where)
    specs = kind.array_specs(golden.config, parameters)
    _check_arrays(golden, specs, where)
    kind.check(golden, where)
    return specs


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


def encode_golden_set(golden: GoldenSet) -> dict[str, bytes]:
    """Validate a set and return its files' bytes: ``{VECTORS_NAME: ..., MANIFEST_NAME: ...}``.

    Raises
    ------
    SsdfaError
        If the set breaks its kind's schema (a generator bug: the writer never stores it).
    """
    specs = _validate(golden, "golden set being written")
    kind = golden.set_kind
    arrays = {spec.name: golden.arrays[spec.name] for spec in specs}
    vectors = npz_bytes(arrays)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": golden.kind,
        "generator": {"name": str(golden.generator.get("name", "")), "version": int(golden.generator.get("version", 0))},
        "configuration": kind.config_to_dict(golden.config),
        "derived": kind.derived(golden.config),
        "parameters": dict(golden.parameters),
        "weight_checksum": "SHA-256 of the weights as row-major little-endian int64",
        "vectors": {
            "file": VECTORS_NAME,
            "size": len(vectors),
            "sha256": hashlib.sha256(vectors).hexdigest(),
        },
        "arrays": {spec.name: spec.manifest_entry(arrays[spec.name]) for spec in specs},
    }
    return {VECTORS_NAME: vectors, MANIFEST_NAME: (_json_text(manifest) + "\n").encode("utf-8")}


def _json_text(value, indent: str = "") -> str:
    """JSON with one key per line and lists of numbers on one line (shapes, ranges, seeds)."""
    if isinstance(value, dict) and value:
        inner = indent + "  "
        items = [f"{inner}{json.dumps(key)}: {_json_text(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return json.dumps(value, ensure_ascii=False)


def _set_files_to_keep(directory: Path, force: bool) -> list[Path]:
    """Check that ``directory`` may receive a set; return the files that must be carried over."""
    if not directory.exists():
        if directory.is_symlink():
            raise SsdfaError(f"output directory {directory} is a dangling symbolic link")
        return []
    if not directory.is_dir():
        raise SsdfaError(f"output {directory} exists and is not a directory")
    entries = sorted(directory.iterdir())
    if not entries:
        return []
    if not force:
        raise SsdfaError(f"output directory {directory} is not empty; use --force to replace the golden set in it")
    for entry in entries:
        if entry.is_symlink() or not entry.is_file():
            raise SsdfaError(
                f"output directory {directory} holds {entry.name}, which is not a regular file: "
                "it is not a golden-set directory, and --force will not replace it"
            )
    # Files beside the set (its config.toml, a README) survive a regeneration.
    return [entry for entry in entries if entry.name not in (MANIFEST_NAME, VECTORS_NAME)]


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _directory_mode(directory: Path) -> int:
    if directory.is_dir():
        return directory.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _replace_directory(target: Path, files: Mapping[str, bytes], keep: list) -> None:
    """Build the set in a hidden sibling, then rename it into place (the only visible step)."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    mode = _directory_mode(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    retired = None
    try:
        for name, data in files.items():
            _write_file(staging / name, data)
        for path in keep:
            shutil.copy2(path, staging / path.name)
        os.chmod(staging, mode)
        if target.exists():
            retired = staging.with_suffix(".retired")
            os.rename(target, retired)
            try:
                os.rename(staging, target)
            except BaseException:
                os.rename(retired, target)  # put the previous set back
                retired = None
                raise
        else:
            os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and retired.exists():
            shutil.rmtree(retired, ignore_errors=True)


def write_golden_set(directory, golden: GoldenSet, *, force: bool = False) -> Path:
    """Validate ``golden`` and write it to ``directory`` atomically.

    The files are written to a hidden sibling directory, which is then renamed into place, so
    an interrupted run leaves either no set or the previous one, never a half-written set.

    Parameters
    ----------
    directory : path
        Created if missing (with its parents). If it exists it must be empty, unless ``force``.
    golden : GoldenSet
    force : bool
        Replace the set in a non-empty directory. The directory may hold only regular files;
        ``manifest.json`` and ``vectors.npz`` are replaced and any other file (the set's
        ``config.toml``) is kept.

    Returns
    -------
    pathlib.Path
        The directory written, as an absolute path. (The directory is a new one: a process
        whose working directory was the old one should change to the new one.)

    Raises
    ------
    SsdfaError
        If the set is invalid, or the directory is not empty (without ``force``) or does not
        look like a golden-set directory.
    """
    directory = Path(directory)
    files = encode_golden_set(golden)
    keep = _set_files_to_keep(directory, force)
    target = Path(os.path.abspath(directory))  # "." has no name to build a sibling from
    try:
        _replace_directory(target, files, keep)
    except OSError as exc:
        raise SsdfaError(f"cannot write golden set {directory}: {exc.strerror or exc}") from None
    return target


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


def _require(manifest: dict, key: str, kind: type, where: Path):
    if key not in manifest:
        raise SsdfaError(f"{where}: the manifest has no {key!r} entry")
    value = manifest[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SsdfaError(f"{where}: {key!r} must be a JSON {kind.__name__}, not {value!r}")
    return value


def _read_manifest(path: Path) -> dict:
    if not path.is_file():
        raise SsdfaError(f"{path} is missing: a golden set needs {MANIFEST_NAME} beside {VECTORS_NAME}")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SsdfaError(f"{path}: not valid JSON: {exc}") from None
    except OSError as exc:
        raise SsdfaError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(manifest, dict):
        raise SsdfaError(f"{path}: expected a JSON object at the top level")
    version = manifest.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # not 1.0, not true
        raise SsdfaError(
            f"{path}: unknown schema version {version!r}; this reader knows version {SCHEMA_VERSION}"
        )
    return manifest


def _load_arrays(path: Path, data: bytes, listed: dict) -> dict[str, np.ndarray]:
    """The npz's arrays, checked against the manifest's list (names, dtypes, shapes, checksums)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.namelist()
        names = [member.removesuffix(".npy") for member in members]
        if any(not member.endswith(".npy") for member in members) or len(set(names)) != len(names):
            raise SsdfaError(f"{path}: members {members} are not one <name>.npy per array")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in names}
    except SsdfaError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise SsdfaError(f"{path}: not a readable npz archive: {exc}") from None
    missing = [name for name in listed if name not in arrays]
    if missing:
        raise SsdfaError(f"{path} has no array(s) {missing}, which {MANIFEST_NAME} lists")
    extra = [name for name in arrays if name not in listed]
    if extra:
        raise SsdfaError(f"{path} holds array(s) {extra}, which {MANIFEST_NAME} does not list")
    for name, entry in listed.items():
        array = arrays[name]
        if not isinstance(entry, dict):
            raise SsdfaError(f"{path}: the manifest's entry for array {name} is not a table")
        if entry.get("dtype") != array.dtype.str:
            raise SsdfaError(
                f"{path}: array {name} has dtype {array.dtype.str}, but {MANIFEST_NAME} says {entry.get('dtype')!r}"
            )
        if entry.get("shape") != list(array.shape):
            raise SsdfaError(
                f"{path}: array {name} has shape {list(array.shape)}, but {MANIFEST_NAME} says {entry.get('shape')!r}"
            )
        if entry.get("sha256") != array_sha256(array):
            raise SsdfaError(f"{path}: array {name} does not match its SHA-256 in {MANIFEST_NAME} (changed data)")
    return arrays


def read_golden_set(directory) -> GoldenSet:
    """Read and validate the golden set in ``directory``.

    Checks, in order: both files exist; the manifest is JSON with a known schema version and
    kind and a valid configuration; ``vectors.npz`` has the manifest's size and SHA-256; its
    arrays are those the manifest lists, with their dtypes, shapes and SHA-256; they are the
    arrays the kind's schema requires for that configuration, with the manifest's formats;
    every value is in its format's range; and the kind's consistency checks pass (LFSR seeds
    derived from the configuration, weight checksums).

    Raises
    ------
    SsdfaError
        Naming the file and the problem, at the first check that fails.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SsdfaError(f"golden set {directory} does not exist or is not a directory")
    manifest_path = directory / MANIFEST_NAME
    vectors_path = directory / VECTORS_NAME
    manifest = _read_manifest(manifest_path)

    kind_name = _require(manifest, "kind", str, manifest_path)
    kind = KINDS.get(kind_name)
    if kind is None:
        raise SsdfaError(f"{manifest_path}: unknown kind {kind_name!r}; expected one of {sorted(KINDS)}")
    configuration = _require(manifest, "configuration", dict, manifest_path)
    config = kind.config_from_dict(configuration, f"{manifest_path}: configuration")
    if kind.config_to_dict(config) != configuration:
        raise SsdfaError(f"{manifest_path}: the configuration is not in canonical form (as the writer stores it)")
    parameters = _check_parameters(kind, _require(manifest, "parameters", dict, manifest_path), str(manifest_path))
    derived = _require(manifest, "derived", dict, manifest_path)
    if derived != kind.derived(config):
        raise SsdfaError(f"{manifest_path}: 'derived' does not follow from the configuration (LFSR seeds)")
    generator = _require(manifest, "generator", dict, manifest_path)
    listed = _require(manifest, "arrays", dict, manifest_path)
    described = _require(manifest, "vectors", dict, manifest_path)

    if not vectors_path.is_file():
        raise SsdfaError(f"{vectors_path} is missing: {MANIFEST_NAME} describes it but it is not there")
    try:
        data = vectors_path.read_bytes()
    except OSError as exc:
        raise SsdfaError(f"cannot read {vectors_path}: {exc.strerror or exc}") from None
    if described.get("size") != len(data):
        problem = "truncated" if isinstance(described.get("size"), int) and len(data) < described["size"] else "the wrong size"
        raise SsdfaError(
            f"{vectors_path} is {problem}: {len(data)} bytes, but {MANIFEST_NAME} says {described.get('size')!r}"
        )
    if described.get("sha256") != hashlib.sha256(data).hexdigest():
        raise SsdfaError(f"{vectors_path} does not match its SHA-256 in {MANIFEST_NAME}: the file was changed")
    arrays = _load_arrays(vectors_path, data, listed)
    for array in arrays.values():
        array.setflags(write=False)  # expected values: a testbench reads them, never edits them

    golden = GoldenSet(kind_name, config, parameters, arrays, generator)
    specs = kind.array_specs(config, parameters)
    for spec in specs:
        entry = listed.get(spec.name)
        if isinstance(entry, dict) and (entry.get("format") != spec.format or entry.get("range") != [spec.low, spec.high]):
            raise SsdfaError(
                f"{manifest_path}: array {spec.name} is listed as {entry.get('format')!r} {entry.get('range')!r}; "
                f"the configuration makes it {spec.format} [{spec.low}, {spec.high}]"
            )
    _validate(golden, str(vectors_path))
    return golden


def canonical_set_dirs() -> list[Path]:
    """The committed canonical sets, one directory each, sorted by name.

    Each holds ``config.toml`` (the input) beside ``manifest.json`` and ``vectors.npz`` (the
    expected result); the tests refuse any directory that lacks one of them.
    """
    if not CANONICAL_SETS.is_dir():
        return []
    return sorted(path for path in CANONICAL_SETS.iterdir() if path.is_dir())


# --------------------------------------------------------------------------------------------
# The "layer" kind: one hardware layer trained on S samples, batch 1 (docs/golden.md)
# --------------------------------------------------------------------------------------------


def layer_derived(config: LayerConfig) -> dict:
    """The layer seed and the per-neuron LFSR seeds (docs/arithmetic.md §5.2)."""
    seed = layer_seed(config.arithmetic.seed, config.index)
    return {"layer_seed": seed, "lfsr_seeds": [lfsr_seed(seed, i) for i in range(config.shape.neurons)]}


def derivative_format(config: LayerConfig) -> FixedFormat:
    """The stored f' (§4.3): UQ(1, f_a) for tanh (at most 1.0), UQ(1, 0) (0 or 1) otherwise."""
    return FixedFormat(1, config.arithmetic.fprime_frac(config.activation), signed=False)


def layer_array_specs(config: LayerConfig, parameters: Mapping[str, Any]) -> list[ArraySpec]:
    """The arrays of a layer set, in file order.

    ``S`` samples, ``N`` neurons, ``F`` fan-in, ``M`` outputs, ``s`` connections. A hidden layer
    holds the feedback table and takes ``errors`` as input; the output layer (identity) holds
    ``targets`` and its ``errors`` are expected values (§6.0), equal to its ``delta`` (§6.2).
    """
    a = config.arithmetic
    samples = parameters["samples"]
    neurons, fan_in, connections = config.shape.neurons, config.shape.fan_in, config.shape.connections
    outputs = config.outputs
    weights = (neurons, fan_in + 1)
    output_layer = config.is_output_layer
    lfsr = "LFSR state"
    specs = [
        ArraySpec("lfsr_seed", (neurons,), _UINT32, lfsr, 1, _LFSR_MAX, "per-neuron LFSR seed (§5.2)"),
        ArraySpec.fixed("weights_initial", weights, a.weight, "weights before sample 0; bias last"),
    ]
    if not output_layer:
        specs += [
            ArraySpec("feedback_index", (neurons, connections), _INT32, f"index < {outputs}", 0, outputs - 1,
                      "output error each neuron receives (§6.1)"),
            ArraySpec.fixed("feedback_value", (neurons, connections), a.feedback, "feedback constant b (§6.1)"),
        ]
    specs.append(ArraySpec.fixed("inputs", (samples, fan_in), a.activation, "layer input x per sample"))
    if output_layer:
        specs += [
            ArraySpec("targets", (samples,), _INT32, f"class < {neurons}", 0, neurons - 1, "target class per sample"),
            ArraySpec.fixed("errors", (samples, outputs), a.error, "expected output error e (§6.0)"),
        ]
    else:
        specs.append(ArraySpec.fixed("errors", (samples, outputs), a.error, "output errors e per sample (input)"))
    delta_format = a.error if output_layer else a.delta
    per_neuron = (samples, neurons)
    specs += [
        ArraySpec.fixed("pre_activation", per_neuron, a.activation, "y (§4.1)"),
        ArraySpec.fixed("activation", per_neuron, a.activation, "a = f(y) (§4.2)"),
        ArraySpec.fixed("derivative", per_neuron, derivative_format(config), "stored f' (§4.3)"),
        ArraySpec.fixed("delta", per_neuron, delta_format, "delta (§6.1; e itself for the output layer, §6.2)"),
        ArraySpec("lfsr_state", per_neuron, _UINT32, lfsr, 1, _LFSR_MAX, "LFSR state after the sample's draws"),
        ArraySpec("weight_checksum", (samples, _SHA256_BYTES), _UINT8, "SHA-256", 0, 255,
                  "weight_checksum() of the weights after the sample's update"),
    ]
    if parameters["full_weights"]:
        specs.append(ArraySpec.fixed("weights_per_sample", (samples, *weights), a.weight,
                                     "weights after each sample's update (§7)"))
    specs.append(ArraySpec.fixed("weights_final", weights, a.weight, "weights after the last sample"))
    return specs


def _check_layer_set(golden: GoldenSet, where: str) -> None:
    config: LayerConfig = golden.config
    if not config.learning:
        raise SsdfaError(f"{where}: layer sets exercise learning; this configuration has learning = false")
    if config.is_output_layer and config.outputs != config.shape.neurons:
        raise SsdfaError(
            f"{where}: an output layer has one neuron per output, but outputs = {config.outputs} "
            f"and neurons = {config.shape.neurons}"
        )
    if golden["lfsr_seed"].tolist() != layer_derived(config)["lfsr_seeds"]:
        raise SsdfaError(f"{where}: lfsr_seed does not hold the seeds derived from the configuration (§5.2)")
    checksums = golden["weight_checksum"]
    if bytes(checksums[-1]) != weight_checksum(golden["weights_final"]):
        raise SsdfaError(f"{where}: the last weight_checksum does not match weights_final")
    if "weights_per_sample" in golden.arrays:
        per_sample = golden["weights_per_sample"]
        for sample in range(per_sample.shape[0]):
            if bytes(checksums[sample]) != weight_checksum(per_sample[sample]):
                raise SsdfaError(f"{where}: weight_checksum[{sample}] does not match weights_per_sample[{sample}]")
        if not np.array_equal(per_sample[-1], golden["weights_final"]):
            raise SsdfaError(f"{where}: weights_per_sample[-1] differs from weights_final")


#: Every kind of set the reader knows. A network-level kind (a fixed-point network trained
#: end to end) adds its entry here, with its own configuration and array schema.
KINDS: dict[str, SetKind] = {
    "layer": SetKind(
        name="layer",
        config_from_dict=layer_config_from_dict,
        config_to_dict=LayerConfig.to_dict,
        parameters={"samples": int, "full_weights": bool},
        array_specs=layer_array_specs,
        derived=layer_derived,
        check=_check_layer_set,
    ),
}
