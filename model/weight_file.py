"""Saved networks: one ``.npz`` file that holds a trained network and everything needed to use it.

``save_network(path, network)`` writes a ``FixedNetwork`` or a ``FloatNetwork``;
``load_network(path)`` reads it back as a ``SavedNetwork``, whose ``network()`` rebuilds the
model. The file (docs/api.md, "Saved networks") is an uncompressed zip (``npz_archive``):

- ``manifest.json``: the schema version, the kind (``ssdfa-network``), the mode (``fixed`` or
  ``float``), the network spec (``NetworkSpec.describe()``), the arithmetic (formats, modes,
  shift and LFSR seed; fixed only), free-form provenance (dataset, epochs, accuracies), and for
  every array its shape, dtype, value format and SHA-256, plus one SHA-256 over all arrays;
- one ``<name>.npy`` per array, readable with ``numpy.load(path, allow_pickle=False)``:

  ========================  ===========================  ======================================
  array                     fixed point                  float
  ========================  ===========================  ======================================
  ``weights_<l>``           int64 raw, weight format     float64
                            (neurons, fan_in + 1), bias last
  ``feedback_index_<l>``    int64 (neurons, s), error    --
                            index per connection
  ``feedback_value_<l>``    int64 raw, feedback format   --
  ``feedback_<l>``          --                           float64 (neurons, outputs), dense B
  ``lfsr_state_<l>``        uint32 (neurons,), non-zero  --
  ========================  ===========================  ======================================

  ``l`` counts layers with weights (0 = first hidden layer); feedback arrays exist for hidden
  layers of feedback algorithms (not BP).

A float network is saved with float weights: it evaluates in the model, and the RTL paths refuse
it with one line (the hardware holds fixed-point words). The file holds the *logical* network:
how its neurons are spread over processing elements is the RTL loader's business.

The reader trusts nothing: a missing file, a file that is not a zip, a changed byte, an unknown
schema, a spec or format that cannot exist, an array of the wrong shape or dtype or outside its
format, all raise ``SsdfaError`` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssdfa.errors import SsdfaError

from .arithmetic import LFSR_WIDTH
from .config_dicts import arithmetic_from_dict, arithmetic_to_dict, network_spec_from_dict
from .feedback import FeedbackMatrix
from .fixed_network import FixedNetwork
from .float_network import FloatNetwork
from .network import NetworkSpec
from .neuron_ops import ArithmeticConfig
from .npz_archive import array_sha256, npz_bytes

__all__ = [
    "WEIGHT_FILE_SCHEMA",
    "WEIGHT_FILE_KIND",
    "SavedNetwork",
    "saved_network",
    "save_network",
    "load_network",
    "expected_arrays",
    "arrays_sha256",
]

#: The manifest layout this module writes and the only one it reads.
WEIGHT_FILE_SCHEMA = 1
WEIGHT_FILE_KIND = "ssdfa-network"
MANIFEST_MEMBER = "manifest.json"

_LFSR_MAX = (1 << LFSR_WIDTH) - 1
_FLOAT_DTYPES = ("float32", "float64")


# --------------------------------------------------------------------------------------------
# The network in memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SavedNetwork:
    """A trained network as a weight file holds it.

    Attributes
    ----------
    spec : NetworkSpec
    config : ArithmeticConfig or None
        The fixed-point arithmetic; None for a float network.
    weights : list of arrays
        Per layer (neurons, fan_in + 1), bias last: raw int64 (fixed) or float64 (float).
    feedback : list
        Per hidden layer: ``(index, raw)`` int64 (neurons, s) tables (fixed) or the dense
        float64 (neurons, outputs) matrix (float). Empty for BP.
    lfsr_states : list of uint64 (neurons,)
        Every neuron's LFSR state (fixed); empty for float.
    float_dtype : str or None
        ``float32`` or ``float64`` for a float network.
    provenance : dict
        What the writer recorded about the run (dataset, epochs, accuracies); informative only.
    sha256 : str
        SHA-256 over every array (``arrays_sha256``).
    """

    spec: NetworkSpec
    config: ArithmeticConfig | None
    weights: list
    feedback: list
    lfsr_states: list
    float_dtype: str | None = None
    provenance: dict = field(default_factory=dict)
    sha256: str = ""

    @property
    def fixed(self) -> bool:
        return self.config is not None

    @property
    def mode(self) -> str:
        return "fixed" if self.fixed else "float"

    def arrays(self) -> dict:
        """The file's arrays by name, in file order."""
        arrays = {}
        for layer, w in enumerate(self.weights):
            arrays[f"weights_{layer}"] = w
        for layer, table in enumerate(self.feedback):
            if self.fixed:
                arrays[f"feedback_index_{layer}"], arrays[f"feedback_value_{layer}"] = table
            else:
                arrays[f"feedback_{layer}"] = table
        for layer, states in enumerate(self.lfsr_states):
            arrays[f"lfsr_state_{layer}"] = np.asarray(states).astype("<u4")
        return arrays

    def network(self, *, batch: int = 1) -> FixedNetwork | FloatNetwork:
        """The model with these weights, feedback tables and LFSR states (ready to evaluate or
        to go on training)."""
        spec = self.spec
        if not self.fixed:
            return FloatNetwork(spec, dtype=self.float_dtype, weights=self.weights, feedback=self.feedback)
        outputs = spec.outputs
        matrices = [
            FeedbackMatrix.from_tables(index, self.config.feedback.to_real(raw), outputs,
                                       power_of_two=spec.power_of_two)
            for index, raw in self.feedback
        ]
        network = FixedNetwork(spec, self.config, batch=batch, weights=self.weights, feedback=matrices)
        network.set_lfsr_states(self.lfsr_states)
        return network


def saved_network(network: FixedNetwork | FloatNetwork, provenance: dict | None = None) -> SavedNetwork:
    """A ``SavedNetwork`` holding copies of ``network``'s current state."""
    provenance = dict(provenance or {})
    if isinstance(network, FixedNetwork):
        saved = SavedNetwork(
            spec=network.spec, config=network.config, weights=network.raw_weights(),
            feedback=[(index.astype(np.int64), raw.astype(np.int64)) for index, raw in network.feedback_tables()],
            lfsr_states=network.lfsr_states(), provenance=provenance,
        )
    elif isinstance(network, FloatNetwork):
        saved = SavedNetwork(
            spec=network.spec, config=None, weights=[np.array(w, dtype=np.float64) for w in network.weights],
            feedback=[np.array(b, dtype=np.float64) for b in network.feedback], lfsr_states=[],
            float_dtype=network.dtype.name, provenance=provenance,
        )
    else:
        hint = "; pass result.network" if hasattr(network, "network") else ""
        raise TypeError(f"expected a FixedNetwork, FloatNetwork or SavedNetwork, not a {type(network).__name__}{hint}")
    _check_arrays(saved, saved.arrays(), "network being saved")
    return SavedNetwork(**{**saved.__dict__, "sha256": arrays_sha256(saved.arrays())})


# --------------------------------------------------------------------------------------------
# What the arrays must be
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Expected:
    shape: tuple
    dtype: np.dtype
    format: str
    low: int | None = None  # inclusive integer range; None: any finite float
    high: int | None = None


def expected_arrays(spec: NetworkSpec, config: ArithmeticConfig | None) -> dict:
    """Name -> shape, dtype, format (and range) of every array, in file order."""
    sizes = spec.layer_sizes
    layers = spec.num_layers
    hidden = layers - 1 if spec.algorithm.uses_feedback else 0
    s = spec.feedback_connections
    f64, i64, u32 = np.dtype("<f8"), np.dtype("<i8"), np.dtype("<u4")
    specs = {}
    for layer in range(layers):
        shape = (sizes[layer + 1], sizes[layer] + 1)
        if config is None:
            specs[f"weights_{layer}"] = _Expected(shape, f64, "float64")
        else:
            w = config.weight
            specs[f"weights_{layer}"] = _Expected(shape, i64, str(w), w.min_raw, w.max_raw)
    for layer in range(hidden):
        neurons = sizes[layer + 1]
        if config is None:
            specs[f"feedback_{layer}"] = _Expected((neurons, spec.outputs), f64, "float64")
        else:
            b = config.feedback
            specs[f"feedback_index_{layer}"] = _Expected((neurons, s), i64, f"index < {spec.outputs}", 0,
                                                          spec.outputs - 1)
            specs[f"feedback_value_{layer}"] = _Expected((neurons, s), i64, str(b), b.min_raw, b.max_raw)
    if config is not None:
        for layer in range(layers):
            specs[f"lfsr_state_{layer}"] = _Expected((sizes[layer + 1],), u32, "LFSR state", 1, _LFSR_MAX)
    return specs


def arrays_sha256(arrays: dict) -> str:
    """One SHA-256 over every array: name, dtype, shape and data bytes, in file order."""
    digest = hashlib.sha256()
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        digest.update(f"{name}\0{array.dtype.str}\0{list(array.shape)}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _check_arrays(saved: SavedNetwork, arrays: dict, where: str) -> None:
    expected = expected_arrays(saved.spec, saved.config)
    missing = [name for name in expected if name not in arrays]
    if missing:
        raise SsdfaError(f"{where}: the {saved.mode} network {_sizes(saved.spec)} needs array(s) {missing}, "
                         f"which are missing")
    extra = [name for name in arrays if name not in expected]
    if extra:
        raise SsdfaError(f"{where}: array(s) {extra} are not part of a {saved.mode} {_sizes(saved.spec)} network "
                         f"({saved.spec.algorithm.value})")
    for name, want in expected.items():
        array = np.asarray(arrays[name])
        if array.shape != want.shape:
            raise SsdfaError(f"{where}: array {name} has shape {list(array.shape)}, but the network spec "
                             f"{_sizes(saved.spec)} makes it {list(want.shape)}")
        if array.dtype.kind != want.dtype.kind or (array.dtype.kind == "f" and array.dtype != want.dtype):
            raise SsdfaError(f"{where}: array {name} has dtype {array.dtype.str}, expected {want.dtype.str}")
        if want.low is None:
            if not np.all(np.isfinite(array)):
                raise SsdfaError(f"{where}: array {name} holds a value that is not finite")
            continue
        outside = (array < want.low) | (array > want.high)
        if outside.any():
            position = [int(i) for i in np.argwhere(outside)[0]]
            raise SsdfaError(f"{where}: array {name} holds {int(array[tuple(position)])} at {position}, outside "
                             f"its format {want.format} (range {want.low}..{want.high})")


def _sizes(spec: NetworkSpec) -> str:
    return "-".join(map(str, spec.layer_sizes))


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


def _manifest(saved: SavedNetwork, arrays: dict) -> dict:
    expected = expected_arrays(saved.spec, saved.config)
    return {
        "schema_version": WEIGHT_FILE_SCHEMA,
        "kind": WEIGHT_FILE_KIND,
        "mode": saved.mode,
        "network": saved.spec.describe(),
        "arithmetic": arithmetic_to_dict(saved.config) if saved.fixed else None,
        "float_dtype": saved.float_dtype,
        "provenance": saved.provenance,
        "arrays": {
            name: {"shape": list(array.shape), "dtype": array.dtype.str, "format": expected[name].format,
                   "sha256": array_sha256(array)}
            for name, array in arrays.items()
        },
        "sha256": arrays_sha256(arrays),
    }


def encode_network(saved: SavedNetwork) -> bytes:
    """The bytes of the weight file of ``saved`` (the same state always gives the same bytes)."""
    expected = expected_arrays(saved.spec, saved.config)
    given = saved.arrays()
    _check_arrays(saved, given, "network being saved")
    arrays = {name: np.ascontiguousarray(np.asarray(given[name]).astype(want.dtype)) for name, want in expected.items()}
    manifest = json.dumps(_manifest(saved, arrays), indent=1, sort_keys=True, allow_nan=False) + "\n"
    return npz_bytes(arrays, extra={MANIFEST_MEMBER: manifest.encode("utf-8")})


def save_network(path, network, *, provenance: dict | None = None) -> SavedNetwork:
    """Write ``network`` (a ``FixedNetwork``, ``FloatNetwork`` or ``SavedNetwork``) to ``path``.

    The file is written beside its target and renamed into place, so an interrupted run leaves
    the previous file or none, never half a file. Returns the ``SavedNetwork`` written (its
    ``sha256`` is the file's checksum over the arrays).

    Raises
    ------
    SsdfaError
        If the file cannot be written (naming it and the reason).
    """
    saved = network if isinstance(network, SavedNetwork) else saved_network(network, provenance)
    if provenance is not None and isinstance(network, SavedNetwork):
        saved = SavedNetwork(**{**saved.__dict__, "provenance": dict(provenance)})
    data = encode_network(saved)
    from ssdfa.user_files import refuse_special_file, through_links

    path = through_links(path)
    refuse_special_file(path, "weight file")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise SsdfaError(f"cannot write weight file {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except OSError as exc:
        raise SsdfaError(f"cannot write weight file {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return SavedNetwork(**{**saved.__dict__, "sha256": arrays_sha256(saved.arrays())})


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


def _entry(manifest: dict, key: str, kinds, where: str):
    if key not in manifest:
        raise SsdfaError(f"{where}: the manifest has no {key!r} entry")
    value = manifest[key]
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise SsdfaError(f"{where}: the manifest's {key!r} is {value!r}, not what the schema allows")
    return value


def _read_members(path: Path) -> tuple[dict, dict]:
    """The manifest and the arrays of a weight file (raw; not yet validated)."""
    from ssdfa.user_files import read_bytes

    where = f"weight file {path}"
    data = read_bytes(path, "weight file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if MANIFEST_MEMBER not in names:
                raise SsdfaError(f"{where} has no {MANIFEST_MEMBER}: it is not an ssdfa weight file")
            manifest = json.loads(archive.read(MANIFEST_MEMBER).decode("utf-8"))
            arrays = {}
            for name in names:
                if name == MANIFEST_MEMBER:
                    continue
                if not name.endswith(".npy") or name.removesuffix(".npy") in arrays:
                    raise SsdfaError(f"{where}: member {name!r} is not one <name>.npy per array")
                with archive.open(name) as member:
                    arrays[name.removesuffix(".npy")] = np.lib.format.read_array(member, allow_pickle=False)
    except SsdfaError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise SsdfaError(f"{where} is not a readable npz archive: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SsdfaError(f"{where}: {MANIFEST_MEMBER} is not valid JSON: {exc}") from None
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise SsdfaError(f"{where} is damaged: {exc}") from None
    if not isinstance(manifest, dict):
        raise SsdfaError(f"{where}: {MANIFEST_MEMBER} must hold a JSON object")
    return manifest, arrays


def load_network(path) -> SavedNetwork:
    """Read and validate the weight file ``path``.

    Checks, in order: the file is a zip with ``manifest.json``; the schema version and kind are
    this reader's; the network spec and arithmetic can exist; the arrays are exactly those the
    spec and mode require, with the manifest's shapes, dtypes, formats and SHA-256 (each, and
    the one over all arrays); every value lies in its format's range; the model accepts them.

    Raises
    ------
    SsdfaError
        ``weight file <path>: <problem>``, at the first check that fails.
    """
    path = Path(path)
    where = f"weight file {path}"
    manifest, arrays = _read_members(path)
    version = manifest.get("schema_version")
    if type(version) is not int or version != WEIGHT_FILE_SCHEMA:
        raise SsdfaError(f"{where}: unknown schema version {version!r}; this reader knows {WEIGHT_FILE_SCHEMA}")
    if manifest.get("kind") != WEIGHT_FILE_KIND:
        raise SsdfaError(f"{where}: kind {manifest.get('kind')!r} is not {WEIGHT_FILE_KIND!r}")
    mode = manifest.get("mode")
    if mode not in ("fixed", "float"):
        raise SsdfaError(f"{where}: mode {mode!r} is neither 'fixed' nor 'float'")
    spec = network_spec_from_dict(_entry(manifest, "network", (dict,), where), where)
    config = None
    float_dtype = None
    if mode == "fixed":
        config = arithmetic_from_dict(_entry(manifest, "arithmetic", (dict,), where), where)
    else:
        float_dtype = manifest.get("float_dtype")
        if float_dtype not in _FLOAT_DTYPES:
            raise SsdfaError(f"{where}: float_dtype {float_dtype!r} is not one of {', '.join(_FLOAT_DTYPES)}")
    provenance = _entry(manifest, "provenance", (dict,), where)
    listed = _entry(manifest, "arrays", (dict,), where)

    skeleton = SavedNetwork(spec, config, [], [], [], float_dtype)
    expected = expected_arrays(spec, config)
    if set(listed) != set(expected) or list(arrays) != list(expected):
        _check_arrays(skeleton, arrays, where)  # names the missing or extra array
        raise SsdfaError(f"{where}: the manifest lists arrays {sorted(listed)}, the {mode} {_sizes(spec)} network "
                         f"has {list(expected)}")
    for name, want in expected.items():
        entry, array = listed[name], arrays[name]
        if not isinstance(entry, dict):
            raise SsdfaError(f"{where}: the manifest's entry for array {name} is not a table")
        if entry.get("format") != want.format:
            raise SsdfaError(f"{where}: array {name} is listed in format {entry.get('format')!r}, but the "
                             f"arithmetic makes it {want.format}")
        if array.shape != want.shape:
            raise SsdfaError(f"{where}: array {name} has shape {list(array.shape)}, but the network spec "
                             f"{_sizes(spec)} makes it {list(want.shape)}")
        if entry.get("dtype") != array.dtype.str or array.dtype != want.dtype:
            raise SsdfaError(f"{where}: array {name} has dtype {array.dtype.str} (manifest {entry.get('dtype')!r}), "
                             f"expected {want.dtype.str}")
        if entry.get("shape") != list(array.shape):
            raise SsdfaError(f"{where}: array {name} has shape {list(array.shape)}, but the manifest says "
                             f"{entry.get('shape')!r}")
        if entry.get("sha256") != array_sha256(array):
            raise SsdfaError(f"{where}: array {name} does not match its SHA-256 (the file was changed or damaged)")
    _check_arrays(skeleton, arrays, where)
    digest = arrays_sha256(arrays)
    if manifest.get("sha256") != digest:
        raise SsdfaError(f"{where}: the SHA-256 over the arrays does not match the manifest's")

    layers = spec.num_layers
    hidden = layers - 1 if spec.algorithm.uses_feedback else 0
    weights = [arrays[f"weights_{l}"] for l in range(layers)]
    if config is not None:
        feedback = [(arrays[f"feedback_index_{l}"], arrays[f"feedback_value_{l}"]) for l in range(hidden)]
        lfsr = [arrays[f"lfsr_state_{l}"].astype(np.uint64) for l in range(layers)]
    else:
        feedback = [arrays[f"feedback_{l}"] for l in range(hidden)]
        lfsr = []
    saved = SavedNetwork(spec, config, weights, feedback, lfsr, float_dtype, provenance, digest)
    try:
        saved.network()  # what the model refuses (a feedback table it cannot use, widths)
    except (ValueError, TypeError) as exc:
        raise SsdfaError(f"{where}: the model refuses its contents: {exc}") from None
    return saved
