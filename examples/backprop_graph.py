"""Backpropagation on f(x, y, z) = (x + y) z at x=-2, y=5, z=-4 (lecture section 9),
with the annotated computation graph written to files.

Forward: q = x + y = 3, f = q z = -12. Backward: df/dz = q = 3, df/dq = z = -4,
df/dx = df/dq dq/dx = -4 x 1 = -4, df/dy = -4. Every edge of the picture carries
upstream, local and downstream gradients, every node name | value | grad.
Run: python examples/backprop_graph.py [output-stem]   (writes .dot, .svg and .png)
"""
import sys

import symgrad as sg
from symgrad.explain.graphview import graph_view  # also sg.graph_view

x, y, z = sg.scalars("x y z")
f = (x + y) * z
print("symbolic gradients [df/dx, df/dy, df/dz] =", sg.grad(f, [x, y, z]))

run = sg.backprop(f, {x: -2, y: 5, z: -4})
print(run)
assert run.value == -12.0 and run.grads == {x: -4.0, y: -4.0, z: 3.0}

# A sigmoid neuron, the lecture's other backprop picture.
w0, x0, w1, x1, w2 = sg.scalars("w0 x0 w1 x1 w2")
neuron = sg.backprop(sg.sigmoid(w0 * x0 + w1 * x1 + w2),
                     {w0: 2.0, x0: -1.0, w1: -3.0, x1: -2.0, w2: -3.0})
print("\nsigmoid neuron:", repr(neuron))

stem = sys.argv[1] if len(sys.argv) > 1 else "backprop_graph"
view = graph_view(run, title="f = (x + y) z")
for suffix in (".dot", ".svg", ".png"):
    # SVG uses Graphviz when installed, else matplotlib; PNG is drawn by matplotlib.
    print("wrote", view.save(stem + suffix))
print("wrote", graph_view(neuron, title="a sigmoid neuron").save(stem + "_neuron.png"))
