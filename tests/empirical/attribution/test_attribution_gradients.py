"""Gradient methods, integrated gradients and guided backprop against Captum on the same inputs."""

from __future__ import annotations

import pytest
import torch
from captum.attr import GuidedBackprop, InputXGradient, IntegratedGradients, Saliency

from empirical.attribution import attribute

TARGETS = torch.tensor([1, 4, 9])


def test_gradient_against_captum_saliency(demo_model, demo_batch):
    expected = Saliency(demo_model).attribute(demo_batch, target=TARGETS, abs=False)
    raw = attribute(demo_model, demo_batch, TARGETS, "gradient", raw=True)
    torch.testing.assert_close(raw, expected)
    # Sensitivity: Euclidean norm over the colour channels of Captum's absolute gradient
    captum_abs = Saliency(demo_model).attribute(demo_batch, target=TARGETS)
    torch.testing.assert_close(attribute(demo_model, demo_batch, TARGETS, "gradient"),
                               captum_abs.pow(2).sum(1).sqrt())
    torch.testing.assert_close(attribute(demo_model, demo_batch, TARGETS, "gradient-mean"), expected.mean(1))


def test_gradient_x_input_against_captum(demo_model, demo_batch):
    expected = InputXGradient(demo_model).attribute(demo_batch, target=TARGETS)
    raw = attribute(demo_model, demo_batch, TARGETS, "gradient-x-input", raw=True)
    torch.testing.assert_close(raw, expected)
    reduced = attribute(demo_model, demo_batch, TARGETS, "gradient-x-input")
    torch.testing.assert_close(reduced, expected.sum(1))


@pytest.mark.parametrize(("rule", "baseline"), [("gausslegendre", 0.0), ("gausslegendre", 0.5),
                                               ("riemann_trapezoid", 0.25)])
def test_integrated_gradients_against_captum(demo_model, demo_batch, rule, baseline):
    steps = 12
    expected = IntegratedGradients(demo_model).attribute(demo_batch, baselines=baseline, target=TARGETS,
                                                         n_steps=steps, method=rule)
    if rule == "riemann_trapezoid":
        # Captum's trapezoid weights are 1/n (halved at the ends) and sum to (n-1)/n; ours are 1/(n-1)
        expected = expected * steps / (steps - 1)
    # two chunk sizes: the step batching must not change the sum
    for steps_per_pass in (5, 12):
        got = attribute(demo_model, demo_batch, TARGETS, "integrated-gradients", raw=True, steps=steps,
                        baseline=baseline, rule=rule, steps_per_pass=steps_per_pass)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_completeness(demo_model, demo_batch):
    # completeness: the attributions sum to f(x) - f(baseline) as the quadrature converges
    got = attribute(demo_model, demo_batch, TARGETS, "integrated-gradients", steps=64)
    with torch.no_grad():
        gap = demo_model(demo_batch) - demo_model(torch.zeros_like(demo_batch))
    gap = gap.gather(1, TARGETS[:, None])[:, 0]
    torch.testing.assert_close(got.sum((1, 2)), gap, rtol=0.05, atol=0.02)


def test_guided_backprop_against_captum(demo_model, demo_batch):
    expected = GuidedBackprop(demo_model).attribute(demo_batch, target=TARGETS)
    raw = attribute(demo_model, demo_batch, TARGETS, "guided-backprop", raw=True)
    torch.testing.assert_close(raw, expected)
    assert not torch.allclose(raw, attribute(demo_model, demo_batch, TARGETS, "gradient", raw=True))


def test_bad_integrated_gradients_options(demo_model, demo_batch):
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        attribute(demo_model, demo_batch, 0, "integrated-gradients", steps=0)
    with pytest.raises(ValueError, match="rule must be"):
        attribute(demo_model, demo_batch, 0, "integrated-gradients", rule="simpson")
