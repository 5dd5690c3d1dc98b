"""Eq. 11 and section D.1 normalisations against per-slice loops and their defining properties."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import theory

# No deadline and no too_slow health check: CI shares 2 cores, timing says nothing about correctness.
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
maps = hnp.arrays(
    float, hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=6), elements=st.floats(-1e3, 1e3)
).filter(lambda a: np.abs(a).max() > 1e-3)

MAPS = np.arange(24.0).reshape(2, 3, 4) - 7.5


def _loop(a, scale_of):
    """Normalise each map a[i] on its own with a scale computed by a plain loop over its pixels."""
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        pixels = [float(p) for p in a[i].ravel()]
        out[i] = a[i] / scale_of(pixels)
    return out


@pytest.mark.parametrize(
    ("method", "scale_of"),
    [
        ("second-moment", lambda p: (sum(x * x for x in p) / len(p)) ** 0.5),
        ("max-abs", lambda p: max(abs(x) for x in p)),
        ("std", lambda p: (sum((x - sum(p) / len(p)) ** 2 for x in p) / len(p)) ** 0.5),
        ("percentile", lambda p: _percentile_99(sorted(abs(x) for x in p))),
    ],
)
def test_per_map_normalisation_against_loop(method, scale_of):
    got = theory.normalize(MAPS, method, axis=(1, 2))
    assert got == pytest.approx(_loop(MAPS, scale_of), rel=1e-12)


def _percentile_99(values):
    # numpy's default "linear" percentile: position (n - 1) q / 100 between order statistics.
    pos = (len(values) - 1) * 0.99
    lo = int(pos)
    return values[lo] + (pos - lo) * (values[min(lo + 1, len(values) - 1)] - values[lo])


@PROPERTY
@given(maps)
def test_defining_properties_hold(a):
    assert np.mean(theory.normalize_second_moment(a) ** 2) == pytest.approx(1.0)
    assert np.max(np.abs(theory.normalize_max_abs(a))) == pytest.approx(1.0)
    if np.std(a) > 1e-3:
        assert np.std(theory.normalize_std(a)) == pytest.approx(1.0)
    assert np.percentile(np.abs(theory.normalize_percentile(a, q=100.0)), 100.0) == pytest.approx(1.0)


def _percentile_defined(a):
    """Whether a / percentile_99(|a|) is defined and finite: the percentile is positive (a sparse map has
    percentile 0) and max|a| / percentile does not overflow."""
    scale = np.percentile(np.abs(a), 99.0)
    with np.errstate(over="ignore"):
        return bool(scale > 0 and np.isfinite(np.max(np.abs(a)) / scale))


@PROPERTY
@given(maps, st.floats(1e-3, 1e3))
def test_scale_invariance(a, scale):
    for method in theory.NORMALIZATIONS:
        if method == "std" and np.std(a) <= 1e-3:
            continue
        if method == "percentile" and not (_percentile_defined(a) and _percentile_defined(scale * a)):
            # outside the domain (a division by 0, or an overflowing quotient): refused, never scaled
            for undefined in (m for m in (a, scale * a) if not _percentile_defined(m)):
                with pytest.raises(ValueError, match="percentile of"):
                    theory.normalize(undefined, method)
            continue
        assert theory.normalize(scale * a, method) == pytest.approx(
            theory.normalize(a, method), rel=1e-9, abs=1e-12
        )


def test_sparse_map_has_no_percentile_normalisation():
    # The case hypothesis found: one non-zero pixel among 216. |a| has a 99th percentile of 0 (numpy's
    # linear rule interpolates between the 213th and 214th order statistics, both 0): undefined, said so.
    a = np.zeros((6, 6, 6))
    a[0, 0, 0] = 5.0
    with pytest.raises(ValueError, match="sparse"):
        theory.normalize_percentile(a)
    assert theory.normalize_percentile(a, q=100.0) == pytest.approx(a / 5.0)
    # one more percentile point: among 4 pixels the 99th percentile interpolates towards the non-zero one
    assert theory.normalize_percentile([0.0, 0.0, 0.0, 2.0]) == pytest.approx(np.array([0, 0, 0, 2]) / 1.94)


def test_subnormal_percentile_that_overflows_the_quotient_is_refused():
    a = np.zeros(300)
    a[-4:] = [1e-320, 1e-320, 1e-320, 1.0]
    with pytest.raises(ValueError, match="overflows"):
        theory.normalize_percentile(a)


def test_second_moment_differs_from_std_when_mean_is_not_zero():
    # The seed's argument for eq. 11: 0 means "no contribution", so the mean is not removed.
    a = np.array([1.0, 2.0, 3.0])
    assert theory.normalize_second_moment(a) == pytest.approx(a / np.sqrt(14 / 3))
    assert theory.normalize_std(a) == pytest.approx(a / np.sqrt(2 / 3))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.normalize_second_moment(np.zeros((3, 3))), "second moment"),
        (lambda: theory.normalize_max_abs(np.array([1.0, np.nan])), "a must"),
        (lambda: theory.normalize_std(np.ones(4)), "standard deviation"),
        (lambda: theory.normalize_percentile(np.ones(4), q=0.0), "q must"),
        (lambda: theory.normalize_percentile(np.ones(4), q=101.0), "q must"),
        (lambda: theory.normalize(np.ones(4), "l2"), "method"),
        (lambda: theory.normalize(np.ones((2, 2)), "max-abs", axis=2), "axis"),
        (lambda: theory.normalize_second_moment(np.array([])), "a must"),
        (lambda: theory.normalize_second_moment(np.array([1.0, np.inf])), "a must"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
