"""Intervals, verdicts and the rows of a simulation table: estimate, its interval, theory, and whether they
agree.

Every experiment module builds its rows with :func:`row` (or one of the ``*_row`` helpers) and turns them
into the tidy table of docs/results-format.md with :func:`simulations.results.finish_table`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from simulations.results import RELATIONS
from simulations.streaming import Moments, Worst


def z_value(level: float) -> float:
    """Two-sided normal quantile for a confidence level."""
    return float(stats.norm.ppf(0.5 + level / 2))


def normal_interval(estimate, se, level: float):
    z = z_value(level)
    estimate, se = np.asarray(estimate, float), np.asarray(se, float)
    return estimate - z * se, estimate + z * se


def wilson_interval(count, n, level: float):
    """Wilson score interval of a binomial proportion; exact endpoints 0 and 1 stay attainable."""
    count, n = np.asarray(count, float), np.asarray(n, float)
    z = z_value(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = count / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    low = np.where(count == 0, 0.0, centre - half)
    high = np.where(count == n, 1.0, centre + half)
    return low, high


def verdict(ci_low, ci_high, theory, relation: str, atol: float = 0.0):
    """Whether the interval is compatible with ``theory`` under ``relation``; None where undefined."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    values = (ci_low, ci_high, theory)
    if any(v is None or not np.isfinite(v) for v in values[:2]) or theory is None or np.isnan(theory):
        return None
    if relation == "equal":
        return bool(ci_low - atol <= theory <= ci_high + atol)
    if relation == "at_most":  # theory bounds the quantity from above
        return bool(ci_low <= theory + atol)
    if relation == "at_least":
        return bool(ci_high >= theory - atol)
    if relation == "greater":  # the quantity is strictly above theory
        return bool(ci_low > theory + atol)
    return bool(ci_high < theory - atol)


def row(
    settings: dict,
    quantity: str,
    *,
    estimate: float,
    se: float,
    theory: float,
    level: float,
    relation: str = "equal",
    ci: tuple[float, float] | None = None,
    atol: float = 0.0,
) -> dict:
    """One table row: normal interval from ``se`` unless ``ci`` is given, and its verdict."""
    estimate, se, theory = float(estimate), float(se), float(theory)
    low, high = ci if ci is not None else normal_interval(estimate, se, level)
    low, high = float(low), float(high)
    return {
        **settings,
        "quantity": quantity,
        "estimate": estimate,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "theory": theory,
        "agree": verdict(low, high, theory, relation, atol),
        "level": float(level),
        "relation": relation,
    }


def proportion_row(settings: dict, quantity: str, *, count: int, n: int, theory: float, level: float,
                   relation: str = "equal") -> dict:
    """A row for a frequency: estimate count/n, binomial se, Wilson interval."""
    if n == 0:
        return row(settings, quantity, estimate=np.nan, se=np.nan, theory=theory, level=level,
                   relation=relation, ci=(np.nan, np.nan))
    p = count / n
    low, high = wilson_interval(count, n, level)
    return row(settings, quantity, estimate=p, se=math.sqrt(p * (1 - p) / n), theory=theory, level=level,
               relation=relation, ci=(float(low), float(high)))


def mean_row(settings: dict, quantity: str, values, *, theory: float, level: float,
             relation: str = "equal", atol: float = 0.0) -> dict:
    """A row for the mean of i.i.d. values (an array, or their streamed :class:`Moments`), se = sd/sqrt(n)."""
    moments = values if isinstance(values, Moments) else Moments.of(np.asarray(values, float).ravel())
    n = moments.n
    if n == 0:
        return row(settings, quantity, estimate=np.nan, se=np.nan, theory=theory, level=level,
                   relation=relation, ci=(np.nan, np.nan))
    se = float(moments.std(ddof=1)) / math.sqrt(n) if n > 1 else np.nan
    return row(settings, quantity, estimate=moments.mean, se=se, theory=theory, level=level,
               relation=relation, atol=atol)


def identity_row(settings: dict, quantity: str, errors, *, level: float, atol: float) -> dict:
    """A row for an identity that must hold in every draw: estimate = max |error|, agree iff <= atol.
    ``errors``: an array, or their streamed :class:`Worst`."""
    worst = errors if isinstance(errors, Worst) else Worst(errors)
    value = worst.worst if worst.n else np.nan
    return row(settings, quantity, estimate=value, se=0.0, theory=0.0, level=level, ci=(value, value),
               atol=atol)
