"""LRP on EfficientNet-Lite: the canonizer keeps the network's function, routes the identity skips through
Sum modules, and LRP conserves the explained logit on the pretrained Lite0 over real photographs (seed
eq. 52); guided backprop covers ReLU6."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from zennit.layer import Sum

from empirical.attribution import attribute, canonizers_for
from empirical.attribution.conservation import relevance_ratios
from empirical.attribution.lite_canonizer import LiteCanonizer

pytest.importorskip("efficientnet_lite_pytorch")
#: the rules that conserve bias-free (seed eq. 52), at their defaults; the classifier's epsilon (0.25) keeps
#: about 3% back at Lite0's logits. Zennit's lrp-epsilon (bias in the denominator) is not among them: the
#: merged batch-norms' biases take most of the relevance (sum R / logit 0.10 at epsilon 1e-3).
CONSERVING = (("epsilon-plus-flat", {}), ("lrp-alpha1beta0", {}),
              ("lrp-adaptive-beta", {"beta_from": "inputs"}), ("lrp-adaptive-beta", {"beta_from": "output"}),
              ("epsilon-gamma-box", {}))


@functools.cache
def _lite0_and_photographs():
    from empirical.models import NETWORKS, load_model
    from empirical.run.photographs import embedded_photographs

    model = load_model("efficientnet-lite0")
    photos = embedded_photographs()
    return model, photos.preprocess(NETWORKS["efficientnet-lite0"].preprocessing)


def test_canonizers_for_lite_is_the_lite_canonizer():
    from empirical.models import build_model

    model = build_model("efficientnet-lite0", rng=0)
    assert [type(c) for c in canonizers_for(model)] == [LiteCanonizer]
    assert canonizers_for(model, merge_batch_norm=False) == []


@pytest.mark.slow
def test_canonized_lite0_computes_the_original_logits_and_restores_itself():
    """Oracle: the untouched network's own forward pass."""
    model, x = _lite0_and_photographs()
    x = x[:2]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model(x)
        instances = [i for c in canonizers_for(model) for i in c.apply(model)]
        try:
            calls = []
            handles = [m.register_forward_hook(lambda *_: calls.append(1))
                       for m in model.modules() if isinstance(m, Sum)]
            canonized = model(x)
            for handle in handles:
                handle.remove()
        finally:
            for instance in reversed(instances):
                instance.remove()
        after = model(x)
    skips = sum(b.id_skip and b._block_args.stride == 1
                and b._block_args.input_filters == b._block_args.output_filters for b in model._blocks)
    assert len(calls) == skips == 9  # every identity skip goes through its block's Sum
    assert (canonized - before).abs().max() < 1e-3 * before.abs().max()
    assert torch.equal(after, before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize(("method", "options"), CONSERVING, ids=[f"{m}{o}" for m, o in CONSERVING])
def test_lrp_conserves_the_logit_on_pretrained_lite0_photographs(method, options):
    """Seed eq. 52: sum of input relevance over the explained logit, median over the photographs."""
    model, x = _lite0_and_photographs()
    ratios = relevance_ratios(model, x, method, **options)
    assert torch.isfinite(ratios["sum"]).all()
    assert 0.95 <= ratios["sum"].median().item() <= 1.05


def test_guided_backprop_cuts_negative_upstream_signal_at_relu6():
    """Oracle: the hand-written guided backward of linear -> ReLU6 -> linear."""
    gen = torch.Generator().manual_seed(0)
    first, second = nn.Linear(6, 8), nn.Linear(8, 3)
    with torch.no_grad():
        first.weight.copy_(torch.randn(8, 6, generator=gen) * 4)
        first.bias.copy_(torch.randn(8, generator=gen) * 3)
    model = nn.Sequential(nn.Flatten(), first, nn.ReLU6(), second).eval()
    x = torch.randn(2, 1, 2, 3, generator=gen)
    z = first(x.flatten(1))
    local = ((z > 0) & (z < 6)).float()
    assert 0 < local.mean() < 1 and (z > 6).any()
    upstream = second.weight[1].expand(2, -1)
    expected = ((upstream > 0).float() * upstream * local) @ first.weight
    ours = attribute(model, x, 1, "guided-backprop", raw=True).flatten(1)
    assert torch.allclose(ours, expected.detach(), atol=1e-5)
