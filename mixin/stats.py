"""The constants the experiment rules need, computed here because PromQL cannot: the critical values
of the chi-squared distribution, and the mixing parameter of the always-valid confidence sequences.

Standard library only (the rules are rendered without SciPy); ``tests/test_experiment_truth.py``
checks both against SciPy.
"""

from __future__ import annotations

import math

_EPSILON = 1e-15
_TINY = 1e-300


def _gamma_series(a: float, x: float) -> float:
    """Regularised lower incomplete gamma P(a, x) by its power series (converges for x < a + 1)."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(10_000):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPSILON:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_continued_fraction(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) by Lentz's continued fraction (x >= a + 1)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPSILON:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_survival(statistic: float, degrees_of_freedom: int) -> float:
    """P(X > statistic) for X chi-squared with ``degrees_of_freedom``: the p-value of a statistic."""
    if statistic <= 0:
        return 1.0
    a, x = degrees_of_freedom / 2.0, statistic / 2.0
    if x < a + 1.0:
        return 1.0 - _gamma_series(a, x)
    return _gamma_continued_fraction(a, x)


def chi2_critical(alpha: float, degrees_of_freedom: int) -> float:
    """The statistic a chi-squared test with ``degrees_of_freedom`` rejects above at level ``alpha``:
    the (1 - alpha) quantile, found by bisection on the survival function to full precision."""
    if not 0 < alpha < 1 or degrees_of_freedom < 1:
        raise ValueError(f"need 0 < alpha < 1 and degrees_of_freedom >= 1, got {alpha}, {degrees_of_freedom}")
    low, high = 0.0, float(degrees_of_freedom)
    while chi2_survival(high, degrees_of_freedom) > alpha:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if chi2_survival(middle, degrees_of_freedom) > alpha:
            low = middle
        else:
            high = middle
        if high - low <= high * 1e-15:
            break
    return (low + high) / 2.0


def mixing_rho_squared(alpha: float, tuning: float) -> float:
    """rho^2 of a two-sided asymptotic confidence sequence at level 1 - ``alpha`` (Waudby-Smith et
    al., the choice that makes it tightest near a total sample size of ``tuning``)."""
    log_alpha = math.log(alpha)
    return (-2.0 * log_alpha + math.log(-2.0 * log_alpha + 1.0)) / tuning
