"""Export a compiled model as a standalone trainer (needs only NumPy and Numba).

The exported module has ``train(params, data, epochs, lr, batch_size, momentum, seed)``
and the compiled kernels; it is imported here from a fresh directory to show that it
does not import symgrad.
Run: python examples/export_trainer.py [output.py]
"""
import importlib.util
import sys

import numpy as np
from sklearn.datasets import load_digits

import symgrad as sg

target = sys.argv[1] if len(sys.argv) > 1 else "digits_trainer.py"
model = sg.nn.softmax_regression(64, 10, l2=1e-4)
fn = sg.compile(model.loss, params=model.params)
fn.export(target)
source = open(target).read()
assert "import symgrad" not in source and "from symgrad" not in source
print(f"wrote {target}: {len(source.splitlines())} lines; its first lines:")
print("\n".join(source.splitlines()[:12]))

spec = importlib.util.spec_from_file_location("digits_trainer", target)
trainer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trainer)

X, y = load_digits(return_X_y=True)
X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) == 0, 1.0, X.std(axis=0))
params, losses = trainer.train(model.init_params(seed=0), {"X": X, "y": y}, epochs=10,
                               lr=0.1, batch_size=32, seed=0)
print("standalone trainer: epoch losses", np.round(losses, 4))
print("training accuracy", model.accuracy(params, X, y))
assert losses[-1] < losses[0]
