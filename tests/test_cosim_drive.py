"""The Python side of co-simulation, without a simulator: harness files, expected weights,
result parsing and mismatch reports, the generated top, random configurations."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import numpy as np
import pytest

from ssdfa.errors import SsdfaError
from ssdfa.golden.format import GoldenSet, canonical_set_dirs, read_golden_set
from ssdfa.model.arithmetic import Rounding
from ssdfa.sim import golden_drive
from ssdfa.sim.cosim import CosimJob, Design, draw_config, hardware_config, top_verilog
from ssdfa.sim.golden_drive import expected_checks, expected_weights, read_harness_result, write_harness_files

CANONICAL = {path.name: path for path in canonical_set_dirs()}


@pytest.fixture(scope="module")
def relu16() -> GoldenSet:
    return read_golden_set(CANONICAL["ssdfa_relu_rnd16"])


def words(path) -> list[int]:
    return [int(token, 16) for token in path.read_text().split()]


def test_layer_files_hold_the_stimulus_and_expected_values_masked_to_their_words(tmp_path, relu16):
    shape = write_harness_files(tmp_path, 3, relu16, "layer", every=True, host_data_width=32, stall=7, stall_seed=9)
    a = relu16.config.arithmetic
    inputs = relu16["inputs"].ravel()
    assert words(tmp_path / "h3_x.hex") == [int(v) & ((1 << a.activation.word) - 1) for v in inputs]
    load = words(tmp_path / "h3_load.hex")
    n, f = relu16.config.shape.neurons, relu16.config.shape.fan_in
    writes = n * (f + 1) + 2 * n * relu16.config.shape.connections  # weights, b and index table
    assert load[:5] == [shape.samples, 1, 7, 9, writes]
    assert len(load) == 5 + 4 * writes
    # Read-back: the feedback table once after loading, then per sample delta, f' (no LFSR:
    # RND update) and every weight; signed values sign-extended to the host width.
    rb = words(tmp_path / "h3_rb.hex")
    s = relu16.config.shape.connections
    assert len(rb) == n * s + shape.samples * (2 * n + n * (f + 1))
    assert rb[: n * s] == [int(b) & 0xFFFFFFFF for b in relu16["feedback_value"].ravel()]
    assert any(b < 0 for b in relu16["feedback_value"].ravel())  # a sign extension to check
    first_delta = int(relu16["delta"][0, 0]) & 0xFFFFFFFF
    assert rb[n * s] == first_delta
    last_weights = relu16["weights_final"].ravel()
    assert rb[-len(last_weights):] == [int(w) & 0xFFFFFFFF for w in last_weights]


def test_pe_files_run_each_pe_of_the_layer_in_turn_with_the_errors_its_router_would_deliver(tmp_path):
    golden = read_golden_set(CANONICAL["sdfa2_tanh_wrap"])
    config = golden.config
    write_harness_files(tmp_path, 0, golden, "pe", every=False, host_data_width=32)
    samples = golden.parameters["samples"]
    k, s, f = config.neurons_per_pe, config.shape.connections, config.shape.fan_in
    e = words(tmp_path / "h0_e.hex")
    assert len(e) == config.pes * samples * k * s
    # PE 1, sample 0, slot 0, connection 1 is neuron K's second connection.
    neuron = k
    expected = int(golden["errors"][0, golden["feedback_index"][neuron, 1]]) & ((1 << config.arithmetic.error.word) - 1)
    assert e[samples * k * s + 1] == expected
    assert len(words(tmp_path / "h0_x.hex")) == config.pes * samples * 2 * f
    # Each pass's read-backs start with that PE's feedback constants (read back after loading).
    rb = words(tmp_path / "h0_rb.hex")
    per_pass = k * s + k * (2 + 1 + f + 1)  # feedback, then one read-back (final): delta, f', LFSR, weights
    assert len(rb) == config.pes * per_pass
    assert rb[per_pass : per_pass + k * s] == [int(b) & 0xFFFFFFFF for b in golden["feedback_value"][k : 2 * k].ravel()]


def test_an_output_layer_has_no_feedback_table_to_read_back(tmp_path):
    golden = read_golden_set(CANONICAL["output_identity_stoch"])
    shape = write_harness_files(tmp_path, 0, golden, "pe", every=False, host_data_width=32)
    k, f, p = golden.config.neurons_per_pe, golden.config.shape.fan_in, golden.config.pes
    assert len(words(tmp_path / "h0_rb.hex")) == p * k * (2 + 1 + f + 1)
    assert expected_checks(shape, "pe", False) == p * (shape.samples * 2 * k + k * (2 + 1 + f + 1)) + 2


def test_router_files_hold_each_ports_words_in_slot_and_connection_order(tmp_path):
    golden = read_golden_set(CANONICAL["dfa_dense_relu"])
    config = golden.config
    write_harness_files(tmp_path, 1, golden, "router", every=True, host_data_width=32)
    mask = (1 << config.arithmetic.error.word) - 1
    for pe in range(config.pes):
        port = words(tmp_path / f"h1_route{pe}.hex")
        index = golden["feedback_index"][pe]  # one neuron per PE
        assert port == [int(golden["errors"][s, i]) & mask for s in range(golden.parameters["samples"]) for i in index]


def test_weights_of_a_checksum_only_set_are_rebuilt_and_proven_by_its_checksums():
    golden = read_golden_set(CANONICAL["dfa_dense_relu"])
    assert "weights_per_sample" not in golden.arrays
    weights = expected_weights(golden)
    assert weights.shape == (golden.parameters["samples"], *golden["weights_final"].shape)
    assert np.array_equal(weights[-1], golden["weights_final"])


def test_weights_that_the_checksums_do_not_prove_are_refused():
    golden = read_golden_set(CANONICAL["dfa_dense_relu"])
    checksums = golden["weight_checksum"].copy()
    checksums[1, 0] ^= 1
    tampered = dataclasses.replace(golden, arrays={**golden.arrays, "weight_checksum": checksums})
    with pytest.raises(SsdfaError, match="after sample 1 do not match its checksum"):
        expected_weights(tampered)


def test_full_weight_sets_are_used_as_stored(relu16):
    assert np.array_equal(expected_weights(relu16), relu16["weights_per_sample"])


def test_a_mismatch_line_is_reported_with_sample_layer_neuron_weight_and_raw_and_real_values(tmp_path, relu16):
    shape = golden_drive.harness_shape(relu16, "layer", 32)
    f = relu16.config.shape.fan_in
    (tmp_path / "result.txt").write_text(
        "harness layer 0\n"
        f"mismatch 6 0 2 {1 * (f + 1) + f} 00000000fffffffe 00000000fffffffd\n"
        "mismatch 1 0 0 3 0000000000001000 0000000000000fff\n"
        "summary 225 2 577 41 536 5\n"
    )
    result = read_harness_result(tmp_path / "result.txt", shape, "layer")
    assert result.finished and result.mismatch_count == 2 and not result.passed
    weight, activation = result.mismatches
    assert str(weight).startswith("sample 2, layer 0, neuron 1: weight W[1,6] (bias): expected raw -2 (= -0.0001220703125")
    assert "actual raw -3" in str(weight)
    assert (activation.neuron, activation.expected, activation.actual) == (3, 4096, 4095)
    assert "= 1.0 in SQ(4,12)" in str(activation) and "0.999755859375" in str(activation)


def test_a_feedback_read_back_mismatch_names_the_constant_and_no_sample(tmp_path, relu16):
    shape = golden_drive.harness_shape(relu16, "pe", 32)
    s = relu16.config.shape.connections
    # b[2,0] = -8190 in SQ(2,14) read back without its sign extension to the 32-bit host word.
    (tmp_path / "result.txt").write_text(
        "harness pe 0\n"
        f"mismatch 12 0 4294967295 {2 * s} 00000000ffffe002 000000000000e002\n"
        "summary 200 1 500 10 400 5\n"
    )
    (mismatch,) = read_harness_result(tmp_path / "result.txt", shape, "pe").mismatches
    assert (mismatch.sample, mismatch.neuron, mismatch.column, mismatch.expected) == (-1, 2, 0, -8190)
    assert int(relu16["feedback_value"][2, 0]) == -8190
    assert str(mismatch).startswith("layer 0, neuron 2: feedback constant b[2,0] read back after loading: "
                                    "expected raw -8190 (= -0.4998779296875 in SQ(2,14)), actual raw 57346")


def test_a_harness_without_a_summary_line_never_passes(tmp_path, relu16):
    shape = golden_drive.harness_shape(relu16, "layer", 32)
    (tmp_path / "cut.txt").write_text("harness layer 0\n")
    assert not read_harness_result(tmp_path / "cut.txt", shape, "layer").passed
    missing = read_harness_result(tmp_path / "absent.txt", shape, "layer")
    assert not missing.passed and "did not run" in missing.notes[0]


def test_expected_check_counts_cover_every_value_of_the_set(relu16):
    shape = golden_drive.harness_shape(relu16, "layer", 32)
    s, n, f = 5, 4, 6
    connections = 1  # SSDFA: one feedback constant per neuron, read back once after loading
    assert expected_checks(shape, "layer", True) == n * connections + s * 2 * n + s * n * (2 + f + 1) + 1 + 4
    assert expected_checks(shape, "layer", False) == n * connections + s * 2 * n + n * (2 + f + 1) + 1 + 4
    assert expected_checks(shape, "router", True) == s * n + 1 + 4


def test_hardware_configuration_drops_only_what_the_host_loads_and_mutations_swap_rounding(relu16):
    config = relu16.config
    reseeded = config.with_(index=3, arithmetic=dataclasses.replace(config.arithmetic, seed=99))
    assert hardware_config(reseeded) == hardware_config(config)
    assert hardware_config(config, "swap-rounding").arithmetic.rounding is Rounding.TRN
    assert hardware_config(config, "swap-update-rounding").arithmetic.update_rounding is Rounding.TRN
    with pytest.raises(SsdfaError, match="unknown mutation"):
        hardware_config(config, "flip-bits")


def test_the_generated_top_connects_every_port_of_every_dut(relu16):
    ports = {"cmd__payload": (True, 2), "cmd__valid": (True, 1), "cmd__ready": (False, 1), "busy": (False, 1),
             "done": (False, 1), "completed": (False, 32), "host__pe": (True, 1), "host__space": (True, 3),
             "host__addr": (True, 5), "host__w_en": (True, 1), "host__w_data": (True, 32), "host__r_en": (True, 1),
             "host__r_data": (False, 32), "x__payload": (True, 16), "x__valid": (True, 1), "x__ready": (False, 1),
             "y__payload": (False, 32), "y__valid": (False, 1), "y__ready": (True, 1), "e__payload": (True, 16),
             "e__valid": (True, 1), "e__ready": (False, 1), "clear_counters": (True, 1),
             "errors_received": (False, 32), "errors_delivered__0": (False, 32)}
    design = Design("layer", relu16.config, "ssdfa_layer_test", "", ports)
    text = top_verilog([CosimJob("a", relu16)], [design])
    for port in ports:
        assert f".{port}(i0_{port})" in text
    assert "layer_harness #(.ID(0), .F(6), .N(4), .P(1), .K(4)" in text
    with pytest.raises(SsdfaError, match="has no port 'errors_delivered__0'"):
        top_verilog([CosimJob("a", relu16)], [Design("layer", relu16.config, "m", "", {
            k: v for k, v in ports.items() if k != "errors_delivered__0"})])


def test_random_configurations_are_reproducible_and_cover_every_mode_and_shape():
    assert draw_config(random.Random(5)) == draw_config(random.Random(5))
    seen = Counter()
    for seed in range(300):
        config = draw_config(random.Random(seed))
        a = config.arithmetic
        seen.update([a.rounding.name, "update-" + a.update_rounding.name, a.overflow.name,
                     config.activation.value, f"P{min(config.pes, 2)}", f"K{min(config.neurons_per_pe, 2)}",
                     f"s{min(config.shape.connections, 3)}", "unsigned" if not a.activation.signed else "signed"])
    for mode in ("TRN", "TRN_ZERO", "RND", "RND_CONV"):
        assert seen[mode] and seen["update-" + mode]
    for item in ("update-STOCH", "WRAP", "SAT", "relu", "hardtanh", "tanh", "identity", "P1", "P2", "K1", "K2",
                 "s1", "s2", "s3", "unsigned"):
        assert seen[item], item


def test_bad_jobs_are_refused_where_they_are_made(relu16):
    with pytest.raises(SsdfaError, match="unknown top"):
        CosimJob("a", relu16, top="cpu")
    with pytest.raises(SsdfaError, match="stall must be an integer from 0 to 255"):
        CosimJob("a", relu16, stall=256)
