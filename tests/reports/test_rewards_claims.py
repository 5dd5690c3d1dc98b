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
from scipy import stats as scipy_stats

from reports import claims, ledger, overtaking, rewards


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


def test_a_flat_score_is_indifferent_only_with_the_images_to_show_it():
    # 8 images: the interval spans 0 but reaches past the margin: not enough data, not "indifferent"
    few = rewards.slope_verdicts(_scores("LeRF area", 0.0, noise=0.05)).iloc[0]
    assert few["verdict"] == "cannot tell at n = 8" and few["ci_low"] < 0 < few["ci_high"]
    assert few["images_needed"] > 8
    many = rewards.slope_verdicts(_scores("LeRF area", 0.0, noise=0.05, images=int(few["images_needed"]) * 4))
    assert many.iloc[0]["verdict"] == "indifferent"


def test_slope_tests_against_scipy_one_sample_t_tests():
    scores = _scores("LeRF area", 0.01, noise=0.05, images=20)
    row = rewards.slope_verdicts(scores).iloc[0]
    wide = scores.pivot(index="image", columns="level", values="value")
    slopes = np.array([scipy_stats.linregress(wide.columns.to_numpy(float), wide.loc[i].to_numpy()).slope
                       for i in wide.index])
    assert row["p_value"] == pytest.approx(scipy_stats.ttest_1samp(slopes, 0.0).pvalue)
    margin = rewards.NOISE_MARGINS["LeRF area"]["margin"]
    tost = max(scipy_stats.ttest_1samp(slopes, -margin, alternative="greater").pvalue,
               scipy_stats.ttest_1samp(slopes, margin, alternative="less").pvalue)
    assert row["p_equivalence"] == pytest.approx(tost)


def test_family_correction_against_hand_holm():
    scores = pd.concat([_scores(test, slope, images=6, noise=0.05, seed=k).assign(method=f"m{k}")
                        for k, (test, slope) in enumerate([("LeRF area", 0.05), ("LeRF area", 0.02),
                                                           ("MoRF area", -0.03), ("eMPRT", 0.0)])])
    table = rewards.slope_verdicts(scores)
    raw = table["p_value"].to_numpy()
    order = np.argsort(raw)
    holm, running = np.empty_like(raw), 0.0
    for rank, index in enumerate(order):  # Holm: (m - rank) p, made monotone, capped at 1
        running = max(running, min(1.0, (len(raw) - rank) * raw[index]))
        holm[index] = running
    np.testing.assert_allclose(table["p_value_holm"], holm)
    decided = table["p_value_holm"] < 0.05
    assert (table.loc[decided, "verdict"] != "indifferent").all()
    assert set(table.loc[~decided, "verdict"]) <= {"indifferent", *[f"cannot tell at n = {n}" for n in [6]]}


def test_holm_turns_a_raw_rejection_into_cannot_tell_and_the_note_says_why():
    # many flat rows and one borderline row: its raw p is < 0.05, its Holm p over the family is not
    rows = [_scores("MoRF area", 0.0, images=6, noise=0.05, seed=k).assign(method=f"m{k}") for k in range(30)]
    table = rewards.slope_verdicts(pd.concat(rows))
    changed = rewards.verdict_changes(table)
    raw_hits = table["verdict_uncorrected"] != "indifferent"
    assert (table.loc[raw_hits, "p_value"] < 0.05).all()
    assert len(changed) == (table["verdict"] != table["verdict_uncorrected"]).sum()
    text = rewards.verdict_changes_text(table)
    assert f"{raw_hits.sum()} of {len(table)}" in text


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


def _run(tables, dataset="imagenet"):
    return SimpleNamespace(table=lambda name: tables.get(name), path="x", experiments=(),
                           manifest={"dataset": {"name": dataset}})


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
    words = claims.claims_table(context).set_index("claim")["verdict"]
    # the thesis needs the seed's MPRT measures (second-moment); one image cannot tell LRP from gradient
    assert list(words) == ["not testable here", "does not hold", "not testable here", "not testable here",
                            "holds", "not testable here", "cannot tell", "not testable here",
                            "not testable here", "not testable here", "not testable here",
                            "not testable here", "not testable here"]
    assert len(words) == len(claims.CLAIMS)


def test_a_digits_run_is_no_evidence_for_an_imagenet_claim(tmp_path):
    """Oracle: the ledger's rule: the ImageNet claims read only an ImageNet network's run; the same tables
    under the digits' dataset name leave every one of them not testable, and the named networks' rows say
    which weights they need."""
    randomization = pd.DataFrame({"model": "demo", "method": ["gradient", "gradient-mean"], "step": 3,
                                  "image": 0, "measure": "mse", "normalization": "second-moment",
                                  "value": [1.95, 1.95]})
    context = SimpleNamespace(run=_run({"randomization.csv": randomization}, "digits"), rewards_verdicts=None,
                              out=tmp_path)
    table = claims.claims_table(context).set_index("claim")
    assert (table.loc[list(claims.IMAGENET_CLAIMS), "verdict"] == "not testable here").all()
    assert "no evidence for an ImageNet claim" in table.loc[claims.CLAIMS[1], "evidence"]
    assert table.loc[claims.CLAIMS[2], "evidence"].startswith(claims.NEEDS_WEIGHTS)
    imagenet = claims.claims_table(SimpleNamespace(run=_run({"randomization.csv": randomization}),
                                                   rewards_verdicts=None, out=tmp_path))
    assert imagenet.set_index("claim").loc[claims.CLAIMS[1], "verdict"] == "holds"


def _verdict_table(randomisation: dict, faithfulness: dict, methods=("gradient", "gradient-x-input",
                                                                     "lrp-epsilon", "random-uniform")):
    """Verdicts per (test, method): ``randomisation`` and ``faithfulness`` map a test to one verdict per
    method, or to one verdict for all."""
    rows = []
    for test, chosen in {**randomisation, **faithfulness}.items():
        words = chosen if isinstance(chosen, (list, tuple)) else [chosen] * len(methods)
        rows += [{"model": "demo", "test": test, "method": m, "verdict": w}
                 for m, w in zip(methods, words, strict=True)]
    return pd.DataFrame(rows)


SEED = ledger.SEED_MPRT_TESTS
FAITH = ledger.FAITHFULNESS_TESTS


def test_thesis_holds_when_every_seed_measure_rewards_noise_and_faithfulness_is_indifferent():
    # the max-abs rows and sMPRT/eMPRT, indifferent here, are not the seed's measures and do not count
    beyond = {t: "indifferent" for t in ("MPRT ssim (max-abs)", "MPRT spearman (max-abs)",
                                          *ledger.BEYOND_SEED_TESTS)}
    table = _verdict_table({t: "rewards noise" for t in SEED} | beyond, {t: "indifferent" for t in FAITH})
    verdict, evidence = ledger.thesis(table)
    assert verdict == ledger.HOLDS and ledger.LEDGER_RULES["thesis"] in evidence


def test_thesis_does_not_hold_on_two_rewarding_pairs_of_sixteen():
    # the audit's case: 2 of 16 randomisation pairs reward noise, every other pair flat (indifferent);
    # the max-abs Spearman duplicate and sMPRT/eMPRT do not count
    tests = [*SEED, "MPRT spearman (max-abs)"]
    randomisation = {t: "indifferent" for t in tests}
    randomisation["MPRT spearman (second-moment)"] = ["rewards noise", "indifferent", "indifferent",
                                                      "indifferent"]
    randomisation["MPRT spearman (max-abs)"] = ["rewards noise", "indifferent", "indifferent", "indifferent"]
    table = _verdict_table(randomisation, {t: "indifferent" for t in FAITH})
    verdict, evidence = ledger.thesis(table)
    assert verdict == ledger.FAILS and "1/3 reward noise" in evidence


def test_thesis_does_not_hold_when_a_faithfulness_test_rewards_noise():
    faithfulness = {t: "indifferent" for t in FAITH} | {"LeRF area": "rewards noise"}
    table = _verdict_table({t: "rewards noise" for t in SEED}, faithfulness)
    assert ledger.thesis(table)[0] == ledger.FAILS


def test_thesis_cannot_tell_when_faithfulness_lacks_an_equivalence_result():
    table = _verdict_table({t: "rewards noise" for t in SEED}, {t: "cannot tell at n = 6" for t in FAITH})
    assert ledger.thesis(table)[0] == ledger.CANNOT_TELL


def test_thesis_cannot_tell_when_the_randomisation_cells_are_undecided():
    randomisation = {t: "rewards noise" for t in SEED} | {"MPRT mse (second-moment)": "cannot tell at n = 6"}
    table = _verdict_table(randomisation, {t: "indifferent" for t in FAITH})
    assert ledger.thesis(table)[0] == ledger.CANNOT_TELL


@pytest.mark.parametrize(("words", "verdict"), [
    # 2 of the 3 base methods: holds; with the control (indifferent) counted it would be 2 of 4
    (["rewards noise", "rewards noise", "indifferent", "indifferent"], ledger.HOLDS),
    (["indifferent", "penalises noise", "rewards noise", "rewards noise"], ledger.FAILS),
    (["rewards noise", "cannot tell at n = 6", "cannot tell at n = 6", "rewards noise"], ledger.CANNOT_TELL),
])
def test_beyond_seed_rows_judge_smprt_per_network(words, verdict):
    table = _verdict_table({"sMPRT (spearman)": words}, {})
    found, evidence = ledger.beyond_seed(table, "sMPRT (spearman)")
    assert found == verdict and "beyond the seed" in evidence.lower()


def _paired_areas(shift: float, sd: float, images: int, seed: int = 0, sizes=(2, 8)) -> pd.DataFrame:
    """MoRF areas of an LRP variant ``shift`` below (negative: above) the best gradient method, paired per
    image with sd ``sd`` of the difference (both exact in the sample); a second gradient method and LRP
    variant, both worse."""
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        base = rng.uniform(0.3, 0.6, images)
        z = rng.standard_normal(images)
        difference = -shift + sd * (z - z.mean()) / z.std(ddof=1)  # sample mean -shift, sample sd sd exactly
        for method, value in (("gradient", base), ("gradient-x-input", base + 0.3), ("lrp-epsilon",
                              base + difference), ("lrp-z", base + difference + 0.3)):
            rows += [{"model": "demo", "patch_size": size, "method": method, "image": i, "area": v}
                     for i, v in enumerate(value)]
    return pd.DataFrame(rows)


def test_lrp_ahead_against_scipy_wilcoxon_and_hand_holm():
    area = _paired_areas(0.1, 0.1, 30)
    table = ledger.lrp_against_gradient(area)
    raw = []
    for size in (2, 8):
        wide = area[area["patch_size"] == size].pivot(index="image", columns="method", values="area")
        raw.append(scipy_stats.wilcoxon(wide["lrp-epsilon"] - wide["gradient"]).pvalue)
    np.testing.assert_allclose(table["p_value"], raw)
    np.testing.assert_allclose(table["p_holm"], np.minimum(1, np.maximum.accumulate(
        np.sort(raw) * [2, 1]))[np.argsort(np.argsort(raw))])
    assert set(table["best_lrp"]) == {"lrp-epsilon"} and set(table["best_gradient"]) == {"gradient"}


@pytest.mark.parametrize(("shift", "sd", "images", "verdict"), [
    (0.2, 0.05, 30, ledger.HOLDS),
    (-0.2, 0.05, 30, ledger.FAILS),
    (0.01, 0.1, 30, ledger.CANNOT_TELL),  # the audit's case: 0.01 apart, paired sd 0.1, n = 30
])
def test_lrp_ahead_is_a_paired_test_per_patch_size(shift, sd, images, verdict):
    found, evidence = ledger.lrp_ahead(_paired_areas(shift, sd, images))
    assert found == verdict and "patch 2" in evidence and "patch 8" in evidence


def _swish_like_activations() -> pd.DataFrame:
    """Two levels of one network: level 0 all positive quantiles, level 1 with V(0.1) = -1 < 0 < V(0.9) = 2
    (mixed signs at the pair (0.9, 0.1), one sign at (0.9, 0.5)). P rows by theory; the mixed row is given
    the old |V(q_high) / V(q_low)| = 2 (P about 0.07) as a run stored before K was left undefined there."""
    from scipy.stats import cauchy

    quantiles = {0: {0.1: 0.5, 0.5: 1.0, 0.9: 3.0}, 1: {0.1: -1.0, 0.5: 0.5, 0.9: 2.0}}
    rows = [{"model": "swishnet", "level": lv, "layer": "l", "statistic": "quantile", "q": q,
             "q_high": np.nan, "q_low": np.nan, "value": v}
            for lv, values in quantiles.items() for q, v in values.items()]
    for lv, values in quantiles.items():
        for q_low in (0.1, 0.5):
            k = abs(values[0.9] / values[q_low])
            rows.append({"model": "swishnet", "level": lv, "layer": "l", "statistic": "P", "q": np.nan,
                         "q_high": 0.9, "q_low": q_low,
                         "value": float(cauchy(scale=np.sqrt(q_low / 0.1)).sf(k))})
    return pd.DataFrame(rows)


def test_overtaking_ledger_leaves_out_the_pair_of_opposite_signs():
    activations = _swish_like_activations()
    counts = overtaking.undefined_k_counts(activations).set_index("model").loc["swishnet"]
    assert (counts["levels"], counts["levels_with_undefined_K"], counts["pairs_undefined"],
            counts["pairs"]) == (2, 1, 1, 4)
    verdict, evidence = claims._overtaking(activations)
    defined = activations[(activations["statistic"] == "P")
                          & ~((activations["level"] == 1) & (activations["q_low"] == 0.1))]["value"]
    left_out = "(1 (level, q_high, q_low) rows with K undefined left out)"
    assert f"mean P {defined.mean():.3f} {left_out}" in evidence
    everything = activations[activations["statistic"] == "P"]["value"].mean()
    assert f"{everything:.3f}" not in evidence


def test_ledger_note_shows_the_audit_cases_turning():
    # the audit's two cases: 2 of 16 randomisation pairs reward noise (the earlier rule: holds), and LRP 0.01
    # ahead at paired sd 0.1, n = 30 (the earlier rule: holds); the sound rules say otherwise
    randomisation = {t: "indifferent" for t in (*SEED, "MPRT spearman (max-abs)")}
    randomisation["MPRT spearman (second-moment)"] = ["rewards noise", "indifferent", "indifferent",
                                                      "indifferent"]
    randomisation["MPRT spearman (max-abs)"] = ["rewards noise", "indifferent", "indifferent", "indifferent"]
    verdicts = _verdict_table(randomisation, {t: "indifferent" for t in FAITH})
    verdicts["verdict_uncorrected"] = verdicts["verdict"]
    run = _run({"faithfulness_area.csv": _paired_areas(0.01, 0.1, 30)})
    context = SimpleNamespace(run=run, rewards_verdicts=verdicts)
    table = claims.claims_table(context)
    changes = claims.ledger_changes(context, table).set_index("claim")
    assert changes.loc[claims.CLAIMS[0], ["before", "after"]].tolist() == [ledger.HOLDS, ledger.FAILS]
    assert changes.loc[claims.CLAIMS[6], ["before", "after"]].tolist() == [ledger.HOLDS, ledger.CANNOT_TELL]
    assert claims.CLAIMS[4] not in changes.index  # no activations: the earlier rule gave no verdict
    text = claims.ledger_changes_text(changes.reset_index())
    assert f"{claims.CLAIMS[0]}: holds -> does not hold" in text


@pytest.mark.parametrize(("mean", "sd"), [(0.3, 0.4), (0.05, 0.3), (1.0, 0.2)])
def test_images_needed_is_the_first_n_whose_scipy_t_interval_excludes_zero(mean, sd):
    # two images with this mean and sd: the oracle is scipy's t interval at the same mean and sd, which
    # must exclude 0 at images_needed images and not at one fewer (the normal form said 2 at n = 2)
    slopes = np.array([mean - sd / np.sqrt(2), mean + sd / np.sqrt(2)])
    needed = rewards._slope_statistics(slopes, margin=1e-9, level=0.95)["images_needed"]

    def excludes_zero(m):
        return scipy_stats.t.interval(0.95, m - 1, loc=mean, scale=sd / np.sqrt(m))[0] > 0

    assert excludes_zero(needed) and (needed == 2 or not excludes_zero(needed - 1))
    assert needed > 2 or excludes_zero(2)
