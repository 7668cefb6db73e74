"""The golden-set format (golden/format.py): writer, reader, validation, and `ssdfa golden`."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ssdfa.cli import main
from ssdfa.errors import SsdfaError
from ssdfa.golden import format as golden_format
from ssdfa.golden.format import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    VECTORS_NAME,
    ZIP_DATE_TIME,
    array_sha256,
    encode_golden_set,
    npz_bytes,
    read_golden_set,
    weight_checksum,
    write_golden_set,
)
from ssdfa.golden.layer_vectors import generate_layer_set
from ssdfa.model.layer_config import layer_config_from_dict

HIDDEN = {
    "layer": {"fan_in": 5, "neurons": 4, "pes": 2, "outputs": 3, "activation": "relu"},
    "modes": {"update_rounding": "STOCH", "seed": 3},
}

CONFIG_TOML = """\
[layer]
fan_in = 5
neurons = 4
pes = 2
outputs = 3
activation = "relu"

[modes]
update_rounding = "STOCH"
seed = 3
"""


@pytest.fixture(scope="module")
def hidden_set():
    return generate_layer_set(layer_config_from_dict(HIDDEN), 3, full_weights=True)


@pytest.fixture
def set_dir(tmp_path, hidden_set) -> Path:
    return write_golden_set(tmp_path / "set", hidden_set)


def load_files(directory: Path) -> tuple[dict, dict]:
    """The manifest and the arrays of a written set, without validation."""
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    with np.load(directory / VECTORS_NAME, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return manifest, arrays


def store(directory: Path, manifest: dict, arrays: dict, *, refresh: bool = True) -> None:
    """Write arrays and manifest back; with ``refresh`` the manifest's checksums follow the arrays.

    This mimics a writer that produces self-consistent but wrong files, so the reader's deeper
    checks (schema, ranges, consistency) are what must refuse them.
    """
    data = npz_bytes(arrays)
    if refresh:
        for name, array in arrays.items():
            if name in manifest["arrays"]:
                manifest["arrays"][name]["sha256"] = array_sha256(array)
        manifest["vectors"]["size"] = len(data)
        manifest["vectors"]["sha256"] = hashlib.sha256(data).hexdigest()
    (directory / VECTORS_NAME).write_bytes(data)
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))


def refuses(directory: Path, *fragments: str) -> str:
    with pytest.raises(SsdfaError) as caught:
        read_golden_set(directory)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --------------------------------------------------------------------------------------------
# Round trip and reproducibility
# --------------------------------------------------------------------------------------------


def test_written_set_reads_back_with_identical_arrays_and_configuration(set_dir, hidden_set):
    golden = read_golden_set(set_dir)
    assert golden.kind == "layer"
    assert golden.config == hidden_set.config
    assert golden.parameters == {"samples": 3, "full_weights": True}
    assert list(golden.arrays) == list(hidden_set.arrays)
    for name, array in hidden_set.arrays.items():
        assert golden[name].dtype == array.dtype, name
        np.testing.assert_array_equal(golden[name], array, err_msg=name)
    assert sorted(os.listdir(set_dir)) == [MANIFEST_NAME, VECTORS_NAME]


def test_manifest_records_schema_configuration_seeds_and_checksums(set_dir, hidden_set):
    manifest, arrays = load_files(set_dir)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["kind"] == "layer"
    assert manifest["configuration"] == hidden_set.config.to_dict()
    assert manifest["derived"]["lfsr_seeds"] == arrays["lfsr_seed"].tolist()
    assert manifest["generator"]["name"] == "ssdfa.golden.layer_vectors"
    data = (set_dir / VECTORS_NAME).read_bytes()
    assert manifest["vectors"] == {"file": VECTORS_NAME, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    for name, array in arrays.items():
        entry = manifest["arrays"][name]
        assert entry["shape"] == list(array.shape) and entry["dtype"] == array.dtype.str
        assert entry["sha256"] == hashlib.sha256(array.tobytes()).hexdigest()


def test_writer_output_is_byte_identical_whatever_the_clock_and_the_path(tmp_path, hidden_set, monkeypatch):
    first = write_golden_set(tmp_path / "a", hidden_set)
    later = time.localtime(time.time() + 3 * 365 * 86400)
    monkeypatch.setattr(time, "localtime", lambda *args: later)
    monkeypatch.setattr(time, "time", lambda: time.mktime(later))
    second = write_golden_set(tmp_path / "elsewhere" / "b", hidden_set)
    for name in (MANIFEST_NAME, VECTORS_NAME):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    with zipfile.ZipFile(second / VECTORS_NAME) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == [f"{name}.npy" for name in hidden_set.arrays]
    assert all(info.date_time == ZIP_DATE_TIME for info in infos)
    assert all(info.compress_type == zipfile.ZIP_STORED for info in infos)


def test_regenerating_a_set_gives_the_same_bytes(hidden_set):
    again = generate_layer_set(hidden_set.config, 3, full_weights=True)
    assert encode_golden_set(again) == encode_golden_set(hidden_set)


def test_vectors_load_with_plain_numpy_and_no_pickle(set_dir, hidden_set):
    with np.load(set_dir / VECTORS_NAME, allow_pickle=False) as archive:
        for name, array in hidden_set.arrays.items():
            np.testing.assert_array_equal(archive[name], array)


def test_weight_checksum_is_sha256_of_little_endian_int64_in_row_major_order():
    weights = np.array([[1, -2, 3], [-(1 << 40), 0, 32767]], dtype=np.int64)
    flat = [1, -2, 3, -(1 << 40), 0, 32767]
    expected = hashlib.sha256(b"".join(v.to_bytes(8, "little", signed=True) for v in flat)).digest()
    assert weight_checksum(weights) == expected
    assert weight_checksum(weights.astype(">i8")) == expected  # the value, not the byte order


def test_every_sample_checksum_matches_its_stored_weights(hidden_set):
    for sample, weights in enumerate(hidden_set["weights_per_sample"]):
        assert bytes(hidden_set["weight_checksum"][sample]) == weight_checksum(weights)
    assert bytes(hidden_set["weight_checksum"][-1]) == weight_checksum(hidden_set["weights_final"])


# --------------------------------------------------------------------------------------------
# The reader refuses every kind of damage, naming the file
# --------------------------------------------------------------------------------------------


def test_reader_refuses_a_missing_directory(tmp_path):
    refuses(tmp_path / "nowhere", str(tmp_path / "nowhere"), "does not exist")


def test_reader_refuses_a_missing_manifest(set_dir):
    (set_dir / MANIFEST_NAME).unlink()
    refuses(set_dir, MANIFEST_NAME, "missing")


def test_reader_refuses_missing_vectors(set_dir):
    (set_dir / VECTORS_NAME).unlink()
    refuses(set_dir, VECTORS_NAME, "missing")


@pytest.mark.parametrize("keep", [0, 100, 0.5, -1])
def test_reader_refuses_truncated_vectors(set_dir, keep):
    path = set_dir / VECTORS_NAME
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) - 1)
    path.write_bytes(data[:cut])
    refuses(set_dir, str(path), "truncated")


def test_reader_refuses_a_truncated_manifest(set_dir):
    path = set_dir / MANIFEST_NAME
    path.write_bytes(path.read_bytes()[:200])
    refuses(set_dir, str(path), "not valid JSON")


def test_reader_refuses_a_changed_byte_in_the_vectors(set_dir):
    path = set_dir / VECTORS_NAME
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    refuses(set_dir, str(path), "SHA-256", "changed")


def test_reader_refuses_a_changed_array_even_when_the_file_checksum_was_updated(set_dir):
    manifest, arrays = load_files(set_dir)
    arrays["delta"] = arrays["delta"].copy()
    arrays["delta"][1, 2] += 1
    data = npz_bytes(arrays)
    manifest["vectors"].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    store(set_dir, manifest, arrays, refresh=False)
    (set_dir / VECTORS_NAME).write_bytes(data)
    refuses(set_dir, "array delta", "SHA-256")


def test_reader_refuses_a_manifest_whose_shape_disagrees_with_the_array(set_dir):
    manifest, arrays = load_files(set_dir)
    manifest["arrays"]["inputs"]["shape"] = [3, 6]
    store(set_dir, manifest, arrays)
    refuses(set_dir, VECTORS_NAME, "array inputs", "shape", "[3, 5]")


def test_reader_refuses_a_manifest_whose_dtype_disagrees_with_the_array(set_dir):
    manifest, arrays = load_files(set_dir)
    manifest["arrays"]["errors"]["dtype"] = "<i4"
    store(set_dir, manifest, arrays)
    refuses(set_dir, "array errors", "dtype", "<i8")


def test_reader_refuses_an_array_the_manifest_lists_but_the_vectors_lack(set_dir):
    manifest, arrays = load_files(set_dir)
    del arrays["derivative"]
    store(set_dir, manifest, arrays)
    refuses(set_dir, VECTORS_NAME, "derivative", "lists")


def test_reader_refuses_an_array_the_manifest_does_not_list(set_dir):
    manifest, arrays = load_files(set_dir)
    arrays["surplus"] = np.zeros(3, dtype=np.int64)
    store(set_dir, manifest, arrays)
    refuses(set_dir, "surplus", "does not list")


def test_reader_refuses_a_set_lacking_an_array_its_schema_requires(set_dir):
    manifest, arrays = load_files(set_dir)
    del arrays["weights_final"], manifest["arrays"]["weights_final"]
    store(set_dir, manifest, arrays)
    refuses(set_dir, "requires", "weights_final")


def test_reader_refuses_an_array_stored_with_another_dtype_than_the_schema(set_dir):
    manifest, arrays = load_files(set_dir)
    arrays["inputs"] = arrays["inputs"].astype(np.int32)
    manifest["arrays"]["inputs"]["dtype"] = "<i4"
    store(set_dir, manifest, arrays)
    refuses(set_dir, "array inputs", "dtype <i4", "expected <i8")


def test_reader_refuses_an_object_array_without_unpickling_it(set_dir):
    manifest, arrays = load_files(set_dir)
    member = io.BytesIO()
    np.lib.format.write_array(member, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            raw = io.BytesIO()
            np.lib.format.write_array(raw, array)
            archive.writestr(f"{name}.npy", raw.getvalue() if name != "inputs" else member.getvalue())
    data = buffer.getvalue()
    manifest["vectors"].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (set_dir / VECTORS_NAME).write_bytes(data)
    (set_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    refuses(set_dir, VECTORS_NAME, "not a readable npz")


@pytest.mark.parametrize("version", [0, 2, "1", None, True, 1.0])
def test_reader_refuses_an_unknown_schema_version(set_dir, version):
    manifest, arrays = load_files(set_dir)
    manifest["schema_version"] = version
    store(set_dir, manifest, arrays)
    refuses(set_dir, MANIFEST_NAME, "unknown schema version")


def test_reader_refuses_a_manifest_without_schema_version(set_dir):
    manifest, arrays = load_files(set_dir)
    del manifest["schema_version"]
    store(set_dir, manifest, arrays)
    refuses(set_dir, MANIFEST_NAME, "unknown schema version None")


def test_reader_refuses_an_unknown_kind(set_dir):
    manifest, arrays = load_files(set_dir)
    manifest["kind"] = "network"
    store(set_dir, manifest, arrays)
    refuses(set_dir, MANIFEST_NAME, "unknown kind 'network'")


def test_reader_refuses_an_invalid_configuration(set_dir):
    manifest, arrays = load_files(set_dir)
    manifest["configuration"]["formats"]["weight"] = "SQ(0,14)"
    store(set_dir, manifest, arrays)
    refuses(set_dir, MANIFEST_NAME, "formats.weight")


def test_reader_refuses_a_configuration_the_lfsr_seeds_do_not_follow_from(set_dir):
    manifest, arrays = load_files(set_dir)
    manifest["configuration"]["modes"]["seed"] = 4
    store(set_dir, manifest, arrays)
    refuses(set_dir, MANIFEST_NAME, "derived")


def test_reader_refuses_lfsr_seeds_that_differ_from_the_configuration(set_dir):
    manifest, arrays = load_files(set_dir)
    arrays["lfsr_seed"] = arrays["lfsr_seed"] ^ np.uint32(1)
    store(set_dir, manifest, arrays)
    refuses(set_dir, "lfsr_seed", "seeds derived")


def test_reader_refuses_a_weight_checksum_that_does_not_match_the_weights(set_dir):
    manifest, arrays = load_files(set_dir)
    arrays["weight_checksum"] = arrays["weight_checksum"].copy()
    arrays["weight_checksum"][0, 0] ^= 0xFF
    store(set_dir, manifest, arrays)
    refuses(set_dir, "weight_checksum[0]")


def test_reader_refuses_mismatched_generation_parameters(set_dir):
    manifest, arrays = load_files(set_dir)
    manifest["parameters"]["samples"] = 4
    store(set_dir, manifest, arrays)
    refuses(set_dir, "shape")


@pytest.mark.parametrize(
    ("name", "position", "value", "fragment"),
    [
        ("inputs", (0, 0), 1 << 15, "SQ(4,12)"),
        ("errors", (2, 1), -(1 << 15) - 1, "SQ(2,14)"),
        ("weights_initial", (1, 5), 1 << 20, "SQ(2,14)"),
        ("feedback_index", (0, 0), 3, "index < 3"),
        ("feedback_index", (3, 0), -1, "index < 3"),
        ("derivative", (1, 1), 2, "UQ(1,0)"),
        ("lfsr_state", (0, 2), 0, "LFSR state"),
    ],
)
def test_reader_refuses_values_outside_their_format(set_dir, name, position, value, fragment):
    manifest, arrays = load_files(set_dir)
    arrays[name] = arrays[name].copy()
    arrays[name][position] = value
    store(set_dir, manifest, arrays)
    refuses(set_dir, VECTORS_NAME, f"array {name} holds {value} at {list(position)}", fragment)


def test_reader_refuses_a_manifest_that_misstates_a_format(set_dir):
    manifest, arrays = load_files(set_dir)
    manifest["arrays"]["inputs"]["range"] = [-(1 << 20), 1 << 20]
    store(set_dir, manifest, arrays)
    refuses(set_dir, MANIFEST_NAME, "array inputs", "SQ(4,12)")


# --------------------------------------------------------------------------------------------
# The writer: validation, overwriting, atomicity
# --------------------------------------------------------------------------------------------


def test_writer_refuses_a_set_that_breaks_its_schema(tmp_path, hidden_set):
    arrays = dict(hidden_set.arrays)
    arrays["inputs"] = arrays["inputs"].copy()
    arrays["inputs"][0, 0] = 1 << 15
    broken = type(hidden_set)(hidden_set.kind, hidden_set.config, hidden_set.parameters, arrays, hidden_set.generator)
    with pytest.raises(SsdfaError, match="array inputs holds 32768"):
        write_golden_set(tmp_path / "set", broken)
    assert not (tmp_path / "set").exists()


def test_writer_refuses_a_non_empty_directory_without_force(set_dir, hidden_set):
    before = (set_dir / VECTORS_NAME).read_bytes()
    with pytest.raises(SsdfaError, match="not empty"):
        write_golden_set(set_dir, hidden_set)
    assert (set_dir / VECTORS_NAME).read_bytes() == before


def test_writer_fills_an_existing_empty_directory(tmp_path, hidden_set):
    (tmp_path / "empty").mkdir()
    read_golden_set(write_golden_set(tmp_path / "empty", hidden_set))


def test_force_replaces_the_set_and_keeps_the_files_beside_it(set_dir):
    (set_dir / "config.toml").write_text(CONFIG_TOML)
    other = generate_layer_set(layer_config_from_dict(HIDDEN), 2)
    write_golden_set(set_dir, other, force=True)
    assert sorted(os.listdir(set_dir)) == ["config.toml", MANIFEST_NAME, VECTORS_NAME]
    assert (set_dir / "config.toml").read_text() == CONFIG_TOML
    assert read_golden_set(set_dir).parameters["samples"] == 2
    assert [p.name for p in set_dir.parent.iterdir()] == [set_dir.name]  # nothing left behind


def test_force_refuses_a_directory_that_is_not_a_golden_set(tmp_path, hidden_set):
    (tmp_path / "project" / "sub").mkdir(parents=True)
    with pytest.raises(SsdfaError, match="not a regular file"):
        write_golden_set(tmp_path / "project", hidden_set, force=True)
    assert (tmp_path / "project" / "sub").is_dir()


def test_writer_refuses_a_file_as_output(tmp_path, hidden_set):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SsdfaError, match="not a directory"):
        write_golden_set(tmp_path / "file", hidden_set, force=True)


class Interrupted(BaseException):
    """Stands for a Ctrl-C or a full disk in the middle of writing."""


def interrupt_second_file(monkeypatch):
    real_write = golden_format._write_file
    calls = []

    def write_then_fail(path, data):
        calls.append(path)
        if len(calls) == 2:
            real_write(path, data[: len(data) // 2])
            raise Interrupted
        real_write(path, data)

    monkeypatch.setattr(golden_format, "_write_file", write_then_fail)


def test_an_interrupted_write_leaves_no_set_and_no_partial_files(tmp_path, hidden_set, monkeypatch):
    interrupt_second_file(monkeypatch)
    with pytest.raises(Interrupted):
        write_golden_set(tmp_path / "set", hidden_set)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_replacement_keeps_the_previous_set(set_dir, monkeypatch):
    before = {name: (set_dir / name).read_bytes() for name in (MANIFEST_NAME, VECTORS_NAME)}
    interrupt_second_file(monkeypatch)
    with pytest.raises(Interrupted):
        write_golden_set(set_dir, generate_layer_set(layer_config_from_dict(HIDDEN), 2), force=True)
    assert {name: (set_dir / name).read_bytes() for name in before} == before
    assert [p.name for p in set_dir.parent.iterdir()] == [set_dir.name]
    read_golden_set(set_dir)


# --------------------------------------------------------------------------------------------
# ssdfa golden
# --------------------------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "layer.toml"
    path.write_text(CONFIG_TOML)
    return path


def test_cli_writes_the_set_the_library_generates(config_file, tmp_path, hidden_set, capsys):
    out = tmp_path / "out"
    status = main(["golden", "--config", str(config_file), "--samples", "3", "--out", str(out), "--full-weights"])
    assert status == 0
    assert "4 neurons x 5 inputs, 3 samples" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in (MANIFEST_NAME, VECTORS_NAME)} == encode_golden_set(hidden_set)


def test_cli_seed_replaces_the_configuration_seed(config_file, tmp_path):
    out = tmp_path / "out"
    assert main(["golden", "--config", str(config_file), "--samples", "2", "--out", str(out), "--seed", "9"]) == 0
    golden = read_golden_set(out)
    assert golden.config.arithmetic.seed == 9
    reference = generate_layer_set(layer_config_from_dict({**HIDDEN, "modes": {**HIDDEN["modes"], "seed": 9}}), 2)
    np.testing.assert_array_equal(golden["inputs"], reference["inputs"])
    np.testing.assert_array_equal(golden["lfsr_state"], reference["lfsr_state"])


def test_cli_refuses_a_non_empty_output_without_force_in_one_line(config_file, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["golden", "--config", str(config_file), "--samples", "2", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(out) in error and "--force" in error
    assert main([*args, "--force"]) == 0


def test_cli_names_the_configuration_file_it_cannot_use(tmp_path, capsys):
    config = tmp_path / "output.toml"
    config.write_text('[layer]\nfan_in = 4\nneurons = 3\noutputs = 10\nactivation = "identity"\n')
    assert main(["golden", "--config", str(config), "--samples", "2", "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(config) in error and "outputs = 10" in error
    assert not (tmp_path / "o").exists()


def test_cli_reports_a_missing_configuration_file(tmp_path, capsys):
    missing = tmp_path / "missing.toml"
    assert main(["golden", "--config", str(missing), "--samples", "2", "--out", str(tmp_path / "o")]) == 2
    assert str(missing) in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value"), [("--samples", "0"), ("--samples", "two"), ("--seed", "-1")])
def test_cli_refuses_bad_counts_and_seeds_as_usage_errors(config_file, tmp_path, option, value, capsys):
    args = {"--config": str(config_file), "--samples": "2", "--out": str(tmp_path / "o"), option: value}
    try:
        status = main(["golden", *[part for pair in args.items() for part in pair]])
    except SystemExit as usage_error:  # argparse's own exit, if main lets it through
        status = usage_error.code
    assert status == 2
    assert not (tmp_path / "o").exists()
    assert option.lstrip("-") in capsys.readouterr().err
