"""SSIM of two attribution processes from their moments (seed Theorem 1, section B, eq. 3-7)."""

from __future__ import annotations

import numpy as np

from . import _validation as v


def _moments(mu_a, mu_b, var_a, var_b):
    return (
        v.as_float_array("mu_a", mu_a),
        v.as_float_array("mu_b", mu_b),
        v.nonnegative("var_a", var_a),
        v.nonnegative("var_b", var_b),
    )


def ssim_constants(data_range, k1=0.01, k2=0.03):
    """Stabilising constants C1 = (k1 L)^2, C2 = (k2 L)^2 for a dynamic range L (main paper eq. 1).

    Returns the pair (c1, c2), broadcast over the arguments.
    """
    data_range = v.positive("data_range", data_range)
    k1 = v.positive("k1", k1)
    k2 = v.positive("k2", k2)
    data_range, k1, k2 = v.broadcast(data_range=data_range, k1=k1, k2=k2)
    return v.scalar_or_array((k1 * data_range) ** 2), v.scalar_or_array((k2 * data_range) ** 2)


def _luminance(mu_a, mu_b, c1):
    return (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)


def _contrast_structure(cov, var_a, var_b, c2):
    return (2 * cov + c2) / (var_a + var_b + c2)


def ssim_from_moments(mu_a, mu_b, var_a, var_b, cov_ab, *, c1, c2):
    """SSIM of two processes with the given means, variances and covariance (main paper eq. 1).

    The product of the luminance term (2 mu_a mu_b + c1)/(mu_a^2 + mu_b^2 + c1) and the contrast-structure
    term (2 cov + c2)/(var_a + var_b + c2); c1, c2 > 0 (see `ssim_constants`). Broadcasts.
    """
    mu_a, mu_b, var_a, var_b = _moments(mu_a, mu_b, var_a, var_b)
    c1, c2 = v.positive("c1", c1), v.positive("c2", c2)
    mu_a, mu_b, var_a, var_b, c1, c2 = v.broadcast(
        mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b, c1=c1, c2=c2)
    cov = v.covariance("cov_ab", cov_ab, var_a, var_b)
    mu_a, mu_b, var_a, var_b, c1, c2, cov = v.broadcast(
        mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b, c1=c1, c2=c2, cov_ab=cov)
    return v.scalar_or_array(_luminance(mu_a, mu_b, c1) * _contrast_structure(cov, var_a, var_b, c2))


def ssim_min_nonnegative_cov(mu_a, mu_b, var_a, var_b, *, c1, c2):
    """Minimum of |SSIM| over all processes with cov_ab >= 0, attained at cov_ab = 0 (seed eq. 3-5).

    Returns |2 mu_a mu_b + c1| / (mu_a^2 + mu_b^2 + c1) * c2 / (var_a + var_b + c2). Where
    2 mu_a mu_b + c1 >= 0 (e.g. non-negative means) this is also the minimum of SSIM itself.
    """
    mu_a, mu_b, var_a, var_b = _moments(mu_a, mu_b, var_a, var_b)
    c1, c2 = v.positive("c1", c1), v.positive("c2", c2)
    mu_a, mu_b, var_a, var_b, c1, c2 = v.broadcast(
        mu_a=mu_a, mu_b=mu_b, var_a=var_a, var_b=var_b, c1=c1, c2=c2)
    return v.scalar_or_array(np.abs(_luminance(mu_a, mu_b, c1)) * _contrast_structure(0.0, var_a, var_b, c2))


def ssim_noise_bound(var_a, var_b, *, c2):
    """Upper bound c2 / (var_a + var_b + c2) on the minimum of |SSIM| over cov >= 0 (seed eq. 6-7).

    It depends only on the variances: the larger the variance of a zero-covariance process, the lower
    (the "more randomised") its SSIM score, whatever the means.
    """
    var_a, var_b = v.nonnegative("var_a", var_a), v.nonnegative("var_b", var_b)
    c2 = v.positive("c2", c2)
    var_a, var_b, c2 = v.broadcast(var_a=var_a, var_b=var_b, c2=c2)
    return v.scalar_or_array(_contrast_structure(0.0, var_a, var_b, c2))
