"""The learner on a board: the UART frame protocol, the host link and driver, bitstream builds
(docs/board.md)."""
