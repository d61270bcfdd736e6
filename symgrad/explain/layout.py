"""Fitting formulas on a page: estimated widths, and line breaks at top-level operators.

TeX cannot break a display line by itself, so long right-hand sides are broken here,
the way one writes them by hand: at the ``+`` and ``-`` of the outermost sum (looking
through ``\\sum_i``, a leading factor or a square around it), continuation lines
indented under the first, brackets around a broken group drawn with ``\\Bigl(``
``\\Bigr)`` (``\\left( \\right)`` cannot span lines).

Widths are estimated in em of Computer Modern at display size, a little generously;
the CI test compiles every document and fails on any box wider than the page.
"""
import re

import sympy as sp

from symgrad.explain.printing import DerivationLatexPrinter

# Command -> width in em. Commands not listed count as one letter.
_COMMAND_EM = {
    "left": 0.0, "right": 0.0, "bigl": 0.0, "bigr": 0.0, "Bigl": 0.0, "Bigr": 0.0,
    ",": 0.17, ";": 0.28, "quad": 1.0, "qquad": 2.0, "!": -0.17,
    "sum": 1.5, "partial": 0.6, "leftarrow": 1.9, "times": 1.4, "odot": 1.4, "cdot": 1.0,
    "top": 0.8, "mathbb": 0.0, "mathbf": 0.0, "bar": 0.0, "hat": 0.0,
    "exp": 1.5, "log": 1.4, "tanh": 2.1, "max": 1.7, "ln": 1.0,
}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|([A-Za-z0-9])|([+\-=<>])|(.)", re.S)
_TEXTLIKE = ("mathrm", "text", "operatorname", "textbf")


def _group(s, start):
    """(content, end) of the brace group opening at ``s[start] == "{"``."""
    depth = 0
    for k in range(start, len(s)):
        if s[k] == "{":
            depth += 1
        elif s[k] == "}":
            depth -= 1
            if depth == 0:
                return s[start + 1:k], k + 1
    return s[start + 1:], len(s)


def _script(s, pos):
    """The sub/superscript argument at ``pos``: a brace group, a command or one char."""
    if pos < len(s) and s[pos] == "{":
        return _group(s, pos)
    m = re.match(r"\\[A-Za-z]+|\\.|.", s[pos:], re.S)
    return (m.group(0), pos + len(m.group(0))) if m else ("", pos)


def width_em(latex):
    """Estimated width of a math-mode LaTeX string, in em."""
    s, pos, total = latex, 0, 0.0
    while pos < len(s):
        ch = s[pos]
        if ch in "_^":
            arg, pos = _script(s, pos + 1)
            total += 0.72 * width_em(arg)
            continue
        if ch in "{}&":
            pos += 1
            continue
        m = _TOKEN.match(s, pos)
        pos = m.end()
        cmd, alnum, op, other = m.groups()
        if cmd in ("frac", "dfrac", "tfrac"):
            num, pos = _group(s, pos)
            den, pos = _group(s, pos)
            total += max(width_em(num), width_em(den)) + 0.3
        elif cmd in _TEXTLIKE and pos < len(s) and s[pos] == "{":
            body, pos = _group(s, pos)
            total += 0.55 * len(re.sub(r"\\[A-Za-z]+|[{}\\]", "", body)) + 0.1
        elif cmd is not None:
            total += _COMMAND_EM.get(cmd, 0.6)
        elif alnum is not None:
            total += 0.55
        elif op is not None:
            total += 1.35 if op in "=<>" else 1.25
        elif not other.isspace():
            total += 0.4
    return total


# -- breaking a right-hand side -------------------------------------------------------------
def _printer(ranks):
    return DerivationLatexPrinter({"ranks": ranks})


def _signed_terms(add, printer):
    """(sign, term) of an Add in the order the printer writes them; sign "" or "-"."""
    out = []
    for t in printer._as_ordered_terms(add):
        out.append(("-", -t) if t.could_extract_minus_sign() else ("", t))
    return out


def _frame(expr, printer):
    """(prefix, [(sign, term)], suffix) around the outermost sum of ``expr``, or None."""
    if isinstance(expr, sp.Add):
        return "", _signed_terms(expr, printer), ""
    if isinstance(expr, sp.Sum):
        subs = "".join(r"\sum_{%s} " % printer._print(lim[0]) for lim in expr.limits)
        if isinstance(expr.function, sp.Add):
            return subs + r"\Bigl(", _signed_terms(expr.function, printer), r"\Bigr)"
        inner = _frame(expr.function, printer)
        return None if inner is None else (subs + inner[0], inner[1], inner[2])
    if isinstance(expr, sp.Pow) and isinstance(expr.base, sp.Add) and expr.exp.is_Integer \
            and expr.exp > 1:
        return r"\Bigl(", _signed_terms(expr.base, printer), r"\Bigr)^{%s}" % expr.exp
    if isinstance(expr, sp.Mul):
        return _frame_mul(expr, printer)
    return None


def _frame_mul(expr, printer):
    coeff, _ = expr.as_coeff_Mul()
    sign = ""
    if coeff.is_negative:
        sign, expr = "- ", -expr
    numer, denom = sp.fraction(expr, exact=True)
    lead = "" if denom == 1 else r"\frac{1}{%s} " % printer._print(denom)
    factors = printer.ordered_factors(numer)
    groups = [k for k, f in enumerate(factors) if _frame(f, printer) is not None
              and not isinstance(f, sp.Mul)]
    if len(groups) != 1:
        return None
    k = groups[0]
    before = " ".join(printer._print(f) for f in factors[:k])
    after = " ".join(printer._print(f) for f in factors[k + 1:])
    pre, terms, suf = _frame(factors[k], printer)
    if isinstance(factors[k], sp.Add):
        pre, suf = r"\Bigl(", r"\Bigr)"
    head = (sign + lead + before + " " + pre).replace("  ", " ").lstrip()
    return head, terms, suf + (" " + after if after else "")


def chunks(expr, budget, ranks=None, printer=None):
    """LaTeX pieces of ``expr`` that join (with spaces) into one formula, each piece
    fitting ``budget`` em where a break at a top-level operator makes that possible."""
    printer = printer or _printer(ranks)
    text = printer._print(expr)
    if width_em(text) <= budget:
        return [text]
    frame = _frame(expr, printer)
    if frame is None:
        return [text]
    prefix, terms, suffix = frame
    out = []
    for k, (sign, term) in enumerate(terms):
        sub = chunks(term, budget - 1.5, ranks, printer)
        if sign or k:
            sub[0] = f"{sign or '+'} {sub[0]}"
        out += sub
    out[0] = f"{prefix} {out[0]}".strip()
    out[-1] = f"{out[-1]} {suffix}".strip()
    return out


def pack(pieces, budget):
    """Greedy lines of pieces, each line within ``budget`` em when the pieces allow."""
    lines, current = [], ""
    for piece in pieces:
        trial = f"{current} {piece}".strip()
        if current and width_em(trial) > budget:
            lines.append(current)
            current = piece
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


CONTINUE = r"&\quad {}"  # the {} keeps a leading + binary (spaced)


def aligned_rows(lhs, relation, pieces, budget):
    """Rows of an ``align*``: ``lhs &= first line``, then indented continuation lines."""
    lines = pack(pieces, max(budget - width_em(lhs) - 2.0, 8.0))
    rows = [f"{lhs} &{relation} {lines[0]}"]
    rows += [CONTINUE + line for line in lines[1:]]
    return rows
