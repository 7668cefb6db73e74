"""NumPy reference model: float and bit-accurate fixed-point training (pure NumPy)."""
