"""simulations.positive_dominance: layer sums of random ReLU networks against section G."""

import numpy as np
import pytest

import theory
from simulations import positive_dominance as pd_

SMALL = pd_.Config(draws=150, inputs_per_network=16)


@pytest.fixture(scope="module")
def table():
    return pd_.run(SMALL, rng=9)


def test_batched_relevance_sums_against_theory():
    gen = np.random.default_rng(0)
    weights, biases = pd_.random_networks(gen, 3, (5, 7, 4, 1), 0.5, "non-positive")
    x = gen.standard_normal((3, 6, 5))
    sums, logit = pd_.relevance_sums(weights, biases, x)
    for k in range(3):
        ref = theory.relu_relevance_sums([w[k] for w in weights], [b[k] for b in biases], x[k])
        assert np.allclose(sums[k], ref.sums) and np.allclose(logit[k], ref.logit)


def test_non_positive_biases_keep_every_layer_positive(table):
    rows = table[table["biases"] == "non-positive"]
    assert rows["agree"].all()
    assert (rows.loc[rows["quantity"] == "all-layer-sums-positive", "estimate"] == 1).all()


def test_positive_bias_control_breaks_it(table):
    rows = table[table["biases"] == "positive"].set_index("quantity")
    # Wilson interval at level 0.999 entirely below 1: a measurable share of negative explanations.
    assert rows.loc["all-layer-sums-positive", "ci_high"] < 1
    assert rows.loc["max-relative-conservation-error", "agree"]


def test_layer_sizes_must_end_in_one_logit():
    with pytest.raises(ValueError, match="layer_sizes must run from the input size to one logit"):
        pd_.Config(layer_sizes=(4, 3))
