"""The pipeline's layering: each stage imports only the stages before it."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "symgrad"
STAGES = ["errors", "graph", "ops", "diff", "explain", "codegen", "train", "nn", "estimators",
          "cli"]


def _stage(path):
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else path.stem


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("symgrad."):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("symgrad."))


def test_each_stage_imports_only_earlier_stages():
    rank = {name: k for k, name in enumerate(STAGES)}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        stage = _stage(path)
        if stage not in rank:
            continue
        for module in _imports(path):
            target = module.split(".")[1]
            if target in rank and rank[target] > rank[stage]:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not offenders, offenders


def test_init_only_reexports():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    kinds = {type(n).__name__ for n in tree.body}
    assert kinds <= {"Expr", "ImportFrom", "Import", "Assign", "FunctionDef"}
