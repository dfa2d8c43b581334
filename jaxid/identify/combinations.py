r"""Identifiable combinations from the null space of the log-parameter Jacobian.

If the outputs depend on :math:`\theta` only through monomials :math:`\prod_i \theta_i^{a_i}`,
every constant null vector :math:`c` of :math:`J_{\log}` is a scaling symmetry
(:math:`\theta_i \to s^{c_i}\theta_i` leaves the outputs unchanged), and every integer vector
:math:`a` orthogonal to all null directions is an identifiable monomial: with :math:`c = (1, 1, 0)`
for :math:`(m, k, l_0)`, :math:`a = (-1, 1, 0)` gives :math:`k/m` and :math:`a = (0, 0, 1)` gives
:math:`l_0`.

Whether a null direction is a scaling symmetry is checked, not assumed: the null spaces at several
parameter points are compared. Directions shared by all points (the intersection) are scaling
symmetries; directions that turn from point to point are not (no monomial describes them, e.g.
outputs that depend on :math:`p_1 + p_2`). Monomials are reported only when they are orthogonal to
the null directions at *every* point (the span of their union), so a non-scaling degeneracy never
produces a false monomial. The same construction in natural parameters finds translation
symmetries and identifiable linear combinations (:math:`p_1 + p_2`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd, lcm

import numpy as np
from jaxtyping import ArrayLike, Float, Int, Real

SUBSPACE_TOL = 1e-4
"""Tolerance on the eigenvalues of summed null-space projectors (directions that differ by less
than about this angle between points count as the same)."""
MAX_DENOMINATOR = 12


def rational_rref(rows: np.ndarray, *, max_denominator: int = MAX_DENOMINATOR, tol: float = 1e-6):
    """Reduced row echelon form of ``rows`` (a basis, one vector per row) with entries snapped to
    fractions of denominator at most ``max_denominator``. Returns ``(rref, pivots)`` as lists of
    :class:`fractions.Fraction`, or ``None`` when the snapped basis does not span the same subspace
    to within ``tol`` (exponents that are not small rationals)."""
    a = np.array(rows, dtype=float)
    n, p = a.shape
    pivots = []
    r = 0
    for c in range(p):
        if r == n:
            break
        i = r + int(np.argmax(np.abs(a[r:, c])))
        if abs(a[i, c]) < 1e-9:
            continue
        a[[r, i]] = a[[i, r]]
        a[r] /= a[r, c]
        for j in range(n):
            if j != r:
                a[j] -= a[j, c] * a[r]
        pivots.append(c)
        r += 1
    a = a[:r]
    fr = [[Fraction(float(x)).limit_denominator(max_denominator) for x in row] for row in a]
    snapped = np.array([[float(x) for x in row] for row in fr]).reshape(r, p)
    # the snapped rows must lie in the original subspace: project onto it and compare
    q, _ = np.linalg.qr(np.asarray(rows, dtype=float).T)
    if r and np.max(np.abs(snapped.T - q @ (q.T @ snapped.T))) > tol * max(1.0, np.abs(snapped).max()):
        return None
    return fr, pivots


def integer_kernel(rref: list[list[Fraction]], pivots: list[int], p: int) -> list[list[int]]:
    """An integer basis of ``{a : R a = 0}`` for a rational RREF ``R``: one vector per free column,
    with that column's entry positive and the vector divided by its gcd."""
    free = [c for c in range(p) if c not in pivots]
    basis = []
    for f in free:
        vec = [Fraction(0)] * p
        vec[f] = Fraction(1)
        for row, pc in zip(rref, pivots, strict=True):
            vec[pc] = -row[f]
        basis.append(_coprime(vec))
    return basis


def integer_basis(rref: list[list[Fraction]]) -> list[list[int]]:
    """The rows of a rational RREF scaled to coprime integers with a positive leading entry."""
    out = []
    for row in rref:
        ints = _coprime(row)
        lead = next(v for v in ints if v != 0)
        out.append([v if lead > 0 else -v for v in ints])
    return out


def _coprime(vec: list[Fraction]) -> list[int]:
    """A rational vector scaled to integers without a common factor (its sign kept)."""
    den = lcm(*(x.denominator for x in vec))
    ints = [int(x * den) for x in vec]
    g = gcd(*ints)
    return [v // g for v in ints]


def monomial_values(
    params: Float[ArrayLike, "*batch param"],
    exponents: Real[ArrayLike, "monomial param"] | Sequence[Sequence[float]],
) -> Float[np.ndarray, "*batch monomial"]:
    r"""The monomials :math:`\prod_i \theta_i^{a_i}` of positive parameters ``params``
    ``(N, p)`` for each exponent row ``a`` of ``exponents`` ``(k, p)``: shape ``(N, k)``
    (computed as :math:`\exp(\log\theta \cdot a)`)."""
    e = np.asarray(exponents, dtype=np.float64)
    return np.exp(np.log(np.asarray(params, dtype=np.float64)) @ e.T)


def _power(name: str, e: int) -> str:
    return name if e == 1 else f"{name}^{e}"


def format_monomial(exponents: Sequence[int] | Int[ArrayLike, " param"], names: Sequence[str]) -> str:
    """A readable monomial: ``(-1, 1, 0)`` over ``(m, k, l0)`` gives ``k/m``; ``(-1, -2, 1, 0)``
    over ``(m, L, b, g)`` gives ``b/(L^2*m)``. Factors are sorted by name."""
    pairs = sorted(zip(names, exponents, strict=True))
    num = [_power(n, e) for n, e in pairs if e > 0]
    den = [_power(n, -e) for n, e in pairs if e < 0]
    top = "*".join(num) if num else "1"
    if not den:
        return top
    bottom = den[0] if len(den) == 1 else "(" + "*".join(den) + ")"
    if len(num) > 1:
        top = "(" + top + ")"
    return f"{top}/{bottom}"


def format_linear(coeffs, names) -> str:
    """A readable linear combination: ``(1, 1)`` over ``(p1, p2)`` gives ``p1 + p2``."""
    text = ""
    for n, c in zip(names, coeffs, strict=True):
        if c == 0:
            continue
        term = n if abs(c) == 1 else f"{abs(c)}*{n}"
        if not text:
            text = term if c > 0 else f"-{term}"
        else:
            text += f" {'+' if c > 0 else '-'} {term}"
    return text or "0"


def format_scaling(c, names) -> str:
    """A scaling symmetry in words: ``(1, 1, 0)`` over ``(m, k, l0)`` gives ``m -> s*m, k -> s*k``."""
    parts = []
    for n, e in zip(names, c, strict=True):
        if e == 0:
            continue
        factor = "s" if e == 1 else f"s^{e}" if e > 0 else f"s^({e})"
        parts.append(f"{n} -> {factor}*{n}")
    return ", ".join(parts)


def format_translation(c, names) -> str:
    """A translation symmetry in words: ``(1, -1)`` gives ``p1 -> p1 + s, p2 -> p2 - s``."""
    parts = []
    for n, e in zip(names, c, strict=True):
        if e == 0:
            continue
        mag = "s" if abs(e) == 1 else f"{abs(e)}*s"
        parts.append(f"{n} -> {n} {'+' if e > 0 else '-'} {mag}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Combinations:
    """What the null spaces at several parameter points say (see :func:`analyze_null_spaces`).

    - ``scaling``: integer exponent vectors of the scaling symmetries (constant null directions in
      log parameters), with ``scaling_text`` in words.
    - ``monomials``: integer exponent vectors of a basis of identifiable monomials (orthogonal to
      every null direction at every point), with ``monomial_text`` (``k/m``, ``l0``).
    - ``non_scaling``: the number of null directions that change between points (no monomial).
    - ``translations`` / ``linear`` (and their text): translation symmetries and identifiable linear
      combinations in natural parameters, looked for only when there are non-scaling directions.
    - ``exact``: ``False`` when the null directions have exponents that are not small rationals, in
      which case ``monomials`` is empty and ``statement`` says so.
    - ``statement``: a paragraph that says all of this in words.
    """

    names: tuple[str, ...]
    scaling: list[list[int]] = field(default_factory=list)
    scaling_text: list[str] = field(default_factory=list)
    monomials: list[list[int]] = field(default_factory=list)
    monomial_text: list[str] = field(default_factory=list)
    non_scaling: int = 0
    translations: list[list[int]] = field(default_factory=list)
    translation_text: list[str] = field(default_factory=list)
    linear: list[list[int]] = field(default_factory=list)
    linear_text: list[str] = field(default_factory=list)
    exact: bool = True
    num_points: int = 1
    statement: str = ""


def _subspaces(null_bases: list[np.ndarray], p: int):
    """Union span and intersection of the column spaces in ``null_bases`` (orthonormal columns)."""
    n = len(null_bases)
    m = np.zeros((p, p))
    for b in null_bases:
        if b.size:
            m += b @ b.T
    vals, vecs = np.linalg.eigh(m)
    union = vecs[:, vals > SUBSPACE_TOL * n]
    inter = vecs[:, vals > n * (1 - SUBSPACE_TOL)]
    return union, inter


def _kernel_of_span(span: np.ndarray, p: int):
    """Integer basis of vectors orthogonal to ``span`` and an integer basis of ``span`` itself;
    ``None`` when ``span`` is not spanned by small-rational vectors."""
    if span.shape[1] == 0:
        return [[int(i == j) for j in range(p)] for i in range(p)], []
    res = rational_rref(span.T)
    if res is None:
        return None
    rref, pivots = res
    return integer_kernel(rref, pivots, p), integer_basis(rref)


def analyze_null_spaces(
    log_null_bases: Sequence[Float[np.ndarray, "param _null"]],
    names: Sequence[str],
    natural_null_bases: Sequence[Float[np.ndarray, "param _null"]] | None = None,
) -> Combinations:
    """Scaling symmetries and identifiable monomials from the log-parameter null spaces at several
    points (the analysed point first). ``natural_null_bases``, if given, are the natural-parameter
    null spaces at the same points, searched for translation symmetries when some null direction
    is not a scaling."""
    names = tuple(names)
    p = len(names)
    n_points = len(log_null_bases)
    union, inter = _subspaces(log_null_bases, p)
    d_local = log_null_bases[0].shape[1]
    non_scaling = max(d_local - inter.shape[1], 0)
    out = dict(names=names, num_points=n_points, non_scaling=non_scaling)
    lines = []
    if union.shape[1] == 0:
        out["monomials"] = _kernel_of_span(union, p)[0]  # every unit vector
        out["monomial_text"] = [format_monomial(a, names) for a in out["monomials"]]
        lines.append(
            f"No null direction at any of {n_points} point(s): every parameter is locally identifiable."
        )
        return Combinations(**out, statement=" ".join(lines))

    scal = _kernel_of_span(inter, p)
    kern = _kernel_of_span(union, p)
    if scal is None or kern is None:
        out["exact"] = False
        lines.append(
            "The null directions do not have small rational exponents, so no integer monomials are "
            "reported; see the null vectors."
        )
    else:
        out["scaling"] = scal[1]
        out["scaling_text"] = [format_scaling(c, names) for c in scal[1]]
        out["monomials"] = kern[0]
        out["monomial_text"] = [format_monomial(a, names) for a in kern[0]]
    if inter.shape[1]:
        lines.append(
            f"{inter.shape[1]} null direction(s) are the same at all {n_points} points: scaling symmetries"
            + (f" ({'; '.join(out.get('scaling_text', []))})." if out.get("scaling_text") else ".")
        )
    if union.shape[1] > inter.shape[1]:
        lines.append(
            f"{non_scaling} null direction(s) at the analysed point turn between the {n_points} points "
            f"(the turning directions of all points span {union.shape[1] - inter.shape[1]} "
            "dimension(s)): they are not scaling symmetries, and no monomial describes them."
        )
        if natural_null_bases is not None:
            _, nat_inter = _subspaces(natural_null_bases, p)
            nat = _kernel_of_span(nat_inter, p)
            if nat is not None and nat[1]:
                out["translations"] = nat[1]
                out["translation_text"] = [format_translation(c, names) for c in nat[1]]
                out["linear"] = nat[0]
                out["linear_text"] = [format_linear(a, names) for a in nat[0]]
                lines.append(
                    "In natural parameters they are translation symmetries ("
                    + "; ".join(out["translation_text"])
                    + "): the outputs depend on the linear combinations "
                    + ", ".join(out["linear_text"])
                    + "."
                )
    if out.get("monomials"):
        lines.append("Identifiable monomials: " + ", ".join(out["monomial_text"]) + ".")
    elif out.get("exact", True):
        lines.append("No monomial of the parameters is identifiable.")
    return Combinations(**out, statement=" ".join(lines))
