"""The decorator every generated function gets.

cache=True: a second process loads machine code instead of compiling.
error_model="numpy": x / 0 is inf or nan as in NumPy (Python's model raises
ZeroDivisionError and tests every division). No fastmath: it would make isnan
always false, and divergence detection relies on it.
"""
JIT = '@njit(cache=True, error_model="numpy")'
