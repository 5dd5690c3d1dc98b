"""LRP rules: the adaptive beta rule against theory and Zennit, conservation, canonizers, gating."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from zennit.composites import EpsilonAlpha2Beta1, LayerMapComposite
from zennit.rules import AlphaBeta, Epsilon
from zennit.types import Convolution

import theory
from empirical.attribution import AdaptiveBeta, ZPlus, adaptive_beta_torch, attribute, canonizers_for
from empirical.attribution import AlphaBeta as OurAlphaBeta
from empirical.attribution.canonizers import _RelevanceToSignal
from empirical.attribution.composites import LRP_METHODS


def _relevance_through(module: nn.Module, rule, x: torch.Tensor, relevance_out: torch.Tensor) -> torch.Tensor:
    """Input relevance of one layer under ``rule`` for output relevance ``relevance_out``."""
    composite = LayerMapComposite(layer_map=[((nn.Conv2d, nn.Linear), rule)])
    x = x.detach().requires_grad_(True)
    with composite.context(module) as hooked:
        out = hooked(x)
        (relevance,) = torch.autograd.grad(out, x, grad_outputs=relevance_out)
    return relevance


def _part_sums(contributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.clip(contributions, 0, None).sum(-1), np.clip(contributions, None, 0).sum(-1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.floats(-50, 0)), min_size=1, max_size=20), st.floats(0, 10))
def test_adaptive_beta_torch_against_theory(pairs, beta_max):
    positive, negative = (np.array(column) for column in zip(*pairs, strict=True))
    expected = theory.adaptive_beta(positive, negative, beta_max)
    got = adaptive_beta_torch(torch.from_numpy(positive), torch.from_numpy(negative), beta_max)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=0)


def test_adaptive_rule_on_linear_layer_against_theory():
    gen = torch.Generator().manual_seed(3)
    layer = nn.Linear(7, 5, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(5, 7, generator=gen, dtype=torch.float64))
    x = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    relevance_out = torch.rand(4, 5, generator=gen, dtype=torch.float64)
    got = _relevance_through(layer, AdaptiveBeta(beta_max=3.0, fallback=False), x, relevance_out)

    contributions = (layer.weight[None] * x[:, None, :]).detach().numpy()  # (N, out, in)
    beta = theory.adaptive_beta(*_part_sums(contributions))
    expected = theory.lrp_beta_neuron(contributions, relevance_out.numpy(), beta).sum(1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-9)


def test_adaptive_rule_on_convolution_against_theory_per_position_and_channel():
    gen = torch.Generator().manual_seed(4)
    conv = nn.Conv2d(3, 4, kernel_size=3, padding=1, stride=2, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(2, 3, 7, 7, generator=gen, dtype=torch.float64)
    relevance_out = torch.rand(2, 4, 4, 4, generator=gen, dtype=torch.float64)
    got = _relevance_through(conv, AdaptiveBeta(beta_max=2.0, fallback=False), x, relevance_out)

    # every output neuron (channel, position) sees one patch: contributions w * patch, (N, out, L, in*k*k)
    patches = F.unfold(x, kernel_size=3, padding=1, stride=2)  # (N, in*k*k, L)
    weight = conv.weight.detach().reshape(4, -1)
    contributions = (weight[None, :, None, :] * patches.transpose(1, 2)[:, None]).numpy()
    beta = theory.adaptive_beta(*_part_sums(contributions), beta_max=2.0)
    assert beta.shape == (2, 4, 16) and len(np.unique(beta)) > 10  # one beta per position and channel
    per_neuron = theory.lrp_beta_neuron(contributions, relevance_out.reshape(2, 4, 16).numpy(), beta)
    per_patch = torch.from_numpy(per_neuron.sum(1)).transpose(1, 2)  # (N, in*k*k, L)
    expected = F.fold(per_patch, output_size=(7, 7), kernel_size=3, padding=1, stride=2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("inputs", ["signed", "after a ReLU"])
@pytest.mark.parametrize("rule, beta", [(ZPlus(fallback=False), 0.0),
                                        (OurAlphaBeta(2.0, 1.0, fallback=False), 1.0), ("adaptive", None)])
def test_alpha_beta_rules_on_signed_and_non_negative_inputs_against_theory(rule, beta, inputs):
    """Oracle: eq. 52 from the explicit contributions w_ji x_i; inputs after a ReLU (no x^-) take the
    rules' shorter path, which must give the same relevance, and the z+ rule skips the negative sums."""
    gen = torch.Generator().manual_seed(8)
    layer = nn.Linear(9, 6, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(6, 9, generator=gen, dtype=torch.float64))
    x = torch.randn(5, 9, generator=gen, dtype=torch.float64)
    x = x.relu() if inputs == "after a ReLU" else x
    relevance_out = torch.rand(5, 6, generator=gen, dtype=torch.float64)
    rule = AdaptiveBeta(beta_max=3.0, fallback=False) if rule == "adaptive" else rule
    got = _relevance_through(layer, rule, x, relevance_out)

    contributions = (layer.weight[None] * x[:, None, :]).detach().numpy()  # (N, out, in)
    betas = theory.adaptive_beta(*_part_sums(contributions)) if beta is None else \
        np.full(contributions.shape[:2], beta)
    expected = theory.lrp_beta_neuron(contributions, relevance_out.numpy(), betas).sum(1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def _demo_relevance(demo_model, demo_batch, conv_rule):
    layer_map = [(Convolution, conv_rule), (nn.Linear, Epsilon(epsilon=0.25))]
    composite = EpsilonAlpha2Beta1(layer_map=layer_map, canonizers=canonizers_for(demo_model))
    x = demo_batch.detach().double().requires_grad_(True)
    with composite.context(demo_model.double()) as hooked:
        out = hooked(x)
        (relevance,) = torch.autograd.grad(out, x, grad_outputs=torch.eye(10).double()[[1, 2, 3]])
    return relevance


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_alphabeta_with_bias_and_without_fallback_equals_zennit_alphabeta(demo_model, demo_batch, beta):
    # include_bias=True, fallback=False is Zennit's definition (up to its 1e-12 stabilizer in float64)
    ours = _demo_relevance(demo_model, demo_batch, OurAlphaBeta(1 + beta, beta, include_bias=True,
                                                                 fallback=False))
    zennit = _demo_relevance(demo_model, demo_batch, AlphaBeta(alpha=1 + beta, beta=beta, stabilizer=1e-12))
    torch.testing.assert_close(ours, zennit, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_bias_free_alphabeta_without_fallback_equals_zennit_alphabeta_with_zero_bias(demo_model, demo_batch,
                                                                                       beta):
    ours = _demo_relevance(demo_model, demo_batch, OurAlphaBeta(1 + beta, beta, fallback=False))
    zennit = _demo_relevance(demo_model, demo_batch, AlphaBeta(alpha=1 + beta, beta=beta, stabilizer=1e-12,
                                                               zero_params=["bias"]))
    torch.testing.assert_close(ours, zennit, rtol=1e-7, atol=1e-9)


def test_adaptive_rule_capped_at_zero_equals_zplus(demo_model, demo_batch):
    capped = _demo_relevance(demo_model, demo_batch, AdaptiveBeta(beta_max=0.0))
    torch.testing.assert_close(capped, _demo_relevance(demo_model, demo_batch, ZPlus()))


def _bias_free_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        return nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding=1, stride=2, bias=False),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 4, bias=False),
        ).eval()


@pytest.mark.parametrize("method", ["lrp-epsilon", "lrp-alpha2beta1", "lrp-alpha1beta0", "lrp-adaptive-beta"])
def test_relevance_is_conserved_layer_by_layer_in_bias_free_network(method):
    net = _bias_free_net()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    target = torch.tensor([0, 1, 2])
    from empirical.attribution.composites import lrp_composite

    composite = lrp_composite(method, net, x, epsilon=1e-9, stabilizer=1e-12, canonizers=[])
    with composite.context(net):
        # run the layers one by one to keep every intermediate tensor: its gradient is its relevance
        tensors = [x.detach().requires_grad_(True)]
        for layer in net:
            tensors.append(layer(tensors[-1]))
        logit = tensors[-1].gather(1, target[:, None])
        relevances = torch.autograd.grad(logit, tensors[:-1], grad_outputs=logit.detach())
    for depth, relevance in enumerate(relevances):
        torch.testing.assert_close(
            relevance.flatten(1).sum(1),
            logit[:, 0].detach(),
            rtol=1e-4,
            atol=1e-6,
            msg=f"{method}: relevance not conserved at layer input {depth}",
        )


def test_adaptive_beta_is_conservative_where_alpha2beta1_is_not():
    # a neuron with only positive contributions: alpha-beta hands out alpha = 2 times its relevance,
    # the adaptive rule sets beta = 0 and hands out exactly its relevance
    layer = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 0.5]]))
    x = torch.tensor([[1.0, 1.0, 2.0]])
    relevance_out = torch.tensor([[1.0]])
    adaptive = _relevance_through(layer, AdaptiveBeta(), x, relevance_out)
    fixed = _relevance_through(layer, AlphaBeta(alpha=2.0, beta=1.0), x, relevance_out)
    assert adaptive.sum().item() == pytest.approx(1.0, rel=1e-5)
    assert fixed.sum().item() == pytest.approx(2.0, rel=1e-5)


def test_gate_passes_all_relevance_to_signal_and_none_to_gate():
    signal = torch.randn(2, 3, 4, 4, requires_grad=True)
    gate = torch.rand(2, 3, 1, 1, requires_grad=True)
    out = _RelevanceToSignal.apply(signal, gate)
    torch.testing.assert_close(out, signal * gate)
    upstream = torch.randn_like(out)
    grads = torch.autograd.grad(out, (signal, gate), grad_outputs=upstream, allow_unused=True)
    torch.testing.assert_close(grads[0], upstream)
    assert grads[1] is None


def test_bad_rule_parameters():
    with pytest.raises(ValueError, match="beta_max must be >= 0, got -1"):
        AdaptiveBeta(beta_max=-1)
    with pytest.raises(ValueError, match="beta_from must be one of .*, got 'bias'"):
        AdaptiveBeta(beta_from="bias")
    with pytest.raises(ValueError, match="alpha >= beta >= 0, got alpha=0.5, beta=1"):
        OurAlphaBeta(0.5, 1)
    with pytest.raises(ValueError, match="include_bias must be True or False, got 'yes'"):
        ZPlus(include_bias="yes")


def test_output_relevance_scales_with_logit(demo_model, demo_batch):
    target = torch.tensor([0, 5, 7])
    from_logit = attribute(demo_model, demo_batch, target, "lrp-epsilon")
    from_one = attribute(demo_model, demo_batch, target, "lrp-epsilon", output_relevance="one")
    with torch.no_grad():
        logit = demo_model(demo_batch).gather(1, target[:, None])[:, 0]
    torch.testing.assert_close(from_logit, from_one * logit[:, None, None], rtol=1e-4, atol=1e-7)
    assert set(LRP_METHODS) >= {"lrp-adaptive-beta", "epsilon-gamma-box"}


def test_positive_negative_sums_with_bias_against_unfolded_contributions():
    from empirical.attribution import positive_negative_sums

    gen = torch.Generator().manual_seed(8)
    conv = nn.Conv2d(2, 3, kernel_size=3, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64))
        conv.bias.copy_(torch.randn(3, generator=gen, dtype=torch.float64))  # must not enter P or N
    x = torch.randn(2, 2, 5, 5, generator=gen, dtype=torch.float64)
    positive, negative = positive_negative_sums(conv, x, conv(x))
    patches = F.unfold(x, 3, padding=1).transpose(1, 2)[:, None]  # (N, 1, L, in*k*k)
    contributions = conv.weight.reshape(3, -1)[None, :, None, :] * patches
    torch.testing.assert_close(positive.flatten(2), contributions.clamp(min=0).sum(-1).detach())
    torch.testing.assert_close(negative.flatten(2), contributions.clamp(max=0).sum(-1).detach())
    again = positive_negative_sums(conv, x)  # without the layer's output: same sums
    torch.testing.assert_close(again[0], positive)


def test_network_of_unknown_architecture_gets_a_generic_canonizer(helpers):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        net = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 2),
        ).eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(10))
    before = helpers.snapshot(net)
    with torch.no_grad():
        reference = net(x)
    maps = attribute(net, x, 1, "lrp-alpha2beta1")
    assert maps.shape == (2, 8, 8) and torch.isfinite(maps).all()
    with pytest.raises(ValueError, match="epsilon-gamma-box needs the input range.*low= and high="):
        attribute(net, x, 1, "epsilon-gamma-box")
    boxed = attribute(net, x, 1, "epsilon-gamma-box", low=-3.0, high=torch.full((3,), 3.0))
    assert torch.isfinite(boxed).all()
    helpers.assert_untouched(net, before, x, reference)


def test_adaptive_rule_with_bias_option_takes_beta_without_it():
    # beta from the bias-free sums (eq. 1-2); with include_bias=True the bias joins the denominators as in
    # Zennit's AlphaBeta
    gen = torch.Generator().manual_seed(12)
    layer = nn.Linear(6, 4).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(4, 6, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.tensor([0.5, -0.5, 2.0, -2.0], dtype=torch.float64))
    x = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    relevance_out = torch.rand(3, 4, generator=gen, dtype=torch.float64)
    got = _relevance_through(layer, AdaptiveBeta(include_bias=True, fallback=False), x, relevance_out)

    contributions = (layer.weight[None] * x[:, None, :]).detach().numpy()
    positive, negative = _part_sums(contributions)
    beta = theory.adaptive_beta(positive, negative)[..., None]
    bias = layer.bias.detach().numpy()
    share = (1 + beta) * np.clip(contributions, 0, None) / (positive + np.clip(bias, 0, None))[
        ..., None
    ] - beta * np.clip(contributions, None, 0) / (negative + np.clip(bias, None, 0))[..., None]
    expected = (relevance_out.numpy()[..., None] * share).sum(1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-8, atol=1e-12)


def test_box_rule_uses_the_demo_input_range_by_default(demo_model, demo_batch):
    default = attribute(demo_model, demo_batch, 3, "epsilon-gamma-box")
    explicit = attribute(demo_model, demo_batch, 3, "epsilon-gamma-box", low=0.0, high=1.0)
    wider = attribute(demo_model, demo_batch, 3, "epsilon-gamma-box", low=-5.0, high=5.0)
    torch.testing.assert_close(default, explicit)
    assert not torch.allclose(default, wider)
