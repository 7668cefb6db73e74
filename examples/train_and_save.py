"""Train SSDFA in bit-exact fixed point on the embedded digits data, then save the network.

Run: python examples/train_and_save.py [FILE.npz]   (default digits_ssdfa.npz)
"""

import sys

from ssdfa.model import (
    ArithmeticConfig, NetworkSpec, TrainingOptions, data_provenance, load_dataset, save_network, train,
)

path = sys.argv[1] if len(sys.argv) > 1 else "digits_ssdfa.npz"
dataset = load_dataset("digits", seed=0)  # 64 features, 10 classes; train/validation/test split seed 0
spec = NetworkSpec(
    (dataset.num_features, 32, dataset.num_classes),
    algorithm="ssdfa",
    activation="relu",
    balanced=True,  # the defaults of `ssdfa train` (docs/model.md)
    feedback_gain=8.0,
    seed=0,
)
config = ArithmeticConfig(seed=0)  # 16-bit words, stochastic rounding of the updates
result = train(spec, dataset, config=config, options=TrainingOptions(epochs=3))
print(f"trained {'-'.join(map(str, spec.layer_sizes))} SSDFA: test accuracy {result.test_accuracy:.4f}")

# The provenance lets `ssdfa eval` find the dataset and split again, and scale its features as here.
saved = save_network(path, result.network, provenance=data_provenance(dataset, split_seed=0))
print(f"saved {path} (SHA-256 {saved.sha256})")
