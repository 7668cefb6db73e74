"""Load a saved network and evaluate it in the model, in fixed point, on the digits test split.

Run: python examples/evaluate.py [FILE.npz]   (written by train_and_save.py)
"""

import sys

import numpy as np

from ssdfa.model import dataset_as_trained, load_network

path = sys.argv[1] if len(sys.argv) > 1 else "digits_ssdfa.npz"
saved = load_network(path)  # checks the checksums, formats and shapes; SsdfaError names any problem
print(f"{path}: {saved.mode} {saved.spec.algorithm.value} {'-'.join(map(str, saved.spec.layer_sizes))}, "
      f"weights {saved.config.weight if saved.fixed else saved.float_dtype}")

# The dataset of its provenance, features scaled as in its training (offsets, scales, input shift).
dataset = dataset_as_trained(saved)
network = saved.network()  # a FixedNetwork (or FloatNetwork) with the saved state
x = network.quantize_inputs(dataset.x_test) if saved.fixed else dataset.x_test
predictions = network.predict(x)
print(f"test accuracy {np.mean(predictions == dataset.y_test):.4f} on {len(predictions)} samples")

# Per-class recall, from the same predictions.
for label in range(dataset.num_classes):
    chosen = dataset.y_test == label
    print(f"  class {label}: {np.mean(predictions[chosen] == label):.3f} of {int(chosen.sum())}")
