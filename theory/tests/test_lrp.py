"""Eq. 1-2 (adaptive beta) and eq. 52 (LRP-beta of one neuron) against their defining equations, a slow
re-implementation and Zennit's alpha-beta rule."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import theory

# No deadline and no too_slow health check: CI shares 2 cores, timing says nothing about correctness.
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
contributions = hnp.arrays(float, st.integers(1, 12), elements=st.floats(-100, 100))


@PROPERTY
@given(st.floats(1e-6, 1e3), st.floats(0, 1))
def test_uncapped_beta_solves_eq1(positive_sum, fraction):
    # eq. 1: beta / (1 + beta) = -N / P, for any N in (-P, 0].
    negative_sum = -fraction * positive_sum * (1 - 1e-9)
    beta = theory.adaptive_beta(positive_sum, negative_sum, beta_max=np.inf)
    assert beta / (1 + beta) == pytest.approx(-negative_sum / positive_sum, rel=1e-9, abs=1e-15)


def test_beta_is_capped_and_zero_for_neurons_that_are_off():
    # P = 1, N = -0.9: beta = 9, capped at 3. P + N <= 0: the neuron is off after its ReLU, beta = 0.
    got = theory.adaptive_beta([1.0, 1.0, 1.0, 1.0, 0.0], [-0.9, -0.5, -1.0, -2.0, 0.0])
    assert got == pytest.approx([3.0, 1.0, 0.0, 0.0, 0.0])
    assert theory.adaptive_beta(1.0, -0.9, beta_max=10.0) == pytest.approx(9.0)


def _slow_lrp_beta(c, relevance, beta):
    """eq. 52 written out with Python floats, one input at a time.

    The share c_i / sum_k c_k comes first, as eq. 52 groups it: for a subnormal contribution (5e-324 alone,
    share 1) the product R c_i computed first underflows to 0 and loses the whole share."""
    pos_sum = sum(max(x, 0.0) for x in c)
    neg_sum = sum(min(x, 0.0) for x in c)
    out = []
    for x in c:
        r = 0.0
        if x > 0:
            r += relevance * (1 + beta) * (x / pos_sum)
        if x < 0:
            r -= relevance * beta * (x / neg_sum)
        out.append(r)
    return out


@PROPERTY
@given(contributions, st.floats(-10, 10), st.floats(0, 5))
def test_lrp_beta_against_slow_reimplementation(c, relevance, beta):
    got = theory.lrp_beta_neuron(c, relevance, beta)
    assert got == pytest.approx(_slow_lrp_beta([float(x) for x in c], relevance, beta), rel=1e-9, abs=1e-9)


@PROPERTY
@given(contributions, st.floats(0.1, 10), st.floats(0, 5))
def test_conservation_when_both_signs_present(c, relevance, beta):
    assume((c > 1e-3).any() and (c < -1e-3).any())
    assert theory.lrp_beta_neuron(c, relevance, beta).sum() == pytest.approx(relevance, rel=1e-9)


# Neurons that are on with both signs present, built so rather than filtered (an assume() on random
# contributions rejected most of them and failed hypothesis's filter_too_much health check): positive
# contributions, then negative ones that share N = -f P with f in [1e-3, 0.999], in a shuffled order.
on_neurons = st.tuples(
    st.lists(st.floats(1e-3, 100), min_size=1, max_size=6),
    st.floats(1e-3, 0.999),
    st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
).map(lambda t: _on_neuron(*t))


def _on_neuron(positives, fraction, shares, random):
    p = np.array(positives)
    negatives = -fraction * p.sum() * np.array(shares) / sum(shares)
    c = np.concatenate([p, negatives])
    random.shuffle(c)
    return c


@PROPERTY
@given(on_neurons)
def test_adaptive_beta_redistributes_the_forward_ratio_of_negative_to_positive(c):
    # A.2's interpretation: beta/(1+beta) is the fraction of negative to positive relevance; with the
    # adaptive beta it equals -N/P of the forward pass (uncapped, neuron on).
    positive, negative = c[c > 0].sum(), c[c < 0].sum()
    beta = theory.adaptive_beta(positive, negative, beta_max=np.inf)
    relevance = theory.lrp_beta_neuron(c, 1.0, beta)
    ratio = -relevance[relevance < 0].sum() / relevance[relevance > 0].sum()
    assert ratio == pytest.approx(-negative / positive, rel=1e-9)


def test_subnormal_contribution_keeps_its_whole_share():
    # The case hypothesis found: one positive contribution, subnormal. Its share of sum c^+ is exactly 1.
    assert theory.lrp_beta_neuron([5e-324], 0.5, 0.0) == pytest.approx([0.5], rel=1e-15)
    assert theory.lrp_beta_neuron([5e-324, -5e-324], 1.0, 2.0) == pytest.approx([3.0, -2.0], rel=1e-15)


def test_broadcasts_relevance_and_beta_over_neurons():
    c = np.array([[1.0, -1.0, 2.0], [0.5, 0.5, -3.0]])
    got = theory.lrp_beta_neuron(c, np.array([1.0, 2.0]), np.array([[0.0], [1.0]]))
    assert got.shape == (2, 2, 3)
    assert got[1, 1] == pytest.approx(_slow_lrp_beta([0.5, 0.5, -3.0], 2.0, 1.0))


@pytest.mark.slow
def test_lrp_beta_against_zennit_alpha_beta_rule():
    torch = pytest.importorskip("torch")
    zennit_rules = pytest.importorskip("zennit.rules")
    from zennit.core import Composite

    w = np.array([[0.5, -1.0, 2.0, -0.3, 1.5]])
    x = np.array([[1.0, 2.0, 0.5, 3.0, -1.0]])
    beta = 0.7
    layer = torch.nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
    rule = zennit_rules.AlphaBeta(alpha=1 + beta, beta=beta)
    composite = Composite(
        module_map=lambda ctx, name, module: rule if isinstance(module, torch.nn.Linear) else None
    )
    inputs = torch.from_numpy(x).requires_grad_()
    with composite.context(layer) as modified:
        output = modified(inputs)
        (relevance,) = torch.autograd.grad(output, inputs, grad_outputs=torch.ones_like(output))
    expected = relevance.detach().numpy()[0]
    # grad_outputs of ones: the relevance entering the neuron is 1.
    got = theory.lrp_beta_single_neuron(w[0], x[0], 1.0, beta)
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.adaptive_beta(-1.0, -0.5), "positive_sum"),
        (lambda: theory.adaptive_beta(1.0, 0.5), "negative_sum"),
        (lambda: theory.adaptive_beta(1.0, np.nan), "negative_sum"),
        (lambda: theory.adaptive_beta(1.0, -0.5, beta_max=-1), "beta_max"),
        (lambda: theory.adaptive_beta([1.0, 2.0], [-0.5, -0.5, -0.5]), "positive_sum"),
        (lambda: theory.lrp_beta_neuron([1.0, -1.0], 1.0, -0.5), "beta"),
        (lambda: theory.lrp_beta_neuron(1.0, 1.0, 0.5), "contributions"),
        (lambda: theory.lrp_beta_neuron([1.0, np.inf], 1.0, 0.5), "contributions"),
        (lambda: theory.lrp_beta_neuron(np.ones((2, 3)), np.ones(3), 0.5), "relevance"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
