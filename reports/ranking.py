"""How reliable is each test's ranking of the methods, and do the tests agree? (report section
"What each test rewards").

Input per test: a score table, one row per image and one column per method, and the test's direction
(``higher_is_better``). Only images scored by every method (no NaN) are used, so every rank compares the
same images. A method's rank in a test is the rank of its mean score over those images (1 = best; ties
share the average rank, as ``scipy.stats.rankdata``).

* :func:`bootstrap_rank_intervals`: percentile intervals of each method's rank, resampling images with
  replacement (keyword-only ``rng``).
* :func:`kendalls_w`: Kendall's coefficient of concordance W of the per-image rankings, with the tie
  correction, its chi-square statistic n (k - 1) W (which equals Friedman's statistic) and p-value.
* :func:`rank_table` and :func:`pairwise_rank_correlations`: a method-by-test rank table and the Spearman
  correlation (scipy.stats.spearmanr) of every pair of tests over the methods, with Holm-adjusted p-values
  (statsmodels).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

__all__ = ["KendallW", "MethodScores", "bootstrap_rank_intervals", "complete_scores", "kendalls_w",
           "method_ranks", "pairwise_rank_correlations", "rank_table", "ranking_reliability",
           "scores_from_long"]


@dataclass(frozen=True)
class MethodScores:
    """``scores``: DataFrame (images x methods); ``higher_is_better``: the test's direction."""

    scores: pd.DataFrame
    higher_is_better: bool


@dataclass(frozen=True)
class KendallW:
    """Kendall's W in [0, 1], chi2 = n (k - 1) W with k - 1 degrees of freedom, its p-value, n and k."""

    w: float
    chi2: float
    dof: int
    p_value: float
    images: int
    methods: int


def complete_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows (images) without NaN, as float; ValueError unless >= 2 methods and >= 2 such images."""
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(f"scores must be a DataFrame (images x methods), got {type(scores).__name__}")
    if scores.shape[1] < 2:
        raise ValueError(f"scores must have at least 2 methods (columns), got {list(scores.columns)}")
    try:
        values = scores.astype(float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"scores must be numeric: {error}") from None
    if np.isinf(values.to_numpy()).any():
        raise ValueError("scores must be finite or NaN (missing), got infinity")
    values = values.dropna(axis=0, how="any")
    if len(values) < 2:
        raise ValueError(f"scores must have at least 2 images scored by every method, got {len(values)}")
    return values


def _oriented(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise ValueError(f"higher_is_better must be True or False, got {higher_is_better!r}")
    return -values if higher_is_better else values  # rank 1 = best


def method_ranks(scores: pd.DataFrame, *, higher_is_better: bool) -> pd.Series:
    """Rank (1 = best, ties averaged) of each method's mean score over the complete images."""
    values = complete_scores(scores)
    ranks = stats.rankdata(_oriented(values.mean().to_numpy(), higher_is_better))
    return pd.Series(ranks, index=values.columns, name="rank")


def bootstrap_rank_intervals(scores: pd.DataFrame, *, higher_is_better: bool, rng, resamples: int = 2000,
                             level: float = 0.95) -> pd.DataFrame:
    """Per method: ``rank`` (of the mean score), ``mean_score``, and the bootstrap percentile interval
    ``ci_low``..``ci_high`` of the rank over ``resamples`` resamples of the images (with replacement),
    plus ``p_best``, the fraction of resamples in which the method ranks first (ties share it)."""
    values = complete_scores(scores)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not isinstance(level, float) or not 0 < level < 1:
        raise ValueError(f"level must be a float in (0, 1), got {level!r}")
    gen = np.random.default_rng(rng)
    matrix = _oriented(values.to_numpy(), higher_is_better)
    n = len(matrix)
    ranks = np.empty((resamples, matrix.shape[1]))
    per_block = max(1, 2**22 // (n * matrix.shape[1]))  # bounded memory for many images
    for first in range(0, resamples, per_block):
        count = min(per_block, resamples - first)
        means = matrix[gen.integers(0, n, size=(count, n))].mean(axis=1)
        ranks[first:first + count] = stats.rankdata(means, axis=1)
    alpha = (1 - level) / 2
    return pd.DataFrame({
        "method": values.columns,
        "rank": method_ranks(values, higher_is_better=higher_is_better).to_numpy(),
        "mean_score": values.mean().to_numpy(),
        "ci_low": np.quantile(ranks, alpha, axis=0),
        "ci_high": np.quantile(ranks, 1 - alpha, axis=0),
        "p_best": (ranks == ranks.min(axis=1, keepdims=True)).mean(axis=0),
        "images": n,
        "level": level,
    })


def kendalls_w(scores: pd.DataFrame, *, higher_is_better: bool = True) -> KendallW:
    """Kendall's W of the methods' rankings across images (images are the raters), tie-corrected:

    W = 12 S / (n^2 (k^3 - k) - n T), S = sum_j (R_j - n (k + 1) / 2)^2, R_j the rank sum of method j over
    the n images, T = sum over images of sum (t^3 - t) over tie groups of size t. chi2 = n (k - 1) W on
    k - 1 degrees of freedom. The direction does not change W (reversing every ranking keeps S).
    """
    values = complete_scores(scores)
    ranks = stats.rankdata(_oriented(values.to_numpy(), higher_is_better), axis=1)
    n, k = ranks.shape
    spread = np.sum((ranks.sum(axis=0) - n * (k + 1) / 2) ** 2)
    ties = 0.0
    for row in ranks:
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts.astype(float) ** 3 - counts))
    denominator = n**2 * (k**3 - k) - n * ties
    if denominator <= 0:
        warnings.warn("every image ties all methods: Kendall's W is undefined (NaN)", RuntimeWarning,
                      stacklevel=2)
        return KendallW(math.nan, math.nan, k - 1, math.nan, n, k)
    w = float(12 * spread / denominator)
    chi2 = n * (k - 1) * w
    return KendallW(w, chi2, k - 1, float(stats.chi2.sf(chi2, k - 1)), n, k)


def _tests(tests: Mapping[str, MethodScores]) -> Mapping[str, MethodScores]:
    if not isinstance(tests, Mapping) or not tests:
        raise ValueError("tests must be a non-empty mapping of test name -> MethodScores")
    for name, test in tests.items():
        if not isinstance(test, MethodScores):
            raise ValueError(f"tests[{name!r}] must be a MethodScores, got {type(test).__name__}")
    return tests


def rank_table(tests: Mapping[str, MethodScores]) -> pd.DataFrame:
    """Methods x tests table of :func:`method_ranks`; a method missing from a test gets NaN there."""
    columns = {name: method_ranks(test.scores, higher_is_better=test.higher_is_better)
               for name, test in _tests(tests).items()}
    return pd.DataFrame(columns)


def pairwise_rank_correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation (scipy.stats.spearmanr) of every pair of tests (columns of a :func:`rank_table`)
    over the methods ranked by both: ``test_a``, ``test_b``, ``rho``, ``p_value``, ``p_holm`` (Holm over
    all pairs, statsmodels), ``methods``. Pairs with fewer than 3 common methods get NaN."""
    rows = []
    for a, b in itertools.combinations(table.columns, 2):
        both = table[[a, b]].dropna()
        if len(both) < 3 or both[a].nunique() < 2 or both[b].nunique() < 2:
            rho, p = math.nan, math.nan
        else:
            rho, p = stats.spearmanr(both[a], both[b])
        rows.append({"test_a": a, "test_b": b, "rho": float(rho), "p_value": float(p), "methods": len(both)})
    out = pd.DataFrame(rows, columns=["test_a", "test_b", "rho", "p_value", "methods"])
    out["p_holm"] = math.nan
    finite = out["p_value"].notna()
    if finite.any():
        out.loc[finite, "p_holm"] = multipletests(out.loc[finite, "p_value"], method="holm")[1]
    return out[["test_a", "test_b", "rho", "p_value", "p_holm", "methods"]]


def ranking_reliability(tests: Mapping[str, MethodScores], *, rng, resamples: int = 2000,
                        level: float = 0.95) -> dict[str, pd.DataFrame]:
    """Everything above for a set of tests: ``intervals`` (bootstrap rank intervals, one row per test and
    method), ``concordance`` (Kendall's W per test), ``ranks`` (method x test) and ``correlations``."""
    tests = _tests(tests)
    children = np.random.default_rng(rng).spawn(len(tests))
    intervals, concordance = [], []
    for (name, test), child in zip(tests.items(), children, strict=True):
        part = bootstrap_rank_intervals(test.scores, higher_is_better=test.higher_is_better, rng=child,
                                        resamples=resamples, level=level)
        intervals.append(part.assign(test=name))
        w = kendalls_w(test.scores, higher_is_better=test.higher_is_better)
        concordance.append({"test": name, **{f: getattr(w, f) for f in KendallW.__dataclass_fields__}})
    table = rank_table(tests)
    return {"intervals": pd.concat(intervals, ignore_index=True), "concordance": pd.DataFrame(concordance),
            "ranks": table, "correlations": pairwise_rank_correlations(table)}


def scores_from_long(table: pd.DataFrame, directions: Mapping[str, bool], *, test: str = "test",
                     image: str = "image", method: str = "method",
                     score: str = "value") -> dict[str, MethodScores]:
    """``{test: MethodScores}`` from a tidy table with one row per (test, image, method) score; ``directions``
    maps each test to ``higher_is_better``. Duplicate (test, image, method) rows raise."""
    missing = [c for c in (test, image, method, score) if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; it has {list(table.columns)}")
    if table.duplicated([test, image, method]).any():
        raise ValueError("table has more than one score for some (test, image, method)")
    unknown = sorted(set(table[test]) - set(directions))
    if unknown:
        raise ValueError(f"directions lacks the tests {unknown}")
    return {name: MethodScores(part.pivot(index=image, columns=method, values=score), bool(directions[name]))
            for name, part in table.groupby(test, sort=False)}
