"""The generated Verilog writes each layer's PE module once and instances it (rtl/shared_modules.py):
the layer's and the network's files, the module the same as the standalone ``neuron_pe`` top,
and a module per PE only where the PEs' memories start with different contents."""

from __future__ import annotations

import re

import numpy as np
from amaranth.hdl import Cat, Module
from amaranth.lib import wiring

from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.layer_config import layer_config_from_dict
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import ArithmeticConfig
from ssdfa.rtl import shared_modules
from ssdfa.rtl.layer import SSDFALayer
from ssdfa.rtl.network import generate_network, network_layer_configs
from ssdfa.rtl.verilog import generate
from ssdfa.sim.network_driver import NetworkDriver

# Three PEs of two neurons: small enough to elaborate in a second or two.
LAYER = {
    "layer": {"fan_in": 3, "neurons": 6, "pes": 3, "outputs": 4, "connections": 2, "activation": "relu"},
    "formats": {"activation": "SQ(2,4)", "weight": "SQ(2,6)", "feedback": "SQ(2,6)", "error": "SQ(2,6)",
                "delta": "SQ(2,6)"},
}
_MODULE = re.compile(r"^module (\S+?) ?\((.*?)^endmodule", re.MULTILINE | re.DOTALL)


def _modules(text: str) -> dict[str, str]:
    """Every module declared in ``text``, by name, its text from the port list on."""
    found = {}
    for match in _MODULE.finditer(text):
        assert match.group(1) not in found, f"module {match.group(1)} declared twice"
        found[match.group(1)] = match.group(2)
    return found


def _instances(text: str, module: str) -> list[str]:
    """The instance names of ``module`` in ``text``."""
    return re.findall(rf"^\s*{re.escape(module)} +(\w+) \(", text, flags=re.MULTILINE)


def test_a_layer_file_declares_one_pe_module_instanced_by_every_pe(tmp_path):
    pe_file, _, layer_file = generate(LAYER, tmp_path)
    text = layer_file.read_text()
    modules = _modules(text)
    assert sorted(modules) == ["\\ssdfa_layer.neuron_pe", "\\ssdfa_layer.router", "ssdfa_layer"]
    assert _instances(text, "\\ssdfa_layer.neuron_pe") == ["pe_0", "pe_1", "pe_2"]
    # The instanced module is the standalone PE top, every port included, under another name.
    assert modules["\\ssdfa_layer.neuron_pe"] == _modules(pe_file.read_text())["neuron_pe"]


def test_a_network_file_declares_one_pe_module_per_layer(tmp_path):
    configs = network_layer_configs((6, 4, 3), ArithmeticConfig(), pes=(2, 1))
    text = generate_network(configs, tmp_path).read_text()
    modules = _modules(text)
    pe_modules = sorted(name for name in modules if "neuron_pe" in name)
    assert pe_modules == ["\\ssdfa_network.layer0.neuron_pe", "\\ssdfa_network.layer1.neuron_pe"]
    assert _instances(text, "\\ssdfa_network.layer0.neuron_pe") == ["pe_0", "pe_1"]
    assert _instances(text, "\\ssdfa_network.layer1.neuron_pe") == ["pe_0"]
    assert not any(re.search(r"\.pe_\d+$", name) for name in modules), "a PE copied into its own module"


def test_pes_that_start_with_their_own_weights_get_a_module_each(tmp_path):
    configs = network_layer_configs((6, 4, 3), ArithmeticConfig(seed=5), pes=(2, 1))
    model = FixedNetwork(NetworkSpec((6, 4, 3), seed=5), ArithmeticConfig(seed=5))
    state = NetworkDriver(configs).state_from_model(model)
    assert not np.array_equal(state.weights[0][:2], state.weights[0][2:])  # the two PEs' rows differ
    text = generate_network(configs, tmp_path, initial_state=state).read_text()
    pe_modules = sorted(name for name in _modules(text) if "neuron_pe" in name)
    assert pe_modules == ["\\ssdfa_network.layer0.neuron_pe_0", "\\ssdfa_network.layer0.neuron_pe_1",
                          "\\ssdfa_network.layer1.neuron_pe_0"]
    assert _instances(text, "\\ssdfa_network.layer0.neuron_pe_1") == ["pe_1"]


def test_two_layers_of_one_index_in_a_design_built_by_hand_get_a_module_each():
    narrow = layer_config_from_dict(LAYER)
    wide = layer_config_from_dict({**LAYER, "layer": {**LAYER["layer"], "fan_in": 5}})
    assert narrow.index == wide.index

    class TwoLayers(wiring.Component):
        def __init__(self):
            super().__init__({"busy": wiring.Out(2)})
            self.layers = [SSDFALayer(config=narrow), SSDFALayer(config=wide)]

        def elaborate(self, platform):
            m = Module()
            m.submodules.first, m.submodules.second = self.layers
            m.d.comb += self.busy.eq(Cat(*(layer.busy for layer in self.layers)))
            return m

    text = shared_modules.convert(TwoLayers(), "two_layers")
    modules = _modules(text)
    assert sorted(name for name in modules if "neuron_pe" in name) == [
        "\\two_layers.layer0.neuron_pe", "\\two_layers.layer0_1.neuron_pe"]
    assert modules["\\two_layers.layer0.neuron_pe"] != modules["\\two_layers.layer0_1.neuron_pe"]
