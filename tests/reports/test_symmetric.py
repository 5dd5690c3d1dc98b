"""reports.symmetric: MoRF beside LeRF, their gap and the ratio to the random control.

Oracles: scipy.stats.t.interval for the gap's interval; the per-image ratios computed by hand.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports import symmetric


def _areas(values):
    return pd.DataFrame([{"model": "demo", "method": method, "patch_size": 4, "image": image, "area": area}
                         for method, areas in values.items() for image, area in enumerate(areas)])


MORF = {"gradient": [0.5, 0.6, 0.4], "random-uniform": [0.8, 0.9, 0.85]}
LERF = {"gradient": [0.9, 0.95, 0.7], "random-uniform": [0.82, 0.88, 0.86]}


def test_gap_interval_against_scipy_t_and_ratios_by_hand():
    table = symmetric.symmetric_table(_areas(MORF), _areas(LERF)).set_index("method")
    gaps = np.subtract(LERF["gradient"], MORF["gradient"])
    low, high = stats.t.interval(0.95, len(gaps) - 1, loc=gaps.mean(), scale=stats.sem(gaps))
    row = table.loc["gradient"]
    assert row["gap"] == pytest.approx(gaps.mean()) and row["images"] == 3
    assert (row["gap_ci_low"], row["gap_ci_high"]) == pytest.approx((low, high))
    for name, areas in (("morf", MORF), ("lerf", LERF)):
        ratios = np.divide(areas["gradient"], areas["random-uniform"])
        assert row[f"{name}_vs_control"] == pytest.approx(ratios.mean())
    assert table.loc["random-uniform", "morf_vs_control"] == pytest.approx(1.0)
    assert list(table.index) == ["gradient", "random-uniform"]  # the larger gap first


def test_without_a_control_the_ratios_are_empty_and_without_lerf_a_note_says_why(tmp_path):
    morf = {"gradient": MORF["gradient"]}
    table = symmetric.symmetric_table(_areas(morf), _areas({"gradient": LERF["gradient"]}))
    assert table["morf_vs_control"].isna().all() and table["lerf_vs_control"].isna().all()
    blocks = symmetric.symmetric_blocks(SimpleNamespace(out=tmp_path), _areas(morf), None)
    assert "faithfulness_lerf" in blocks[0].text
