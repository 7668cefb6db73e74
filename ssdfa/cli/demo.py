"""``ssdfa demo``: the project's main job on the embedded digits data, as a list of steps.

Today: train SSDFA bit-exact in fixed point (64-100-10, 16-bit words, stochastic update
rounding) and print what was configured and how it did. Each stage is a ``DemoStep`` in
``STEPS``; later stages (Verilog generation, RTL verification) are new steps that read what the
earlier ones left in the ``DemoContext`` and add their own lines to the summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from ssdfa.cli._argtypes import seed_int
from ssdfa.cli.train import DEFAULT_CONNECTIVITY, arithmetic_summary
from ssdfa.model.defaults import default_hyperparameters
from ssdfa.model.network import Algorithm, NetworkSpec
from ssdfa.model.neuron_ops import Activation, ArithmeticConfig

DEFAULT_EPOCHS = 5
HIDDEN = 100


@dataclass
class DemoContext:
    """What the steps share: the arguments, the output stream and each step's results."""

    args: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)
    dataset: object = None  # datasets.Dataset
    spec: NetworkSpec | None = None
    config: ArithmeticConfig | None = None
    result: object = None  # training.TrainingResult
    #: Lines for the final summary, added by the steps in order.
    summary: list = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


@dataclass(frozen=True)
class DemoStep:
    """One stage of the demo: a name and a function of the context."""

    name: str
    run: Callable[[DemoContext], None]


def load_data(ctx: DemoContext) -> None:
    from ssdfa.model.datasets import load_dataset

    ctx.dataset = load_dataset("digits", seed=0)
    d = ctx.dataset
    ctx.say(
        f"  digits: {d.num_features} features, {d.num_classes} classes; "
        f"{len(d.y_train)} train / {len(d.y_val)} validation / {len(d.y_test)} test samples"
    )


def configure(ctx: DemoContext) -> None:
    d = ctx.dataset
    seed = ctx.args.seed
    # The defaults of `ssdfa train` (the rule of model.defaults: gain 8, shift 4 on digits).
    config = ArithmeticConfig(seed=seed)
    rule = default_hyperparameters(d.num_features, (HIDDEN,), feedback_format=config.feedback)
    ctx.spec = NetworkSpec(
        (d.num_features, HIDDEN, d.num_classes),
        algorithm=Algorithm.SSDFA,
        activation=Activation.RELU,
        balanced=DEFAULT_CONNECTIVITY == "balanced",
        feedback_gain=rule.feedback_gain,
        seed=seed,
    )
    ctx.config = ArithmeticConfig(seed=seed, shift=rule.shift)
    a = arithmetic_summary(ctx.config)
    sizes = "-".join(str(n) for n in ctx.spec.layer_sizes)
    ctx.say(f"  network: {sizes}, SSDFA (one output error per hidden neuron), relu, seed {seed}")
    ctx.say(
        f"  formats: activations {a['activation']}, weights {a['weight']}, feedback {a['feedback']}, "
        f"errors {a['error']}, deltas {a['delta']}"
    )
    ctx.say(
        f"  modes: signal rounding {a['rounding']}, update rounding {a['update_rounding']} (per-neuron LFSR), "
        f"overflow {a['overflow']}, learning rate 2^-{a['shift']}"
    )
    ctx.summary.append(f"network {sizes} SSDFA, {a['weight']} weights, {a['update_rounding']} updates")


def train_fixed(ctx: DemoContext) -> None:
    from ssdfa.model.training import TrainingOptions, train

    epochs = ctx.args.epochs

    def report(record) -> None:
        ctx.say(
            f"  epoch {record.epoch}/{epochs}: train {100 * record.train_accuracy:.2f}%, "
            f"validation {100 * record.val_accuracy:.2f}% ({record.seconds:.1f} s)"
        )

    ctx.result = train(
        ctx.spec,
        ctx.dataset,
        config=ctx.config,
        options=TrainingOptions(epochs=epochs),
        progress=sys.stderr.isatty(),
        on_epoch=report,
    )
    r = ctx.result
    ctx.summary.append(
        f"bit-exact training: {epochs} epochs, {r.samples} samples in {r.seconds:.1f} s; "
        f"accuracy train {100 * r.train_accuracy:.2f}%, validation {100 * r.val_accuracy:.2f}%, "
        f"test {100 * r.test_accuracy:.2f}%"
    )


def summarise(ctx: DemoContext) -> None:
    for line in ctx.summary:
        ctx.say(f"  {line}")


#: The demo, in order. New stages go before "summary".
def verify_rtl(ctx) -> None:
    """Generate the learner's Verilog and train it for one digits epoch on Verilator, checking
    every weight against the model (imported here: ``ssdfa --help`` must not load Amaranth)."""
    from ssdfa.sim.network_cosim import rtl_demo_step

    rtl_demo_step(ctx)


STEPS: list = [
    DemoStep("data", load_data),
    DemoStep("configure", configure),
    DemoStep("train (fixed point)", train_fixed),
    DemoStep("RTL: Verilog, then one digits epoch on Verilator against the model", verify_rtl),
    DemoStep("summary", summarise),
]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train SSDFA bit-exact in fixed point on the embedded digits data",
        description="The main job on the embedded digits data, step by step.",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"training epochs (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=0,
        help="seed of weights, feedback, sample order and LFSRs (default 0)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, not {args.epochs}")
    if args.seed < 0:
        raise ValueError(f"--seed must be non-negative, not {args.seed}")
    ctx = DemoContext(args)
    started = time.perf_counter()
    for number, step in enumerate(STEPS, 1):
        ctx.say(f"[{number}/{len(STEPS)}] {step.name}")
        step.run(ctx)
    ctx.say(f"done in {time.perf_counter() - started:.1f} s")
    return 0
