"""The lecture's softmax worked numbers (section 2), computed by symgrad.

Scores cat 3.2, car 5.1, frog -1.7 with true class cat:
exp(s) = 24.5325, 164.0219, 0.18268; p = 0.12998, 0.86905, 0.00097; L = 2.0404;
dL/ds = p - onehot(cat) = (-0.87002, 0.86905, 0.00097).
Then the second example: 4 pixels, 3 classes (cat/dog/ship), s = W x + b, end to end.
Run: python examples/softmax_worked_numbers.py
"""
import numpy as np

import symgrad as sg

classes = ["cat", "car", "frog"]
s = sg.param("s", ("N", "C"))                 # the scores, as a param to get dL/ds
label = sg.tensor("label", ("N",), dtype=int)
L = sg.cross_entropy(s, label)
values = {"s": np.array([[3.2, 5.1, -1.7]]), "label": np.array([0])}

exp_s, p = sg.evaluate([sg.exp(s), sg.softmax(s, axis=1)], values)
loss = float(sg.evaluate(L, values))
(dL_ds,) = [sg.evaluate(g, values, context=L) for g in sg.gradients(L, [s])]

print(f"{'class':6s} {'score s':>8s} {'exp(s)':>10s} {'probability':>12s} {'dL/ds':>9s}")
for k, name in enumerate(classes):
    e = f"{exp_s[0, k]:.4f}" if exp_s[0, k] >= 1 else f"{exp_s[0, k]:.5f}"  # the lecture's digits
    print(f"{name:6s} {values['s'][0, k]:8.1f} {e:>10s} {p[0, k]:12.5f} "
          f"{dL_ds[0, k]:9.5f}")
print(f"L = -log({p[0, 0]:.5f}) = {loss:.4f}")
assert abs(exp_s[0, 0] - 24.5325) < 1e-4 and abs(p[0, 0] - 0.12998) < 1e-5
assert abs(loss - 2.0404) < 1e-4
assert np.allclose(dL_ds[0], [-0.87002, 0.86905, 0.00097], atol=1e-5)

print("\nThe rule behind the last column, derived:")
print(sg.derive(L, s).update_rule())

# Second example: an image of 4 pixels, 3 classes, s = W x + b (one row of X).
X = sg.tensor("X", ("N", "D"))
W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
scores = (X @ W + b).named("s")
L2 = sg.cross_entropy(scores, label)
rng = np.random.default_rng(0)
data = {"X": np.array([[56.0, 231.0, 24.0, 2.0]]), "label": np.array([0]),
        "W": 0.01 * rng.standard_normal((4, 3)), "b": np.array([1.1, 3.2, -1.2])}
print("\n4-pixel image: scores (cat, dog, ship) =", np.round(sg.evaluate(scores, data)[0], 4))
print("loss =", round(float(sg.evaluate(L2, data)), 4))
print("check_grad relative error:", sg.check_grad(L2, [W, b], data))
