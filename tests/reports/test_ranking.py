"""reports.ranking: Kendall's W against a hand-computed example and Friedman's statistic (scipy), bootstrap
rank intervals against a slow per-resample loop, rank correlations against scipy.stats.spearmanr and Holm's
step-down written out."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports import ranking as rk


def _frame(values, methods=("a", "b", "c")):
    return pd.DataFrame(np.asarray(values, dtype=float), columns=list(methods))


def test_kendalls_w_against_hand_computed_example():
    # rankings (1 = best, lower is better) of three images: rank sums R = (4, 6, 8), mean 6, S = 8,
    # W = 12 S / (n^2 (k^3 - k)) = 96 / 216 = 4/9; chi2 = n (k - 1) W = 8/3; p = exp(-chi2 / 2) for 2 dof
    scores = _frame([[1, 2, 3], [1, 3, 2], [2, 1, 3]])
    result = rk.kendalls_w(scores, higher_is_better=False)
    assert result.w == pytest.approx(4 / 9)
    assert result.chi2 == pytest.approx(8 / 3)
    assert result.p_value == pytest.approx(np.exp(-4 / 3))
    assert (result.dof, result.images, result.methods) == (2, 3, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kendalls_w_against_friedman_statistic_with_ties(seed):
    gen = np.random.default_rng(seed)
    values = gen.integers(0, 4, size=(12, 5)).astype(float) + np.arange(5) * 0.5 * seed  # many ties
    friedman = stats.friedmanchisquare(*values.T)
    result = rk.kendalls_w(_frame(values, "abcde"))
    assert result.w == pytest.approx(friedman.statistic / (12 * 4), rel=1e-12)
    assert result.p_value == pytest.approx(friedman.pvalue, rel=1e-9)


def test_kendalls_w_is_one_for_perfect_agreement_and_ignores_direction():
    scores = _frame([[3, 2, 1], [30, 20, 10], [0.3, 0.2, 0.1]])
    assert rk.kendalls_w(scores).w == pytest.approx(1.0)
    assert rk.kendalls_w(scores, higher_is_better=False).w == pytest.approx(1.0)


def test_bootstrap_intervals_against_slow_loop():
    gen = np.random.default_rng(4)
    scores = _frame(gen.normal([0.0, 0.1, 0.5], 0.3, size=(20, 3)))
    got = rk.bootstrap_rank_intervals(scores, higher_is_better=True, rng=7, resamples=300)
    slow_gen = np.random.default_rng(7)
    indices = slow_gen.integers(0, 20, size=(300, 20))  # one block: the same draws as the library
    ranks = np.array([stats.rankdata(-scores.to_numpy()[row].mean(axis=0)) for row in indices])
    assert np.allclose(got["ci_low"], np.quantile(ranks, 0.025, axis=0))
    assert np.allclose(got["ci_high"], np.quantile(ranks, 0.975, axis=0))
    assert np.allclose(got["p_best"], (ranks == 1).mean(axis=0))
    assert got["rank"].tolist() == stats.rankdata(-scores.mean().to_numpy()).tolist()
    assert got["rank"].iloc[2] == 1.0


def test_bootstrap_interval_is_a_point_for_a_dominating_method_and_seeded():
    scores = _frame(np.column_stack([np.arange(10.0), np.arange(10.0) + 100, np.arange(10.0) - 100]))
    got = rk.bootstrap_rank_intervals(scores, higher_is_better=True, rng=0, resamples=200)
    assert got["ci_low"].tolist() == got["ci_high"].tolist() == [2.0, 1.0, 3.0]
    again = rk.bootstrap_rank_intervals(scores, higher_is_better=True, rng=0, resamples=200)
    pd.testing.assert_frame_equal(got, again)


def test_rank_table_and_pairwise_correlations_against_scipy_spearmanr_and_holm():
    gen = np.random.default_rng(5)
    methods = list("abcdef")
    base = gen.normal(size=(15, 6)) + np.arange(6)
    tests = {
        "up": rk.MethodScores(_frame(base, methods), True),
        "down": rk.MethodScores(_frame(-base + gen.normal(0, 0.5, (15, 6)), methods), False),
        "noise": rk.MethodScores(_frame(gen.normal(size=(15, 6)), methods), True),
    }
    table = rk.rank_table(tests)
    assert table.loc["f", "up"] == 1.0 and table.loc["a", "up"] == 6.0
    pairs = rk.pairwise_rank_correlations(table)
    for _, row in pairs.iterrows():
        expected = stats.spearmanr(table[row["test_a"]], table[row["test_b"]])
        assert row["rho"] == pytest.approx(expected.statistic)
        assert row["p_value"] == pytest.approx(expected.pvalue)
    # Holm: sorted p times (m, m-1, ...), running maximum, capped at 1
    order = np.argsort(pairs["p_value"].to_numpy())
    scaled = np.minimum(1, np.maximum.accumulate(pairs["p_value"].to_numpy()[order] * np.arange(3, 0, -1)))
    assert np.allclose(pairs["p_holm"].to_numpy()[order], scaled)


def test_ranking_reliability_collects_every_table_and_drops_incomplete_images():
    scores = _frame([[1, 2, 3], [1, 2, np.nan], [2, 1, 3], [1, 3, 2]])
    tests = {"t1": rk.MethodScores(scores, False), "t2": rk.MethodScores(scores * -1, True)}
    out = rk.ranking_reliability(tests, rng=1, resamples=50)
    assert set(out) == {"intervals", "concordance", "ranks", "correlations"}
    assert (out["concordance"]["images"] == 3).all()
    assert out["ranks"]["t1"].equals(out["ranks"]["t2"])
    assert len(out["intervals"]) == 6


def test_scores_from_long_round_trip():
    long = pd.DataFrame({"test": ["x"] * 4 + ["y"] * 4, "image": [0, 0, 1, 1] * 2,
                         "method": ["m", "n"] * 4, "value": [1.0, 2, 3, 4, 5, 6, 7, 8]})
    tests = rk.scores_from_long(long, {"x": True, "y": False})
    assert tests["y"].scores.loc[1, "n"] == 8 and tests["y"].higher_is_better is False


@pytest.mark.parametrize(("call", "message"), [
    (lambda: rk.kendalls_w(_frame([[1, 2, 3]])), "at least 2 images"),
    (lambda: rk.kendalls_w(pd.DataFrame({"a": [1.0, 2.0]})), "at least 2 methods"),
    (lambda: rk.kendalls_w(_frame([[1, 2, np.inf], [1, 2, 3]])), "finite"),
    (lambda: rk.method_ranks(_frame([[1, 2, 3], [1, 2, 3]]), higher_is_better="yes"), "higher_is_better"),
    (lambda: rk.bootstrap_rank_intervals(_frame([[1, 2, 3], [2, 1, 3]]), higher_is_better=True, rng=0,
                                         resamples=0), "resamples"),
    (lambda: rk.rank_table({}), "non-empty mapping"),
    (lambda: rk.scores_from_long(pd.DataFrame({"test": ["x"]}), {"x": True}), "lacks the columns"),
])
def test_invalid_inputs_raise_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
