"""Mutation tests of section 1's verdicts: a closed form perturbed by 1% (the relevance sum by 30%) must turn
the report's verdict to "disagrees"; the untouched simulations must give "agrees". The oracle is the
simulation itself run on the perturbed closed form (seed eq. 1-2, sections F, G, I)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import simulations.adaptive_beta as adaptive_beta_sim
import simulations.cauchy_overtake as cauchy_sim
import simulations.monotonicity as monotonicity_sim
import simulations.positive_dominance as dominance_sim
import theory
from reports import theorems
from reports.inputs import SimulationResult


def _verdict(key: str, table: pd.DataFrame) -> str:
    result = next(r for r in theorems.RESULTS if r.key == key)
    overview = theorems.overview({result.simulation: SimulationResult(result.simulation, table, {})}, None)
    return overview.set_index("result").loc[result.title, "verdict"]


def _adaptive_beta_table():
    config = adaptive_beta_sim.Config(draws=4_000)
    return adaptive_beta_sim.run(config, rng=np.random.default_rng(0))


def _dominance_table():
    return dominance_sim.run(dominance_sim.Config(draws=100), rng=np.random.default_rng(0))


def _monotonicity_table():
    config = monotonicity_sim.Config.quick()
    return monotonicity_sim.run(config, rng=np.random.default_rng(0))


def test_untouched_exact_closed_forms_agree():
    assert _verdict("eq-1-2", _adaptive_beta_table()) == theorems.AGREES
    assert _verdict("section-G", _dominance_table()) == theorems.AGREES


def test_adaptive_beta_off_by_one_percent_disagrees(monkeypatch):
    exact = theory.adaptive_beta
    monkeypatch.setattr(adaptive_beta_sim.theory, "adaptive_beta", lambda p, n, b: 1.01 * exact(p, n, b))
    table = _adaptive_beta_table()
    assert _verdict("eq-1-2", table) == theorems.DISAGREES


@pytest.mark.parametrize("error", [0.01, 0.30])
def test_one_broken_identity_among_twenty_settings_disagrees(monkeypatch, error):
    # The audit's case: LRP-beta given a beta too large for the uncapped neurons with 256 inputs only breaks
    # one exact row (eq. 1's ratio at 256 inputs) of 20; the binomial rule used to excuse it as chance.
    exact = theory.lrp_beta_neuron

    def wrong(contributions, relevance, beta):
        if np.shape(contributions)[-1] == 256:
            beta = np.where(np.asarray(beta) < 3.0, (1 + error) * np.asarray(beta), beta)
        return exact(contributions, relevance, beta)

    monkeypatch.setattr(adaptive_beta_sim.theory, "lrp_beta_neuron", wrong)
    table = _adaptive_beta_table()
    misses = table[table["agree"].astype(str) == "False"]
    assert set(misses["inputs"]) == {256} and "max-ratio-minus-eq1" in set(misses["quantity"])
    assert _verdict("eq-1-2", table) == theorems.DISAGREES
    assert set(theorems.judging_rule(misses)) == {theorems.EXACT_RULE}


def test_relevance_sum_off_by_thirty_percent_disagrees(monkeypatch):
    exact = dominance_sim.relevance_sums

    def wrong(weights, biases, x):
        sums, logit = exact(weights, biases, x)
        sums = sums.copy()
        sums[..., -1] *= 1.3  # the input layer's relevance sum 30% too large
        return sums, logit

    monkeypatch.setattr(dominance_sim, "relevance_sums", wrong)
    assert _verdict("section-G", _dominance_table()) == theorems.DISAGREES


def test_a_single_monotonicity_counterexample_disagrees(monkeypatch):
    # Section F holds for every input for gradient x input: one violating neuron refutes it.
    exact = monotonicity_sim.attributions

    def wrong(method, w, x, b, activation, lrp_beta):
        values = np.array(exact(method, w, x, b, activation, lrp_beta), dtype=float, copy=True)
        if method == "gradient-x-input":
            values[..., 0] *= 1.01
            values[..., 0] += 1.0  # make input 0 the largest in |R| whatever its contribution
        return values

    monkeypatch.setattr(monotonicity_sim, "attributions", wrong)
    table = _monotonicity_table()
    assert _verdict("section-F", table) == theorems.DISAGREES


def test_sampled_rows_keep_the_binomial_rule():
    rows = pd.DataFrame(dict(quantity="overtake-sum", estimate=[0.2, 0.3], se=0.01, ci_low=[0.18, 0.28],
                             ci_high=[0.22, 0.32], theory=0.2, agree=[True, False], level=0.5,
                             relation="equal"))
    assert set(theorems.judging_rule(rows)) == {theorems.BINOMIAL_RULE}
    # one miss in two settings at level 0.5: chance P = 0.75, excused
    assert theorems.monte_carlo_summary(rows)[1] == theorems.AGREES


def test_overtake_probability_off_by_one_percent_is_caught_with_enough_draws(monkeypatch):
    # A sampled closed form: 1% of P = 0.25 is 8 standard errors at 2e6 draws, so both rows of eq. 27 miss.
    exact = theory.overtake_probability
    monkeypatch.setattr(cauchy_sim.theory, "overtake_probability",
                        lambda *a, **k: 1.01 * exact(*a, **k))
    config = cauchy_sim.Config(draws=2_000_000, ks=(1.0,), n_small=(1,), n_large=(1,), ratio_gammas=(1.0,))
    table = cauchy_sim.run(config, rng=np.random.default_rng(0))
    perturbed = table[table["quantity"].isin(["overtake-sum", "overtake-average"])]
    assert not perturbed["agree"].astype(bool).any()
    assert _verdict("theorem-2", table) != theorems.AGREES


def test_section_i_monte_carlo_on_real_activations_is_labelled_a_consistency_check():
    # the closed form's parameters come from the activations the Monte Carlo draws on: the row says so
    rows = pd.DataFrame(dict(quantity="overtake-sum", estimate=[0.2], se=0.01, ci_low=[0.18], ci_high=[0.22],
                             theory=0.2, agree=[True], level=0.999, relation="equal"))
    overview = theorems.overview({}, None, overtaking_mc=rows).set_index("result")
    text = overview.loc["Theorem 2 on trained networks (section I)", "monte_carlo"]
    assert text.startswith("consistency check, not evidence about the network")
    others = overview.drop("Theorem 2 on trained networks (section I)")["monte_carlo"]
    assert not others.str.contains("consistency check").any()
