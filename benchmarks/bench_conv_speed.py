"""Speed of bit-exact fixed-point convolutional training against float32, side by side.

Network: the paper's MNIST CNN by default (3x3 convolutions of 32 and 64 filters, 2x2 max
pooling, 128 tanh neurons, 10 outputs; ``--conv``/``--hidden`` change it), on random 28x28
images. Both sides run the same im2col + BLAS code (``model.conv_ops``): float32 reals in one,
integer-valued float64 raw values with the contract's casts and LFSR draws in the other
(16-bit formats, STOCH update rounding). Every figure is CPU time per sample
(``time.process_time``), best of ``--repeats`` rounds that time each side once, one after the
other, in this one run, with single-threaded BLAS:

- a training step (forward, deltas, updates) at each batch size, for BP and SSDFA;
- inference (forward only) at batch 256.

Run: ``python benchmarks/bench_conv_speed.py`` (``--quick`` for a smaller network).
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from ssdfa.cli import run_script  # noqa: E402
from ssdfa.cli._argtypes import positive_int  # noqa: E402
from ssdfa.model.conv_network import ConvLayerSpec, ConvNetSpec, FixedConvNetwork, FloatConvNetwork  # noqa: E402
from ssdfa.model.neuron_ops import ArithmeticConfig  # noqa: E402


def per_sample(step, samples: int) -> float:
    started = time.process_time()
    step()
    return (time.process_time() - started) / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conv", default="32c3,64c3p2")
    parser.add_argument("--hidden", default="128")
    parser.add_argument("--batches", default="8,32")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--quick", action="store_true", help="16c3p2,32c3p2 and one repeat")
    args = parser.parse_args()
    if args.quick:
        args.conv, args.repeats = "16c3p2,32c3p2", 1
    conv = tuple(ConvLayerSpec.parse(t) for t in args.conv.split(","))
    hidden = tuple(int(n) for n in args.hidden.split(",") if n)
    batches = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(0)
    images = rng.random((256, 784), dtype=np.float32)
    labels = rng.integers(0, 10, size=256)
    config = ArithmeticConfig(shift=8)
    print(f"network 28x28x1 -> {args.conv} -> {args.hidden} -> 10, tanh; CPU ms per sample, best of {args.repeats}")
    print(f"{'case':28} {'float32':>9} {'fixed':>9} {'fixed/float':>11}")
    for algorithm in ("bp", "ssdfa"):
        spec = ConvNetSpec((28, 28, 1), conv, hidden, 10, algorithm, "tanh")
        for batch in batches:
            floats = FloatConvNetwork(spec, lr=2.0**-6)
            fixed = FixedConvNetwork(spec, config, batch=batch)
            x, y = images[:batch], labels[:batch]
            raw = fixed.quantize_inputs(x)
            floats.train_batch(x, y), fixed.train_batch(raw, y)  # warm up (tables, plans)
            best = [np.inf, np.inf]
            for _ in range(args.repeats):
                best[0] = min(best[0], per_sample(lambda: floats.train_batch(x, y), batch))
                best[1] = min(best[1], per_sample(lambda: fixed.train_batch(raw, y), batch))
            name = f"train {algorithm}, batch {batch}"
            print(f"{name:28} {best[0] * 1e3:9.2f} {best[1] * 1e3:9.2f} {best[1] / best[0]:11.2f}", flush=True)
    raw = fixed.quantize_inputs(images)
    best = [np.inf, np.inf]
    for _ in range(args.repeats):
        best[0] = min(best[0], per_sample(lambda: floats.outputs(images), len(images)))
        best[1] = min(best[1], per_sample(lambda: fixed.outputs(raw), len(images)))
    print(f"{'inference, batch 256':28} {best[0] * 1e3:9.2f} {best[1] * 1e3:9.2f} {best[1] / best[0]:11.2f}")


if __name__ == "__main__":
    run_script(main)
