"""The cells of the tutorial notebooks: ("md" | "code", source) pairs, one list per notebook.

Edit here, then run ``python notebooks/build_notebooks.py`` to rewrite and re-execute.
"""

UPDATE_RULES = [
    ("md", """
# Deriving update rules: from linear regression to a two-layer network

symgrad does by machine what an introductory lecture on gradient descent does by hand:
declare a model and its loss, and it derives the gradient of every parameter by the
chain rule, prints each step, and writes the update rule `w <- w - alpha dL/dw` in the
lecture's own terms. Each rule below is the one the lecture derives."""),
    ("code", """
import numpy as np
import symgrad as sg
from IPython.display import display"""),
    ("md", """
## 1. Linear regression

$L = \\sum_i (y_i - w^\\top x_i)^2$. With $\\delta_i = y_i - w^\\top x_i$ the lecture gets
$w_j \\leftarrow w_j + 2\\alpha \\sum_i \\delta_i x_{ij}$."""),
    ("code", """
X = sg.tensor("X", ("N", "d"))      # data: named dims, sizes bound from the arrays later
y = sg.tensor("y", ("N",))
w = sg.param("w", ("d",))           # trainable
L = sg.sum((y - X @ w) ** 2)

der = sg.derive(L, w)
der.update_rule()                   # shown as LaTeX in Jupyter"""),
    ("code", """
print(der.update_rule())            # and as text"""),
    ("md", """
The derivation behind it, step by step: the model, the loss, then the chain rule at
each node from the loss down (`bar_v` is $\\partial L / \\partial v$), its local gradient,
and the result."""),
    ("code", "print(der)"),
    ("md", """
## 2. The sigmoid perceptron

$f(x) = \\sigma(\\sum_k w_k x_k)$ with $\\sigma'(x) = \\sigma(x)(1 - \\sigma(x))$; with
$\\sigma_i = \\sigma(\\sum_j w_j x_{ij})$ and $\\delta_i = y_i - \\sigma_i$ the rule is
$w_j \\leftarrow w_j + 2\\alpha \\sum_i \\delta_i \\sigma_i (1 - \\sigma_i) x_{ij}$."""),
    ("code", """
t = sg.tensor("t", ("N",))
L = sg.sum((t - sg.sigmoid(X @ w)) ** 2)
perceptron = sg.derive(L, w)
perceptron.update_rule()"""),
    ("code", """
x = sg.scalars("x")
sg.grad(sg.sigmoid(x), [x])         # the identity the rule rests on"""),
    ("md", """
The formula is not only for show: it can be evaluated, and it agrees with finite
differences."""),
    ("code", """
rng = np.random.default_rng(0)
data = {"X": rng.standard_normal((6, 3)), "t": rng.random(6), "w": rng.standard_normal(3)}
print("formula:      ", perceptron.evaluate_formula(perceptron.gradient, data))
print("finite diffs: ", sg.check_grad(L, [w], data))"""),
    ("md", """
## 3. Softmax classifier and cross-entropy

The lecture's worked numbers: scores cat 3.2, car 5.1, frog -1.7, true class cat."""),
    ("code", """
s = sg.param("s", ("N", "C"))
label = sg.tensor("label", ("N",), dtype=int)
CE = sg.cross_entropy(s, label)
vals = {"s": np.array([[3.2, 5.1, -1.7]]), "label": np.array([0])}
exp_s, p = sg.evaluate([sg.exp(s), sg.softmax(s, axis=1)], vals)
grad_s = sg.evaluate(sg.gradients(CE, [s])[0], vals, context=CE)
for k, name in enumerate(["cat", "car", "frog"]):
    e = f"{exp_s[0, k]:.4f}" if exp_s[0, k] >= 1 else f"{exp_s[0, k]:.5f}"   # the lecture's digits
    print(f"{name:5s} s={vals['s'][0, k]:5.1f}  exp(s)={e:>9s}  p={p[0, k]:.5f}  dL/ds={grad_s[0, k]:+.5f}")
print("L =", round(float(sg.evaluate(CE, vals)), 4))"""),
    ("md", "For a linear classifier $s = XW + b$ the rules for both parameters:"),
    ("code", """
Xc = sg.tensor("X", ("N", "D"))
W, b = sg.param("W", ("D", "C")), sg.param("b", ("C",))
scores = (Xc @ W + b).named("s")
softmax_der = sg.derive(sg.cross_entropy(scores, label), [W, b])
for rule in softmax_der.update_rule():
    display(rule)"""),
    ("md", """
## 4. Regularization

Adding $\\lambda \\sum W^2$ adds $2\\lambda W$ to the gradient (weight decay); L1 adds
$\\lambda\\,\\mathrm{sign}(W)$, a subgradient."""),
    ("code", """
reg = sg.derive(sg.cross_entropy(scores, label) + 0.01 * sg.l2(W), W)
reg.update_rule()"""),
    ("code", """
l1 = sg.derive(sg.cross_entropy(scores, label) + 0.01 * sg.l1(W), W)
print(l1.update_rule())"""),
    ("md", """
## 5. A two-layer network

$h = \\sigma(X W_1 + b_1)$, $\\text{out} = h W_2 + b_2$, squared error on top. The rules
for the first layer reuse the adjoint $\\bar h$ that backpropagation passes down,
exactly as the lecture's backward pass does."""),
    ("code", """
T = sg.tensor("t", ("N", "K"))
W1, b1 = sg.param("W1", ("D", "H")), sg.param("b1", ("H",))
W2, b2 = sg.param("W2", ("H", "K")), sg.param("b2", ("K",))
h = sg.sigmoid(Xc @ W1 + b1).named("h")
out = (h @ W2 + b2).named("out")
two_layer = sg.derive(sg.sum((T - out) ** 2), [W1, b1, W2, b2])
for rule in two_layer.update_rule():
    print(rule, end="\\n\\n")"""),
    ("md", "The whole derivation renders as LaTeX (here the first lines of a standalone document):"),
    ("code", """
print(two_layer.to_latex(document=True)[:700])"""),
    ("md", """
## 6. Formulas written by hand

Write the loss as the blackboard does. Binary cross-entropy spelled out with logs
derives to the textbook rule, because symgrad applies the identities a textbook uses
(`der.identities` lists them); `der.where` holds every auxiliary's definition and
`der.expanded()` the gradient with all of them substituted."""),
    ("code", """
Xb, tb, wb = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",)), sg.param("w", ("d",))
p = sg.sigmoid(Xb @ wb)
bce = sg.derive(-sg.sum(tb * sg.log(p) + (1 - tb) * sg.log(1 - p)), wb)
print(bce.update_rule())
print(bce.identities)"""),
    ("md", """
Dims broadcast by *name*: `exp(Z) / sum(exp(Z), axis="C")` is a softmax by hand, and
with one-hot targets declared as such the rule is $p - Y$. A SymPy symbol is a
hyperparameter that stays symbolic."""),
    ("code", """
import sympy as sp
W = sg.param("W", ("d", "C"))
Y = sg.tensor("Y", ("N", "C"), onehot="C")
Z = Xb @ W
P = sg.exp(Z) / sg.sum(sg.exp(Z), axis="C")
lam = sp.Symbol("lambda", positive=True)
print(sg.derive(-sg.mean(sg.sum(Y * sg.log(P), axis="C")) + lam * sg.l2(W), W).update_rule())"""),
    ("md", "Square tensors: an RNN's recurrent weights `Wh (H, H)` get two index letters."),
    ("code", """
Wx, Wh = sg.param("Wx", ("d", "H")), sg.param("Wh", ("H", "H"))
h0, target = sg.tensor("h0", ("N", "H")), sg.tensor("T", ("N", "H"))
h = sg.tanh(Xb @ Wx + h0 @ Wh)
h = sg.tanh(Xb @ Wx + h @ Wh)
print(sg.derive(sg.mse(h, target), Wh).update_rule())"""),
]


BACKPROP = [
    ("md", """
# Computation graphs and backpropagation, step by step

A model and its loss are one function composed of simple pieces: a directed acyclic
graph. Backpropagation walks it twice: forward, computing every node's value, then
backward from the loss, multiplying each edge's **upstream** gradient by the node's
**local** gradient to get the **downstream** gradient."""),
    ("code", """
import numpy as np
import symgrad as sg
from symgrad.explain.graphview import graph_view   # also available as sg.graph_view
from IPython.display import display"""),
    ("md", """
## The lecture's example: $f(x, y, z) = (x + y)\\,z$ at $x=-2, y=5, z=-4$"""),
    ("code", """
x, y, z = sg.scalars("x y z")
f = (x + y) * z
run = sg.backprop(f, {x: -2, y: 5, z: -4})
run                                   # forward and backward passes, as LaTeX"""),
    ("code", """
for step in run.steps:
    print(f"{step.kind:8s} {step.text}")"""),
    ("md", """
The annotated graph: each node is `name | value | grad`, each edge carries upstream,
local and downstream gradients. (SVG by Graphviz when installed, else drawn with
matplotlib, so it works on any machine.)"""),
    ("code", "graph_view(run)"),
    ("code", """
print(run.grads)
print(sg.grad(f, [x, y, z]))          # the symbolic gradients agree: [z, z, x + y]"""),
    ("md", "## A sigmoid neuron"),
    ("code", """
w0, x0, w1, x1, w2 = sg.scalars("w0 x0 w1 x1 w2")
neuron = sg.backprop(sg.sigmoid(w0 * x0 + w1 * x1 + w2),
                     {w0: 2.0, x0: -1.0, w1: -3.0, x1: -2.0, w2: -3.0})
print(neuron)
graph_view(neuron)"""),
    ("md", """
## Tensor graphs

The same picture for a tensor model, the sigmoid perceptron: nodes show their named
dims; with data they show values and gradients, and for a derivation the edges carry
the chain rule's symbolic local gradients."""),
    ("code", """
X = sg.tensor("X", ("N", "d"))
t = sg.tensor("t", ("N",))
w = sg.param("w", ("d",))
L = sg.sum((t - sg.sigmoid(X @ w)) ** 2)
graph_view(L)"""),
    ("code", """
data = {"X": np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.3]]),
        "t": np.array([1.0, 0.0, 1.0]), "w": np.array([0.25, -0.5])}
der = sg.derive(L, w)
graph_view(der, data)"""),
    ("md", "The text form of the same view, and the DOT source for Graphviz:"),
    ("code", """
view = graph_view(der, data)
print(view)
print(view.to_dot()[:400])"""),
    ("md", """
## Reverse mode is backpropagation

`sg.gradients` builds the backward graph (one adjoint per node, linear in the size of
the forward graph); its numbers agree with finite differences."""),
    ("code", """
(gw,) = sg.gradients(L, [w])
print("backprop:", sg.evaluate(gw, data))
print(sg.check_grad(L, [w], data))"""),
    ("md", "## The graph of a small MLP"),
    ("code", """
net = sg.nn.mlp([4, 3, 2], activation="relu")
graph_view(net.loss)"""),
]


COMPILED = [
    ("md", """
# Compiling fast trainers

`sg.compile` turns a loss graph into a generated Python module (forward, backward, a
fused training step and a whole-epoch loop) compiled by Numba, cached on disk so a
second process starts warm. `sg.fit` drives it. Here it trains softmax regression and
an MLP on scikit-learn's digits and is timed against a hand-written NumPy loop doing
exactly the same arithmetic (same initial parameters, same minibatch order)."""),
    ("code", """
import time
import numpy as np
import symgrad as sg
from sklearn.datasets import load_digits

X, y = load_digits(return_X_y=True)
X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) == 0, 1.0, X.std(axis=0))
data = {"X": X, "y": y}
EPOCHS, BATCH, LR = 20, 32, 0.1"""),
    ("md", "## Softmax regression (mean cross-entropy + 1e-4 sum W^2)"),
    ("code", """
model = sg.nn.softmax_regression(64, 10, l2=1e-4)
fn = sg.compile(model.loss, params=model.params)
print(fn.source[:1200])"""),
    ("code", """
init = model.init_params(seed=0)
sg.fit(fn, init, data=data, lr=LR, epochs=1, batch_size=BATCH, metrics=())   # warm-up (JIT)
t0 = time.perf_counter()
hist = sg.fit(fn, init, data=data, lr=LR, epochs=EPOCHS, batch_size=BATCH, metrics=())
t_symgrad = time.perf_counter() - t0
print(f"symgrad: {t_symgrad * 1e3:.1f} ms for {EPOCHS} epochs; final loss {hist.loss[-1]:.5f}")"""),
    ("md", """
The same SGD in NumPy. `fit` shuffles each epoch with `np.random.default_rng(seed)`
and drops the last partial batch; the loop below does the same."""),
    ("code", """
def softmax_grad(W, b, Xb, yb, l2):
    z = Xb @ W + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(yb)), yb] -= 1.0
    p /= len(yb)
    return Xb.T @ p + 2 * l2 * W, p.sum(axis=0)

def numpy_sgd(grad, params, epochs, seed=0, **extra):
    params = {k: v.copy() for k, v in params.items()}
    rng = np.random.default_rng(seed)
    n = len(X)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n - BATCH + 1, BATCH):
            rows = order[start:start + BATCH]
            grads = grad(*params.values(), X[rows], y[rows], **extra)
            for k, g in zip(params, grads):
                params[k] -= LR * g
    return params

t0 = time.perf_counter()
ref = numpy_sgd(softmax_grad, init, EPOCHS, l2=1e-4)
t_numpy = time.perf_counter() - t0
print(f"NumPy:   {t_numpy * 1e3:.1f} ms  ->  symgrad is {t_numpy / t_symgrad:.1f}x faster")
print("largest difference in trained params:",
      max(np.abs(ref[k] - hist.params[k]).max() for k in ref))"""),
    ("md", "## An MLP 64-64-10 (relu)"),
    ("code", """
net = sg.nn.mlp([64, 64, 10], activation="relu")
mlp_fn = sg.compile(net.loss, params=net.params)
init = net.init_params(seed=0)
sg.fit(mlp_fn, init, data=data, lr=LR, epochs=1, batch_size=BATCH, metrics=())   # warm-up
t0 = time.perf_counter()
mlp_hist = sg.fit(mlp_fn, init, data=data, lr=LR, epochs=EPOCHS, batch_size=BATCH, metrics=())
t_symgrad = time.perf_counter() - t0

def mlp_grad(W1, b1, W2, b2, Xb, yb):
    z1 = Xb @ W1 + b1
    h = np.maximum(z1, 0.0)
    z2 = h @ W2 + b2
    p = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(yb)), yb] -= 1.0
    p /= len(yb)
    dh = (p @ W2.T) * (z1 > 0)
    return Xb.T @ dh, dh.sum(axis=0), h.T @ p, p.sum(axis=0)

t0 = time.perf_counter()
ref = numpy_sgd(mlp_grad, init, EPOCHS)
t_numpy = time.perf_counter() - t0
print(f"symgrad {t_symgrad * 1e3:.1f} ms, NumPy {t_numpy * 1e3:.1f} ms "
      f"({t_numpy / t_symgrad:.1f}x); training accuracy {net.accuracy(mlp_hist.params, X, y):.3f}")
print("largest difference in trained params:",
      max(np.abs(ref[k] - mlp_hist.params[k]).max() for k in ref))"""),
    ("md", "## PyTorch, if it is installed"),
    ("code", """
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed here; skipping that comparison (pip install torch).")

if torch is not None:
    torch.set_num_threads(1)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(EPOCHS):
        order = torch.tensor(rng.permutation(len(X)))
        for start in range(0, len(X) - BATCH + 1, BATCH):
            rows = order[start:start + BATCH]
            h = torch.relu(Xt[rows] @ P["W1"] + P["b1"])
            loss = torch.nn.functional.cross_entropy(h @ P["W2"] + P["b2"], yt[rows])
            grads = torch.autograd.grad(loss, list(P.values()))
            with torch.no_grad():
                for p, g in zip(P.values(), grads):
                    p -= LR * g
    print(f"PyTorch eager: {(time.perf_counter() - t0) * 1e3:.1f} ms")"""),
    ("md", "## Training curves, and a standalone trainer"),
    ("code", """
%matplotlib inline
import matplotlib.pyplot as plt   # with pyplot imported, History.plot draws inline
hist = sg.fit(mlp_fn, init, data=data, lr=LR, epochs=EPOCHS, batch_size=BATCH)
fig = hist.plot()"""),
    ("code", """
path = mlp_fn.export("mlp_trainer.py")   # NumPy + Numba only: no symgrad needed to train
import importlib.util
spec = importlib.util.spec_from_file_location("mlp_trainer", path)
trainer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trainer)
params, losses = trainer.train(init, data, epochs=3, lr=LR, batch_size=BATCH)
print("standalone trainer losses:", np.round(losses, 4))
import os; os.remove(path)"""),
]

NOTEBOOKS = {
    "01_update_rules": UPDATE_RULES,
    "02_backprop_step_by_step": BACKPROP,
    "03_compiled_trainers": COMPILED,
}
