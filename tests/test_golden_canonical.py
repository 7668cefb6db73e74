"""The committed canonical sets, and what the layer generator puts in a set.

Each directory under golden/sets is one case: ``config.toml`` (the input) beside
``manifest.json`` and ``vectors.npz`` (the expected result). Cases are found automatically; a
directory missing any of the three files, or a stray file, fails, it is not skipped. The model
must regenerate every committed set byte for byte, so any drift in the arithmetic shows here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssdfa.errors import SsdfaError
from ssdfa.golden.format import (
    CANONICAL_SETS,
    MANIFEST_NAME,
    VECTORS_NAME,
    canonical_set_dirs,
    encode_golden_set,
    read_golden_set,
    weight_checksum,
)
from ssdfa.golden.layer_vectors import (
    GENERATOR,
    MIN_INIT_RAW,
    draw_stimulus,
    generate_layer_set,
    special_values,
    with_seed,
)
from ssdfa.model.arithmetic import STOCH_BITS, Rounding, lfsr_step
from ssdfa.model.layer_config import layer_config_from_dict, load_layer_config
from ssdfa.model.neuron_ops import (
    Activation,
    dense_feedback,
    feedback_delta,
    forward,
    output_error,
    weight_update,
)

CONFIG_NAME = "config.toml"
SET_FILES = {CONFIG_NAME, MANIFEST_NAME, VECTORS_NAME}
ENTRIES = sorted(CANONICAL_SETS.iterdir()) if CANONICAL_SETS.is_dir() else []
SETS = canonical_set_dirs()


def set_id(path) -> str:
    return path.name


# --------------------------------------------------------------------------------------------
# Discovery and pairing
# --------------------------------------------------------------------------------------------


def test_there_are_canonical_sets():
    assert len(SETS) >= 4, f"expected the committed canonical sets in {CANONICAL_SETS.name}/"


@pytest.mark.parametrize("entry", ENTRIES, ids=set_id)
def test_every_entry_of_the_sets_folder_is_a_complete_case(entry):
    assert entry.is_dir(), f"{entry.name}: a stray file among the sets; each case is a directory"
    present = {path.name for path in entry.iterdir()}
    missing = SET_FILES - present
    assert not missing, f"{entry.name}: unpaired case, missing {sorted(missing)}"
    extra = present - SET_FILES
    assert not extra, f"{entry.name}: unexpected file(s) {sorted(extra)}"


# --------------------------------------------------------------------------------------------
# Each committed set: valid, tiny, and exactly what the model computes today
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", SETS, ids=set_id)
def test_committed_set_passes_the_reader(directory):
    golden = read_golden_set(directory)
    assert golden.kind == "layer"
    assert golden.config == load_layer_config(directory / CONFIG_NAME), (
        f"{directory.name}: the manifest's configuration differs from {CONFIG_NAME}"
    )


@pytest.mark.parametrize("directory", SETS, ids=set_id)
def test_committed_set_is_small(directory):
    size = sum((directory / name).stat().st_size for name in SET_FILES)
    assert size < 100_000, f"{directory.name}: {size} bytes; canonical sets stay well under 100 KB"


@pytest.mark.parametrize("directory", SETS, ids=set_id)
def test_model_regenerates_committed_set_byte_for_byte(directory):
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    assert manifest["generator"] == GENERATOR, (
        f"{directory.name} was made by generator {manifest['generator']}, the code is {GENERATOR}: regenerate it"
    )
    config = load_layer_config(directory / CONFIG_NAME)
    parameters = manifest["parameters"]
    golden = generate_layer_set(config, parameters["samples"], full_weights=parameters["full_weights"])
    expected = encode_golden_set(golden)
    committed = {name: (directory / name).read_bytes() for name in expected}
    if committed != expected:
        stored = read_golden_set(directory)
        changed = [name for name in golden.arrays if not np.array_equal(golden[name], stored[name])]
        pytest.fail(f"{directory.name}: the model no longer reproduces the committed set; arrays that differ: {changed}")


def test_canonical_sets_cover_activations_roundings_connections_and_pe_mappings():
    configs = [load_layer_config(directory / CONFIG_NAME) for directory in SETS]
    assert {c.activation for c in configs} == set(Activation)
    updates = {c.arithmetic.update_rounding for c in configs}
    assert Rounding.STOCH in updates and updates - {Rounding.STOCH}
    assert {c.shape.connections for c in configs} >= {1, 2}
    assert any(c.shape.connections == c.outputs > 1 for c in configs)  # dense DFA
    assert {c.neurons_per_pe == 1 for c in configs} == {True, False}
    assert {c.arithmetic.overflow.name for c in configs} == {"SAT", "WRAP"}
    assert {c.arithmetic.weight.word for c in configs} >= {8, 16}
    full = {json.loads((d / MANIFEST_NAME).read_text())["parameters"]["full_weights"] for d in SETS}
    assert full == {True, False}


# --------------------------------------------------------------------------------------------
# The generator follows the contract: an independent step-by-step replay
# --------------------------------------------------------------------------------------------


def stepped_draws(states: list[int], count: int) -> np.ndarray:
    """``count`` draws per neuron by the definition of §5.1 (16 single steps each), in place."""
    draws = np.zeros((len(states), count), dtype=np.int64)
    for neuron, state in enumerate(states):
        for draw in range(count):
            for _ in range(STOCH_BITS):
                state = lfsr_step(state)
            draws[neuron, draw] = state & ((1 << STOCH_BITS) - 1)
        states[neuron] = state
    return draws


@pytest.mark.parametrize("directory", SETS, ids=set_id)
def test_committed_set_replays_sample_by_sample_with_single_step_lfsr_draws(directory):
    """Replays the set from its own stimulus, drawing as §5.3 says: per sample, a hidden layer's
    delta draw first, then fan_in + 1 weight draws in address order, bias last."""
    golden = read_golden_set(directory)
    config = golden.config
    a, activation = config.arithmetic, config.activation
    stochastic = a.update_rounding is Rounding.STOCH
    states = [int(seed) for seed in golden["lfsr_seed"]]
    weights = golden["weights_initial"].copy()
    if not config.is_output_layer:
        feedback = dense_feedback(golden["feedback_index"], golden["feedback_value"], config.outputs, dtype=np.int64)
    for sample in range(golden.parameters["samples"]):
        x = golden["inputs"][sample : sample + 1]
        result = forward(weights, x, a, activation)
        if config.is_output_layer:
            delta = output_error(result.activation, golden["targets"][sample : sample + 1], a)
            np.testing.assert_array_equal(golden["errors"][sample], delta[0])
            delta_frac = a.error.frac_bits
        else:
            draws = stepped_draws(states, 1).T if stochastic else None
            errors = golden["errors"][sample : sample + 1]
            delta = feedback_delta(errors, result.derivative, feedback, a, activation, draws)
            delta_frac = a.delta.frac_bits
        draws = stepped_draws(states, config.shape.fan_in + 1) if stochastic else None
        weights = weight_update(weights, delta, delta_frac, x, a, draws)
        for name, value in [("pre_activation", result.pre_activation), ("activation", result.activation),
                            ("derivative", result.derivative), ("delta", delta)]:
            np.testing.assert_array_equal(golden[name][sample], value[0], err_msg=f"{name}, sample {sample}")
        assert golden["lfsr_state"][sample].tolist() == states, f"LFSR states after sample {sample}"
        assert bytes(golden["weight_checksum"][sample]) == weight_checksum(weights), f"weights after sample {sample}"
    np.testing.assert_array_equal(golden["weights_final"], weights)


# --------------------------------------------------------------------------------------------
# The stimulus exercises the formats and is deterministic
# --------------------------------------------------------------------------------------------

HIDDEN = {
    "layer": {"fan_in": 7, "neurons": 10, "outputs": 4, "connections": 2, "activation": "tanh"},
    "formats": {"activation": "SQ(3,5)", "error": "SQ(2,6)"},
    "modes": {"update_rounding": "STOCH", "seed": 21},
}


def test_stimulus_holds_zeros_extremes_negatives_and_values_near_one():
    config = layer_config_from_dict(HIDDEN)
    stimulus = draw_stimulus(config, 6)
    for values, fmt in [(stimulus.inputs, config.arithmetic.activation), (stimulus.errors, config.arithmetic.error)]:
        present = set(values.ravel().tolist())
        assert set(special_values(fmt)) <= present, fmt
        one = 1 << fmt.frac_bits
        assert np.any((values > -one) & (values < one) & (values != 0))
        assert np.any(np.abs(values) > one)
        assert values.min() >= fmt.min_raw and values.max() <= fmt.max_raw


def test_feedback_table_is_class_balanced_distinct_per_neuron_and_never_zero():
    config = layer_config_from_dict(HIDDEN)
    stimulus = draw_stimulus(config, 1)
    index = stimulus.feedback_index
    assert index.shape == (10, 2)
    assert all(len(set(row)) == 2 for row in index.tolist())
    counts = np.bincount(index.ravel(), minlength=config.outputs)
    assert counts.max() - counts.min() <= 1, counts  # 20 connections over 4 outputs: 5 each
    assert np.all(stimulus.feedback_value != 0)


def test_initial_weights_are_not_all_zero_for_a_wide_fan_in_and_a_narrow_format():
    config = layer_config_from_dict({"layer": {"fan_in": 2000, "neurons": 2}, "formats": {"weight": "SQ(2,6)"}})
    weights = draw_stimulus(config, 1).weights_initial
    interior = weights[:, 1:-1]
    assert np.count_nonzero(interior) > interior.size // 2
    assert np.abs(interior).max() <= MIN_INIT_RAW
    assert weights[0, -1] == config.arithmetic.weight.max_raw and weights[-1, 0] == config.arithmetic.weight.min_raw


def test_stimulus_depends_on_the_seed_and_the_layer_index_only():
    config = layer_config_from_dict(HIDDEN)
    same = draw_stimulus(config, 3)
    np.testing.assert_array_equal(draw_stimulus(config, 3).inputs, same.inputs)
    assert not np.array_equal(draw_stimulus(with_seed(config, 22), 3).inputs, same.inputs)
    assert not np.array_equal(draw_stimulus(config.with_(index=1), 3).inputs, same.inputs)
    # The rounding modes change the expected values, never the stimulus.
    other = layer_config_from_dict({**HIDDEN, "modes": {"update_rounding": "RND", "seed": 21}})
    np.testing.assert_array_equal(draw_stimulus(other, 3).errors, same.errors)


def test_output_layer_sets_store_targets_and_their_error_as_the_delta():
    config = layer_config_from_dict({"layer": {"fan_in": 3, "neurons": 5, "outputs": 5, "activation": "identity"}})
    golden = generate_layer_set(config, 4)
    assert "feedback_index" not in golden.arrays and "targets" in golden.arrays
    np.testing.assert_array_equal(golden["delta"], golden["errors"])
    assert golden["targets"].min() >= 0 and golden["targets"].max() < 5


def test_deterministic_update_rounding_never_advances_the_lfsrs():
    config = layer_config_from_dict({**HIDDEN, "modes": {"update_rounding": "RND_CONV", "seed": 21}})
    golden = generate_layer_set(config, 3)
    assert all(row.tolist() == golden["lfsr_seed"].tolist() for row in golden["lfsr_state"])


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"layer": {"fan_in": 3, "neurons": 4, "outputs": 10, "activation": "identity"}}, "outputs = 10"),
        ({"layer": {"fan_in": 3, "neurons": 4, "learning": False}}, "learning = false"),
    ],
)
def test_generator_refuses_configurations_it_cannot_make_a_layer_set_for(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        generate_layer_set(layer_config_from_dict(changes), 2)


def test_a_configuration_with_a_negative_seed_is_refused():
    """LFSR seeds are taken modulo 2^32: a negative seed would alias another one (§5.2)."""
    with pytest.raises(SsdfaError, match=r"seed must be an integer from 0 to 2\^32 - 1, not -1"):
        layer_config_from_dict({"layer": {"fan_in": 3, "neurons": 4}, "modes": {"seed": -1}})
