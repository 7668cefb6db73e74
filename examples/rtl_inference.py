"""Run a saved network in the RTL network under a simulator and compare with the model.

Run: python examples/rtl_inference.py [FILE.npz] [icarus|verilator] [SAMPLES]
(needs the `sim` extra and the simulator; the same as `ssdfa eval FILE.npz --sim SIM --limit N`)
"""

import sys

import numpy as np

from ssdfa.model import dataset_as_trained, limit_samples, load_network
from ssdfa.sim.network_weights import hardware_configs, hardware_state, simulate_inference

path = sys.argv[1] if len(sys.argv) > 1 else "digits_ssdfa.npz"
simulator = sys.argv[2] if len(sys.argv) > 2 else "verilator"
samples = int(sys.argv[3]) if len(sys.argv) > 3 else 20

saved = load_network(path)
dataset = limit_samples(dataset_as_trained(saved), test=samples)  # scaled as in its training
network = saved.network()
x = network.quantize_inputs(dataset.x_test)
model = network.predict(x)

configs = hardware_configs(saved)  # default PEs: at most 8 neurons per PE
rtl = simulate_inference(configs, hardware_state(saved, configs), x, dataset.y_test, simulator=simulator)
print(f"model accuracy {np.mean(model == dataset.y_test):.4f}, RTL accuracy {np.mean(rtl.predictions == dataset.y_test):.4f} "
      f"on {len(model)} samples ({rtl.cycles:,} clocks)")
print("RTL predictions identical to the model's" if np.array_equal(model, rtl.predictions) else "RTL DIFFERS")
sys.exit(0 if np.array_equal(model, rtl.predictions) else 1)
