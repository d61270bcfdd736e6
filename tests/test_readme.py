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
