"""Theorem 3's expected Spearman coefficient of a bivariate normal against numerical integration."""

import functools
import itertools

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ndtr

import theory


def _orthant(r):
    """P(U > 0, V > 0) for standard bivariate normal (U, V) with correlation r, by quadrature:
    int_0^inf phi(u) P(V > 0 | U = u) du, V | U = u ~ N(r u, 1 - r^2)."""
    slope = r / np.sqrt(1 - r**2)
    value, _ = integrate.quad(
        lambda u: np.exp(-u * u / 2) / np.sqrt(2 * np.pi) * ndtr(slope * u),
        0,
        np.inf,
        epsabs=1e-13,
        epsrel=1e-12,
    )
    return value


@functools.cache
def _concordance(rho):
    # p2 = P(X_j < X_i, Y_j < Y_i): the differences are bivariate normal with correlation rho.
    # p3 = P(X_j < X_i, Y_k < Y_i), j != k: the differences share only X_i, Y_i, correlation rho / 2.
    return _orthant(rho), _orthant(rho / 2)


def _expected_spearman_from_ranks(rho, n):
    """E[r_s] from r_s = 12/(n(n^2-1)) sum_i (R_i - m)(S_i - m) with R_i = 1 + sum_j 1[X_j < X_i]: the
    covariance of the rank indicators gives 12/(n+1) ((p2 - 1/4) + (n-2)(p3 - 1/4))."""
    p2, p3 = _concordance(rho)
    if n is None:
        return 12 * (p3 - 0.25)
    return 12 / (n + 1) * ((p2 - 0.25) + (n - 2) * (p3 - 0.25))


@pytest.mark.parametrize(
    ("rho", "n"), list(itertools.product([-0.9, -0.3, 0.0, 0.2, 0.5, 0.95], [None, 2, 5, 50, 1000]))
)
def test_expected_spearman_against_integrated_concordance(rho, n):
    expected = _expected_spearman_from_ranks(rho, n)
    assert theory.spearman_expected_gaussian(rho, n) == pytest.approx(expected, abs=1e-10)


def test_zero_correlation_scores_zero_theorem_3():
    # Theorem 3: zero (rank) covariance gives the minimum 0 over non-negative covariance.
    assert theory.spearman_expected_gaussian(0.0) == 0.0
    assert theory.spearman_expected_gaussian(0.0, n=10) == 0.0
    rhos = np.linspace(0, 1, 21)
    assert np.all(theory.spearman_expected_gaussian(rhos) >= 0)
    assert np.all(np.diff(theory.spearman_expected_gaussian(rhos, n=30)) > 0)


def test_finite_n_converges_to_population_and_perfect_correlation_gives_one():
    rho = np.array([-1.0, 0.4, 1.0])
    assert theory.spearman_expected_gaussian(rho, n=10**9) == pytest.approx(
        theory.spearman_expected_gaussian(rho), abs=1e-8
    )
    # rho = 1 gives identical ranks: r_s = 1 for every n; the population value 6/pi asin(1/2) = 1 too.
    assert theory.spearman_expected_gaussian(1.0) == pytest.approx(1.0)
    assert theory.spearman_expected_gaussian(1.0, n=np.array([2, 7, 100])) == pytest.approx(1.0)


def test_broadcasting_over_rho_and_n():
    got = theory.spearman_expected_gaussian(np.array([0.1, 0.5])[:, None], n=np.array([3, 10, 100]))
    assert got.shape == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rho": 1.5}, "rho"),
        ({"rho": np.nan}, "rho"),
        ({"rho": 0.5, "n": 1}, "n"),
        ({"rho": 0.5, "n": 2.5}, "n"),
        ({"rho": [0.1, 0.2], "n": [3, 4, 5]}, "rho"),
        ({"rho": 0.5, "n": -3}, "n"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        theory.spearman_expected_gaussian(**kwargs)
