"""empirical.measures.mprt_variants against slow reimplementations written from Hedström et al. 2023's
definitions (one image at a time, numpy and scipy), so that sMPRT and eMPRT are checked without Quantus too
(test_mprt_variants.py compares with Quantus 0.6.0 where it is installed).

sMPRT: each image's map averaged over samples - 1 noisy copies x_i + sd_i eps (sd_i = noise_magnitude times
the image's max - min; the eps drawn in the same order from the same generator) and x_i itself, divided by
its own root mean square, made absolute, and compared by scipy.stats.spearmanr with the original model's.
eMPRT: numpy.histogram (100 equal-width bins) and scipy.stats.entropy of each map, (H' - H) / H.
Tolerance 1e-10: the same float64 operations in another order; a flipped rank would show as ~1e-5.
"""

import copy

import numpy as np
import pytest
import torch
from scipy import stats

from empirical.experiments.randomization import randomised_copy
from empirical.measures import mprt_variants as mv

TOLERANCE = 1e-10


def _states(model, seed):
    """Every state of the default bottom-up cascade, each its own copy (the reference keeps them all)."""
    return [(name, copy.deepcopy(state)) for name, state in
            mv.cascading_randomisation(model, mv.bottom_up_schedule(model), seed=seed)]


def _slow_smoothed(model, x, y, gradient, samples, magnitude, noises):
    """One image at a time: the mean map over the noisy copies and the clean input, RMS-normalised, |.|."""
    maps = []
    for i in range(len(x)):
        sd = magnitude * float(x[i].max() - x[i].min())
        inputs = [x[i] + sd * noise[i] for noise in noises] + [x[i]]
        total = sum(gradient(model, xi[None], y[i:i + 1])[0].numpy() for xi in inputs) / samples
        maps.append(np.abs(total / np.sqrt(np.mean(total ** 2))))
    return maps


def _slow_smooth_mprt(model, states, x, y, gradient, *, samples, magnitude, seed):
    generator = torch.Generator().manual_seed(seed)

    def draws():
        return [torch.randn(x.shape, generator=generator, dtype=x.dtype) for _ in range(samples - 1)]

    smoothed = lambda m: _slow_smoothed(model=m, x=x, y=y, gradient=gradient, samples=samples,  # noqa: E731
                                        magnitude=magnitude, noises=draws())
    reference = smoothed(model)
    again = smoothed(model)
    spearman = lambda a, b: [stats.spearmanr(p.ravel(), q.ravel())[0] for p, q in zip(a, b, strict=True)]  # noqa: E731
    return spearman(reference, again), [spearman(reference, smoothed(state)) for _, state in states]


@pytest.mark.parametrize("samples", [1, 4])
def test_smooth_mprt_against_a_slow_reference_from_the_paper(mprt_parts, samples):
    model, (x, y) = mprt_parts.model(), mprt_parts.data(3)
    states = _states(model, seed=5)
    original, scores = _slow_smooth_mprt(model, states, x, y, mprt_parts.gradient, samples=samples,
                                         magnitude=0.1, seed=9)
    ours = mv.smooth_mprt(model, x, y, mprt_parts.gradient, seed=5, samples=samples,
                          rng=torch.Generator().manual_seed(9), pass_size=5)
    assert ours.layers == [name for name, _ in states]
    np.testing.assert_allclose(ours.original.numpy(), original, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(ours.scores.numpy(), np.array(scores), atol=TOLERANCE, rtol=0)


def test_efficient_mprt_against_a_slow_reference_from_the_paper(mprt_parts):
    model, (x, y) = mprt_parts.model(), mprt_parts.data(3)
    *_, (name, last) = _states(model, seed=5)

    def entropies(m):
        return np.array([stats.entropy(np.histogram(mprt_parts.gradient(m, x[i:i + 1], y[i:i + 1])[0].numpy(),
                                                    bins=100)[0]) for i in range(len(x))])

    original, randomised = entropies(model), entropies(last)
    ours = mv.efficient_mprt(model, x, y, mprt_parts.gradient, seed=5)
    assert ours.layer == name
    np.testing.assert_allclose(ours.entropy_original.numpy(), original, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(ours.score.numpy(), (randomised - original) / original, atol=TOLERANCE, rtol=0)


def test_discrete_entropy_against_numpy_histogram_and_scipy():
    gen = np.random.default_rng(0)
    maps = np.stack([gen.standard_normal((16, 16)), gen.integers(0, 7, (16, 16)).astype(float),
                     np.full((16, 16), 3.0), np.linspace(0, 1, 256).reshape(16, 16) ** 3])
    for bins in (10, 100):
        ours = mv.discrete_entropy(torch.from_numpy(maps), bins).numpy()
        expected = [stats.entropy(np.histogram(m, bins=bins)[0]) for m in maps]
        assert np.allclose(ours, expected, atol=1e-12, rtol=0)


def test_smooth_explanation_does_not_depend_on_pass_size(mprt_parts):
    model, (x, y) = mprt_parts.model(), mprt_parts.data(3)
    runs = [mv.smooth_explanation(model, x, y, mprt_parts.gradient, samples=6, pass_size=size,
                                  generator=torch.Generator().manual_seed(2)) for size in (3, 7, 100)]
    assert torch.allclose(runs[0], runs[1], atol=1e-12) and torch.allclose(runs[0], runs[2], atol=1e-12)


def test_cascading_randomisation_ends_at_randomised_copy(mprt_parts):
    model = mprt_parts.model()
    schedule = mv.bottom_up_schedule(model)
    assert schedule == [["1.0"], ["1.2"], ["1.5"]]
    *_, (name, last) = mv.cascading_randomisation(model, schedule, seed=3)
    reference = randomised_copy(model, schedule, len(schedule), seed=3)
    assert name == "1.5"
    for key, value in reference.state_dict().items():
        assert torch.equal(last.state_dict()[key], value), key


def test_default_randomisation_is_deterministic_and_leaves_the_model(mprt_parts):
    model, (x, y) = mprt_parts.model(), mprt_parts.data(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = mv.efficient_mprt(model, x, y, mprt_parts.gradient, seed=1)
    second = mv.efficient_mprt(model, x, y, mprt_parts.gradient, seed=1)
    assert torch.equal(first.score, second.score) and first.layer == "1.5"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    result = mv.smooth_mprt(model, x, y, mprt_parts.gradient, samples=3, rng=0, layerwise=False,
                            similarity="mse")
    assert result.layers == ["1.5"] and result.scores.shape == (1, 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"randomisation": "sideways"}, "randomisation must be"),
    ({"similarity": "cosine"}, "similarity must be one of"),
    ({"normalise": "l2"}, "normalise must be one of"),
    ({"samples": 0}, "samples must be a positive integer"),
])
def test_invalid_arguments_raise_naming_them(kwargs, message, mprt_parts):
    model, (x, y) = mprt_parts.model(), mprt_parts.data(2)
    with pytest.raises(ValueError, match=message):
        mv.smooth_mprt(model, x, y, mprt_parts.gradient, rng=0, **kwargs)
