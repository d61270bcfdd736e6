"""Derive: reverse mode over the graph, symbolic adjoints, closed forms, gradient checks."""
