"""Eq. 20 against exact order-statistic variances; the expected maximum against order statistics.

No randomness: the order statistics of n draws have exact laws. U_(k) ~ Beta(k, n + 1 - k) for the uniform,
X_(k) = F^-1(U_(k)) in general, and for the exponential Var X_(k) = sum_{i<k} 1/(n-i)^2 (Renyi).
"""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import ndtri

import theory


def _exponential_order_statistic_variance(k, n):
    return float(np.sum(1.0 / (n - np.arange(k)) ** 2))


def _normal_order_statistic_variance(k, n):
    """Var Phi^-1(U_(k)) by quadrature against the Beta(k, n+1-k) law of U_(k) (sharply peaked: integrate
    over its mean +- 15 standard deviations)."""
    law = stats.beta(k, n + 1 - k)
    lo, hi = max(law.mean() - 15 * law.std(), 0.0), min(law.mean() + 15 * law.std(), 1.0)
    m1, _ = integrate.quad(lambda u: ndtri(u) * law.pdf(u), lo, hi, epsabs=1e-14, limit=200)
    m2, _ = integrate.quad(lambda u: ndtri(u) ** 2 * law.pdf(u), lo, hi, epsabs=1e-14, limit=200)
    return m2 - m1**2


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99])
def test_eq20_against_exact_exponential_order_statistics(p):
    # n Var X_(k) -> p / (1 - p) for the exponential; the relative error of the limit is O(1/(n(1-p))).
    n = 200_000
    k = int(round(p * n))
    exact = n * _exponential_order_statistic_variance(k, n)
    assert n * theory.quantile_asymptotic_variance(p, n, stats.expon) == pytest.approx(exact, rel=5e-3)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_eq20_against_exact_uniform_beta_order_statistics(p):
    n = 10_000
    k = int(round(p * n))
    exact = stats.beta(k, n + 1 - k).var()
    assert theory.quantile_asymptotic_variance(p, n, stats.uniform) == pytest.approx(exact, rel=1e-3)


def test_printed_eq20_misses_exact_exponential_by_the_density_factor():
    # The seed prints f(F^-1(p)) without the square: for the exponential at p = 0.9 that is 1 - p = 0.1,
    # so the printed form is ten times too small; the squared form matches the exact variance.
    n, p = 100_000, 0.9
    exact = _exponential_order_statistic_variance(int(p * n), n)
    squared = theory.quantile_asymptotic_variance(p, n, stats.expon)
    printed = theory.quantile_asymptotic_variance(p, n, stats.expon, as_printed=True)
    assert squared == pytest.approx(exact, rel=1e-3)
    assert printed / squared == pytest.approx(stats.expon.pdf(stats.expon.ppf(p)))
    assert printed == pytest.approx(0.1 * exact, rel=1e-3)


def test_printed_eq20_misses_exact_normal_quantile_variance():
    # Normal, p = 0.9, n = 1000 (the README's check). Reference digits from mpmath (mp.dps = 30):
    # f = phi(sqrt(2) erfinv(0.8)) = 0.17549833193248680662933691921;
    # 0.09 / (1000 f^2) = 0.00292210975115029201499518100283;
    # 0.09 / (1000 f) = 0.000512825387050530369264863414452.
    n, p = 1000, 0.9
    squared = theory.quantile_asymptotic_variance(p, n, stats.norm)
    printed = theory.quantile_asymptotic_variance(p, n, "norm", as_printed=True)
    assert squared == pytest.approx(0.00292210975115029201499518100283, rel=1e-12)
    assert printed == pytest.approx(0.000512825387050530369264863414452, rel=1e-12)
    exact = _normal_order_statistic_variance(900, n)  # 0.0029107...
    assert exact == pytest.approx(squared, rel=0.01)  # O(1/n) finite-sample correction
    assert not exact == pytest.approx(printed, rel=0.5)


def test_variance_grows_without_bound_towards_the_tails():
    p = np.array([0.5, 0.9, 0.99, 0.999, 0.9999])
    variance = theory.quantile_asymptotic_variance(p, 1000, stats.norm)
    assert np.all(np.diff(variance) > 0)
    assert theory.quantile_asymptotic_variance(p, 1000, stats.uniform) == pytest.approx(p * (1 - p) / 1000)


def test_location_scale_family_scales_variance_by_scale_squared():
    ratio = theory.quantile_asymptotic_variance(
        0.9, 100, stats.norm(2, 3)
    ) / theory.quantile_asymptotic_variance(0.9, 100, stats.norm)
    assert ratio == pytest.approx(9.0)


def test_frozen_and_parametrised_distributions_and_broadcasting():
    t3 = stats.t(3)
    got = theory.quantile_asymptotic_variance(np.array([0.25, 0.75])[:, None], np.array([10, 100, 1000]), t3)
    assert got.shape == (2, 3)
    expected = 0.25 * 0.75 / (100 * t3.pdf(t3.ppf(0.75)) ** 2)
    assert got[1, 1] == pytest.approx(expected)


# Reference constants, mpmath (mp.dps = 30):
# mp.quad(lambda x: x*5*ncdf(x)**4*phi(x), [-inf, 0, inf]) = 1.16296447364051961277226798855
# the same with 100 and Phi^99, points [-inf, 0, 2, 4, inf] = 2.50759363644168437251799389208
# Laplace(0, 1), n = 10, F = e^x/2 (x < 0), 1 - e^-x/2 = 2.23580574156746031746031746032
@pytest.mark.parametrize(
    ("n", "dist", "expected"),
    [
        (2, stats.norm, 1 / np.sqrt(np.pi)),
        (3, stats.norm, 1.5 / np.sqrt(np.pi)),
        (5, stats.norm, 1.16296447364051961277226798855),
        (100, stats.norm, 2.50759363644168437251799389208),
        (10, stats.laplace, 2.23580574156746031746031746032),
        (1000, stats.expon, float(np.sum(1.0 / np.arange(1, 1001)))),  # E max = harmonic number H_n
        (7, stats.uniform, 7 / 8),  # E U_(n) = n / (n + 1)
        (
            1000,
            stats.gumbel_r,
            np.euler_gamma + np.log(1000),
        ),  # the max of n Gumbels is Gumbel shifted by log n
        (
            5,
            stats.norm(2, 3),
            2 + 3 * 1.16296447364051961277226798855,
        ),  # location-scale of the n = 5 constant
    ],
)
def test_expected_maximum_against_order_statistics(n, dist, expected):
    assert theory.expected_maximum(n, dist) == pytest.approx(expected, rel=1e-8)


def test_expected_maximum_diverges_for_normal_and_not_for_uniform():
    n = np.array([10, 10**3, 10**5, 10**7])
    normal = theory.expected_maximum(n, stats.norm)
    assert np.all(np.diff(normal) > 0.5)
    # Classical extreme-value asymptotics: E max ~ sqrt(2 log n) from below.
    assert np.all(normal < np.sqrt(2 * np.log(n)))
    assert normal[-1] / np.sqrt(2 * np.log(n[-1])) > 0.9
    assert theory.expected_maximum(10**7, stats.uniform) < 1


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.quantile_asymptotic_variance(1.0, 10, stats.norm), "p"),
        (lambda: theory.quantile_asymptotic_variance(0.0, 10, stats.norm), "p"),
        (lambda: theory.quantile_asymptotic_variance(np.nan, 10, stats.norm), "p"),
        (lambda: theory.quantile_asymptotic_variance(0.5, -1, stats.norm), "n"),
        (lambda: theory.quantile_asymptotic_variance(0.5, 10, stats.poisson(3)), "dist"),
        (lambda: theory.quantile_asymptotic_variance(0.5, 10, "not_a_distribution"), "dist"),
        (lambda: theory.quantile_asymptotic_variance([0.5, 0.6], [1, 2, 3], stats.norm), "p"),
        (lambda: theory.expected_maximum(0, stats.norm), "n"),
        (lambda: theory.expected_maximum(2.5, stats.norm), "n"),
        (lambda: theory.expected_maximum(10, stats.cauchy), "dist"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
