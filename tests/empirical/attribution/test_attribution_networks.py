"""All methods on the four networks (random weights, small inputs); canonizers against the original models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from empirical.attribution import BUILTIN_METHODS, attribute, canonizers_for
from empirical.attribution.canonizers import DenseNetCanonizer

BIG = ("resnet50", "densenet121", "efficientnet-b0")
FAST_OPTIONS = {"integrated-gradients": {"steps": 4}}


def _canonized_outputs(model, x):
    instances = []
    for canonizer in canonizers_for(model):
        instances += canonizer.apply(model)
    try:
        with torch.no_grad():
            return model(x), instances
    finally:
        for instance in instances:
            instance.remove()


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_canonized_network_computes_the_original_function(name, imagenet_like_batch, helpers):
    # float64: merging batch-norms is exact algebra, so only rounding separates the two outputs
    model = helpers.seeded_model(name).double()
    x = imagenet_like_batch.double()
    before = helpers.snapshot(model)
    with torch.no_grad():
        reference = model(x)
    canonized, instances = _canonized_outputs(model, x)
    assert instances  # something was merged or overloaded
    torch.testing.assert_close(canonized, reference, rtol=1e-9, atol=1e-9)
    helpers.assert_untouched(model, before, x, reference)


def test_demo_canonizer_computes_the_original_function(demo_model, demo_batch, helpers):
    before = helpers.snapshot(demo_model)
    with torch.no_grad():
        reference = demo_model(demo_batch)
    canonized, instances = _canonized_outputs(demo_model, demo_batch)
    assert len(instances) >= 15  # 15 batch-norm merges (stem, 12 block convs, 2 shortcuts) and 6 sums
    torch.testing.assert_close(canonized, reference, rtol=1e-5, atol=1e-5)
    helpers.assert_untouched(demo_model, before, demo_batch, reference)


@pytest.mark.slow
def test_densenet_canonizer_folds_every_batch_norm_after_a_concatenation(helpers):
    # DenseNet: conv0 -> norm0 is merged; every other batch-norm becomes a threshold ReLU whose scale and
    # shift move into the convolution (or, for norm5, the classifier) after its ReLU
    from empirical.attribution.densenet_canonizer import BatchNormFoldedConv2d, ThresholdReLU

    model = helpers.seeded_model("densenet121")
    instances = DenseNetCanonizer().apply(model)
    try:
        norms = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms == ["features.norm0"] and torch.all(model.features.norm0.weight == 1)
        folded = [name for name, m in model.named_modules() if isinstance(m, BatchNormFoldedConv2d)]
        assert len(folded) == 58 * 2 + 3 and "features.transition1.conv" in folded
        assert isinstance(model.features.denseblock1.denselayer1.norm1, ThresholdReLU)
        assert isinstance(model.canonizer_relu, ThresholdReLU)
    finally:
        for instance in instances:
            instance.remove()
    assert not hasattr(model, "canonizer_relu")
    assert isinstance(model.features.denseblock1.denselayer1.norm1, nn.BatchNorm2d)


def _lrp_zero_equals_gradient_x_input(model, x, target):
    # with the logit as output relevance, R = z df/dz at every layer, hence x df/dx at the input;
    # float64, since z-rule ratios with near-zero denominators magnify float32 rounding
    model, x = model.double(), x.double()
    lrp = attribute(model, x, target, "lrp-epsilon", raw=True, epsilon=1e-10, stabilizer=1e-10)
    expected = attribute(model, x, target, "gradient-x-input", raw=True)
    scale = expected.abs().max()
    torch.testing.assert_close(lrp / scale, expected / scale, rtol=1e-3, atol=1e-4)


def test_lrp_zero_on_canonized_demo_equals_gradient_x_input(demo_model, demo_batch):
    # for a ReLU network whose batch-norms are merged, the z-rule everywhere is gradient x input: a check of
    # the canonizer (merges, sums) and of the wiring of the composite
    _lrp_zero_equals_gradient_x_input(demo_model, demo_batch, torch.tensor([1, 2, 3]))


@pytest.mark.slow
def test_lrp_zero_on_canonized_resnet50_equals_gradient_x_input(imagenet_like_batch, helpers):
    model = helpers.seeded_model("resnet50")
    _lrp_zero_equals_gradient_x_input(model, imagenet_like_batch, torch.tensor([5, 900]))


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_every_method_on_every_network(name, imagenet_like_batch, helpers):
    model = helpers.seeded_model(name)
    x = imagenet_like_batch
    before = helpers.snapshot(model)
    with torch.no_grad():
        reference = model(x)
    target = torch.tensor([3, 999])
    # oracles: the input gradient by plain autograd; random-uniform is torch.rand of its seed; for the rule
    # families (LRP through the canonizers, the adaptive beta, guided backprop), each image explained alone
    # (in eval mode the images of a batch do not interact)
    inputs = x.detach().clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(inputs).gather(1, target[:, None]).sum(), inputs)
    expected = {"gradient": torch.linalg.vector_norm(gradient, dim=1), "gradient-mean": gradient.mean(1),
                "gradient-x-input": (gradient * x).sum(1),
                "random-uniform": torch.rand((x.shape[0], *x.shape[2:]),
                                             generator=torch.Generator().manual_seed(0))}
    for method in BUILTIN_METHODS:
        options = dict(FAST_OPTIONS.get(method, {}))
        if method == "random-uniform":
            options["rng"] = torch.Generator().manual_seed(0)
        maps = attribute(model, x, target, method, **options)
        assert maps.shape == (2, 32, 32), method
        assert torch.isfinite(maps).all() and maps.abs().sum() > 0, method
        scale = float(maps.abs().max())
        if method in expected:
            torch.testing.assert_close(maps, expected[method], rtol=1e-4, atol=1e-5 * scale, msg=method)
        elif method in ("lrp-epsilon", "lrp-adaptive-beta", "guided-backprop"):
            alone = torch.cat([attribute(model, x[i:i + 1], target[i:i + 1], method, **options)
                               for i in range(2)])
            # float32: batched and single convolutions round differently (the adaptive beta may flip)
            close = torch.isclose(maps, alone, rtol=1e-3, atol=1e-3 * scale)
            assert close.float().mean() > 0.99, method
    helpers.assert_untouched(model, before, x, reference)


def _zero_shift_batch_norms(model: nn.Module) -> nn.Module:
    """Batch-norms without shift (mean 0, bias 0) and a bias-free classifier: after canonization every
    linear layer is bias-free, so every rule of the z-family must conserve relevance end to end."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.zero_()
                module.bias.zero_()
            elif isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
    return model


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_lrp_zero_conserves_the_logit_through_canonized_network(name, helpers):
    # an oracle for the canonizers: skip sums (Sum/Norm), squeeze-excitation gates (relevance to the
    # signal), concatenations and DenseNet's folded batch-norms must all pass relevance on without loss
    model = _zero_shift_batch_norms(helpers.seeded_model(name)).double()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    target = torch.tensor([17])
    relevance = attribute(model, x, target, "lrp-epsilon", epsilon=1e-12, stabilizer=1e-12)
    with torch.no_grad():
        logit = model(x)[0, 17]
    assert relevance.sum().item() == pytest.approx(logit.item(), rel=1e-6)
