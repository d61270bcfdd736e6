"""symgrad.explain has no import circle: the pictures read the records, never the reverse."""
import ast
from pathlib import Path

EXPLAIN = Path(__file__).resolve().parents[2] / "symgrad" / "explain"


def _explain_imports(path):
    """Modules of symgrad.explain imported anywhere in ``path`` (also inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("symgrad.explain."):
            out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[2] for a in node.names
                    if a.name.startswith("symgrad.explain.")}
    return out


def test_no_import_circle_in_explain():
    graph = {p.stem: _explain_imports(p) for p in EXPLAIN.glob("*.py") if p.stem != "__init__"}
    state = {}

    def visit(mod, path):
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            assert state.get(dep) != "open", " -> ".join(path + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[mod] = "done"

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])


def test_records_do_not_import_the_pictures():
    for record in ("derivation", "backprop", "steps", "rules"):
        assert not _explain_imports(EXPLAIN / f"{record}.py") & {"graphview", "mpl_graph"}, record
