"""The bias-free LRP rules (eq. 52) against their definitions: empty-side fallback, the two adaptive
betas, average pooling as a linear layer, and relevance layer by layer through a skip connection, a
concatenation and a squeeze-excitation gate (float64, hand-sized layers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from zennit.composites import LayerMapComposite
from zennit.layer import Sum

import theory
from empirical.attribution import AdaptiveBeta, AlphaBeta, ZPlus, attribute, method_settings
from empirical.attribution.canonizers import _RelevanceToSignal
from empirical.attribution.composites import lrp_composite
from empirical.attribution.lrp_rules import Gamma


def _through(module: nn.Module, rule, x: torch.Tensor, relevance_out: torch.Tensor) -> torch.Tensor:
    composite = LayerMapComposite(layer_map=[((nn.Conv2d, nn.Linear, nn.AvgPool2d), rule)])
    x = x.detach().requires_grad_(True)
    with composite.context(module) as hooked:
        (relevance,) = torch.autograd.grad(hooked(x), x, grad_outputs=relevance_out)
    return relevance


def _linear(weight, bias=None) -> nn.Linear:
    weight = torch.as_tensor(weight, dtype=torch.float64)
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float64))
    return layer


X = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
ONE = torch.ones(1, 1, dtype=torch.float64)


def test_fallback_where_positive_sum_is_zero_is_the_z_rule():
    layer = _linear([[-1.0, -2.0, -4.0]])  # contributions -1, -4, -2: P = 0
    got = _through(layer, ZPlus(), X, ONE)
    torch.testing.assert_close(got, torch.tensor([[1.0, 4.0, 2.0]], dtype=torch.float64) / 7)
    assert _through(layer, ZPlus(fallback=False), X, ONE).abs().sum() == 0  # lost without it


def test_fallback_where_negative_sum_is_zero_hands_on_alpha_minus_beta():
    layer = _linear([[1.0, 1.0, 2.0]])  # contributions 1, 2, 1: N = 0
    got = _through(layer, AlphaBeta(2.0, 1.0), X, ONE)
    torch.testing.assert_close(got, torch.tensor([[1.0, 2.0, 1.0]], dtype=torch.float64) / 4)
    # eq. 52 without the fallback (and Zennit's AlphaBeta) hands on alpha = 2 times the relevance
    assert _through(layer, AlphaBeta(2.0, 1.0, fallback=False), X, ONE).sum().item() == pytest.approx(2.0)


def test_fallback_where_every_contribution_is_zero_is_the_flat_rule():
    layer = _linear([[1.0, -1.0, 3.0]], bias=[2.0])  # active through its bias alone
    zero = torch.zeros(1, 3, dtype=torch.float64)
    got = _through(layer, AdaptiveBeta(), zero, 3 * ONE)
    torch.testing.assert_close(got, torch.ones(1, 3, dtype=torch.float64))


def test_gamma_spreads_a_neuron_active_through_its_bias_alone_flat():
    """Oracle: the flat rule by hand (3 relevance over 3 inputs); gamma's own shares on the other neuron."""
    layer = _linear([[1.0, -1.0, 3.0], [1.0, 2.0, -1.0]], bias=[2.0, 0.5])
    x = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    relevance_out = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
    gamma, dropping = Gamma(0.25, stabilizer=1e-30), Gamma(0.25, stabilizer=1e-30, fallback=False)
    flat = torch.ones(1, 3, dtype=torch.float64)
    torch.testing.assert_close(_through(layer, gamma, x, relevance_out), flat)
    assert _through(layer, dropping, x, relevance_out).abs().sum() == 0  # lost without it
    # where no neuron is empty the fallback changes nothing: (w + 0.25 w^+) x over its sum
    shares = torch.tensor([[1.25, -2.0, 1.875]], dtype=torch.float64)
    torch.testing.assert_close(_through(layer, gamma, X, relevance_out), 3 * shares / shares.sum())
    torch.testing.assert_close(_through(layer, dropping, X, relevance_out), 3 * shares / shares.sum())


def test_gamma_conserves_through_a_depthwise_convolution_with_zero_windows():
    """Oracle: eq. 52's sum (every neuron's relevance arrives at the input), on a 3x3 depthwise convolution
    after a ReLU whose windows are partly all zero, as in EfficientNet-Lite's last blocks."""
    gen = torch.Generator().manual_seed(4)
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4).double()
    x = torch.randn(2, 4, 8, 8, generator=gen, dtype=torch.float64).clamp(min=1.2)
    x = x - 1.2  # about 88% zeros
    relevance_out = torch.rand(2, 4, 8, 8, generator=gen, dtype=torch.float64)
    windows = F.conv2d((x > 0).double(), torch.ones(4, 1, 3, 3, dtype=torch.float64), padding=1, groups=4)
    empty = windows == 0
    assert 0.1 < empty.double().mean() < 0.9
    got = _through(conv, Gamma(0.25, stabilizer=1e-30), x, relevance_out)
    assert got.sum().item() == pytest.approx(relevance_out.sum().item(), rel=1e-9)
    dropping = Gamma(0.25, stabilizer=1e-30, fallback=False)
    lost = relevance_out.sum() - _through(conv, dropping, x, relevance_out).sum()
    assert lost.item() == pytest.approx(relevance_out[empty].sum().item(), rel=1e-9)


def test_bias_takes_nothing_by_default_and_its_share_with_include_bias():
    layer = _linear([[1.0, -1.0, 2.0]], bias=[3.0])  # contributions 1, -2, 1: P = 2, N = -2
    torch.testing.assert_close(_through(layer, ZPlus(), X, ONE),
                               torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64))
    # Zennit's convention: a positive bias joins the positive denominator, P + b = 5
    torch.testing.assert_close(_through(layer, ZPlus(include_bias=True), X, ONE),
                               torch.tensor([[0.2, 0.0, 0.2]], dtype=torch.float64))


def _beta_rule_by_hand(contributions, bias, relevance, beta_from, beta_max=3.0):
    positive = np.clip(contributions, 0, None).sum(-1)
    negative = np.clip(contributions, None, 0).sum(-1)
    if beta_from == "inputs":
        beta = theory.adaptive_beta(positive, negative, beta_max)
    else:  # the authors' code: -N / z with z including the bias, 0 where z <= 0
        z = positive + negative + bias
        beta = np.where(z > 0, np.minimum(-negative / np.where(z > 0, z, 1.0), beta_max), 0.0)
    return theory.lrp_beta_neuron(contributions, relevance, beta).sum(1)


@pytest.mark.parametrize("beta_from", ["inputs", "output"])
def test_adaptive_beta_from_inputs_and_from_output_against_their_definitions(beta_from):
    gen = torch.Generator().manual_seed(21)
    weight = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    bias = torch.randn(6, generator=gen, dtype=torch.float64) * 2
    layer = _linear(weight, bias)
    x = torch.randn(5, 9, generator=gen, dtype=torch.float64)
    relevance_out = torch.rand(5, 6, generator=gen, dtype=torch.float64)
    got = _through(layer, AdaptiveBeta(beta_from=beta_from, fallback=False), x, relevance_out)
    contributions = (weight[None] * x[:, None, :]).numpy()
    expected = _beta_rule_by_hand(contributions, bias.numpy(), relevance_out.numpy(), beta_from)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_the_two_adaptive_betas_agree_without_bias_and_differ_with_it():
    gen = torch.Generator().manual_seed(22)
    weight = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    relevance_out = torch.rand(3, 4, generator=gen, dtype=torch.float64)

    def both(layer):
        return [_through(layer, AdaptiveBeta(beta_from=b), x, relevance_out) for b in ("inputs", "output")]

    torch.testing.assert_close(*both(_linear(weight)))
    inputs, output = both(_linear(weight, torch.full((4,), 1.5)))
    assert not torch.allclose(inputs, output)


def test_average_pooling_under_the_adaptive_rule_is_a_linear_layer_with_weights_one_quarter():
    gen = torch.Generator().manual_seed(23)
    x = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    relevance_out = torch.rand(2, 3, 2, 2, generator=gen, dtype=torch.float64)
    got = _through(nn.AvgPool2d(2), AdaptiveBeta(fallback=False), x, relevance_out)
    windows = F.unfold(x.reshape(6, 1, 4, 4), 2, stride=2).transpose(1, 2).numpy() / 4  # (6, 4 windows, 4)
    per_input = theory.lrp_beta_neuron(windows, relevance_out.reshape(6, 4).numpy(),
                                       theory.adaptive_beta(*_sums(windows)))
    expected = F.fold(torch.from_numpy(per_input).transpose(1, 2), (4, 4), 2, stride=2).reshape(2, 3, 4, 4)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def _sums(contributions):
    return np.clip(contributions, 0, None).sum(-1), np.clip(contributions, None, 0).sum(-1)


class SkipConcatExcite(nn.Module):
    """conv -> ReLU -> (identity + conv) -> ReLU -> concat with a 1x1 side conv -> squeeze-excitation gate
    -> strided conv -> ReLU -> average pooling -> linear; every layer with a bias."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.branch = nn.Conv2d(6, 6, 3, padding=1)
        self.skip_sum = Sum()
        self.side = nn.Conv2d(6, 4, 1)
        self.squeeze = nn.Conv2d(10, 3, 1)
        self.excite = nn.Conv2d(3, 10, 1)
        self.mix = nn.Conv2d(10, 8, 3, padding=1, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(5))

    def forward(self, x, keep=None):
        keep = {} if keep is None else keep
        keep["stem_out"] = stem = self.relus[0](self.stem(x))
        keep["branch_out"] = branch = self.branch(stem)
        keep["sum_out"] = summed = self.relus[1](self.skip_sum(torch.stack([stem, branch], dim=-1)))
        keep["side_out"] = side = self.relus[2](self.side(summed))
        keep["concat"] = concat = torch.cat([summed, side], dim=1)
        squeezed = self.relus[3](self.squeeze(F.adaptive_avg_pool2d(concat.detach(), 1)))
        gate = torch.sigmoid(self.excite(squeezed))
        keep["gated"] = gated = _RelevanceToSignal.apply(concat, gate)
        keep["mix_out"] = mixed = self.relus[4](self.mix(gated))
        keep["pooled"] = pooled = self.pool(mixed)
        return self.fc(torch.flatten(pooled, 1))


@pytest.mark.parametrize(("method", "options"), [("lrp-alpha1beta0", {}), ("lrp-alpha2beta1", {}),
                                                 ("lrp-adaptive-beta", {"beta_from": "inputs"}),
                                                 ("lrp-adaptive-beta", {"beta_from": "output"})])
def test_relevance_layer_by_layer_through_skip_concatenation_and_gate(method, options):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(24)
        net = SkipConcatExcite().double().eval()
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.bias.uniform_(-0.3, 0.3)  # biases of both signs: bias-free must still conserve
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(25), dtype=torch.float64)
    x.requires_grad_(True)
    target = torch.tensor([0, 2, 4])
    composite = lrp_composite(method, net, x, epsilon=1e-12, canonizers=[], **options)
    keep = {}
    with composite.context(net) as hooked:
        logit = hooked(x, keep).gather(1, target[:, None])
        names = list(keep)
        grads = torch.autograd.grad(logit, [x, *keep.values()], grad_outputs=logit.detach())
    relevance = dict(zip(["input", *names], grads, strict=True))
    logit = logit[:, 0].detach()

    def total(name):
        return relevance[name].flatten(1).sum(1)

    # every cut above the skip sum carries the whole logit (the gate's input is detached)
    for name in ("sum_out", "concat", "gated", "mix_out", "pooled"):
        torch.testing.assert_close(total(name), logit, rtol=1e-9, atol=1e-12, msg=name)
    # the gate passes all relevance on to the gated signal: the concatenated tensor receives exactly it
    torch.testing.assert_close(relevance["concat"], relevance["gated"], rtol=0, atol=0)
    # the concatenation hands each channel's relevance back to where it came from
    torch.testing.assert_close(relevance["side_out"], relevance["concat"][:, 6:], rtol=0, atol=0)
    # the sum's output feeds the concatenation and the side conv; the conv conserves what it receives
    from_concat = relevance["concat"][:, :6].flatten(1).sum(1)
    torch.testing.assert_close(total("sum_out"), from_concat + total("side_out"), rtol=1e-9, atol=1e-12)
    # the skip sum splits in proportion to its summands (Zennit's Norm rule, stabiliser 1e-6) ...
    summed = (keep["stem_out"] + keep["branch_out"]).detach()
    stabilized = summed + 1e-6 * ((summed == 0) + summed.sign())
    share = keep["branch_out"].detach() / stabilized
    torch.testing.assert_close(relevance["branch_out"], share * relevance["sum_out"], rtol=1e-9, atol=1e-12)
    # ... so below it the logit less the stabiliser's share arrives, and the convolutions conserve that
    below = (relevance["sum_out"] * summed / stabilized).flatten(1).sum(1)
    for name in ("stem_out", "input"):
        torch.testing.assert_close(total(name), below, rtol=1e-9, atol=1e-12, msg=name)


def test_bad_lrp_options_are_named(demo_model, demo_batch):
    with pytest.raises(ValueError, match=r"beta_from must be one of \('inputs', 'output'\), got 'bias'"):
        attribute(demo_model, demo_batch, 0, "lrp-adaptive-beta", beta_from="bias")
    with pytest.raises(ValueError, match="include_bias must be True or False, got 1"):
        attribute(demo_model, demo_batch, 0, "lrp-alpha1beta0", include_bias=1)
    with pytest.raises(ValueError, match="fallback must be True or False, got 'no'"):
        attribute(demo_model, demo_batch, 0, "lrp-alpha2beta1", fallback="no")
    with pytest.raises(ValueError, match="unknown LRP method 'lrp-zero'"):
        method_settings("lrp-zero")


def test_method_settings_say_which_beta_and_bias_a_run_used():
    settings = method_settings("lrp-adaptive-beta", beta_from="output")
    assert settings["beta_from"] == "output" and settings["bias"] == "excluded" and settings["fallback"]
    assert method_settings("lrp-adaptive-beta")["beta_from"] == "inputs"
    assert method_settings("lrp-alpha1beta0", include_bias=True)["bias"] == "included"
    assert "beta_from" not in method_settings("lrp-epsilon")
    assert method_settings("epsilon-gamma-box", fallback=False)["fallback"] is False
