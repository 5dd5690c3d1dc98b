"""reports.rewards (slope verdicts, fresh noise) and reports.claims (the ledger's verdicts).

Oracles: scores built to rise, stay flat or fall with s by a known slope; hand-made run tables whose
claims hold or fail by construction.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

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


def test_fresh_noise_draws_a_new_noise_at_every_call_and_keeps_the_clean_map():
    from empirical.models import load_model

    demo_model = load_model("demo")
    demo_batch = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    targets = torch.zeros(3, dtype=torch.long)
    cache = {}
    clean = rewards._FreshNoise("gradient", 0.0, 0, cache)(demo_model, demo_batch, targets)
    noisy = rewards._FreshNoise("gradient", 1.0, 0, cache)
    first, second = noisy(demo_model, demo_batch, targets), noisy(demo_model, demo_batch, targets)
    assert not torch.allclose(first, second)
    assert len(cache) == 1  # the clean map is computed once for every level
    # the noise has variance s^2 mean(A^2) (s = 1): the residual's mean square is near the map's
    ratio = (first - clean).square().mean() / clean.square().mean()
    assert 0.8 < float(ratio) < 1.2


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


@pytest.mark.slow
def test_measure_scores_on_the_demo_network_gives_every_test_at_every_level():
    scores, closed = rewards.measure_scores(images=2, levels=(0.0, 2.0))
    assert set(scores["test"]) == set(rewards.TEST_DIRECTIONS)
    assert set(scores["level"]) == {0.0, 2.0} and scores["value"].notna().all()
    # at s = 0 the measured normalised MSE is the closed form at the clean moments (same maps, exact)
    mse = scores[(scores["test"] == "MPRT mse (second-moment)") & (scores["level"] == 0)]["value"].to_numpy()
    predicted = closed[(closed["test"] == "MPRT mse (second-moment)") & (closed["level"] == 0)]["theory"]
    np.testing.assert_allclose(mse, predicted.to_numpy(), rtol=1e-4)
