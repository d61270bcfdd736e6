"""Fitting formulas on the page: width estimates and breaks at top-level operators."""
import sympy as sp

from symgrad.explain.layout import aligned_rows, chunks, pack, width_em
from symgrad.explain.printing import to_latex


def test_widths_grow_with_the_formula_and_ignore_markup():
    assert width_em("x") < width_em("x + y") < width_em("x + y + z")
    assert width_em(r"\left(x\right)") == width_em("(x)")
    assert width_em("x_{ij}") < width_em("xij")            # subscripts are smaller
    assert width_em(r"\frac{a}{b c d}") == width_em(r"\frac{b c d}{a}")


def _terms(n):
    x = sp.IndexedBase("x")
    i = sp.Symbol("i", integer=True)
    return sp.Add(*[sp.Symbol(f"a{k}") * x[i] ** (k + 2) for k in range(n)])


def test_a_short_formula_is_one_piece():
    expr = _terms(2)
    assert chunks(expr, 40) == [to_latex(expr)]


def test_a_long_sum_breaks_between_terms_and_fits():
    expr = _terms(12)
    pieces = chunks(expr, 12)
    assert len(pieces) > 1 and all(width_em(p) <= 12 for p in pieces)
    assert all(p.startswith(("+ ", "- ")) for p in pieces[1:])
    lines = pack(pieces, 12)
    assert len(lines) < len(pieces) and all(width_em(line) <= 12 for line in lines)


def test_a_squared_sum_breaks_inside_sized_brackets():
    i = sp.Symbol("i", integer=True)
    N = sp.Symbol("N", integer=True, positive=True)
    square = sp.Sum(_terms(10) ** 2, (i, 0, N - 1))
    pieces = chunks(square, 15)
    assert pieces[0].startswith(r"\sum_{i} \Bigl(") and pieces[-1].endswith(r"\Bigr)^{2}")
    assert not any(r"\left(" in p and r"\right)" not in p for p in pieces)


def test_aligned_rows_continue_under_the_relation():
    term = "a b c d e f g h i j"
    rows = aligned_rows("L", "=", [term, "+ " + term, "+ " + term], budget=10)
    assert len(rows) == 3 and rows[0] == "L &= " + term
    assert all(r == r"&\quad {}+ " + term for r in rows[1:])
