"""Saved networks (model/weight_file.py) and the commands that write and read them in the model:
``ssdfa train --save`` and ``ssdfa eval``. A saved network is the trained one, bit for bit; a
damaged or inconsistent file is refused in one line naming it, with exit status 2."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import numpy as np
import pytest

from ssdfa.cli import main
from ssdfa.errors import SsdfaError
from ssdfa.model.arithmetic import FixedFormat
from ssdfa.model.datasets import limit_samples, load_dataset
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.float_network import FloatNetwork
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import ArithmeticConfig
from ssdfa.model.weight_file import load_network, save_network
from ssdfa.model.npz_archive import npz_bytes

QUICK = ["--dataset", "digits", "--epochs", "1", "--train-limit", "300", "--hidden", "16"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits):
    """A 64-16-10 SSDFA network trained on 300 digits samples in fixed point (seed 2)."""
    network = FixedNetwork(NetworkSpec((64, 16, 10), balanced=True, feedback_gain=8.0, seed=2), ArithmeticConfig(seed=2))
    x = network.quantize_inputs(digits.x_train[:300])
    for sample in range(300):
        network.train_step(x[sample], int(digits.y_train[sample]))
    return network


def _run(capsys, argv):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_saved_fixed_network_predicts_and_trains_on_bit_for_bit(tmp_path, trained, digits):
    saved = save_network(tmp_path / "net.npz", trained)
    loaded = load_network(tmp_path / "net.npz")
    assert loaded.sha256 == saved.sha256 and loaded.fixed
    copy = loaded.network()
    x = trained.quantize_inputs(digits.x_test)
    np.testing.assert_array_equal(copy.predict(x), trained.predict(x))
    for got, expected in zip(copy.lfsr_states(), trained.lfsr_states()):
        np.testing.assert_array_equal(got, expected)
    # The LFSR states travel too: training on from the file draws what the original draws.
    before = [w.copy() for w in trained.raw_weights()]
    for sample in range(20):
        for network in (trained, copy):
            network.train_step(x[sample], int(digits.y_test[sample]))
    assert any(not np.array_equal(a, b) for a, b in zip(before, trained.raw_weights()))
    for got, expected in zip(copy.raw_weights(), trained.raw_weights()):
        np.testing.assert_array_equal(got, expected)


def test_the_same_network_gives_the_same_bytes_and_numpy_reads_the_arrays(tmp_path, trained):
    save_network(tmp_path / "a.npz", trained)
    save_network(tmp_path / "b.npz", load_network(tmp_path / "a.npz"))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["weights_1"], trained.raw_weights()[1])
        assert archive["lfsr_state_0"].dtype == np.dtype("<u4")


@pytest.mark.parametrize("algorithm, connections", [("bp", None), ("dfa", None), ("sdfa", 3)])
def test_every_algorithm_saves_and_loads(tmp_path, algorithm, connections, digits):
    spec = NetworkSpec((64, 12, 10), algorithm=algorithm, connections=connections, seed=1)
    network = FixedNetwork(spec, ArithmeticConfig(weight=FixedFormat(2, 10), seed=1))
    save_network(tmp_path / "n.npz", network)
    loaded = load_network(tmp_path / "n.npz")
    assert loaded.spec == spec and loaded.config == network.config
    x = network.quantize_inputs(digits.x_test[:50])
    np.testing.assert_array_equal(loaded.network().predict(x), network.predict(x))


def test_a_float_network_saves_as_floats_and_predicts_the_same(tmp_path, digits):
    network = FloatNetwork(NetworkSpec((64, 12, 10), seed=4), dtype=np.float64)
    network.train_batch(digits.x_train[:64], digits.y_train[:64])
    save_network(tmp_path / "f.npz", network)
    loaded = load_network(tmp_path / "f.npz")
    assert not loaded.fixed and loaded.float_dtype == "float64"
    np.testing.assert_array_equal(loaded.network().predict(digits.x_test), network.predict(digits.x_test))


def _rewrite(path, change):
    """Rewrite a weight file with ``change(manifest, arrays)`` applied (checksums left as they were)."""
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        arrays = {name.removesuffix(".npy"): np.load(io.BytesIO(archive.read(name)))
                  for name in archive.namelist() if name.endswith(".npy")}
    change(manifest, arrays)
    path.write_bytes(npz_bytes(arrays, extra={"manifest.json": json.dumps(manifest).encode()}))


def _flip_a_weight(manifest, arrays):
    arrays["weights_0"] = arrays["weights_0"].copy()
    arrays["weights_0"][3, 4] += 1


def _shrink_a_layer(manifest, arrays):
    arrays["weights_1"] = arrays["weights_1"][:, :-1].copy()
    manifest["arrays"]["weights_1"]["shape"] = [10, 16]


def _widen_the_weight_format(manifest, arrays):
    manifest["arithmetic"]["weight"] = "SQ(3,14)"


def _impossible_format(manifest, arrays):
    manifest["arithmetic"]["error"] = "SQ(0,70)"


def _other_layer_sizes(manifest, arrays):
    manifest["network"]["layer_sizes"] = [64, 20, 10]


def _future_schema(manifest, arrays):
    manifest["schema_version"] = 2


def _zero_lfsr(manifest, arrays):
    arrays["lfsr_state_1"] = np.zeros_like(arrays["lfsr_state_1"])


@pytest.mark.parametrize("change, message", [
    (_flip_a_weight, "array weights_0 does not match its SHA-256"),
    (_shrink_a_layer, r"array weights_1 has shape \[10, 16\], but the network spec 64-16-10 makes it \[10, 17\]"),
    (_widen_the_weight_format, r"array weights_0 is listed in format 'SQ\(2,14\)', but the arithmetic makes it SQ\(3,14\)"),
    (_future_schema, "unknown schema version 2"),
    (_impossible_format, r"arithmetic: format SQ\(0,70\): int_bits must be >= 1"),
    (_other_layer_sizes, r"array weights_0 has shape \[16, 65\], but the network spec 64-20-10 makes it \[20, 65\]"),
    (_zero_lfsr, "array lfsr_state_1 does not match its SHA-256"),
])
def test_a_changed_file_is_refused_naming_the_file_and_the_problem(tmp_path, trained, change, message):
    path = tmp_path / "net.npz"
    save_network(path, trained)
    _rewrite(path, change)
    with pytest.raises(SsdfaError, match=f"weight file {path}: {message}"):
        load_network(path)


def test_damaged_files_are_refused_by_the_command_in_one_line(tmp_path, trained, capsys):
    path = tmp_path / "net.npz"
    save_network(path, trained)
    data = path.read_bytes()
    cases = {
        "truncated.npz": (data[: len(data) // 2], "is not a readable npz archive"),
        "text.npz": (b"not a zip at all\n", "is not a readable npz archive"),
        "golden.npz": (npz_bytes({"weights_0": np.zeros(3)}), "has no manifest.json: it is not an ssdfa weight file"),
        # One bit flipped inside the first layer's weights (the zip's CRC or the SHA-256 notices).
        "flipped.npz": (data[: len(data) // 3] + bytes([data[len(data) // 3] ^ 1]) + data[len(data) // 3 + 1:], None),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        status, out, err = _run(capsys, ["eval", str(tmp_path / name)])
        assert status == 2 and out == "", err
        assert err.count("\n") == 1 and err.startswith(f"ssdfa: error: weight file {tmp_path / name}"), err
        if message:
            assert message in err
    status, out, err = _run(capsys, ["eval", str(tmp_path / "missing.npz")])
    assert (status, err) == (2, f"ssdfa: error: weight file {tmp_path / 'missing.npz'} does not exist\n")


def test_train_save_then_eval_reports_the_training_accuracy_and_a_prediction_checksum(tmp_path, capsys):
    path = tmp_path / "digits.npz"
    status, out, err = _run(capsys, ["train", *QUICK, "--fixed", "--seed", "1", "--json", "--save", str(path)])
    assert status == 0, err
    trained = json.loads(out)
    assert trained["saved"]["path"] == str(path) and len(trained["saved"]["sha256"]) == 64
    status, out, err = _run(capsys, ["eval", str(path), "--json"])
    assert status == 0, err
    evaluated = json.loads(out)
    assert evaluated["weights_sha256"] == trained["saved"]["sha256"]
    assert evaluated["dataset"] == "digits" and evaluated["split"] == "test"
    assert evaluated["accuracy"] == trained["test_accuracy"]  # the file is the trained network
    saved = load_network(path)
    x = load_dataset("digits").x_test
    from ssdfa.cli.eval import predictions_sha256

    assert evaluated["predictions_sha256"] == predictions_sha256(saved.network().predict(saved.network().quantize_inputs(x)))
    status, out, err = _run(capsys, ["eval", str(path)])
    assert status == 0 and f"accuracy {100 * trained['test_accuracy']:.2f}%" in out


def test_a_float_run_saves_floats_that_eval_runs_and_the_rtl_refuses(tmp_path, capsys):
    path = tmp_path / "float.npz"
    status, out, err = _run(capsys, ["train", *QUICK, "--seed", "1", "--json", "--save", str(path)])
    assert status == 0, err
    assert json.loads(_run(capsys, ["eval", str(path), "--json"])[1])["accuracy"] == json.loads(out)["test_accuracy"]
    for argv in (["eval", str(path), "--sim", "icarus"], ["verilog", "--network", "--weights", str(path), "--out",
                                                          str(tmp_path / "v")]):
        status, out, err = _run(capsys, argv)
        assert status == 2 and err == (f"ssdfa: error: weight file {path} holds float weights; the RTL takes "
                                       f"fixed-point weights (train with --fixed)\n")
    assert not (tmp_path / "v").exists()


def test_save_refuses_a_target_it_cannot_write_before_training(tmp_path, capsys):
    status, out, err = _run(capsys, ["train", *QUICK, "--save", str(tmp_path / "no" / "such" / "dir.npz")])
    assert status == 2 and "directory" in err and str(tmp_path / "no" / "such") in err and out == ""
    status, out, err = _run(capsys, ["train", *QUICK, "--save", str(tmp_path)])
    assert status == 2 and "is a directory" in err
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    status, out, err = _run(capsys, ["train", *QUICK, "--save", str(fifo)])
    assert status == 2 and err == f"ssdfa: error: --save {fifo}: not a regular file (a device, pipe or socket), not replaced\n"
    assert stat.S_ISFIFO(fifo.stat().st_mode) and out == ""


def test_eval_refuses_a_dataset_of_another_shape(tmp_path, trained, capsys):
    path = tmp_path / "net.npz"
    save_network(path, trained)
    features = tmp_path / "f.npz"
    rng = np.random.default_rng(0)
    np.savez(features, x_train=rng.random((40, 30)), y_train=np.arange(40) % 10, x_test=rng.random((20, 30)),
             y_test=np.arange(20) % 10)
    status, out, err = _run(capsys, ["eval", str(path), "--dataset", f"features:{features}"])
    assert status == 2 and "holds a 64-16-10 network, but" in err and "30 features" in err


def test_eval_scales_features_as_in_training_whatever_the_training_part_of_the_file(tmp_path, capsys):
    """The saved network carries its feature scaling: a file with the same test rows but another
    training part (here one pixel four times the rest) gives the same predictions."""
    data = load_dataset("digits")
    raw = {split: np.round(getattr(data, f"x_{split}") * 16).astype(np.float32) for split in ("train", "test")}
    same = tmp_path / "same.npz"
    np.savez(same, x_train=raw["train"], y_train=data.y_train, x_test=raw["test"], y_test=data.y_test)
    louder = raw["train"].copy()
    louder[0, 0] = 64.0
    other = tmp_path / "other.npz"
    np.savez(other, x_train=louder, y_train=data.y_train, x_test=raw["test"], y_test=data.y_test)
    weights = tmp_path / "net.npz"
    status, out, err = _run(capsys, ["train", "--dataset", f"features:{same}", "--hidden", "16", "--fixed", "--epochs",
                                     "1", "--save", str(weights), "--json"])
    assert status == 0, err
    trained = json.loads(out)["test_accuracy"]
    reports = [json.loads(_run(capsys, ["eval", str(weights), "--dataset", f"features:{path}", "--json"])[1])
               for path in (same, other)]
    assert reports[0]["accuracy"] == trained
    assert reports[1]["predictions_sha256"] == reports[0]["predictions_sha256"]


def test_eval_finds_a_relative_features_file_from_another_directory(tmp_path, monkeypatch, capsys):
    data = load_dataset("digits")
    (tmp_path / "run").mkdir()
    np.savez(tmp_path / "run" / "f.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
             y_test=data.y_test)
    monkeypatch.chdir(tmp_path / "run")
    status, out, err = _run(capsys, ["train", "--dataset", "features:f.npz", "--hidden", "16", "--fixed", "--epochs",
                                     "1", "--save", "net.npz", "--json"])
    assert status == 0, err
    monkeypatch.chdir(tmp_path)
    status, out, err = _run(capsys, ["eval", "run/net.npz", "--json"])
    assert status == 0, err
    assert json.loads(out)["dataset"] == f"features:{tmp_path / 'run' / 'f.npz'}"


def test_save_network_given_a_training_result_says_to_pass_its_network(tmp_path, digits):
    from ssdfa.model import NetworkSpec, TrainingOptions, train

    result = train(NetworkSpec((64, 16, 10)), limit_samples(digits, 50), options=TrainingOptions(epochs=1))
    with pytest.raises(TypeError, match=r"not a TrainingResult; pass result\.network$"):
        save_network(tmp_path / "net.npz", result)
    assert not list(tmp_path.iterdir())


def test_data_provenance_lets_an_api_user_evaluate_as_ssdfa_eval_does(tmp_path, trained, digits, capsys):
    from ssdfa.model import data_provenance, dataset_as_trained

    path = tmp_path / "net.npz"
    save_network(path, trained, provenance=data_provenance(digits, split_seed=0, input_shift=1))
    saved = load_network(path)
    assert saved.provenance["feature_scale"] == [16.0] * 64 and saved.provenance["input_shift"] == 1
    dataset = dataset_as_trained(saved)
    assert np.array_equal(dataset.x_test, digits.x_test * np.float32(0.5))
    network = saved.network()
    predictions = network.predict(network.quantize_inputs(dataset.x_test))
    report = json.loads(_run(capsys, ["eval", str(path), "--json"])[1])
    assert report["accuracy"] == float(np.mean(predictions == dataset.y_test))


def test_the_fixed_model_refuses_real_features_where_it_takes_raw_values(trained, digits):
    """Real features read as raw words would predict nonsense: predict says to quantize them."""
    with pytest.raises(ValueError, match="raw inputs must be whole numbers .* quantize_inputs first"):
        trained.predict(digits.x_test)
    assert len(trained.predict(trained.quantize_inputs(digits.x_test))) == len(digits.y_test)


def test_save_writes_through_a_link_and_never_onto_the_features_it_reads(tmp_path, capsys):
    data = load_dataset("digits")
    features = tmp_path / "feat.npz"
    np.savez(features, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    before = features.read_bytes()
    argv = ["train", "--dataset", f"features:{features}", "--hidden", "16", "--fixed", "--epochs", "1"]
    status, out, err = _run(capsys, [*argv, "--save", str(features)])
    assert status == 2 and "is the features file the run reads" in err and features.read_bytes() == before
    (tmp_path / "store").mkdir()
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "store" / "net.npz")
    status, out, err = _run(capsys, [*argv, "--save", str(link)])
    assert status == 0, err
    assert link.is_symlink() and load_network(link).fixed  # the link kept, its target written


def test_save_into_a_directory_that_takes_no_files_is_refused_before_training(tmp_path, capsys):
    status, out, err = _run(capsys, ["train", *QUICK, "--save", "/proc/net.npz"])
    # As root, os.access says /proc is writable; the probe file says otherwise.
    assert status == 2 and err.startswith("ssdfa: error: --save /proc/net.npz: ") and err.count("\n") == 1
    assert "cannot write in directory /proc" in err or "directory /proc is not writable" in err
