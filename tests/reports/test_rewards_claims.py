"""reports.rewards (slope verdicts, the section from a run's rewards.csv) and reports.claims (the ledger's
verdicts).

Oracles: scores built to rise, stay flat or fall with s by a known slope; hand-made run tables whose
claims hold or fail by construction.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from reports import claims, rewards


def _scores(test, slope, images=8, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"test": test, "method": "m", "level": s, "image": i,
             "value": 1 + slope * s + noise * rng.normal()} for i in range(images) for s in rewards.LEVELS]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("test", "slope", "oriented", "verdict"), [
    ("MPRT ssim (second-moment)", -0.3, 0.3, "rewards noise"),  # similarity falls: MPRT passes better
    ("MPRT mse (second-moment)", 0.3, 0.3, "rewards noise"),    # MSE rises: MPRT passes better
    ("MoRF area", 0.3, -0.3, "penalises noise"),                 # area rises: worse
])
def test_slope_verdicts_orient_each_test_by_its_direction(test, slope, oriented, verdict):
    row = rewards.slope_verdicts(_scores(test, slope)).iloc[0]
    assert row["verdict"] == verdict
    assert row["ci_low"] < oriented < row["ci_high"]
    assert row["slope"] == pytest.approx(oriented, abs=0.01)


def test_a_flat_score_is_indifferent():
    row = rewards.slope_verdicts(_scores("LeRF area", 0.0, noise=0.05)).iloc[0]
    assert row["verdict"] == "indifferent" and row["ci_low"] < 0 < row["ci_high"]


def test_section_reads_the_runs_rewards_table_and_orients_each_verdict(tmp_path, results_writers):
    from reports import inputs
    from tests.reports.conftest import REWARD_SLOPES

    write_empirical_run, _ = results_writers
    run = inputs.load_empirical(write_empirical_run(tmp_path / "run", images=6))
    for folder in ("tables", "figures"):
        (tmp_path / folder).mkdir()
    context = SimpleNamespace(run=run, out=tmp_path, rng=lambda name: np.random.default_rng(0))
    section = rewards.rewards_section(context)
    verdicts = pd.read_csv(tmp_path / "tables" / "rewards_verdicts.csv")
    assert len(verdicts) == 3 * len(REWARD_SLOPES) and context.rewards_verdicts is not None
    # the fixture's slopes per unit s, oriented by each test's direction (a falling similarity passes MPRT)
    for test, slope in REWARD_SLOPES.items():
        oriented = slope if rewards.TEST_DIRECTIONS[test] else -slope
        expected = "rewards noise" if oriented > 0 else "penalises noise" if oriented < 0 else "indifferent"
        assert set(verdicts.loc[verdicts["test"] == test, "verdict"]) == {expected}, test
    # 33 rows: the section shows the test x method summary; ranks of the three methods by every test
    captions = [getattr(block, "caption", "") for block in section.blocks]
    assert any("each cell: the verdict" in caption for caption in captions)
    ranks = pd.read_csv(tmp_path / "tables" / "rewards_ranks_demo.csv")
    assert len(ranks) == 3 and (tmp_path / "figures" / "rewards_vs_noise_demo.png").is_file()


def test_section_without_a_rewards_table_says_how_to_make_it(tmp_path):
    section = rewards.rewards_section(SimpleNamespace(run=_run({}), out=tmp_path))
    assert "python -m empirical rewards" in section.blocks[0].text


def _run(tables):
    return SimpleNamespace(table=lambda name: tables.get(name), path="x", experiments=())


def test_claims_ledger_verdicts_from_hand_made_tables(tmp_path):
    randomization = pd.DataFrame({"model": "demo", "method": ["gradient", "gradient-mean"], "step": 3,
                                  "image": 0, "measure": "mse", "normalization": "second-moment",
                                  "value": [1.95, 1.7]})
    area = pd.DataFrame({"model": "demo", "method": ["lrp-epsilon", "gradient"], "patch_size": 4, "image": 0,
                         "area": [0.6, 0.7]})
    activations = pd.DataFrame({"model": "demo", "level": [0, 1], "layer": "l", "statistic": "P", "q": np.nan,
                                "q_high": 0.9, "q_low": 0.5, "value": [0.01, 0.02]})
    verdicts = pd.DataFrame({"test": ["MPRT ssim (max-abs)", "MoRF area"], "method": "gradient",
                             "verdict": ["rewards noise", "indifferent"]})
    run = _run({"randomization.csv": randomization, "faithfulness_area.csv": area,
                "activations.csv": activations})
    context = SimpleNamespace(run=run, rewards_verdicts=verdicts, out=tmp_path)
    ledger = claims.claims_table(context).set_index("claim")["verdict"]
    assert list(ledger) == ["holds", "does not hold", "not testable here", "not testable here", "holds",
                            "not testable here", "holds", "not testable here"]
    assert len(ledger) == len(claims.CLAIMS)
