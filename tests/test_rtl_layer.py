"""SSDFALayer (rtl/layer.py) in Amaranth's simulator against the reference model, bit for bit.

Every activation (y and a), every delta, every weight after each update and every LFSR state is
compared with model/neuron_ops.py (forward, feedback_delta with dense_feedback, weight_update)
and the layer's LfsrBank drawn in the §5.3 order, over consecutive samples. The router's
per-neuron error-word counters must read s per neuron per sample, and one sample must take the
clocks of ``layer_cycles``. Random data come from seeded generators; a failure names the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.sim import Simulator

from ssdfa.model.arithmetic import FixedFormat, LfsrBank, Rounding, layer_seed, lfsr_seed
from ssdfa.model.feedback import lfsr_connectivity
from ssdfa.model.layer_config import LayerConfig, layer_config_from_dict
from ssdfa.model.neuron_ops import Activation, dense_feedback, feedback_delta, forward, weight_update
from ssdfa.rtl import shared_modules
from ssdfa.rtl.layer import LayerCommand, LayerSpace, SSDFALayer, layer_cycles

# ------------------------------------------------------------------------------------------
# Data and the reference
# ------------------------------------------------------------------------------------------


@dataclass
class LayerData:
    weights: np.ndarray  # (N, F + 1) raw weight format
    index: np.ndarray  # (N, s) output error indices
    feedback: np.ndarray  # (N, s) raw feedback format
    samples: list  # [(x (F,), e (M,))]


@dataclass
class Expected:
    y: list = field(default_factory=list)  # per sample (N,)
    a: list = field(default_factory=list)
    delta: list = field(default_factory=list)
    weights: list = field(default_factory=list)  # per sample (N, F + 1) after the update
    lfsr: list = field(default_factory=list)  # per sample (N,) states after the sample


def uniform(rng: np.random.Generator, fmt: FixedFormat, shape, scale: int = 1) -> np.ndarray:
    return rng.integers(fmt.min_raw // scale, fmt.max_raw // scale + 1, size=shape, dtype=np.int64)


def random_data(config: LayerConfig, seed: int, samples: int, *, index=None) -> LayerData:
    rng = np.random.default_rng(seed)
    a = config.arithmetic
    n, f, s, m = config.shape.neurons, config.shape.fan_in, config.shape.connections, config.outputs
    if index is None:
        if config.activation is Activation.IDENTITY:
            index = np.arange(n)[:, None]
        else:
            index = np.array([rng.choice(m, size=s, replace=False) for _ in range(n)], dtype=np.int64)
    scale = 1 + (seed % 2) * 7  # odd seeds: smaller values, fewer saturated results
    return LayerData(
        weights=uniform(rng, a.weight, (n, f + 1), scale),
        index=np.asarray(index, dtype=np.int64),
        feedback=uniform(rng, a.feedback, (n, s)),
        samples=[(uniform(rng, a.activation, f, scale), uniform(rng, a.error, m, scale)) for _ in range(samples)],
    )


def model_run(config: LayerConfig, data: LayerData) -> Expected:
    """The model's training samples for one layer (§9 steps 1, 3, 4), draws in §5.3 order."""
    a, act = config.arithmetic, config.activation
    stoch = a.update_rounding is Rounding.STOCH
    bank = LfsrBank.for_layer(layer_seed(a.seed, config.index), config.shape.neurons)
    feedback = dense_feedback(data.index, data.feedback, config.outputs, dtype=np.int64)
    weights = data.weights
    out = Expected()
    for x, e in data.samples:
        result = forward(weights, x[None, :], a, act)
        if act is Activation.IDENTITY:
            delta, delta_frac = e[data.index[:, 0]], a.error.frac_bits  # §6.2
        else:
            bits = bank.draw(1).T.astype(np.int64) if stoch else None
            delta = feedback_delta(e[None, :], result.derivative, feedback, a, act, random_bits=bits)[0]
            delta_frac = a.delta.frac_bits
        bits = bank.draw(weights.shape[1]).astype(np.int64) if stoch else None
        weights = weight_update(weights, delta[None, :], delta_frac, x[None, :], a, random_bits=bits)
        out.y.append(result.pre_activation[0].tolist())
        out.a.append(result.activation[0].tolist())
        out.delta.append(delta.tolist())
        out.weights.append(weights.tolist())
        out.lfsr.append(bank.states.astype(np.int64).tolist())
    return out


# ------------------------------------------------------------------------------------------
# The bench
# ------------------------------------------------------------------------------------------


def _raw(value: int, fmt: FixedFormat, width: int) -> int:
    value &= (1 << width) - 1
    if fmt.signed and value >> (fmt.word - 1) & 1 and value < (1 << fmt.word):
        return value - (1 << fmt.word)
    if fmt.signed and value >= (1 << (width - 1)):
        return value - (1 << width)
    return value


@dataclass
class Run:
    y: list = field(default_factory=list)  # per sample, N pairs (y, a)
    delta: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    lfsr: list = field(default_factory=list)
    counts: list = field(default_factory=list)  # per-neuron error words after the last sample
    received: int = 0
    delivered: list = field(default_factory=list)
    done_clocks: list = field(default_factory=list)  # clock of each `done`, counted from the first SAMPLE
    cmd_clocks: list = field(default_factory=list)
    lockstep_clocks: int = 0  # clocks on which the PEs' handshakes were compared
    pe_stall_clocks: int = 0  # clocks on which the PEs held an output that their bank had no room for


def run_layer(layer: SSDFALayer, data: LayerData, *, back_to_back=False, throttle=None, y_ready_chance=0.7,
              host_table=False, host_weights=False) -> Run:
    """Load the layer, run every sample with SAMPLE commands, read everything back.

    ``back_to_back`` holds ``cmd`` at SAMPLE and reads back only at the end (the co-simulation
    pattern); otherwise the bench reads deltas, weights and LFSR states after every sample.
    ``throttle`` (a random.Random) drops x/e ``valid`` at random and raises y ``ready`` with
    probability ``y_ready_chance`` on each clock.
    """
    cfg = layer.config
    a = cfg.arithmetic
    n_neurons, fan_in, s = cfg.shape.neurons, cfg.shape.fan_in, cfg.shape.connections
    slots = cfg.neurons_per_pe
    stoch = a.update_rounding is Rounding.STOCH
    output_layer = cfg.activation is Activation.IDENTITY
    delta_fmt = a.error if output_layer else a.delta
    width = len(layer.host.r_data)
    seeds = [lfsr_seed(layer_seed(a.seed, cfg.index), i) for i in range(n_neurons)]
    run = Run()
    clock = [0]
    finished = [False]

    def chance(p):
        return throttle is None or throttle.random() < p

    async def write(ctx, pe, space, addr, value):
        ctx.set(layer.host.pe, pe)
        ctx.set(layer.host.space, space)
        ctx.set(layer.host.addr, addr)
        ctx.set(layer.host.w_data, int(value) & ((1 << width) - 1))
        ctx.set(layer.host.w_en, 1)
        await ctx.tick()
        ctx.set(layer.host.w_en, 0)

    async def read(ctx, pe, space, count, fmt=None):
        values = []
        ctx.set(layer.host.pe, pe)
        ctx.set(layer.host.space, space)
        ctx.set(layer.host.r_en, 1)
        for addr in range(count):
            ctx.set(layer.host.addr, addr)
            await ctx.tick()
            word = ctx.get(layer.host.r_data)
            values.append(word if fmt is None else _raw(word, fmt, width))
        ctx.set(layer.host.r_en, 0)
        return values

    def read_weights(ctx):
        rows = []
        for pe in layer.pes:
            memory = pe.weight_memory.data
            for k in range(slots):
                rows.append([ctx.get(memory[k * (fan_in + 1) + j]) for j in range(fan_in + 1)])
        return rows

    async def readback(ctx):
        run.delta.append(sum([await read(ctx, p, LayerSpace.DELTA, slots, delta_fmt) for p in range(cfg.pes)], []))
        if host_weights:
            words = []
            for p in range(cfg.pes):
                words += await read(ctx, p, LayerSpace.WEIGHT, slots * (fan_in + 1), a.weight)
            run.weights.append(np.array(words).reshape(n_neurons, fan_in + 1).tolist())
        else:
            run.weights.append(read_weights(ctx))
        if stoch:
            run.lfsr.append(sum([await read(ctx, p, LayerSpace.LFSR, slots) for p in range(cfg.pes)], []))

    async def main(ctx):
        for p, pe in enumerate(layer.pes):
            memory = pe.weight_memory.data
            for k in range(slots):
                neuron = p * slots + k
                for j in range(fan_in + 1):
                    if host_weights:
                        await write(ctx, p, LayerSpace.WEIGHT, k * (fan_in + 1) + j, data.weights[neuron, j])
                    else:
                        ctx.set(memory[k * (fan_in + 1) + j], int(data.weights[neuron, j]))
                if not output_layer:
                    for t in range(s):
                        await write(ctx, p, LayerSpace.FEEDBACK, k * s + t, data.feedback[neuron, t])
                        if host_table:
                            await write(ctx, p, LayerSpace.INDEX, k * s + t, data.index[neuron, t])
                if stoch:
                    await write(ctx, p, LayerSpace.LFSR, k, seeds[neuron])
        ctx.set(layer.clear_counters, 1)
        await ctx.tick()
        ctx.set(layer.clear_counters, 0)
        started[0] = True
        ctx.set(layer.cmd.payload, LayerCommand.SAMPLE)
        for sample in range(len(data.samples)):
            ctx.set(layer.cmd.valid, 1)
            while not ctx.get(layer.cmd.ready):
                await ctx.tick()
            if back_to_back:
                await ctx.tick()
                continue
            await ctx.tick()
            ctx.set(layer.cmd.valid, 0)
            while not ctx.get(layer.done):
                await ctx.tick()
            await ctx.tick()
            await readback(ctx)
        ctx.set(layer.cmd.valid, 0)
        while ctx.get(layer.busy):
            await ctx.tick()
        while len(run.y) < len(data.samples) or len(run.y[-1]) < n_neurons:
            await ctx.tick()
        if back_to_back:
            await readback(ctx)
        if layer.router is not None and layer.router.neuron_counters:
            run.counts = sum([await read(ctx, p, LayerSpace.ERROR_COUNT, slots) for p in range(cfg.pes)], [])
        run.received = ctx.get(layer.errors_received)
        run.delivered = [ctx.get(d) for d in layer.errors_delivered]
        finished[0] = True

    started = [False]

    # Far more clocks than any run here takes even with every stream throttled: a layer that
    # loses an item fails here instead of waiting forever.
    clock_limit = 1000 + 50 * len(data.samples) * (3 * slots * (fan_in + 1) + slots * s + n_neurons + 50)

    async def clocks(ctx):
        # Values sampled at each clock edge: no race with the other testbenches' writes.
        async for _, _, valid, ready, done in ctx.tick().sample(layer.cmd.valid, layer.cmd.ready, layer.done):
            if finished[0]:
                return
            assert clock[0] < clock_limit, f"the layer hung: {clock[0]} clocks"
            if started[0]:
                if valid and ready:
                    run.cmd_clocks.append(clock[0])
                if done:
                    run.done_clocks.append(clock[0])
                clock[0] += 1

    async def drive_x(ctx):
        while not started[0]:
            await ctx.tick()
        for x, _ in data.samples:
            for value in x:
                ctx.set(layer.x.payload, int(value))
                while True:
                    valid = chance(0.7)
                    ctx.set(layer.x.valid, valid)
                    taken = valid and ctx.get(layer.x.ready)
                    await ctx.tick()
                    if taken:
                        break
        ctx.set(layer.x.valid, 0)

    async def drive_e(ctx):
        while not started[0]:
            await ctx.tick()
        for _, e in data.samples:
            for value in e:
                ctx.set(layer.e.payload, int(value))
                while True:
                    valid = chance(0.7)
                    ctx.set(layer.e.valid, valid)
                    taken = valid and ctx.get(layer.e.ready)
                    await ctx.tick()
                    if taken:
                        break
        ctx.set(layer.e.valid, 0)

    async def monitor_y(ctx):
        while not finished[0]:
            ready = chance(y_ready_chance)
            ctx.set(layer.y.ready, ready)
            if ready and ctx.get(layer.y.valid):
                if not run.y or len(run.y[-1]) == n_neurons:
                    run.y.append([])
                run.y[-1].append((ctx.get(layer.y.payload.y), ctx.get(layer.y.payload.a)))
            await ctx.tick()

    # The layer's x fork and its router's error fork let PE 0's `ready` decide for every PE
    # (rtl/layer.py): check on every clock that the PEs' handshakes are equal.
    handshakes = [[pe.cmd.ready, pe.x.ready, pe.y.valid, pe.y.ready, pe.busy] for pe in layer.pes]
    if layer.router is not None:
        for row, pe in zip(handshakes, layer.pes):
            row.append(pe.e.ready)
    flat = [signal for row in handshakes for signal in row]

    async def check_lockstep(ctx):
        async for _, _, *values in ctx.tick().sample(*flat):
            if finished[0]:
                return
            rows = [values[i:i + len(handshakes[0])] for i in range(0, len(values), len(handshakes[0]))]
            assert all(row == rows[0] for row in rows), (
                f"PEs out of lockstep at clock {clock[0]}: (cmd.ready, x.ready, y.valid, y.ready, busy, e.ready) = {rows}")
            run.lockstep_clocks += 1
            run.pe_stall_clocks += rows[0][2] and not rows[0][3]

    sim = Simulator(layer)
    sim.add_clock(1e-8)
    sim.add_testbench(main)
    sim.add_testbench(clocks, background=True)
    sim.add_testbench(check_lockstep, background=True)
    sim.add_testbench(drive_x, background=True)
    sim.add_testbench(drive_e, background=True)
    sim.add_testbench(monitor_y, background=True)
    sim.run()
    return run


def check(config: LayerConfig, seed: int, samples: int = 3, *, layer_kwargs=None, index=None, **bench) -> Run:
    """Run the layer and the model on the same random data; assert every value matches."""
    data = random_data(config, seed, samples, index=index)
    kwargs = {"neuron_counters": True}
    lfsr = "lfsr_seed" in (layer_kwargs or {})
    if not bench.get("host_table") and not lfsr and config.activation is not Activation.IDENTITY:
        kwargs["index_table"] = data.index.tolist()
    kwargs.update(layer_kwargs or {})
    layer = SSDFALayer(config=config, **kwargs)
    run = run_layer(layer, data, **bench)
    expected = model_run(config, data)
    where = f"seed {seed}, config {config.to_dict()}"
    stoch = config.arithmetic.update_rounding is Rounding.STOCH
    for n in range(samples):
        assert [v[0] for v in run.y[n]] == expected.y[n], f"y, sample {n}, {where}"
        assert [v[1] for v in run.y[n]] == expected.a[n], f"a, sample {n}, {where}"
    checked = [samples - 1] if bench.get("back_to_back") else range(samples)
    for i, n in enumerate(checked):
        assert run.delta[i] == expected.delta[n], f"delta, sample {n}, {where}"
        assert run.weights[i] == expected.weights[n], f"weights, sample {n}, {where}"
        if stoch:
            assert run.lfsr[i] == expected.lfsr[n], f"LFSR states, sample {n}, {where}"
    # Table 1's data movement, read off the router: M words in, exactly s per neuron out.
    s, slots = config.shape.connections, config.neurons_per_pe
    assert run.counts == [s * samples] * config.shape.neurons, where
    assert run.received == config.outputs * samples, where
    assert run.delivered == [slots * s * samples] * config.pes, where
    assert run.lockstep_clocks > 0, where
    return run


def make_config(*, fan_in, neurons, pes, outputs, connections=1, activation="relu", formats=None,
                rounding="RND", update_rounding="STOCH", overflow="SAT", shift=2, seed=1, index=0):
    return layer_config_from_dict({
        "layer": {"fan_in": fan_in, "neurons": neurons, "pes": pes, "outputs": outputs,
                  "connections": connections, "activation": activation, "index": index},
        "formats": formats or {},
        "modes": {"rounding": rounding, "update_rounding": update_rounding, "overflow": overflow,
                  "shift": shift, "seed": seed},
    })


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------

Q8 = {"activation": "SQ(3,5)", "weight": "SQ(2,6)", "feedback": "SQ(1,7)", "error": "SQ(2,6)", "delta": "SQ(2,6)"}
Q12 = {"activation": "SQ(4,8)", "weight": "SQ(2,10)", "feedback": "SQ(2,10)", "error": "SQ(3,9)", "delta": "SQ(1,11)"}

CASES = {
    # name: configuration (several word widths, every rounding mode, SSDFA and SDFA s=2,
    # 1 and several neurons per PE, P in {1, 2, 4}, every activation)
    "ssdfa-relu-p2-stoch": make_config(fan_in=3, neurons=4, pes=2, outputs=3),
    "sdfa2-hardtanh-p1-q8": make_config(fan_in=2, neurons=3, pes=1, outputs=4, connections=2,
                                        activation="hardtanh", formats=Q8, rounding="TRN",
                                        update_rounding="RND_CONV", overflow="WRAP", shift=1),
    "ssdfa-tanh-p4-k1-stoch": make_config(fan_in=4, neurons=4, pes=4, outputs=5, activation="tanh",
                                          formats=Q8, rounding="RND_CONV", seed=7, index=1),
    "sdfa2-relu-p4-k2-q12-stoch": make_config(fan_in=3, neurons=8, pes=4, outputs=6, connections=2,
                                              formats=Q12, rounding="TRN_ZERO", overflow="WRAP", shift=0),
    "ssdfa-hardtanh-p2-trn-zero": make_config(fan_in=5, neurons=6, pes=2, outputs=10, activation="hardtanh",
                                              formats=Q12, update_rounding="TRN_ZERO", shift=3),
    "output-layer-identity-p2": make_config(fan_in=3, neurons=4, pes=2, outputs=4, activation="identity",
                                            formats=Q12, update_rounding="RND", index=2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_the_model_bit_for_bit(name):
    check(CASES[name], seed=sum(map(ord, name)))


def random_case(seed: int) -> LayerConfig:
    rng = random.Random(seed)

    def fmt(lo=5, hi=14):
        word = rng.randint(lo, hi)
        return f"SQ({(i := rng.randint(1, min(4, word)))},{word - i})"

    pes = rng.choice([1, 2, 4])
    activation = rng.choice(["relu", "hardtanh", "tanh"])
    return make_config(
        fan_in=rng.randint(1, 4), neurons=pes * rng.randint(1, 3), pes=pes, outputs=rng.randint(2, 6),
        connections=rng.choice([1, 2]), activation=activation,
        formats={"activation": fmt(hi=9 if activation == "tanh" else 14), "weight": fmt(), "feedback": fmt(),
                 "error": fmt(), "delta": fmt()},
        rounding=rng.choice(["TRN", "TRN_ZERO", "RND", "RND_CONV"]),
        update_rounding=rng.choice(["TRN", "RND", "RND_CONV", "STOCH", "STOCH"]),
        overflow=rng.choice(["WRAP", "SAT"]), shift=rng.randint(0, 5), seed=rng.randint(0, 99),
        index=rng.randint(0, 3),
    )


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_layer_matches_the_model_on_random_configurations_under_random_stalls(seed):
    config = random_case(seed)
    print(f"seed {seed}: {config.to_dict()}")
    check(config, seed, throttle=random.Random(seed))


def test_a_slow_consumer_of_y_stalls_the_next_forward_pass_and_loses_nothing():
    """Samples back to back and y read out slower than the next forward pass computes: each
    PE's first output of the next sample waits for its bank's room (the PEs' ``y.ready``), and
    the whole forward pipeline stalls behind it (the other layer tests never fill a bank)."""
    config = make_config(fan_in=2, neurons=4, pes=2, outputs=3, formats=Q12)
    run = check(config, seed=7, samples=3, back_to_back=True, throttle=random.Random(7), y_ready_chance=0.03)
    assert run.pe_stall_clocks > 0, "the consumer was never slow enough to stall a PE"


def test_index_table_and_weights_loaded_through_the_host_port_give_the_same_training():
    config = make_config(fan_in=2, neurons=4, pes=2, outputs=3, connections=2, formats=Q12)
    check(config, seed=5, samples=2, host_table=True, host_weights=True)


def test_connectivity_regenerated_from_the_lfsr_trains_like_the_model_with_its_table():
    config = make_config(fan_in=2, neurons=6, pes=3, outputs=4, formats=Q12)
    index = lfsr_connectivity(2024, 6, 4)[:, None]
    check(config, seed=11, samples=2, index=index, layer_kwargs={"lfsr_seed": 2024})


def test_one_sample_takes_the_formula_clocks_and_back_to_back_samples_one_period_each():
    config = make_config(fan_in=4, neurons=6, pes=2, outputs=3, connections=2, formats=Q12)
    samples = 4
    run = check(config, seed=21, samples=samples, back_to_back=True)
    cycles = layer_cycles(fan_in=4, neurons_per_pe=3, connections=2)
    assert cycles.sample == 2 * 3 * (4 + 1) + 3 * 2 + 28
    # Clocks counted from the one at which the first SAMPLE transferred; each `done` shares its
    # clock with the next SAMPLE's transfer.
    first = run.cmd_clocks[0]
    assert [c - first for c in run.cmd_clocks] == [cycles.sample * i for i in range(samples)]
    assert [c - first for c in run.done_clocks] == [cycles.sample * (i + 1) for i in range(samples)]


def test_each_command_takes_its_formula_clocks():
    config = make_config(fan_in=3, neurons=4, pes=2, outputs=2, formats=Q12)
    layer = SSDFALayer(config=config, index_table=[[0], [1], [1], [0]])
    cycles = layer.cycles
    measured = {}

    async def testbench(ctx):
        ctx.set(layer.y.ready, 1)
        ctx.set(layer.x.valid, 1)
        ctx.set(layer.e.valid, 1)
        for command in (LayerCommand.FORWARD, LayerCommand.ERROR, LayerCommand.UPDATE):
            ctx.set(layer.cmd.payload, command)
            ctx.set(layer.cmd.valid, 1)
            await ctx.tick()
            ctx.set(layer.cmd.valid, 0)
            clocks = 1  # from the clock of the transfer to the clock of `done`
            while not ctx.get(layer.done):
                await ctx.tick()
                clocks += 1
            measured[command] = clocks

    sim = Simulator(layer)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert measured == {LayerCommand.FORWARD: cycles.forward, LayerCommand.ERROR: cycles.error,
                        LayerCommand.UPDATE: cycles.update}


def test_inference_only_layer_computes_the_model_forward_pass():
    config = make_config(fan_in=3, neurons=4, pes=2, outputs=3, formats=Q12).with_(learning=False)
    data = random_data(config, seed=31, samples=2)
    layer = SSDFALayer(config=config)
    assert layer.router is None and not hasattr(layer, "e")
    outputs = []

    async def testbench(ctx):
        for p, pe in enumerate(layer.pes):
            for k in range(2):
                for j in range(4):
                    ctx.set(pe.weight_memory.data[k * 4 + j], int(data.weights[p * 2 + k, j]))
        ctx.set(layer.y.ready, 1)
        for n, (x, _) in enumerate(data.samples):
            ctx.set(layer.cmd.payload, LayerCommand.FORWARD)
            ctx.set(layer.cmd.valid, 1)
            await ctx.tick()
            ctx.set(layer.cmd.valid, 0)
            taken = 0
            while taken < 3 or len(outputs) < 4 * (n + 1):
                ctx.set(layer.x.valid, taken < 3)
                ctx.set(layer.x.payload, int(x[min(taken, 2)]))
                took = taken < 3 and ctx.get(layer.x.ready)
                if ctx.get(layer.y.valid):
                    outputs.append((ctx.get(layer.y.payload.y), ctx.get(layer.y.payload.a)))
                await ctx.tick()
                taken += took
            ctx.set(layer.x.valid, 0)
            while ctx.get(layer.busy):
                await ctx.tick()

    sim = Simulator(layer)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    weights = data.weights
    for n, (x, _) in enumerate(data.samples):
        result = forward(weights, x[None, :], config.arithmetic, config.activation)
        got = outputs[4 * n:4 * n + 4]
        assert [v[0] for v in got] == result.pre_activation[0].tolist(), f"y, sample {n}"
        assert [v[1] for v in got] == result.activation[0].tolist(), f"a, sample {n}"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"config": "relu"}, TypeError, "config must be a LayerConfig"),
        ({"config": make_config(fan_in=2, neurons=4, pes=2, outputs=3, activation="identity")}, ValueError,
         r"outputs \(3\) must equal neurons \(4\)"),
        ({"config": make_config(fan_in=2, neurons=2, pes=1, outputs=3), "index_table": [[0], [3]]}, ValueError,
         "neuron 1 selects output error 3"),
    ],
)
def test_bad_parameters_are_refused_naming_the_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        SSDFALayer(**kwargs)


LINT_CASES = {
    "sdfa2-tanh-p2-counters": (make_config(fan_in=3, neurons=4, pes=2, outputs=3, connections=2,
                                           activation="tanh", formats=Q8), {"neuron_counters": True}),
    "k1-f1-m1-p3": (make_config(fan_in=1, neurons=3, pes=3, outputs=1, formats=Q8), {"neuron_counters": True}),
    "lfsr-p1": (make_config(fan_in=2, neurons=3, pes=1, outputs=5, formats=Q8), {"lfsr_seed": 9}),
    "output-layer": (make_config(fan_in=2, neurons=4, pes=4, outputs=4, activation="identity", formats=Q8), {}),
    "inference-only": (make_config(fan_in=2, neurons=4, pes=2, outputs=4, formats=Q8).with_(learning=False), {}),
}


@pytest.mark.parametrize("name", list(LINT_CASES))
def test_layer_verilog_lints_clean(name, require_tool, tmp_path):
    require_tool("verilator")
    from ssdfa.sim.runner import lint_verilog

    config, kwargs = LINT_CASES[name]
    path = tmp_path / "ssdfa_layer.v"
    path.write_text(shared_modules.convert(SSDFALayer(config=config, **kwargs), "ssdfa_layer"))
    lint_verilog(path, "ssdfa_layer")
