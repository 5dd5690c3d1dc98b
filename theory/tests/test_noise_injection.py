"""Noise injection (Theorems 1, 3, 4 under added noise) against Gauss-Hermite quadrature of the defining
expectations, scipy.stats, exact formulas, and hypothesis properties (s = 0, monotone in s, s -> inf)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import theory

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
C = {"c1": 1e-4, "c2": 9e-4}
means = st.floats(-5, 5)
variances = st.floats(1e-3, 5)
levels = st.floats(0, 10)

# 2-D Gauss-Hermite rule for E[f(U, V)], U, V independent standard normals (exact for polynomials of
# degree < 2 * 60 in each variable, and accurate to ~1e-12 for the smooth CDF products below).
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
U, V = np.meshgrid(_NODES, _NODES, indexing="ij")
W = np.outer(_WEIGHTS, _WEIGHTS)


def expect(values):
    return float(np.sum(W * values))


def quadrature_moments(x, y):
    """Means, variances and covariance of two functions of (U, V), by quadrature."""
    mx, my = expect(x), expect(y)
    return mx, my, expect((x - mx) ** 2), expect((y - my) ** 2), expect((x - mx) * (y - my))


def ssim_by_formula(mx, my, vx, vy, cxy, c1, c2):
    # main-paper eq. 1 written out, independent of theory.ssim_from_moments
    return (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


@pytest.mark.parametrize(("mu", "var", "s"), [(0.0, 1.0, 0.5), (1.3, 0.4, 1.0), (-0.7, 2.0, 2.0)])
def test_ssim_noisy_self_against_quadrature(mu, var, s):
    m2 = mu**2 + var
    a = mu + np.sqrt(var) * U
    noisy = a + s * np.sqrt(m2) * V
    expected = ssim_by_formula(*quadrature_moments(a, noisy), **C)
    assert theory.ssim_noisy_self(mu, var, s, **C) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("s", "s_b"), [(0.5, None), (1.0, 0.25), (2.0, 0.0)])
def test_ssim_noisy_pair_against_quadrature(s, s_b):
    # clean pair A = 0.5 + U, B = 0.2 + 0.6 U + 0.8 U' ; the noises are independent of (U, U') and of each
    # other, so their contribution is added to the variances exactly (checked by quadrature in U and V)
    mu_a, mu_b, var_a, var_b, cov = 0.5, 0.2, 1.0, 1.0, 0.6
    level_b = s if s_b is None else s_b
    noise_var_a = expect((s * np.sqrt(mu_a**2 + var_a) * V) ** 2)
    noise_var_b = expect((level_b * np.sqrt(mu_b**2 + var_b) * U) ** 2)
    expected = ssim_by_formula(mu_a, mu_b, var_a + noise_var_a, var_b + noise_var_b, cov, **C)
    got = theory.ssim_noisy_pair(mu_a, mu_b, var_a, var_b, cov, s, s_b=s_b, **C)
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("mu", "var", "s"), [(0.0, 1.0, 0.5), (2.0, 0.3, 1.0), (-1.0, 1.5, 3.0)])
def test_normalized_mse_noisy_self_against_quadrature(mu, var, s):
    a = mu + np.sqrt(var) * U
    noisy = a + s * np.sqrt(mu**2 + var) * V
    expected = expect((a / np.sqrt(expect(a**2)) - noisy / np.sqrt(expect(noisy**2))) ** 2)  # eq. 12
    assert theory.normalized_mse_noisy_self(s) == pytest.approx(expected, rel=1e-10)


def test_normalized_mse_noisy_pair_against_quadrature():
    # (A, B) built from U alone, noises from V and from an exact second moment: E[(A~/|A~| - B~/|B~|)^2]
    mu_a, mu_b, s, s_b = 0.8, -0.3, 0.7, 1.5
    a, b = mu_a + U, mu_b + 0.5 * U
    noisy_a = a + s * np.sqrt(expect(a**2)) * V
    cross = expect(noisy_a * b) / np.sqrt(expect(noisy_a**2) * expect(b**2) * (1 + s_b**2))
    expected = 2 - 2 * cross  # B's noise is independent of everything: E[B~^2] = (1 + s_b^2) E[B^2]
    got = theory.normalized_mse_noisy_pair(mu_a, mu_b, 1.0, 0.25, 0.5, s, s_b=s_b)
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("mu", "var", "s"), [(0.0, 1.0, 0.5), (1.0, 0.5, 1.0), (3.0, 1.0, 0.25)])
def test_spearman_noisy_self_against_population_rank_correlation(mu, var, s):
    # population Spearman = 12 E[F(A) G(A~)] - 3 with the normal marginal CDFs (scipy.stats.norm)
    noisy_sd = np.sqrt(var + s**2 * (mu**2 + var))
    a = mu + np.sqrt(var) * U
    noisy = a + s * np.sqrt(mu**2 + var) * V
    cdf_a = stats.norm.cdf(a, loc=mu, scale=np.sqrt(var))
    cdf_noisy = stats.norm.cdf(noisy, loc=mu, scale=noisy_sd)
    expected = 12 * expect(cdf_a * cdf_noisy) - 3
    assert theory.spearman_noisy_self(mu, var, s) == pytest.approx(expected, abs=1e-8)


def test_spearman_noisy_pair_shrinks_the_clean_correlation_exactly():
    rho_clean, var, s = 0.6, 2.0, 1.0
    rho = rho_clean * var / (var + s**2 * var)  # zero means: E[A^2] = var
    assert theory.spearman_noisy_pair(0, 0, var, var, rho_clean * var, s, 50) == pytest.approx(
        6 / (np.pi * 51) * (np.arcsin(rho) + 48 * np.arcsin(rho / 2)), rel=1e-12)


def test_local_variance_with_global_second_moment():
    # a windowed variance 0.3 of a map whose global E[A^2] is 2: noise variance s^2 * 2 is added
    assert theory.noise_injected_variance(1.0, 0.3, 0.5, second_moment=2.0) == pytest.approx(0.3 + 0.5)
    assert theory.ssim_noisy_self(1.0, 0.3, 0.5, second_moment=2.0, **C) == pytest.approx(
        (0.6 + C["c2"]) / (0.6 + 0.5 + C["c2"]))


def test_broadcasts_over_levels_and_moments():
    s = np.array([0.0, 0.25, 0.5, 1.0, 2.0])
    out = theory.ssim_noisy_pair(0.5, 0.5, np.array([[1.0], [2.0]]), 1.0, 0.3, s, **C)
    assert out.shape == (2, 5)
    assert theory.normalized_mse_noisy_self(s).shape == (5,)


@PROPERTY
@given(mu_a=means, mu_b=means, var_a=variances, var_b=variances, fraction=st.floats(0, 1))
def test_level_zero_gives_the_clean_scores(mu_a, mu_b, var_a, var_b, fraction):
    cov = fraction * np.sqrt(var_a * var_b)
    assert theory.ssim_noisy_pair(mu_a, mu_b, var_a, var_b, cov, 0.0, **C) == pytest.approx(
        theory.ssim_from_moments(mu_a, mu_b, var_a, var_b, cov, **C), rel=1e-12)
    assert theory.normalized_mse_noisy_pair(mu_a, mu_b, var_a, var_b, cov, 0.0) == pytest.approx(
        theory.normalized_mse_from_moments(mu_a, mu_b, var_a, var_b, cov), rel=1e-9, abs=1e-12)
    assert theory.spearman_noisy_pair(mu_a, mu_b, var_a, var_b, cov, 0.0) == pytest.approx(
        theory.spearman_expected_gaussian(min(1.0, fraction)), abs=1e-9)
    assert theory.ssim_noisy_self(mu_a, var_a, 0.0, **C) == pytest.approx(1.0)
    assert theory.normalized_mse_noisy_self(0.0) == 0.0
    assert theory.spearman_noisy_self(mu_a, var_a, 0.0, 100) == pytest.approx(1.0)


@PROPERTY
@given(mu=st.floats(0, 5), var=variances, fraction=st.floats(0, 1), s1=levels, s2=levels)
def test_more_noise_never_looks_less_randomised(mu, var, fraction, s1, s2):
    low, high = min(s1, s2), max(s1, s2)
    cov = fraction * var
    for f in (theory.ssim_noisy_pair, theory.spearman_noisy_pair):
        extra = C if f is theory.ssim_noisy_pair else {}
        assert f(mu, mu, var, var, cov, high, **extra) <= f(mu, mu, var, var, cov, low, **extra) + 1e-12
    assert (theory.normalized_mse_noisy_pair(mu, mu, var, var, cov, high)
            >= theory.normalized_mse_noisy_pair(mu, mu, var, var, cov, low) - 1e-12)
    assert theory.ssim_noisy_self(mu, var, high, **C) <= theory.ssim_noisy_self(mu, var, low, **C) + 1e-12
    assert theory.normalized_mse_noisy_self(high) >= theory.normalized_mse_noisy_self(low) - 1e-12


@PROPERTY
@given(mu=means, var=variances, fraction=st.floats(0, 1))
def test_infinite_noise_limits(mu, var, fraction):
    s = 1e7
    cov = fraction * var
    assert abs(theory.ssim_noisy_pair(mu, mu, var, var, cov, s, **C)) < 1e-9
    assert theory.normalized_mse_noisy_pair(mu, mu, var, var, cov, s) == pytest.approx(2.0, abs=1e-6)
    assert abs(theory.spearman_noisy_pair(mu, mu, var, var, cov, s)) < 1e-6
    assert theory.normalized_mse_noisy_self(s) == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: theory.ssim_noisy_self(0.0, 1.0, -0.1, **C), "s"),
    (lambda: theory.ssim_noisy_self(0.0, np.nan, 0.5, **C), "var"),
    (lambda: theory.ssim_noisy_pair(0, 0, 1, 1, 0.5, 0.5, s_b=np.inf, **C), "s_b"),
    (lambda: theory.ssim_noisy_pair(0, 0, 1, 1, 2.0, 0.5, **C), "cov_ab"),
    (lambda: theory.ssim_noisy_pair(3, 0, 1, 1, 0.0, 0.5, second_moment_a=1.0, **C), "second_moment_a"),
    (lambda: theory.normalized_mse_noisy_self("a lot"), "s"),
    (lambda: theory.normalized_mse_noisy_pair(0, 0, 0, 1, 0, 0.5), "var_a"),
    (lambda: theory.spearman_noisy_self(0.0, 0.0, 0.5), "var"),
    (lambda: theory.spearman_noisy_pair(0, 0, 1, 1, 0.5, 0.5, n=1), "n"),
    (lambda: theory.noise_injected_variance(0.0, -1.0, 0.5), "var"),
    (lambda: theory.ssim_noisy_pair(0, 0, [1, 1], 1, 0, [0.5, 1, 2], **C), "var_a"),
])
def test_invalid_inputs_raise_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def _torus_autocovariance(kernel):
    spectrum = np.abs(np.fft.fft2(kernel)) ** 2
    return np.real(np.fft.ifft2(spectrum))


def test_spearman_expected_stationary_reduces_to_the_iid_formula():
    delta = np.zeros((4, 5))
    delta[0, 0] = 1.0
    for rho in (0.0, 0.3, 0.9):
        assert theory.spearman_expected_stationary(delta, delta, rho * delta) == pytest.approx(
            theory.spearman_expected_gaussian(rho, 20), rel=1e-12, abs=1e-15)


def test_spearman_expected_stationary_against_monte_carlo_ranks():
    # smooth 5x5 torus field X (white noise blurred), Y = 0.7 X + sqrt(0.51) X' + 0.5 Z: the exact value
    # against the mean of 40000 sample coefficients from scipy.stats.rankdata; |mc - exact| <= 4 se
    # (false-failure rate 6e-5, fixed seed)
    dy, dx = np.minimum(np.arange(5), 5 - np.arange(5))[:, None], np.minimum(np.arange(5), 5 - np.arange(5))
    kernel = np.exp(-(dy**2 + dx**2) / 2.0)
    kernel /= np.sqrt(np.sum(kernel**2))
    cov = _torus_autocovariance(kernel)
    delta = np.zeros((5, 5))
    delta[0, 0] = 1.0
    exact = theory.spearman_expected_stationary(cov, cov + 0.25 * delta, 0.7 * cov)
    gen = np.random.default_rng(0)
    blur = np.fft.fft2(kernel)
    fields = np.real(np.fft.ifft2(np.fft.fft2(gen.standard_normal((2, 40000, 5, 5))) * blur))
    x = fields[0].reshape(40000, -1)
    y = (0.7 * fields[0] + np.sqrt(0.51) * fields[1]).reshape(40000, -1)
    y = y + 0.5 * gen.standard_normal((40000, 25))
    rank_x, rank_y = stats.rankdata(x, axis=1) - 13, stats.rankdata(y, axis=1) - 13
    r = np.sum(rank_x * rank_y, axis=1) / np.sum(rank_x**2, axis=1)
    assert abs(r.mean() - exact) <= 4 * r.std(ddof=1) / np.sqrt(r.size)
    iid = theory.spearman_expected_gaussian(0.7 / np.sqrt(1.25), 25)
    assert abs(exact - iid) > 0.01  # the spatial correlation matters at this size


def test_spearman_expected_stationary_rejects_copies_and_shapes():
    with pytest.raises(ValueError, match="cov_x"):
        theory.spearman_expected_stationary(np.ones((3, 3)), np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="one shape"):
        theory.spearman_expected_stationary(np.eye(3), np.eye(4), np.eye(3))
