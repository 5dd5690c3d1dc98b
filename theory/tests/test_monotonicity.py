"""Section F: single-neuron attributions against brute force over permutations and finite differences;
the monotonicity property by hypothesis; the plain gradient as the counterexample."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import theory

# No deadline and no too_slow health check: CI shares 2 cores, timing says nothing about correctness.
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACTIVATION_FUNCTIONS = {
    "relu": lambda z: max(z, 0.0),
    "identity": lambda z: z,
    "softplus": lambda z: math.log1p(math.exp(-abs(z))) + max(z, 0.0),
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)),
}


def _shapley_by_permutations(w, x, b, activation):
    """phi_i = average over all d! orders of the marginal gain of adding i to its predecessors."""
    g = ACTIVATION_FUNCTIONS[activation]
    d = len(w)
    phi = [0.0] * d
    orders = list(itertools.permutations(range(d)))
    for order in orders:
        total = b
        for i in order:
            before = g(total)
            total += w[i] * x[i]
            phi[i] += g(total) - before
    return [p / len(orders) for p in phi]


@pytest.mark.parametrize("activation", theory.ACTIVATIONS)
@pytest.mark.parametrize(
    ("w", "x", "b"),
    [
        ([1.0, 2.0, -1.0, 0.5], [3.0, 1.0, 1.0, 2.0], 0.0),
        ([0.3, -0.7, 1.1, 0.2, -0.4, 0.9], [1.0, 2.0, -0.5, 4.0, 1.0, 0.3], -0.8),
        ([2.0, 1.0, 1.0], [1.0, 2.0, -1.0], 0.5),
    ],
)
def test_shapley_against_brute_force_over_permutations(w, x, b, activation):
    got = theory.shapley_neuron(w, x, b, activation)
    assert got == pytest.approx(_shapley_by_permutations(w, x, b, activation), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("activation", theory.ACTIVATIONS)
def test_gradients_against_central_differences(activation):
    g = ACTIVATION_FUNCTIONS[activation]
    w = np.array([0.7, -1.2, 0.4])
    x = np.array([1.5, -0.5, 2.0])
    b = 0.3  # z = 2.85, far from the ReLU kink
    h = 1e-6
    numeric = []
    for i in range(3):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numeric.append((g(float(w @ up + b)) - g(float(w @ down + b))) / (2 * h))
    numeric = np.array(numeric)
    assert theory.gradient_neuron(w, x, b, activation) == pytest.approx(numeric, rel=1e-7)
    assert theory.gradient_x_input_neuron(w, x, b, activation) == pytest.approx(numeric * x, rel=1e-7)


def test_relu_neuron_that_is_off_gets_no_gradient():
    assert np.all(theory.gradient_x_input_neuron([1.0, 1.0], [-1.0, 0.5], 0.0, "relu") == 0)


neurons = st.integers(2, 7).flatmap(
    lambda d: st.tuples(
        hnp.arrays(float, d, elements=st.floats(-5, 5)),
        hnp.arrays(float, d, elements=st.floats(-5, 5)),
        st.floats(-5, 5),
        st.sampled_from(theory.ACTIVATIONS),
    )
)


@PROPERTY
@given(neurons, st.floats(0, 5), st.floats(-5, 5))
def test_gradient_x_input_shapley_and_lrp_beta_are_positively_monotone(neuron, beta, relevance):
    w, x, b, activation = neuron
    c = w * x
    assert theory.is_positively_monotone(c, theory.gradient_x_input_neuron(w, x, b, activation))
    # Shapley values are sums of differences of f: their rounding scales with |f|, not with |phi|.
    scale = 1e-12 * (1 + abs(b) + np.abs(c).sum())
    assert theory.is_positively_monotone(c, theory.shapley_neuron(w, x, b, activation), atol=scale)
    assert theory.is_positively_monotone(c, theory.lrp_beta_single_neuron(w, x, relevance, beta))


@PROPERTY
@given(neurons)
def test_shapley_values_are_efficient(neuron):
    w, x, b, activation = neuron
    g = ACTIVATION_FUNCTIONS[activation]
    phi = theory.shapley_neuron(w, x, b, activation)
    assert phi.sum() == pytest.approx(g(float(w @ x + b)) - g(b), rel=1e-9, abs=1e-9)


def test_plain_gradient_is_not_monotone():
    # w x = (3, 2) > 0 but the gradient is w = (1, 2): the smaller contribution gets the larger score.
    w, x = np.array([1.0, 2.0]), np.array([3.0, 1.0])
    assert not theory.is_positively_monotone(w * x, theory.gradient_neuron(w, x))
    assert theory.is_positively_monotone(w * x, theory.gradient_x_input_neuron(w, x))


def _predicate_by_double_loop(c, r):
    return all(abs(r[i]) >= abs(r[j]) for i in range(len(c)) for j in range(len(c)) if c[i] >= c[j] > 0)


@PROPERTY
@given(st.integers(1, 8).flatmap(lambda d: st.tuples(
    hnp.arrays(float, d, elements=st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0])),
    hnp.arrays(float, d, elements=st.sampled_from([-2.0, -1.0, 0.0, 1.0, 3.0])),
)))  # fmt: skip
def test_predicate_against_double_loop(pair):
    c, r = pair
    assert bool(theory.is_positively_monotone(c, r, rtol=0.0)) == _predicate_by_double_loop(c, r)


def test_batched_neurons():
    w = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    x = np.ones(3)
    phi = theory.shapley_neuron(w, x, b=np.array([0.0, -1.0]), activation="relu")
    assert phi.shape == (2, 3)
    assert phi[1] == pytest.approx(_shapley_by_permutations([3.0, 2.0, 1.0], [1.0] * 3, -1.0, "relu"))
    assert theory.is_positively_monotone(w * x, phi).tolist() == [True, True]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.gradient_neuron([1.0], [1.0], activation="tanh"), "activation"),
        (lambda: theory.shapley_neuron(np.ones(21), np.ones(21)), "at most 20"),
        (lambda: theory.shapley_neuron([1.0, np.nan], [1.0, 1.0]), "w"),
        (lambda: theory.gradient_x_input_neuron([1.0, 2.0], [1.0, 2.0, 3.0]), "w"),
        (lambda: theory.gradient_x_input_neuron([1.0, 2.0], [1.0, 2.0], b=np.inf), "b"),
        (lambda: theory.lrp_beta_single_neuron([1.0], [1.0], 1.0, -1.0), "beta"),
        (lambda: theory.is_positively_monotone([1.0, 2.0], [1.0, np.nan]), "attributions"),
        (lambda: theory.is_positively_monotone([1.0, 2.0], [1.0, 2.0, 3.0]), "contributions"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_shapley_exact_where_f_hardly_changes():
    # Inputs far below the rounding of f(S) = relu(1 + ...): every marginal is exactly 0. A signed weighted
    # sum of f (instead of differences) leaves ~1e-16 noise here and breaks the monotonicity predicate.
    phi = theory.shapley_neuron(np.ones(5), np.full(5, 8.2e-38), 1.0, "relu")
    assert np.all(phi == 0)
    assert theory.is_positively_monotone(np.full(5, 8.2e-38), phi, rtol=0.0)
