"""Every script in examples/ runs to the end (each in its own process, under a minute).

They share the test run's compile cache (SYMGRAD_CACHE_DIR, set in conftest.py), so
kernels compiled by one example or test are loaded, not recompiled, by the next.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script -> (arguments, texts its output must contain)
EXPECTED = {
    "linear_regression_rule.py": ([], ["w_j <- w_j + 2 alpha sum_i delta_i X_ij", "GradCheck ok"]),
    "perceptron_rule.py": (["rule.tex"], ["delta_i sigma_i (1 - sigma_i) X_ij", "wrote rule.tex"]),
    "softmax_worked_numbers.py": ([], ["24.5325", "0.12998", "L = -log(0.12998) = 2.0404",
                                       "-0.87002"]),
    "backprop_graph.py": (["graph"], ["f = q z = -12", "wrote graph.svg", "wrote graph.png"]),
    "train_digits.py": (["5"], ["softmax regression", "MLP 64-32-10", "test accuracy"]),
    "train_iris_breast_cancer.py": ([], ["iris: softmax regression", "breast cancer: MLP"]),
    "export_trainer.py": (["trainer.py"], ["standalone trainer", "training accuracy"]),
    "estimators.py": ([], ["symgrad  LogisticRegression", "best C"]),
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    args, expected = EXPECTED[script]
    # conftest.py set SYMGRAD_CACHE_DIR (one cache for the run); it is passed on here.
    env = {**os.environ, "SYMGRAD_PROGRESS": "0", "PYTHONWARNINGS": "ignore",
           "SYMGRAD_CACHE_DIR": os.environ["SYMGRAD_CACHE_DIR"]}
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for text in expected:
        assert text in done.stdout, (script, text)
    if script == "backprop_graph.py":
        for suffix in (".dot", ".svg", ".png"):
            assert (tmp_path / f"graph{suffix}").stat().st_size > 500
        assert "upstream" in (tmp_path / "graph.svg").read_text()
    if script == "perceptron_rule.py":
        assert (tmp_path / "rule.tex").read_text().startswith(r"\documentclass")
