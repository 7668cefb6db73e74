"""``ssdfa costs``: MACs, memory traffic and data movement of BP, DFA, SDFA and SSDFA per example.

Reconstructs the paper's Table 1 and Figure 8 for one of its networks and prints the headline
ratios of its §4.4; the counting rules are in docs/costs.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from ssdfa.errors import SsdfaError
from ssdfa.model import costs as cost_model
from ssdfa.model.costs import Algorithm, NetworkCosts, Scope
from ssdfa.model.paper_architectures import NETWORK_NAMES, network

_PASSES = ("forward", "backward", "total")
_COUNT_NAMES = ("macs", "reads", "writes", "movement")
JSON_SCHEMA = 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "costs",
        help="MACs, reads, writes and data movement per training example (the paper's Table 1, Figure 8)",
        description=(
            "Count, per training example, the MACs, memory reads and writes and data movement of BP, "
            "DFA, SDFA and SSDFA on one of the paper's networks, forward and backward, and print the "
            "paper's headline ratios. Counting rules: docs/costs.md."
        ),
    )
    parser.add_argument("--net", required=True, metavar="NET", help=f"one of {', '.join(NETWORK_NAMES)}")
    parser.add_argument(
        "--algo",
        action="append",
        metavar="ALGO",
        help="algorithms to show: bp, dfa, sdfa, ssdfa (repeat or separate with commas; default all)",
    )
    parser.add_argument(
        "--scope",
        default="fc",
        metavar="SCOPE",
        help="fc: the fully connected layers, as the paper's ImageNet comparison (default); all: every layer",
    )
    density = parser.add_mutually_exclusive_group()
    density.add_argument(
        "--sparsity",
        metavar="S",
        help=f"SDFA: fraction of zeros in each feedback row (default {cost_model.DEFAULT_SDFA_SPARSITY})",
    )
    density.add_argument("--connections", metavar="N", help="SDFA: errors delivered to each hidden neuron")
    parser.add_argument(
        "--no-input-error",
        action="store_true",
        help="BP: do not count the error at the first layer's input (the paper counts it: 2|W| MACs)",
    )
    parser.add_argument("--word-bits", default="32", metavar="B", help="bits per word for MB (default 32)")
    parser.add_argument("--per-layer", action="store_true", help="also print every layer's counts")
    parser.add_argument("--plot", metavar="FILE", help="write the grouped bar chart (log scale) to a PNG")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--energy", action="store_true", help="turn the counts into energy per example")
    parser.add_argument(
        "--energy-table",
        metavar="FILE",
        help="TOML or JSON table of pJ per operation (implies --energy; default Horowitz ISSCC 2014, 45 nm)",
    )
    parser.set_defaults(func=run)


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


def _algorithms(values) -> list[Algorithm]:
    if not values:
        return list(Algorithm)
    chosen = [Algorithm.parse(name.strip()) for value in values for name in value.split(",") if name.strip()]
    if not chosen:
        raise SsdfaError(f"--algo {','.join(values)!r} names no algorithm")
    return [a for a in Algorithm if a in chosen]


def _number(option: str, text, kind):
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise SsdfaError(f"{option} must be {expected}, not {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise SsdfaError(f"{option} must be a finite number, not {text!r}")
    return value


def _word_bits(text) -> int:
    bits = _number("--word-bits", text, int)
    if not 1 <= bits <= cost_model.MAX_WORD_BITS:
        raise SsdfaError(f"--word-bits must be an integer from 1 to {cost_model.MAX_WORD_BITS}, not {text!r}")
    return bits


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _mb(words: int, word_bits: int) -> float:
    return cost_model.megabytes(words, word_bits)


def _fmt_mb(value: float) -> str:
    return f"{value:.4g}"


def _fmt_ratio(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"


def _table(rows: list[list[str]], right_from: int, right_to: int | None = None) -> list[str]:
    """Columns ``right_from`` up to (not including) ``right_to`` are right-aligned, the others left."""
    right_to = len(rows[0]) if right_to is None else right_to
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if right_from <= i < right_to else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _counts_rows(label: str, counts_by_pass, word_bits: int) -> list[list[str]]:
    rows = []
    for index, (pass_name, counts) in enumerate(counts_by_pass):
        rows.append(
            [
                label if index == 0 else "",
                pass_name,
                f"{counts.macs:,}",
                f"{counts.reads:,}",
                f"{counts.writes:,}",
                f"{counts.movement:,}",
                _fmt_mb(_mb(counts.movement, word_bits)),
            ]
        )
    return rows


_HEADER = ["algorithm", "pass", "MACs", "reads", "writes", "movement (words)", "movement (MB)"]


def _scope_text(costs: NetworkCosts) -> str:
    if costs.scope is Scope.FC and network(costs.network.name).has_conv:
        return "fully connected layers (convolutions frozen)"
    return "all layers"


def _print_text(results, shown, ratios, args, word_bits, table, out) -> None:
    first = next(iter(results.values()))
    net = first.network
    print(
        f"ssdfa costs: {net.name} ({net.dataset}), {_scope_text(first)}: {net.describe()}; "
        f"{net.errors} errors",
        file=out,
    )
    print(
        f"per training example (batch of one); {word_bits}-bit words, 1 MB = 10^6 bytes; "
        f"BP backward on a von Neumann machine, the others near-memory",
        file=out,
    )
    if not first.input_error:
        print("BP does not compute the error at the first layer's input (--no-input-error)", file=out)
    print(file=out)
    rows = [_HEADER]
    for algorithm in shown:
        c = results[algorithm]
        rows += _counts_rows(c.label, [(p, getattr(c, p)) for p in _PASSES], word_bits)
    for line in _table(rows, right_from=2):
        print(line, file=out)

    if args.per_layer:
        print(file=out)
        print("per layer:", file=out)
        rows = [["algorithm / layer", "pass", *_HEADER[2:]]]
        for algorithm in shown:
            c = results[algorithm]
            for layer in c.layers:
                label = f"{c.label} {layer.layer.name}"
                passes = [("forward", layer.forward), ("backward", layer.backward)]
                rows += _counts_rows(label, passes, word_bits)
        for line in _table(rows, right_from=2):
            print(line, file=out)

    print(file=out)
    print("headline ratios, backward pass (the paper's section 4.4):", file=out)
    paper = cost_model.PAPER_RATIOS
    lines = [
        [
            "data movement",
            "BP / SSDFA",
            _fmt_ratio(ratios.movement_bp_ssdfa),
            f"paper (ImageNet): ~{paper['movement_bp_ssdfa'][0]:,.0f}x",
        ],
        [
            "data movement",
            "DFA / SSDFA",
            _fmt_ratio(ratios.movement_dfa_ssdfa),
            f"paper (ImageNet): ~{paper['movement_dfa_ssdfa'][0]:,.0f}x; "
            f"{_fmt_ratio(ratios.movement_dfa_ssdfa_hidden)} over the hidden layers",
        ],
        [
            "MACs",
            "BP / SSDFA",
            _fmt_ratio(ratios.macs_bp_ssdfa),
            f"paper (CIFAR100, ImageNet): ~{paper['macs_bp_ssdfa'][0]:.0f}x; "
            f"{_fmt_ratio(ratios.macs_bp_ssdfa_without_input_error)} "
            "without the error at the first layer's input",
        ],
    ]
    for line in _table(lines, right_from=2, right_to=3):
        print("  " + line, file=out)
    print(
        f"forward + backward: data movement BP / SSDFA {_fmt_ratio(ratios.total_movement_bp_ssdfa)}, "
        f"MACs BP / SSDFA {_fmt_ratio(ratios.total_macs_bp_ssdfa)}",
        file=out,
    )

    if table is not None:
        print(file=out)
        print(
            f"energy per example, uJ ({table.name}: MAC {table.mac_pj:g} pJ, read {table.read_pj:g} pJ, "
            f"write {table.write_pj:g} pJ, main memory {table.main_memory_pj:g} pJ/word, "
            f"on-chip link {table.link_pj:g} pJ/word):",
            file=out,
        )
        rows = [["algorithm", "pass", "MACs", "reads", "writes", "movement", "total"]]
        energies = {a: cost_model.energy(results[a], table) for a in Algorithm}
        for algorithm in shown:
            for index, pass_name in enumerate(_PASSES):
                e = energies[algorithm][pass_name]
                rows.append(
                    [
                        results[algorithm].label if index == 0 else "",
                        pass_name,
                        *(f"{v / 1e6:.4g}" for v in (e.macs, e.reads, e.writes, e.movement, e.total)),
                    ]
                )
        for line in _table(rows, right_from=2):
            print(line, file=out)
        bp, ssdfa = (energies[a]["total"].total for a in (Algorithm.BP, Algorithm.SSDFA))
        # A table with every SSDFA cost at 0 pJ leaves nothing to divide by: no ratio then.
        print(f"energy BP / SSDFA (forward + backward): {_fmt_ratio(bp / ssdfa if ssdfa else math.nan)}", file=out)

    if args.plot:
        print(file=out)
        print(f"wrote {args.plot}", file=out)


def _counts_json(counts, word_bits: int) -> dict:
    return {**counts.as_dict(), "movement_mb": _mb(counts.movement, word_bits)}


def _json_object(results, shown, ratios, word_bits, table) -> dict:
    first = next(iter(results.values()))
    net = first.network
    algorithms = []
    for algorithm in shown:
        c = results[algorithm]
        entry = {
            "algorithm": algorithm.value,
            "label": c.label,
            "connections": c.connections,
            "substrate": algorithm.substrate,
            **{p: _counts_json(getattr(c, p), word_bits) for p in _PASSES},
            "layers": [
                {
                    "name": layer.layer.name,
                    "forward": _counts_json(layer.forward, word_bits),
                    "backward": _counts_json(layer.backward, word_bits),
                }
                for layer in c.layers
            ],
        }
        if table is not None:
            entry["energy_pj"] = {p: e.as_dict() for p, e in cost_model.energy(c, table).items()}
        algorithms.append(entry)
    obj = {
        "schema": JSON_SCHEMA,
        "net": net.name,
        "dataset": net.dataset,
        "source": net.source,
        "scope": first.scope.value,
        "errors": net.errors,
        "input_error": first.input_error,
        "word_bits": word_bits,
        "bytes_per_mb": 1_000_000,
        "layers": [
            {
                "name": layer.name,
                "kind": layer.kind.value,
                "inputs": layer.inputs,
                "neurons": layer.neurons,
                "fan_in": layer.fan_in,
                "weights": layer.weights,
                "in_shape": list(layer.in_shape),
                "out_shape": list(layer.out_shape),
            }
            for layer in net.layers
        ],
        "algorithms": algorithms,
        "ratios": {key: None if math.isnan(value) else value for key, value in ratios.as_dict().items()},
        "paper_ratios": {
            key: {"value": value, "claim": claim} for key, (value, claim) in cost_model.PAPER_RATIOS.items()
        },
    }
    if table is not None:
        obj["energy_table"] = table.as_dict()
    return obj


def plot_costs(results, shown, word_bits: int, path) -> None:
    """Grouped bars, log scale: MACs and data movement (MB) per pass and algorithm, as Figure 8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(results.values()))
    net = first.network
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(shown)
    panels = (
        ("MACs per example", lambda counts: counts.macs),
        (
            f"data movement per example (MB, {word_bits}-bit words)",
            lambda counts: _mb(counts.movement, word_bits),
        ),
    )
    for ax, (title, value_of) in zip(axes, panels):
        for index, algorithm in enumerate(shown):
            c = results[algorithm]
            values = [value_of(getattr(c, p)) for p in _PASSES]
            offsets = [p + (index - (len(shown) - 1) / 2) * width for p in range(len(_PASSES))]
            ax.bar(offsets, values, width, label=c.label)
        ax.set_yscale("log")
        ax.set_xticks(range(len(_PASSES)), _PASSES)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{net.name} ({net.dataset}), {_scope_text(first)}", fontsize=11)
    fig.tight_layout()
    import io

    from ssdfa.user_files import write_atomically

    image = io.BytesIO()
    try:
        # No software/date metadata, so the same inputs give the same file.
        fig.savefig(image, format="png", dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)
    try:
        write_atomically(path, image.getvalue())  # whole or not at all
    except OSError as exc:
        raise SsdfaError(f"--plot {path}: cannot write it ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, out=None) -> int:
    out = sys.stdout if out is None else out
    net = network(args.net)
    shown = _algorithms(args.algo)
    scope = Scope.parse(args.scope)
    sparsity = _number("--sparsity", args.sparsity, float)
    connections = _number("--connections", args.connections, int)
    word_bits = _word_bits(args.word_bits)
    table = None
    if args.energy or args.energy_table:
        if args.energy_table:
            table = cost_model.read_energy_table(args.energy_table)
        else:
            table = cost_model.DEFAULT_ENERGY_TABLE
        if table.word_bits != word_bits:
            source = f"energy table {args.energy_table}" if args.energy_table else "the default energy table"
            raise SsdfaError(
                f"{source} is for {table.word_bits}-bit words but --word-bits is {word_bits}; "
                f"give a table with word_bits = {word_bits}"
            )

    results = cost_model.compare(
        net, sparsity, connections=connections, scope=scope, input_error=not args.no_input_error
    )
    ratios = cost_model.headline_ratios(results)
    if args.plot:
        plot_costs(results, shown, word_bits, args.plot)
    if args.json:
        json.dump(_json_object(results, shown, ratios, word_bits, table), out, indent=2, allow_nan=False)
        out.write("\n")
    else:
        _print_text(results, shown, ratios, args, word_bits, table, out)
    return 0
