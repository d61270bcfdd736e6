"""Explain: derivations, update rules and backprop runs as text, LaTeX, graphs and Jupyter display."""
from symgrad.explain.derivation import Derivation, derive

__all__ = ["Derivation", "derive"]
