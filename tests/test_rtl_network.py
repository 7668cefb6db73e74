"""SSDFANetwork (rtl/network.py) in Amaranth's simulator against FixedNetwork, bit for bit.

Small networks train a few samples one at a time; after every sample the host port reads back
every weight, delta, stored derivative and LFSR state, and the streams between the layers are
watched: every activation, every output error and every prediction must be the model's
(``FixedNetwork.train_step(..., trace=True)``). The counters must read the cost model's counts
per sample, every layer must take the errors in the same clocks and start its UPDATE as soon as
its own deltas are written, an inference run must predict
like ``FixedNetwork.predict`` and change nothing, and the host driver must refuse bad inputs
before anything is simulated.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from ssdfa.errors import SsdfaError
from ssdfa.model.arithmetic import FixedFormat, Overflow, Rounding
from ssdfa.model.fixed_network import FixedNetwork
from ssdfa.model.network import NetworkSpec
from ssdfa.model.neuron_ops import Activation, ArithmeticConfig, output_error
from ssdfa.rtl.signatures import Command
from ssdfa.rtl.network import (
    NetworkMode,
    SSDFANetwork,
    default_pes,
    generate_network,
    network_layer_configs,
    schedule_minimum,
    schedule_steps,
    utilisation_bound,
)
from ssdfa.rtl.output_error import OutputErrorUnit
from ssdfa.sim.network_driver import NetworkDriver, NetworkState

# ------------------------------------------------------------------------------------------
# An Amaranth testbench that plays the driver's programs
# ------------------------------------------------------------------------------------------


class Bench:
    """Runs host programs and sample streams on an SSDFANetwork in Amaranth's simulator.

    ``script(bench, ctx)`` is an async function using ``write``, ``read`` and ``run``; the
    samples of every run are fed from background processes, and the streams between layers,
    the output errors, the predictions and the UPDATE transfers are recorded every clock.
    """

    def __init__(self, network: SSDFANetwork, runs):
        self.network = network
        self.runs = runs  # [(mode, x (S, F) int, labels (S,))]
        self.activations = [[] for _ in network.layers]  # per layer: (y, a) in stream order
        self.errors = []
        self.predictions = []
        self.prediction_counts = []  # per prediction taken: (predictions_taken, prediction_last)
        self.update_clocks = [[] for _ in network.layers]  # PE 0 takes UPDATE
        self.error_clocks = [[] for _ in network.layers]  # PE 0 takes ERROR
        self.idle_clocks = [set() for _ in network.layers]  # PE 0 is idle
        self.router_clocks = [[] for _ in network.layers]  # the layer takes an error word
        self.clock = 0

    async def write(self, ctx, writes):
        host = self.network.host
        for w in writes:
            for name, value in (("layer", w.layer), ("pe", w.pe), ("space", w.space), ("addr", w.addr),
                                ("w_data", w.data)):
                ctx.set(getattr(host, name), value)
            ctx.set(host.w_en, 1)
            await ctx.tick()
        ctx.set(host.w_en, 0)

    async def read(self, ctx, reads):
        host, values = self.network.host, []
        for r in reads:
            for name, value in (("layer", r.layer), ("pe", r.pe), ("space", r.space), ("addr", r.addr)):
                ctx.set(getattr(host, name), value)
            ctx.set(host.r_en, 1)
            await ctx.tick()
            ctx.set(host.r_en, 0)
            values.append(ctx.get(host.r_data))
        return values

    async def run(self, ctx, mode, samples):
        net = self.network
        ctx.set(net.run.payload.mode, mode)
        ctx.set(net.run.payload.samples, samples)
        ctx.set(net.run.valid, 1)
        await ctx.tick().until(net.run.ready)
        ctx.set(net.run.valid, 0)
        await ctx.tick().until(net.done)

    def simulate(self, script):
        net = self.network
        x_words = np.concatenate([np.asarray(x, dtype=np.int64).ravel() for _, x, _ in self.runs]) if self.runs else []
        labels = np.concatenate([np.asarray(y, dtype=np.int64) for _, _, y in self.runs]) if self.runs else []
        width = net.arithmetic.activation.word

        async def feed_x(ctx):
            for word in x_words:
                ctx.set(net.x.payload, int(word) & ((1 << width) - 1))
                ctx.set(net.x.valid, 1)
                await ctx.tick().until(net.x.ready)
            ctx.set(net.x.valid, 0)

        async def feed_labels(ctx):
            for label in labels:
                ctx.set(net.label.payload, int(label))
                ctx.set(net.label.valid, 1)
                await ctx.tick().until(net.label.ready)
            ctx.set(net.label.valid, 0)

        async def watch(ctx):
            ctx.set(net.prediction.ready, 1)
            unit = net.output_error
            signals = [unit.e.valid, unit.e.ready, unit.e.payload, net.prediction.valid, net.prediction.payload,
                       net.predictions_taken, net.prediction_last]
            for layer in net.layers:
                pe = layer.pes[0]
                signals += [layer.y.valid, layer.y.ready, layer.y.payload, pe.cmd.valid, pe.cmd.ready,
                            pe.cmd.payload, pe.busy, layer.e.valid, layer.e.ready]
            async for values in ctx.tick().sample(*signals):
                values = values[2:]
                e_valid, e_ready, e_payload, p_valid, p_payload, taken, last = values[:7]
                if e_valid and e_ready:
                    self.errors.append(e_payload)
                if p_valid:
                    self.predictions.append((p_payload.index, p_payload.correct))
                    self.prediction_counts.append((taken, last))
                for index in range(len(net.layers)):
                    (y_valid, y_ready, y_payload, c_valid, c_ready, c_payload, busy, l_e_valid,
                     l_e_ready) = values[7 + 9 * index:16 + 9 * index]
                    if y_valid and y_ready:
                        self.activations[index].append((y_payload.y, y_payload.a))
                    if c_valid and c_ready and c_payload == Command.UPDATE:
                        self.update_clocks[index].append(self.clock)
                    if c_valid and c_ready and c_payload == Command.ERROR:
                        self.error_clocks[index].append(self.clock)
                    if not busy:
                        self.idle_clocks[index].add(self.clock)
                    if l_e_valid and l_e_ready:
                        self.router_clocks[index].append(self.clock)
                self.clock += 1

        async def testbench(ctx):
            await script(self, ctx)

        sim = Simulator(net)
        sim.add_clock(1e-8)
        sim.add_testbench(testbench)
        sim.add_testbench(feed_x, background=True)
        sim.add_testbench(feed_labels, background=True)
        sim.add_testbench(watch, background=True)
        sim.run()


# ------------------------------------------------------------------------------------------
# Networks under test
# ------------------------------------------------------------------------------------------

#: (layer sizes, PEs per layer, hidden activation, arithmetic changes): the default arithmetic
#: with STOCH updates; tanh with convergent rounding, WRAP and a narrow error word; two hidden
#: layers, both learning from the same broadcast error.
CASES = {
    "relu-stoch": ((6, 4, 3), (2, 1), Activation.RELU, {}),
    "tanh-rnd-conv-wrap": ((5, 4, 3), (4, 3), Activation.TANH, dict(
        activation=FixedFormat(3, 7), error=FixedFormat(2, 6), update_rounding=Rounding.RND_CONV,
        overflow=Overflow.WRAP, shift=2)),
    "two-hidden-hardtanh": ((5, 4, 3, 3), (2, 3, 1), Activation.HARDTANH, {}),
}


def make_case(name: str, seed: int = 5, layer_counters: bool = True):
    sizes, pes, activation, changes = CASES[name]
    config = dataclasses.replace(ArithmeticConfig(seed=seed), **changes)
    spec = NetworkSpec(sizes, activation=activation, seed=seed, weight_gain=4.0, feedback_gain=4.0)
    model = FixedNetwork(spec, config)
    configs = network_layer_configs(sizes, config, pes=pes, activation=activation)
    return model, SSDFANetwork(layers=configs, layer_counters=layer_counters), NetworkDriver(configs)


def samples_for(model, count: int, seed: int):
    rng = np.random.default_rng(seed)
    fmt = model.config.activation
    x = rng.integers(max(fmt.min_raw, -(1 << fmt.frac_bits)), min(fmt.max_raw, 1 << fmt.frac_bits) + 1,
                     size=(count, model.spec.inputs))
    return x, rng.integers(0, model.spec.outputs, size=count)


# ------------------------------------------------------------------------------------------
# Training, bit for bit
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_activation_error_delta_weight_and_lfsr_state_matches_the_model(case):
    model, network, driver = make_case(case)
    count = 3
    x, labels = samples_for(model, count, seed=11)
    state = driver.state_from_model(model)
    traces = [model.train_step(x[i], int(labels[i]), trace=True) for i in range(count)]
    after = []  # per sample: the host's read-back

    async def script(bench, ctx):
        await bench.write(ctx, driver.load_writes(state) + [driver.clear_counters_write()])
        for _ in range(count):
            await bench.run(ctx, NetworkMode.TRAIN, 1)
            words = await bench.read(ctx, driver.weight_reads() + driver.state_reads())
            split = len(driver.weight_reads())
            after.append((driver.decode_weights(words[:split]), driver.decode_state(words[split:])))

    bench = Bench(network, [("train", x, labels)])
    bench.simulate(script)
    layers = model.num_layers
    for layer in range(layers):
        expected = [(int(y), int(a)) for t in traces
                    for y, a in zip(t.pre_activations[layer][0], t.activations[layer][0])]
        assert bench.activations[layer] == expected, f"{case}: layer {layer} activations (y, a)"
    assert bench.errors == [int(e) for t in traces for e in t.errors[0]], f"{case}: output errors"
    assert [p[0] for p in bench.predictions] == [int(np.argmax(t.activations[-1][0])) for t in traces]
    assert [bool(p[1]) for p in bench.predictions] == [
        int(np.argmax(t.activations[-1][0])) == labels[i] for i, t in enumerate(traces)]
    for sample, (trace, (weights, hw)) in enumerate(zip(traces, after)):
        for layer in range(layers):
            where = f"{case}: sample {sample} layer {layer}"
            np.testing.assert_array_equal(weights[layer], trace.weights_after[layer], err_msg=f"{where} weights")
            np.testing.assert_array_equal(hw["deltas"][layer], trace.deltas[layer][0], err_msg=f"{where} deltas")
            np.testing.assert_array_equal(hw["derivatives"][layer], trace.derivatives[layer][0],
                                          err_msg=f"{where} derivatives")
            following = traces[sample + 1].lfsr_states[layer] if sample + 1 < count else model.lfsr_states()[layer]
            if model.config.update_rounding is Rounding.STOCH:
                np.testing.assert_array_equal(hw["lfsr_states"][layer], following, err_msg=f"{where} LFSR states")


def test_every_layer_takes_the_errors_together_and_updates_as_soon_as_its_deltas_are_written():
    model, network, driver = make_case("two-hidden-hardtanh")
    x, labels = samples_for(model, 3, seed=2)

    async def script(bench, ctx):
        await bench.write(ctx, driver.load_writes(driver.state_from_model(model)))
        await bench.run(ctx, NetworkMode.TRAIN, 3)

    bench = Bench(network, [("train", x, labels)])
    bench.simulate(script)
    outputs = network.configs[-1].shape.neurons
    assert len(bench.router_clocks[0]) == 3 * outputs
    assert all(clocks == bench.router_clocks[0] for clocks in bench.router_clocks), bench.router_clocks
    for index in range(len(network.layers)):
        assert len(bench.error_clocks[index]) == len(bench.update_clocks[index]) == 3
        for error, update in zip(bench.error_clocks[index], bench.update_clocks[index]):
            # PE 0 takes UPDATE on the first clock it is idle after ERROR: no layer waits for another.
            first_idle = min(c for c in bench.idle_clocks[index] if c > error)
            assert update == first_idle, (index, error, update, first_idle)


def test_counters_read_the_cost_model_counts_and_one_error_word_per_neuron_per_sample():
    model, network, driver = make_case("relu-stoch")
    count = 4
    x, labels = samples_for(model, count, seed=3)
    result = {}

    async def script(bench, ctx):
        await bench.write(ctx, driver.load_writes(driver.state_from_model(model)) + [driver.clear_counters_write()])
        await bench.run(ctx, NetworkMode.TRAIN, count)
        result["counters"] = driver.decode_counters(await bench.read(ctx, driver.counter_reads()))
        result["errors"] = driver.decode_error_counts(await bench.read(ctx, driver.error_count_reads()))

    Bench(network, [("train", x, labels)]).simulate(script)
    counters = result["counters"]
    from ssdfa.model.costs import layer_costs
    from ssdfa.sim.network_cosim import hardware_costs

    assert counters["train_samples"] == count and counters["infer_samples"] == 0
    for layer, config in enumerate(network.configs):
        n, f = config.shape.neurons, config.shape.fan_in
        assert counters[f"layer{layer}.forward_macs"] == count * n * (f + 1)
        assert counters[f"layer{layer}.update_macs"] == count * n * (f + 1)
        assert counters[f"layer{layer}.error_words"] == count * n
        assert counters[f"layer{layer}.errors_received"] == count * network.configs[-1].shape.neurons
        np.testing.assert_array_equal(result["errors"][layer], np.full(n, count))
    # Biases taken out, the counters are the cost model's SSDFA counts, pass by pass.
    hardware = hardware_costs(counters, network.configs, count)
    for hw, cost in zip(hardware, layer_costs(list(network.layer_sizes), "ssdfa")):
        assert (hw.forward, hw.backward) == (cost.forward, cost.backward)
    # Every clock of the run is counted: at least the schedule's minimum per sample.
    assert counters["cycles"] >= count * schedule_minimum(network.configs)


def test_the_output_layer_updates_while_the_hidden_layer_works_and_the_minimum_is_a_lower_bound():
    # W_0 = 20 * 10 = 200 on the hidden PE, W_1 = 20 * 21 = 420 on the output PE: the output
    # layer's update (420) runs while the hidden layer updates and runs its forward pass (400).
    sizes, pes = (9, 20, 20), (1, 1)
    config = ArithmeticConfig(seed=3)
    model = FixedNetwork(NetworkSpec(sizes, seed=3, weight_gain=4.0, feedback_gain=4.0), config)
    network = SSDFANetwork(layers=network_layer_configs(sizes, config, pes=pes))
    driver = NetworkDriver(network.configs)
    count = 3
    x, labels = samples_for(model, count, seed=4)
    result = {}

    async def script(bench, ctx):
        await bench.write(ctx, driver.load_writes(driver.state_from_model(model)) + [driver.clear_counters_write()])
        await bench.run(ctx, NetworkMode.TRAIN, count)
        result["counters"] = driver.decode_counters(await bench.read(ctx, driver.counter_reads()))

    Bench(network, [("train", x, labels)]).simulate(script)
    per_sample = result["counters"]["cycles"] / count
    assert schedule_minimum(network.configs) == 2 * 420
    assert schedule_minimum(network.configs) <= per_sample
    # Below the forward passes one after the other plus the longest update (200 + 420 + 420):
    # the output layer's update overlaps the hidden layer's work.
    assert per_sample < 200 + 420 + 420, per_sample


def test_network_counters_alone_still_count_the_run_and_every_other_counter_reads_zero():
    model, network, driver = make_case("relu-stoch", layer_counters=False)
    count = 3
    x, labels = samples_for(model, count, seed=3)
    state = driver.state_from_model(model)
    traces = [model.train_step(x[i], int(labels[i]), trace=True) for i in range(count)]
    result = {}

    async def script(bench, ctx):
        await bench.write(ctx, driver.load_writes(state) + [driver.clear_counters_write()])
        await bench.run(ctx, NetworkMode.TRAIN, count)
        result["counters"] = driver.decode_counters(await bench.read(ctx, driver.counter_reads()))
        result["errors"] = driver.decode_error_counts(await bench.read(ctx, driver.error_count_reads()))
        result["weights"] = driver.decode_weights(await bench.read(ctx, driver.weight_reads()))

    Bench(network, [("train", x, labels)]).simulate(script)
    counters = result["counters"]
    correct = sum(int(np.argmax(t.activations[-1][0])) == labels[i] for i, t in enumerate(traces))
    assert counters["train_samples"] == count and counters["train_correct"] == correct
    assert counters["cycles"] > 0 and counters["infer_samples"] == 0
    assert all(value == 0 for name, value in counters.items() if name.startswith("layer")), counters
    assert all(not counts.any() for counts in result["errors"])
    for layer in range(model.num_layers):  # the learner itself is the same
        np.testing.assert_array_equal(result["weights"][layer], traces[-1].weights_after[layer])


def test_inference_run_predicts_like_the_model_and_changes_no_weight():
    model, network, driver = make_case("relu-stoch")
    x, labels = samples_for(model, 5, seed=4)
    result = {}

    async def script(bench, ctx):
        await bench.write(ctx, driver.load_writes(driver.state_from_model(model)) + [driver.clear_counters_write()])
        await bench.run(ctx, NetworkMode.INFER, 5)
        result["weights"] = driver.decode_weights(await bench.read(ctx, driver.weight_reads()))
        result["counters"] = driver.decode_counters(await bench.read(ctx, driver.counter_reads()))

    bench = Bench(network, [("infer", x, labels)])
    bench.simulate(script)
    assert [p[0] for p in bench.predictions] == model.predict(x).tolist()
    assert result["counters"]["infer_correct"] == int(np.sum(model.predict(x) == labels))
    assert bench.errors == [] and result["counters"]["layer0.error_words"] == 0
    for got, expected in zip(result["weights"], model.raw_weights()):
        np.testing.assert_array_equal(got, expected)


def test_runs_of_zero_one_and_three_samples_finish_and_flag_exactly_their_last_prediction():
    model, network, driver = make_case("relu-stoch")
    x, labels = samples_for(model, 4, seed=8)
    done_after = []

    async def script(bench, ctx):
        await bench.write(ctx, driver.load_writes(driver.state_from_model(model)))
        for samples in (0, 1, 3):
            await bench.run(ctx, NetworkMode.INFER, samples)
            done_after.append((len(bench.predictions), ctx.get(network.predictions_taken)))

    bench = Bench(network, [("infer", x, labels)])
    bench.simulate(script)
    # A run of no samples takes none and finishes; each run's count starts again from 0.
    assert done_after == [(0, 0), (1, 1), (4, 3)]
    assert bench.prediction_counts == [(0, 1), (0, 0), (1, 0), (2, 1)]
    assert [p[0] for p in bench.predictions] == model.predict(x).tolist()


# ------------------------------------------------------------------------------------------
# The output-error unit alone
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("formats", [
    dict(),  # SQ(4,12) activations, SQ(2,14) errors: a - 1 saturates below -2
    dict(activation=FixedFormat(1, 7), error=FixedFormat(3, 3), overflow=Overflow.WRAP, rounding=Rounding.TRN_ZERO),
    dict(activation=FixedFormat(2, 6, signed=False), error=FixedFormat(2, 9), rounding=Rounding.RND_CONV),
])
def test_output_error_unit_is_the_model_output_error_and_ties_predict_the_lowest_index(formats):
    config = dataclasses.replace(ArithmeticConfig(), **formats)
    outputs = 5
    unit = OutputErrorUnit(outputs=outputs, arithmetic=config)
    rng = np.random.default_rng(7)
    act = config.activation
    samples = [rng.integers(act.min_raw, act.max_raw + 1, size=outputs) for _ in range(6)]
    samples.append(np.full(outputs, act.max_raw))  # a tie everywhere: class 0
    samples.append(np.array([act.min_raw, act.max_raw, act.min_raw, act.max_raw, act.max_raw]))  # class 1
    labels = [int(v) for v in rng.integers(0, outputs, size=len(samples))]
    got = {"e": [], "p": []}

    async def feed(ctx):
        ctx.set(unit.train, 1)
        ctx.set(unit.prediction.ready, 1)
        for activations, label in zip(samples, labels):
            ctx.set(unit.label.payload, label)
            ctx.set(unit.label.valid, 1)
            for value in activations:
                ctx.set(unit.a.payload, int(value))
                ctx.set(unit.a.valid, 1)
                ctx.set(unit.e.ready, 1)
                _, _, e_valid, e_payload, p_valid, p_payload = await ctx.tick().sample(
                    unit.e.valid, unit.e.payload, unit.prediction.valid, unit.prediction.payload)
                assert e_valid
                got["e"].append(e_payload)
            ctx.set(unit.a.valid, 0)
            ctx.set(unit.label.valid, 0)
            await ctx.tick()
            got["p"].append((ctx.get(unit.prediction.payload.index), ctx.get(unit.prediction.payload.correct)))

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.run()
    expected = output_error(np.array(samples), np.array(labels), config)
    assert got["e"] == [int(v) for v in expected.ravel()]
    assert [p[0] for p in got["p"]] == [int(np.argmax(s)) for s in samples]
    assert got["p"][-2][0] == 0 and got["p"][-1][0] == 1
    assert [bool(p[1]) for p in got["p"]] == [int(np.argmax(s)) == label for s, label in zip(samples, labels)]


def test_output_error_unit_holds_a_sample_back_while_the_last_prediction_waits():
    """Samples offered back to back while `prediction` is taken only every seventh clock: the
    argmax stage and the in-flight flag must neither drop nor overwrite a prediction."""
    config = ArithmeticConfig()
    outputs = 4
    unit = OutputErrorUnit(outputs=outputs, arithmetic=config)
    rng = np.random.default_rng(11)
    act = config.activation
    samples = [rng.integers(act.min_raw, act.max_raw + 1, size=outputs) for _ in range(8)]
    labels = [int(v) for v in rng.integers(0, outputs, size=len(samples))]
    taken = []

    async def feed(ctx):
        ctx.set(unit.train, 0)
        for activations, label in zip(samples, labels):
            for position, value in enumerate(activations):
                ctx.set(unit.a.payload, int(value))
                ctx.set(unit.a.valid, 1)
                ctx.set(unit.label.payload, label)
                ctx.set(unit.label.valid, 1)
                await ctx.tick().until(unit.a.ready)
        ctx.set(unit.a.valid, 0)
        ctx.set(unit.label.valid, 0)

    async def drain(ctx):
        clock = 0
        while len(taken) < len(samples):
            ready = clock % 7 == 6
            ctx.set(unit.prediction.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(unit.prediction.valid, unit.prediction.payload)
            if valid and ready:
                taken.append((payload.index, payload.correct))
            clock += 1
            assert clock < 1000, "the predictions stopped coming"

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.run()
    expected = [int(np.argmax(s)) for s in samples]
    assert [index for index, _ in taken] == expected
    assert [bool(correct) for _, correct in taken] == [e == label for e, label in zip(expected, labels)]


# ------------------------------------------------------------------------------------------
# Refusals: the driver checks before anything is simulated; the network checks its layers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_driver():
    configs = network_layer_configs((64, 32, 10), ArithmeticConfig())
    return NetworkDriver(configs)


def test_driver_refuses_a_label_out_of_range_naming_it(digits_driver):
    x = np.zeros((3, 64), dtype=np.int64)
    with pytest.raises(SsdfaError, match=r"sample 1 has label 10, outside 0\.\.9"):
        digits_driver.check_samples(x, [3, 10, 2])


def test_driver_refuses_a_sample_of_the_wrong_length_naming_it(digits_driver):
    with pytest.raises(SsdfaError, match="a sample has 63 features, but the network has 64 inputs"):
        digits_driver.check_samples(np.zeros((2, 63), dtype=np.int64), [0, 1])
    with pytest.raises(SsdfaError, match="expected 2 labels"):
        digits_driver.check_samples(np.zeros((2, 64), dtype=np.int64), [0, 1, 2])


def test_driver_refuses_a_feature_outside_the_activation_format(digits_driver):
    x = np.zeros((2, 64), dtype=np.int64)
    x[1, 5] = 1 << 15
    with pytest.raises(SsdfaError, match=r"sample 1 feature 5 = 32768 is outside the activation format SQ\(4,12\)"):
        digits_driver.check_samples(x, [0, 1])


def test_a_saved_network_of_another_configuration_is_refused_naming_the_file(tmp_path, digits_driver):
    from ssdfa.model.weight_file import load_network, save_network
    from ssdfa.sim.network_weights import hardware_state

    configs = digits_driver.configs
    other = save_network(tmp_path / "w.npz", FixedNetwork(NetworkSpec((64, 16, 10)), ArithmeticConfig()))
    with pytest.raises(SsdfaError, match=r"weight file w.npz: the model's layer sizes 64-16-10 are not the "
                                         r"hardware's 64-32-10"):
        hardware_state(other, configs, source="weight file w.npz")
    narrow = FixedNetwork(NetworkSpec((64, 32, 10)), ArithmeticConfig(weight=FixedFormat(2, 10)))
    save_network(tmp_path / "n.npz", narrow)
    with pytest.raises(SsdfaError, match=r"arithmetic differs from the hardware's: weight SQ\(2,10\)"):
        hardware_state(load_network(tmp_path / "n.npz"), configs)
    model = FixedNetwork(NetworkSpec((64, 32, 10), seed=3), ArithmeticConfig(seed=3))
    save_network(tmp_path / "ok.npz", model)
    state = hardware_state(load_network(tmp_path / "ok.npz"), configs)
    for got, expected in zip(state.weights, model.raw_weights()):
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(state.lfsr_states, model.lfsr_states()):
        np.testing.assert_array_equal(got, expected)


def test_driver_refuses_bad_weights_feedback_and_seeds(digits_driver):
    weights = [np.zeros((32, 65), dtype=np.int64), np.zeros((10, 33), dtype=np.int64)]
    feedback = [(np.zeros((32, 1), dtype=np.int64), np.ones((32, 1), dtype=np.int64))]
    seeds = [np.ones(32, dtype=np.uint64), np.ones(10, dtype=np.uint64)]
    digits_driver.load_writes(NetworkState(weights, feedback, seeds))  # the good state loads
    with pytest.raises(SsdfaError, match=r"layer 1 weights have shape \(10, 32\), expected \(10, 33\)"):
        digits_driver.load_writes(NetworkState([weights[0], np.zeros((10, 32))], feedback, seeds))
    big = [weights[0].copy(), weights[1]]
    big[0][4, 7] = 1 << 15
    with pytest.raises(SsdfaError, match=r"layer 0 weight \[4, 7\] = 32768 is outside the weight format"):
        digits_driver.load_writes(NetworkState(big, feedback, seeds))
    bad_index = [(np.full((32, 1), 10, dtype=np.int64), feedback[0][1])]
    with pytest.raises(SsdfaError, match="neuron 0 selects output error 10, outside 0..9"):
        digits_driver.load_writes(NetworkState(weights, bad_index, seeds))
    zero = [seeds[0].copy(), seeds[1]]
    zero[0][3] = 0
    with pytest.raises(SsdfaError, match="layer 0 neuron 3 has LFSR state 0"):
        digits_driver.load_writes(NetworkState(weights, feedback, zero))


def test_driver_refuses_a_model_of_another_arithmetic_or_shape(digits_driver):
    spec = NetworkSpec((64, 32, 10), seed=1)
    with pytest.raises(SsdfaError, match="rounding Rounding.TRN"):
        digits_driver.state_from_model(FixedNetwork(spec, ArithmeticConfig(rounding=Rounding.TRN)))
    with pytest.raises(SsdfaError, match="layer sizes 64-16-10"):
        digits_driver.state_from_model(FixedNetwork(NetworkSpec((64, 16, 10)), ArithmeticConfig()))


def test_network_refuses_layers_that_do_not_chain_or_are_not_ssdfa():
    configs = network_layer_configs((6, 4, 3), ArithmeticConfig(), pes=(2, 1))
    with pytest.raises(SsdfaError, match="needs at least one hidden layer"):
        SSDFANetwork(layers=configs[1:])
    with pytest.raises(SsdfaError, match="layer 1 has fan-in 4, but layer 0 has 2 neurons"):
        SSDFANetwork(layers=(configs[0].with_(shape=dataclasses.replace(configs[0].shape, neurons=2), pes=1),
                             configs[1]))
    with pytest.raises(SsdfaError, match="other formats or modes than layer 0"):
        SSDFANetwork(layers=(configs[0], configs[1].with_(arithmetic=dataclasses.replace(
            configs[1].arithmetic, shift=5))))
    with pytest.raises(SsdfaError, match="3 PEs do not divide its 4 neurons"):
        network_layer_configs((6, 4, 3), ArithmeticConfig(), pes=(3, 1))
    with pytest.raises(SsdfaError, match="not identity"):
        network_layer_configs((6, 4, 3), ArithmeticConfig(), activation=Activation.IDENTITY)


# ------------------------------------------------------------------------------------------
# Shape helpers and Verilog
# ------------------------------------------------------------------------------------------


def test_default_pes_and_the_schedule_minimum_of_the_digits_network():
    assert default_pes((64, 32, 10)) == (4, 2)
    configs = network_layer_configs((64, 32, 10), ArithmeticConfig())
    # From the errors: layer 0 updates (8 * 65) and runs the next forward pass (8 * 65); layer 1
    # has updated (5 * 33) long before, and its forward pass ends 5 * 33 after layer 0's.
    assert schedule_steps(configs) == (520 + 520, 520 + 520 + 165)
    assert schedule_minimum(configs) == 1205
    assert utilisation_bound(configs) == pytest.approx(2 * 2410 / (6 * 1205))


def test_the_schedule_minimum_counts_an_output_layer_update_that_overlaps_the_hidden_forward_pass():
    # 64-100-10 on 20 + 2 PEs: layer 1's update (5 * 101) ends before layer 0's update and
    # forward pass (2 * 5 * 65); the old "forward after forward, then the longest update" said 1335.
    configs = network_layer_configs((64, 100, 10), ArithmeticConfig(), pes=(20, 2))
    assert schedule_minimum(configs) == 650 + 505
    # An output layer whose update (10 * 21) outlasts the hidden layer's update and forward pass
    # (2 * 9): its own forward pass waits for its update, not for its inputs.
    configs = network_layer_configs((8, 20, 10), ArithmeticConfig(), pes=(20, 1))
    assert schedule_steps(configs) == (2 * 9, 2 * 10 * 21)


def test_generated_verilog_is_byte_identical_independent_of_the_seed_and_the_one_simulated(tmp_path):
    from ssdfa.sim.network_cosim import network_design

    configs = network_layer_configs((6, 4, 3), ArithmeticConfig(seed=1), pes=(2, 1))
    first = generate_network(configs, tmp_path / "a")
    second = generate_network(network_layer_configs((6, 4, 3), ArithmeticConfig(seed=9), pes=(2, 1)), tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text().startswith("// ssdfa_network: an SSDFA network")
    assert network_design(configs, build_root=tmp_path / "cache").verilog == first.read_text()


def test_generated_verilog_passes_verilator_lint(tmp_path, require_tool):
    from ssdfa.sim.runner import lint_verilog

    require_tool("verilator")
    path = generate_network(network_layer_configs((6, 4, 3), ArithmeticConfig(), pes=(2, 1)), tmp_path)
    lint_verilog(path, "ssdfa_network")
