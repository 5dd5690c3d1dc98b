"""The report's parts against independent oracles: scipy and hand-computed Holm, the definition of eq. 11,
the order-statistic variance of eq. 20, html.parser for the rendering."""

from __future__ import annotations

import math
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats as scipy_stats

from reports import evidence, render, stats, theorems
from reports.inputs import SimulationResult


def _areas(rng, means: dict, images: int = 12) -> pd.DataFrame:
    rows = []
    for method, mean in means.items():
        for image in range(images):
            rows.append(
                dict(model="m", method=method, patch_size=8, image=image, area=mean + rng.normal(0, 0.05))
            )
    return pd.DataFrame(rows)


def test_rank_methods_orders_by_mean_area_and_matches_scipy_t_interval():
    rng = np.random.default_rng(1)
    area = _areas(rng, {"a": 0.5, "b": 0.2, "c": 0.8})
    ranking = stats.rank_methods(area).set_index("method")
    assert ranking.loc["b", "rank"] == 1 and ranking.loc["a", "rank"] == 2 and ranking.loc["c", "rank"] == 3
    values = area.loc[area["method"] == "a", "area"]
    low, high = scipy_stats.t.interval(
        0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values)
    )
    assert ranking.loc["a", "ci_low"] == pytest.approx(low) and ranking.loc["a", "ci_high"] == pytest.approx(
        high
    )


def test_paired_tests_against_scipy_wilcoxon_and_hand_holm():
    rng = np.random.default_rng(2)
    area = _areas(rng, {"a": 0.50, "b": 0.30, "c": 0.51})
    tests = stats.paired_tests(area).set_index(["method_a", "method_b"])
    wide = area.pivot(index="image", columns="method", values="area")
    raw = {pair: scipy_stats.wilcoxon(wide[pair[0]] - wide[pair[1]]).pvalue for pair in tests.index}
    order = sorted(raw, key=raw.get)
    holm, running = {}, 0.0
    for rank, pair in enumerate(order):  # Holm: (m - rank) * p, made monotone, capped at 1
        running = max(running, min(1.0, (len(order) - rank) * raw[pair]))
        holm[pair] = running
    for pair in tests.index:
        assert tests.loc[pair, "p_value"] == pytest.approx(raw[pair])
        assert tests.loc[pair, "p_holm"] == pytest.approx(holm[pair])
        difference = (wide[pair[0]] - wide[pair[1]]).mean()
        assert tests.loc[pair, "mean_difference"] == pytest.approx(difference)
    assert bool(tests.loc[("a", "b"), "significant"])  # 0.2 apart with sd 0.05 on 12 images
    assert not bool(tests.loc[("a", "c"), "significant"])


def test_paired_tests_leave_identical_methods_without_p_value():
    area = pd.DataFrame(
        dict(
            model="m",
            method=["a", "a", "b", "b"],
            patch_size=8,
            image=[0, 1, 0, 1],
            area=[0.1, 0.2, 0.1, 0.2],
        )
    )
    tests = stats.paired_tests(area)
    assert np.isnan(tests.loc[0, "p_value"]) and not bool(tests.loc[0, "significant"])


def test_paired_tests_reject_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        stats.paired_tests(pd.DataFrame(), alpha=1.5)


def _simulation(agree, level=0.99) -> SimulationResult:
    n = len(agree)
    table = pd.DataFrame(
        dict(
            quantity=["ssim-x"] * n,
            estimate=np.linspace(0, 1, n),
            se=0.01,
            ci_low=0.0,
            ci_high=1.0,
            theory=0.5,
            agree=agree,
            level=level,
            relation="equal",
        )
    )
    return SimulationResult("similarity_processes", table, {})


@pytest.mark.parametrize(
    ("agree", "verdict"),
    [
        ([True, True], "agrees"),
        ([True, False], "partly agrees"),
        ([False, False], "disagrees"),
        ([None, None], "no data"),
        ([True, None], "agrees"),
    ],
)
def test_monte_carlo_verdict_counts_agree_column(agree, verdict):
    result = theorems.RESULTS[0]
    # At level 0.999 one miss in two settings has chance 0.002: too unlikely to be chance.
    rows = theorems.select_rows(_simulation(agree, level=0.999), result)
    text, found = theorems.monte_carlo_summary(rows)
    assert found == verdict
    decided = sum(a is not None for a in agree)
    assert text.startswith(f"{sum(a is True for a in agree)}/{decided} settings agree")


@pytest.mark.parametrize(("misses", "verdict"), [(1, "agrees"), (2, "partly agrees")])
def test_family_verdict_against_binomial_tail_by_enumeration(misses, verdict):
    # 81 settings at level 0.999: P(>= 1 miss) = 1 - 0.999**81 = 0.078 (chance), P(>= 2) = 0.0031 (not).
    agree = [True] * (81 - misses) + [False] * misses
    rows = theorems.select_rows(_simulation(agree, level=0.999), theorems.RESULTS[0])
    _, found = theorems.monte_carlo_summary(rows)
    assert found == verdict
    exact = 1 - sum(math.comb(81, k) * 0.001**k * 0.999 ** (81 - k) for k in range(misses))
    assert theorems._chance_of_misses(misses, 81, 0.999) == pytest.approx(exact, rel=1e-9)


def test_recompute_overtaking_detects_a_wrong_stored_probability():
    quantiles = pd.DataFrame(dict(model="m", level=0, statistic="quantile", q=[0.95, 0.5], value=[3.0, 1.0]))
    gamma = np.sqrt(0.5 / 0.05)
    exact = 0.5 - np.arctan(3.0 / gamma) / np.pi  # eq. 23 by hand: P(Z >= K) of a Cauchy with scale gamma
    for stored, verdict in ((exact, "agrees"), (exact + 0.01, "disagrees")):
        p_row = pd.DataFrame(dict(model="m", level=[0], statistic="P", q_high=0.95, q_low=0.5, value=stored))
        table = pd.concat([quantiles, p_row])
        run = type("Run", (), {"table": lambda self, name, t=table: t})()
        _, found, check = theorems.empirical_overtaking(run)
        assert found == verdict
        assert check["P_recomputed"].iloc[0] == pytest.approx(exact)


def test_quantile_variance_evidence_rejects_the_printed_form():
    table = evidence.quantile_variance_evidence(rng=0, replications=2_000)
    verified, printed = table.iloc[0], table.iloc[1]
    # Oracle: the variance of the sample 0.9-quantile of 1000 normals is 0.00292 to three digits (exact
    # order-statistic computation in the theory tests); the Monte Carlo must see it within 4 se (the
    # sample variance is near-normal at 2,000 replications: false-failure rate about 6e-5) and the printed
    # form, 0.00051, more than 10 se away.
    assert verified["value"] == pytest.approx(0.00292, abs=1e-5)
    assert verified["z"] <= 4
    assert printed["z"] > 10


def test_normalization_evidence_against_the_definition():
    table = evidence.normalization_evidence(rng=0)
    assert np.allclose(table["mean_square_verified"], 1.0)  # the seed's stated aim of eq. 11
    scaled = table[table["map"].str.contains("scale 10")]["mean_square_as_printed"].to_numpy()
    unscaled = table[table["map"].str.contains("scale 1$")]["mean_square_as_printed"].to_numpy()
    assert np.allclose(scaled, 100 * unscaled)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_render_escapes_and_truncates(tmp_path):
    frame = pd.DataFrame(dict(name=["<b>x</b>", "a|b"] + ["r"] * 5, value=[1.0, np.nan] + [2.0] * 5))
    section = render.Section("One", "one").add(
        render.Paragraph("a < b"),
        render.Note("careful"),
        render.Table(frame, "cap", "tables/t.csv", max_rows=3),
    )
    page = render.to_html("T", [section], tmp_path)
    parser = _Tags()
    parser.feed(page)
    assert "b" not in parser.tags  # the cell's markup is escaped, not rendered
    assert "First 3 of 7 rows" in page
    markdown = render.to_markdown("T", [section])
    assert "a\\|b" in markdown and "> **Note.** careful" in markdown


@settings(max_examples=30, deadline=None)
@given(
    areas=arrays(np.float64, (6, 3), elements=st.floats(0.0, 1.0, allow_nan=False)),
)
def test_holm_p_values_never_fall_below_the_raw_ones(areas):
    frame = pd.DataFrame(
        [
            dict(model="m", method=f"method{j}", patch_size=8, image=i, area=areas[i, j])
            for i in range(areas.shape[0])
            for j in range(areas.shape[1])
        ]
    )
    tests = stats.paired_tests(frame)
    tested = tests["p_value"].notna()
    assert (tests.loc[tested, "p_holm"] >= tests.loc[tested, "p_value"] - 1e-15).all()
    assert tests.loc[tested, "p_holm"].between(0, 1).all()
    ranking = stats.rank_methods(frame)
    best = ranking.loc[ranking["rank"] == 1, "mean_area"]
    assert np.isclose(best.iloc[0], areas.mean(axis=0).min())


def _last_step(values: dict) -> pd.DataFrame:
    """A last-step summary: values maps (measure, model, method, normalization) to the mean score."""
    return pd.DataFrame([{"measure": k[0], "model": k[1], "method": k[2], "normalization": k[3], "value": v}
                         for k, v in values.items()])


def test_normalisation_text_states_the_hand_computed_largest_difference():
    from reports import sections

    summary = _last_step({("ssim", "demo", "gradient", "max-abs"): 0.50,
                          ("ssim", "demo", "gradient", "second-moment"): 0.20,  # |diff| 0.3
                          ("ssim", "demo", "lrp-epsilon", "max-abs"): 0.40,
                          ("ssim", "demo", "lrp-epsilon", "second-moment"): 0.35,  # 0.05
                          ("mse", "demo", "gradient", "max-abs"): 1.0,
                          ("mse", "demo", "gradient", "second-moment"): 1.9})  # 0.9
    text = sections.normalisation_change_text(summary)
    assert "ssim: largest |max-abs - second-moment| 0.3 (demo, gradient), median 0.175 over 2" in text
    assert "mse: largest |max-abs - second-moment| 0.9 (demo, gradient), median 0.9 over 1" in text
    # the sentence the measured tables did not support is gone: no claim about how the spread grows
    assert "grows" not in text


def test_normalisation_text_says_when_one_normalisation_is_missing():
    from reports import sections

    summary = _last_step({("ssim", "demo", "gradient", "second-moment"): 0.2})
    assert "nothing to compare" in sections.normalisation_change_text(summary)
