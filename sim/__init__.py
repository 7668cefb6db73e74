"""cocotb testbenches and the simulator runner helper."""
