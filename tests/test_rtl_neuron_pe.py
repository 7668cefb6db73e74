"""NeuronPE (rtl/neuron_pe.py) in Amaranth's simulator against the reference model, bit for bit.

Every check compares the PE with model/neuron_ops.py (forward, feedback_delta, weight_update)
and the model's LfsrBank: every y, a and f', every delta, every weight and every LFSR state,
over consecutive samples so that the LFSR state carries over. Random configurations come from
a seeded generator; a failing case prints its seed and configuration.
"""

from __future__ import annotations

import gc
import random
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from ssdfa.model.arithmetic import FixedFormat, LfsrBank, Overflow, Rounding, lfsr_seed
from ssdfa.model.layer_config import LayerConfig, layer_config_from_dict
from ssdfa.model.neuron_ops import Activation, feedback_delta, forward, weight_update
from ssdfa.rtl.neuron_pe import NeuronPE, phase_cycles
from ssdfa.rtl.signatures import Command, Space

# ------------------------------------------------------------------------------------------
# The reference: one PE's neurons through the model
# ------------------------------------------------------------------------------------------


@dataclass
class SampleResult:
    y: np.ndarray  # (K,)
    a: np.ndarray  # (K,)
    fprime: np.ndarray  # (K,)
    delta: np.ndarray | None  # (K,)
    weights: np.ndarray  # (K, N + 1) after the update
    lfsr: np.ndarray | None  # (K,) states after the sample


def model_sample(config: LayerConfig, weights, feedback, bank, x, e, *, learning=True, skip_delta_draw=False,
                 reverse_weight_draws=False) -> SampleResult:
    """One training sample of the PE's K neurons, by the model (§9 steps 1, 3, 4 for one layer).

    ``feedback`` is (K, s); neuron k's t-th error word ``e[k, t]`` stands for output ``k s + t``.
    ``skip_delta_draw`` and ``reverse_weight_draws`` build deliberately wrong draw orders.
    """
    cfg, act = config.arithmetic, config.activation
    K, s = weights.shape[0], config.shape.connections
    stoch = cfg.update_rounding is Rounding.STOCH
    result = forward(weights, x[None, :], cfg, act)
    y, a, fprime = result.pre_activation[0], result.activation[0], result.derivative[0]
    if not learning:
        return SampleResult(y, a, fprime, None, weights, None)
    if act is Activation.IDENTITY:
        delta, delta_frac = e[:, 0].copy(), cfg.error.frac_bits  # §6.2
    else:
        errors = e.reshape(1, K * s)
        dense = np.zeros((K, K * s), dtype=np.int64)
        for k in range(K):
            dense[k, k * s:(k + 1) * s] = feedback[k]
        bits = None
        if stoch and not skip_delta_draw:
            bits = bank.draw(1).T.astype(np.int64)
        elif stoch:
            bits = np.zeros((1, K), dtype=np.int64)
        delta = feedback_delta(errors, result.derivative, dense, cfg, act, random_bits=bits)[0]
        delta_frac = cfg.delta.frac_bits
    wbits = None
    if stoch:
        wbits = bank.draw(weights.shape[1]).astype(np.int64)
        if reverse_weight_draws:
            wbits = wbits[:, ::-1]
    new_weights = weight_update(weights, delta[None, :], delta_frac, x[None, :], cfg, random_bits=wbits)
    return SampleResult(y, a, fprime, delta, new_weights, bank.states.astype(np.int64).copy() if stoch else None)


# ------------------------------------------------------------------------------------------
# The bench: drives the PE's host port, command and streams
# ------------------------------------------------------------------------------------------


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) & 1 else value


def _raw(value: int, fmt: FixedFormat, width: int) -> int:
    """A host-port word read back as a raw value of ``fmt`` (sign-extended for signed formats)."""
    value &= (1 << width) - 1
    return _signed(value, width) if fmt.signed else value


@dataclass
class BenchLog:
    outputs: list  # per sample: list of (y, a)
    deltas: list  # per sample: (K,)
    fprimes: list
    weights: list  # per sample: (K, N + 1)
    lfsr: list
    phase_clocks: list  # per sample: (forward, error, update) clocks from cmd transfer to ready


def run_pe(pe: NeuronPE, weights, feedback, seeds, samples, *, rng: random.Random | None = None,
           valid_probability=1.0, ready_probability=1.0, host_port_weights=False) -> BenchLog:
    """Load the PE, run each (x, e) sample through FORWARD, ERROR and UPDATE, and read it all back.

    Feedback constants, LFSR seeds, derivatives and deltas always go through the host port.
    Weights go through it with ``host_port_weights``; otherwise the bench writes and reads the
    weight memory directly (no clock cycles), which keeps the Python simulator fast. With
    probabilities below 1, ``x.valid``, ``e.valid`` and ``y.ready`` drop at random to exercise
    the stream handshakes and the forward stall.
    """
    rng = rng or random.Random(0)
    cfg = pe.config.arithmetic
    K, N, S = pe.neurons, pe.fan_in, pe.connections
    output_layer = pe.config.activation is Activation.IDENTITY
    width = len(pe.host.r_data)
    delta_fmt = cfg.error if output_layer else cfg.delta
    stoch = pe.learning and cfg.update_rounding is Rounding.STOCH
    throttled = valid_probability < 1 or ready_probability < 1
    memory = pe.weight_memory.data
    log = BenchLog([], [], [], [], [], [])

    async def write(ctx, space, addr, value):
        ctx.set(pe.host.space, space)
        ctx.set(pe.host.addr, addr)
        ctx.set(pe.host.w_data, int(value) & ((1 << width) - 1))
        ctx.set(pe.host.w_en, 1)
        await ctx.tick()
        ctx.set(pe.host.w_en, 0)

    async def read_all(ctx, space, count):
        values = []
        ctx.set(pe.host.space, space)
        ctx.set(pe.host.r_en, 1)
        for addr in range(count):
            ctx.set(pe.host.addr, addr)
            await ctx.tick()
            values.append(ctx.get(pe.host.r_data))
        ctx.set(pe.host.r_en, 0)
        return values

    async def command(ctx, cmd):
        assert ctx.get(pe.cmd.ready)
        ctx.set(pe.cmd.payload, cmd)
        ctx.set(pe.cmd.valid, 1)
        await ctx.tick()
        ctx.set(pe.cmd.valid, 0)
        return 1

    async def stream_x(ctx, x, collect):
        """Run a FORWARD or UPDATE after its command: x in, (y, a) out; return the clocks taken
        until ``cmd.ready`` is high again."""
        clocks, j, outputs = 0, 0, []
        valid, ready = True, True
        ctx.set(pe.y.ready, 1)
        while True:
            if throttled:
                valid = rng.random() < valid_probability
                ready = rng.random() < ready_probability
                ctx.set(pe.y.ready, ready)
            ctx.set(pe.x.valid, valid and j < N)
            ctx.set(pe.x.payload, int(x[j]) if j < N else 0)
            if collect and ready and ctx.get(pe.y.valid):
                outputs.append((ctx.get(pe.y.payload.y), ctx.get(pe.y.payload.a)))
            took = valid and j < N and ctx.get(pe.x.ready)
            if not ctx.get(pe.busy):
                break
            await ctx.tick()
            clocks += 1
            j += took
        ctx.set(pe.x.valid, 0)
        assert j == N, f"the PE took {j} inputs, expected {N}"
        return clocks, outputs

    async def stream_e(ctx, e):
        clocks, n, words = 0, 0, [int(v) for v in e.reshape(-1)]
        valid = True
        while True:
            if throttled:
                valid = rng.random() < valid_probability
            ctx.set(pe.e.valid, valid and n < len(words))
            ctx.set(pe.e.payload, words[n] if n < len(words) else 0)
            took = valid and n < len(words) and ctx.get(pe.e.ready)
            if not ctx.get(pe.busy):
                break
            await ctx.tick()
            clocks += 1
            n += took
        ctx.set(pe.e.valid, 0)
        assert n == len(words), f"the PE took {n} error words, expected {len(words)}"
        return clocks

    async def testbench(ctx):
        for k in range(K):
            for j in range(N + 1):
                if host_port_weights:
                    await write(ctx, Space.WEIGHT, k * (N + 1) + j, weights[k, j])
                else:
                    ctx.set(memory[k * (N + 1) + j], int(weights[k, j]))
            if pe.learning and not output_layer:
                for t in range(S):
                    await write(ctx, Space.FEEDBACK, k * S + t, feedback[k, t])
            if stoch:
                await write(ctx, Space.LFSR, k, seeds[k])
        for x, e in samples:
            forward_clocks = await command(ctx, Command.FORWARD)
            clocks, outputs = await stream_x(ctx, x, collect=True)
            forward_clocks += clocks
            log.outputs.append(outputs)
            error_clocks = update_clocks = 0
            if pe.learning:
                log.fprimes.append(await read_all(ctx, Space.DERIVATIVE, K))
                error_clocks = await command(ctx, Command.ERROR)
                error_clocks += await stream_e(ctx, e)
                log.deltas.append([_raw(v, delta_fmt, width) for v in await read_all(ctx, Space.DELTA, K)])
                update_clocks = await command(ctx, Command.UPDATE)
                update_clocks += (await stream_x(ctx, x, collect=False))[0]
                if stoch:
                    log.lfsr.append(await read_all(ctx, Space.LFSR, K))
            if host_port_weights:
                words = [_raw(v, cfg.weight, width) for v in await read_all(ctx, Space.WEIGHT, K * (N + 1))]
            else:
                words = [ctx.get(memory[i]) for i in range(K * (N + 1))]
            log.weights.append(np.array(words, dtype=np.int64).reshape(K, N + 1))
            log.phase_clocks.append((forward_clocks, error_clocks, update_clocks))

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return log


# ------------------------------------------------------------------------------------------
# Random configurations and data
# ------------------------------------------------------------------------------------------


def random_format(rng: random.Random, lo=4, hi=16) -> str:
    word = rng.randint(lo, hi)
    return f"SQ({(i := rng.randint(1, word))},{word - i})"


def random_config(rng: random.Random, **overrides) -> LayerConfig:
    """A random valid layer configuration: widths 4-16, any mode, fan-in 1-100, 1-8 neurons/PE."""
    activation = overrides.pop("activation", rng.choice(["relu", "hardtanh", "tanh", "identity"]))
    connections = 1 if activation == "identity" else overrides.pop("connections", rng.choice([1, 2]))
    # Small layers keep the Python simulator fast; test_fan_in_of_100 covers the large end.
    fan_in = overrides.pop("fan_in", rng.choice([1, 2, 3, rng.randint(4, 12), rng.randint(4, 24)]))
    neurons_per_pe = overrides.pop("neurons_per_pe", rng.randint(1, 8 if fan_in < 8 else 4))
    formats = {name: random_format(rng) for name in ("activation", "weight", "feedback", "error", "delta")}
    formats.update(overrides.pop("formats", {}))
    modes = {
        "rounding": rng.choice(["TRN", "TRN_ZERO", "RND", "RND_CONV"]),
        "update_rounding": rng.choice(["TRN", "TRN_ZERO", "RND", "RND_CONV", "STOCH", "STOCH"]),
        "overflow": rng.choice(["WRAP", "SAT"]),
        "shift": rng.randint(0, 8),
        "seed": rng.randint(0, 1000),
    }
    modes.update(overrides.pop("modes", {}))
    layer = {
        "fan_in": fan_in,
        "neurons": neurons_per_pe * 2,
        "pes": 2,
        "outputs": 10,
        "connections": connections,
        "activation": activation,
        "index": rng.randint(0, 3),
    }
    layer.update(overrides.pop("layer", {}))
    assert not overrides, overrides
    return layer_config_from_dict({"layer": layer, "formats": formats, "modes": modes})


def _uniform(rng: np.random.Generator, fmt: FixedFormat, shape, small: bool):
    """Raw values of ``fmt``: full range, or (``small``) within a sixteenth of it, to see both
    saturated and unsaturated arithmetic."""
    lo, hi = fmt.min_raw, fmt.max_raw
    if small:
        lo, hi = lo // 16, max(hi // 16, lo // 16)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def random_data(config: LayerConfig, seed: int, samples: int):
    rng = np.random.default_rng(seed)
    cfg = config.arithmetic
    K, N, S = config.neurons_per_pe, config.shape.fan_in, config.shape.connections
    small = bool(seed & 1)
    weights = _uniform(rng, cfg.weight, (K, N + 1), small)
    feedback = _uniform(rng, cfg.feedback, (K, S), False)
    seeds = np.array([lfsr_seed(config.index + cfg.seed * 1000, k) for k in range(K)], dtype=np.int64)
    data = [(_uniform(rng, cfg.activation, N, small), _uniform(rng, cfg.error, (K, S), small)) for _ in range(samples)]
    return weights, feedback, seeds, data


def check_against_model(config: LayerConfig, seed: int, samples: int = 3, *, learning=None, **bench):
    """Run the PE and the model on the same random data; assert every value matches."""
    pe = NeuronPE(config=config, learning=learning)
    weights, feedback, seeds, data = random_data(config, seed, samples)
    log = run_pe(pe, weights, feedback, seeds, data, rng=random.Random(seed), **bench)
    bank = LfsrBank(seeds)
    current = weights
    where = f"seed {seed}, config {config.to_dict()}"
    for n, (x, e) in enumerate(data):
        expected = model_sample(config, current, feedback, bank, x, e, learning=pe.learning)
        got_y = np.array([v[0] for v in log.outputs[n]])
        got_a = np.array([v[1] for v in log.outputs[n]])
        assert got_y.tolist() == expected.y.tolist(), f"y, sample {n}, {where}"
        assert got_a.tolist() == expected.a.tolist(), f"a, sample {n}, {where}"
        if pe.learning:
            assert log.fprimes[n] == expected.fprime.tolist(), f"f', sample {n}, {where}"
            assert log.deltas[n] == expected.delta.tolist(), f"delta, sample {n}, {where}"
            if expected.lfsr is not None:
                assert log.lfsr[n] == expected.lfsr.tolist(), f"LFSR, sample {n}, {where}"
        assert log.weights[n].tolist() == expected.weights.tolist(), f"weights, sample {n}, {where}"
        current = expected.weights
    return pe, log


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------

# Each seed is one random configuration; together they cover every rounding mode on both paths,
# both overflow modes, every activation, s = 1 and 2 (test_random_configurations_cover_...).
RANDOM_SEEDS = list(range(20))


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_pe_matches_the_model_bit_for_bit_on_random_configurations(seed):
    config = random_config(random.Random(seed))
    print(f"seed {seed}: {config.to_dict()}")
    pe, log = check_against_model(config, seed)
    # Without stalls every phase takes exactly the documented number of clocks.
    expected = pe.cycles
    assert all(clocks == (expected.forward, expected.error, expected.update) for clocks in log.phase_clocks)


def test_random_configurations_cover_every_mode_activation_and_connection_count():
    seen = {key: set() for key in ("activation", "connections", "rounding", "update_rounding", "overflow")}
    for seed in RANDOM_SEEDS:
        d = random_config(random.Random(seed)).to_dict()
        seen["activation"].add(d["layer"]["activation"])
        seen["connections"].add(d["layer"]["connections"])
        for key in ("rounding", "update_rounding", "overflow"):
            seen[key].add(d["modes"][key])
    assert seen["activation"] == {a.value for a in Activation}
    assert seen["connections"] == {1, 2}
    assert seen["rounding"] == {r.name for r in Rounding} - {"STOCH"}  # the signal path is deterministic
    assert seen["update_rounding"] == {r.name for r in Rounding}
    assert seen["overflow"] == {o.name for o in Overflow}


@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_fan_in_of_100_matches_the_model(activation):
    config = random_config(random.Random(100), activation=activation, fan_in=100, neurons_per_pe=1,
                           modes={"update_rounding": "STOCH"})
    check_against_model(config, seed=100, samples=2)


@pytest.mark.parametrize(
    "activation, connections",
    [("relu", 2), ("hardtanh", 2), ("tanh", 2), ("tanh", 1)],
)
def test_sdfa_and_tanh_with_stochastic_rounding_match_the_model(activation, connections):
    config = random_config(random.Random(7), activation=activation, connections=connections, fan_in=5,
                           neurons_per_pe=3, modes={"update_rounding": "STOCH"})
    check_against_model(config, seed=7)


@pytest.mark.parametrize("word", [4, 16])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_extreme_word_widths_match_the_model(word, activation):
    fmt = f"SQ(1,{word - 1})"
    config = random_config(
        random.Random(word), activation=activation, fan_in=6, neurons_per_pe=2,
        formats={name: fmt for name in ("activation", "weight", "feedback", "error", "delta")},
        modes={"update_rounding": "STOCH", "shift": 0},
    )
    check_against_model(config, seed=word)


def test_integer_only_and_unsigned_formats_match_the_model():
    config = random_config(
        random.Random(5), activation="hardtanh", fan_in=4, neurons_per_pe=2,
        formats={"activation": "UQ(3,3)", "weight": "SQ(5,0)", "delta": "SQ(4,0)", "error": "SQ(6,2)"},
        modes={"update_rounding": "RND_CONV", "overflow": "WRAP"},
    )
    check_against_model(config, seed=5)


def test_stalled_streams_give_the_same_results():
    """x.valid, e.valid and y.ready drop at random: the pipeline stalls and loses nothing."""
    config = random_config(random.Random(11), activation="tanh", fan_in=4, neurons_per_pe=3,
                           modes={"update_rounding": "STOCH"})
    check_against_model(config, seed=11, valid_probability=0.6, ready_probability=0.5)


def test_host_port_loads_and_reads_back_every_weight():
    config = random_config(random.Random(3), activation="relu", fan_in=3, neurons_per_pe=2)
    check_against_model(config, seed=3, samples=2, host_port_weights=True)


def test_inference_only_pe_computes_the_forward_pass_and_leaves_weights_alone():
    config = random_config(random.Random(9), activation="tanh", fan_in=6, neurons_per_pe=3,
                           layer={"learning": False})
    pe, log = check_against_model(config, seed=9, samples=2)
    assert not pe.learning and not hasattr(pe, "e")
    assert all(clocks[0] == pe.cycles.forward for clocks in log.phase_clocks)


def test_learning_flag_overrides_the_configuration():
    config = random_config(random.Random(1), activation="relu", fan_in=2, neurons_per_pe=1)
    pe, _ = check_against_model(config, seed=1, samples=1, learning=False)
    assert config.learning and not pe.learning


def test_a_draw_order_mistake_would_be_caught():
    """The PE follows §5.3's draw order, and the two plausible mistakes (no delta draw, weights
    drawn in reverse) give different weights, so the comparisons above would have failed."""
    fmt = "SQ(2,6)"
    config = random_config(random.Random(21), activation="tanh", fan_in=6, neurons_per_pe=2, connections=1,
                           formats={name: fmt for name in ("activation", "weight", "feedback", "error", "delta")},
                           modes={"update_rounding": "STOCH", "shift": 0, "overflow": "SAT"})
    _, log = check_against_model(config, seed=21, samples=2)
    weights, feedback, seeds, data = random_data(config, 21, 2)
    outcomes = {}
    for mistake in ("none", "skip_delta_draw", "reverse_weight_draws"):
        bank, current = LfsrBank(seeds), weights
        for x, e in data:
            current = model_sample(config, current, feedback, bank, x, e, **(
                {} if mistake == "none" else {mistake: True})).weights
        outcomes[mistake] = current
    assert log.weights[-1].tolist() == outcomes["none"].tolist()
    assert outcomes["skip_delta_draw"].tolist() != outcomes["none"].tolist()
    assert outcomes["reverse_weight_draws"].tolist() != outcomes["none"].tolist()


def test_cycle_formula():
    cycles = phase_cycles(fan_in=64, neurons_per_pe=10, connections=1)
    assert cycles == (10 * 65 + 9, 10 + 8, 10 * 65 + 10)
    assert cycles.per_sample == 2 * 10 * 65 + 10 + 27
    assert phase_cycles(fan_in=3, neurons_per_pe=2, connections=2).per_sample == 2 * 2 * 4 + 2 * 2 + 27
    with pytest.raises(ValueError, match="fan_in must be a positive integer, not 0"):
        phase_cycles(fan_in=0, neurons_per_pe=1)


def _refused(exception, match, **arguments):
    """Assert that NeuronPE(**arguments) raises; the half-built component is not a lint finding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(exception, match=match):
            NeuronPE(**arguments)
        gc.collect()


def test_output_layer_with_more_than_one_connection_is_refused():
    config = layer_config_from_dict({"layer": {"fan_in": 2, "neurons": 2, "activation": "identity", "connections": 2}})
    _refused(ValueError, "connections=2", config=config)
    _refused(TypeError, "LayerConfig", config={"layer": {}})
    _refused(TypeError, "learning", config=config.with_(activation=Activation.RELU), learning="yes")


@pytest.mark.parametrize("learning", [True, False])
def test_commands_without_a_phase_are_accepted_and_ignored(learning):
    """The unused command code 3 (and, without learning, ERROR and UPDATE) leave the PE idle."""
    config = random_config(random.Random(2), activation="relu", fan_in=2, neurons_per_pe=1)
    pe = NeuronPE(config=config, learning=learning)
    codes = [3] if learning else [3, Command.ERROR.value, Command.UPDATE.value]
    seen = []

    async def testbench(ctx):
        for code in codes:
            ctx.set(pe.cmd.payload.as_value(), code)  # the raw bits: 3 is no Command member
            ctx.set(pe.cmd.valid, 1)
            seen.append(ctx.get(pe.cmd.ready))
            await ctx.tick()
            ctx.set(pe.cmd.valid, 0)
            for _ in range(3):
                seen.append(ctx.get(pe.cmd.ready) and not ctx.get(pe.busy))
                await ctx.tick()

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert all(seen) and len(seen) == 4 * len(codes)
