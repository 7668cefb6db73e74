"""The error router (rtl/error_router.py) in Amaranth's simulator: each neuron gets exactly its s errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from ssdfa.model.arithmetic import FixedFormat
from ssdfa.model.feedback import lfsr_connectivity
from ssdfa.rtl.error_router import ErrorRouter


def random_table(rng: random.Random, neurons: int, connections: int, outputs: int) -> list[list[int]]:
    return [rng.sample(range(outputs), connections) for _ in range(neurons)]


def run_router(router: ErrorRouter, samples, *, ready_probability=1.0, seed=0, host_table=None,
               same_ready=False):
    """Feed each sample's M errors, collect what every port receives, return (words, log).

    With ``same_ready`` every port's ``ready`` is the same random draw on each clock (the
    consumers in lockstep that a ``lockstep`` router is built for).

    ``words[sample][p]`` is the list of words port ``p`` took; ``log`` records the clock of the
    last error taken and the clocks of every transfer of each sample, for the timing checks.
    """
    rng = random.Random(seed)
    pes, per_port = router.pes, router.words_per_sample()
    words = [[[] for _ in range(pes)] for _ in samples]
    log = []
    counts = {}

    async def testbench(ctx):
        clock = 0
        if host_table is not None:
            for (p, addr), index in host_table.items():
                ctx.set(router.table.pe, p)
                ctx.set(router.table.addr, addr)
                ctx.set(router.table.data, index)
                ctx.set(router.table.en, 1)
                await ctx.tick()
                clock += 1
            ctx.set(router.table.en, 0)
        for s, errors in enumerate(samples):
            entry = {"transfers": [[] for _ in range(pes)]}
            ctx.set(router.errors.valid, 1)
            for value in errors:
                ctx.set(router.errors.payload, int(value))
                while not ctx.get(router.errors.ready):
                    await ctx.tick()
                    clock += 1
                entry["last_error"] = clock
                await ctx.tick()
                clock += 1
            ctx.set(router.errors.valid, 0)
            while any(len(words[s][p]) < per_port for p in range(pes)):
                readies = [rng.random() < ready_probability for _ in range(pes)]
                if same_ready:
                    readies = [readies[0]] * pes
                for p, port in enumerate(router.to_pe):
                    ctx.set(port.ready, readies[p])
                    if readies[p] and ctx.get(port.valid):
                        words[s][p].append(ctx.get(port.payload))
                        entry["transfers"][p].append(clock)
                assert ctx.get(router.busy)
                await ctx.tick()
                clock += 1
                assert clock < 100_000, "the router stopped delivering"
            for port in router.to_pe:
                ctx.set(port.ready, 0)
            log.append(entry)
        await ctx.tick()
        assert not ctx.get(router.busy)
        assert all(not ctx.get(port.valid) for port in router.to_pe), "a word beyond K*s per port"
        counts["received"] = ctx.get(router.received)
        counts["delivered"] = [ctx.get(d) for d in router.delivered]
        if router.neuron_counters:
            slots = router.neurons_per_pe
            counts["neurons"] = []
            for n in range(router.neurons):
                ctx.set(router.neuron_count.pe, n // slots)
                ctx.set(router.neuron_count.slot, n % slots)
                counts["neurons"].append(ctx.get(router.neuron_count.data))

    sim = Simulator(router)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return words, log, counts


def expected_words(table, errors, pes: int, connections: int):
    slots = len(table) // pes
    return [
        [int(errors[table[p * slots + k][t]]) for k in range(slots) for t in range(connections)]
        for p in range(pes)
    ]


CONFIGS = [
    # outputs, neurons, pes, connections, error format
    (10, 8, 1, 1, FixedFormat(2, 14)),
    (10, 12, 4, 1, FixedFormat(2, 6)),
    (7, 6, 2, 2, FixedFormat(3, 9)),
    (5, 4, 4, 5, FixedFormat(1, 4)),  # dense DFA: s = M
    (1, 3, 1, 1, FixedFormat(2, 2)),  # a single output error
]


@pytest.mark.parametrize("outputs, neurons, pes, connections, fmt", CONFIGS)
def test_each_neuron_receives_exactly_its_selected_errors_one_word_per_clock(
    outputs, neurons, pes, connections, fmt
):
    seed = outputs * 1000 + neurons * 10 + pes
    rng = random.Random(seed)
    table = random_table(rng, neurons, connections, outputs)
    router = ErrorRouter(outputs=outputs, neurons=neurons, pes=pes, connections=connections,
                         error_format=fmt, index_table=table, neuron_counters=True)
    samples = [[rng.randint(fmt.min_raw, fmt.max_raw) for _ in range(outputs)] for _ in range(3)]
    words, log, counts = run_router(router, samples)
    per_port = (neurons // pes) * connections
    for s, errors in enumerate(samples):
        assert words[s] == expected_words(table, errors, pes, connections), f"seed {seed}, sample {s}"
        # Timing (docstring): first word on the clock after the last error, then one per clock.
        for p in range(pes):
            first = log[s]["last_error"] + 1
            assert log[s]["transfers"][p] == list(range(first, first + per_port)), f"seed {seed}"
    # Table 1's data movement, read off the counters: M words in, s per neuron out.
    assert counts["received"] == outputs * len(samples)
    assert counts["delivered"] == [per_port * len(samples)] * pes
    assert counts["neurons"] == [connections * len(samples)] * neurons


@pytest.mark.parametrize(
    "lfsr_seed, outputs, neurons, pes",
    [(1000, 10, 12, 3), (7, 10, 8, 1), (123456789, 13, 16, 4), (2**40 + 5, 1, 2, 2), (0, 256, 6, 2)],
)
def test_connectivity_regenerated_on_chip_matches_the_model_generator(lfsr_seed, outputs, neurons, pes):
    table = [[int(i)] for i in lfsr_connectivity(lfsr_seed, neurons, outputs)]
    fmt = FixedFormat(2, 8)
    router = ErrorRouter(outputs=outputs, neurons=neurons, pes=pes, error_format=fmt,
                         lfsr_seed=lfsr_seed, neuron_counters=True)
    rng = random.Random(lfsr_seed)
    # Distinct error values, so that every delivered word names the index it came from.
    samples = [rng.sample(range(fmt.min_raw, fmt.max_raw + 1), outputs) for _ in range(2)]
    words, _, counts = run_router(router, samples)
    for s, errors in enumerate(samples):
        assert words[s] == expected_words(table, errors, pes, 1), f"lfsr_seed {lfsr_seed}, sample {s}"
    assert counts["neurons"] == [len(samples)] * neurons


@pytest.mark.parametrize("lockstep", [False, True])
def test_lockstep_fork_gives_each_port_every_word_once_under_random_backpressure(lockstep):
    # Without `lockstep` each port's ready is drawn on its own; with it (the layer's PEs, which
    # agree on every clock) port 0's ready moves the router on, and every port's is the same.
    rng = random.Random(7)
    outputs, neurons, pes, connections = 9, 12, 3, 2
    fmt = FixedFormat(2, 10)
    table = random_table(rng, neurons, connections, outputs)
    router = ErrorRouter(outputs=outputs, neurons=neurons, pes=pes, connections=connections,
                         error_format=fmt, index_table=table, neuron_counters=True, lockstep=lockstep)
    assert router.lockstep == lockstep
    samples = [[rng.randint(fmt.min_raw, fmt.max_raw) for _ in range(outputs)] for _ in range(3)]
    words, log, counts = run_router(router, samples, ready_probability=0.6, seed=7, same_ready=lockstep)
    for s, errors in enumerate(samples):
        assert words[s] == expected_words(table, errors, pes, connections), f"seed 7, sample {s}"
        if lockstep:
            assert all(clocks == log[s]["transfers"][0] for clocks in log[s]["transfers"]), f"sample {s}"
    assert counts["neurons"] == [connections * len(samples)] * neurons
    assert counts["delivered"] == [neurons // pes * connections * len(samples)] * pes


def test_index_table_written_through_the_host_port_routes_like_one_given_at_elaboration():
    rng = random.Random(3)
    outputs, neurons, pes, connections = 6, 8, 2, 1
    fmt = FixedFormat(2, 6)
    table = random_table(rng, neurons, connections, outputs)
    slots = neurons // pes
    host_table = {(n // slots, (n % slots) * connections + t): table[n][t]
                  for n in range(neurons) for t in range(connections)}
    router = ErrorRouter(outputs=outputs, neurons=neurons, pes=pes, connections=connections,
                         error_format=fmt)
    samples = [[rng.randint(fmt.min_raw, fmt.max_raw) for _ in range(outputs)] for _ in range(2)]
    words, _, _ = run_router(router, samples, host_table=host_table)
    for s, errors in enumerate(samples):
        assert words[s] == expected_words(table, errors, pes, connections)


def test_a_host_write_of_an_index_beyond_the_outputs_raises_the_table_fault():
    router = ErrorRouter(outputs=5, neurons=2, pes=1)
    seen = []

    async def testbench(ctx):
        ctx.set(router.table.data, 4)
        ctx.set(router.table.en, 1)
        await ctx.tick()
        seen.append(ctx.get(router.table_fault))
        ctx.set(router.table.data, 5)
        await ctx.tick()
        ctx.set(router.table.en, 0)
        await ctx.tick()
        seen.append(ctx.get(router.table_fault))
        ctx.set(router.clear_counters, 1)
        await ctx.tick()
        seen.append(ctx.get(router.table_fault))

    sim = Simulator(router)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen == [0, 1, 0]


def test_a_table_with_an_index_beyond_the_outputs_is_refused_naming_neuron_and_value():
    table = [[0], [3], [10], [1]]
    with pytest.raises(ValueError, match=r"neuron 2 selects output error 10, outside 0\.\.9"):
        ErrorRouter(outputs=10, neurons=4, pes=2, index_table=table)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"outputs": 0, "neurons": 4}, "outputs must be a positive integer, not 0"),
        ({"outputs": 10, "neurons": 6, "pes": 4}, r"neurons \(6\) must be a multiple of pes \(4\)"),
        ({"outputs": 3, "neurons": 4, "connections": 4}, r"connections \(4\) cannot exceed outputs \(3\)"),
        ({"outputs": 3, "neurons": 2, "index_table": [[0], [1], [2]]}, r"shape \(2, 1\)"),
        ({"outputs": 3, "neurons": 2, "index_table": [[0], [-1]]}, "neuron 1 selects output error -1"),
        ({"outputs": 3, "neurons": 2, "connections": 2, "lfsr_seed": 1}, "SSDFA \\(connections=1\\)"),
        ({"outputs": 3, "neurons": 2, "index_table": [[0], [1]], "lfsr_seed": 1}, "not both"),
        ({"outputs": 2**16 + 1, "neurons": 2, "lfsr_seed": 1}, "at most 65536 errors, not 65537"),
        ({"outputs": 3, "neurons": 2, "lfsr_seed": -1}, "lfsr_seed must be a non-negative integer, not -1"),
    ],
)
def test_bad_parameters_are_refused_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ErrorRouter(**kwargs)


LINT_CASES = {
    "table-sdfa2-p3-counters": dict(outputs=10, neurons=6, pes=3, connections=2, neuron_counters=True,
                                    index_table=np.arange(12).reshape(6, 2) % 10),
    "table-m1-k1": dict(outputs=1, neurons=3, pes=3, neuron_counters=True),
    "lfsr-p2": dict(outputs=10, neurons=8, pes=2, lfsr_seed=1000),
}


@pytest.mark.parametrize("name", list(LINT_CASES))
def test_router_verilog_lints_clean(name, require_tool, tmp_path):
    require_tool("verilator")
    from ssdfa.sim.runner import lint_verilog

    path = tmp_path / "error_router.v"
    path.write_text(verilog.convert(ErrorRouter(**LINT_CASES[name]), name="error_router", emit_src=False))
    lint_verilog(path, "error_router")
