"""The overtaking Monte Carlo of ``simulations.cauchy_overtake`` fed with an empirical run's activations.

``activation_samples.npz`` holds a subsample of pooled activations per model and level; each level's
values go through ``simulations.cauchy_overtake.overtake_on_activations``, and the rows are stacked with
their model and level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import theory
from empirical.results import NETWORKS
from simulations.cauchy_overtake import overtake_on_activations

TABLE = "overtaking_real_activations"
MAX_LEVELS = 6
MAX_LEVELS_QUICK = 2
# Random neurons per level: 5,000 puts the binomial standard error at most 0.007 (0.0014 near P = 0.01).
DRAWS = 5_000
DRAWS_QUICK = 1_000


#: the columns of the level mapping of sections I and J (our level -> module name -> seed level)
_MAPPING_COLUMNS = ("model", "level", "module", "seed_level", "seed_figure")
NO_COUNTERPART = "no counterpart in the seed"


def seed_level_text(model: str, level: int) -> str:
    """The seed's number of ``model``'s ``level`` as text, or why it has none (``NetworkSpec.seed_level``)."""
    spec = NETWORKS.get(model)
    if spec is not None and spec.seed_figure is not None:
        return str(spec.seed_level(int(level)))
    if model == "demo":
        return f"{NO_COUNTERPART} (the digits demo network is this audit's own)"
    if spec is not None:
        return f"{NO_COUNTERPART} (the seed shows no {model})"
    return f"{NO_COUNTERPART} (not a network of the seed's figures 7-10)"


def level_mapping(activations: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, level) of activations.csv: our level, the module whose input it is, the seed's
    level (figures 7-10) and the seed's figure, or ``NO_COUNTERPART`` and why."""
    pairs = activations[["model", "level", "layer"]].drop_duplicates().sort_values(["model", "level"])
    rows = [(model, int(level), layer, seed_level_text(model, level),
             getattr(NETWORKS.get(model), "seed_figure", None) or "-")
            for model, level, layer in pairs.itertuples(index=False)]
    return pd.DataFrame(rows, columns=list(_MAPPING_COLUMNS))


def with_k_domain(activations: pd.DataFrame, statistic: str = "P") -> pd.DataFrame:
    """The ``statistic`` rows (K, gamma or P) of activations.csv with ``k_defined``: whether section I's K
    is defined for the row's (q_high, q_low), from the stored mean quantiles by ``theory.k_defined`` (not
    where V(q_low) < 0 < V(q_high)). Judged from the quantiles, so a run stored before K was left undefined
    there is judged alike."""
    rows = activations[activations["statistic"] == statistic].copy()
    quantiles = activations[activations["statistic"] == "quantile"]
    value = {(m, lv, round(float(q), 2)): v
             for m, lv, q, v in quantiles[["model", "level", "q", "value"]].itertuples(index=False)}
    v_low = [value.get((m, lv, round(float(q), 2)), np.nan)
             for m, lv, q in rows[["model", "level", "q_low"]].itertuples(index=False)]
    v_high = [value.get((m, lv, round(float(q), 2)), np.nan)
              for m, lv, q in rows[["model", "level", "q_high"]].itertuples(index=False)]
    v_low, v_high = np.asarray(v_low, float), np.asarray(v_high, float)
    known = np.isfinite(v_low) & np.isfinite(v_high)
    defined = np.ones(len(rows), dtype=bool)
    if known.any():
        defined[known] = np.asarray(theory.k_defined(v_low[known], v_high[known]), dtype=bool)
    rows["k_defined"] = defined
    return rows


def undefined_k_counts(activations: pd.DataFrame) -> pd.DataFrame:
    """Per network: levels, levels with at least one (q_high, q_low) pair outside K's one-sign domain, and
    those pairs of all (section I)."""
    rows = with_k_domain(activations)
    if rows.empty:
        return pd.DataFrame(columns=["model", "levels", "levels_with_undefined_K", "pairs_undefined",
                                     "pairs"])
    per_level = rows.groupby(["model", "level"])["k_defined"].agg(lambda d: int((~d).sum()))
    grouped = per_level.groupby("model")
    return pd.DataFrame({
        "levels": grouped.size(),
        "levels_with_undefined_K": grouped.agg(lambda u: int((u > 0).sum())),
        "pairs_undefined": grouped.sum().astype(int),
        "pairs": rows.groupby("model").size(),
    }).reset_index()


def unavailable_reason(context) -> str:
    if context.run is None or context.run.table("activations.csv") is None:
        return "The Monte Carlo on real activations needs an empirical activations run."
    if not (context.run.path / "activation_samples.npz").is_file():
        return (
            "The empirical run has no activation_samples.npz: the Monte Carlo on real activations is skipped."
        )
    return "The Monte Carlo on real activations produced no rows."


def real_activations_monte_carlo(context) -> pd.DataFrame | None:
    """One block of rows per (model, level) sampled, with ``model`` and ``activation_level`` first.

    A report folder given with ``--from`` that already holds the table is reused, not recomputed.
    """
    if context.source is not None:
        earlier = Path(context.source) / "tables" / f"{TABLE}.csv"
        if earlier.is_file():
            context.reused.append(f"tables/{TABLE}.csv from {context.source}")
            return pd.read_csv(earlier)
    if context.run is None:
        return None
    samples = context.run.activation_samples()
    if not samples:
        return None
    by_model: dict[str, list[tuple[int, np.ndarray]]] = {}
    for key, values in samples.items():
        model, _, level = key.rpartition("/")
        by_model.setdefault(model, []).append((int(level), values))
    frames = []
    keep = MAX_LEVELS_QUICK if context.quick else MAX_LEVELS
    for model, levels in sorted(by_model.items()):
        levels.sort(key=lambda item: item[0])
        picks = np.unique(np.linspace(0, len(levels) - 1, min(keep, len(levels))).round().astype(int))
        for index in picks:
            level, values = levels[index]
            try:
                table = overtake_on_activations(
                    np.asarray(values, dtype=float).ravel(),
                    rng=context.rng(f"overtake/{model}/{level}"),
                    draws=DRAWS_QUICK if context.quick else DRAWS,
                )
            except Exception as error:  # one failing level must not cost the report; the report says so
                context.missing.append(f"overtaking Monte Carlo on {model}/{level} failed: {error!r}")
                continue
            table.insert(0, "seed_level", seed_level_text(model, level))
            table.insert(0, "activation_level", level)  # `level` is the confidence level of the verdict
            table.insert(0, "model", model)
            frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else None
