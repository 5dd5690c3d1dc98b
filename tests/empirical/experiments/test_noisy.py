"""empirical.experiments.noisy: the noise has variance s^2 mean(A^2) (Monte Carlo at 4 se), s = 0 is the clean
map, the noise of an image does not depend on its batch, and the variants register like any method."""

import math

import pytest
import torch
from torch import nn

from empirical import attribution
from empirical.experiments import noisy as nm

K_SE = 4.0  # false-failure rate 6e-5 for a normal estimate; fixed seeds make the test reproducible


def _model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 5)]
        return nn.Sequential(*layers).eval()


def _inputs(n=6):
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def _gradient_sum(model, x, target):
    return attribution.attribute(model, x, target, "gradient-x-input")


def test_noise_variance_is_s_squared_mean_square_within_monte_carlo_tolerance():
    model, x = _model(), _inputs(40)
    target = torch.zeros(40, dtype=torch.long)
    clean = _gradient_sum(model, x, target)
    noisy = nm.NoisyMethod(_gradient_sum, 0.5, seed=3)(model, x, target)
    # per image: mean of 256 squared N(0, 0.25 m) draws over m = mean(A^2); the ratio's mean is 0.25 with
    # standard error sd(ratios)/sqrt(40) (each ratio has sd 0.25 sqrt(2/256) ~ 0.022)
    ratio = (noisy - clean).square().flatten(1).mean(1) / clean.square().flatten(1).mean(1)
    se = ratio.std() / math.sqrt(len(ratio))
    assert abs(float(ratio.mean()) - 0.25) <= K_SE * float(se)
    # the noise is centred and independent of the map: its mean per image is within 4 se of 0
    centred = ((noisy - clean) / clean.square().flatten(1).mean(1).sqrt().view(-1, 1, 1)).flatten(1).mean(1)
    assert abs(float(centred.mean())) <= K_SE * 0.5 / math.sqrt(256 * 40)


def test_level_zero_returns_the_map_unchanged():
    model, x, target = _model(), _inputs(), 2
    clean = attribution.attribute(model, x, target, "gradient")
    assert torch.equal(nm.NoisyMethod("gradient", 0.0)(model, x, target), clean)


def test_same_seed_same_noise_whatever_the_batch_split():
    model, x = _model(), _inputs(6)
    target = torch.arange(6) % 5
    variant = nm.NoisyMethod("gradient-mean", 1.0, seed=11)
    whole = variant(model, x, target)
    parts = torch.cat([variant(model, x[:2], target[:2]),
                       variant(model, x[2:], target[2:], first_image=2)])
    assert torch.allclose(whole, parts, atol=1e-6)  # the clean maps of a batch differ by float rounding only
    shuffled = variant(model, x[[4, 1]], target[[4, 1]], image_indices=[4, 1])
    assert torch.allclose(shuffled, whole[[4, 1]], atol=1e-6)


def test_other_seed_or_stream_gives_other_noise_of_the_same_scale():
    shape, indices = (8, 8), [0, 1]
    base = nm.noise_for_images(shape, indices, seed=0)
    assert not torch.equal(base, nm.noise_for_images(shape, indices, seed=1))
    assert not torch.equal(base, nm.noise_for_images(shape, indices, seed=0, stream=1))
    assert torch.equal(base, nm.noise_for_images(shape, indices, seed=0))
    assert torch.equal(nm.noise_for_images(shape, indices, seed=0, stream=(3, 1)),
                       nm.noise_for_images(shape, indices, seed=0, stream=[3, 1]))
    assert not torch.equal(base[0], base[1])


def test_draw_key_of_the_randomisation_run_sets_first_image_and_stream():
    model, x = _model(), _inputs(2)
    variant = nm.NoisyMethod("gradient", 1.0, seed=4)
    via_key = variant(model, x, 0, draw_key=(9, 5, 2))
    assert torch.equal(via_key, variant(model, x, 0, first_image=5, stream=(9, 2)))
    assert not torch.equal(via_key, variant(model, x, 0, draw_key=(9, 5, 3)))  # another step, other noise


def test_variants_are_named_by_level_and_register_like_any_method(monkeypatch):
    monkeypatch.setattr(attribution, "_REGISTRY", dict(attribution._REGISTRY))
    variants = nm.noisy_variants("gradient")
    assert list(variants) == ["gradient+noise(0)", "gradient+noise(0.25)", "gradient+noise(0.5)",
                              "gradient+noise(1)", "gradient+noise(2)"]
    names = nm.register_noisy_variants("gradient", (0.0, 0.5), seed=2)
    model, x = _model(), _inputs(3)
    got = attribution.attribute(model, x, 1, names[1], first_image=10)
    assert torch.equal(got, nm.NoisyMethod("gradient", 0.5, seed=2)(model, x, 1, first_image=10))
    assert got.shape == (3, 16, 16)
    clean = attribution.attribute(model, x, 1, "gradient")
    assert torch.equal(attribution.attribute(model, x, 1, names[0]), clean)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: nm.NoisyMethod("gradient", -0.5), "level must be a finite number >= 0"),
    (lambda: nm.NoisyMethod("gradient", 0.5, seed=-1), "seed must be a non-negative integer"),
    (lambda: nm.NoisyMethod(3, 0.5), "method must be a callable or a method name"),
    (lambda: nm.noisy_variants("gradient", (0.5, 0.5)), "levels must be distinct"),
    (lambda: nm.NoisyMethod("gradient", 1.0)(_model(), _inputs(2), 0, image_indices=[0]),
     "image_indices must hold one integer index per image"),
])
def test_invalid_arguments_raise_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
