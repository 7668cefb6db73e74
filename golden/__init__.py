"""Golden-vector format and the committed canonical sets."""
