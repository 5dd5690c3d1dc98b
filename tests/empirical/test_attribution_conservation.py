"""Issue 11: bias-free LRP conserves the explained logit on all four networks (random weights, batch-norms
far from the identity, classifier scaled to logits near 30), and the DenseNet-121 folding is exact."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from empirical.attribution import attribute, canonizers_for
from empirical.attribution.conservation import calibrated_random_model, relevance_ratios
from empirical.attribution.densenet_canonizer import BatchNormFoldedConv2d, DenseNetCanonizer, ThresholdReLU

NETWORKS = ("demo", "resnet50", "densenet121", "efficientnet-b0")
ALPHA_BETA = (("lrp-alpha1beta0", {}), ("lrp-alpha2beta1", {}),
              ("lrp-adaptive-beta", {"beta_from": "inputs"}), ("lrp-adaptive-beta", {"beta_from": "output"}))
EPSILON = 0.25  # the dense layers' default


@functools.cache
def _calibrated(name: str) -> tuple[nn.Module, torch.Tensor]:
    """Network and 3 inputs (64x64; the demo network's own 32x32 in [0, 1]); shared, never modified."""
    gen = torch.Generator().manual_seed(0)
    if name == "demo":
        x = torch.rand(3, 3, 32, 32, generator=gen)
    else:
        x = torch.randn(3, 3, 64, 64, generator=gen)
    return calibrated_random_model(name, x, rng=gen), x


def _classifier_share(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """z / (z + eps) of the explained class, z the classifier's bias-free output after canonisation: what the
    (bias-free) epsilon rule of the last layer hands on."""
    seen = {}
    instances = [instance for canonizer in canonizers_for(model) for instance in canonizer.apply(model)]
    try:
        classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        handle = classifier.register_forward_hook(lambda module, args, out: seen.update(input=args[0]))
        with torch.no_grad():
            model(x)
        handle.remove()
        z = (seen["input"] @ classifier.weight.T).gather(1, target[:, None])[:, 0]
    finally:
        for instance in instances:
            instance.remove()
    return z / (z + EPSILON * z.sign())


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize(("method", "options"), ALPHA_BETA)
def test_bias_free_alpha_beta_rules_hand_the_logit_to_the_input(name, method, options):
    model, x = _calibrated(name)
    ratios = relevance_ratios(model, x, method, **options)
    # the bound of the issue, per image ...
    assert ((ratios["sum"] >= 0.95) & (ratios["sum"] <= 1.05)).all(), ratios["sum"]
    assert (ratios["abs"] < 50).all(), ratios["abs"]
    # ... and the exact account: every layer below the classifier conserves, the classifier keeps z/(z+eps)
    with torch.no_grad():
        target = model(x).argmax(1)
    torch.testing.assert_close(ratios["sum"], _classifier_share(model, x, target), rtol=2e-3, atol=0)


@pytest.mark.slow
def test_efficientnet_fallback_keeps_what_empty_positive_sums_would_lose():
    model, x = _calibrated("efficientnet-b0")
    with torch.no_grad():
        target = model(x).argmax(1)
    kept = _classifier_share(model, x, target)
    with_fallback = relevance_ratios(model, x, "lrp-alpha1beta0")["sum"]
    without = relevance_ratios(model, x, "lrp-alpha1beta0", fallback=False)["sum"]
    torch.testing.assert_close(with_fallback, kept, rtol=2e-3, atol=0)
    # swish lets relevance reach neurons without positive inputs (depthwise convolutions): z+ loses it there
    assert (without < kept - 0.01).all(), without


def test_threshold_relu_and_folded_conv_compute_batch_norm_relu_conv():
    gen = torch.Generator().manual_seed(31)
    norm = nn.BatchNorm2d(5).double().eval()
    conv = nn.Conv2d(5, 4, 3, padding=1, stride=2).double()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.2, -0.7, 0.0, 0.4, -1.5], dtype=torch.float64))  # both signs, and 0
        norm.bias.copy_(torch.randn(5, generator=gen, dtype=torch.float64))
        norm.running_mean.copy_(torch.randn(5, generator=gen, dtype=torch.float64))
        norm.running_var.copy_(torch.rand(5, generator=gen, dtype=torch.float64) + 0.5)
    x = torch.randn(2, 5, 7, 7, generator=gen, dtype=torch.float64)
    expected = conv(torch.relu(norm(x)))
    folded = BatchNormFoldedConv2d.fold(norm, conv)
    got = folded(ThresholdReLU.from_batch_norm(norm)(x))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # the bias is tensor-shaped: the kernel's border rows and columns see the zero padding
    bias = folded.shift_response(x)
    assert not torch.allclose(bias[..., 0, 0], bias[..., 1, 1])


@pytest.mark.slow
def test_densenet_canonizer_is_exact_in_float32_and_fully_undone(helpers):
    model, x = _calibrated("densenet121")
    before = helpers.snapshot(model)
    with torch.no_grad():
        reference = model(x)
    instances = DenseNetCanonizer().apply(model)
    try:
        kinds = [type(m) for m in model.modules()]
        assert kinds.count(ThresholdReLU) == 58 * 2 + 3 + 1  # two per dense layer, one per transition, norm5
        assert kinds.count(BatchNormFoldedConv2d) == 58 * 2 + 3
        relus = [name for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
        assert relus == ["features.relu0"]  # the stem's, after the merged conv0 -> norm0
        with torch.no_grad():
            canonized = model(x)
    finally:
        for instance in instances:
            instance.remove()
    torch.testing.assert_close(canonized, reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())
    helpers.assert_untouched(model, before, x, reference)


@pytest.mark.slow
def test_lrp_zero_on_folded_densenet_equals_gradient_x_input(helpers):
    # epsilon -> 0 on a piecewise-linear network is gradient x input when every layer's bias sits in the
    # denominators (Zennit's epsilon): an oracle for the folded convolutions and the threshold ReLUs
    model = helpers.seeded_model("densenet121").double()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(32), dtype=torch.float64)
    target = torch.tensor([5, 900])
    lrp = attribute(model, x, target, "lrp-epsilon", raw=True, epsilon=1e-10, stabilizer=1e-10)
    expected = attribute(model, x, target, "gradient-x-input", raw=True)
    scale = expected.abs().max()
    torch.testing.assert_close(lrp / scale, expected / scale, rtol=1e-3, atol=1e-4)
