"""Every invalid input raises a ValueError that names the argument: invalid values drawn by hypothesis over
wide ranges, for every argument that has a domain, and shapes that do not broadcast."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import theory

# No deadline and no too_slow health check: CI shares 2 cores, timing says nothing about correctness.
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

nan = st.just(np.nan)
infinite = st.sampled_from([np.inf, -np.inf])
negative = st.floats(-1e300, -1e-300)
non_positive = st.floats(-1e300, 0.0)
outside_unit = st.floats(1.0, 1e300) | st.floats(-1e300, 0.0)
beyond_correlation = st.floats(1.0 + 1e-6, 1e300) | st.floats(-1e300, -1.0 - 1e-6)

C = {"c1": 1e-4, "c2": 9e-4}
MOMENTS = {"mu_a": 0.5, "mu_b": 0.2, "var_a": 1.0, "var_b": 1.0}
CASES = [
    # (function, valid keyword arguments, argument to spoil, strategy of invalid values)
    (theory.ssim_from_moments, {**MOMENTS, "cov_ab": 0.1, **C}, "mu_a", nan | infinite),
    (theory.ssim_from_moments, {**MOMENTS, "cov_ab": 0.1, **C}, "var_a", negative | nan),
    (theory.ssim_from_moments, {**MOMENTS, "cov_ab": 0.1, **C}, "cov_ab", beyond_correlation | nan),
    (theory.ssim_from_moments, {**MOMENTS, "cov_ab": 0.1, **C}, "c1", non_positive | nan),
    (theory.ssim_min_nonnegative_cov, {**MOMENTS, **C}, "var_b", negative | infinite),
    (theory.ssim_min_nonnegative_cov, {**MOMENTS, **C}, "c2", non_positive),
    (theory.ssim_noise_bound, {"var_a": 1.0, "var_b": 1.0, "c2": 1e-3}, "var_a", negative | nan),
    (theory.ssim_constants, {"data_range": 1.0}, "data_range", non_positive | nan),
    (theory.spearman_expected_gaussian, {"rho": 0.5}, "rho", beyond_correlation | nan),
    (theory.spearman_expected_gaussian, {"rho": 0.5, "n": 10}, "n", st.integers(-10**6, 1) | nan),
    (theory.normalized_mse, {"second_moment_a": 1.0, "second_moment_b": 1.0, "cross_moment": 0.1},
     "second_moment_a", non_positive | nan),
    (theory.normalized_mse, {"second_moment_a": 1.0, "second_moment_b": 1.0, "cross_moment": 0.1},
     "cross_moment", beyond_correlation | infinite),
    (theory.normalized_mse_max, {"mu_a": 0.5, "mu_b": 0.5, "second_moment_a": 1.0, "second_moment_b": 1.0},
     "second_moment_b", non_positive | st.floats(1e-3, 0.24)),
    (theory.normalized_mse_from_moments, {**MOMENTS, "cov_ab": 0.1}, "var_b", negative),
    (theory.mse_from_moments, {**MOMENTS, "cov_ab": 0.1}, "cov_ab", beyond_correlation),
    (theory.mse_bound, MOMENTS, "mu_b", nan | infinite),
    (theory.quantile_asymptotic_variance, {"p": 0.5, "n": 10, "dist": stats.norm}, "p", outside_unit | nan),
    (theory.quantile_asymptotic_variance, {"p": 0.5, "n": 10, "dist": stats.norm}, "n", non_positive | nan),
    (theory.quantile_asymptotic_variance, {"p": 0.5, "n": 10, "dist": stats.norm}, "n",
     st.floats(1e-300, 1e6).filter(lambda x: x != round(x))),
    (theory.expected_maximum, {"n": 10, "dist": stats.norm}, "n", st.integers(-10**6, 0)),
    (theory.cauchy_tail, {"k": 1.0, "gamma": 1.0}, "gamma", non_positive | nan | infinite),
    (theory.cauchy_tail, {"k": 1.0, "gamma": 1.0}, "k", nan),
    (theory.cauchy_ratio_density, {"z": 1.0, "gamma": 1.0}, "gamma", non_positive),
    (theory.overtake_bound, {"k": 2.0, "n_small": 10, "n_large": 2}, "k", negative | nan),
    (theory.overtake_bound, {"k": 2.0, "n_small": 10, "n_large": 2}, "n_small", non_positive | nan),
    (theory.overtake_bound_average, {"k": 2.0, "n_small": 10, "n_large": 2}, "n_large", non_positive),
    (theory.overtake_from_quantiles, {"q_low": 0.3, "v_low": 0.1, "q_high": 0.9, "v_high": 1.0}, "q_low",
     outside_unit | nan),
    (theory.overtake_from_quantiles, {"q_low": 0.3, "v_low": 0.1, "q_high": 0.9, "v_high": 1.0}, "q_high",
     outside_unit),
    (theory.overtake_from_quantiles, {"q_low": 0.3, "v_low": 0.1, "q_high": 0.9, "v_high": 1.0}, "v_high",
     nan | infinite),
    (theory.adaptive_beta, {"positive_sum": 1.0, "negative_sum": -0.5}, "positive_sum", negative | nan),
    (theory.adaptive_beta, {"positive_sum": 1.0, "negative_sum": -0.5}, "negative_sum",
     st.floats(1e-300, 1e300) | nan),
    (theory.adaptive_beta, {"positive_sum": 1.0, "negative_sum": -0.5, "beta_max": 3.0}, "beta_max",
     negative | nan),
    (theory.lrp_beta_neuron, {"contributions": [1.0, -1.0], "relevance": 1.0, "beta": 1.0}, "beta",
     negative | nan),
    (theory.lrp_beta_neuron, {"contributions": [1.0, -1.0], "relevance": 1.0, "beta": 1.0}, "relevance",
     nan | infinite),
]  # fmt: skip


@pytest.mark.parametrize(("function", "valid", "argument", "invalid"), CASES,
                         ids=[f"{c[0].__name__}-{c[2]}" for c in CASES])  # fmt: skip
@PROPERTY
@given(data=st.data())
def test_invalid_value_raises_value_error_naming_argument(function, valid, argument, invalid, data):
    bad = data.draw(invalid)
    with pytest.raises(ValueError, match=argument):
        function(**{**valid, argument: bad})
    # The same bad value hidden inside an array is found too.
    with pytest.raises(ValueError, match=argument):
        function(**{**valid, argument: np.array([valid[argument]] * 2 + [bad], dtype=float)})


@pytest.mark.parametrize(("function", "valid"), [c[:2] for c in CASES], ids=[c[0].__name__ for c in CASES])
def test_the_valid_calls_above_succeed(function, valid):
    # Without this the spoiled calls could raise for a reason other than the spoiled argument.
    assert np.all(np.isfinite(function(**valid)))


BROADCAST_CASES = [
    (theory.ssim_noise_bound, {"var_a": 1.0, "var_b": 1.0, "c2": 1e-3}, ("var_a", "var_b")),
    (theory.mse_bound, MOMENTS, ("mu_a", "var_b")),
    (theory.cauchy_tail, {"k": 1.0, "gamma": 1.0}, ("k", "gamma")),
    (theory.overtake_bound, {"k": 2.0, "n_small": 10, "n_large": 2}, ("n_small", "n_large")),
    (theory.adaptive_beta, {"positive_sum": 1.0, "negative_sum": -0.5}, ("positive_sum", "negative_sum")),
    (theory.normalized_mse_max, {"mu_a": 0.0, "mu_b": 0.0, "second_moment_a": 1.0, "second_moment_b": 1.0},
     ("mu_a", "second_moment_b")),
    (theory.quantile_asymptotic_variance, {"p": 0.5, "n": 10, "dist": stats.norm}, ("p", "n")),
    (theory.overtake_from_quantiles, {"q_low": 0.3, "v_low": 0.1, "q_high": 0.9, "v_high": 1.0},
     ("q_low", "q_high")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("function", "valid", "pair"), BROADCAST_CASES, ids=[c[0].__name__ for c in BROADCAST_CASES]
)
@PROPERTY
@given(st.integers(2, 50), st.integers(2, 50))
def test_shapes_that_do_not_broadcast_raise_value_error_naming_both(function, valid, pair, n, m):
    if n == m:
        n += 1
    first, second = pair
    kwargs = {**valid, first: np.full(n, valid[first]), second: np.full(m, valid[second])}
    with pytest.raises(ValueError, match=f"(?s){first}.*{second}"):
        function(**kwargs)
