"""Theorem 4 and eq. 12-19 against direct averages over finite populations, plus hypothesis bounds."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import theory

# No deadline and no too_slow health check: CI shares 2 cores, timing says nothing about correctness.
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
means = st.floats(-30, 30)
variances = st.floats(0, 30)
fractions = st.floats(0, 1)

# Two finite populations (equally likely pixels): every expectation is an exact average over them.
MAP_A = np.array([0.5, -1.0, 2.0, 3.5, 0.0, 1.25, -0.75, 4.0])
MAP_B = np.array([1.0, 0.5, -2.0, 2.5, 0.25, 3.0, 1.5, -0.5])


def _moments(a, b):
    return a.mean(), b.mean(), a.var(), b.var(), np.mean((a - a.mean()) * (b - b.mean()))


@pytest.mark.parametrize("b", [MAP_B, 0.3 * MAP_A + MAP_B, -MAP_A + 0.1])
def test_normalized_mse_against_average_over_population(b):
    a = MAP_A
    direct = np.mean((a / np.sqrt(np.mean(a**2)) - b / np.sqrt(np.mean(b**2))) ** 2)
    assert theory.normalized_mse_from_moments(*_moments(a, b)) == pytest.approx(direct, rel=1e-12)
    assert theory.normalized_mse(np.mean(a**2), np.mean(b**2), np.mean(a * b)) == pytest.approx(
        direct, rel=1e-12
    )
    normalised = np.mean((theory.normalize_second_moment(a) - theory.normalize_second_moment(b)) ** 2)
    assert normalised == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize("b", [MAP_B, 2 * MAP_A - 1, MAP_A])
def test_unnormalized_mse_against_average_over_population(b):
    direct = np.mean((MAP_A - b) ** 2)
    assert theory.mse_from_moments(*_moments(MAP_A, b)) == pytest.approx(direct, rel=1e-12, abs=1e-12)


def test_max_is_attained_by_a_zero_covariance_pair():
    # b is built orthogonal to a - mean(a), so the sample covariance is 0 and eq. 15 holds with equality.
    a = MAP_A
    centred = a - a.mean()
    b = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 1.0, 2.0, 1.0])
    b = b - centred * np.dot(centred, b - b.mean()) / np.dot(centred, centred)
    mu_a, mu_b, _, _, cov = _moments(a, b)
    assert abs(cov) < 1e-12
    direct = np.mean((a / np.sqrt(np.mean(a**2)) - b / np.sqrt(np.mean(b**2))) ** 2)
    assert theory.normalized_mse_max(mu_a, mu_b, np.mean(a**2), np.mean(b**2)) == pytest.approx(direct)


def test_zero_mean_processes_have_max_two():
    assert theory.normalized_mse_max(0.0, 0.0, 1.0, 5.0) == 2.0
    assert theory.normalized_mse_max(0.0, 3.0, 1.0, 10.0) == 2.0


@PROPERTY
@given(means, means, variances, variances, fractions)
def test_nonnegative_cov_never_exceeds_eq15_and_eq19(mu_a, mu_b, var_a, var_b, t):
    cov = t * np.sqrt(var_a * var_b)
    mse = theory.mse_from_moments(mu_a, mu_b, var_a, var_b, cov)
    bound = theory.mse_bound(mu_a, mu_b, var_a, var_b)
    assert mse <= bound + 1e-12 * (1 + bound)
    if var_a + mu_a**2 > 1e-6 and var_b + mu_b**2 > 1e-6:
        m2a, m2b = var_a + mu_a**2, var_b + mu_b**2
        normalised = theory.normalized_mse_from_moments(mu_a, mu_b, var_a, var_b, cov)
        assert normalised <= theory.normalized_mse_max(mu_a, mu_b, m2a, m2b) + 1e-9
        assert -1e-9 <= normalised <= 4 + 1e-9


@PROPERTY
@given(variances, variances, means)
def test_unnormalized_bound_grows_with_variance_normalised_max_does_not(var_a, var_b, mu):
    # eq. 19 grows without limit in the variances; eq. 15 stays within [0, 4].
    assert theory.mse_bound(mu, mu, var_a + 1, var_b) == pytest.approx(
        theory.mse_bound(mu, mu, var_a, var_b) + 1
    )
    if var_a > 0 and var_b > 0:
        assert 0 <= theory.normalized_mse_max(mu, mu, var_a + mu**2, var_b + mu**2) <= 4


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.normalized_mse(0.0, 1.0, 0.0), "second_moment_a"),
        (lambda: theory.normalized_mse(1.0, 1.0, 2.0), "cross_moment"),
        (lambda: theory.normalized_mse(1.0, np.nan, 0.0), "second_moment_b"),
        (lambda: theory.normalized_mse_max(2.0, 0.0, 1.0, 1.0), "second_moment_a"),
        (lambda: theory.normalized_mse_max([1, 2], [1, 2, 3], 9.0, 9.0), "mu_a"),
        (lambda: theory.normalized_mse_from_moments(0.0, 1.0, 0.0, 1.0, 0.0), "var_a"),
        (lambda: theory.normalized_mse_from_moments(0.0, 1.0, 1.0, 1.0, -3.0), "cov_ab"),
        (lambda: theory.mse_from_moments(0.0, 0.0, 1.0, -1.0, 0.0), "var_b"),
        (lambda: theory.mse_bound(np.inf, 0.0, 1.0, 1.0), "mu_a"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
