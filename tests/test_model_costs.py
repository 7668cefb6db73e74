"""The cost model (model/costs.py, model/paper_architectures.py) and ``ssdfa costs``; rules in docs/costs.md."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdfa.cli import main
from ssdfa.errors import SsdfaError
from ssdfa.model.costs import (
    DEFAULT_ENERGY_TABLE,
    Algorithm,
    Counts,
    compare,
    costs_of_layer,
    energy,
    energy_table_from_mapping,
    feedback_connections,
    headline_ratios,
    layer_costs,
    megabytes,
    network_costs,
    read_energy_table,
)
from ssdfa.model.paper_architectures import Layer, fully_connected, network

# --------------------------------------------------------------------------------------------
# Hand-counted: a 4-3-2 network (|W| = 12 + 6 = 18, 3 hidden neurons, 2 errors)
# --------------------------------------------------------------------------------------------

# Forward, every algorithm. fc1: 4*3 MACs; reads 12 weights + 4 inputs; writes 3 activations;
# movement 4 inputs. fc2 (output): 3*2 MACs; reads 6 + 3; writes 2; movement 3 inputs + 2 outputs.
FORWARD = [Counts(12, 16, 3, 4), Counts(6, 9, 2, 5)]


def test_forward_counts_of_a_hand_counted_network_are_the_same_for_every_algorithm():
    for algorithm in Algorithm:
        layers = layer_costs([4, 3, 2], algorithm, connections=1 if algorithm is Algorithm.SDFA else None)
        assert [layer.forward for layer in layers] == FORWARD


def test_bp_backward_of_a_hand_counted_network():
    fc1, fc2 = layer_costs([4, 3, 2], "bp")
    # fc2 (output): MACs 6 update + 6 W^T e; reads W 6 + inputs 3 + e 2; writes W 6 + error below 3;
    # movement |W| 6 + |A| 3 + |E| 2.
    assert fc2.backward == Counts(macs=12, reads=11, writes=9, movement=11)
    # fc1: MACs 12 + 12 (the paper's 2|W| counts the error at the input); reads W 12 + inputs 4 +
    # stored activations 3 (for f') + incoming error 3; writes W 12 + input error 4; movement 12 + 4 + 3.
    assert fc1.backward == Counts(macs=24, reads=22, writes=16, movement=19)


def test_bp_without_input_error_drops_the_first_layers_error_propagation():
    fc1, fc2 = layer_costs([4, 3, 2], "bp", input_error=False)
    assert fc1.backward == Counts(macs=12, reads=22, writes=12, movement=19)
    assert fc2.backward == Counts(macs=12, reads=11, writes=9, movement=11)


def test_ssdfa_backward_of_a_hand_counted_network():
    fc1, fc2 = layer_costs([4, 3, 2], "ssdfa")
    # fc1: MACs 3 (B e, one per neuron) + 12 update; reads W 12 + inputs 4 + activations 3 + B 3 +
    # received errors 3; writes W 12; movement one error word per neuron: 3.
    assert fc1.backward == Counts(macs=15, reads=25, writes=12, movement=3)
    # fc2 (output): no B; MACs 6; reads W 6 + inputs 3 + e 2; writes 6; movement its own error: 2.
    assert fc2.backward == Counts(macs=6, reads=11, writes=6, movement=2)


def test_dfa_backward_of_a_hand_counted_network():
    fc1, fc2 = layer_costs([4, 3, 2], "dfa")
    # fc1: every neuron receives both errors: B e is 3*2 MACs, 6 feedback reads, 6 error words.
    assert fc1.backward == Counts(macs=18, reads=31, writes=12, movement=6)
    assert fc2.backward == Counts(macs=6, reads=11, writes=6, movement=2)


def test_a_hand_counted_convolution():
    # 4x4x1 input, two 3x3 filters, VALID: 2x2x2 = 8 units, fan-in 9, 18 weights, 72 MACs.
    layer = Layer.conv("conv1", (4, 4, 1), filters=2, kernel=3, padding="valid")
    assert (layer.inputs, layer.neurons, layer.fan_in, layer.weights, layer.connections) == (16, 8, 9, 18, 72)
    bp = costs_of_layer(layer, "bp", connections=None, is_output=False)
    assert bp.forward == Counts(macs=72, reads=18 + 16, writes=8, movement=16)
    assert bp.backward == Counts(macs=144, reads=18 + 16 + 8 + 8, writes=18 + 16, movement=18 + 16 + 8)
    ssdfa = costs_of_layer(layer, "ssdfa", connections=1, is_output=False)
    assert ssdfa.backward == Counts(macs=72 + 8, reads=18 + 16 + 8 + 8 + 8, writes=18, movement=8)


def test_one_fc_layer_matches_the_counters_an_rtl_block_would_report():
    # N inputs, M neurons: N*M forward MACs; SSDFA delivers one error word per hidden neuron.
    n, m = 784, 400
    fc1, _ = layer_costs([n, m, 10], "ssdfa")
    assert fc1.forward.macs == n * m
    assert fc1.backward.movement == m
    assert fc1.backward.macs == n * m + m


# --------------------------------------------------------------------------------------------
# The paper's Table 1 identities, on random fully connected networks
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=50), min_size=2, max_size=6))
def test_totals_follow_the_papers_table_1(sizes):
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    neurons = sum(sizes[1:])
    hidden = neurons - sizes[-1]
    inputs = sum(sizes[:-1])
    errors = sizes[-1]
    results = compare(fully_connected(sizes), connections=1)
    bp, dfa, ssdfa = (results[a] for a in (Algorithm.BP, Algorithm.DFA, Algorithm.SSDFA))
    for costs in results.values():
        assert costs.forward.macs == weights
    assert bp.backward.macs == 2 * weights  # 2|W|
    assert dfa.backward.macs == weights + hidden * errors  # |W| + |B|
    assert ssdfa.backward.macs == weights + hidden  # |W| + |b|
    assert bp.backward.movement == weights + inputs + neurons  # |W| + |A| + |E|
    assert dfa.backward.movement == hidden * errors + errors
    assert ssdfa.backward.movement == neurons  # a single error per neuron


# --------------------------------------------------------------------------------------------
# Networks and the headline ratios
# --------------------------------------------------------------------------------------------


def test_imagenet_networks_have_the_known_fully_connected_layers_and_weights():
    alexnet, vgg16 = network("alexnet"), network("vgg16")
    assert alexnet.fully_connected_part().describe() == "9216-4096-4096-1000"
    assert vgg16.fully_connected_part().describe() == "25088-4096-4096-1000"
    assert sum(layer.weights for layer in vgg16.layers) == 138_344_128  # VGG16 without biases
    assert [layer.out_shape for layer in alexnet.layers[:2]] == [(55, 55, 96), (27, 27, 256)]


# The paper's ImageNet claims; 6,400 is a rounded figure, so 1% is the tolerance.
def test_alexnet_reproduces_the_6400x_data_movement_from_bp_to_ssdfa():
    ratios = headline_ratios(compare("alexnet"))
    assert ratios.movement_bp_ssdfa == pytest.approx(6400, rel=0.01)


def test_dfa_to_ssdfa_is_1000x_per_hidden_neuron_and_891x_over_the_whole_fc_network():
    ratios = headline_ratios(compare("alexnet"))
    assert ratios.movement_dfa_ssdfa_hidden == 1000
    # The 1,000 output neurons receive their own error under both algorithms.
    assert ratios.movement_dfa_ssdfa == pytest.approx((8192 * 1000 + 1000) / 9192)


def test_backward_macs_fall_by_about_2x_as_the_paper_counts_and_less_without_the_input_error():
    ratios = headline_ratios(compare("alexnet"))
    assert ratios.macs_bp_ssdfa == pytest.approx(2, rel=0.01)
    # 2|W| - |W_1| against |W| + |b| for 9216-4096-4096-1000.
    exact = (2 * 58_621_952 - 37_748_736) / 58_630_144
    assert ratios.macs_bp_ssdfa_without_input_error == pytest.approx(exact)


def test_the_6400x_comes_from_the_fully_connected_layers_not_the_whole_network():
    assert headline_ratios(compare("alexnet", scope="all")).movement_bp_ssdfa < 100


def test_sparsity_sets_the_sdfa_connections_per_neuron():
    assert feedback_connections("sdfa", 1000, sparsity=0.9) == 100
    assert feedback_connections("sdfa", 1000, sparsity=0.999) == 1
    assert feedback_connections("sdfa", 10, connections=3) == 3
    assert network_costs("cifar100-fc", "sdfa", 0.9).connections == 10
    for bad in (0.95, 1.0, -0.1, "x"):
        with pytest.raises(SsdfaError):
            feedback_connections("sdfa", 10, sparsity=bad)
    with pytest.raises(SsdfaError, match="11"):
        feedback_connections("sdfa", 10, connections=11)


def test_unknown_network_and_algorithm_names_are_refused_by_name():
    with pytest.raises(SsdfaError, match="'lenet'"):
        network("lenet")
    with pytest.raises(SsdfaError, match="'sgd'"):
        network_costs("mnist-fc", "sgd")


def test_megabytes_use_decimal_units():
    assert megabytes(250_000, 32) == 1.0


# --------------------------------------------------------------------------------------------
# Energy
# --------------------------------------------------------------------------------------------


def test_energy_prices_bp_backward_movement_as_main_memory_and_ssdfa_as_links():
    table = energy_table_from_mapping(
        {"mac_pj": 1, "read_pj": 0, "write_pj": 0, "main_memory_pj": 100, "link_pj": 10}
    )
    bp = energy(network_costs(fully_connected([4, 3, 2]), "bp"), table)
    ssdfa = energy(network_costs(fully_connected([4, 3, 2]), "ssdfa"), table)
    # Backward: BP 36 MACs, 30 words from main memory; SSDFA 21 MACs, 5 words over links.
    assert bp["backward"].total == 36 + 30 * 100
    assert ssdfa["backward"].total == 21 + 5 * 10
    # Forward: 18 MACs and 9 activation words over links, for both.
    assert bp["forward"].total == ssdfa["forward"].total == 18 + 9 * 10


def test_default_energy_table_is_horowitz_45nm_32_bit():
    t = DEFAULT_ENERGY_TABLE
    assert (t.word_bits, t.mac_pj, t.read_pj, t.main_memory_pj) == (32, 4.6, 5.0, 640.0)


def test_energy_table_files_are_read_and_checked(tmp_path):
    good = tmp_path / "t.toml"
    good.write_text('name = "int8"\nword_bits = 8\nmac_pj = 0.23\n')
    table = read_energy_table(good)
    assert (table.name, table.word_bits, table.mac_pj) == ("int8", 8, 0.23)
    assert table.link_pj == DEFAULT_ENERGY_TABLE.link_pj  # not in the file: the default
    as_json = tmp_path / "t.json"
    as_json.write_text('{"link_pj": 12.5}')
    assert read_energy_table(as_json).link_pj == 12.5
    for text, complaint in (
        ('{"dram_pj": 1}', "'dram_pj'"),
        ('{"mac_pj": -1}', "mac_pj"),
        ('{"mac_pj": true}', "mac_pj"),
        ('{"word_bits": 0}', "word_bits"),
        ("[1, 2]", "expected a table"),
        ("{", "not valid JSON"),
    ):
        as_json.write_text(text)
        with pytest.raises(SsdfaError, match=complaint):
            read_energy_table(as_json)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def test_cli_prints_the_headline_ratios(capsys):
    assert main(["costs", "--net", "alexnet"]) == 0
    out = capsys.readouterr().out
    assert "6,380x" in out and "paper (ImageNet): ~6,400x" in out
    assert "1,000x over the hidden layers" in out


def test_cli_json_is_one_object_with_per_layer_counts(capsys):
    assert main(["costs", "--net", "cifar100-fc", "--json", "--energy", "--algo", "bp,ssdfa"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["schema"] == 1 and obj["net"] == "cifar100-fc" and obj["errors"] == 100
    assert [a["algorithm"] for a in obj["algorithms"]] == ["bp", "ssdfa"]
    ssdfa = obj["algorithms"][1]
    assert set(ssdfa) >= {"forward", "backward", "total", "layers", "energy_pj", "connections"}
    assert set(ssdfa["backward"]) == {"macs", "reads", "writes", "movement", "movement_mb"}
    assert [layer["backward"]["movement"] for layer in ssdfa["layers"]] == [1000, 1000, 1000, 100]
    assert set(obj["ratios"]) >= {"movement_bp_ssdfa", "movement_dfa_ssdfa", "macs_bp_ssdfa"}
    assert obj["energy_table"]["mac_pj"] == 4.6


def test_cli_plot_writes_a_png(tmp_path, capsys):
    path = tmp_path / "costs.png"
    assert main(["costs", "--net", "mnist-fc", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv, complaint",
    [
        (["--net", "lenet"], "'lenet'"),
        (["--net", "alexnet", "--algo", "sgd"], "'sgd'"),
        (["--net", "mnist-fc", "--sparsity", "0.95"], "0.95"),
        (["--net", "mnist-fc", "--word-bits", "eight"], "'eight'"),
        (["--net", "mnist-fc", "--word-bits", "16", "--energy"], "16"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(argv, complaint, capsys):
    assert main(["costs", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and complaint in captured.err
    assert "Traceback" not in captured.err


def test_cli_bad_energy_table_exits_2_with_one_line(tmp_path, capsys):
    table = tmp_path / "bad.toml"
    table.write_text("mac_pj = 4.6\nsram_pj = 5\n")
    assert main(["costs", "--net", "mnist-fc", "--energy-table", str(table)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "'sram_pj'" in captured.err
    assert captured.out == ""


def test_energy_tables_are_bounded_so_every_total_stays_a_finite_number():
    from ssdfa.model.costs import energy_table_from_mapping

    with pytest.raises(SsdfaError, match=r"mac_pj must be a number of picojoules from 0 to 1e\+12, not 1e\+308"):
        energy_table_from_mapping({"mac_pj": 1e308})
    with pytest.raises(SsdfaError, match="word_bits must be an integer from 1 to 1024, not 4096"):
        energy_table_from_mapping({"word_bits": 4096})


def test_a_table_that_costs_ssdfa_nothing_prints_no_ratio(tmp_path, capsys):
    from ssdfa.cli import main

    table = tmp_path / "zero.toml"
    table.write_text("mac_pj = 0\nread_pj = 0\nwrite_pj = 0\nlink_pj = 0\nmain_memory_pj = 1\n")
    assert main(["costs", "--net", "mnist-fc", "--energy-table", str(table)]) == 0
    assert "energy BP / SSDFA (forward + backward): n/a" in capsys.readouterr().out
