"""Dataset loading: the shipped digits, IDX, CIFAR-10 batches, features files, splits, scaling.

Every file-format test writes its own small files; none needs a download.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import struct
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdfa.errors import SsdfaError
from ssdfa.model import datasets
from ssdfa.model.datasets import Dataset, Normalization, dataset_names, limit_samples, load_dataset, read_idx

SPLITS = ("train", "val", "test")


# --- Helpers that write small files in the real formats -----------------------------------------


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file: magic 00 00 <type> <ndim>, big-endian uint32 dimensions, big-endian data."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def write_file(path: Path, content: bytes, compress: bool = False) -> Path:
    if compress:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content, mtime=0)
    path.write_bytes(content)
    return path


def labelled_images(count: int, seed: int, side: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Unique uint8 images (the sample number is in the first two pixels) and balanced labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, side, side), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(count) // 256, np.arange(count) % 256
    return images, (np.arange(count) % 10).astype(np.uint8)


def write_idx_pair(directory: Path, part: str, count: int, seed: int, compress: bool = False):
    images, labels = labelled_images(count, seed)
    write_file(directory / f"{part}-images-idx3-ubyte", idx_bytes(images), compress)
    write_file(directory / f"{part}-labels-idx1-ubyte", idx_bytes(labels), compress)
    return images, labels


def write_cifar_batch(path: Path, count: int, seed: int, protocol: int = 2) -> tuple[np.ndarray, list[int]]:
    """A batch laid out like the originals: a dict with bytes keys, uint8 data, a list of labels."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=count)]
    batch = {b"batch_label": b"testing batch", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * count}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    return data, labels


def python2_cifar_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch byte for byte as Python 2 pickled the originals (protocol 2, str as BINSTRING,
    arrays rebuilt through ``numpy.core.multiarray._reconstruct``), which Python 3 cannot write."""

    def text(value: bytes) -> bytes:
        return b"U" + bytes([len(value)]) + value

    def integer(value: int) -> bytes:
        return b"J" + struct.pack("<i", value)

    dtype = [b"cnumpy\ndtype\n", text(b"u1"), integer(0), integer(1), b"\x87R",
             b"(", integer(3), text(b"|"), b"NNN", integer(-1), integer(-1), integer(0), b"tb"]
    array = [b"cnumpy.core.multiarray\n_reconstruct\n", b"cnumpy\nndarray\n", integer(0), b"\x85", text(b"b"),
             b"\x87R", b"(", integer(1), integer(data.shape[0]), integer(data.shape[1]), b"\x86", *dtype,
             b"\x89", b"T" + struct.pack("<I", data.nbytes) + data.tobytes(), b"tb"]
    entries = [text(b"data"), *array, text(b"labels"), b"](", *map(integer, labels), b"e"]
    return b"".join([b"\x80\x02}(", *entries, b"u."])


def write_features(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def raw_rows(dataset: Dataset, split: str) -> np.ndarray:
    """Undo the normalisation (exact for integer raw data) to compare with what was written."""
    features = getattr(dataset, f"x_{split}").astype(np.float64)
    return np.rint(features * dataset.feature_scale + dataset.feature_offset)


def sorted_rows(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort(rows.T[::-1])]


def error_naming(path: Path | str, also: str = "") -> re.Pattern:
    return re.compile(re.escape(str(path)) + ".*" + re.escape(also), re.DOTALL)


# --- Names -------------------------------------------------------------------------------------


def test_dataset_names_lists_every_fixed_dataset():
    assert dataset_names() == ("digits", "mnist", "fashion-mnist", "cifar10")


def test_unknown_dataset_name_error_lists_the_known_ones():
    with pytest.raises(SsdfaError, match="unknown dataset 'emnist'") as caught:
        load_dataset("emnist")
    for name in (*dataset_names(), "features:PATH.npz"):
        assert name in str(caught.value)


def test_file_datasets_without_a_directory_say_so():
    for name in ("mnist", "fashion-mnist", "cifar10"):
        with pytest.raises(SsdfaError, match=f"dataset '{name}' is read from files"):
            load_dataset(name)


def test_missing_data_directory_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(SsdfaError, match=error_naming(missing, "no such directory")):
        load_dataset("mnist", missing)


# --- Digits, shipped with the package ----------------------------------------------------------


def test_shipped_digits_file_holds_1797_uint8_images_without_pickle():
    shipped = resources.files("ssdfa.model").joinpath("data", "digits.npz")
    with shipped.open("rb") as file, np.load(file, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["images", "labels"]
        images, labels = archive["images"], archive["labels"]
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8)
    assert labels.dtype == np.uint8 and labels.shape == (1797,)
    assert images.max() == 16 and set(np.unique(labels)) == set(range(10))
    # The checksums docs/datasets.md records for the arrays (not the file: zip headers hold dates).
    assert hashlib.sha256(images.tobytes()).hexdigest().startswith("8f26b2bd9d135c25")
    assert hashlib.sha256(labels.tobytes()).hexdigest().startswith("8ba4f891220f5e4c")


def test_digits_loads_offline_into_70_10_20_splits_of_float32_and_int64():
    digits = load_dataset("digits")
    assert (digits.name, digits.num_classes, digits.num_features) == ("digits", 10, 64)
    assert [len(getattr(digits, f"y_{s}")) for s in SPLITS] == [1258, 180, 359]
    for split in SPLITS:
        assert getattr(digits, f"x_{split}").dtype == np.float32
        assert getattr(digits, f"y_{split}").dtype == np.int64


def test_digits_splits_partition_the_shipped_images():
    digits = load_dataset("digits", seed=3)
    with resources.files("ssdfa.model").joinpath("data", "digits.npz").open("rb") as file:
        with np.load(file, allow_pickle=False) as archive:
            pool = archive["images"].reshape(-1, 64).astype(np.float64)
            pool_labels = archive["labels"].astype(np.int64)
    rows = np.concatenate([raw_rows(digits, s) for s in SPLITS])
    labels = np.concatenate([getattr(digits, f"y_{s}") for s in SPLITS])
    together = np.column_stack([rows, labels])
    # Equal as multisets: every image is in exactly one split, with its own label.
    assert np.array_equal(sorted_rows(together), sorted_rows(np.column_stack([pool, pool_labels])))


def test_digits_split_is_stratified_by_class():
    digits = load_dataset("digits")
    total = sum(np.bincount(getattr(digits, f"y_{s}"), minlength=10) for s in SPLITS)
    for split, share in zip(SPLITS, (0.7, 0.1, 0.2), strict=True):
        counts = np.bincount(getattr(digits, f"y_{split}"), minlength=10)
        assert np.all(np.abs(counts - total * share) <= 1.5)


def test_same_seed_gives_identical_arrays():
    first, second = load_dataset("digits", seed=7), load_dataset("digits", seed=7)
    for split in SPLITS:
        assert np.array_equal(getattr(first, f"x_{split}"), getattr(second, f"x_{split}"))
        assert np.array_equal(getattr(first, f"y_{split}"), getattr(second, f"y_{split}"))


def test_different_seeds_give_different_splits():
    first, second = load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert not np.array_equal(sorted_rows(raw_rows(first, "test")), sorted_rows(raw_rows(second, "test")))


def test_digits_max_abs_scaling_divides_by_the_largest_training_pixel():
    digits = load_dataset("digits")
    assert np.all(digits.feature_scale == 16) and np.all(digits.feature_offset == 0)
    assert digits.x_train.min() == 0 and digits.x_train.max() == 1
    assert digits.normalization is Normalization.MAX_ABS


def test_dataset_arrays_are_read_only():
    digits = load_dataset("digits")
    with pytest.raises(ValueError, match="read-only"):
        digits.x_train[0, 0] = 5


def test_split_fractions_and_seed_are_checked():
    with pytest.raises(SsdfaError, match="validation_fraction must be a number in"):
        load_dataset("digits", validation_fraction=-0.1)
    with pytest.raises(SsdfaError, match=re.escape("0.5 + 0.5 >= 1")):
        load_dataset("digits", validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(SsdfaError, match="seed must be a non-negative integer, not -1"):
        load_dataset("digits", seed=-1)
    with pytest.raises(SsdfaError, match="unknown normalization 'zscore'"):
        load_dataset("digits", normalization="zscore")


def test_zero_validation_fraction_gives_an_empty_validation_split():
    digits = load_dataset("digits", validation_fraction=0)
    assert digits.x_val.shape == (0, 64) and len(digits.y_train) == 1797 - 359


# --- Normalisation comes from the training split alone -----------------------------------------


def features_with_loud_test_set(path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_features(
        path,
        x_train=rng.normal(2.0, 3.0, size=(200, 5)),
        y_train=np.arange(200) % 4,
        x_val=rng.normal(0, 50.0, size=(30, 5)),
        y_val=np.arange(30) % 4,
        x_test=rng.normal(-40.0, 100.0, size=(40, 5)),
        y_test=np.arange(40) % 4,
    )


@pytest.mark.parametrize("normalization", list(Normalization))
def test_normalisation_statistics_come_from_the_training_split_only(tmp_path, normalization):
    path = features_with_loud_test_set(tmp_path / "loud.npz")
    dataset = load_dataset(f"features:{path}", normalization=normalization)
    with np.load(path) as archive:
        train_raw = archive["x_train"]
        test_raw = archive["x_test"]
    if normalization is Normalization.MAX_ABS:
        assert np.allclose(dataset.feature_scale, np.abs(train_raw).max(), rtol=1e-6)
        assert np.abs(dataset.x_train).max() == pytest.approx(1.0)
    else:
        assert np.allclose(dataset.feature_offset, train_raw.mean(axis=0), rtol=1e-5)
        assert np.allclose(dataset.feature_scale, train_raw.std(axis=0), rtol=1e-5)
        assert np.allclose(dataset.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(dataset.normalize(test_raw), dataset.x_test)


def test_max_abs_scaling_keeps_zero_features_at_zero(tmp_path):
    x_train = np.zeros((20, 3))
    x_train[::2, 1] = np.arange(10)
    path = write_features(tmp_path / "sparse.npz", x_train=x_train, y_train=np.arange(20) % 2,
                          x_test=np.zeros((4, 3)), y_test=np.arange(4) % 2)
    dataset = load_dataset(f"features:{path}", validation_fraction=0)
    assert np.count_nonzero(dataset.x_train) == np.count_nonzero(x_train) and not dataset.x_test.any()


def test_standard_scaling_leaves_constant_features_finite(tmp_path):
    path = write_features(tmp_path / "flat.npz", x_train=np.ones((10, 2)), y_train=np.arange(10) % 2,
                          x_test=np.ones((2, 2)), y_test=np.array([0, 1]))
    dataset = load_dataset(f"features:{path}", normalization="standard")
    assert np.all(dataset.x_train == 0) and np.all(dataset.feature_scale == 1)


# --- IDX: MNIST and Fashion-MNIST --------------------------------------------------------------


@pytest.mark.parametrize("type_code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_reads_every_type_raw_and_gzip(tmp_path, type_code, compress):
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.int64)
    if type_code == 0x08:
        values = values + 5
    path = write_file(tmp_path / "sample-idx3", idx_bytes(values, type_code), compress)
    array = read_idx(path)
    assert array.shape == (2, 3, 4) and array.dtype.isnative
    assert np.array_equal(array, values)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_directory_with_four_files_uses_the_official_test_set(tmp_path, name, compress):
    train_images, _ = write_idx_pair(tmp_path, "train", 100, seed=1, compress=compress)
    test_images, test_labels = write_idx_pair(tmp_path, "t10k", 30, seed=2, compress=compress)
    dataset = load_dataset(name, tmp_path)
    assert (dataset.name, dataset.num_features, dataset.num_classes) == (name, 16, 10)
    assert [len(getattr(dataset, f"y_{s}")) for s in SPLITS] == [90, 10, 30]
    # The official test set, in file order; validation carved out of the official training set.
    assert np.array_equal(raw_rows(dataset, "test"), test_images.reshape(30, -1))
    assert np.array_equal(dataset.y_test, test_labels)
    carved = np.concatenate([raw_rows(dataset, "train"), raw_rows(dataset, "val")])
    assert np.array_equal(sorted_rows(carved), sorted_rows(train_images.reshape(100, -1).astype(np.float64)))
    assert np.all(dataset.feature_scale == np.concatenate([raw_rows(dataset, "train")]).max())


def test_idx_directory_with_only_t10k_splits_it_into_train_val_test(tmp_path):
    images, _ = write_idx_pair(tmp_path, "t10k", 200, seed=3, compress=True)
    dataset = load_dataset("mnist", tmp_path, validation_fraction=0.1, test_fraction=0.2)
    assert [len(getattr(dataset, f"y_{s}")) for s in SPLITS] == [140, 20, 40]
    every_row = np.concatenate([raw_rows(dataset, s) for s in SPLITS])
    assert np.array_equal(sorted_rows(every_row), sorted_rows(images.reshape(200, -1).astype(np.float64)))
    for split in SPLITS:
        counts = np.bincount(getattr(dataset, f"y_{split}"), minlength=10)
        assert counts.max() - counts.min() <= 1


def test_idx_names_spelled_with_a_dot_are_found(tmp_path):
    images, labels = labelled_images(20, seed=4)
    write_file(tmp_path / "t10k-images.idx3-ubyte", idx_bytes(images))
    write_file(tmp_path / "t10k-labels.idx1-ubyte", idx_bytes(labels))
    assert load_dataset("mnist", tmp_path).num_features == 16


def test_idx_directory_without_idx_files_names_the_expected_files(tmp_path):
    with pytest.raises(SsdfaError, match=error_naming(tmp_path, "t10k-images-idx3-ubyte")):
        load_dataset("mnist", tmp_path)


def test_idx_pair_missing_its_labels_names_the_missing_file(tmp_path):
    images, _ = labelled_images(10, seed=5)
    write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images), compress=True)
    with pytest.raises(SsdfaError, match=error_naming(tmp_path / "t10k-labels-idx1-ubyte", "no such file")):
        load_dataset("mnist", tmp_path)


def test_idx_bad_magic_number_is_named(tmp_path):
    images, labels = labelled_images(10, seed=6)
    path = write_file(tmp_path / "t10k-images-idx3-ubyte", b"\x12\x34" + idx_bytes(images)[2:])
    write_file(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(SsdfaError, match=error_naming(path, "magic number 0x12340803")):
        load_dataset("mnist", tmp_path)


def test_idx_unknown_type_code_is_named(tmp_path):
    path = write_file(tmp_path / "odd-idx1", bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(SsdfaError, match=error_naming(path, "unknown IDX data type code 0x0A")):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated_images_are_named(tmp_path, compress):
    images, labels = labelled_images(10, seed=7)
    path = write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images)[:-5], compress)
    write_file(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels), compress)
    with pytest.raises(SsdfaError, match=error_naming(path, "truncated")):
        load_dataset("mnist", tmp_path)


def test_idx_truncated_header_is_named(tmp_path):
    path = write_file(tmp_path / "short-idx3", bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(SsdfaError, match=error_naming(path, "truncated")):
        read_idx(path)


def test_idx_file_with_trailing_bytes_is_named(tmp_path):
    path = write_file(tmp_path / "long-idx1", idx_bytes(np.arange(5, dtype=np.uint8)) + b"\0")
    with pytest.raises(SsdfaError, match=error_naming(path, "trailing bytes")):
        read_idx(path)


def test_idx_truncated_gzip_stream_is_named(tmp_path):
    path = tmp_path / "cut-idx1.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))[:-12])
    with pytest.raises(SsdfaError, match=error_naming(path, "gzip")):
        read_idx(path)


def test_idx_label_and_image_counts_must_agree(tmp_path):
    images, labels = labelled_images(10, seed=8)
    write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    labels_path = write_file(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels[:9]))
    with pytest.raises(SsdfaError, match=error_naming(labels_path, "9 labels but")):
        load_dataset("mnist", tmp_path)


def test_idx_labels_file_in_place_of_images_is_refused(tmp_path):
    _, labels = labelled_images(10, seed=9)
    images_path = write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(labels))
    write_file(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(SsdfaError, match=error_naming(images_path, "3 dimensions")):
        load_dataset("mnist", tmp_path)


def test_idx_label_outside_the_ten_classes_is_named(tmp_path):
    images, labels = labelled_images(10, seed=10)
    labels[3] = 12
    write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    labels_path = write_file(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(SsdfaError, match=error_naming(labels_path, "label 12")):
        load_dataset("mnist", tmp_path)


# --- CIFAR-10 python batches -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_reads_five_training_batches_and_the_test_batch(tmp_path, protocol):
    train = [write_cifar_batch(tmp_path / f"data_batch_{i}", 12, seed=i, protocol=protocol) for i in range(1, 6)]
    test_data, test_labels = write_cifar_batch(tmp_path / "test_batch", 8, seed=9, protocol=protocol)
    dataset = load_dataset("cifar10", tmp_path)
    assert (dataset.num_features, dataset.num_classes) == (3072, 10)
    assert [len(getattr(dataset, f"y_{s}")) for s in SPLITS] == [54, 6, 8]
    assert np.array_equal(raw_rows(dataset, "test"), test_data) and dataset.y_test.tolist() == test_labels
    every_train = np.concatenate([raw_rows(dataset, "train"), raw_rows(dataset, "val")])
    written = np.concatenate([data for data, _ in train]).astype(np.float64)
    assert np.array_equal(sorted_rows(every_train), sorted_rows(written))


def test_cifar10_reads_batches_pickled_by_python2_like_the_originals(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, size=(20, 3072), dtype=np.uint8)
    labels = [i % 10 for i in range(20)]
    (tmp_path / "test_batch").write_bytes(python2_cifar_batch(data, labels))
    dataset = load_dataset("cifar10", tmp_path, validation_fraction=0, test_fraction=0)
    assert np.array_equal(sorted_rows(raw_rows(dataset, "train")), sorted_rows(data.astype(np.float64)))
    assert sorted(dataset.y_train.tolist()) == sorted(labels)


def test_cifar10_is_found_in_the_folder_the_archive_unpacks_to(tmp_path):
    nested = tmp_path / "cifar-10-batches-py"
    nested.mkdir()
    write_cifar_batch(nested / "test_batch", 40, seed=1)
    dataset = load_dataset("cifar10", tmp_path)  # test batch only: split into three
    assert [len(getattr(dataset, f"y_{s}")) for s in SPLITS] == [28, 4, 8]


def test_cifar10_missing_training_batch_is_named(tmp_path):
    for i in (1, 2, 4, 5):
        write_cifar_batch(tmp_path / f"data_batch_{i}", 4, seed=i)
    write_cifar_batch(tmp_path / "test_batch", 4, seed=0)
    with pytest.raises(SsdfaError, match=error_naming(tmp_path / "data_batch_3", "no such file")):
        load_dataset("cifar10", tmp_path)


class _RunsCode:
    """Unpickling this calls a builtin: exactly what a tampered batch would do."""

    def __reduce__(self):
        return (print, ("a pickle ran code",))


def test_cifar10_pickle_naming_other_callables_is_refused_without_running_them(tmp_path, capsys):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": _RunsCode(), b"labels": []}, protocol=2))
    with pytest.raises(SsdfaError, match=error_naming(path, "refuses to load __builtin__.print")):
        load_dataset("cifar10", tmp_path)
    assert "a pickle ran code" not in capsys.readouterr().out


def test_cifar10_truncated_batch_is_named(tmp_path):
    path = tmp_path / "test_batch"
    write_cifar_batch(path, 4, seed=0)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SsdfaError, match=error_naming(path, "not a readable CIFAR-10 batch")):
        load_dataset("cifar10", tmp_path)


def test_cifar10_batch_with_wrong_image_size_is_named(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(SsdfaError, match=error_naming(path, "(images, 3072)")):
        load_dataset("cifar10", tmp_path)


# --- Frozen features ---------------------------------------------------------------------------


def test_features_file_keeps_its_own_validation_split(tmp_path):
    path = features_with_loud_test_set(tmp_path / "frozen.npz")
    dataset = load_dataset(f"features:{path}", validation_fraction=0.5)
    assert dataset.name == f"features:{path}"
    assert (dataset.num_features, dataset.num_classes) == (5, 4)
    assert [len(getattr(dataset, f"y_{s}")) for s in SPLITS] == [200, 30, 40]


def test_features_file_without_validation_has_it_carved_from_train(tmp_path):
    rng = np.random.default_rng(1)
    write_features(tmp_path / "frozen.npz", x_train=rng.random((50, 3), dtype=np.float32), y_train=np.arange(50) % 5,
                   x_test=rng.random((10, 3), dtype=np.float32), y_test=np.arange(10) % 5)
    dataset = load_dataset("features:frozen.npz", tmp_path)  # relative to data_dir
    assert [len(getattr(dataset, f"y_{s}")) for s in SPLITS] == [45, 5, 10]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y_test": None}, "missing array(s) y_test"),
        ({"y_train": np.arange(9) % 2}, "y_train has 9 labels for 10 rows"),
        ({"y_train": np.zeros(10)}, "y_train must be 1-D integer class labels"),
        ({"y_train": -(np.arange(10) % 2)}, "negative label"),
        ({"x_test": np.zeros((4, 2))}, "x_test has 2 features, x_train has 3"),
        ({"x_train": np.full((10, 3), np.nan)}, "x_train holds NaN or infinite values"),
        ({"x_train": np.full((10, 3), 1e300)}, "x_train holds 1e+300, beyond the float32 range"),
        ({"y_train": np.zeros(10, dtype=np.int64), "y_test": np.zeros(4, dtype=np.int64)}, "every label is 0"),
        ({"x_train": np.zeros(10)}, "x_train must be a 2-D real array"),
        ({"x_val": np.zeros((2, 3))}, "only one of x_val and y_val"),
        ({"x_train": np.array([[None] * 3] * 10, dtype=object)}, "cannot read x_train"),
    ],
)
def test_bad_features_file_is_named_with_its_problem(tmp_path, change, message):
    arrays = {"x_train": np.zeros((10, 3)), "y_train": np.arange(10) % 2, "x_test": np.zeros((4, 3)),
              "y_test": np.arange(4) % 2}
    arrays.update(change)
    path = write_features(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(SsdfaError, match=error_naming(path, message)):
        load_dataset(f"features:{path}")


def test_missing_features_file_is_named(tmp_path):
    with pytest.raises(SsdfaError, match=error_naming(tmp_path / "absent.npz", "no such features file")):
        load_dataset(f"features:{tmp_path / 'absent.npz'}")


@pytest.mark.parametrize(("content", "what"), [
    (b"0.5,0.25,1\n0.125,0,3\n", "not an .npz (zip) file but a CSV or other text file"),
    (b"", "not an .npz (zip) file but an empty file"),
    (pickle.dumps([1, 2]), "not an .npz (zip) file but another format"),
    (b"PK\x03\x04 truncated", "not a readable .npz file"),
])
def test_features_file_that_is_not_npz_is_named(tmp_path, content, what):
    """Not numpy's advice about pickles, which a user with a CSV file cannot act on."""
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(SsdfaError, match=error_naming(path, what)):
        load_dataset(f"features:{path}")


def test_idx_files_without_images_are_named(tmp_path):
    write_file(tmp_path / "t10k-images-idx3-ubyte", struct.pack(">IIII", 0x803, 0, 28, 28))
    write_file(tmp_path / "t10k-labels-idx1-ubyte", struct.pack(">II", 0x801, 0))
    with pytest.raises(SsdfaError, match=error_naming(tmp_path / "t10k-images-idx3-ubyte", "holds no images")):
        load_dataset("mnist", tmp_path)


# --- Subsampling and the split rule ------------------------------------------------------------


def test_limit_samples_keeps_a_class_balanced_prefix_of_each_split():
    digits = load_dataset("digits")
    small = limit_samples(digits, 50, test=20)
    assert (len(small.y_train), len(small.y_val), len(small.y_test)) == (50, 180, 20)
    assert np.bincount(small.y_train, minlength=10).tolist() == [5] * 10
    positions = [np.flatnonzero((digits.x_train == row).all(axis=1))[0] for row in small.x_train]
    assert positions == sorted(positions)  # a subset, in the original order
    assert np.array_equal(small.feature_scale, digits.feature_scale)
    assert limit_samples(digits, 5000).x_train.shape == digits.x_train.shape


def test_limit_samples_refuses_a_negative_limit():
    with pytest.raises(SsdfaError, match="train sample limit must be a non-negative integer, not -3"):
        limit_samples(load_dataset("digits"), -3)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=80),
    first=st.floats(0, 0.5),
    second=st.floats(0, 0.45),
    seed=st.integers(0, 2**32),
)
def test_stratified_split_is_a_partition_with_exact_sizes_and_class_shares(labels, first, second, seed):
    labels = np.array(labels)
    sizes = [datasets._share(len(labels), first), datasets._share(len(labels), second)]
    parts = datasets._stratified_split(labels, sizes, np.random.default_rng(seed))
    assert [len(p) for p in parts[:2]] == sizes
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))
    for size, part in zip(sizes, parts[:2], strict=True):
        counts = np.bincount(labels[part], minlength=5)
        expected = np.bincount(labels, minlength=5) * size / len(labels)
        assert np.all(np.abs(counts - expected) < 2 + 1e-9)
