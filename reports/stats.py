"""Paired comparisons of attribution methods by faithfulness area (report section 3).

Every image is scored by every method, so methods are compared on the per-image differences of their
areas: a Wilcoxon signed-rank test (scipy) for significance, a paired t interval for the mean difference
(statsmodels), and Holm's correction (statsmodels) over all pairs of a model and patch size.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

GROUP = ["model", "patch_size"]


def rank_methods(area: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Methods ranked by mean area per model and patch size (lower is better), with a t interval.

    Returns one row per (model, patch_size, method): ``rank`` (1 = best), ``mean_area``, ``ci_low``,
    ``ci_high`` and ``images``.
    """
    _check_confidence(confidence)
    rows = []
    for keys, group in area.groupby(GROUP + ["method"], sort=True):
        values = group["area"].to_numpy(float)
        low, high = mean_interval(values, confidence)
        rows.append(
            dict(
                zip(GROUP + ["method"], keys, strict=True),
                mean_area=values.mean(),
                ci_low=low,
                ci_high=high,
                images=len(values),
            )
        )
    table = pd.DataFrame(rows, columns=GROUP + ["method", "mean_area", "ci_low", "ci_high", "images"])
    table["rank"] = table.groupby(GROUP)["mean_area"].rank(method="min").astype(int)
    return table.sort_values(GROUP + ["rank"]).reset_index(drop=True)


def paired_tests(area: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """All pairs of methods per model and patch size, compared on the images both scored.

    Returns one row per pair: ``method_a``, ``method_b``, ``mean_difference`` (a minus b; negative means
    a is better), its ``ci_low``/``ci_high`` (paired t, statsmodels), ``images``, the Wilcoxon ``p_value``,
    the Holm-corrected ``p_holm`` within the (model, patch_size) group, and ``significant`` at ``alpha``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    frames = []
    for keys, group in area.groupby(GROUP, sort=True):
        wide = group.pivot_table(index="image", columns="method", values="area", aggfunc="mean")
        rows = [_compare(wide, a, b, 1.0 - alpha) for a, b in itertools.combinations(sorted(wide.columns), 2)]
        if not rows:
            continue
        frame = pd.DataFrame(rows)
        tested = frame["p_value"].notna().to_numpy()
        frame["p_holm"] = np.nan
        if tested.any():
            frame.loc[tested, "p_holm"] = multipletests(frame.loc[tested, "p_value"], method="holm")[1]
        frame["significant"] = frame["p_holm"] < alpha
        for name, value in zip(GROUP, keys, strict=True):
            frame.insert(0, name, value)
        frames.append(frame)
    columns = GROUP + [
        "method_a",
        "method_b",
        "mean_difference",
        "ci_low",
        "ci_high",
        "images",
        "p_value",
        "p_holm",
        "significant",
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _compare(wide: pd.DataFrame, method_a: str, method_b: str, confidence: float) -> dict:
    pair = wide[[method_a, method_b]].dropna()
    difference = (pair[method_a] - pair[method_b]).to_numpy(float)
    low, high = mean_interval(difference, confidence)
    return dict(
        method_a=method_a,
        method_b=method_b,
        mean_difference=difference.mean() if difference.size else np.nan,
        ci_low=low,
        ci_high=high,
        images=difference.size,
        p_value=_wilcoxon(difference),
    )


def _wilcoxon(difference: np.ndarray) -> float:
    # Fewer than 2 pairs, or all differences zero, leave the test undefined: report no p-value.
    if difference.size < 2 or np.all(difference == 0):
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy warns about exact p-values with ties
        return float(scipy_stats.wilcoxon(difference).pvalue)


def mean_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The t interval (statsmodels) of the mean of ``values``; (mean, mean) for < 2 or equal values."""
    if values.size < 2 or np.all(values == values[0]):
        centre = values.mean() if values.size else np.nan
        return centre, centre
    return tuple(float(v) for v in DescrStatsW(values).tconfint_mean(alpha=1.0 - confidence))


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
