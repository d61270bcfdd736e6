"""Write the tutorial notebooks from the cell sources below, execute them and save the outputs.

The notebooks are committed with their outputs; this script is how they are made (and
remade after an API change). tests/test_notebooks.py executes the saved notebooks.
Run: python notebooks/build_notebooks.py [name ...]
"""
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from notebook_cells import NOTEBOOKS  # noqa: E402  (the cell sources, one list per notebook)


def build(name, cells):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    return nb


def execute(nb, kernel_name="python3", timeout=600):
    # No progress bars in saved outputs; notebooks run from this folder.
    os.environ.setdefault("SYMGRAD_PROGRESS", "0")
    NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def main(names):
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = execute(build(name, cells))
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
