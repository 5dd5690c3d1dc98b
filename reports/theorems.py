"""Report section 1: every result of the seed with its closed form, Monte Carlo estimate, empirical value
and verdict side by side.

The Monte Carlo rows come from the simulation tables (``simulations.<name>.run``), the empirical values
from the empirical run's tables; the closed forms are named here and evaluated by ``theory``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom

from reports.inputs import EmpiricalRun, SimulationResult
from theory import overtake_from_quantiles

AGREES, PARTLY, DISAGREES, NO_DATA = "agrees", "partly agrees", "disagrees", "no data"


@dataclass(frozen=True)
class Result:
    """One result of the seed and where its numbers come from."""

    key: str
    title: str
    closed_form: str
    simulation: str | None
    keywords: tuple[str, ...] = ()  # rows of the simulation table whose `quantity` names one of these
    measure: str | None = None  # the randomization measure that shows it empirically


RESULTS = (
    Result(
        "theorem-1",
        "Theorem 1: SSIM is smallest at zero covariance (eq. 3-7)",
        "SSIM >= |lum| * c2/(var_a+var_b+c2) for cov >= 0",
        "similarity_processes",
        ("ssim",),
        "ssim",
    ),
    Result(
        "theorem-2",
        "Theorem 2: overtaking large activations is rare (eq. 21-41)",
        "P = 1/2 - atan(1/gamma_1)/pi, gamma_1 = sqrt(sum x_s^2/sum x_l^2) (eq. 27-28); bound with gamma_2 "
        "= sqrt(|X_S|/|X_L|) (eq. 33-36)",
        "cauchy_overtake",
    ),
    Result(
        "theorem-2-I",
        "Theorem 2 on trained networks (section I)",
        "K = V(q_h)/V(q_l), gamma = sqrt(q_l/(1-q_h)), P = 1/2 - atan(K/gamma)/pi",
        None,
    ),
    Result(
        "theorem-3",
        "Theorem 3: Spearman is smallest at zero rank covariance (eq. 8-10)",
        "E[rho_S] = 6/pi asin(rho/2) (population)",
        "similarity_processes",
        ("spearman",),
        "spearman",
    ),
    Result(
        "theorem-4",
        "Theorem 4: normalised MSE is largest at zero covariance (eq. 12-19)",
        "MSE <= 2 - 2 mu_a mu_b / sqrt(E[A^2] E[B^2]) (eq. 15)",
        "similarity_processes",
        ("mse",),
        "mse",
    ),
    Result(
        "eq-20",
        "Eq. 20: variance of the sample quantile",
        "p(1-p) / (n f(F^-1(p))^2)  (the seed prints the square-free form)",
        "quantile_variance",
        ("quantile", "variance"),
    ),
    Result(
        "eq-11",
        "Eq. 11: second-moment normalisation",
        "A / sqrt(mean(A^2))  (the seed prints h^2 in the sum)",
        "quantile_variance",
        ("normali", "max-abs", "second-moment"),
    ),
    Result(
        "eq-1-2",
        "Eq. 1-2: adaptive beta",
        "beta = min(-N/(P+N), beta_max); 0 where P+N <= 0",
        "adaptive_beta",
    ),
    Result(
        "section-F",
        "Section F: positive monotonicity",
        "c_i >= c_j > 0 => |R_i| >= |R_j| for gradient x input, Shapley, LRP-beta; not for the gradient",
        "monotonicity",
    ),
    Result(
        "section-G",
        "Section G: positive relevance dominance",
        "biases <= 0, logit > 0 => every layer's relevance sum = f(x) - b > 0",
        "positive_dominance",
    ),
)


def select_rows(simulation: SimulationResult | None, result: Result) -> pd.DataFrame:
    """The simulation rows behind ``result``: those whose quantity names a keyword, else the whole table."""
    if simulation is None:
        return pd.DataFrame()
    table = simulation.table
    if not result.keywords:
        return table
    quantity = table["quantity"].astype(str).str.lower()
    mask = np.zeros(len(table), dtype=bool)
    for keyword in result.keywords:
        mask |= quantity.str.contains(keyword, regex=False).to_numpy()
    return table[mask] if mask.any() else table.iloc[0:0]


def verdicts(rows: pd.DataFrame) -> pd.Series:
    """The ``agree`` column as True, False or None (no verdict: the quantity is undefined there)."""

    def parse(value):
        text = str(value).strip().lower()
        if text in ("true", "1", "1.0"):
            return True
        if text in ("false", "0", "0.0"):
            return False
        return None

    return rows["agree"].map(parse)


#: quantities of relations the seed proves for every input (section F's monotonicity of the proven methods,
#: section G's layer sums): a frequency that must be exactly 0 or 1, so one counterexample refutes it
PROVEN_FOR_EVERY_INPUT = ("violation-frequency", "all-layer-sums-positive", "input-sum-at-least-logit")
EXACT_RULE, BINOMIAL_RULE = "exact", "binomial"
#: the two judging rules, as the report prints them
JUDGING_RULES = {
    EXACT_RULE: "exact: a deterministic identity (se = 0) or a relation proven for every input; every "
                "setting must agree to its numerical tolerance, and one miss means 'disagrees'",
    BINOMIAL_RULE: "binomial: a Monte Carlo estimate with a standard error; misses are excused while their "
                   "count is no larger than chance at the stated level gives (binomial tail >= 0.01)",
}


def judging_rule(rows: pd.DataFrame) -> pd.Series:
    """Per simulation row, the rule that judges it: ``"exact"`` or ``"binomial"`` (see :data:`JUDGING_RULES`).

    Exact: identity rows (se = 0 and a point interval, ``simulations.verdicts.identity_row``) and frequencies
    of relations proven for every input (:data:`PROVEN_FOR_EVERY_INPUT` with relation ``equal``; seed
    sections F and G). Every other row carries a sampling error and is judged by the binomial rule.
    """
    if rows.empty:
        return pd.Series([], dtype=object, index=rows.index)
    se = pd.to_numeric(rows["se"], errors="coerce")
    low = pd.to_numeric(rows["ci_low"], errors="coerce")
    high = pd.to_numeric(rows["ci_high"], errors="coerce")
    identity = (se == 0) & (low == high)
    relation = rows["relation"].astype(str) if "relation" in rows.columns else pd.Series("equal", rows.index)
    proven = rows["quantity"].astype(str).isin(PROVEN_FOR_EVERY_INPUT) & (relation == "equal")
    return pd.Series(np.where(identity | proven, EXACT_RULE, BINOMIAL_RULE), index=rows.index)


def with_rule(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a ``rule`` column: which rule judged each row."""
    return rows.assign(rule=judging_rule(rows)) if not rows.empty else rows


def monte_carlo_summary(rows: pd.DataFrame) -> tuple[str, str]:
    """(text, verdict) for simulation rows: agreeing settings per quantity, the farthest row, the rules.

    Rows judged exactly (:func:`judging_rule`) disagree on a single miss; the others are judged as a family
    by the binomial chance of their misses at the table's level.
    """
    if rows.empty:
        return "not available", NO_DATA
    verdict = verdicts(rows)
    agree, disagree = int((verdict == True).sum()), int((verdict == False).sum())  # noqa: E712
    per_quantity = []
    for quantity, group in verdict.groupby(rows["quantity"].astype(str), sort=False):
        yes, no = int((group == True).sum()), int((group == False).sum())  # noqa: E712
        per_quantity.append(f"{quantity} {yes}/{yes + no}" if yes + no else f"{quantity} (no verdict)")
    decided = rows[verdict.notna().to_numpy()]
    worst = _worst_row(decided if not decided.empty else rows)
    relation = str(worst.get("relation", "equal"))
    relation = "" if relation in ("equal", "nan") else f" (relation: {relation})"
    text = (
        f"{agree}/{agree + disagree} settings agree at level {float(rows['level'].iloc[0]):g} "
        f"({'; '.join(per_quantity)}); farthest: {worst['quantity']} {_num(worst['estimate'])} "
        f"[{_num(worst['ci_low'])}, {_num(worst['ci_high'])}] vs {_num(worst['theory'])}{relation}"
    )
    if agree + disagree == 0:
        return text, NO_DATA
    rule = judging_rule(rows).to_numpy()
    exact = rule == EXACT_RULE
    exact_yes = int((verdict[exact] == True).sum())  # noqa: E712
    exact_no = int((verdict[exact] == False).sum())  # noqa: E712
    yes, no = agree - exact_yes, disagree - exact_no
    parts = []
    if exact_yes + exact_no:
        parts.append(f"exact rule: {exact_no} miss(es) in {exact_yes + exact_no} exact settings")
    if yes + no:
        parts.append(f"binomial rule: {no} miss(es) in {yes + no} sampled settings")
    text += "; " + ", ".join(parts)
    if exact_no:
        return text + " (one exact miss disagrees)", DISAGREES
    if no == 0:
        return text, AGREES
    chance = _chance_of_misses(no, yes + no, float(rows["level"].iloc[0]))
    if chance >= FAMILY_CHANCE:
        text += (
            f"; {no} miss(es) among {yes + no} sampled settings is what chance gives at this level "
            f"(P = {chance:.2g})"
        )
        return text, AGREES
    return text, PARTLY if agree else DISAGREES


# Each sampled setting's verdict errs with probability 1 - level even where the theorem holds, so a family of
# such settings is judged by how likely its count of misses is under chance (binomial tail), not by any miss.
FAMILY_CHANCE = 0.01


def _chance_of_misses(misses: int, settings: int, level: float) -> float:
    """P(at least `misses` of `settings` independent verdicts fail) when each fails with 1 - level."""
    return float(binom.sf(misses - 1, settings, 1.0 - level))


def _worst_row(rows: pd.DataFrame) -> pd.Series:
    estimate, theory = rows["estimate"].astype(float), rows["theory"].astype(float)
    se = rows["se"].astype(float)
    gap = (estimate - theory).abs() / se.where(se > 0)
    gap = gap.fillna((estimate - theory).abs())
    return rows.loc[gap.idxmax()] if gap.notna().any() else rows.iloc[0]


def empirical_similarity(run: EmpiricalRun | None, measure: str) -> str:
    """The last randomisation step against the noise floor, second-moment normalisation, per model.

    For SSIM and Spearman a value at or above the floor means non-negative covariance with the original
    map (Theorems 1, 3); for MSE the floor is a maximum (Theorem 4).
    """
    table = None if run is None else run.table("randomization.csv")
    if table is None:
        return "not measured"
    rows = table[(table["measure"] == measure) & (table["normalization"] == "second-moment")]
    if rows.empty:
        return f"no {measure} rows"
    parts = []
    for model, group in rows.groupby("model", sort=True):
        last = group[group["step"] == group["step"].max()]
        if measure == "mse":
            side = (group["value"] <= group["noise_floor"] + 1e-12).mean()
        else:
            side = (group["value"] >= group["noise_floor"] - 1e-12).mean()
        parts.append(
            f"{model}: last step {last['value'].mean():.3g} (floor {last['noise_floor'].mean():.3g}); "
            f"{side:.0%} of maps on the cov >= 0 side"
        )
    return "; ".join(parts)


def empirical_overtaking(run: EmpiricalRun | None) -> tuple[str, str, pd.DataFrame]:
    """Section I: P per model, and P recomputed by theory from the stored quantiles as a check."""
    table = None if run is None else run.table("activations.csv")
    if table is None:
        return "not measured", NO_DATA, pd.DataFrame()
    check = recompute_overtaking(table)
    stored = table[table["statistic"] == "P"]
    if stored.empty:
        return "no P rows", NO_DATA, check
    parts = [
        f"{model}: max P {g['value'].max():.3g}, median {g['value'].median():.3g} over "
        f"{g['level'].nunique()} levels"
        for model, g in stored.groupby("model", sort=True)
    ]
    verdict = NO_DATA
    if not check.empty:
        gap = float(np.nanmax(np.abs(check["P_recomputed"] - check["P_stored"])))
        parts.append(f"P recomputed from the quantiles by theory differs by at most {gap:.2g}")
        verdict = AGREES if gap <= 1e-6 else DISAGREES
    return "; ".join(parts), verdict, check


def recompute_overtaking(activations: pd.DataFrame) -> pd.DataFrame:
    """Recompute (K, gamma, P) of section I from the stored mean quantiles with theory."""
    quantiles = activations[activations["statistic"] == "quantile"]
    stored = activations[activations["statistic"] == "P"]
    if quantiles.empty or stored.empty:
        return pd.DataFrame()
    value = {
        (m, lv, round(float(q), 4)): v
        for m, lv, q, v in quantiles[["model", "level", "q", "value"]].itertuples(index=False)
    }
    rows = []
    for model, level, q_high, q_low, p_stored in stored[
        ["model", "level", "q_high", "q_low", "value"]
    ].itertuples(index=False):
        v_high = value.get((model, level, round(float(q_high), 4)))
        v_low = value.get((model, level, round(float(q_low), 4)))
        if v_high is None or v_low is None:
            continue
        _, _, p = overtake_from_quantiles(float(q_low), float(v_low), float(q_high), float(v_high))
        rows.append(
            dict(
                model=model,
                level=level,
                q_high=q_high,
                q_low=q_low,
                P_stored=float(p_stored),
                P_recomputed=float(p),
            )
        )
    return pd.DataFrame(rows)


#: what the Monte Carlo on real activations shows: the closed forms' parameters (the sets, gamma_1, K and
#: section I's quantiles) come from the same activations the Monte Carlo draws weights for
CONSISTENCY_CHECK = (
    "consistency check, not evidence about the network: the closed forms' parameters (the sets, gamma_1, K, "
    "section I's quantiles) come from the same activations the Monte Carlo draws random weights for, so "
    "agreement checks eq. 22-36 and the Monte Carlo given those activations, not that other images of the "
    "network overtake as rarely"
)


def overview(
    simulations: dict[str, SimulationResult],
    run: EmpiricalRun | None,
    overtaking_mc: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per result: closed form, Monte Carlo, empirical value, verdict and source tables."""
    rows = []
    for result in RESULTS:
        simulation = simulations.get(result.simulation) if result.simulation else None
        mc_text, mc_verdict = monte_carlo_summary(select_rows(simulation, result))
        empirical, emp_verdict, source = "none in the seed", NO_DATA, []
        if simulation is not None:
            source.append(f"simulations/{result.simulation}.csv")
        elif result.simulation:
            mc_text = f"simulations.{result.simulation} not available"
        if result.measure:
            empirical = empirical_similarity(run, result.measure)
            source.append("empirical/randomization.csv")
        if result.key == "theorem-2-I":
            empirical, emp_verdict, _ = empirical_overtaking(run)
            source.append("empirical/activations.csv")
            if overtaking_mc is not None and not overtaking_mc.empty:
                mc_text, mc_verdict = monte_carlo_summary(overtaking_mc)
                mc_text = f"{CONSISTENCY_CHECK}: {mc_text}"
                source.append("tables/overtaking_real_activations.csv")
            else:
                mc_text = "Monte Carlo on real activations not available"
        rows.append(
            dict(
                result=result.title,
                closed_form=result.closed_form,
                monte_carlo=mc_text,
                empirical=empirical,
                verdict=_combine(mc_verdict, emp_verdict),
                source=", ".join(source),
            )
        )
    return pd.DataFrame(rows)


def _combine(*verdicts: str) -> str:
    known = [v for v in verdicts if v != NO_DATA]
    if not known:
        return NO_DATA
    for verdict in (DISAGREES, PARTLY):
        if verdict in known:
            return verdict
    return AGREES


def _num(value) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
