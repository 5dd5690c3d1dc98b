"""The public calls of ``empirical`` on networks it has no row for: canonisation from the module graph,
LRP's refusal, the shape contract of registered methods, both MPRT schedules and the runtime conservation
check. Oracles: the unmerged network's own forward pass, the explained logit (supplement eq. 52), the
module list the schedule must follow, and exact shapes."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import empirical
from empirical.attribution import (
    CONSERVATION_BAND,
    LRPNotSupportedError,
    attribute,
    register_method,
)
from empirical.attribution.graph_canonizer import GraphCanonizer, lrp_support, merge_pairs
from empirical.experiments.schedules import schedule_steps
from empirical.models import network_spec


class _Misnamed(nn.Module):
    """conv -> bn -> relu -> conv -> bn -> relu -> pool -> linear -> bn1d -> linear, with names that say
    nothing of the data flow (the merge must come from the graph, not from names)."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Conv2d(3, 6, 3, padding=1)
        self.zeta = nn.BatchNorm2d(6)
        self.beta = nn.Conv2d(6, 8, 3, padding=1, bias=False)
        self.omega = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.gamma = nn.Linear(32, 16)
        self.kappa = nn.BatchNorm1d(16)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.relu(self.zeta(self.alpha(x)))
        x = self.relu(self.omega(self.beta(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.head(self.relu(self.kappa(self.gamma(x))))


class _Residual(nn.Module):
    """A batch-norm fed by a sum, and a residual addition: nothing LRP can canonise."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)
        self.act = nn.Hardswish()
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        x = self.norm(self.conv(x) + x)
        return self.head(self.act(x).mean((2, 3)))


def _with_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` with non-trivial batch-norm statistics and affine parameters, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


@pytest.fixture
def misnamed():
    torch.manual_seed(0)
    return _with_statistics(_Misnamed())


def test_graph_canonizer_pairs_from_data_flow_not_names(misnamed):
    expected = [(("alpha",), "zeta"), (("beta",), "omega"), (("gamma",), "kappa")]
    assert sorted(merge_pairs(misnamed)) == expected
    assert lrp_support(misnamed) == {}


def test_graph_canonizer_forward_against_unmerged_network(misnamed):
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    before = {name: value.clone() for name, value in misnamed.state_dict().items()}
    with torch.no_grad():
        expected = misnamed(x)
        handles = GraphCanonizer().apply(misnamed)
        merged = misnamed(x)
        for handle in handles:
            handle.remove()
        restored = misnamed(x)
    torch.testing.assert_close(merged, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(restored, expected, rtol=0, atol=0)
    for name, value in misnamed.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("method", ["lrp-alpha1beta0", "epsilon-plus-flat"])
def test_lrp_on_merged_graph_conserves_the_logit(misnamed, method):
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = misnamed(x)
    target = logits.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no conservation warning either
        maps = attribute(misnamed, x, target, method, epsilon=1e-9)
    ratio = maps.flatten(1).sum(1) / logits.gather(1, target[:, None])[:, 0]
    torch.testing.assert_close(ratio, torch.ones(3), rtol=0, atol=1e-3)


def test_lrp_refuses_what_it_cannot_canonise_naming_the_types():
    model = _with_statistics(_Residual())
    problems = lrp_support(model)
    assert set(problems) >= {"modules", "batch_norms", "functions"} or len(problems) >= 2
    with pytest.raises(LRPNotSupportedError, match="Hardswish") as caught:
        attribute(model, torch.rand(2, 3, 6, 6), 0, "lrp-alpha1beta0")
    assert "norm" in str(caught.value) and "add" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    # gradient methods do not need a canonisation
    assert attribute(model, torch.rand(2, 3, 6, 6), 0, "gradient").shape == (2, 6, 6)


def test_registered_method_maps_keep_their_shape_or_raise():
    x = torch.rand(2, 3, 5, 7)
    model = nn.Sequential(nn.Flatten(), nn.Linear(105, 3)).eval()
    register_method("test-per-pixel", lambda model, x, target: x[:, 0] * 2, replace=True)
    register_method("test-per-channel", lambda model, x, target: x.clone(), replace=True)
    register_method("test-wrong", lambda model, x, target: x[:, 0, 0], replace=True)
    torch.testing.assert_close(attribute(model, x, 0, "test-per-pixel"), x[:, 0] * 2, rtol=0, atol=0)
    torch.testing.assert_close(attribute(model, x, 0, "test-per-channel"), x.sum(1), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"test-wrong.*\(2, 7\).*\(N, H, W\) = \(2, 5, 7\)"):
        attribute(model, x, 0, "test-wrong")


def test_a_captum_method_plugs_in_through_registration_and_runs_in_mprt(misnamed):
    """Oracle: Captum's own Saliency on the same inputs; registered as the README shows, its raw
    (N, C, H, W) map is summed over channels, and per-layer MPRT scores it like any built-in method."""
    from captum.attr import Saliency

    def saliency(model, x, target):
        return Saliency(model).attribute(x, target=target)

    register_method("test-captum-saliency", saliency, replace=True)
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([0, 2])
    expected = Saliency(misnamed).attribute(images, target=targets).sum(1)
    torch.testing.assert_close(attribute(misnamed, images, targets, "test-captum-saliency"), expected)
    table = empirical.mprt(misnamed, images, targets, methods=["test-captum-saliency"], schedule="per-layer")
    assert set(table["method"]) == {"test-captum-saliency"} and table["value"].notna().any()


def test_per_layer_mprt_on_a_network_without_a_row(misnamed):
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    table = empirical.mprt(misnamed, images, methods=["gradient"], schedule="per-layer")
    parametrised = [name for name, module in misnamed.named_modules()
                    if name and any(True for _ in module.parameters(recurse=False))]
    assert table["step"].max() == len(parametrised)
    assert set(table["image"]) == {0, 1}
    assert table["conservation"].isna().all()  # a gradient map promises nothing


def test_tables_record_conservation_per_image_against_the_logit(misnamed):
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    options = {"lrp-alpha1beta0": {"epsilon": 1e-9}}
    area = empirical.faithfulness(misnamed, images, methods=["lrp-alpha1beta0", "gradient"], patch_sizes=[4],
                                  steps=3, area=True, attribution_options=options)
    targets = misnamed(images).argmax(1)
    maps = attribute(misnamed, images, targets, "lrp-alpha1beta0", epsilon=1e-9)
    logits = misnamed(images).gather(1, targets[:, None])[:, 0].detach()
    lrp = area[area["method"] == "lrp-alpha1beta0"].sort_values("image")
    torch.testing.assert_close(torch.tensor(lrp["conservation"].to_numpy(), dtype=torch.float32),
                               maps.flatten(1).sum(1) / logits, rtol=1e-5, atol=1e-6)
    assert area.loc[area["method"] == "gradient", "conservation"].isna().all()


def test_block_schedule_from_user_prefixes(misnamed):
    # one step per prefix, output side first whatever the order given; modules under none stay as trained
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)), nn.ReLU(),
                           nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()), nn.Flatten(), nn.LazyLinear(3))
    nested(torch.rand(1, 3, 9, 9))
    steps = schedule_steps(nested, "blocks", network_spec(nested, blocks=["0", "4", "2"]))
    assert steps == [["4"], ["2.0"], ["0.2", "0.0"]]
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    table = empirical.mprt(misnamed, images, methods=["gradient"], schedule="blocks",
                           blocks=["head", "gamma", "beta"])
    assert table["step"].max() == 3
    with pytest.raises(ValueError, match="blocks"):
        network_spec(misnamed, blocks="gamma")
    with pytest.raises(ValueError, match="overlap"):
        schedule_steps(nested, "blocks", network_spec(nested, blocks=["0", "0.2"]))
    with pytest.raises(ValueError, match="'nothing' matches no module"):
        schedule_steps(nested, "blocks", network_spec(nested, blocks=["nothing"]))


def test_conservation_warning_outside_the_band(misnamed):
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    target = misnamed(x).argmax(1)
    # a huge epsilon in the dense layers absorbs most of the relevance: the promise is broken
    with pytest.warns(RuntimeWarning, match="median .* outside"):
        attribute(misnamed, x, target, "epsilon-plus-flat", epsilon=1e6)
    with pytest.warns(RuntimeWarning):
        table = empirical.conservation(misnamed, x, target, methods=["epsilon-plus-flat"], epsilon=1e6)
    low, _ = CONSERVATION_BAND
    assert (table["sum_ratio"] < low).all() and table["promised"].all()


def test_api_tables_on_a_network_without_a_row(misnamed):
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    for order in ("morf", "lerf"):
        area = empirical.faithfulness(misnamed, images, methods=["gradient"], order=order, patch_sizes=[4],
                                      steps=3, area=True)
        assert len(area) == 2 and area["area"].notna().all() if "area" in area else len(area) == 2
    smooth = empirical.smooth_mprt(misnamed, images, methods=["gradient"], samples=2)
    assert set(smooth["image"]) == {0, 1}
    efficient = empirical.efficient_mprt(misnamed, images, methods=["gradient"])
    assert len(efficient) == 2 and efficient["value"].notna().all()
    activations = empirical.activation_statistics(misnamed, images)
    assert len(activations) > 0


@pytest.mark.slow
@pytest.mark.parametrize("build", ["vgg11_bn", "mobilenet_v3_small"])
def test_torchvision_networks_conserve_or_are_refused(build):
    """End to end on random torchvision networks: LRP either hands the explained logit to the input
    (median sum(R)/logit in [0.95, 1.05], supplement eq. 52) or refuses; never a silent zero map."""
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, build)(num_classes=10).eval()
    images = torch.rand(2, 3, 64, 64)
    if build == "mobilenet_v3_small":
        with pytest.raises(LRPNotSupportedError, match="Hardswish"):
            empirical.conservation(model, images, methods=["lrp-alpha1beta0"])
        return
    methods = ["lrp-epsilon", "lrp-alpha1beta0", "lrp-adaptive-beta", "epsilon-plus-flat"]
    table = empirical.conservation(model, images, methods=methods, epsilon=1e-6)
    assert set(table["method"]) == set(methods)
    medians = table.groupby("method")["sum_ratio"].median()
    assert medians.between(0.95, 1.05).all(), medians
