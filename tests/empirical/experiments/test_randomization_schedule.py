"""Schedules and seeded re-initialisation of ``empirical.experiments.randomization`` (supplement
A.1).

Oracles: layer names written out by hand from the torchvision / efficientnet-pytorch source, the seed's
counting rule re-counted independently, Quantus 0.6.0's module criterion for the per-layer schedule, and
scipy.stats for the Kaiming-normal draws.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from empirical.experiments.randomization import (
    block_rule_schedule,
    boundary_count,
    per_layer_schedule,
    randomised_copy,
    reinitialise_,
    step_state,
)
from empirical.models import build_model

ARCHS = ("resnet50", "densenet121", "efficientnet-b0", "demo")


@pytest.fixture(scope="module")
def networks():
    # building on the meta device skips the weight initialisation: only names and shapes matter here
    with torch.device("meta"):
        return {arch: build_model(arch) for arch in ARCHS if arch != "demo"} | {"demo": None}


def _network(networks, arch):
    return build_model("demo") if arch == "demo" else networks[arch]


def _owning_parameters(model):
    return [name for name, module in model.named_modules()
            if name and len(list(module.parameters(recurse=False))) > 0]


@pytest.mark.parametrize(("arch", "steps", "boundaries"), [
    ("resnet50", 17, 16), ("densenet121", 21, 58), ("efficientnet-b0", 17, 16), ("demo", 7, 6)])
def test_step_counts_follow_the_seed_rule(networks, arch, steps, boundaries):
    schedule = block_rule_schedule(_network(networks, arch), arch)
    assert len(schedule) == steps
    assert boundary_count(schedule, arch) == boundaries


# written out by hand from the registration order of the networks' source code
FIRST_STEPS = {
    "resnet50": [
        ["fc"],
        ["layer4.2.bn3", "layer4.2.conv3", "layer4.2.bn2", "layer4.2.conv2", "layer4.2.bn1",
         "layer4.2.conv1"],
        ["layer4.1.bn3", "layer4.1.conv3", "layer4.1.bn2", "layer4.1.conv2", "layer4.1.bn1",
         "layer4.1.conv1"],
        ["layer4.0.downsample.1", "layer4.0.downsample.0", "layer4.0.bn3", "layer4.0.conv3", "layer4.0.bn2",
         "layer4.0.conv2", "layer4.0.bn1", "layer4.0.conv1"],
    ],
    "densenet121": [
        ["classifier"],
        ["features.norm5"] + [f"features.denseblock4.denselayer{k}.{m}" for k in (16, 15, 14)
                              for m in ("conv2", "norm2", "conv1", "norm1")][:-1],
    ],
    "efficientnet-b0": [
        ["_fc"],
        ["_bn1", "_conv_head", "_blocks.15._bn2", "_blocks.15._project_conv", "_blocks.15._se_expand",
         "_blocks.15._se_reduce", "_blocks.15._bn1", "_blocks.15._depthwise_conv"],
        ["_blocks.15._bn0", "_blocks.15._expand_conv", "_blocks.14._bn2", "_blocks.14._project_conv",
         "_blocks.14._se_expand", "_blocks.14._se_reduce", "_blocks.14._bn1", "_blocks.14._depthwise_conv"],
    ],
    "demo": [
        ["fc"],
        ["layer3.1.bn2", "layer3.1.conv2", "layer3.1.bn1", "layer3.1.conv1"],
        ["layer3.0.downsample.1", "layer3.0.downsample.0", "layer3.0.bn2", "layer3.0.conv2", "layer3.0.bn1",
         "layer3.0.conv1"],
    ],
}
LAST_STEPS = {
    "resnet50": ["layer1.0.downsample.1", "layer1.0.downsample.0", "layer1.0.bn3", "layer1.0.conv3",
                 "layer1.0.bn2", "layer1.0.conv2", "layer1.0.bn1", "layer1.0.conv1"],
    # 58 = 19 * 3 + 1: the last step takes the one remaining conv1
    "densenet121": ["features.denseblock1.denselayer2.norm1", "features.denseblock1.denselayer1.conv2",
                    "features.denseblock1.denselayer1.norm2", "features.denseblock1.denselayer1.conv1"],
    "efficientnet-b0": ["_blocks.1._bn0", "_blocks.1._expand_conv", "_blocks.0._bn2",
                        "_blocks.0._project_conv", "_blocks.0._se_expand", "_blocks.0._se_reduce",
                        "_blocks.0._bn1", "_blocks.0._depthwise_conv"],
    "demo": ["layer1.0.bn2", "layer1.0.conv2", "layer1.0.bn1", "layer1.0.conv1"],
}


@pytest.mark.parametrize("arch", ARCHS)
def test_first_and_last_steps_against_names_written_by_hand(networks, arch):
    schedule = block_rule_schedule(_network(networks, arch), arch)
    assert schedule[:len(FIRST_STEPS[arch])] == FIRST_STEPS[arch]
    assert schedule[-1] == LAST_STEPS[arch]


@pytest.mark.parametrize(("arch", "suffix", "every"), [
    ("resnet50", ".conv1", 1), ("densenet121", ".conv1", 3), ("efficientnet-b0", "._depthwise_conv", 1),
    ("demo", ".conv1", 1)])
def test_union_is_everything_down_to_the_last_boundary_once(networks, arch, suffix, every):
    model = _network(networks, arch)
    schedule = block_rule_schedule(model, arch)
    flat = [name for step in schedule for name in step]
    assert len(flat) == len(set(flat)), "a module is re-initialised twice"
    forward = _owning_parameters(model)
    # the seed's description: every parametrised module from the lowest block boundary up to the classifier
    lowest = min(forward.index(name) for name in forward if name.endswith(suffix) and "." in name)
    assert set(flat) == set(forward[lowest:])
    # each step after the classifier ends at a boundary, and holds `every` boundaries (the last: the rest)
    counts = [sum(name.endswith(suffix) for name in step) for step in schedule[1:]]
    assert all(step[-1].endswith(suffix) for step in schedule[1:])
    assert counts[:-1] == [every] * (len(counts) - 1) and 1 <= counts[-1] <= every


@pytest.mark.parametrize("arch", ARCHS)
def test_per_layer_schedule_against_quantus_module_criterion(networks, arch):
    model = _network(networks, arch)
    # Quantus 0.6.0 MPRT (top_down): the modules having `reset_parameters`, in reversed registration order
    quantus_order = [name for name, module in model.named_modules()
                     if hasattr(module, "reset_parameters")][::-1]
    assert per_layer_schedule(model) == [[name] for name in quantus_order]
    if arch == "resnet50":
        assert len(quantus_order) == 107  # ResNet-50: 107 modules with parameters


def test_unknown_arch_and_missing_classifier_are_value_errors():
    model = build_model("demo")
    with pytest.raises(ValueError, match="arch must be one of"):
        block_rule_schedule(model, "resnet18")
    with pytest.raises(ValueError, match="arch must be one of"):
        boundary_count([["fc"]], "vgg")
    with pytest.raises(ValueError, match="classifier module '_fc'"):
        block_rule_schedule(model, "efficientnet-b0")
    with pytest.raises(ValueError, match=r"at least 16 '\*.conv1'"):
        block_rule_schedule(model, "resnet50")


# --------------------------------------------------------------------------------------- re-initialisation


def _trained_like(model):
    """``model`` with every float tensor moved away from its initial value, as loaded weights would be."""
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.rand(value.shape, generator=generator) + 0.5)
    return model


def _snapshot(model):
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def _changed(before, after):
    return {key for key in before if not torch.equal(before[key], after[key])}


def test_randomised_copy_changes_exactly_the_scheduled_modules_and_keeps_the_original():
    model = _trained_like(build_model("demo"))
    before = _snapshot(model)
    schedule = block_rule_schedule(model, "demo")
    for steps in (1, 3, len(schedule)):
        copy = randomised_copy(model, schedule, steps, seed=7)
        scheduled = {name for step in schedule[:steps] for name in step}
        # num_batches_tracked is 0 before and after (an eval-mode model never counts); all else must change
        expected = {key for key in before if key.rsplit(".", 1)[0] in scheduled
                    and not key.endswith("num_batches_tracked")}
        assert _changed(before, copy.state_dict()) == expected
    assert _changed(before, model.state_dict()) == set()


def test_steps_are_cumulative_and_each_step_depends_only_on_seed_and_step():
    model = build_model("demo")
    schedule = block_rule_schedule(model, "demo")
    third = randomised_copy(model, schedule, 3, seed=11)
    second = randomised_copy(model, schedule, 2, seed=11)
    reinit_third_alone = step_state(model, schedule[2], seed=11, step=3)
    for key, value in third.state_dict().items():
        expected = reinit_third_alone.get(key, second.state_dict()[key])
        assert torch.equal(value, expected), key
    again = randomised_copy(model, schedule, 3, seed=11)
    assert _changed(_snapshot(third), again.state_dict()) == set()
    other_seed = randomised_copy(model, schedule, 3, seed=12)
    assert _changed(_snapshot(third), other_seed.state_dict())


def test_kaiming_normal_weights_against_scipy_normal(networks):
    model = networks["resnet50"]  # on the meta device: fresh weights are drawn from shapes alone
    state = step_state(model, ["layer4.2.conv2"], seed=0, step=2)
    weights = state["layer4.2.conv2.weight"].double().numpy().ravel()
    fan_in = 512 * 3 * 3
    sigma = np.sqrt(2.0 / fan_in)  # He et al. (2015), fan-in, ReLU gain
    n = weights.size
    # k = 5 standard errors: a false failure about once in 1.7 million runs (two-sided normal tail)
    assert abs(weights.mean()) <= 5 * sigma / np.sqrt(n)
    assert abs(weights.var() / sigma**2 - 1) <= 5 * np.sqrt(2 / (n - 1))
    assert scipy.stats.kstest(weights, scipy.stats.norm(scale=sigma).cdf).pvalue > 1e-6


def test_bias_zero_and_batch_norm_reset():
    model = build_model("demo")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.fill_(3.0)
                module.running_var.fill_(5.0)
                module.weight.fill_(2.0)
                module.bias.fill_(-1.0)
            if isinstance(module, nn.Linear):
                module.bias.fill_(4.0)
    state = step_state(model, ["fc", "layer3.1.bn2"], seed=0, step=1)
    assert torch.equal(state["fc.bias"], torch.zeros(10))
    assert torch.equal(state["layer3.1.bn2.weight"], torch.ones(48))
    assert torch.equal(state["layer3.1.bn2.bias"], torch.zeros(48))
    assert torch.equal(state["layer3.1.bn2.running_mean"], torch.zeros(48))
    assert torch.equal(state["layer3.1.bn2.running_var"], torch.ones(48))


def test_fan_out_mode_scales_by_output_channels(networks):
    model = networks["resnet50"]
    state = step_state(model, ["layer4.2.conv3"], seed=0, step=2, mode="fan_out")  # 512 -> 2048, 1x1
    weights = state["layer4.2.conv3.weight"].double().numpy().ravel()
    sigma = np.sqrt(2.0 / 2048)
    assert abs(weights.var() / sigma**2 - 1) <= 5 * np.sqrt(2 / (weights.size - 1))


def test_reinitialisation_bad_inputs_are_value_errors():
    model = build_model("demo")
    schedule = block_rule_schedule(model, "demo")
    with pytest.raises(ValueError, match="steps must be in 0..7"):
        reinitialise_(model, schedule, 8, seed=0)
    with pytest.raises(ValueError, match="mode must be"):
        step_state(model, ["fc"], seed=0, step=1, mode="fan_avg")
    with pytest.raises(ValueError, match="'layer9.conv1', which is not a module"):
        step_state(model, ["layer9.conv1"], seed=0, step=1)
    with pytest.raises(ValueError, match="type Embedding"):
        step_state(nn.Sequential(nn.Embedding(3, 2)), ["0"], seed=0, step=1)
