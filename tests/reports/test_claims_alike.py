"""The claims ledger's row for seed section H ("ImageNet and multi-label results qualitatively alike"):
the single-label run against the multi-label run, on hand-made tables whose method orders agree or not by
construction.

Oracle: scipy's ``kendalltau`` of the method means, computed here from the hand-made tables (means over
images; the faithfulness areas per patch size; SSIM after second-moment normalisation at the last step).
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from scipy.stats import kendalltau

from reports import claims

CLAIM = "ImageNet and multi-label results qualitatively alike (H)"
#: the digits demo against the digit canvases: the toy analogue of CLAIM, a row of its own
TOY = claims.CLAIMS[-1]
METHODS = ("lrp-epsilon", "gradient", "gradient-x-input", "random-uniform")
#: mean MoRF area per method (lower is better): the control, random-uniform, last
AREAS = {"lrp-epsilon": 0.30, "gradient": 0.45, "gradient-x-input": 0.40, "random-uniform": 0.80}
#: mean SSIM at the last randomisation step per method
SSIMS = {"lrp-epsilon": 0.60, "gradient": 0.20, "gradient-x-input": 0.35, "random-uniform": 0.05}


def _run(dataset: str, areas: dict, ssims: dict, *, model: str = "demo"):
    area = pd.DataFrame([{"model": model, "method": method, "patch_size": size, "image": image,
                          "area": value + offset}
                         for method, value in areas.items() for size in (8, 15)
                         for image, offset in enumerate((-0.01, 0.0, 0.01))])
    rows = []
    for method, value in ssims.items():
        for image, offset in enumerate((-0.02, 0.02)):
            rows.append({"model": model, "method": method, "step": 2, "image": image, "measure": "ssim",
                         "normalization": "second-moment", "value": value + offset})
            # rows the claim must not read: an earlier step, another normalisation, another measure, each
            # in the opposite order
            for step, normalization, measure in ((1, "second-moment", "ssim"), (2, "max-abs", "ssim"),
                                                 (2, "second-moment", "mse")):
                rows.append({"model": model, "method": method, "step": step, "image": image,
                             "measure": measure, "normalization": normalization, "value": 1 - value})
    tables = {"faithfulness_area.csv": area, "randomization.csv": pd.DataFrame(rows)}
    return SimpleNamespace(manifest={"dataset": {"name": dataset}}, table=tables.get, path="x")


def _row(tmp_path, single, multilabel, claim=CLAIM) -> pd.Series:
    context = SimpleNamespace(run=single, multilabel=multilabel, rewards_verdicts=None, out=tmp_path)
    return claims.claims_table(context).set_index("claim").loc[claim]


def _oracle_taus(first, second) -> list[float]:
    """scipy's Kendall tau of the two runs' method means: faithfulness per patch size, then randomisation."""
    taus = []
    for size in (8, 15):
        areas = [run.table("faithfulness_area.csv") for run in (first, second)]
        means = [area[area["patch_size"] == size].groupby("method")["area"].mean() for area in areas]
        taus.append(kendalltau(means[0][list(METHODS)], means[1][list(METHODS)]).statistic)
    means = [run.table("randomization.csv").query("measure == 'ssim' and normalization == 'second-moment' "
                                                  "and step == 2").groupby("method")["value"].mean()
             for run in (first, second)]
    taus.append(kendalltau(means[0][list(METHODS)], means[1][list(METHODS)]).statistic)
    return taus


def test_alike_orders_hold_as_the_toy_analogue_with_scipys_kendall_tau_in_the_evidence(tmp_path):
    single = _run("digits", AREAS, SSIMS)
    # the multi-label run: other values, one swap among the gradient methods in each order
    multilabel = _run("digit-canvases", {**AREAS, "gradient": 0.38, "gradient-x-input": 0.42},
                      {**SSIMS, "lrp-epsilon": 0.9})
    row = _row(tmp_path, single, multilabel, TOY)
    # the digits are no evidence for the ImageNet claim itself
    assert _row(tmp_path, single, multilabel)["verdict"] == "not testable here"
    taus = _oracle_taus(single, multilabel)
    assert all(tau > 0 for tau in taus)
    assert row["verdict"] == "holds"
    assert row["evidence"].startswith("single-label digits vs multi-label digit canvases (the toy analogue")
    for size, tau in zip((8, 15), taus[:2], strict=True):
        assert f"MoRF area, patch {size}: tau {tau:.2f} over 4 methods" in row["evidence"]
    assert f"last randomisation step: tau {taus[2]:.2f}" in row["evidence"]
    assert "random-uniform last in digits and digit-canvases" in row["evidence"]
    assert "holds when every tau > 0" in row["evidence"]


@pytest.mark.parametrize("change", ["reversed randomisation order", "control not last"])
def test_orders_that_disagree_or_a_control_not_last_do_not_hold(tmp_path, change):
    single = _run("imagenet", AREAS, SSIMS, model="resnet50")
    if change == "reversed randomisation order":
        multilabel = _run("coco", AREAS, {m: 1 - v for m, v in SSIMS.items()}, model="resnet50")
        assert _oracle_taus(single, multilabel)[2] < 0
    else:  # same orders of the real methods, but the control beats one of them in the multi-label run
        multilabel = _run("coco", {**AREAS, "random-uniform": 0.42, "gradient": 0.5}, SSIMS, model="resnet50")
    row = _row(tmp_path, single, multilabel)
    assert row["verdict"] == "does not hold"  # ImageNet vs COCO: the seed's own comparison, no analogue
    assert row["evidence"].startswith("single-label ImageNet vs multi-label MSCOCO: ")
    if change == "control not last":
        assert "random-uniform last in imagenet;" in row["evidence"]


def test_one_run_alone_or_too_few_shared_methods_is_not_testable(tmp_path):
    single = _run("digits", AREAS, SSIMS)
    assert _row(tmp_path, single, None, TOY)["verdict"] == "not testable here"
    assert "lacks a multi-label run" in _row(tmp_path, single, None, TOY)["evidence"]
    assert _row(tmp_path, None, single, TOY)["verdict"] == "not testable here"
    two = {m: AREAS[m] for m in METHODS[:2]}
    few = _row(tmp_path, single, _run("digit-canvases", two, {m: SSIMS[m] for m in METHODS[:2]}), TOY)
    assert few["verdict"] == "not testable here" and "fewer than 3 methods" in few["evidence"]
