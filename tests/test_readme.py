"""The README's quickstart is what CI runs, word for word."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quickstart_has_exactly_two_commands():
    assert quickstart_commands() == ["pip install -e . && symgrad demo",
                                     'pip install -e ".[test]" && pytest']


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    for command in quickstart_commands():
        assert f"bash -c '{command}'" in ci, command


def run_example(heading, capsys, ends="\n## "):
    """Run the first python block of a README section; return (namespace, section) after
    checking it prints the text block that follows it."""
    section = (ROOT / "README.md").read_text().split(heading, 1)[1].split(ends, 1)[0]
    code, shown = re.findall(r"```(?:python|text)\n(.+?)\n```", section, re.S)[:2]
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's own example code
    assert capsys.readouterr().out.strip() == shown.strip()
    return namespace, section


def test_derive_example_prints_what_the_readme_shows(capsys):
    namespace, section = run_example("## Derive an update rule", capsys)
    assert str(namespace["der"].gradient) in section


def test_formulas_example_prints_what_the_readme_shows(capsys):
    namespace, _ = run_example("## Writing your own formulas", capsys, ends="\n### ")
    assert namespace["hist"].params["w"].shape == (3,)


def test_textbook_example_prints_what_the_readme_shows(capsys):
    namespace, _ = run_example("## Hand-written losses, textbook rules", capsys)
    assert "sigma" in str(namespace["der"].where)
