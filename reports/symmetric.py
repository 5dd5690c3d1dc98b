"""Symmetric faithfulness in the report (Blücher et al. 2024, Brocki and Chung 2022).

Beside the most-relevant-first (MoRF) area of section 3, the least-relevant-first (LeRF) area of the same
images, settings and methods (``faithfulness_lerf_area.csv``), their gap LeRF - MoRF
(``empirical.experiments.faithfulness.order_gap``: positive where the map orders patches better than its
reverse, which a perturbation artefact hurting both orders alike cannot fake) and each area relative to the
random-uniform control's on the same image (``relative_to_control``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from empirical.results import order_gap, relative_to_control
from reports import figures, stats
from reports.render import Figure, Note, Paragraph, Table

__all__ = ["CONTROL", "symmetric_blocks", "symmetric_table"]

CONTROL = "random-uniform"


def symmetric_table(morf: pd.DataFrame, lerf: pd.DataFrame, control: str = CONTROL) -> pd.DataFrame:
    """Per (model, patch_size, method): mean MoRF and LeRF areas, the mean gap with its 95% t interval over
    images, and the mean per-image ratio of each area to the control's (NaN without a control); sorted by
    gap, largest first."""
    keys = ["model", "patch_size", "method"]
    gap = order_gap(morf, lerf)
    joined = gap.merge(morf.rename(columns={"area": "morf"}), on=[*keys, "image"]).merge(
        lerf.rename(columns={"area": "lerf"}), on=[*keys, "image"])
    has_control = control in set(morf["method"]) and control in set(lerf["method"])
    if has_control:
        for name, table in (("morf", morf), ("lerf", lerf)):
            ratio = relative_to_control(table, control)[[*keys, "image", "relative"]]
            joined = joined.merge(ratio.rename(columns={"relative": f"{name}_vs_control"}),
                                  on=[*keys, "image"])
    rows = []
    for key, part in joined.groupby(keys, sort=True):
        gaps = part["gap"].dropna().to_numpy(float)
        gap_mean = float(gaps.mean()) if gaps.size else np.nan
        # one image gives no interval (NaN), not the point (mean, mean) that mean_interval returns
        low, high = stats.mean_interval(gaps, 0.95) if gaps.size >= 2 else (np.nan, np.nan)
        row = dict(zip(keys, key, strict=True))
        row.update(morf_area=part["morf"].mean(), lerf_area=part["lerf"].mean(), gap=gap_mean, gap_ci_low=low,
                   gap_ci_high=high)
        row.update(morf_vs_control=part["morf_vs_control"].mean() if has_control else np.nan,
                   lerf_vs_control=part["lerf_vs_control"].mean() if has_control else np.nan,
                   images=len(part))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values(["model", "patch_size", "gap"], ascending=[True, True, False],
                             kind="mergesort").reset_index(drop=True)


def _plot(table: pd.DataFrame, path) -> None:
    plt = figures.plt
    groups = list(table.groupby(["model", "patch_size"], sort=True))
    if not groups:
        raise ValueError("no rows with both orders")
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    for axis, ((model, patch), part) in zip(axes.flat, groups, strict=True):
        axis.scatter(part["morf_area"], part["lerf_area"], s=18)
        for _, row in part.iterrows():
            axis.annotate(row["method"], (row["morf_area"], row["lerf_area"]), fontsize=6,
                          xytext=(2, 2), textcoords="offset points")
        low = min(part["morf_area"].min(), part["lerf_area"].min())
        high = max(part["morf_area"].max(), part["lerf_area"].max())
        axis.plot([low, high], [low, high], ls=":", color="grey", lw=0.8)
        axis.set_title(f"{model}, patch {patch}", fontsize=8)
        axis.set_xlabel("MoRF area (the test: lower passes)", fontsize=7)
        axis.set_ylabel("LeRF area (the test: higher passes)", fontsize=7)
        axis.tick_params(labelsize=7)
    fig.tight_layout()
    figures._save(fig, path)


def symmetric_blocks(context, morf: pd.DataFrame, lerf: pd.DataFrame | None) -> list:
    """The blocks of the symmetric-faithfulness part of section 3; a note when the run has no LeRF table."""
    if lerf is None:
        return [Note("No least-relevant-first table (faithfulness_lerf_area.csv): the run did not do the "
                     "faithfulness_lerf experiment (`python -m empirical faithfulness_lerf`), so there is no "
                     "symmetric comparison.")]
    table = symmetric_table(morf, lerf)
    if table.empty:
        return [Note("The MoRF and LeRF tables share no (model, patch size, method, image).")]
    relative = "tables/faithfulness_symmetric.csv"
    table.to_csv(context.out / relative, index=False)
    blocks = [Paragraph(
        "Symmetric faithfulness: the same curves with the least relevant patches replaced first (LeRF; "
        "the test counts a higher area as more faithful) beside MoRF, their gap LeRF - MoRF (which the test "
        "counts larger as more faithful; 95% t interval over "
        "images) and each area as a ratio to the random-uniform control's on the same image (MoRF below 1 "
        "and LeRF above 1 beat random patches). An artefact of the perturbation that lowers the score in "
        "both orders leaves the gap unchanged; only the map's ordering of patches widens it.")]
    path = "figures/faithfulness_symmetric.png"
    try:
        _plot(table, context.out / path)
        blocks.append(Figure(path, "MoRF against LeRF area per method (dotted: equal areas; top left is "
                                   "best)"))
    except ValueError as error:
        blocks.append(Note(f"Figure not drawn: {error}"))
    blocks.append(Table(table, "Symmetric faithfulness: MoRF and LeRF areas, their gap, and the ratio to the "
                               "random control", relative))
    return blocks
