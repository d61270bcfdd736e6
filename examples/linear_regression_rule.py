"""The lecture's linear-regression update rule, derived by symgrad (lecture section 5).

L = sum_i (y_i - w^T x_i)^2  gives  w_j <- w_j + 2 alpha sum_i delta_i x_ij,
with delta_i = y_i - w^T x_i. The formula is then checked against numbers.
Run: python examples/linear_regression_rule.py
"""
import numpy as np

import symgrad as sg

X = sg.tensor("X", ("N", "d"))
y = sg.tensor("y", ("N",))
w = sg.param("w", ("d",))
L = sg.sum((y - X @ w) ** 2)

der = sg.derive(L, w)
print("Update rule:")
print(der.update_rule())
print("\nIn LaTeX:")
print(der.update_rule().to_latex())
print("\nThe derivation, step by step:")
print(der)

# The printed gradient is a formula we can evaluate, and it agrees with finite differences.
rng = np.random.default_rng(0)
data = {"X": rng.standard_normal((5, 3)), "y": rng.standard_normal(5), "w": rng.standard_normal(3)}
by_formula = der.evaluate_formula(der.gradient, data)
delta = data["y"] - data["X"] @ data["w"]
by_hand = -2 * data["X"].T @ delta
print("\ndL/dw from the printed formula:", np.round(by_formula, 6))
print("dL/dw = -2 X^T delta by hand:   ", np.round(by_hand, 6))
assert np.allclose(by_formula, by_hand)
print("relative error against finite differences:", sg.check_grad(L, [w], data))
