"""The sections of the report, each built from the inputs in a :class:`reports.build.Context`.

Every section writes its figures to ``OUT/figures`` and the tables it shows to ``OUT/tables`` and
returns a :class:`reports.render.Section`. A section without data says what is missing.
"""

from __future__ import annotations

import shutil

import pandas as pd

from empirical.results import MEASURES, MPRT_NORMALIZATIONS
from reports import claims, evidence, figures, overtaking, rewards, stats, symmetric, theorems
from reports.lite_section import lite_sections
from reports.provenance import provenance_section
from reports.render import Figure, Note, Paragraph, Section, Table


def _save(context, frame: pd.DataFrame, name: str) -> str:
    relative = f"tables/{name}.csv"
    frame.to_csv(context.out / relative, index=False)
    return relative


def _figure(context, make, name: str, caption: str, *args) -> Figure | Note:
    relative = f"figures/{name}.png"
    try:
        make(*args, context.out / relative)
    except ValueError as error:  # a table without the rows this figure needs
        return Note(f"Figure '{caption}' could not be drawn: {error}")
    return Figure(relative, caption)


def compose(context) -> list[Section]:
    """Sections 1-7 (provenance comes last, once the run time is known)."""
    mc = overtaking.real_activations_monte_carlo(context)
    if mc is not None and not mc.empty:
        _save(context, mc, "overtaking_real_activations")
    return [
        theorem_section(context, mc),
        randomization_section(context),
        faithfulness_section(context),
        overtaking_section(context, mc),
        nonpositive_section(context),
        rewards.rewards_section(context),
        *lite_sections(context, (randomization_section, faithfulness_section, overtaking_section,
                                 nonpositive_section, rewards.rewards_section)),
        claims.claims_section(context),
    ]


def _table(context, name: str):
    return None if context.run is None else context.run.table(name)


def _missing_empirical(section: Section, context, table: str) -> Section:
    if context.run is None:
        return section.add(Note("No empirical run: " + "; ".join(context.missing or ["none was given"])))
    return section.add(
        Note(
            f"The empirical run at {context.run.path} has no {table} (its manifest lists the experiments "
            f"{', '.join(context.run.experiments)})."
        )
    )


def theorem_section(context, mc: pd.DataFrame | None) -> Section:
    section = Section("1. Theorem by theorem", "theorems")
    section.add(
        Paragraph(
            "For every result of the seed: the closed form (theory), the Monte Carlo estimate with its "
            "interval (simulations) and the value measured on a real network (empirical), with a verdict. A "
            "verdict 'agrees' means every setting agrees with the closed form under the rule that judges "
            "it, and every empirical consistency check holds. Two rules, named in each row's 'rule' column: "
            f"{theorems.JUDGING_RULES[theorems.EXACT_RULE]}; "
            f"{theorems.JUDGING_RULES[theorems.BINOMIAL_RULE]}. "
            "'Partly agrees' means more sampled settings miss than chance allows. Some "
            "disagreements are findings, not defects, and the simulation's docstring names them: the mean of "
            "windowed SSIMs sits below Theorem 1's formula (a mean of ratios is not a ratio of means), and "
            "eq. 20 is asymptotic, so it misses the 0.99-quantile at n = 200. The per-setting rows below say "
            "which settings disagree."
        )
    )
    for problem in context.missing:
        section.add(Note(problem))
    table = theorems.overview(context.simulations, context.run, mc)
    section.add(Table(table, "Results of the seed side by side", _save(context, table, "theorems")))
    shown: set[str] = set()
    for result in theorems.RESULTS:
        simulation = context.simulations.get(result.simulation) if result.simulation else None
        rows = theorems.select_rows(simulation, result)
        if not rows.empty:
            section.add(
                Table(
                    theorems.with_rule(rows),
                    f"{result.title}: Monte Carlo against the closed form (rule: which rule judged the row)",
                    f"simulations/{result.simulation}.csv",
                    max_rows=12,
                )
            )
        if simulation is not None and simulation.figure is not None and simulation.name not in shown:
            shown.add(simulation.name)  # similarity_processes serves three theorems: one figure
            relative = f"figures/simulation_{simulation.name}.png"
            shutil.copy2(simulation.figure, context.out / relative)
            section.add(Figure(relative, f"Monte Carlo: simulations.{simulation.name}"))
        if result.key == "eq-20":
            section.add(*_eq20_evidence(context))
        if result.key == "eq-11":
            section.add(*_eq11_evidence(context))
        if result.key == "theorem-2-I":
            _, _, check = theorems.empirical_overtaking(context.run)
            if not check.empty:
                section.add(
                    Table(
                        check,
                        "Section I: P stored by the empirical run against P recomputed by "
                        "theory.overtake_from_quantiles",
                        _save(context, check, "overtaking_check"),
                        max_rows=10,
                    )
                )
    return section


def _eq20_evidence(context) -> list:
    replications = 2_000 if context.quick else 10_000
    frame = evidence.quantile_variance_evidence(rng=context.rng("eq20"), replications=replications)
    printed = frame.iloc[1]
    return [
        Paragraph(
            "The seed prints eq. 20 as p(1-p)/(n f(F^-1(p))), without the square on the density. A direct "
            f"Monte Carlo check (normal, p = 0.9, n = 1000, {replications} replications) decides between "
            f"the two forms: the printed form lies {printed['z']:.0f} standard errors from the estimate, "
            f"the squared form {frame.iloc[0]['z']:.1f}. The suite encodes the squared form."
        ),
        Table(
            frame,
            "Eq. 20 as printed and as verified, against Monte Carlo",
            _save(context, frame, "eq20_evidence"),
        ),
    ]


def _eq11_evidence(context) -> list:
    frame = evidence.normalization_evidence(rng=context.rng("eq11"))
    return [
        Paragraph(
            "The seed prints eq. 11 with h^2 in the sum where A^2 is meant; it states the aim: the mean "
            "squared score becomes 1. With A^2 it is 1 for every map; reading h literally (the row index, "
            "the only h in the equation) the normaliser ignores the map and the mean square follows its "
            "scale and size."
        ),
        Table(frame, "Eq. 11: mean square of the normalised map", _save(context, frame, "eq11_evidence")),
    ]


def randomization_section(context) -> Section:
    section = Section("2. Model randomisation (seed figures 4-6)", "randomization")
    table = _table(context, "randomization.csv")
    if table is None:
        return _missing_empirical(section, context, "randomization.csv")
    section.add(
        Paragraph(
            "Similarity between the attribution map of the trained model and that of the model randomised "
            "top-down up to each step, per method (95% bands over images). The dashed line is the noise "
            "floor: the score of a map with zero covariance and matched moments (Theorems 1, 3, 4). A "
            "method whose curve sits at the floor cannot be told from independent noise by this check, "
            "whatever its faithfulness."
        )
    )
    steps = table.groupby("model")["step"].max()
    section.add(
        Paragraph(
            "Randomisation steps reached: "
            + ", ".join(f"{m} {s}" for m, s in steps.items())
            + " (the seed's top-down rule is followed; the count each network reaches is shown, and may "
            "differ from the seed's figures 4-6 where a library's network has a different number of "
            "re-initialisable layers)."
        )
    )
    for normalization in MPRT_NORMALIZATIONS:
        for measure in MEASURES:
            section.add(
                _figure(
                    context,
                    figures.randomization,
                    f"randomization_{measure}_{normalization}",
                    f"{measure.upper()} after {normalization} normalisation",
                    table,
                    measure,
                    normalization,
                )
            )
    summary = (
        table[table["step"] == table.groupby("model")["step"].transform("max")]
        .groupby(["model", "measure", "normalization", "method"], as_index=False)
        .agg(value=("value", "mean"), noise_floor=("noise_floor", "mean"), images=("image", "nunique"))
    )
    section.add(Paragraph(normalisation_change_text(summary)))
    section.add(
        Table(
            summary,
            "Last randomisation step: mean score and noise floor",
            _save(context, summary, "randomization_last_step"),
        )
    )
    return section


def normalisation_change_text(summary: pd.DataFrame) -> str:
    """What the normalisation changes, from the last step's mean scores (``summary``: model, measure,
    normalization, method, value): per measure, the largest |max-abs - second-moment| difference over
    (model, method) and where it is. Only the numbers it states; section D.1 for why the two can differ."""
    head = ("What the normalisation changes: the last step's mean score under both normalisations. Max-abs "
            "divides by one extreme pixel, second-moment by the root mean square (eq. 11; section D.1 on "
            "the maximum as a normaliser).")
    wide = summary.pivot_table(index=["measure", "model", "method"], columns="normalization", values="value",
                               aggfunc="mean")
    if not {"max-abs", "second-moment"} <= set(wide.columns):
        return head + " This run has not both normalisations, so there is nothing to compare."
    difference = (wide["max-abs"] - wide["second-moment"]).dropna()
    parts = []
    for measure, part in difference.groupby(level="measure", sort=True):
        where = part.abs().idxmax()
        parts.append(f"{measure}: largest |max-abs - second-moment| {abs(part[where]):.3g} ({where[1]}, "
                     f"{where[2]}), median {part.abs().median():.3g} over {len(part)} (network, method) "
                     "pairs")
    return (head + " Measured here: " + "; ".join(parts) + ".") if parts else head


def faithfulness_section(context) -> Section:
    section = Section("3. Faithfulness (seed figures 1-3)", "faithfulness")
    curves, area = _table(context, "faithfulness.csv"), _table(context, "faithfulness_area.csv")
    if curves is None or area is None:
        return _missing_empirical(section, context, "faithfulness.csv / faithfulness_area.csv")
    section.add(
        Paragraph(
            "Softmax score of the explained class while the 30 most relevant patches are replaced one by "
            "one from a blurred copy (step 0 = unaltered). The test (the seed's section 3) counts a faster "
            "drop, a lower area, as a more faithful map; where the random-uniform control has the lowest "
            "area, the figure marks it: the test then ranks random patches above every method."
        )
    )
    for patch_size in sorted(curves["patch_size"].unique()):
        section.add(
            _figure(
                context,
                figures.faithfulness,
                f"faithfulness_patch{patch_size}",
                f"Score against alteration step, patch size {patch_size}",
                curves,
                int(patch_size),
            )
        )
    ranking = stats.rank_methods(area)
    section.add(
        _figure(context, figures.faithfulness_area, "faithfulness_area", "Mean area per method", ranking)
    )
    section.add(
        Table(
            ranking,
            "Methods ranked by mean area (the test counts lower as more faithful; 95% t interval)",
            _save(context, ranking, "faithfulness_ranking"),
        )
    )
    tests = stats.paired_tests(area)
    significant = int(tests["significant"].sum()) if not tests.empty else 0
    section.add(
        Paragraph(
            "Paired comparisons on the same images: Wilcoxon signed-rank test per pair, Holm-corrected "
            "within each model and patch size (statsmodels), mean difference with a paired t interval. "
            f"{significant} of {len(tests)} differences are significant at 5%."
        )
    )
    section.add(
        Table(
            tests,
            "Paired tests of the area (a minus b; negative: the test counts a as more faithful)",
            _save(context, tests, "faithfulness_tests"),
        )
    )
    for block in symmetric.symmetric_blocks(context, area, _table(context, "faithfulness_lerf_area.csv")):
        section.add(block)
    return section


def overtaking_section(context, mc: pd.DataFrame | None) -> Section:
    section = Section("4. Overtaking (seed figures 7-9)", "overtaking")
    table = _table(context, "activations.csv")
    if table is None:
        return _missing_empirical(section, context, "activations.csv")
    section.add(
        Paragraph(
            "P(Z >= K) per level from the mean activation quantiles (section I): for a bottom fraction "
            "q_low and a top fraction 1 - q_high, K = V(q_high)/V(q_low) and gamma = sqrt(q_low/(1 - "
            "q_high)). Low values mean that random weights rarely let the many small activations overtake "
            "the few large ones (Theorem 2). K is defined only where V(q_low) and V(q_high) share a sign "
            "(the one-sign bound, eq. 29-36); where they do not, K and P are undefined and left out of "
            "the figures and the ledger (table below)."
        )
    )
    _add_level_mapping(context, section, table, "overtaking_levels")
    undefined = overtaking.undefined_k_counts(table)
    if not undefined.empty:
        section.add(
            Table(
                undefined,
                "Levels and (q_high, q_low) pairs outside K's one-sign domain, per network",
                _save(context, undefined, "overtaking_undefined_k"),
            )
        )
    for model in sorted(table["model"].unique()):
        section.add(
            _figure(
                context,
                figures.overtaking,
                f"overtaking_{model}",
                f"Overtaking probabilities, {model}",
                table,
                model,
            )
        )
    if mc is None or mc.empty:
        section.add(Note(overtaking.unavailable_reason(context)))
    else:
        section.add(
            Paragraph(
                "The same levels' real activations fed to the overtaking Monte Carlo "
                "(simulations.cauchy_overtake): random Gaussian weights, frequency with which the bottom "
                "set's weighted sum overtakes the top set's, against the exact eq. 27-28. This is a "
                + theorems.CONSISTENCY_CHECK
                + "."
            )
        )
        section.add(
            _figure(
                context,
                figures.overtaking_monte_carlo,
                "overtaking_real_activations",
                "Overtaking frequency on real activations",
                mc,
            )
        )
        section.add(
            Table(
                mc, "Monte Carlo on real activations", "tables/overtaking_real_activations.csv", max_rows=20
            )
        )
    return section


def _add_level_mapping(context, section, table, name) -> None:
    mapping = overtaking.level_mapping(table)
    section.add(Table(mapping, "Levels: our level (input of the n-th convolution or linear layer, from 0) -> "
                      "module name -> the seed's level in figures 7-10", _save(context, mapping, name)))


def nonpositive_section(context) -> Section:
    section = Section("5. Non-positive activations (seed figure 10)", "nonpositive")
    table = _table(context, "activations.csv")
    if table is None:
        return _missing_empirical(section, context, "activations.csv")
    section.add(
        Paragraph(
            "Fraction of the input values of each convolution or linear layer that are <= 0, averaged over "
            "images (the seed's section J; its claims about these fractions are judged in the claims "
            "ledger, section 7)."
        )
    )
    section.add(
        _figure(context, figures.nonpositive, "nonpositive", "Non-positive activations per level", table)
    )
    _add_level_mapping(context, section, table, "nonpositive_levels")
    rows = table[table["statistic"] == "nonpositive_fraction"]
    summary = rows.groupby("model", as_index=False).agg(
        levels=("level", "nunique"),
        mean_fraction=("value", "mean"),
        min_fraction=("value", "min"),
        max_fraction=("value", "max"),
    )
    section.add(Table(summary, "Non-positive fraction per model", _save(context, summary, "nonpositive")))
    return section


def provenance(context) -> Section:
    """Section 6: where every number comes from."""
    return provenance_section(context)
