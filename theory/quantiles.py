"""Variance of quantile estimators and the growth of the maximum (seed section D.1, eq. 20).

Max-abs normalisation divides by the sample maximum, the one "quantile" whose estimator does not settle
as the map grows; interior quantiles have asymptotic variance p(1-p) / (n f(F^-1(p))^2). The seed prints
the density without the square (a typo: the form is dimensionally wrong and misses exact order-statistic
variances by a factor f(F^-1(p))); `as_printed=True` reproduces it only to show that.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import integrate, stats

from . import _validation as v


def _distribution(dist):
    """A scipy.stats continuous distribution (frozen, unfrozen, or its name in scipy.stats)."""
    if isinstance(dist, str):
        candidate = getattr(stats, dist, None)
        if not isinstance(candidate, stats.rv_continuous):
            raise ValueError(f"dist must name a continuous distribution in scipy.stats, got {dist!r}")
        return candidate
    if isinstance(dist, stats.rv_continuous):
        return dist
    if isinstance(getattr(dist, "dist", None), stats.rv_continuous):
        return dist
    raise ValueError(f"dist must be a scipy.stats continuous distribution (frozen or not), got {dist!r}")


def quantile_asymptotic_variance(p, n, dist, *, as_printed=False):
    """Asymptotic variance p(1-p) / (n f(F^-1(p))^2) of the sample p-quantile of n draws (seed eq. 20).

    `dist`: a scipy.stats continuous distribution (e.g. `scipy.stats.norm`, `scipy.stats.t(3)`, "laplace").
    `as_printed=True` returns the seed's printed form p(1-p) / (n f(F^-1(p))), which is wrong (see module
    docstring). Infinite where the density at the quantile is 0. `n` is a sample size: an integer >= 1
    (3.0 is accepted, 0.5 is not). Broadcasts over p and n.
    """
    dist = _distribution(dist)
    if not isinstance(as_printed, (bool, np.bool_)):
        raise ValueError(f"as_printed must be True or False, got {as_printed!r}")
    p = v.probability("p", p)
    n = v.sample_size("n", n)
    p, n = v.broadcast(p=p, n=n)
    density = dist.pdf(dist.ppf(p))
    power = 1 if as_printed else 2
    with np.errstate(divide="ignore"):
        return v.scalar_or_array(p * (1 - p) / (n * density**power))


def _expected_maximum_one(n: int, dist) -> float:
    # E[max] = int_0^1 F^-1(u) n u^(n-1) du; substituting u = s^(1/n) gives int_0^1 F^-1(s^(1/n)) ds, whose
    # integrand has no peak that narrows with n. Upper quantiles go through isf(1 - u) with 1 - u from
    # expm1, so that u close to 1 keeps its precision.
    def integrand(s):
        log_u = np.log(s) / n
        u = np.exp(log_u)
        return dist.ppf(u) if u < 0.5 else dist.isf(-np.expm1(log_u))

    with warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        try:
            value, _ = integrate.quad(integrand, 0.0, 1.0, limit=200, epsabs=1e-11, epsrel=1e-10)
        except integrate.IntegrationWarning:
            value, _ = integrate.quad(integrand, 0.0, 1.0, points=[0.5, 0.9, 0.99], limit=500)
    return float(value)


def expected_maximum(n, dist):
    """Expected maximum of n iid draws from `dist`, by numerical integration (seed section D.1).

    For unbounded distributions (normal, Laplace, ...) it grows without bound in n, which is why the
    max-abs normaliser keeps changing as maps grow. `dist` must have a finite mean. Broadcasts over n.
    """
    dist = _distribution(dist)
    n = v.integer_at_least("n", n, 1)
    mean = float(dist.mean())
    if not np.isfinite(mean):
        raise ValueError(f"dist must have a finite mean for the expected maximum to exist, got mean {mean!r}")
    flat = np.array([_expected_maximum_one(int(k), dist) for k in n.ravel()])
    return v.scalar_or_array(flat.reshape(n.shape))
