"""Speed of bit-exact fixed-point training against float32 NumPy training, side by side.

Network 784-100-10 (SSDFA, relu, 16-bit formats), synthetic data of MNIST's shape: 784 features
in [0, 1], of which about 19% are non-zero (MNIST's share), labelled into 10 classes by a random
linear teacher. Every figure is CPU time per
training sample (``time.process_time``, best of a few rounds, each round timing every side once,
one after the other), measured in this one run:

- fixed point (16-bit words, RND or STOCH update rounding) against float32 at batch 64 and 1;
- STOCH against RND;
- at batch 1 also with dense inputs (no zero features), where the fixed path cannot skip
  zero-input columns of the weight update.

Both sides use single-threaded BLAS (set before NumPy loads) so that the ratios compare the
arithmetic rather than thread scheduling. Run: ``python benchmarks/bench_model_speed.py``.
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
from ssdfa.model.arithmetic import Rounding  # noqa: E402
from ssdfa.model.fixed_network import FixedNetwork  # noqa: E402
from ssdfa.model.float_network import FloatNetwork  # noqa: E402
from ssdfa.model.network import NetworkSpec  # noqa: E402
from ssdfa.model.neuron_ops import ArithmeticConfig  # noqa: E402

GOALS = {"batch 64": 2.0, "batch 1": 3.0, "STOCH/RND": 1.3}


def synthetic_mnist(samples: int, density: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features of MNIST's shape with the given share of non-zero values, and the labels a
    random linear teacher gives them (so that training behaves as on a learnable task)."""
    rng = np.random.default_rng(seed)
    values = rng.random((samples, 784), dtype=np.float32)
    mask = rng.random((samples, 784)) < density
    x = np.where(mask, values, 0).astype(np.float32)
    teacher = rng.normal(size=(784, 10))
    return x, np.argmax(x @ teacher, axis=1)


def timed_pass(step, samples: int, batch: int) -> float:
    """CPU seconds per sample of one pass of ``samples`` samples."""
    started = time.process_time()
    for start in range(0, samples, batch):
        step(start, batch)
    return (time.process_time() - started) / samples


def best_interleaved(steps: dict, samples: int, batch: int, repeats: int) -> dict:
    """Best CPU seconds per sample of each side over ``repeats`` rounds.

    Each round times one pass of every side, one after the other, so that all sides see the
    same machine load (on a shared machine it drifts over seconds; timing one side's repeats
    and then the next side's would fold that drift into their ratio). The best pass counts:
    other jobs only ever add time.
    """
    best = {name: float("inf") for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            best[name] = min(best[name], timed_pass(step, samples, batch))
    return best


#: A learning rate of 2^-SHIFT per sample (the float model averages a batch, the fixed one adds
#: it up with a shift larger by log2(batch)) and the feedback gain that is stable on 784 inputs.
SHIFT = 6
FEEDBACK_GAIN = 2.0


def measure(batch: int, density: float, samples: int, repeats: int) -> dict:
    spec = NetworkSpec((784, 100, 10), algorithm="ssdfa", balanced=True, feedback_gain=FEEDBACK_GAIN, seed=0)
    x, y = synthetic_mnist(samples, density)
    floating = FloatNetwork(spec, dtype=np.float32, lr=2.0**-SHIFT)
    floating.train_batch(x[:batch], y[:batch])  # warm-up
    steps = {"float32": lambda i, b: floating.train_batch(x[i : i + b], y[i : i + b])}
    shift = SHIFT + int(np.log2(batch))
    for rounding in (Rounding.RND, Rounding.STOCH):
        fixed = FixedNetwork(spec, ArithmeticConfig(update_rounding=rounding, shift=shift), batch=batch)
        raw = fixed.quantize_inputs(x).astype(fixed.dtype)
        fixed.train_batch(raw[:batch], y[:batch])  # warm-up: LFSR tables and stream
        steps[rounding.name] = lambda i, b, fixed=fixed, raw=raw: fixed.train_batch(raw[i : i + b], y[i : i + b])
    times = best_interleaved(steps, samples, batch, repeats)
    if not all(np.isfinite(w).all() for w in floating.weights):
        raise RuntimeError("float32 training diverged: the timing would not be representative")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=positive_int, default=2048, help="samples per timed pass (default 2048)")
    parser.add_argument(
        "--repeats", type=positive_int, default=5, help="rounds, each timing one pass of every side; the best counts (default 5)"
    )
    args = parser.parse_args()

    rows = []
    for label, batch, density in (("batch 64", 64, 0.19), ("batch 1", 1, 0.19), ("batch 1, dense inputs", 1, 1.0)):
        samples = args.samples if batch > 1 else args.samples // 2
        t = measure(batch, density, samples, args.repeats)
        rows.append((label, t))
    print(f"784-100-10 SSDFA, synthetic MNIST-shaped data, CPU time per sample (best of {args.repeats})")
    print()
    print("| case | float32 | fixed RND | fixed STOCH | RND / float32 | STOCH / float32 | STOCH / RND |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, t in rows:
        print(
            f"| {label} | {1e6 * t['float32']:.1f} us | {1e6 * t['RND']:.1f} us | {1e6 * t['STOCH']:.1f} us | "
            f"{t['RND'] / t['float32']:.2f}x | {t['STOCH'] / t['float32']:.2f}x | {t['STOCH'] / t['RND']:.2f}x |"
        )
    print(
        "goals: fixed/float32 <= {batch 64}x at batch 64 and <= {batch 1}x at batch 1; "
        "STOCH/RND <= {STOCH/RND}x".format(**GOALS)
    )


if __name__ == "__main__":
    run_script(main)
