"""Named datasets as normalised, deterministically split train/validation/test arrays.

``load_dataset(name, data_dir)`` reads one of the known datasets (``dataset_names()``) or a
``features:PATH.npz`` file, splits it with a seeded NumPy generator and scales the features with
statistics of the training split only. This is data preparation, not the bit-exact path: the
model quantises the float32 features it returns (``arithmetic.quantize``) where they enter.

- ``digits``: scikit-learn's 8x8 digits, shipped in ``data/digits.npz`` (no download, no
  scikit-learn at run time); 1,797 images split 70/10/20 by default, stratified by class.
- ``mnist``, ``fashion-mnist``: the four standard IDX files, raw or gzip; with only the
  ``t10k`` pair present, those 10,000 images are the whole pool and are split like digits.
- ``cifar10``: the "python version" batches ``data_batch_1..5`` and ``test_batch``.
- ``features:PATH.npz``: frozen features with ``x_train, y_train, x_test, y_test`` (and
  optionally ``x_val, y_val``), e.g. a BP-trained network's penultimate layer.

Everything read from disk is checked where it is read; a bad file raises ``SsdfaError`` naming
the file and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import math
import pickle
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ssdfa.errors import SsdfaError

__all__ = [
    "Dataset",
    "Normalization",
    "FEATURES_PREFIX",
    "dataset_names",
    "load_dataset",
    "limit_samples",
    "shift_features",
    "renormalized",
    "features_file",
    "read_idx",
]

#: A dataset name starting with this is a path to a features ``.npz`` file.
FEATURES_PREFIX = "features:"


class Normalization(enum.Enum):
    """How features are scaled; every statistic comes from the training split alone."""

    #: Divide every feature by one number, the largest ``|x|`` in the training split. Zeros stay
    #: zero (sparse inputs stay sparse) and training values land in [-1, 1] ([0, 1] for pixels),
    #: so they quantise into SQ(2, f) without saturating. The default.
    MAX_ABS = "max-abs"
    #: Per feature: subtract the training mean, divide by the training standard deviation
    #: (1 where it is 0). Zeros do not stay zero and values reach several units.
    STANDARD = "standard"

    @classmethod
    def parse(cls, name: Normalization | str) -> Normalization:
        if isinstance(name, cls):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            raise SsdfaError(
                f"unknown normalization {name!r}; expected one of {', '.join(m.value for m in cls)}"
            ) from None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Normalised features and labels in three splits. The arrays are read-only.

    Attributes
    ----------
    name : str
        The name it was loaded by (``"digits"``, ``"features:run3.npz"``, ...).
    num_classes : int
        Labels are ``0 .. num_classes - 1``.
    x_train, x_val, x_test : numpy.ndarray
        float32, shape (samples, num_features), normalised (see ``normalize``). ``x_val`` may
        have no rows (``validation_fraction=0``).
    y_train, y_val, y_test : numpy.ndarray
        int64 class labels, shape (samples,).
    feature_offset, feature_scale : numpy.ndarray
        float32, shape (num_features,): a raw feature vector ``r`` becomes
        ``(r - feature_offset) / feature_scale``. Computed from the training split only.
    normalization : Normalization
        The rule that gave ``feature_offset`` and ``feature_scale``.
    """

    name: str
    num_classes: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_offset: np.ndarray
    feature_scale: np.ndarray
    normalization: Normalization

    def __post_init__(self) -> None:
        width = self.x_train.shape[1] if self.x_train.ndim == 2 else None
        for split in ("train", "val", "test"):
            features, labels = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if features.dtype != np.float32 or features.ndim != 2 or features.shape[1] != width:
                raise ValueError(
                    f"x_{split} must be float32 of shape (samples, {width}), not {features.dtype} {features.shape}"
                )
            if labels.dtype != np.int64 or labels.shape != features.shape[:1]:
                raise ValueError(
                    f"y_{split} must be int64 of shape {features.shape[:1]}, not {labels.dtype} {labels.shape}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"y_{split} holds labels outside 0..{self.num_classes - 1}")
        for field in ("feature_offset", "feature_scale"):
            vector = getattr(self, field)
            if vector.dtype != np.float32 or vector.shape != (width,):
                raise ValueError(f"{field} must be float32 of shape ({width},), not {vector.dtype} {vector.shape}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                # A read-only view: the dataset cannot change under a model, and the arrays it
                # was built from stay writeable for their owner.
                view = value.view()
                view.flags.writeable = False
                object.__setattr__(self, field.name, view)

    @property
    def num_features(self) -> int:
        """Length of one feature vector (64 for digits, 784 for MNIST, 3072 for CIFAR-10)."""
        return self.x_train.shape[1]

    def normalize(self, raw_features: np.ndarray) -> np.ndarray:
        """Scale raw features (pixels, ...) as this dataset's splits were; returns float32."""
        return _apply_normalization(np.asarray(raw_features), self.feature_offset, self.feature_scale)


def dataset_names() -> tuple[str, ...]:
    """The fixed dataset names; ``features:PATH.npz`` is accepted besides these."""
    return tuple(_LOADERS)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    normalization: Normalization | str = Normalization.MAX_ABS,
) -> Dataset:
    """Read, split and normalise a dataset.

    Parameters
    ----------
    name : str
        One of ``dataset_names()``, or ``"features:PATH.npz"``.
    data_dir : str or Path, optional
        The directory holding the files of ``mnist``, ``fashion-mnist`` (IDX) and ``cifar10``
        (batches, or their ``cifar-10-batches-py`` folder). A relative features ``PATH`` is
        taken from it when given. ``digits`` ignores it.
    seed : int
        Seeds the NumPy generator behind the split and the training order: the same seed gives
        identical arrays.
    validation_fraction : float
        Share carved out for validation, stratified by class: of the whole pool for a source
        without an official test split, else of the official training split. A features file
        with ``x_val`` keeps its own.
    test_fraction : float
        Share of the pool held out for testing, stratified by class; used only by sources
        without an official test split (``digits``, an MNIST ``t10k``-only or CIFAR
        ``test_batch``-only directory).
    normalization : Normalization or str
        ``"max-abs"`` (default) or ``"standard"``; see ``Normalization``.

    Returns
    -------
    Dataset
        Training split in seeded random order; official test splits keep their file order.

    Raises
    ------
    SsdfaError
        An unknown name (the message lists the known ones), a bad fraction or seed, a missing
        directory or file (named), or a file whose content is not what its format requires.
    """
    normalization = Normalization.parse(normalization)
    _check_split_arguments(seed, validation_fraction, test_fraction)
    key = str(name).strip()
    if key.startswith(FEATURES_PREFIX):
        source = _load_features(key[len(FEATURES_PREFIX) :], data_dir, key)
    elif key.lower() in _LOADERS:
        source = _LOADERS[key.lower()](data_dir, key.lower())
        key = key.lower()
    else:
        raise SsdfaError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}, or {FEATURES_PREFIX}PATH.npz")
    return _prepare(key, source, np.random.default_rng(seed), validation_fraction, test_fraction, normalization)


def limit_samples(
    dataset: Dataset, train: int | None = None, *, val: int | None = None, test: int | None = None
) -> Dataset:
    """Keep at most ``train`` (``val``, ``test``) samples of a split, for fast runs and tests.

    The kept samples are the first of each class in the split's current (already shuffled)
    order, in proportion to the class sizes, and stay in that order; no randomness is involved.
    The normalisation is unchanged (it was computed from the full training split).
    """
    limits = {"train": train, "val": val, "test": test}
    changes = {}
    for split, limit in limits.items():
        if limit is None:
            continue
        if not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 0:
            raise SsdfaError(f"{split} sample limit must be a non-negative integer, not {limit!r}")
        labels = getattr(dataset, f"y_{split}")
        if limit < len(labels):
            keep = _class_balanced_head(labels, int(limit), dataset.num_classes)
            changes[f"x_{split}"] = getattr(dataset, f"x_{split}")[keep]
            changes[f"y_{split}"] = labels[keep]
    return dataclasses.replace(dataset, **changes)


def shift_features(dataset: Dataset, shift: int) -> Dataset:
    """Every split's features times ``2**-shift`` (exact in binary; hardware shifts the input).

    With narrow weights this buys the first layer resolution: the same network with inputs
    ``2**k`` times smaller has first-layer weights ``2**k`` times larger, further above their
    LSB (docs/model.md section 7.1). 0 returns the dataset as it is.
    """
    if not isinstance(shift, (int, np.integer)) or isinstance(shift, bool) or not 0 <= shift <= 16:
        raise SsdfaError(f"input shift must be an integer from 0 to 16, not {shift!r}")
    if shift == 0:
        return dataset
    scale = 2.0**-int(shift)
    return dataclasses.replace(
        dataset, **{f"x_{split}": getattr(dataset, f"x_{split}") * np.float32(scale) for split in ("train", "val", "test")}
    )


def renormalized(dataset: Dataset, offset, scale) -> Dataset:
    """``dataset`` with its features scaled by ``offset`` and ``scale`` (a saved network's: the
    statistics of the training split it was trained on) instead of its own training split's.

    Each split is taken back to raw values with the dataset's own statistics and scaled again,
    so a network sees its test inputs as it saw them in training even when the file it is
    evaluated on has another training part. The same statistics return the dataset as it is.
    """
    offset = np.asarray(offset, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    width = dataset.num_features
    if offset.shape != (width,) or scale.shape != (width,) or not (np.all(np.isfinite(offset))
                                                                     and np.all(scale > 0) and np.all(np.isfinite(scale))):
        raise SsdfaError(f"the saved feature scaling ({offset.shape[0] if offset.ndim == 1 else '?'} features) "
                         f"does not fit {dataset.name}'s {width} features")
    if np.array_equal(offset, dataset.feature_offset) and np.array_equal(scale, dataset.feature_scale):
        return dataset
    changes = {}
    for split in ("train", "val", "test"):
        raw = getattr(dataset, f"x_{split}").astype(np.float64) * dataset.feature_scale + dataset.feature_offset
        changes[f"x_{split}"] = _apply_normalization(raw, offset, scale)
    return dataclasses.replace(dataset, **changes, feature_offset=offset, feature_scale=scale)


# --- Splitting and normalising -----------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Raw features (any real dtype, 2-D) and int64 labels as read, before splitting.

    ``test is None``: ``train`` is the whole pool. ``val is None``: validation comes from train.
    """

    num_classes: int
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None = None
    val: tuple[np.ndarray, np.ndarray] | None = None


def _check_split_arguments(seed: object, validation_fraction: object, test_fraction: object) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise SsdfaError(f"seed must be a non-negative integer, not {seed!r}")
    for label, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not isinstance(fraction, (int, float, np.floating, np.integer)) or not 0 <= fraction < 1:
            raise SsdfaError(f"{label} must be a number in [0, 1), not {fraction!r}")
    if validation_fraction + test_fraction >= 1:
        raise SsdfaError(
            f"validation_fraction + test_fraction must leave training data: "
            f"{validation_fraction} + {test_fraction} >= 1"
        )


def _prepare(
    name: str,
    source: _Source,
    rng: np.random.Generator,
    validation_fraction: float,
    test_fraction: float,
    normalization: Normalization,
) -> Dataset:
    x_pool, y_pool = source.train
    if source.test is None:
        pool_sizes = [_share(len(y_pool), test_fraction), _share(len(y_pool), validation_fraction)]
        test_part, val_part, train_part = _stratified_split(y_pool, pool_sizes, rng)
        x_test, y_test = x_pool[test_part], y_pool[test_part]
        x_val, y_val = x_pool[val_part], y_pool[val_part]
    elif source.val is None:
        val_part, train_part = _stratified_split(y_pool, [_share(len(y_pool), validation_fraction)], rng)
        x_test, y_test = source.test
        x_val, y_val = x_pool[val_part], y_pool[val_part]
    else:
        train_part = rng.permutation(len(y_pool))
        (x_test, y_test), (x_val, y_val) = source.test, source.val
    x_train, y_train = x_pool[train_part], y_pool[train_part]
    if len(y_train) == 0:
        raise SsdfaError(f"dataset {name!r}: the split leaves no training samples")
    offset, scale = _normalization_statistics(x_train, normalization)
    return Dataset(
        name=name,
        num_classes=source.num_classes,
        x_train=_apply_normalization(x_train, offset, scale),
        y_train=y_train.astype(np.int64),
        x_val=_apply_normalization(x_val, offset, scale),
        y_val=y_val.astype(np.int64),
        x_test=_apply_normalization(x_test, offset, scale),
        y_test=y_test.astype(np.int64),
        feature_offset=offset,
        feature_scale=scale,
        normalization=normalization,
    )


def _share(total: int, fraction: float) -> int:
    """``fraction`` of ``total`` samples, rounded half up (so the same on every platform)."""
    return math.floor(total * fraction + 0.5)


def _apportion(total: int, capacities: np.ndarray) -> np.ndarray:
    """Split ``total`` (<= capacities.sum()) in proportion to ``capacities`` (largest remainder).

    Integer arithmetic throughout; ties go to the lower class. No share exceeds its capacity.
    """
    capacities = np.asarray(capacities, dtype=np.int64)
    whole = int(capacities.sum())
    if whole == 0:
        return np.zeros_like(capacities)
    counts, remainders = np.divmod(capacities * total, whole)
    shortfall = total - int(counts.sum())
    counts[np.argsort(-remainders, kind="stable")[:shortfall]] += 1
    return counts


def _stratified_split(labels: np.ndarray, sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Partition ``range(len(labels))`` into parts of ``sizes`` plus one part with the rest.

    Each part takes every class in proportion to what is left of it, so class ratios match
    across parts. Each part's indices come back in random order.
    """
    order = rng.permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]  # grouped by class, random within
    class_sizes = np.bincount(labels, minlength=1)
    class_starts = np.concatenate([[0], np.cumsum(class_sizes)[:-1]])
    taken = np.zeros_like(class_sizes)
    parts = []
    for size in [*sizes, None]:
        counts = class_sizes - taken if size is None else _apportion(size, class_sizes - taken)
        part = np.concatenate(
            [
                order[start + done : start + done + count]
                for start, done, count in zip(class_starts, taken, counts, strict=True)
            ]
        )
        taken = taken + counts
        parts.append(rng.permutation(part))
    return parts


def _class_balanced_head(labels: np.ndarray, limit: int, num_classes: int) -> np.ndarray:
    """Indices of the first samples of each class, ``limit`` in all, shared by class size, sorted."""
    counts = _apportion(limit, np.bincount(labels, minlength=num_classes))
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:count] for c, count in enumerate(counts)]))


def _normalization_statistics(x_train: np.ndarray, normalization: Normalization) -> tuple[np.ndarray, np.ndarray]:
    """float32 (offset, scale) vectors from the training features alone."""
    width = x_train.shape[1]
    if normalization is Normalization.MAX_ABS:
        # max and min separately: abs() of the most negative int8 value would overflow.
        peak = max(abs(float(x_train.max())), abs(float(x_train.min()))) if x_train.size else 0.0
        offset, scale = np.zeros(width), np.full(width, peak if peak > 0 else 1.0)
    else:
        offset = x_train.mean(axis=0, dtype=np.float64)
        squared_deviation = np.zeros(width)
        # Row blocks: a float64 copy of all CIFAR-10 training pixels would take 1.2 GB.
        for start in range(0, len(x_train), 4096):
            deviation = x_train[start : start + 4096].astype(np.float64) - offset
            squared_deviation += np.einsum("ij,ij->j", deviation, deviation)
        scale = np.sqrt(squared_deviation / max(len(x_train), 1))
        scale[scale == 0] = 1.0  # a constant feature becomes 0, not NaN
    return offset.astype(np.float32), scale.astype(np.float32)


def _apply_normalization(raw: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    features = raw.astype(np.float32)  # a copy: the caller's raw array is left alone
    features -= offset
    features /= scale
    return features


# --- Shipped digits ----------------------------------------------------------------------------


def _load_digits(data_dir: object, name: str) -> _Source:
    shipped = resources.files(__package__).joinpath("data", "digits.npz")
    with shipped.open("rb") as file, np.load(file, allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]
    return _Source(num_classes=10, train=(images.reshape(len(images), -1), labels.astype(np.int64)))


# --- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------

#: IDX type codes (third byte of the magic number) and the big-endian dtype each stores.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: The standard file names of each (images, labels) pair; ".gz" may follow each.
_IDX_PAIRS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzip-compressed) into an array in native byte order.

    Raises
    ------
    SsdfaError
        Naming the file: missing or unreadable, corrupt gzip, a magic number that is not IDX,
        an unknown type code, or a length that disagrees with the header (truncated or padded).
    """
    path = Path(path)
    content = _read_maybe_gzip(path)
    if len(content) < 4:
        raise SsdfaError(f"{path}: truncated: {len(content)} bytes, shorter than an IDX magic number")
    magic = int.from_bytes(content[:4], "big")
    if content[:2] != b"\0\0":
        raise SsdfaError(f"{path}: not an IDX file: magic number 0x{magic:08X} does not start with two zero bytes")
    type_code, ndim = content[2], content[3]
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES)
        raise SsdfaError(f"{path}: unknown IDX data type code 0x{type_code:02X} (magic 0x{magic:08X}); known: {known}")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise SsdfaError(f"{path}: truncated: {len(content)} bytes, shorter than its {header_size}-byte header")
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = header_size + math.prod(shape) * dtype.itemsize
    if len(content) != expected:
        problem = "truncated" if len(content) < expected else "has trailing bytes"
        raise SsdfaError(
            f"{path}: {problem}: the header promises {'x'.join(map(str, shape))} {dtype.name} "
            f"({expected} bytes with the header) but it holds {len(content)} bytes"
        )
    array = np.frombuffer(content, dtype=dtype, count=math.prod(shape), offset=header_size)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise SsdfaError(f"{path}: no such file") from None
    except OSError as exc:
        raise SsdfaError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    # Recognised by content, not by name: the gzip magic cannot begin an IDX file (00 00 ..).
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise SsdfaError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    return content


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    # Some mirrors spell the names with a dot ("train-images.idx3-ubyte").
    for base in (stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_idx_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise SsdfaError(
            f"{images_path}: expected images as unsigned bytes in 3 dimensions (magic 0x00000803), "
            f"found {images.dtype} in {images.ndim}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise SsdfaError(
            f"{labels_path}: expected labels as unsigned bytes in 1 dimension (magic 0x00000801), "
            f"found {labels.dtype} in {labels.ndim}"
        )
    if len(labels) != len(images):
        raise SsdfaError(f"{labels_path} holds {len(labels)} labels but {images_path} holds {len(images)} images")
    if len(images) == 0:
        raise SsdfaError(f"{images_path} holds no images")
    if len(labels) and labels.max() >= num_classes:
        raise SsdfaError(f"{labels_path}: label {labels.max()} is outside 0..{num_classes - 1}")
    return images.reshape(len(images), -1), labels.astype(np.int64)


def _load_idx_dataset(data_dir: str | Path | None, name: str) -> _Source:
    directory = _data_directory(data_dir, name)
    found = {}
    for part, stems in _IDX_PAIRS.items():
        images_path, labels_path = (_find_idx_file(directory, stem) for stem in stems)
        if images_path is None and labels_path is None:
            continue
        if images_path is None or labels_path is None:
            missing = stems[0] if images_path is None else stems[1]
            raise SsdfaError(f"{directory / missing}: no such file (raw or .gz); its {part} pair is incomplete")
        found[part] = _read_idx_pair(images_path, labels_path, num_classes=10)
    if not found:
        expected = ", ".join(stem for stems in _IDX_PAIRS.values() for stem in stems)
        raise SsdfaError(f"{directory}: no {name} IDX files; expected {expected} (each raw or .gz)")
    if len(found) == 1:  # e.g. only the 10,000-image test set: it is the whole pool
        return _Source(num_classes=10, train=next(iter(found.values())))
    if found["train"][0].shape[1] != found["t10k"][0].shape[1]:
        raise SsdfaError(f"{directory}: train and t10k images differ in size")
    return _Source(num_classes=10, train=found["train"], test=found["t10k"])


# --- CIFAR-10 python batches -------------------------------------------------------------------

_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"
_CIFAR_FEATURES = 3 * 32 * 32


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 spell each bytes object as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refuses _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


_ARRAY_SAMPLE = np.zeros(1, dtype=np.uint8)
#: The only callables a CIFAR-10 batch may name. The array constructors are taken from what numpy
#: itself pickles with, so no deprecated ``numpy.core`` module is imported to resolve them.
_CIFAR_PICKLE_GLOBALS: dict[tuple[str, str], Callable[..., object] | type] = {
    ("numpy.core.multiarray", "_reconstruct"): _ARRAY_SAMPLE.__reduce__()[0],
    ("numpy._core.multiarray", "_reconstruct"): _ARRAY_SAMPLE.__reduce__()[0],
    ("numpy.core.numeric", "_frombuffer"): _ARRAY_SAMPLE.__reduce_ex__(5)[0],
    ("numpy._core.numeric", "_frombuffer"): _ARRAY_SAMPLE.__reduce_ex__(5)[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and nothing else.

    The batches are pickles, and a pickle may call any importable function while it loads, so a
    tampered download could run code. Dicts, lists, bytes, str and ints need no lookup at all;
    ``find_class`` resolves only the numpy array constructors and refuses everything else.
    """

    def find_class(self, module: str, name: str) -> object:
        try:
            return _CIFAR_PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refuses to load {module}.{name}: a CIFAR-10 batch holds only a dict of arrays, lists, bytes and ints"
            ) from None


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise SsdfaError(f"{path}: no such file")
    try:
        with path.open("rb") as file:
            # encoding="bytes": the batches were pickled by Python 2, whose str is our bytes.
            batch = _CifarUnpickler(file, encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - a corrupt pickle fails in many ways, all of them "bad file"
        raise SsdfaError(f"{path}: not a readable CIFAR-10 batch: {type(exc).__name__}: {exc}") from None
    if not isinstance(batch, dict):
        raise SsdfaError(f"{path}: a CIFAR-10 batch is a dict, not {type(batch).__name__}")
    # Python 3 re-pickles may have str keys; the originals have bytes keys.
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise SsdfaError(f"{path}: a CIFAR-10 batch needs the keys b'data' and b'labels'")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_FEATURES:
        shape = getattr(data, "shape", None)
        raise SsdfaError(
            f"{path}: b'data' must be uint8 of shape (images, {_CIFAR_FEATURES}), "
            f"not {getattr(data, 'dtype', type(data).__name__)} {shape}"
        )
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError):
        labels = np.asarray([], dtype=object)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise SsdfaError(f"{path}: b'labels' must be a list of integers")
    if len(labels) != len(data):
        raise SsdfaError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise SsdfaError(f"{path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return data, labels.astype(np.int64)


def _load_cifar10(data_dir: str | Path | None, name: str) -> _Source:
    directory = _data_directory(data_dir, name)
    nested = directory / "cifar-10-batches-py"  # the folder the official archive unpacks to
    if not (directory / _CIFAR_TEST_BATCH).exists() and nested.is_dir():
        directory = nested
    present = [batch for batch in _CIFAR_TRAIN_BATCHES if (directory / batch).exists()]
    test = _read_cifar_batch(directory / _CIFAR_TEST_BATCH)
    if not present:  # only the test batch: it is the whole pool, as for MNIST's t10k
        return _Source(num_classes=10, train=test)
    for batch in _CIFAR_TRAIN_BATCHES:
        if batch not in present:
            raise SsdfaError(f"{directory / batch}: no such file (the training set needs data_batch_1..5)")
    parts = [_read_cifar_batch(directory / batch) for batch in _CIFAR_TRAIN_BATCHES]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return _Source(num_classes=10, train=train, test=test)


# --- Frozen features (.npz) --------------------------------------------------------------------

_FEATURE_SPLITS = ("train", "val", "test")


def features_file(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The file a ``features:PATH`` dataset name reads (a relative PATH from ``data_dir`` when
    given), or None for any other name."""
    if not str(name).startswith(FEATURES_PREFIX):
        return None
    path = Path(str(name)[len(FEATURES_PREFIX) :]).expanduser()
    return Path(data_dir) / path if not path.is_absolute() and data_dir is not None else path


def _load_features(spec: str, data_dir: str | Path | None, name: str) -> _Source:
    if not spec:
        raise SsdfaError(f"dataset {name!r}: give the features file after the colon, e.g. {FEATURES_PREFIX}run.npz")
    path = features_file(name, data_dir)
    if not path.is_file():
        raise SsdfaError(f"{path}: no such features file")
    with path.open("rb") as head:
        magic = head.read(4)
    if magic != b"PK\x03\x04":  # np.load would take it for a pickle and advise allow_pickle
        what = "an empty file" if not magic else "a CSV or other text file" if _looks_like_text(path) else "another format"
        raise SsdfaError(f"{path}: not an .npz (zip) file but {what}; save the arrays with numpy.savez "
                         "(x_train, y_train, x_test, y_test)")
    # Opened here, not by np.load, which leaves its file open when the zip is damaged.
    handle = path.open("rb")
    try:
        archive = np.load(handle, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        handle.close()
        raise SsdfaError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        handle.close()
        raise SsdfaError(f"{path}: holds a single array; expected an .npz with x_train, y_train, x_test, y_test")
    with handle, archive:
        keys = set(archive.files)
        missing = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in keys]
        if missing:
            raise SsdfaError(f"{path}: missing array(s) {', '.join(missing)}")
        if ("x_val" in keys) != ("y_val" in keys):
            raise SsdfaError(f"{path}: has only one of x_val and y_val; give both or neither")
        splits = {}
        for split in _FEATURE_SPLITS:
            if f"x_{split}" in keys:
                splits[split] = (_features_array(archive, path, split), _labels_array(archive, path, split))
    width = splits["train"][0].shape[1]
    for split, (features, labels) in splits.items():
        if features.shape[1] != width:
            raise SsdfaError(f"{path}: x_{split} has {features.shape[1]} features, x_train has {width}")
        if len(labels) != len(features):
            raise SsdfaError(f"{path}: y_{split} has {len(labels)} labels for {len(features)} rows of x_{split}")
    for split in ("train", "test"):
        if len(splits[split][1]) == 0:
            raise SsdfaError(f"{path}: x_{split} has no samples")
    num_classes = 1 + max(int(labels.max()) for _, labels in splits.values() if len(labels))
    if num_classes < 2:
        raise SsdfaError(f"{path}: every label is 0; a classifier needs at least two classes")
    return _Source(num_classes=num_classes, train=splits["train"], test=splits["test"], val=splits.get("val"))


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as file:
        start = file.read(512)
    return bool(start) and all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in start)


def _features_array(archive: np.lib.npyio.NpzFile, path: Path, split: str) -> np.ndarray:
    features = _archive_member(archive, path, f"x_{split}")
    if features.ndim != 2 or not (
        np.issubdtype(features.dtype, np.integer) or np.issubdtype(features.dtype, np.floating)
    ):
        raise SsdfaError(
            f"{path}: x_{split} must be a 2-D real array (samples, features), not {features.dtype} {features.shape}"
        )
    if np.issubdtype(features.dtype, np.floating) and not np.isfinite(features).all():
        raise SsdfaError(f"{path}: x_{split} holds NaN or infinite values")
    if np.issubdtype(features.dtype, np.floating) and features.size:
        # Features become float32: a larger magnitude would be infinite there.
        peak = float(np.max(np.abs(features)))
        if peak > float(np.finfo(np.float32).max):
            raise SsdfaError(f"{path}: x_{split} holds {peak:g}, beyond the float32 range the features are kept in")
    return features


def _labels_array(archive: np.lib.npyio.NpzFile, path: Path, split: str) -> np.ndarray:
    labels = _archive_member(archive, path, f"y_{split}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise SsdfaError(f"{path}: y_{split} must be 1-D integer class labels, not {labels.dtype} {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise SsdfaError(f"{path}: y_{split} holds a negative label ({labels.min()})")
    return labels.astype(np.int64)


def _archive_member(archive: np.lib.npyio.NpzFile, path: Path, key: str) -> np.ndarray:
    try:
        return archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # ValueError includes object arrays, which would need pickle (refused).
        raise SsdfaError(f"{path}: cannot read {key}: {exc}") from None


# --- Shared ------------------------------------------------------------------------------------


def _data_directory(data_dir: str | Path | None, name: str) -> Path:
    if data_dir is None:
        raise SsdfaError(f"dataset {name!r} is read from files: give the directory that holds them")
    directory = Path(data_dir).expanduser()
    if not directory.exists():
        raise SsdfaError(f"{directory}: no such directory (data for {name!r})")
    if not directory.is_dir():
        raise SsdfaError(f"{directory}: not a directory (data for {name!r})")
    return directory


#: Dataset name -> reader of its raw arrays; the order is the order ``dataset_names`` lists.
_LOADERS: dict[str, Callable[[str | Path | None, str], _Source]] = {
    "digits": _load_digits,
    "mnist": _load_idx_dataset,
    "fashion-mnist": _load_idx_dataset,
    "cifar10": _load_cifar10,
}
