"""Spearman rank correlation under noise (seed Theorem 3, section C, eq. 8-10).

Theorem 3: over processes whose ranks have non-negative covariance, the expected Spearman coefficient
is minimised (at 0) by zero rank covariance. For a bivariate normal pair with correlation rho the
expected coefficient has a closed form, so a zero-covariance process (rho = 0) scores exactly 0.
"""

from __future__ import annotations

import numpy as np

from . import _validation as v


def spearman_expected_gaussian(rho, n=None):
    """Expected Spearman coefficient (seed section C, eq. 8) of a bivariate normal with correlation `rho`.

    n=None: the population value 6/pi * asin(rho/2). Finite n >= 2 samples: the expectation of the
    sample coefficient, 6/(pi (n+1)) * (asin(rho) + (n-2) asin(rho/2)). Broadcasts over rho and n.
    """
    rho = v.as_float_array("rho", rho)
    v.check("rho", rho, np.abs(rho) <= 1, "a correlation in [-1, 1]")
    if n is None:
        return v.scalar_or_array(6 / np.pi * np.arcsin(rho / 2))
    n = v.integer_at_least("n", n, 2).astype(float)
    rho, n = v.broadcast(rho=rho, n=n)
    return v.scalar_or_array(6 / (np.pi * (n + 1)) * (np.arcsin(rho) + (n - 2) * np.arcsin(rho / 2)))
