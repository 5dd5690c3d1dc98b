"""Theorem 2 (eq. 21-41) and section I against scipy.stats.cauchy, 2-D integrals over the normal sums,
mpmath constants and the bound's premise drawn by hypothesis."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import theory

# No deadline and no too_slow health check: CI shares 2 cores, timing says nothing about correctness.
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("gamma", [0.05, 1.0, 3.7])
def test_tail_and_density_against_scipy_cauchy(gamma):
    k = np.array([-50.0, -1.0, 0.0, 0.3, 1.0, 4.0, 1e3])
    assert theory.cauchy_tail(k, gamma) == pytest.approx(stats.cauchy(scale=gamma).sf(k), rel=1e-12)
    assert theory.cauchy_ratio_density(k, gamma) == pytest.approx(stats.cauchy(scale=gamma).pdf(k), rel=1e-12)


def test_density_is_that_of_the_ratio_of_two_zero_mean_normals():
    # The ratio W_s / W_l of independent N(0, s_s^2), N(0, s_l^2) has density
    # int |w| f_s(z w) f_l(w) dw (ratio distribution); compare at a few points with gamma = s_s / s_l.
    s_s, s_l = 2.0, 0.5
    for z in (-3.0, 0.0, 0.7, 10.0):
        value, _ = integrate.quad(
            lambda w, z=z: abs(w) * stats.norm.pdf(z * w, scale=s_s) * stats.norm.pdf(w, scale=s_l),
            -np.inf,
            np.inf,
        )
        assert theory.cauchy_ratio_density(z, s_s / s_l) == pytest.approx(value, rel=1e-8)


@pytest.mark.parametrize(("k", "gamma"), [(0.0, 1.0), (1.0, 0.3), (4.0, 2.0), (-2.0, 0.5)])
def test_eq22_density_integrates_to_eq23_tail(k, gamma):
    value, _ = integrate.quad(lambda z: theory.cauchy_ratio_density(z, gamma), k, np.inf, epsabs=1e-13)
    assert theory.cauchy_tail(k, gamma) == pytest.approx(value, rel=1e-9)


def test_tail_reference_constants_from_mpmath():
    # mpmath, mp.dps = 30: atan2(sqrt(10), 3) / pi = 0.258380448082822201619813397489
    # atan(1 / 10**10) / pi = 3.18309886183790671536706493791e-11 (the printed 1/2 - atan(k)/pi cancels here)
    assert theory.cauchy_tail(3.0, np.sqrt(10.0)) == pytest.approx(
        0.258380448082822201619813397489, rel=1e-14
    )
    assert theory.cauchy_tail(1e10, 1.0) == pytest.approx(3.18309886183790671536706493791e-11, rel=1e-12)
    assert theory.cauchy_tail(np.inf, 1.0) == 0.0
    assert theory.cauchy_tail(-np.inf, 1.0) == 1.0


def _overtake_by_2d_integral(x_small, x_large, average=False):
    """P(S >= L | L > 0) for independent S ~ N(0, sum x_s^2), L ~ N(0, sum x_l^2) (means for `average`),
    as 2 * integral of the joint density over {s >= l > 0}, in standard units u = s/sd_s, t = l/sd_l
    (the region beyond 12 standard deviations holds less than 1e-32)."""
    sd_s, sd_l = np.sqrt(np.sum(np.square(x_small))), np.sqrt(np.sum(np.square(x_large)))
    if average:
        sd_s, sd_l = sd_s / len(x_small), sd_l / len(x_large)
    slope = sd_l / sd_s

    def density(u, t):
        return math.exp(-(u * u + t * t) / 2) / (2 * math.pi)

    value, _ = integrate.dblquad(density, 0, 12, lambda t: min(slope * t, 12.0), lambda t: 12.0, epsabs=1e-12)
    return 2 * value


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize(
    ("x_small", "x_large"),
    [([0.1, 0.2, 0.05, 0.3], [1.0, 2.0]), ([1.0] * 9, [3.0]), ([0.5], [0.6, 0.7, 0.8])],
)
def test_overtake_probability_against_2d_integral_over_normal_sums(x_small, x_large, average):
    expected = _overtake_by_2d_integral(x_small, x_large, average)
    got = theory.overtake_probability(x_small, x_large, average=average)
    assert got == pytest.approx(expected, abs=1e-8)


def test_gamma_is_the_ratio_of_sum_standard_deviations_and_average_factor():
    xs, xl = np.array([1.0, 2.0, 2.0]), np.array([4.0, 4.0])
    assert theory.overtake_gamma(xs, xl) == pytest.approx(3 / np.sqrt(32))
    assert theory.overtake_gamma(xs, xl, average=True) == pytest.approx(3 / np.sqrt(32) * 2 / 3)  # eq. 40


def test_sets_broadcast_over_leading_axes():
    xs = np.array([[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]])
    xl = np.array([1.0, 2.0])
    got = theory.overtake_probability(xs, xl)
    assert got.shape == (2,)
    assert got[1] == 0.0


@PROPERTY
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=30),
    st.lists(st.floats(0.01, 10), min_size=1, max_size=30),
    st.floats(0, 50),
)
def test_exact_probability_never_exceeds_gamma2_bound_when_premise_holds(small, extra, k):
    # Premise of eq. 21: min X_L >= K max X_S.
    x_small = np.array(small)
    x_large = k * x_small.max() + np.array(extra)
    exact = theory.overtake_probability(x_small, x_large)
    bound = theory.overtake_bound(k, len(x_small), len(x_large))
    assert exact <= bound * (1 + 1e-12) + 1e-15
    exact_avg = theory.overtake_probability(x_small, x_large, average=True)
    bound_avg = theory.overtake_bound_average(k, len(x_small), len(x_large))
    assert exact_avg <= bound_avg * (1 + 1e-12) + 1e-15


def test_bound_is_attained_by_equal_activations():
    # All x_s = 1, all x_l = K: eq. 30-33 hold with equality.
    for n_small, n_large, k in [(10, 3, 2.0), (1, 1, 1.0), (50, 5, 7.5)]:
        exact = theory.overtake_probability(np.ones(n_small), np.full(n_large, k))
        assert exact == pytest.approx(theory.overtake_bound(k, n_small, n_large), rel=1e-12)


def test_average_bound_is_attained_by_equal_activations():
    # eq. 40-41: gamma_1,avg = sqrt(|X_S| / |X_L|) / K * |X_L| / |X_S| = sqrt(|X_L| / |X_S|) / K.
    for n_small, n_large, k in [(10, 3, 2.0), (4, 9, 1.5)]:
        exact = theory.overtake_probability(np.ones(n_small), np.full(n_large, k), average=True)
        assert exact == pytest.approx(theory.overtake_bound_average(k, n_small, n_large), rel=1e-12)
        assert exact != pytest.approx(theory.overtake_bound(k, n_small, n_large), rel=1e-3)


def test_section_i_reference_values():
    # mpmath: atan2(sqrt(10), 3) / pi = 0.258380448082822201619813397489 (q_l = 0.5, q_h = 0.95, K = 3)
    k, gamma, p = theory.overtake_from_quantiles(0.5, 1.0, 0.95, 3.0)
    assert (k, gamma) == pytest.approx((3.0, np.sqrt(10.0)))
    assert p == pytest.approx(0.258380448082822201619813397489, rel=1e-14)
    assert p == pytest.approx(stats.cauchy(scale=gamma).sf(k), rel=1e-12)
    assert p == pytest.approx(theory.overtake_bound(k, 0.5, 1 - 0.95))


def test_section_i_sparse_and_negative_statistics():
    k, gamma, p = theory.overtake_from_quantiles(
        q_low=np.array([0.3, 0.1, 0.1, 0.2]),
        v_low=np.array([0.0, -2.0, -1.0, 0.0]),
        q_high=np.array([0.9, 0.9, 0.85, 0.95]),
        v_high=np.array([1.5, -0.5, 2.0, 0.0]),
    )
    # V(q_l) = 0: K = inf, P = 0. Both negative: inverse ratio V(q_l)/V(q_h) = 4.
    # Opposite signs (-1 < 0 < 2): outside section I's one-sign domain, K and P undefined (NaN).
    # All zero: nothing can overtake, K = inf.
    assert k[0] == np.inf and p[0] == 0.0
    assert k[1] == pytest.approx(4.0) and p[1] == pytest.approx(stats.cauchy(scale=gamma[1]).sf(4.0))
    assert np.isnan(k[2]) and np.isnan(p[2])
    assert k[3] == np.inf and p[3] == 0.0
    assert gamma == pytest.approx(np.sqrt([0.3 / 0.1, 0.1 / 0.1, 0.1 / 0.15, 0.2 / 0.05]))


@pytest.mark.parametrize(("v_low", "v_high", "defined"), [
    (0.5, 2.0, True), (0.0, 2.0, True), (-2.0, -0.5, True), (-2.0, 0.0, True), (0.0, 0.0, True),
    (-1.0, 2.0, False), (-1e-12, 1e-12, False),
])
def test_k_is_defined_exactly_where_the_quantiles_share_a_sign(v_low, v_high, defined):
    # the domain of the one-sign bound (eq. 29-36): K is a number there and NaN outside
    assert bool(theory.k_defined(v_low, v_high)) is defined
    k, _, p = theory.overtake_from_quantiles(0.3, v_low, 0.9, v_high)
    assert np.isnan(k) is not defined and np.isnan(p) is not defined


def test_section_i_grid_broadcasts_over_high_and_low_levels():
    q_high = np.array(theory.HIGH_QUANTILES)[:, None]
    q_low = np.array(theory.LOW_QUANTILES)[None, :]
    k, gamma, p = theory.overtake_from_quantiles(q_low, 0.2 + q_low, q_high, 1.0 + q_high)
    assert k.shape == gamma.shape == p.shape == (3, 9)
    assert len(theory.QUANTILE_LEVELS) == 18
    assert theory.QUANTILE_LEVELS[0] == 0.95 and theory.QUANTILE_LEVELS[-1] == 0.1
    assert set(theory.HIGH_QUANTILES) | set(theory.LOW_QUANTILES) <= set(theory.QUANTILE_LEVELS)


def test_section_i_refuses_lists_that_would_be_stretched():
    # One value missing: a length-1 v_low would silently stand for both levels of q_low.
    with pytest.raises(ValueError, match=r"v_low must have the shape of q_low"):
        theory.overtake_from_quantiles([0.1, 0.2], [1.0], [0.9], [2.0])
    with pytest.raises(ValueError, match=r"q_low with length 2.*q_high with length 1"):
        theory.overtake_from_quantiles([0.1, 0.2], [1.0, 1.5], [0.9], [2.0])
    # scalars apply to every entry; pairs of equal length go entry by entry
    k, _, _ = theory.overtake_from_quantiles([0.1, 0.2], [1.0, 0.5], 0.9, 2.0)
    assert k == pytest.approx([2.0, 4.0])
    k, _, _ = theory.overtake_from_quantiles([0.1, 0.2], 1.0, [0.9, 0.95], [2.0, 3.0])
    assert k == pytest.approx([2.0, 3.0])


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.cauchy_tail(1.0, 0.0), "gamma"),
        (lambda: theory.cauchy_tail(np.nan, 1.0), "k"),
        (lambda: theory.cauchy_ratio_density(0.0, -1.0), "gamma"),
        (lambda: theory.cauchy_tail([1, 2], [1, 2, 3]), "k"),
        (lambda: theory.overtake_probability([], [1.0]), "x_small"),
        (lambda: theory.overtake_probability([1.0], [0.0, 0.0]), "x_large"),
        (lambda: theory.overtake_probability([np.nan], [1.0]), "x_small"),
        (lambda: theory.overtake_probability(np.ones((2, 3)), np.ones((3, 2))), "x_small"),
        (lambda: theory.overtake_bound(-1.0, 2, 3), "k"),
        (lambda: theory.overtake_bound(1.0, 0, 3), "n_small"),
        (lambda: theory.overtake_bound_average(1.0, 2, -3), "n_large"),
        (lambda: theory.overtake_from_quantiles(0.5, 1.0, 1.0, 2.0), "q_high"),
        (lambda: theory.overtake_from_quantiles(0.9, 1.0, 0.5, 2.0), "q_low"),
        (lambda: theory.overtake_from_quantiles(0.1, 3.0, 0.9, 2.0), "v_low"),
        (lambda: theory.overtake_from_quantiles(0.1, np.nan, 0.9, 2.0), "v_low"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
