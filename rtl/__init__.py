"""Amaranth components implementing the arithmetic contract of docs/arithmetic.md."""
