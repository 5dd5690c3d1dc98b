"""Section G: layer-wise relevance sums of the bias-free z-rule against a per-neuron loop, and the theorem
(non-positive biases, positive logit: every layer's sum equals f(x) - b > 0) by hypothesis."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import theory

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
values = st.floats(-2, 2)


@st.composite
def relu_networks(draw, bias_sign=-1.0):
    widths = draw(st.lists(st.integers(2, 6), min_size=2, max_size=4))
    widths.append(1)
    weights = [
        draw(hnp.arrays(float, (n_out, n_in), elements=values))
        for n_in, n_out in zip(widths, widths[1:], strict=False)
    ]
    # Biases small against the weights so that random networks are rarely dead (every unit off).
    biases = [bias_sign * draw(hnp.arrays(float, n_out, elements=st.floats(0, 0.5))) for n_out in widths[1:]]
    x = draw(hnp.arrays(float, widths[0], elements=values))
    return weights, biases, x


def _z_rule_by_loops(weights, biases, x):
    """The z-rule neuron by neuron: R_i = sum_j a_i w_ji R_j / z_j with z_j = sum_i a_i w_ji (no bias)."""
    activations = [list(x)]
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        a = activations[-1]
        activations.append(
            [max(sum(w[j, i] * a[i] for i in range(len(a))) + b[j], 0.0) for j in range(len(b))]
        )
    a = activations[-1]
    logit = sum(weights[-1][0, i] * a[i] for i in range(len(a))) + biases[-1][0]
    relevance = [logit - biases[-1][0]]
    sums = [sum(relevance)]
    for w, a in zip(weights[::-1], activations[::-1], strict=True):
        z = [sum(w[j, i] * a[i] for i in range(len(a))) for j in range(w.shape[0])]
        relevance = [
            sum(a[i] * w[j, i] * relevance[j] / z[j] for j in range(w.shape[0]) if z[j] != 0)
            for i in range(len(a))
        ]
        sums.append(sum(relevance))
    return sums, logit


@PROPERTY
@given(relu_networks(bias_sign=-1.0))
def test_relevance_sums_against_per_neuron_loop(network):
    weights, biases, x = network
    result = theory.relu_relevance_sums(weights, biases, x)
    sums, logit = _z_rule_by_loops(weights, biases, x)
    assert result.logit == pytest.approx(logit, rel=1e-9, abs=1e-12)
    assert result.sums == pytest.approx(sums, rel=1e-7, abs=1e-9)


@PROPERTY
@given(relu_networks(bias_sign=-1.0))
def test_positive_logit_gives_equal_positive_sums_at_every_layer(network):
    weights, biases, x = network
    # Make the logit positive without touching the hidden layers: orient the output weights along the last
    # hidden activations h and keep the (non-positive) output bias smaller than w.h.
    h = x
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        h = np.maximum(w @ h + b, 0.0)
    evidence = float(weights[-1][0] @ h)
    assume(abs(evidence) > 1e-6)
    weights = [*weights[:-1], np.sign(evidence) * weights[-1]]
    biases = [*biases[:-1], np.maximum(biases[-1], -abs(evidence) / 2)]
    result = theory.relu_relevance_sums(weights, biases, x)
    start = result.logit - biases[-1][0]
    assert result.logit > 0
    assert result.sums[0] == pytest.approx(start)
    assert start >= result.logit
    assert result.sums == pytest.approx(np.full(len(weights) + 1, start), rel=1e-9)


def test_positive_bias_control_breaks_positivity():
    # f(x) = 1 * ReLU(1 * x + 0) + 2 = 2.5 > 0 at x = 0.5, but the relevance f - b = 0.5; with x = -1 the
    # hidden unit is off and f = 2 > 0 comes from the bias alone: nothing positive is left to explain.
    weights = [np.array([[1.0]]), np.array([[1.0]])]
    biases = [np.array([0.0]), np.array([2.0])]
    result = theory.relu_relevance_sums(weights, biases, np.array([[0.5], [-1.0]]))
    assert result.logit == pytest.approx([2.5, 2.0])
    assert result.sums == pytest.approx(np.array([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0]]))
    # A negative logit relevance despite a positive logit: output bias 3 with a negative weight.
    result = theory.relu_relevance_sums(
        [np.array([[1.0]]), np.array([[-1.0]])], [np.zeros(1), np.array([3.0])], [1.0]
    )
    assert result.logit == pytest.approx(2.0) and result.sums == pytest.approx([-1.0, -1.0, -1.0])


def test_bias_in_the_denominator_leaks_relevance():
    weights = [np.array([[1.0, 1.0]]), np.array([[1.0]])]
    biases = [np.array([-1.0]), np.array([0.0])]
    conserved = theory.relu_relevance_sums(weights, biases, [1.0, 2.0])
    leaky = theory.relu_relevance_sums(weights, biases, [1.0, 2.0], include_bias=True)
    assert conserved.sums == pytest.approx([2.0, 2.0, 2.0])
    assert leaky.sums == pytest.approx([2.0, 2.0, 3.0])  # 2 * (1 + 2) / (1 + 2 - 1)


def test_batch_matches_single_inputs_and_targets():
    weights = [np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[1.0, 1.0], [-1.0, 3.0]])]
    biases = [np.array([-0.1, -0.2]), np.array([-0.5, 0.0])]
    xs = np.array([[1.0, 0.2], [0.3, 1.0], [-1.0, -1.0]])
    batch = theory.relu_relevance_sums(weights, biases, xs)
    for row, x in enumerate(xs):
        single = theory.relu_relevance_sums(weights, biases, x)
        assert single.sums == pytest.approx(batch.sums[row])
        assert single.target == batch.target[row]
    fixed = theory.relu_relevance_sums(weights, biases, xs, target=1)
    assert fixed.target.tolist() == [1, 1, 1]
    assert batch.sums.shape == (3, 3)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.relu_relevance_sums([np.ones((2, 3))], [np.ones(3)], np.ones(3)), "biases"),
        (
            lambda: theory.relu_relevance_sums(
                [np.ones((2, 3)), np.ones((1, 4))], [np.ones(2), np.ones(1)], np.ones(3)
            ),
            "weights\\[1\\]",
        ),  # fmt: skip
        (lambda: theory.relu_relevance_sums([np.ones((1, 3))], [np.ones(1)], np.ones(4)), "x must"),
        (lambda: theory.relu_relevance_sums([np.ones((1, 3))], [np.ones(1)], [1.0, np.nan, 1.0]), "x must"),
        (lambda: theory.relu_relevance_sums([np.ones((2, 3))], [np.ones(2)], np.ones(3), target=2), "target"),
        (lambda: theory.relu_relevance_sums([], [], np.ones(3)), "weights"),
        (lambda: theory.relu_relevance_sums(np.ones((1, 3)), [np.ones(1)], np.ones(3)), "weights"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
