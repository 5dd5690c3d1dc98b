"""empirical.attribution's public surface: registry, targets, errors, shapes, leaving the model untouched."""

from __future__ import annotations

import pytest
import scipy.stats
import torch

from empirical import attribution
from empirical.attribution import (
    BUILTIN_METHODS,
    attribute,
    available_methods,
    reduce_channels,
    register_method,
)

BUILTIN = ("gradient", "gradient-mean", "gradient-x-input", "integrated-gradients", "guided-backprop",
           "lrp-epsilon", "lrp-alpha2beta1", "lrp-alpha1beta0", "lrp-adaptive-beta", "epsilon-plus-flat",
           "epsilon-gamma-box", "random-uniform")
FAST_OPTIONS = {"integrated-gradients": {"steps": 4}}


def test_builtin_methods_are_available():
    assert set(BUILTIN) == set(BUILTIN_METHODS) and set(BUILTIN) <= set(available_methods())


@pytest.mark.parametrize("method", BUILTIN)
def test_every_method_on_demo_gives_finite_maps_and_leaves_model_untouched(demo_model, demo_batch, method,
                                                                          helpers):
    before = helpers.snapshot(demo_model)
    with torch.no_grad():
        reference = demo_model(demo_batch)
    options = dict(FAST_OPTIONS.get(method, {}))
    if method == "random-uniform":
        options["rng"] = torch.Generator().manual_seed(0)
    reduced = attribute(demo_model, demo_batch, torch.tensor([0, 3, 9]), method, **options)
    assert reduced.shape == (3, 32, 32) and torch.isfinite(reduced).all()
    assert reduced.abs().sum() > 0
    if method == "random-uniform":
        options["rng"] = torch.Generator().manual_seed(0)
    raw = attribute(demo_model, demo_batch, torch.tensor([0, 3, 9]), method, raw=True, **options)
    assert raw.shape == demo_batch.shape
    helpers.assert_untouched(demo_model, before, demo_batch, reference)


def test_int_target_means_the_same_class_for_every_image(demo_model, demo_batch):
    by_int = attribute(demo_model, demo_batch, 4, "gradient-x-input")
    by_tensor = attribute(demo_model, demo_batch, torch.full((3,), 4), "gradient-x-input")
    torch.testing.assert_close(by_int, by_tensor)


def test_batched_equals_one_image_at_a_time(demo_model, demo_batch):
    # float64: the adaptive beta jumps from 0 to beta_max where P + N crosses 0, so float32 rounding
    # differences between batched and single convolutions moved a few pixels by 1e-3 of the maximum
    demo_model, demo_batch = demo_model.double(), demo_batch.double()
    target = torch.tensor([2, 5, 8])
    for method in ("lrp-adaptive-beta", "epsilon-gamma-box", "guided-backprop"):
        batched = attribute(demo_model, demo_batch, target, method)
        single = torch.cat([attribute(demo_model, demo_batch[i:i + 1], target[i:i + 1], method)
                            for i in range(3)])
        torch.testing.assert_close(batched, single, rtol=1e-9, atol=1e-12, msg=method)


def test_random_uniform_is_torch_rand_of_its_generator_and_uninformative(demo_model, demo_batch, helpers):
    def draw(seed, model=demo_model, target=0):
        return attribute(model, demo_batch, target, "random-uniform", rng=torch.Generator().manual_seed(seed))

    # oracle: torch.rand from the same seed, one value per pixel, the same on every channel of the raw map
    n, channels, height, width = demo_batch.shape
    expected = torch.rand((n, height, width), generator=torch.Generator().manual_seed(3),
                          dtype=demo_batch.dtype)
    assert torch.equal(draw(3), expected)
    raw = attribute(demo_model, demo_batch, 0, "random-uniform", raw=True,
                    rng=torch.Generator().manual_seed(3))
    assert torch.equal(raw, expected[:, None].expand(n, channels, height, width))
    assert not torch.equal(draw(3), draw(4))
    # it carries no information: neither the target nor the network changes a value
    other_network = helpers.seeded_model("demo", 5)
    assert torch.equal(draw(3, target=7), draw(3)) and torch.equal(draw(3, model=other_network), draw(3))
    # and its values are uniform on [0, 1): Kolmogorov-Smirnov over 3 x 32 x 32 values (fixed seed)
    assert scipy.stats.kstest(draw(3).flatten().numpy(), "uniform").pvalue > 1e-3
    with pytest.raises(ValueError, match="rng must be a torch.Generator"):
        attribute(demo_model, demo_batch, 0, "random-uniform", rng=3)


def test_unknown_method_lists_the_known_ones(demo_model, demo_batch):
    with pytest.raises(ValueError, match="unknown attribution method 'smoothgrad'.*lrp-adaptive-beta"):
        attribute(demo_model, demo_batch, 0, "smoothgrad")


def test_bad_inputs_are_named(demo_model, demo_batch):
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        attribute(demo_model, demo_batch, torch.tensor([1, 2]), "gradient")
    with pytest.raises(ValueError, match="target must be an int or an integer tensor"):
        attribute(demo_model, demo_batch, 1.5, "gradient")
    with pytest.raises(ValueError, match=r"x must be a tensor \(N, C, H, W\)"):
        attribute(demo_model, demo_batch[0], 1, "gradient")
    with pytest.raises(ValueError, match="takes no options"):
        attribute(demo_model, demo_batch, 1, "gradient", steps=3)
    with pytest.raises(ValueError, match="output_relevance"):
        attribute(demo_model, demo_batch, 1, "lrp-epsilon", output_relevance="two")
    with pytest.raises(ValueError, match=r"target classes must lie in \[0, 9\], got 0\.\.10"):
        attribute(demo_model, demo_batch, torch.tensor([0, 10, 2]), "lrp-epsilon")
    with pytest.raises(ValueError, match="target classes"):
        attribute(demo_model, demo_batch, -1, "gradient")
    with pytest.raises(ValueError, match="x is on meta but the model is on cpu"):
        attribute(demo_model, demo_batch.to("meta"), 0, "gradient")
    demo_model.train()
    with pytest.raises(ValueError, match="training mode"):
        attribute(demo_model, demo_batch, 1, "gradient")


def test_registered_callable_is_used_with_its_reduction(demo_model, demo_batch, monkeypatch):
    # a private copy of the registry, so the test method does not outlive this test
    monkeypatch.setattr(attribution, "_REGISTRY", dict(attribution._REGISTRY))

    def doubled_input(model, x, target):
        return 2 * x

    register_method("test-doubled-input", doubled_input, reduction="mean", replace=True)
    assert "test-doubled-input" in available_methods()
    got = attribute(demo_model, demo_batch, 0, "test-doubled-input")
    torch.testing.assert_close(got, 2 * demo_batch.mean(1))
    with pytest.raises(ValueError, match="already registered"):
        register_method("test-doubled-input", doubled_input)
    with pytest.raises(ValueError, match="must be callable"):
        register_method("test-broken", 3)
    with pytest.raises(ValueError, match="reduction must be one of"):
        register_method("test-broken", doubled_input, reduction="max")


def test_reduce_channels_against_hand_computation():
    raw = torch.tensor([[[[3.0]], [[4.0]]]])
    assert reduce_channels(raw, "l2").item() == pytest.approx(5.0)
    assert reduce_channels(raw, "sum").item() == 7.0 and reduce_channels(raw, "mean").item() == 3.5
