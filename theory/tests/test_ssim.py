"""Theorem 1 (seed eq. 3-7) against scikit-image, numerical minimisation and hypothesis bounds."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize
from skimage.metrics import structural_similarity

import theory

# No deadline and no too_slow health check: CI shares 2 cores, timing says nothing about correctness.
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
means = st.floats(-50, 50)
variances = st.floats(0, 50)
fractions = st.floats(0, 1)
ranges = st.floats(1e-2, 1e2)


def _moments(a, b):
    mu_a, mu_b = a.mean(), b.mean()
    return mu_a, mu_b, a.var(), b.var(), np.mean((a - mu_a) * (b - mu_b))


@pytest.mark.parametrize("seed_image", [0, 1, 2])
def test_ssim_from_moments_against_skimage_single_window(seed_image):
    # One window covering the whole 7x7 image (win_size = image size, population covariance): scikit-image's
    # SSIM is then exactly the SSIM of the image's own moments.
    image_a = np.linspace(-1, 2, 49).reshape(7, 7) ** (seed_image + 1)
    image_b = np.cos(np.arange(49.0).reshape(7, 7) * (seed_image + 0.7)) + 0.3 * image_a
    data_range = 4.0
    expected = structural_similarity(
        image_a,
        image_b,
        win_size=7,
        data_range=data_range,
        use_sample_covariance=False,
        gaussian_weights=False,
    )
    c1, c2 = theory.ssim_constants(data_range)
    got = theory.ssim_from_moments(*_moments(image_a, image_b), c1=c1, c2=c2)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_ssim_of_independent_maps_against_skimage_equals_zero_cov_closed_form():
    # Two maps built to have zero sample covariance (b is a mean-zero sign pattern orthogonal to a - mean(a)):
    # scikit-image's score equals the Theorem 1 minimum at cov = 0.
    a = np.arange(49.0).reshape(7, 7)
    b = np.zeros(49)
    b[[0, 48]] = 1.0  # symmetric positions: cov with the linear ramp a is exactly zero
    b = b.reshape(7, 7) + 0.5
    mu_a, mu_b, var_a, var_b, cov = _moments(a, b)
    assert abs(cov) < 1e-12
    c1, c2 = theory.ssim_constants(48.0)
    expected = structural_similarity(a, b, win_size=7, data_range=48.0, use_sample_covariance=False)
    assert theory.ssim_min_nonnegative_cov(mu_a, mu_b, var_a, var_b, c1=c1, c2=c2) == pytest.approx(expected)


def test_constants_against_skimage_defaults():
    # scikit-image's defaults K1 = 0.01, K2 = 0.03: the constant-image SSIM of two different constants
    # isolates C1 (the contrast-structure term is c2/c2 = 1).
    a, b = np.full((7, 7), 0.2), np.full((7, 7), 0.7)
    c1, c2 = theory.ssim_constants(1.0)
    assert (c1, c2) == pytest.approx((1e-4, 9e-4))
    luminance = (2 * 0.2 * 0.7 + c1) / (0.2**2 + 0.7**2 + c1)
    assert structural_similarity(a, b, win_size=7, data_range=1.0) == pytest.approx(luminance, rel=1e-12)


@pytest.mark.parametrize(
    ("mu_a", "mu_b", "var_a", "var_b"), [(0.3, 0.1, 0.5, 2.0), (-1.0, 2.0, 0.1, 0.1), (0.0, 0.0, 3.0, 0.2)]
)
def test_minimum_against_numerical_minimisation_over_cov(mu_a, mu_b, var_a, var_b):
    c1, c2 = theory.ssim_constants(2.0)
    top = np.sqrt(var_a * var_b)
    result = optimize.minimize_scalar(
        lambda cov: abs(theory.ssim_from_moments(mu_a, mu_b, var_a, var_b, cov, c1=c1, c2=c2)),
        bounds=(0.0, top),
        method="bounded",
        options={"xatol": 1e-12},
    )
    got = theory.ssim_min_nonnegative_cov(mu_a, mu_b, var_a, var_b, c1=c1, c2=c2)
    assert got == pytest.approx(result.fun, rel=1e-6)
    assert result.x == pytest.approx(0.0, abs=1e-6)


@PROPERTY
@given(means, means, variances, variances, fractions, ranges)
def test_every_nonnegative_cov_scores_at_least_the_minimum_and_min_below_noise_bound(
    mu_a, mu_b, var_a, var_b, t, data_range
):
    c1, c2 = theory.ssim_constants(data_range)
    cov = t * np.sqrt(var_a * var_b)
    score = theory.ssim_from_moments(mu_a, mu_b, var_a, var_b, cov, c1=c1, c2=c2)
    minimum = theory.ssim_min_nonnegative_cov(mu_a, mu_b, var_a, var_b, c1=c1, c2=c2)
    bound = theory.ssim_noise_bound(var_a, var_b, c2=c2)
    assert abs(score) >= minimum * (1 - 1e-12)
    assert minimum <= bound * (1 + 1e-12)
    assert abs(theory.ssim_from_moments(mu_a, mu_b, var_a, var_b, 0.0, c1=c1, c2=c2)) == pytest.approx(
        minimum
    )


def test_broadcasting_over_arrays():
    c1, c2 = theory.ssim_constants(1.0)
    var_b = np.array([[0.1], [1.0], [10.0]])
    got = theory.ssim_noise_bound(np.array([0.0, 1.0]), var_b, c2=c2)
    assert got.shape == (3, 2)
    assert got[2, 1] == pytest.approx(c2 / (11.0 + c2))
    minimum = theory.ssim_min_nonnegative_cov(0.5, np.array([0.5, 1.0]), 1.0, var_b, c1=c1, c2=c2)
    assert minimum.shape == (3, 2)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.ssim_from_moments(0, 0, -1, 1, 0, c1=1e-4, c2=9e-4), "var_a"),
        (lambda: theory.ssim_from_moments(0, 0, 1, 1, 2, c1=1e-4, c2=9e-4), "cov_ab"),
        (lambda: theory.ssim_from_moments(np.nan, 0, 1, 1, 0, c1=1e-4, c2=9e-4), "mu_a"),
        (lambda: theory.ssim_from_moments(0, np.inf, 1, 1, 0, c1=1e-4, c2=9e-4), "mu_b"),
        (lambda: theory.ssim_from_moments(0, 0, 1, 1, 0, c1=0.0, c2=9e-4), "c1"),
        (lambda: theory.ssim_min_nonnegative_cov(0, 0, 1, [1, -2], c1=1e-4, c2=9e-4), "var_b"),
        (lambda: theory.ssim_min_nonnegative_cov(np.zeros(2), np.zeros(3), 1, 1, c1=1e-4, c2=9e-4), "mu_a"),
        (lambda: theory.ssim_noise_bound(1, 1, c2=-1), "c2"),
        (lambda: theory.ssim_constants(0.0), "data_range"),
        (lambda: theory.ssim_constants(1.0, k1="a"), "k1"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_cov_computed_as_the_root_of_a_subnormal_product_is_accepted():
    # hypothesis seed 13: sqrt(1.5 * 5e-324) rounds the product up to 1e-323, 15% above sqrt(1.5) sqrt(5e-324)
    c1, c2 = theory.ssim_constants(1.0)
    cov = np.sqrt(1.5 * 5e-324)
    assert cov > np.sqrt(1.5) * np.sqrt(5e-324) * 1.1
    assert np.isfinite(theory.ssim_from_moments(0.0, 0.0, 1.5, 5e-324, cov, c1=c1, c2=c2))
    with pytest.raises(ValueError, match="Cauchy-Schwarz"):
        theory.ssim_from_moments(0.0, 0.0, 1.5, 5e-324, 2 * cov, c1=c1, c2=c2)
