"""Write the Verilog of the SSDFA network whose memories start with a saved network's weights.

Run: python examples/export_verilog.py [FILE.npz] [OUT_DIR]   (needs the `hw` extra: Amaranth)
"""

import sys

from ssdfa.model import load_network
from ssdfa.rtl.network import generate_network
from ssdfa.sim.network_weights import hardware_configs, hardware_state

path = sys.argv[1] if len(sys.argv) > 1 else "digits_ssdfa.npz"
out_dir = sys.argv[2] if len(sys.argv) > 2 else "verilog"
saved = load_network(path)

# The file holds the logical network; the hardware spreads each layer over PEs (here 4 and 2:
# 8 and 5 neurons per PE) and loads neuron n of a layer on PE n // K, slot n % K.
configs = hardware_configs(saved, pes=(4, 2))
state = hardware_state(saved, configs)  # refuses formats or sizes the hardware does not have
verilog = generate_network(configs, out_dir, initial_state=state)
print(f"wrote {verilog} ({verilog.stat().st_size // 1024} KiB): weight memories and index tables start trained")
