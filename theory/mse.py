"""MSE of normalised and unnormalised attribution processes (seed Theorem 4, section D, eq. 12-19)."""

from __future__ import annotations

import numpy as np

from . import _validation as v

_RTOL = 1e-9


def _second_moments(mu_a, mu_b, second_moment_a, second_moment_b):
    mu_a, mu_b = v.as_float_array("mu_a", mu_a), v.as_float_array("mu_b", mu_b)
    m2a, m2b = v.positive("second_moment_a", second_moment_a), v.positive("second_moment_b", second_moment_b)
    mu_a, mu_b, m2a, m2b = v.broadcast(mu_a=mu_a, mu_b=mu_b, second_moment_a=m2a, second_moment_b=m2b)
    v.check("second_moment_a", m2a, m2a * (1 + _RTOL) >= mu_a**2, "at least mu_a**2 (variance >= 0)")
    v.check("second_moment_b", m2b, m2b * (1 + _RTOL) >= mu_b**2, "at least mu_b**2 (variance >= 0)")
    return mu_a, mu_b, m2a, m2b


def normalized_mse(second_moment_a, second_moment_b, cross_moment):
    """MSE of A/E[A^2]^(1/2) and B/E[B^2]^(1/2): 2 - 2 E[AB] / sqrt(E[A^2] E[B^2]) (seed eq. 12-13).

    Second moments must be positive; |E[AB]| <= sqrt(E[A^2] E[B^2]). The result lies in [0, 4].
    """
    m2a, m2b = v.positive("second_moment_a", second_moment_a), v.positive("second_moment_b", second_moment_b)
    cross = v.as_float_array("cross_moment", cross_moment)
    m2a, m2b, cross = v.broadcast(second_moment_a=m2a, second_moment_b=m2b, cross_moment=cross)
    scale = np.sqrt(m2a) * np.sqrt(m2b)
    v.check("cross_moment", cross, np.abs(cross) <= scale * (1 + _RTOL),
            "at most sqrt(second_moment_a * second_moment_b) in absolute value")
    return v.scalar_or_array(2 - 2 * cross / scale)


def normalized_mse_from_moments(mu_a, mu_b, var_a, var_b, cov_ab):
    """Second-moment-normalised MSE from means, variances and covariance (seed eq. 14).

    2 - 2 cov/sqrt(E[A^2] E[B^2]) - 2 mu_a mu_b/sqrt(E[A^2] E[B^2]) with E[X^2] = var + mu^2 > 0.
    """
    mu_a, mu_b = v.as_float_array("mu_a", mu_a), v.as_float_array("mu_b", mu_b)
    var_a, var_b = v.nonnegative("var_a", var_a), v.nonnegative("var_b", var_b)
    mu_a, mu_b, var_a, var_b = v.broadcast(mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b)
    cov = v.covariance("cov_ab", cov_ab, var_a, var_b)
    m2a, m2b = var_a + mu_a**2, var_b + mu_b**2
    v.check("var_a", var_a, m2a > 0, "positive where mu_a == 0 (the second moment must be positive)")
    v.check("var_b", var_b, m2b > 0, "positive where mu_b == 0 (the second moment must be positive)")
    scale = np.sqrt(m2a) * np.sqrt(m2b)
    return v.scalar_or_array(2 - 2 * cov / scale - 2 * mu_a * mu_b / scale)


def normalized_mse_max(mu_a, mu_b, second_moment_a, second_moment_b):
    """Maximum of the normalised MSE over cov_ab >= 0, attained at cov_ab = 0 (seed Theorem 4, eq. 15).

    Returns 2 - 2 mu_a mu_b / sqrt(E[A^2] E[B^2]); 2 for zero-mean processes.
    """
    mu_a, mu_b, m2a, m2b = _second_moments(mu_a, mu_b, second_moment_a, second_moment_b)
    return v.scalar_or_array(2 - 2 * mu_a * mu_b / (np.sqrt(m2a) * np.sqrt(m2b)))


def mse_from_moments(mu_a, mu_b, var_a, var_b, cov_ab):
    """Unnormalised MSE E[(A-B)^2] = var_a + var_b + (mu_a - mu_b)^2 - 2 cov_ab (seed eq. 16-18)."""
    mu_a, mu_b = v.as_float_array("mu_a", mu_a), v.as_float_array("mu_b", mu_b)
    var_a, var_b = v.nonnegative("var_a", var_a), v.nonnegative("var_b", var_b)
    mu_a, mu_b, var_a, var_b = v.broadcast(mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b)
    cov = v.covariance("cov_ab", cov_ab, var_a, var_b)
    return v.scalar_or_array(var_a + var_b + (mu_a - mu_b) ** 2 - 2 * cov)


def mse_bound(mu_a, mu_b, var_a, var_b):
    """Bound var_a + var_b + (mu_a - mu_b)^2 on the unnormalised MSE over cov_ab >= 0 (seed eq. 19).

    Unlike eq. 15 it grows with the variances: noisier processes look "more randomised".
    """
    mu_a, mu_b = v.as_float_array("mu_a", mu_a), v.as_float_array("mu_b", mu_b)
    var_a, var_b = v.nonnegative("var_a", var_a), v.nonnegative("var_b", var_b)
    mu_a, mu_b, var_a, var_b = v.broadcast(mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b)
    return v.scalar_or_array(var_a + var_b + (mu_a - mu_b) ** 2)
