"""BoardCore: the learner as a board sees it, two UART pins in front of ``AXILearner``
(docs/board.md §1). Everything but the clock, the reset and the pads: the board tops
(rtl/board_top.py) and the Verilator simulation of ``ssdfa board --sim`` share it."""


from collections.abc import Sequence

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ssdfa.errors import SsdfaError
from ssdfa.model.layer_config import LayerConfig

from .axi_learner import AXILearner
from .uart_bridge import UARTBridge
from .uart_rx import UARTReceiver
from .uart_tx import UARTTransmitter

__all__ = ["BoardCore", "BOARD_CORE_TOP", "feature_bytes"]

#: The Verilog module name of a generated ``BoardCore``.
BOARD_CORE_TOP = "ssdfa_board_core"


def feature_bytes(activation_word: int) -> int:
    """Bytes per feature in a SAMPLE frame for an activation word of ``activation_word`` bits."""
    if not 1 <= activation_word <= 16:
        raise SsdfaError(f"a SAMPLE frame carries activation words of 1..16 bits, not {activation_word}")
    return (activation_word + 7) // 8


class BoardCore(wiring.Component):
    """``UARTReceiver`` -> ``UARTBridge`` -> ``AXILearner``, replies through ``UARTTransmitter``.

    Parameters
    ----------
    layers : sequence of LayerConfig
        The learner (``rtl.network.network_layer_configs``).
    clocks_per_bit : int
        Clock frequency over baud rate (at least 4).
    initial_state : optional
        As for ``AXILearner``.

    The learner is built without its per-layer and per-neuron counters (``SSDFANetwork``'s
    ``layer_counters``): the board driver reads the network's counters only (cycles, samples,
    correct predictions), and the others would take a fifth of the iCE40 UP5K's logic cells.

    Attributes
    ----------
    uart_rx : In(1)
        From the host (idle high).
    uart_tx : Out(1)
        To the host (idle high).
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)

    def __init__(self, *, layers: Sequence[LayerConfig], clocks_per_bit: int, initial_state=None):
        self._MustUse__silence = True  # a refused instance is not an unused design
        self.learner = AXILearner(layers=layers, initial_state=initial_state, layer_counters=False)
        network = self.learner.network
        self.inputs = network.layer_sizes[0]
        self.classes = network.layer_sizes[-1]
        self.feature_bytes = feature_bytes(network.arithmetic.activation.word)
        if self.inputs * self.feature_bytes + 1 > 255:
            raise SsdfaError(f"a sample of {self.inputs} features does not fit one UART frame "
                             f"(at most {254 // self.feature_bytes} features of {self.feature_bytes} bytes)")
        if not isinstance(clocks_per_bit, int) or clocks_per_bit < 4:
            raise SsdfaError(f"clocks per UART bit must be an integer of at least 4, not {clocks_per_bit!r}")
        self.clocks_per_bit = clocks_per_bit
        byte_clocks = 10 * clocks_per_bit
        self.bridge = UARTBridge(inputs=self.inputs, feature_bytes=self.feature_bytes, classes=self.classes,
                                 frame_timeout=64 * byte_clocks, stall_timeout=max(1 << 16, 64 * byte_clocks))
        self.receiver = UARTReceiver(clocks_per_bit=clocks_per_bit)
        self.transmitter = UARTTransmitter(clocks_per_bit=clocks_per_bit)
        super().__init__()
        self._MustUse__silence = False

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = self.receiver
        m.submodules.transmitter = transmitter = self.transmitter
        m.submodules.bridge = bridge = self.bridge
        m.submodules.learner = learner = self.learner
        m.d.comb += [
            receiver.rx.eq(self.uart_rx),
            self.uart_tx.eq(transmitter.tx),
            bridge.rx_data.eq(receiver.data),
            bridge.rx_valid.eq(receiver.valid),
            transmitter.data.eq(bridge.tx_data),
            transmitter.valid.eq(bridge.tx_valid),
            bridge.tx_ready.eq(transmitter.ready),
        ]
        # The bridge's master ports meet the learner's slave ports name for name.
        for name in ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr", "arprot",
                     "arvalid", "rready"):
            m.d.comb += getattr(learner, f"s_axil_{name}").eq(getattr(bridge, f"m_axil_{name}"))
        for name in ("awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp", "rvalid"):
            m.d.comb += getattr(bridge, f"m_axil_{name}").eq(getattr(learner, f"s_axil_{name}"))
        for name in ("tdata", "tvalid", "tlast"):
            m.d.comb += [getattr(learner, f"s_axis_{name}").eq(getattr(bridge, f"m_axis_{name}")),
                         getattr(bridge, f"s_axis_{name}").eq(getattr(learner, f"m_axis_{name}"))]
        m.d.comb += [bridge.m_axis_tready.eq(learner.s_axis_tready), learner.m_axis_tready.eq(bridge.s_axis_tready)]
        return m
