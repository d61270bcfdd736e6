"""The sigmoid perceptron's update rule (lecture section 6), in text and LaTeX.

With sigma_i = sigma(sum_j w_j x_ij) and delta_i = y_i - sigma_i, the lecture derives
    w_j <- w_j + 2 alpha sum_i delta_i sigma_i (1 - sigma_i) x_ij
and symgrad prints exactly that, from the same reverse sweep that computes gradients.
Run: python examples/perceptron_rule.py [derivation.tex]
"""
import sys

import numpy as np

import symgrad as sg

X = sg.tensor("X", ("N", "d"))
t = sg.tensor("t", ("N",))
w = sg.param("w", ("d",))
L = sg.sum((t - sg.sigmoid(X @ w)) ** 2)

der = sg.derive(L, w)
rule = der.update_rule()
print(rule)
print()
print(rule.to_latex())
assert "delta_i sigma_i (1 - sigma_i) X_ij" in str(rule)

# sigma'(x) = sigma(x) (1 - sigma(x)), the identity the rule rests on.
x = sg.scalars("x")
print("\nd sigmoid(x)/dx =", sg.grad(sg.sigmoid(x), [x])[0])

rng = np.random.default_rng(1)
data = {"X": rng.standard_normal((8, 3)), "t": rng.random(8), "w": rng.standard_normal(3)}
print("check_grad relative error:", sg.check_grad(L, [w], data))

if len(sys.argv) > 1:  # a standalone LaTeX document of the whole derivation
    with open(sys.argv[1], "w") as f:
        f.write(der.to_latex(document=True))
    print("wrote", sys.argv[1])
