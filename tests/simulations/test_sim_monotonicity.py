"""simulations.monotonicity: section F holds in every draw for three methods and fails for the gradient."""

import numpy as np
import pytest

from simulations import monotonicity as mo

SMALL = mo.Config(draws=1500, inputs=(3, 6))


@pytest.fixture(scope="module")
def table():
    return mo.run(SMALL, rng=8)


def test_proven_methods_never_violate(table):
    proven = table[table["method"] != "gradient"]
    assert len(proven) == 3 * 2 * 4
    assert (proven["estimate"] == 0).all() and proven["agree"].all()


def test_plain_gradient_violates_in_a_measurable_fraction(table):
    gradient = table[table["method"] == "gradient"]
    # Wilson interval at level 0.999 strictly above 0 (relation "greater"); false-failure < 1e-3 a row.
    assert (gradient["ci_low"] > 0).all() and gradient["agree"].all()


def test_gradient_against_a_hand_made_counterexample():
    # w x = (10, 2) > 0 but |gradient| = (1, 2): the larger contribution gets the smaller attribution.
    w, x = np.array([[1.0, 2.0]]), np.array([[10.0, 1.0]])
    r = mo.attributions("gradient", w, x, np.array([0.0]), "relu", 1.0)
    assert np.allclose(r, [[1.0, 2.0]])


def test_verdict_fails_when_a_proven_method_is_replaced_by_the_gradient(monkeypatch):
    original = mo.attributions
    monkeypatch.setattr(mo, "attributions", lambda m, *a: original("gradient" if m == "shapley" else m, *a))
    table = mo.run(mo.Config(draws=500, inputs=(6,), activations=("identity",)), rng=1)
    assert not table.loc[table["method"] == "shapley", "agree"].iloc[0]


def test_too_many_inputs_for_exact_shapley_is_a_clear_error():
    with pytest.raises(ValueError, match="inputs must lie in 2..16"):
        mo.Config(inputs=(40,))
