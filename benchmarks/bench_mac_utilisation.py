"""MAC utilisation of SSDFALayer: useful MACs / (PEs x clock cycles), in Amaranth's simulator.

A 64-input, 100-neuron relu layer on 10 PEs (K = 10 neurons per PE, SSDFA, M = 10 output
errors, the default formats, STOCH update rounding) trains on a few random samples. A wrapper
feeds x and the output errors from preloaded memories and stores the activations in a memory,
so the design runs every sample with Python touching it only before the first and after the last.

Useful MACs are the forward multiply-accumulates, the bias included (N (F + 1) per sample), plus
the weight updates (one read-modify-write per weight, N (F + 1) per sample): 2 N (F + 1). The
K s delta products of the ERROR phase are not counted. Cycles run from the first SAMPLE
command's transfer to the last one's ``done``.

Two ways of supplying the errors are measured:

- ``errors ready``: sample t's errors are offered as soon as the router can take them (they
  arrive while the forward pass runs), as when a testbench replays precomputed errors;
- ``errors after activations``: sample t's errors are offered only after the layer's last
  activation of sample t has left on ``y`` (a downstream that answers in zero time).

The final weights and every activation are checked against the reference model, so the figure is
that of a layer that computes the right thing. Run: ``python benchmarks/bench_mac_utilisation.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from ssdfa.cli import run_script
from ssdfa.cli._argtypes import positive_int
from ssdfa.model.arithmetic import LfsrBank, Rounding, layer_seed, lfsr_seed
from ssdfa.model.layer_config import layer_config_from_dict
from ssdfa.model.neuron_ops import dense_feedback, feedback_delta, forward, weight_update
from ssdfa.rtl.layer import LayerCommand, LayerSpace, SSDFALayer
from ssdfa.rtl.signatures import format_shape


class SampleFeeder(Elaboratable):
    """Runs ``samples`` SAMPLE commands back to back, feeding x and e from memories.

    ``errors_after_activations`` holds sample t's errors back until N (t + 1) activations have
    left the layer. The activations are stored in ``outputs`` (``a`` only), neuron order.
    """

    def __init__(self, layer: SSDFALayer, inputs: np.ndarray, errors: np.ndarray, *,
                 errors_after_activations: bool):
        cfg = layer.config
        self.layer = layer
        self.samples = inputs.shape[0]
        self.errors_after_activations = errors_after_activations
        a = cfg.arithmetic
        self.x_memory = Memory(shape=format_shape(a.activation), depth=inputs.size, init=inputs.ravel().tolist())
        self.e_memory = Memory(shape=format_shape(a.error), depth=errors.size, init=errors.ravel().tolist())
        self.outputs = Memory(shape=format_shape(a.activation), depth=self.samples * cfg.shape.neurons, init=[])
        self.go = Signal()  # set once the host has loaded the layer
        self.first_cmd = Signal(32)
        self.last_done = Signal(32)
        self.clock = Signal(32)

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        cfg = layer.config
        m.submodules.layer = layer
        m.submodules.x_memory = self.x_memory
        m.submodules.e_memory = self.e_memory
        m.submodules.outputs = self.outputs
        neurons, outputs = cfg.shape.neurons, cfg.outputs

        m.d.sync += self.clock.eq(self.clock + 1)
        issued = Signal(range(self.samples + 1))
        m.d.comb += [
            layer.cmd.valid.eq(self.go & (issued < self.samples)),
            layer.cmd.payload.eq(LayerCommand.SAMPLE),
        ]
        with m.If(layer.cmd.valid & layer.cmd.ready):
            m.d.sync += issued.eq(issued + 1)
            with m.If(~issued.any()):  # `== 0` would print as `!issued` (a lint warning)
                m.d.sync += self.first_cmd.eq(self.clock)
        with m.If(layer.done):
            m.d.sync += self.last_done.eq(self.clock)

        x_read = self.x_memory.read_port(domain="comb")
        x_addr = Signal(range(self.x_memory.depth + 1))
        m.d.comb += [
            x_read.addr.eq(x_addr),
            layer.x.payload.eq(x_read.data),
            layer.x.valid.eq(self.go & (x_addr < self.x_memory.depth)),
        ]
        with m.If(layer.x.valid & layer.x.ready):
            m.d.sync += x_addr.eq(x_addr + 1)

        y_count = Signal(range(self.outputs.depth + 1))
        y_write = self.outputs.write_port()
        m.d.comb += [
            layer.y.ready.eq(1),
            y_write.addr.eq(y_count),
            y_write.data.eq(layer.y.payload.a),
            y_write.en.eq(layer.y.valid),
        ]
        with m.If(layer.y.valid):
            m.d.sync += y_count.eq(y_count + 1)

        e_read = self.e_memory.read_port(domain="comb")
        e_addr = Signal(range(self.e_memory.depth + 1))
        e_sample = Signal(range(self.samples + 1))  # the sample whose errors are being sent
        e_word = Signal(range(outputs))
        allowed = self.go & (e_addr < self.e_memory.depth)
        if self.errors_after_activations:
            allowed &= y_count >= (e_sample + 1) * neurons
        m.d.comb += [e_read.addr.eq(e_addr), layer.e.payload.eq(e_read.data), layer.e.valid.eq(allowed)]
        with m.If(layer.e.valid & layer.e.ready):
            m.d.sync += e_addr.eq(e_addr + 1)
            with m.If(e_word == outputs - 1):
                m.d.sync += [e_word.eq(0), e_sample.eq(e_sample + 1)]
            with m.Else():
                m.d.sync += e_word.eq(e_word + 1)
        return m


def bench_config(fan_in=64, neurons=100, pes=10, outputs=10):
    return layer_config_from_dict({
        "layer": {"fan_in": fan_in, "neurons": neurons, "pes": pes, "outputs": outputs, "activation": "relu"},
        "modes": {"rounding": "RND", "update_rounding": "STOCH", "overflow": "SAT", "shift": 4, "seed": 1},
    })


def run(samples: int, errors_after_activations: bool, seed: int = 0, config=None) -> dict:
    config = config or bench_config()
    a = config.arithmetic
    n, f, m, p, k = config.shape.neurons, config.shape.fan_in, config.outputs, config.pes, config.neurons_per_pe
    rng = np.random.default_rng(seed)
    weights = rng.integers(a.weight.min_raw // 8, a.weight.max_raw // 8, size=(n, f + 1), dtype=np.int64)
    index = rng.integers(0, m, size=(n, 1))
    feedback = rng.integers(a.feedback.min_raw // 4, a.feedback.max_raw // 4, size=(n, 1), dtype=np.int64)
    inputs = rng.integers(0, a.activation.max_raw // 4, size=(samples, f), dtype=np.int64)
    errors = rng.integers(a.error.min_raw // 8, a.error.max_raw // 8, size=(samples, m), dtype=np.int64)

    layer = SSDFALayer(config=config, index_table=index.tolist())
    feeder = SampleFeeder(layer, inputs, errors, errors_after_activations=errors_after_activations)
    seeds = [lfsr_seed(layer_seed(a.seed, config.index), i) for i in range(n)]
    # The weights are the PEs' memory contents at reset (what the host port would write, without
    # simulating its N (F + 1) clocks); feedback constants and LFSR seeds go through the port.
    for pe_index, pe in enumerate(layer.pes):
        pe.weight_memory.init = weights[pe_index * k:(pe_index + 1) * k].ravel().tolist()
    result = {}

    async def testbench(ctx):
        width = len(layer.host.w_data)
        for pe_index in range(p):
            for slot in range(k):
                neuron = pe_index * k + slot
                for space, addr, value in ((LayerSpace.FEEDBACK, slot, feedback[neuron, 0]),
                                           (LayerSpace.LFSR, slot, seeds[neuron])):
                    ctx.set(layer.host.pe, pe_index)
                    ctx.set(layer.host.space, space)
                    ctx.set(layer.host.addr, addr)
                    ctx.set(layer.host.w_data, int(value) & ((1 << width) - 1))
                    ctx.set(layer.host.w_en, 1)
                    await ctx.tick()
        ctx.set(layer.host.w_en, 0)
        ctx.set(feeder.go, 1)
        start = time.perf_counter()
        begin = ctx.get(feeder.clock)
        await ctx.tick().until(layer.completed == samples)
        await ctx.tick().repeat(n + 2)  # let the last activations leave
        result["wall"] = time.perf_counter() - start
        result["simulated"] = ctx.get(feeder.clock) - begin
        result["cycles"] = ctx.get(feeder.last_done) - ctx.get(feeder.first_cmd)
        result["activations"] = [ctx.get(feeder.outputs.data[i]) for i in range(samples * n)]
        result["weights"] = np.concatenate([
            np.array([ctx.get(pe.weight_memory.data[i]) for i in range(k * (f + 1))]).reshape(k, f + 1)
            for pe in layer.pes
        ])

    sim = Simulator(feeder)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()

    # The reference model, for the check.
    bank = LfsrBank.for_layer(layer_seed(a.seed, config.index), n)
    dense = dense_feedback(index, feedback, m, dtype=np.int64)
    w = weights
    expected = []
    for x, e in zip(inputs, errors):
        fwd = forward(w, x[None, :], a, config.activation)
        expected += fwd.activation[0].tolist()
        bits = bank.draw(1).T.astype(np.int64) if a.update_rounding is Rounding.STOCH else None
        delta = feedback_delta(e[None, :], fwd.derivative, dense, a, config.activation, random_bits=bits)
        bits = bank.draw(f + 1).astype(np.int64) if a.update_rounding is Rounding.STOCH else None
        w = weight_update(w, delta, a.delta.frac_bits, x[None, :], a, random_bits=bits)
    assert result["activations"] == expected, "activations differ from the model"
    assert np.array_equal(result["weights"], w), "weights differ from the model"

    # From the clock of the first transfer to that of the last `done`: `done` shares its clock
    # with the next command's transfer, so this is samples x the back-to-back period.
    cycles = result["cycles"]
    useful = samples * 2 * n * (f + 1)
    result.update(
        cycles=cycles, useful=useful, utilisation=useful / (p * cycles),
        formula=layer.cycles.sample * samples,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=positive_int, default=3, help="training samples (default 3)")
    args = parser.parse_args()
    config = bench_config()
    n, f, p = config.shape.neurons, config.shape.fan_in, config.pes
    print(f"layer: fan-in F={f}, N={n} neurons on P={p} PEs (K={config.neurons_per_pe}), "
          f"M={config.outputs} errors, s={config.shape.connections}, {args.samples} samples")
    print("useful MACs per sample = forward MACs incl. bias N(F+1) + weight updates N(F+1) "
          f"= {2 * n * (f + 1)}")
    for after in (False, True):
        r = run(args.samples, errors_after_activations=after)
        label = "errors after activations" if after else "errors ready"
        print(f"{label:>26}: {r['cycles']} cycles (formula {r['formula']} with errors ready), "
              f"utilisation {r['utilisation']:.4f}; model check passed; "
              f"simulated {r['simulated']} cycles in {r['wall']:.1f} s")


if __name__ == "__main__":
    run_script(main)
