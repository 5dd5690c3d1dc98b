"""LRP-epsilon's relevance budget (supplement eq. 52, section G): input, biases and absorbed shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from empirical.attribution import attribute
from empirical.attribution.relevance_budget import relevance_budget
from empirical.storage.tables import RELEVANCE_BUDGET_COLUMNS


def _tiny_network() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    return model.double().eval()


def _budget_by_hand(model: nn.Module, x: np.ndarray, target: int, epsilon: float) -> dict:
    """The epsilon rule with the bias in the denominator, written out for Linear-ReLU-Linear."""
    w1, b1 = (p.detach().numpy() for p in (model[1].weight, model[1].bias))
    w2, b2 = (p.detach().numpy() for p in (model[3].weight, model[3].bias))
    z1 = w1 @ x + b1
    a = np.maximum(z1, 0)
    z2 = w2[target] @ a + b2[target]
    sign = lambda z: np.where(z >= 0, 1.0, -1.0)  # noqa: E731
    stabilised = lambda z: z + epsilon * sign(z)  # noqa: E731
    per_unit2 = z2 / stabilised(z2)
    relevance_a = w2[target] * a * per_unit2
    per_unit1 = relevance_a / stabilised(z1)
    relevance_x = (w1 * x[None, :]).T @ per_unit1
    biases = b2[target] * per_unit2 + b1 @ per_unit1
    absorbed = epsilon * sign(z2) * per_unit2 + (epsilon * sign(z1) * per_unit1).sum()
    return {"logit": z2, "input": relevance_x.sum() / z2, "biases": biases / z2, "absorbed": absorbed / z2}


def test_budget_against_the_rule_written_out_in_numpy():
    model = _tiny_network()
    x = torch.randn(4, 3, 1, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    budget = relevance_budget(model, x, 1, epsilon=0.3)
    assert tuple(budget.columns) == RELEVANCE_BUDGET_COLUMNS and len(budget) == 4
    for row, image in zip(budget.to_dict("records"), x.numpy(), strict=True):
        expected = _budget_by_hand(model, image.reshape(3), 1, 0.3)
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        assert row["thresholds"] == 0.0
        assert row["accounted"] == pytest.approx(1.0, rel=1e-9)


def test_budget_input_share_is_the_lrp_epsilon_map(demo_model, demo_batch):
    """Oracle: ``attribute(..., "lrp-epsilon")`` (Zennit's epsilon rule), summed over each image."""
    budget = relevance_budget(demo_model, demo_batch, epsilon=0.01)
    with torch.no_grad():
        logits = demo_model(demo_batch)
    target = logits.argmax(1)
    relevance = attribute(demo_model, demo_batch, target, "lrp-epsilon", epsilon=0.01)
    expected = relevance.flatten(1).sum(1) / logits.gather(1, target[:, None])[:, 0]
    np.testing.assert_allclose(budget["input"], expected.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(budget["logit"], logits.max(1).values.numpy(), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "densenet121", "efficientnet-b0", "demo"])
def test_budget_accounts_for_the_whole_logit_on_every_network(name, helpers):
    """End to end: on each canonised network input + biases (+ DenseNet's threshold units) carry the logit
    at a small epsilon, and with epsilon's share all of it, for the top class of random inputs."""
    model = helpers.seeded_model(name)
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    budget = relevance_budget(model, x, epsilon=1e-6)
    np.testing.assert_allclose(budget["conserved"], 1.0, atol=2e-3)
    np.testing.assert_allclose(budget["accounted"], 1.0, atol=2e-3)
    assert (budget["biases"].abs() > 1e-3).all()  # batch norms merged: the biases take a share


@pytest.mark.slow
def test_budget_on_pretrained_lite0_conserves_over_input_and_biases():
    pytest.importorskip("efficientnet_lite_pytorch")
    from empirical.models import NETWORKS, load_model
    from empirical.run.photographs import embedded_photographs

    model = load_model("efficientnet-lite0")
    images = embedded_photographs().preprocess(NETWORKS["efficientnet-lite0"].preprocessing)[:2]
    budget = relevance_budget(model, images, epsilon=1e-3)
    assert budget["conserved"].between(0.95, 1.05).all()
    assert budget["accounted"].between(0.99, 1.01).all()


@pytest.mark.parametrize(("arguments", "named"), [
    ({"x": torch.zeros(2, 3)}, "x must be"),
    ({"x": torch.zeros(1, 3, 4, 4, dtype=torch.long)}, "x a floating-point tensor"),
    ({"epsilon": 0.0}, "epsilon must be > 0"),
    ({"epsilon": float("nan")}, "epsilon must be > 0"),
])
def test_budget_rejects_bad_arguments_by_name(arguments, named):
    model = _tiny_network()
    options = {"x": torch.zeros(1, 3, 1, 1, dtype=torch.float64), **arguments}
    with pytest.raises(ValueError, match=named):
        relevance_budget(model, options.pop("x"), **options)


def test_budget_refuses_a_model_in_training_mode():
    with pytest.raises(ValueError, match="training mode"):
        relevance_budget(_tiny_network().train(), torch.zeros(1, 3, 1, 1, dtype=torch.float64))


def test_public_budget_takes_targets_as_every_call_of_the_api(demo_model, demo_batch):
    """Oracle: the module's function on the same explained classes."""
    import empirical

    direct = relevance_budget(demo_model, demo_batch, torch.tensor([3, 3, 3]), epsilon=0.01)
    public = empirical.relevance_budget(demo_model, demo_batch, 3, epsilon=0.01)
    np.testing.assert_allclose(public.to_numpy(dtype=float), direct.to_numpy(dtype=float), rtol=1e-6)
    with pytest.raises(ValueError, match="targets must be"):
        empirical.relevance_budget(demo_model, demo_batch, [1, 2])
    with pytest.raises(ValueError, match="images must be"):
        empirical.relevance_budget(demo_model, demo_batch[0])


@pytest.mark.slow
def test_bias_free_epsilon_diverges_on_pretrained_lite0_even_in_float64():
    """Why ``lrp-epsilon`` keeps the bias: without it, the denominators of Lite0's depthwise convolutions
    (nine contributions each) come near zero, and sum R / logit grows by orders of magnitude over the
    network, where the rule with the bias conserves over input and biases."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from zennit.composites import LayerMapComposite

    from empirical.attribution.canonizers import canonizers_for
    from empirical.attribution.composites import epsilon_layer_map
    from empirical.attribution.lrp_rules import Epsilon
    from empirical.models import NETWORKS, load_model
    from empirical.run.photographs import embedded_photographs

    model = load_model("efficientnet-lite0").double()
    images = embedded_photographs().preprocess(NETWORKS["efficientnet-lite0"].preprocessing)[:1].double()
    composite = LayerMapComposite(layer_map=epsilon_layer_map(Epsilon(0.1, include_bias=False)),
                                  canonizers=canonizers_for(model))
    inputs = images.clone().requires_grad_()
    with composite.context(model) as modified:
        logit = modified(inputs).max(1).values
        (relevance,) = torch.autograd.grad(logit, inputs, grad_outputs=logit.detach())
    assert abs(relevance.sum().item() / logit.item()) > 1e3
    # the composite left the model as it was: the same network, with the bias in the denominator
    assert relevance_budget(model, images, epsilon=0.1)["conserved"].between(0.9, 1.3).all()
