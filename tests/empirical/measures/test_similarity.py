"""empirical.measures.similarity against scikit-image, scipy.stats and theory (seed Theorems 1, 3, 4)."""

import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

import theory
from empirical.measures import noise_floor as floors
from empirical.measures import similarity

SKIMAGE_WINDOWS = {
    "uniform7": {"win_size": 7, "use_sample_covariance": True},
    "gaussian11": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False},
}


def _smooth_pairs(n=4, size=(23, 31), seed=0):
    """Correlated, smooth-ish float64 map pairs with non-zero means (exercise the luminance term)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, *size)).cumsum(axis=1) + 1.0
    b = 0.6 * a + rng.normal(size=(n, *size)) - 0.5
    return torch.from_numpy(a), torch.from_numpy(b)


def _normalized(x, method):
    x = x.numpy()
    if method == "second-moment":
        return np.stack([theory.normalize_second_moment(m) for m in x])
    if method == "max-abs":
        return np.stack([theory.normalize_max_abs(m) for m in x])
    return x


@pytest.mark.parametrize("window", ["uniform7", "gaussian11"])
@pytest.mark.parametrize("normalize", [None, "second-moment", "max-abs"])
def test_ssim_against_skimage(window, normalize):
    a, b = _smooth_pairs()
    ours = similarity.ssim(a, b, window, normalize=normalize).numpy()
    na, nb = _normalized(a, normalize), _normalized(b, normalize)
    # data_range=None: max - min over both normalised maps of the pair
    expected = [
        structural_similarity(
            x, y, data_range=max(x.max(), y.max()) - min(x.min(), y.min()), **SKIMAGE_WINDOWS[window]
        )
        for x, y in zip(na, nb, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def test_ssim_given_data_range_against_skimage():
    a, b = _smooth_pairs(n=3)
    ranges = torch.tensor([5.0, 10.0, 40.0])
    ours = similarity.ssim(a, b, "uniform7", data_range=ranges).numpy()
    expected = [
        structural_similarity(x.numpy(), y.numpy(), data_range=float(r), win_size=7)
        for x, y, r in zip(a, b, ranges, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    scalar = similarity.ssim(a, b, "uniform7", data_range=10.0).numpy()
    np.testing.assert_allclose(scalar[1], expected[1], rtol=0, atol=1e-6)


def test_ssim_float32_input_close_to_skimage_float64():
    a, b = _smooth_pairs(n=2)
    ours = similarity.ssim(a.float(), b.float(), "gaussian11", data_range=20.0).numpy()
    expected = [
        structural_similarity(x.numpy(), y.numpy(), data_range=20.0, **SKIMAGE_WINDOWS["gaussian11"])
        for x, y in zip(a.float().double(), b.float().double(), strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def test_identical_maps_score_one_and_single_map_is_batch_of_one():
    a, _ = _smooth_pairs(n=1)
    assert similarity.ssim(a[0], a[0]).shape == (1,)
    np.testing.assert_allclose(similarity.ssim(a[0], a[0]).numpy(), [1.0], atol=1e-12)
    np.testing.assert_allclose(similarity.spearman(a[0], a[0]).numpy(), [1.0], atol=1e-12)
    np.testing.assert_allclose(similarity.mse(a[0], a[0]).numpy(), [0.0], atol=1e-12)


@pytest.mark.parametrize("absolute", [False, True])
def test_spearman_against_scipy_with_ties(absolute):
    rng = np.random.default_rng(1)
    # few distinct values (and signs) so that many ties occur, also after abs
    a = rng.integers(-4, 5, size=(5, 12, 9)).astype(np.float64)
    b = (a + rng.integers(-3, 4, size=a.shape)).astype(np.float64)
    ours = similarity.spearman(torch.from_numpy(a), torch.from_numpy(b), absolute=absolute).numpy()
    prep = np.abs if absolute else (lambda v: v)
    expected = [
        scipy.stats.spearmanr(prep(x).ravel(), prep(y).ravel()).statistic for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def _float32_maps_with_ties_and_wide_range(n=3, size=(40, 50), seed=5):
    """float32 maps over 60 decades, with exact ties and runs of adjacent float32 values (one ulp apart),
    which a rounded division can merge into ties."""
    rng = np.random.default_rng(seed)
    magnitude = 10.0 ** rng.uniform(-30, 30, size=(n, *size))
    maps = (rng.choice([-1.0, 1.0], size=magnitude.shape) * magnitude).astype(np.float32)
    flat = maps.reshape(n, -1)
    base = flat[:, :200].copy()
    flat[:, 200:400] = np.nextafter(base, np.float32(np.inf))  # one ulp above the first 200 values
    flat[:, 400:600] = base  # exact ties
    flat[:, 600:700] = np.float32(0.0)
    return maps


@pytest.mark.parametrize("absolute", [False, True])
@pytest.mark.parametrize("normalize", [None, "second-moment", "max-abs"])
def test_spearman_float32_wide_range_against_scipy(normalize, absolute):
    # Spearman ranks the values themselves: no float32 normalisation may turn distinct values into ties.
    a = _float32_maps_with_ties_and_wide_range(seed=5)
    b = _float32_maps_with_ties_and_wide_range(seed=6)
    b[:, :10] = a[:, :10]  # some correlation
    ours = similarity.spearman(torch.from_numpy(a), torch.from_numpy(b), absolute=absolute,
                               normalize=normalize).numpy()
    prep = np.abs if absolute else (lambda v: v)
    expected = [scipy.stats.spearmanr(prep(x.astype(np.float64)).ravel(), prep(y.astype(np.float64)).ravel())
                .statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_average_ranks_against_scipy_rankdata():
    values = torch.tensor([[3.0, 1.0, 3.0, 2.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    expected = scipy.stats.rankdata(values.numpy(), axis=1)
    np.testing.assert_array_equal(similarity._average_ranks(values).numpy(), expected)


@given(st.integers(min_value=2, max_value=40), st.integers(min_value=1, max_value=6), st.integers(0, 2**31))
@settings(max_examples=40, deadline=None)
def test_spearman_property_against_scipy(length, distinct, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, distinct + 1, size=(1, 1, length)).astype(np.float64)
    b = rng.normal(size=(1, 1, length))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic
        ours = similarity.spearman(torch.from_numpy(a), torch.from_numpy(b)).numpy()[0]
    if np.isnan(expected):  # scipy: constant input
        assert np.isnan(ours)
    else:
        assert abs(ours - expected) <= 1e-9


@pytest.mark.parametrize("normalize", [None, "second-moment", "max-abs"])
def test_mse_against_numpy_on_theory_normalisation(normalize):
    a, b = _smooth_pairs()
    na, nb = _normalized(a, normalize), _normalized(b, normalize)
    expected = ((na - nb) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(similarity.mse(a, b, normalize=normalize).numpy(), expected, rtol=1e-12)


def test_constant_map_gives_nan_and_warns_naming_the_pair():
    a, b = _smooth_pairs(n=3)
    b[1] = 0.0
    for measure in (similarity.ssim, similarity.spearman, similarity.mse):
        with pytest.warns(similarity.ConstantMapWarning, match=r"\[1\]"):
            values = measure(a, b, normalize="second-moment").numpy()
        assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_maps_raise_naming_argument(bad):
    a, b = _smooth_pairs(n=2)
    a[1, 3, 4] = bad
    with pytest.raises(ValueError, match=r"a has NaN or infinite values in map\(s\) \[1\]"):
        similarity.ssim(a, b)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, b: similarity.ssim(a, b[:, :5]), "same shape"),
        (lambda a, b: similarity.ssim(a, b, window="box3"), "window"),
        (lambda a, b: similarity.mse(a, b, normalize="l2"), "normalize"),
        (lambda a, b: similarity.ssim(a, b, data_range=-1.0), "data_range"),
        (lambda a, b: similarity.ssim(a[:, :5, :5], b[:, :5, :5]), "at least 7x7"),
        (lambda a, b: similarity.mse(a[0, 0], b[0, 0]), "shape"),
        (lambda a, b: floors.noise_floor(a, b, "pearson", rng=0), "measure"),
        (lambda a, b: floors.noise_floor(a, b, "mse", rng=np.random.default_rng(0)), "rng"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    a, b = _smooth_pairs(n=2)
    with pytest.raises(ValueError, match=message):
        call(a, b)


@pytest.mark.parametrize("normalize", ["second-moment", "max-abs", None])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ssim_noise_floor_closed_form_against_slow_per_window_theory(normalize, dtype):
    from scipy.ndimage import uniform_filter

    a, b = _smooth_pairs(n=2, size=(15, 17))
    floor = floors.noise_floor(a, b, "ssim", rng=0, normalize=normalize)
    device_only = floors.closed_form_floor(a.to(dtype), b.to(dtype), "ssim", normalize=normalize)
    for i in range(2):
        x, y = (m.numpy() for m in (a[i], b[i]))
        if normalize is not None:
            x, y = theory.normalize(x, normalize), theory.normalize(y, normalize)
        data_range = max(x.max(), y.max()) - min(x.min(), y.min())
        c1, c2 = theory.ssim_constants(data_range)
        crop = (slice(3, -3), slice(3, -3))
        mu_x, mu_y = uniform_filter(x, 7)[crop], uniform_filter(y, 7)[crop]
        var_x = (uniform_filter(x * x, 7)[crop] - mu_x**2) * 49 / 48
        var_y = (uniform_filter(y * y, 7)[crop] - mu_y**2) * 49 / 48
        expected = theory.ssim_min_nonnegative_cov(
            mu_x, mu_y, np.maximum(var_x, 0), np.maximum(var_y, 0), c1=c1, c2=c2
        )
        assert abs(float(floor.closed_form[i]) - expected.mean()) <= 1e-10
        rel = 1e-5 if dtype == torch.float32 else 1e-10
        assert float(device_only[i]) == pytest.approx(expected.mean(), rel=rel)


def test_ssim_of_positively_covarying_pairs_is_above_closed_form_floor():
    a, _ = _smooth_pairs(n=3)
    b = 2.0 * a + 1.0  # local covariance 2 var_a >= 0 in every window
    floor = floors.noise_floor(a, b, "ssim", rng=0)
    assert (similarity.ssim(a, b) >= floor.closed_form).all()


@pytest.mark.parametrize(
    ("measure", "normalize"),
    [("mse", "second-moment"), ("mse", None), ("spearman", None), ("spearman-abs", "max-abs")],
)
def test_drawn_noise_floor_mean_against_closed_form(measure, normalize):
    # 200 shuffles of one pair: |mean - closed form| <= 4 se (two-sided normal false-failure rate 6e-5)
    a, b = _smooth_pairs(n=1, size=(12, 14))
    a, b = a.expand(200, -1, -1), b.expand(200, -1, -1)
    floor = floors.noise_floor(a, b, measure, rng=torch.Generator().manual_seed(7), normalize=normalize)
    drawn = floor.drawn.numpy()
    se = drawn.std(ddof=1) / np.sqrt(len(drawn))
    assert abs(drawn.mean() - float(floor.closed_form[0])) <= 4 * se
    assert np.ptp(floor.closed_form.numpy()) == 0


def test_mse_closed_floor_second_moment_equals_mse_bound_on_normalised_maps():
    a, b = _smooth_pairs(n=3)
    by_normalized_max = floors.noise_floor(a, b, "mse", rng=0, normalize="second-moment").closed_form
    na, nb = _normalized(a, "second-moment"), _normalized(b, "second-moment")
    bound = theory.mse_bound(na.mean((1, 2)), nb.mean((1, 2)), na.var((1, 2)), nb.var((1, 2)))
    np.testing.assert_allclose(by_normalized_max.numpy(), bound, rtol=1e-12)


def test_noise_floor_is_seeded_and_marks_constant_pairs():
    a, b = _smooth_pairs(n=2)
    first = floors.noise_floor(a, b, "ssim", rng=3).drawn
    again = floors.noise_floor(a, b, "ssim", rng=torch.Generator().manual_seed(3)).drawn
    other = floors.noise_floor(a, b, "ssim", rng=4).drawn
    assert torch.equal(first, again) and not torch.equal(first, other)
    b[0] = 1.0
    with pytest.warns(similarity.ConstantMapWarning):
        floor = floors.noise_floor(a, b, "mse", rng=0)
    assert (
        torch.isnan(floor.closed_form[0]) and torch.isnan(floor.drawn[0]) and torch.isfinite(floor.drawn[1])
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    a, b = _smooth_pairs()
    for measure in (similarity.ssim, similarity.spearman, similarity.mse):
        np.testing.assert_allclose(
            measure(a.cuda(), b.cuda()).cpu().numpy(), measure(a, b).numpy(), atol=1e-10
        )


@given(
    st.integers(min_value=11, max_value=24),
    st.integers(min_value=11, max_value=24),
    st.sampled_from(["uniform7", "gaussian11"]),
    st.integers(0, 2**31),
)
@settings(max_examples=25, deadline=None)
def test_ssim_property_against_skimage_any_size(height, width, window, seed):
    rng = np.random.default_rng(seed)
    a = rng.gamma(1.0, size=(1, height, width))
    b = a * rng.uniform(-1, 2) + rng.normal(scale=rng.uniform(0.01, 3), size=a.shape)
    ours = similarity.ssim(torch.from_numpy(a), torch.from_numpy(b), window).numpy()[0]
    data_range = max(a.max(), b.max()) - min(a.min(), b.min())
    expected = structural_similarity(a[0], b[0], data_range=data_range, **SKIMAGE_WINDOWS[window])
    assert abs(ours - expected) <= 1e-6
