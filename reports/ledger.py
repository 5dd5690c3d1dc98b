"""The rules of the claims ledger's statistical rows (report section 7): the seed's thesis (sections 1, D
and H; eq. 11-19) on the Holm-corrected noise-injection verdicts of section 6, the sMPRT and eMPRT rows
beyond the seed (Hedström et al. 2023), and "LRP ahead of the gradient methods" (figures 1-3) as paired
Wilcoxon signed-rank tests, Holm-corrected. Each rule is stated in ``LEDGER_RULES`` and quoted in its row;
each gives "holds", "does not hold" or "cannot tell". The earlier rules (``thesis_before``,
``lrp_before``) are kept for the report's before/after note.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon
from statsmodels.stats.multitest import multipletests

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "not testable here"
#: the third verdict of a claim the run's data cannot settle
CANNOT_TELL = "cannot tell"
#: the seed's randomisation measures, with the seed's normalisation (section H: second moment, eq. 11)
SEED_MPRT_TESTS = ("MPRT ssim (second-moment)", "MPRT spearman (second-moment)", "MPRT mse (second-moment)")
#: the faithfulness tests of section 6 (the seed's figures 1-3 use MoRF-type occlusion)
FAITHFULNESS_TESTS = ("MoRF area", "LeRF area", "gap LeRF-MoRF")
#: randomisation tests of Hedström et al. 2023, about which the seed makes no claim
BEYOND_SEED_TESTS = ("sMPRT (spearman)", "eMPRT")
#: level of the ledger's paired tests, after Holm's correction over their family
LEDGER_ALPHA = 0.05
_DECIDED = ("rewards noise", "penalises noise", "indifferent")
GRADIENT_METHODS = ("gradient", "gradient-mean", "gradient-x-input", "integrated-gradients")
LRP_PREFIXES = ("lrp-", "epsilon-")
#: the control that should be the least faithful (largest MoRF area) in both runs
CONTROL_METHOD = "random-uniform"

#: the rules of the ledger's statistical rows, as the report states them
LEDGER_RULES = {
    "thesis": (
        "Randomisation half, per network and per seed MPRT measure (SSIM, Spearman, MSE after second-moment "
        "normalisation; the max-abs rows and sMPRT/eMPRT not counted): rewards noise when more than half "
        "of the base methods (the control left out) have the Holm-corrected verdict 'rewards noise'; does "
        "not when at least half have a decided other verdict; else cannot tell. Faithfulness half, per "
        "network, faithfulness test and base method: not rewarded when the verdict is 'indifferent' (TOST "
        "inside the margin) or 'penalises noise'; rewarded when 'rewards noise'; else cannot tell. Holds "
        "when every randomisation cell rewards noise and no faithfulness pair is rewarded or undecided; "
        "does not hold when a randomisation cell does not reward noise or a faithfulness pair is rewarded; "
        "else cannot tell"),
    "beyond": (
        "Per network, as the randomisation half of the thesis: holds when more than half of the base "
        "methods have 'rewards noise', does not hold when at least half have another decided verdict, "
        "else cannot tell"),
    "lrp": (
        "Per network and patch size: the LRP variant and the gradient method with the lowest mean MoRF "
        "area (chosen on the same images: each side's minimum is biased low, the side with more variants "
        "more so), compared by a Wilcoxon signed-rank "
        "test (scipy) on the per-image area differences, Holm-corrected over every network x patch size "
        f"at {LEDGER_ALPHA:g}. Holds when LRP is significantly lower at every patch size of every network; "
        "does not hold when the gradient method is significantly lower at one; else cannot tell"),
}



def _judged(verdicts: pd.DataFrame) -> pd.DataFrame:
    # noise added to the random control's map, already independent of everything, is not what the claim is
    # about: the control is shown in section 6 but not counted here
    judged = verdicts[verdicts["method"] != CONTROL_METHOD]
    return judged if "model" in judged.columns else judged.assign(model="the run")


def _reward_cell(verdict: pd.Series) -> str:
    """A (network, test) cell of base-method verdicts: HOLDS (a majority rewards noise), FAILS (at least
    half decided otherwise), else CANNOT_TELL."""
    rewarded = int((verdict == "rewards noise").sum())
    other = int((verdict.isin(_DECIDED) & (verdict != "rewards noise")).sum())
    if 2 * rewarded > len(verdict):
        return HOLDS
    return FAILS if 2 * other >= len(verdict) else CANNOT_TELL


def _cells(judged: pd.DataFrame, tests) -> dict:
    chosen = judged[judged["test"].isin(tests)]
    return {(model, test): (_reward_cell(part["verdict"]), int((part["verdict"] == "rewards noise").sum()),
                            len(part))
            for (model, test), part in chosen.groupby(["model", "test"], sort=True)}


def _combine(parts) -> str:
    """HOLDS when every part holds, FAILS when one fails, else CANNOT_TELL (no parts: CANNOT_TELL)."""
    parts = list(parts)
    if parts and all(p == HOLDS for p in parts):
        return HOLDS
    return FAILS if FAILS in parts else CANNOT_TELL


def thesis(verdicts: pd.DataFrame | None):
    """The seed's thesis (sections 1, D and H; eq. 11-19): randomisation checks reward noise, faithfulness
    tests do not; the rule is ``LEDGER_RULES["thesis"]``."""
    if verdicts is None or verdicts.empty:
        return UNTESTABLE, "the section 'What each test rewards' was not computed"
    judged = _judged(verdicts)
    if judged.empty:
        return UNTESTABLE, f"section 6 has no base method but the control {CONTROL_METHOD}"
    cells = _cells(judged, SEED_MPRT_TESTS)
    faithful = judged[judged["test"].isin(FAITHFULNESS_TESTS)]
    if not cells or faithful.empty:
        return UNTESTABLE, "section 6 lacks the seed's MPRT measures or the faithfulness tests"
    rewarded = faithful["verdict"] == "rewards noise"
    undecided = ~faithful["verdict"].isin(_DECIDED)
    faithful_half = FAILS if rewarded.any() else CANNOT_TELL if undecided.any() else HOLDS
    verdict = _combine([*(cell[0] for cell in cells.values()), faithful_half])
    cell_text = "; ".join(f"{model} {test}: {n}/{m} reward noise ({word})"
                          for (model, test), (word, n, m) in cells.items())
    pairs = len(faithful)
    evidence = (f"randomisation (Holm-corrected verdicts of section 6, control left out): {cell_text}. "
                f"Faithfulness: of {pairs} (network, test, method) pairs {int(rewarded.sum())} reward "
                f"noise, {int(undecided.sum())} cannot tell, "
                f"{int((faithful['verdict'] == 'indifferent').sum())} are indifferent within the margin. "
                f"Rule: {LEDGER_RULES['thesis']}")
    return verdict, evidence


def beyond_seed(verdicts: pd.DataFrame | None, test: str):
    """sMPRT or eMPRT (Hedström et al. 2023, beyond the seed): does it reward noise, per network."""
    if verdicts is None or verdicts.empty:
        return UNTESTABLE, "the section 'What each test rewards' was not computed"
    cells = _cells(_judged(verdicts), (test,))
    if not cells:
        return UNTESTABLE, f"section 6 has no {test} rows"
    verdict = _combine(cell[0] for cell in cells.values())
    text = "; ".join(f"{model}: {n}/{m} base methods reward noise ({word})"
                     for (model, _), (word, n, m) in cells.items())
    return verdict, (f"{text}. Beyond the seed, which makes no claim about {test}. Rule: "
                     f"{LEDGER_RULES['beyond']}")



def lrp_against_gradient(area: pd.DataFrame) -> pd.DataFrame:
    """Per (model, patch_size): the best LRP variant and the best gradient method by mean MoRF area, their
    Wilcoxon signed-rank p-value (scipy) on the images both scored, Holm over every row (statsmodels) and the
    word: "LRP ahead", "gradient ahead" or "cannot tell". Seed figures 1-3 (lower area is better)."""
    rows = []
    for (model, size), part in area.groupby(["model", "patch_size"], sort=True):
        wide = part.pivot_table(index="image", columns="method", values="area", aggfunc="mean")
        lrp = [m for m in wide.columns if str(m).startswith(LRP_PREFIXES)]
        gradients = [m for m in wide.columns if m in GRADIENT_METHODS]
        if not lrp or not gradients:
            continue
        best_lrp, best_gradient = wide[lrp].mean().idxmin(), wide[gradients].mean().idxmin()
        pair = wide[[best_lrp, best_gradient]].dropna()
        difference = (pair[best_lrp] - pair[best_gradient]).to_numpy(float)
        rows.append({"model": model, "patch_size": int(size), "best_lrp": best_lrp,
                     "best_gradient": best_gradient, "images": len(difference),
                     "mean_difference": float(difference.mean()) if difference.size else math.nan,
                     "p_value": _wilcoxon(difference)})
    table = pd.DataFrame(rows, columns=["model", "patch_size", "best_lrp", "best_gradient", "images",
                                        "mean_difference", "p_value"])
    p = table["p_value"].to_numpy(float)
    holm = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        holm[finite] = multipletests(p[finite], method="holm")[1]
    table["p_holm"] = holm
    significant = table["p_holm"] < LEDGER_ALPHA
    ahead = np.where(table["mean_difference"] < 0, "LRP ahead", "gradient ahead")
    table["word"] = np.where(significant, ahead, "cannot tell")
    return table


def _wilcoxon(difference: np.ndarray) -> float:
    if difference.size < 2 or np.all(difference == 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy warns about exact p-values with ties
        return float(wilcoxon(difference).pvalue)


def lrp_ahead(area: pd.DataFrame | None):
    """Figures 1-3 of the seed: LRP ahead of the gradient methods; the rule is ``LEDGER_RULES["lrp"]``."""
    if area is None:
        return UNTESTABLE, "no faithfulness_area.csv in this run"
    table = lrp_against_gradient(area)
    if table.empty:
        return UNTESTABLE, "the run lacks LRP or gradient methods"
    words = set(table["word"])
    verdict = FAILS if "gradient ahead" in words else HOLDS if words == {"LRP ahead"} else CANNOT_TELL
    evidence = "; ".join(
        f"{row.model} patch {row.patch_size}: {row.best_lrp} - {row.best_gradient} = "
        f"{row.mean_difference:+.3f} over {row.images} images, Holm p {row.p_holm:.2g}: {row.word}"
        for row in table.itertuples(index=False))
    return verdict, (f"{evidence} (the MoRF test counts a lower area as more faithful). "
                     f"Rule: {LEDGER_RULES['lrp']}")



def thesis_before(verdicts: pd.DataFrame | None) -> str | None:
    """The earlier thesis rule, for the before/after note: holds when more randomisation pairs (every MPRT
    row, sMPRT and eMPRT included) reward noise than penalise it and no faithfulness pair rewards it."""
    if verdicts is None or verdicts.empty:
        return None
    judged = _judged(verdicts)
    before = judged["verdict_uncorrected"] if "verdict_uncorrected" in judged.columns else judged["verdict"]
    randomisation = judged["test"].str.contains("MPRT")
    rewarded = int((before[randomisation] == "rewards noise").sum())
    penalised = int((before[randomisation] == "penalises noise").sum())
    faithful_rewarded = int((before[~randomisation] == "rewards noise").sum())
    return HOLDS if rewarded > penalised and faithful_rewarded == 0 else FAILS


def lrp_before(area: pd.DataFrame | None) -> str | None:
    """The earlier rule: holds when the best LRP variant's mean area is below the best gradient method's in
    every network (means over all patch sizes, no test)."""
    if area is None:
        return None
    lrp = area[area["method"].str.startswith(LRP_PREFIXES)]
    gradients = area[area["method"].isin(GRADIENT_METHODS)]
    if lrp.empty or gradients.empty:
        return None
    best_lrp = lrp.groupby(["model", "method"])["area"].mean().groupby("model").min()
    best_gradient = gradients.groupby(["model", "method"])["area"].mean().groupby("model").min()
    shared = best_lrp.index.intersection(best_gradient.index)
    return HOLDS if (best_lrp[shared] < best_gradient[shared]).all() else FAILS

