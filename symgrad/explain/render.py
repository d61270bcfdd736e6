"""Turning DOT text into SVG: with Graphviz's ``dot`` when it is installed.

Graphviz is a system package and often missing; DOT text is always available,
and without ``dot`` the SVG view falls back to None (Jupyter then shows text).
"""
import shutil
import subprocess


def have_graphviz():
    return shutil.which("dot") is not None


def dot_to_svg(dot_text, timeout=20):
    """SVG text for ``dot_text``, or None when Graphviz's ``dot`` is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    done = subprocess.run([exe, "-Tsvg"], input=dot_text.encode(), capture_output=True,
                          timeout=timeout, check=False)
    return done.stdout.decode() if done.returncode == 0 else None
