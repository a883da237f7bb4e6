"""The seed verdict's statistics: mean ± spread per model and Welch's t-test of the difference of means.

Pure functions over plain numbers (no torch, no scipy): the p-value comes from Student's t distribution through
the regularised incomplete beta function (Numerical Recipes' continued fraction), exact to ~1e-10.
"""

from __future__ import annotations

import dataclasses
import math

from aerotune.report.records import Spread, Welch

#: A difference "exceeds the seed noise" when Welch's two-sided p-value is below this.
ALPHA = 0.05

#: How the report names the test, in its sentence and in report.json.
TEST_NAME = "Welch's t-test (two-sided, unequal variances)"


def spread(values: list[float]) -> Spread:
    """``n``, ``mean``, ``sd`` (sample standard deviation; None for one value), ``min``, ``max`` and the values."""
    n = len(values)
    mean = sum(values) / n if n else math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Spread(n, mean, sd, min(values) if values else None, max(values) if values else None, list(values))


def welch(a: list[float], b: list[float]) -> Welch:
    """Welch's t-test of mean(a) - mean(b): ``difference``, ``t``, ``df``, ``p`` (None with fewer than 2 each);
    ``better`` and ``beyond_noise`` are ``comparison``'s to say."""
    diff = sum(a) / len(a) - sum(b) / len(b)
    if len(a) < 2 or len(b) < 2:
        return Welch(diff, None, None, None)
    va, vb = spread(a).sd ** 2 / len(a), spread(b).sd ** 2 / len(b)
    se2 = va + vb
    if se2 == 0:  # every seed gave the same number: any difference at all is beyond the (zero) noise
        return Welch(diff, None, None, 1.0 if diff == 0 else 0.0)
    t = diff / math.sqrt(se2)
    df = se2**2 / ((va**2 / (len(a) - 1) if va else 0.0) + (vb**2 / (len(b) - 1) if vb else 0.0))
    return Welch(diff, t, df, t_two_sided(t, df))


def t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    return min(1.0, max(0.0, _betainc(df / 2, 0.5, df / (df + t * t))))


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def comparison(a: list[float], b: list[float], *, higher_is_better: bool) -> Welch:
    """``a`` against ``b``: Welch's test, whether ``a`` is better on average, and whether beyond the noise."""
    w = welch(a, b)
    better = w.difference > 0 if higher_is_better else w.difference < 0
    return dataclasses.replace(w, better=better, beyond_noise=w.p is not None and w.p < ALPHA)


def sentence(label: str, than: str, c: Welch, *, metric: str, spec: str, points: bool, k: int) -> str:
    """One sentence: e.g. "the tuned model's gain of +2.1 points of test mean IoU over the reference exceeds the
    seed noise (Welch's t-test, p = 0.012)"."""
    d = c.difference
    size = f"{d * 100:+.1f} points" if points else format(d, "+" + spec)
    what = "gain" if c.better else "loss" if d != 0 else "difference"
    head = f"the {label} model's {what} of {size} of {metric} over the {than} (means of {k} seed(s) each)"
    if c.p is None:
        return f"{head} cannot be judged against the seed noise: that needs at least 2 seeds per model (--seeds 2)"
    p = f"p = {c.p:.3g}" if c.p >= 0.001 else "p < 0.001"
    if c.beyond_noise:
        return f"{head} exceeds the seed noise (Welch's t-test, {p})"
    return f"{head} is within the seed noise (Welch's t-test, {p}, not below {ALPHA:g})"


def pm(s: Spread, spec: str) -> str:
    """``mean ± sd (min–max)``, or the one value for one seed."""
    if not s.n:
        return "—"
    if s.sd is None:
        return format(s.mean, spec)
    return f"{s.mean:{spec}} ± {s.sd:{spec}} ({s.min:{spec}}–{s.max:{spec}})"
