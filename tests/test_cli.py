"""The ``symgrad`` command: help, derive (names, files, LaTeX), bench and the quick demo."""
import os
import subprocess
import sys
import textwrap

import pytest

from symgrad import cli


def run_main(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, out


@pytest.mark.parametrize("argv", [[], ["demo"], ["derive"], ["bench"]])
def test_help(argv):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv + ["--help"])
    assert exit_.value.code == 0


def test_no_command_prints_help(capsys):
    code, out = run_main(capsys)
    assert code == 0 and "derive" in out and "demo" in out and "bench" in out


def test_derive_perceptron_prints_the_lecture_rule(capsys):
    code, out = run_main(capsys, "derive", "perceptron")
    assert code == 0
    assert "w_j <- w_j + 2 alpha sum_i delta_i sigma_i (1 - sigma_i) X_ij" in out


def test_derive_linear_regression(capsys):
    _, out = run_main(capsys, "derive", "linear-regression")
    assert "w_j <- w_j + 2 alpha sum_i delta_i X_ij" in out


@pytest.mark.parametrize("model", ["softmax", "two-layer"])
def test_derive_other_models(capsys, model):
    code, out = run_main(capsys, "derive", model)
    assert code == 0 and "-- Update rules --" in out and "<-" in out


def test_derive_backprop_example(capsys):
    _, out = run_main(capsys, "derive", "backprop-example")
    assert "f = q z = -12" in out and "df/dx = df/dq x dq/dx = -4 x 1 = -4" in out


def test_derive_latex(capsys):
    _, out = run_main(capsys, "derive", "perceptron", "--latex")
    assert r"\begin{aligned}" in out and r"\sigma" in out and "<-" not in out


def test_derive_output_writes_a_standalone_document(capsys, tmp_path):
    target = tmp_path / "rule.tex"
    code, out = run_main(capsys, "derive", "perceptron", "--output", str(target))
    text = target.read_text()
    assert code == 0 and "wrote" in out
    assert text.startswith(r"\documentclass") and text.rstrip().endswith(r"\end{document}")


def test_derive_output_is_a_sectioned_article(capsys, tmp_path):
    target = tmp_path / "two.tex"
    run_main(capsys, "derive", "two-layer", "--output", str(target))
    text = target.read_text()
    for heading in ("Model", "Loss", "Backward pass", "Update rules"):
        assert "\\section{%s}" % heading in text
    assert "\\allowdisplaybreaks" in text and "\\begin{align*}" in text


@pytest.mark.parametrize("model", ["perceptron", "backprop-example"])
def test_derive_slides_writes_a_beamer_deck(capsys, tmp_path, model):
    target = tmp_path / "deck.tex"
    code, out = run_main(capsys, "derive", model, "--slides", str(target))
    deck = target.read_text()
    assert code == 0 and "wrote" in out and "pdflatex" in out
    assert deck.startswith("\\documentclass[aspectratio=169]{beamer}")
    assert deck.count("\\begin{frame}") >= 3 and "\\pause" in deck


def test_derive_output_and_slides_together(capsys, tmp_path):
    doc, deck = tmp_path / "d.tex", tmp_path / "s.tex"
    code, out = run_main(capsys, "derive", "softmax", "-o", str(doc), "--slides", str(deck))
    assert code == 0 and out.count("wrote") == 2
    assert "{article}" in doc.read_text() and "{beamer}" in deck.read_text()
    assert "Update rules in matrix form" in deck.read_text()


def test_derive_matrix_prints_the_rules_in_matrix_notation(capsys):
    code, out = run_main(capsys, "derive", "softmax", "--matrix")
    assert code == 0 and "b <- b - alpha 1^T (p - onehot(y)) / N" in out
    _, out = run_main(capsys, "derive", "perceptron", "--matrix", "--latex")
    assert r"X^{\top}" in out and r"\odot" in out


def test_derive_matrix_says_when_there_is_no_matrix_form(tmp_path):
    with pytest.raises(SystemExit, match="scalar backprop run"):
        cli.main(["derive", "backprop-example", "--matrix"])
    model = tmp_path / "maxloss.py"
    model.write_text("import symgrad as sg\nX = sg.tensor('X', ('N', 'd'))\n"
                     "w = sg.param('w', ('d',))\nloss = sg.max(X @ w)\n")
    with pytest.raises(SystemExit, match="no matrix form"):
        cli.main(["derive", str(model), "--matrix"])


def test_derive_from_a_user_file(capsys, tmp_path):
    model = tmp_path / "mymodel.py"
    model.write_text(textwrap.dedent("""
        import symgrad as sg
        X, t = sg.tensor("X", ("N", "d")), sg.tensor("t", ("N",))
        w = sg.param("w", ("d",))
        loss = sg.sum((t - X @ w) ** 2)
        params = [w]
        if __name__ == "__main__":
            raise RuntimeError("the main block must not run when symgrad reads the file")
    """))
    code, out = run_main(capsys, "derive", str(model))
    assert code == 0 and "w_j <- w_j + 2 alpha sum_i delta_i X_ij" in out


def test_derive_from_a_scalar_file(capsys, tmp_path):
    model = tmp_path / "scalar.py"
    model.write_text("import symgrad as sg\na, b = sg.scalars('a b')\n"
                     "loss = a * b + a\nvalues = {a: 2, b: 3}\n")
    _, out = run_main(capsys, "derive", str(model))
    assert "backward:" in out and "= 8" in out


def test_derive_file_without_loss(tmp_path):
    model = tmp_path / "empty.py"
    model.write_text("x = 1\n")
    with pytest.raises(SystemExit, match="no variable named 'loss'"):
        cli.main(["derive", str(model)])


def test_derive_unknown_model_is_not_evaluated(tmp_path):
    # Text that is not a model name or an existing file is reported, never run as code.
    with pytest.raises(SystemExit, match="no such model or file"):
        cli.main(["derive", "__import__('os').system('echo hacked')"])


def test_bench_points_to_the_script(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_repo_root", lambda: None)  # as in an installed wheel
    code, out = run_main(capsys, "bench")
    assert code == 2 and "python -m bench.run_all" in out


def test_demo_quick_runs_end_to_end():
    env = {**os.environ, "SYMGRAD_DEMO_QUICK": "1", "SYMGRAD_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-m", "symgrad.cli", "demo", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "w_j <- w_j + 2 alpha sum_i delta_i sigma_i (1 - sigma_i) X_ij" in out
    assert "f = q z = -12" in out
    assert "softmax regression" in out and "MLP 64-32-10" in out
    assert out.count("test accuracy") == 2


@pytest.mark.parametrize("model, suffix", [("perceptron", ".svg"), ("backprop-example", ".png")])
def test_derive_graph_picture(capsys, tmp_path, model, suffix):
    target = tmp_path / f"graph{suffix}"
    code, out = run_main(capsys, "derive", model, "--graph", str(target))
    assert code == 0 and "wrote" in out and target.stat().st_size > 1000
    if suffix == ".svg":
        assert "sigma" in target.read_text()


def test_console_script_is_declared():
    from importlib.metadata import entry_points
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("symgrad") == "symgrad.cli:main"


@pytest.mark.parametrize("missing, message", [
    ("symgrad.codegen", "training: NumPy reference (symgrad.codegen is not available"),
    ("symgrad.train", "training skipped: symgrad.train / symgrad.nn are not in this installation"),
])
def test_demo_says_clearly_what_is_missing(missing, message):
    code = (f"import sys; sys.modules[{missing!r}] = None\n"
            "from symgrad.cli import main; sys.exit(main(['demo', '--quick', '--no-progress']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "SYMGRAD_PROGRESS": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert message in done.stdout


def test_bench_passes_its_arguments_on(capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, cwd: calls.append((cmd, cwd)) or 0)
    code, out = run_main(capsys, "bench", "--workloads", "W2", "--repeats", "1")
    assert code == 0 and calls
    cmd, cwd = calls[0]
    assert cmd[1:] == ["-m", "bench.run_all", "--workloads", "W2", "--repeats", "1"]
    assert (cwd / "bench" / "run_all.py").is_file()
    run_main(capsys, "bench", "--estimators")
    assert calls[1][0][1:] == ["-m", "bench.estimators"]


def test_unknown_options_are_errors_outside_bench():
    with pytest.raises(SystemExit) as exit_:
        cli.main(["derive", "perceptron", "--bogus"])
    assert exit_.value.code == 2
