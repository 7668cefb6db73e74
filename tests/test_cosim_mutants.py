"""Mutation testing of the generated PE: the mutant catalogue is found by tokens and names, with
stable ids; the directed canonical sets meet the corner cases random data misses; and the
canonical sets, run through the co-simulation harness, kill every mutant of the PE except the
five argued below (and in docs/cosim.md section 9.5) to be equivalent."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ssdfa.golden.directed import _cut_targets, _edge_residue, _residue_solution, _weight_range_cases, corner_cases
from ssdfa.golden.format import canonical_set_dirs, read_golden_set
from ssdfa.golden.layer_vectors import LayerStimulus, draw_stimulus
from ssdfa.model.arithmetic import Rounding
from ssdfa.sim.cosim import CosimJob, elaborate
from ssdfa.sim.mutants import KINDS, enumerate_mutants, sample

CANONICAL = {path.name: path for path in canonical_set_dirs()}


def _design(name: str):
    return elaborate("pe", read_golden_set(CANONICAL[name]).config)


def _stimulus_of(golden) -> LayerStimulus:
    arrays = golden.arrays
    return LayerStimulus(arrays["weights_initial"], arrays["inputs"], arrays.get("feedback_index"),
                         arrays.get("feedback_value"), None if golden.config.is_output_layer else arrays["errors"],
                         arrays.get("targets"))


def test_the_mutant_set_is_deterministic_with_unique_ids_and_one_line_descriptions():
    design = _design("ssdfa_relu_rnd16")
    first = enumerate_mutants(design.verilog, config=design.config)
    again = enumerate_mutants(design.verilog, config=design.config)
    assert first == again
    ids = [mutant.id for mutant in first.mutants]
    assert len(ids) == len(set(ids)) > 15
    lines = design.verilog.split("\n")
    for mutant in first.mutants:
        assert "\n" not in mutant.description and f"at line {mutant.line}: " in mutant.description
        assert lines[mutant.line - 1] == mutant.original != mutant.mutated
        mutated = mutant.apply(design.verilog).split("\n")
        assert [i for i, (a, b) in enumerate(zip(lines, mutated)) if a != b] == [mutant.line - 1]
    kinds = {mutant.kind for mutant in first.mutants}
    assert kinds == set(KINDS) - {"lfsr-tap", "cmp-flip"}, kinds
    # A deterministic design has no LFSR, and the pipelined casts test upper bits rather than
    # compare: reported, not silently skipped.
    assert {"lfsr-tap", "cmp-flip"} <= {entry.id for entry in first.not_applicable}
    # Named wires nothing reads (kept by Yosys) give equivalent sign-extension mutants.
    assert any(entry.id.startswith("sign-ext-drop:product_wide:") and "nothing reads" in entry.reason
               for entry in first.equivalent)
    # The round-to-nearest offsets in the shared rounding's offset multiplexer, one off each way
    # (a tie rounds down, or one below a tie rounds up): 2^13 for the 14 bits that y and delta
    # drop (one constant for both), 2^15 for the step's 16.
    changes = [m.id.rsplit(":", 1)[1] for m in first.mutants if m.kind == "const"]
    assert [changes.count(f"16'h{offset}{step}1") for offset in ("2000", "8000") for step in "+-"] == [1] * 4, changes


def test_semantic_sites_follow_names_and_aliases():
    stochastic = enumerate_mutants(_design("ssdfa_hardtanh_stoch8").verilog)
    assert any(m.kind == "lfsr-tap" for m in stochastic.mutants)
    # hardtanh's f' still compares the activation with its bounds: cmp-flip finds it there.
    assert any(m.kind == "cmp-flip" and "$signed(c_y)" in m.original for m in stochastic.mutants)
    # y, delta and step (one word) share one saturation, named after y; w has its own.
    assert {m.id for m in stochastic.mutants if m.kind == "sat-drop"} == {
        f"sat-drop:{cast}:{side}" for cast in ("y", "w") for side in ("pos", "neg")}
    assert {f"sat-drop:{cast}:{side}" for cast in ("delta", "step") for side in ("pos", "neg")} <= {
        entry.id for entry in stochastic.not_applicable}
    # tanh's f' is a named alias Yosys keeps at the end; the stuck-at mutant goes to its driver.
    tanh = _design("sdfa2_tanh_wrap")
    stuck = {m.id: m for m in enumerate_mutants(tanh.verilog, config=tanh.config).mutants if m.kind == "fprime-stuck"}
    assert set(stuck) == {"fprime-stuck:fprime_next:0", "fprime-stuck:fprime_next:1"}
    assert all("fprime_next" not in m.mutated for m in stuck.values())
    # The output layer's f' is a constant it never uses: not applicable.
    output = enumerate_mutants(_design("output_identity_stoch").verilog)
    assert {"fprime-stuck:0", "fprime-stuck:1"} <= {entry.id for entry in output.not_applicable}


def test_a_sample_of_mutants_is_a_seeded_subset_in_order():
    mutants = enumerate_mutants(_design("ssdfa_relu_rnd16").verilog).mutants
    picked = sample(mutants, 7, seed=3)
    assert picked == sample(mutants, 7, seed=3) != sample(mutants, 7, seed=4)
    assert len(picked) == 7 and picked == [m for m in mutants if m in picked]
    assert sample(mutants, None, seed=3) == mutants


DECISIVE = {("y", "tie"), ("y", "tie-1", "pos"), ("y", "above-max"), ("y", "below-min"), ("y=", 0),
            ("delta", "tie"), ("delta", "above-max"), ("delta", "below-min"),
            ("step", "tie"), ("w", "above-max"), ("w", "below-min")}


def test_the_directed_canonical_set_meets_the_corner_cases_random_data_misses():
    golden = read_golden_set(CANONICAL["ssdfa_relu_rnd16"])
    met = corner_cases(golden.config, _stimulus_of(golden))
    assert DECISIVE <= met, sorted(map(str, DECISIVE - met))
    drawn = corner_cases(golden.config, draw_stimulus(golden.config, golden.parameters["samples"]))
    assert not DECISIVE <= drawn  # the same samples as drawn, before steering, miss some


def test_the_sdfa_tanh_set_meets_the_stochastic_carry_edge_of_its_delta():
    """The delta cast drops 18 bits and adds {draw, 2'h0}: only a value whose dropped bits plus
    the offset are all ones tells an offset one too high apart, which random data misses."""
    golden = read_golden_set(CANONICAL["sdfa2_tanh_wrap"])
    assert ("delta", "stoch-edge") in corner_cases(golden.config, _stimulus_of(golden))
    drawn = corner_cases(golden.config, draw_stimulus(golden.config, golden.parameters["samples"]))
    assert ("delta", "stoch-edge") not in drawn


@pytest.mark.parametrize("rounding", [Rounding.RND, Rounding.TRN])
def test_a_new_weight_counts_above_the_maximum_only_when_its_rounded_step_puts_it_there(rounding):
    """Half an LSB below zero, the exact step's floor is -1 LSB, so the weight at its maximum
    minus that floor is one above it: RND rounds that step to 0 (the weight stays at the maximum:
    not the case), TRN to -1 (one above it: the case). At the minimum, a step of half an LSB
    rounds to 1 LSB under RND (one below: the case) and to 0 under TRN (not)."""
    from dataclasses import replace

    from ssdfa.model.neuron_ops import ArithmeticConfig

    a = replace(ArithmeticConfig(), update_rounding=rounding)
    dropped = a.delta.frac_bits + a.activation.frac_bits + a.shift - a.weight.frac_bits
    half = 1 << (dropped - 1)

    def cases(weight, exact_step):
        return _weight_range_cases(a, a.delta.frac_bits, np.array([[weight]]), np.array([[exact_step]]), None)

    top, bottom = a.weight.max_raw, a.weight.min_raw
    assert (("w", "above-max") in cases(top, -half)) == (rounding is Rounding.TRN)
    assert ("w", "above-max") in cases(top, -3 * half)  # -1.5 LSB: -1 or -2, above either way
    assert cases(top, 0) == set() and cases(top - 1, -half) == set()
    assert (("w", "below-min") in cases(bottom, half)) == (rounding is Rounding.RND)
    assert ("w", "below-min") in cases(bottom, 3 * half)
    assert cases(bottom, 0) == set() and cases(bottom + 2, 3 * half) == set()


@pytest.mark.parametrize("seed", range(20))
def test_the_carry_edge_residue_sets_every_dropped_bit(seed):
    rng = np.random.default_rng(seed)
    dropped = int(rng.integers(17, 40))
    coefficient = int(rng.integers(-(1 << 20), 1 << 20)) << int(rng.integers(0, 3))
    offset = int(rng.integers(0, 1 << 16)) << (dropped - 16)
    solution = _edge_residue(coefficient, offset, dropped)
    if solution is None:  # only when a power of two in the coefficient rules every value out
        zeros = (abs(coefficient) & -abs(coefficient)).bit_length() - 1
        assert coefficient == 0 or ((-1 - offset) % (1 << dropped)) % (1 << zeros) != 0, f"seed {seed}"
        return
    residue, bits = solution
    for value in (residue, residue - (1 << bits), residue + 5 * (1 << bits)):
        total = coefficient * value + offset
        assert total % (1 << dropped) == (1 << dropped) - 1, f"seed {seed}"


#: The residues below the cut each canonical set needs for its deterministic non-RND casts: a
#: rounding offset one off (TRN's 0 + 1, TRN_ZERO's 2^d - 1 - 1 and 0 + 1, RND_CONV's
#: 2^(d-1) - 1 + LSB with the constant one off or the LSB subtracted) shows only there.
CUTS = {
    "sdfa2_tanh_wrap": {("y", "cut", "all-ones")},
    "output_identity_stoch": {("y", "cut", "all-ones"), ("y", "cut", "neg-one")},
    "dfa_dense_relu": {(cast, "cut", tie) for cast in ("delta", "step") for tie in ("tie-even", "tie-odd")},
    "ssdfa_hardtanh_stoch8": {("y", "cut", "tie-even"), ("y", "cut", "tie-odd")},
}


@pytest.mark.parametrize("name", sorted(CUTS))
def test_the_canonical_sets_meet_the_residues_below_the_cut_of_their_rounding(name):
    golden = read_golden_set(CANONICAL[name])
    met = corner_cases(golden.config, _stimulus_of(golden))
    assert CUTS[name] <= met, sorted(map(str, CUTS[name] - met))
    drawn = corner_cases(golden.config, draw_stimulus(golden.config, golden.parameters["samples"]))
    assert not CUTS[name] <= drawn  # random data alone misses at least one


@pytest.mark.parametrize("rounding", [Rounding.TRN, Rounding.TRN_ZERO, Rounding.RND_CONV])
def test_each_cut_residue_is_where_an_offset_one_off_changes_the_result(rounding):
    """Against the offsets of ``building_blocks.round_offset``: for every cut target, some
    value with that residue rounds differently under an offset one higher or one lower."""
    dropped = 5

    def offset(value):
        if rounding is Rounding.TRN:
            return 0
        if rounding is Rounding.TRN_ZERO:
            return (1 << dropped) - 1 if value < 0 else 0
        return (1 << (dropped - 1)) - 1 + ((value >> dropped) & 1)

    for case, residue, bits, sign in _cut_targets(rounding, dropped):
        values = [v for v in range(-512, 512) if v % (1 << bits) == residue and (not sign or (v > 0) == (sign > 0))]
        assert values, case
        for value in values:
            right = (value + offset(value)) >> dropped
            assert {(value + offset(value) + change) >> dropped for change in (-1, 1)} - {right}, (case, value)


@pytest.mark.parametrize("seed", range(20))
def test_the_residue_solution_hits_any_target(seed):
    rng = np.random.default_rng(seed)
    bits = int(rng.integers(1, 40))
    coefficient = int(rng.integers(-(1 << 20), 1 << 20)) << int(rng.integers(0, 3))
    target = int(rng.integers(0, 1 << bits))
    solution = _residue_solution(coefficient, target, bits)
    if solution is None:
        zeros = (abs(coefficient) & -abs(coefficient)).bit_length() - 1
        assert coefficient == 0 or zeros >= bits or target % (1 << zeros), f"seed {seed}"
        return
    residue, period = solution
    for value in (residue, residue - (1 << period), residue + 3 * (1 << period)):
        assert (coefficient * value - target) % (1 << bits) == 0, f"seed {seed}"


#: Survivors argued equivalent, as (set, kind, pattern of the original line), all in the SDFA
#: tanh design (s = 2, WRAP):
#: - ``received``'s sign extension (its d_first branch): that branch holds the first connection's
#:   term; ``partial`` keeps bits [26:0], below the dropped bit 30, and the delta is cast only
#:   after the last connection, from the other branch.
#: - ``addend``'s extension of ``d_product`` (outside the error phase): the adder's sum is as
#:   wide as ``addend``, so the extension bit is the sum's top bit, and every cast of the sum
#:   keeps, under WRAP, only bits below it.
#: - the shared rounding's result multiplexer (``_SharedRound.rounded``): the sign extension of
#:   the casts that drop fewer bits than the widest reaches only bits above every format's word,
#:   which WRAP drops.
#: - ``c_value``'s extension of y (12 bits) to the step's 16-bit shape: FORWARD reads only its
#:   low 12 bits (``c_y``); the upper ones reach the weight subtraction, whose result is written
#:   in UPDATE only.
KNOWN_SURVIVORS = [
    ("sdfa2_tanh_wrap", "sign-ext-drop", r"assign received = d_first \? "),
    ("sdfa2_tanh_wrap", "sign-ext-drop", r"= in_error \? received : \{ d_product\[\d+\], d_product \};"),
    ("sdfa2_tanh_wrap", "sign-ext-drop", r"= in_update \? round_total\[\d+:\d+\] : \{ round_total\[\d+\], "),
    ("sdfa2_tanh_wrap", "sign-ext-drop", r"= in_error \? \{ round_total\[\d+\], "),
    ("sdfa2_tanh_wrap", "sign-ext-drop", r"= in_update \? s_rounded\[\d+:0\] : \{ s_rounded\[\d+\], "),
]

def test_the_canonical_sets_kill_every_pe_mutant_but_the_known_equivalent_ones(require_tool):
    """All five canonical sets on the PE top under Icarus, every mutant of each set's design
    (141, in two simulations): no real fault survives."""
    require_tool("icarus")
    from ssdfa.sim.mutation_campaign import report_lines, run_mutants

    jobs = [CosimJob(name, read_golden_set(path), top="pe") for name, path in sorted(CANONICAL.items())]
    report = run_mutants(jobs, simulator="icarus", hdl_clock=True, batch=128)
    text = "\n".join(report_lines(report))
    assert report.control_passed, text
    # 141 on the PE with the shared rounding: a guard against the catalogue silently losing sites.
    assert report.applicable >= 120 and report.errors == 0, text
    unexplained = []
    allowed = list(KNOWN_SURVIVORS)
    for design in report.designs:
        names = {job.name for job in design.sets}
        for outcome in design.outcomes:
            if outcome.status != "survived":
                continue
            match = next((entry for entry in allowed if entry[0] in names and entry[1] == outcome.mutant.kind
                          and re.search(entry[2], outcome.mutant.original)), None)
            if match is None:
                unexplained.append(outcome.mutant.description)
            else:
                allowed.remove(match)
    assert not unexplained, "mutants that survived the canonical sets:\n" + "\n".join(unexplained)
    assert not allowed, f"listed survivors that no longer survive: {allowed}"
    assert report.killed == report.applicable - len(KNOWN_SURVIVORS)


@pytest.mark.parametrize("kind", ["op-swap", "sat-drop"])
def test_mutant_kinds_can_be_chosen(kind):
    found = enumerate_mutants(_design("ssdfa_relu_rnd16").verilog, kinds=[kind])
    assert found.mutants and {m.kind for m in found.mutants} == {kind}
    with pytest.raises(ValueError, match="unknown mutant kind"):
        enumerate_mutants("", kinds=["bit-flip"])


def test_a_mutant_that_does_not_compile_is_killed_by_compile_and_the_rest_still_run(require_tool, monkeypatch):
    require_tool("icarus")
    import dataclasses

    from ssdfa.sim import mutation_campaign
    from ssdfa.sim.mutants import MutantSet

    design = _design("ssdfa_relu_rnd16")
    real = next(m for m in enumerate_mutants(design.verilog).mutants if m.id == "fprime-stuck:fprime_next:1")
    broken = dataclasses.replace(real, id="broken", mutated=real.original.replace("assign ", "assign = ", 1))
    monkeypatch.setattr(mutation_campaign, "enumerate_mutants",
                        lambda verilog, kinds=None, config=None: MutantSet([real, broken], [], []))
    job = CosimJob("ssdfa_relu_rnd16", read_golden_set(CANONICAL["ssdfa_relu_rnd16"]), top="pe")
    report = mutation_campaign.run_mutants([job], simulator="icarus")
    statuses = {o.mutant.id: (o.status, o.detail) for o in report.designs[0].outcomes}
    assert statuses["fprime-stuck:fprime_next:1"][0] == "killed"
    assert statuses["broken"][0] == "killed-by-compile" and statuses["broken"][1], statuses
    assert report.control_passed and report.passed and report.killed_by_compile == 1
    assert "(100.0%; 1 by compile)" in report.summary()
