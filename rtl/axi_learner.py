"""AXILearner: the whole SSDFA learner behind standard buses. An AXI4-Lite slave for control,
status, the counters and every learner memory; AXI4-Stream with TLAST for samples and labels in
and predictions out.

The wrapper uses only ``SSDFANetwork``'s external interface (``run``, ``busy``, ``done``,
``predictions_taken``, ``prediction_last``, ``host``, ``x``, ``label``, ``prediction``;
docs/network.md §2). Offsets and fields come from
``register_map`` (the one source of the map); docs/bus.md describes the protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ssdfa.errors import SsdfaError
from ssdfa.model.layer_config import LayerConfig

from . import register_map as regs
from .building_blocks import equals
from .counters import counter_names
from .network import NetworkMode, NetworkSpace, SSDFANetwork

__all__ = ["AXILearner", "AXI_LEARNER_TOP", "generate_axi_learner"]

#: The Verilog module name ``generate_axi_learner`` writes.
AXI_LEARNER_TOP = "ssdfa_axi_learner"

_OKAY, _SLVERR, _DECERR = (value for _, value, _ in regs.RESPONSES)


def _field(name: str, field: str) -> regs.Field:
    return next(f for f in regs.register(name).fields if f.name == field)


def _slice(value, field: regs.Field):
    return value[field.lsb:field.lsb + field.width]


class AXILearner(wiring.Component):
    """``SSDFANetwork`` with an AXI4-Lite slave (``s_axil_*``) and AXI4-Stream ports (``s_axis_*``
    in, ``m_axis_*`` out), named as AMBA names them so that a bridge or a board top connects by name.

    AXI4-Lite: one access at a time (a write takes AW and W together); every access gets a
    response. Registers are in ``register_map.REGISTERS``. A learner access (``DATA``, the
    counter window) or a ``START`` while a run is active answers SLVERR and changes nothing: an
    access never waits for a run (a training epoch takes seconds) and never vanishes.

    s_axis: one packet per sample, the F features then the label, TLAST on the label. The
    wrapper frames by counting (F + 1 words); a TLAST elsewhere, or a label outside 0..M-1,
    sets a sticky STATUS bit. Labels wait in a small FIFO, so the next sample's features keep
    flowing while a sample is in the layers.

    m_axis: one word per sample (class, correct); TLAST on the run's last prediction.

    Parameters
    ----------
    layers : sequence of LayerConfig
        The network's layers (``rtl.network.network_layer_configs``).
    initial_state : optional
        As for ``SSDFANetwork``: weight memories and index tables that start trained.
    layer_counters : bool
        As for ``SSDFANetwork``: without them the counter window keeps its addresses and the
        per-layer counters read 0.

    Raises
    ------
    SsdfaError
        A network the register map cannot address (more than 16 layers, 256 PEs in a layer,
        256 classes or 256 counters; an activation word wider than the stream), or one that
        ``SSDFANetwork`` refuses.
    """

    def __init__(self, *, layers: Sequence[LayerConfig], initial_state=None, layer_counters: bool = True):
        self._MustUse__silence = True  # a refused instance is not an unused design
        configs = tuple(layers)
        if configs and all(isinstance(c, LayerConfig) for c in configs):
            # Checked before the network is built: a refused map costs no elaboration.
            limits = (
                ("layers", len(configs), _field("VERSION", "LAYERS").width),
                ("PEs in a layer", max(c.pes for c in configs), _field("SELECT", "PE").width),
                ("classes", configs[-1].shape.neurons, _field("VERSION", "CLASSES").width),
                ("counters", len(counter_names(len(configs))), _field("VERSION", "COUNTERS").width),
            )
            for what, count, bits in limits:
                if count >= 1 << bits:
                    raise SsdfaError(f"the register map holds at most {(1 << bits) - 1} {what}, not {count}")
        self._network = SSDFANetwork(layers=configs, initial_state=initial_state,
                                     layer_counters=layer_counters)
        network = self._network
        if network.arithmetic.activation.word > regs.STREAM_WIDTH:
            raise SsdfaError(f"an activation word of {network.arithmetic.activation.word} bits does not fit "
                             f"the {regs.STREAM_WIDTH}-bit stream")
        if len(network.host.addr) > regs.DATA_WIDTH:
            raise SsdfaError(f"host addresses of {len(network.host.addr)} bits do not fit the ADDRESS register")
        a, d, s = regs.ADDR_WIDTH, regs.DATA_WIDTH, regs.STREAM_WIDTH
        super().__init__({
            "s_axil_awaddr": In(a), "s_axil_awprot": In(3), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
            "s_axil_wdata": In(d), "s_axil_wstrb": In(d // 8), "s_axil_wvalid": In(1), "s_axil_wready": Out(1),
            "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
            "s_axil_araddr": In(a), "s_axil_arprot": In(3), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
            "s_axil_rdata": Out(d), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
            "s_axis_tdata": In(s), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(s), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "busy": Out(1),
            "done": Out(1),
        })
        self._MustUse__silence = False

    @property
    def network(self) -> SSDFANetwork:
        return self._network

    @property
    def version_word(self) -> int:
        """What the VERSION register reads."""
        network = self._network
        values = {"MAP": regs.MAP_VERSION, "LAYERS": len(network.configs), "CLASSES": network.layer_sizes[-1],
                  "COUNTERS": len(network.counter_names)}
        return sum(value << _field("VERSION", name).lsb for name, value in values.items())

    def elaborate(self, platform):
        m = Module()
        network = self._network
        m.submodules.network = network
        host = network.host
        inputs = network.layer_sizes[0]
        classes = network.layer_sizes[-1]
        counters = len(network.counter_names)

        # -- registers the host sets -------------------------------------------------------------
        samples = Signal(32, name="samples_register")
        select = Signal(32, name="select_register")
        address = Signal(32, name="address_register")
        # The network counts the run's predictions against the SAMPLES it took at START.
        predictions = network.predictions_taken
        done_flag = Signal()
        frame_error = Signal()
        label_error = Signal()
        run_valid = Signal()  # the START pulse towards the network's run stream
        busy = Signal()
        m.d.comb += [
            busy.eq(network.busy | run_valid),
            self.busy.eq(network.busy),
            self.done.eq(done_flag),
            network.run.valid.eq(run_valid),
        ]
        with m.If(network.run.valid & network.run.ready):
            m.d.sync += run_valid.eq(0)
        with m.If(network.done):
            m.d.sync += done_flag.eq(1)

        status = Cat(network.busy, done_flag, frame_error, label_error)
        read_only = {
            "ID": Const(regs.IDENTIFIER, 32),
            "VERSION": Const(self.version_word, 32),
            "SAMPLES": samples,
            "STATUS": status,
            "PREDICTIONS": predictions,
            "SELECT": select,
            "ADDRESS": address,
            "CONTROL": Const(0, 32),
        }

        # -- the AXI4-Lite slave: one access at a time ---------------------------------------------
        #   idle -> write_response                         (registers, learner writes)
        #   idle -> read_response                          (registers)
        #   idle -> read_issue -> read_capture -> read_response   (learner reads)
        # The learner's host port is driven from registers set at the handshake, so no bus
        # input reaches the network combinationally.
        host_layer = Signal.like(host.layer, name="host_layer")
        host_pe = Signal.like(host.pe, name="host_pe")
        host_space = Signal(3, name="host_space")
        host_addr = Signal.like(host.addr, name="host_addr")
        host_w_data = Signal.like(host.w_data, name="host_w_data")
        host_w_en = Signal(name="host_w_en")
        host_r_en = Signal(name="host_r_en")
        m.d.comb += [
            host.layer.eq(host_layer),
            host.pe.eq(host_pe),
            host.space.eq(host_space),
            host.addr.eq(host_addr),
            host.w_data.eq(host_w_data),
            host.w_en.eq(host_w_en),
            host.r_en.eq(host_r_en),
        ]
        m.d.sync += [host_w_en.eq(0), host_r_en.eq(0)]
        bresp = Signal(2)
        rresp = Signal(2)
        rdata = Signal(32)
        m.d.comb += [self.s_axil_bresp.eq(bresp), self.s_axil_rresp.eq(rresp), self.s_axil_rdata.eq(rdata)]

        def word(offset_signal):
            return offset_signal[2:regs.ADDR_WIDTH]

        def is_register(address_word, name: str):
            return equals(address_word, regs.register(name).offset >> 2)

        counter_base = regs.COUNTER_WINDOW >> 2

        def in_counter_window(address_word):
            return (address_word >= counter_base) & (address_word < counter_base + counters)

        select_layer = _slice(select, _field("SELECT", "LAYER"))
        select_pe = _slice(select, _field("SELECT", "PE"))
        select_space = _slice(select, _field("SELECT", "SPACE"))

        def learner_access(m, counter_index=None):
            """Latch the host port's select and address for an access at this handshake."""
            m.d.sync += [host_layer.eq(select_layer), host_pe.eq(select_pe)]
            if counter_index is None:
                m.d.sync += [host_space.eq(select_space), host_addr.eq(address), address.eq(address + 1)]
            else:
                m.d.sync += [host_space.eq(NetworkSpace.COUNTER.value), host_addr.eq(counter_index)]

        # If/Elif over a state register rather than an FSM: complete Verilog cases (lint).
        idle, write_response, read_issue, read_capture, read_response = range(5)
        state = Signal(range(5), name="axil_state")
        with m.If(equals(state, idle)):
            write = self.s_axil_awvalid & self.s_axil_wvalid
            with m.If(write):
                m.d.comb += [self.s_axil_awready.eq(1), self.s_axil_wready.eq(1)]
                waddr = word(self.s_axil_awaddr)
                wdata = self.s_axil_wdata
                full = self.s_axil_wstrb.all()
                m.d.sync += bresp.eq(_OKAY)
                m.d.sync += state.eq(write_response)
                with m.If(~full):
                    m.d.sync += bresp.eq(_SLVERR)
                with m.Elif(is_register(waddr, "CONTROL")):
                    start = wdata[_field("CONTROL", "START").lsb]
                    infer = wdata[_field("CONTROL", "MODE").lsb]
                    with m.If(start & busy):
                        m.d.sync += bresp.eq(_SLVERR)
                    with m.Elif(start):
                        m.d.sync += [
                            run_valid.eq(1),
                            network.run.payload.mode.eq(Mux(infer, NetworkMode.INFER.value, NetworkMode.TRAIN.value)),
                            network.run.payload.samples.eq(samples),
                            done_flag.eq(0),
                            frame_error.eq(0),
                            label_error.eq(0),
                        ]
                with m.Elif(is_register(waddr, "SAMPLES")):
                    m.d.sync += samples.eq(wdata)
                with m.Elif(is_register(waddr, "SELECT")):
                    m.d.sync += select.eq(wdata & sum(f.mask for f in regs.register("SELECT").fields))
                with m.Elif(is_register(waddr, "ADDRESS")):
                    m.d.sync += address.eq(wdata)
                with m.Elif(is_register(waddr, "DATA")):
                    with m.If(busy):
                        m.d.sync += bresp.eq(_SLVERR)
                    with m.Else():
                        learner_access(m)
                        m.d.sync += [host_w_data.eq(wdata), host_w_en.eq(1)]
                with m.Elif(Cat(*(is_register(waddr, r.name) for r in regs.REGISTERS if r.access == "RO")).any()
                            | in_counter_window(waddr)):
                    m.d.sync += bresp.eq(_SLVERR)
                with m.Else():
                    m.d.sync += bresp.eq(_DECERR)
            with m.Elif(self.s_axil_arvalid):
                m.d.comb += self.s_axil_arready.eq(1)
                raddr = word(self.s_axil_araddr)
                m.d.sync += [rresp.eq(_OKAY), rdata.eq(0)]
                m.d.sync += state.eq(read_response)
                learner = is_register(raddr, "DATA") | in_counter_window(raddr)
                with m.If(learner & busy):
                    m.d.sync += rresp.eq(_SLVERR)
                with m.Elif(is_register(raddr, "DATA")):
                    learner_access(m)
                    m.d.sync += host_r_en.eq(1)
                    m.d.sync += state.eq(read_issue)
                with m.Elif(in_counter_window(raddr)):
                    learner_access(m, counter_index=raddr - counter_base)
                    m.d.sync += host_r_en.eq(1)
                    m.d.sync += state.eq(read_issue)
                for name, value in read_only.items():
                    with m.Elif(is_register(raddr, name)):
                        m.d.sync += rdata.eq(value)
                with m.Else():
                    m.d.sync += rresp.eq(_DECERR)
        with m.Elif(state == write_response):
            m.d.comb += self.s_axil_bvalid.eq(1)
            with m.If(self.s_axil_bready):
                m.d.sync += state.eq(idle)
        with m.Elif(state == read_issue):
            m.d.sync += state.eq(read_capture)  # r_en is high now; the word shows on the next clock
        with m.Elif(state == read_capture):
            m.d.sync += [rdata.eq(host.r_data), state.eq(read_response)]
        with m.Elif(state == read_response):
            m.d.comb += self.s_axil_rvalid.eq(1)
            with m.If(self.s_axil_rready):
                m.d.sync += state.eq(idle)

        # -- s_axis: F features then the label, TLAST on the label ---------------------------------
        labels = SyncFIFOBuffered(width=len(network.label.payload), depth=len(network.configs) + 2)
        m.submodules.labels = labels
        position = Signal(range(inputs + 1), name="packet_position")
        on_label = Signal()
        m.d.comb += [
            on_label.eq(position == inputs),
            network.x.payload.eq(self.s_axis_tdata[:len(network.x.payload)]),
            network.x.valid.eq(self.s_axis_tvalid & ~on_label),
            labels.w_data.eq(self.s_axis_tdata[:len(network.label.payload)]),
            labels.w_en.eq(self.s_axis_tvalid & on_label),
            self.s_axis_tready.eq(Mux(on_label, labels.w_rdy, network.x.ready)),
            network.label.payload.eq(labels.r_data),
            network.label.valid.eq(labels.r_rdy),
            labels.r_en.eq(network.label.ready),
        ]
        with m.If(self.s_axis_tvalid & self.s_axis_tready):
            m.d.sync += position.eq(Mux(on_label, 0, position + 1))
            with m.If(self.s_axis_tlast != on_label):
                m.d.sync += frame_error.eq(1)
            with m.If(on_label & (self.s_axis_tdata >= classes)):
                m.d.sync += label_error.eq(1)

        # -- m_axis: one word per prediction, TLAST on the run's last --------------------------------
        prediction = network.prediction
        correct = _field_of(regs.PREDICTION_WORD_FIELDS, "CORRECT")
        m.d.comb += [
            self.m_axis_tdata.eq(prediction.payload.index | (prediction.payload.correct << correct.lsb)),
            self.m_axis_tvalid.eq(prediction.valid),
            prediction.ready.eq(self.m_axis_tready),
            self.m_axis_tlast.eq(network.prediction_last),
        ]
        return m


def _field_of(fields, name: str) -> regs.Field:
    return next(f for f in fields if f.name == name)


def generate_axi_learner(configs: Sequence[LayerConfig], out_dir, *, top: str = AXI_LEARNER_TOP,
                         initial_state=None, header_notes: Sequence[str] = ()) -> Path:
    """Write the wrapped learner's Verilog to ``out_dir/<top>.v`` and return the path (the same
    configuration gives the same bytes). ``header_notes``: more lines for the opening comment."""
    from .verilog import write_module

    from .network import network_header

    learner = AXILearner(layers=configs, initial_state=initial_state)
    header = network_header(learner.network.configs, top, initial_state).replace(
        "an SSDFA network generated by ssdfa (docs/network.md)",
        "an SSDFA network behind AXI4-Lite and AXI4-Stream, generated by ssdfa (docs/bus.md)")
    header += "".join(f"// {note}\n" for note in header_notes)
    return write_module(out_dir, top, header, learner)
