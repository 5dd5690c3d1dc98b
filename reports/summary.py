"""The one-screen summary at the top of the report, and the banner of a ``--quick`` report.

The summary gives the answer before the detail: the verdict of every claim of the claims ledger (section 7)
with the key numbers behind it, the verdicts of the theorem-by-theorem table (section 1), and what was run
(networks, images, methods, simulations, time). It reads the tables the sections wrote under ``OUT/tables``,
so it says nothing the sections below do not.

Equations and sections are numbered as in the supplement of Binder et al., CVPR 2023, "Shortcomings of
Top-Down Randomization-Based Sanity Checks for Evaluations of Deep Neural Network Explanations".
"""

from __future__ import annotations

import pandas as pd

from reports.provenance import RUN_TIME_MARK
from reports.render import Note, Paragraph, Section, Table

__all__ = ["KEY_NUMBERS_CHARS", "quick_banner", "summary_section"]

#: the key numbers of a claim shown in the summary: its evidence cut to about this many characters
KEY_NUMBERS_CHARS = 170

_CITATION = (
    'This report audits Binder et al., CVPR 2023, "Shortcomings of Top-Down Randomization-Based Sanity '
    'Checks for Evaluations of Deep Neural Network Explanations", and its supplement ("the seed" below; '
    "equations and sections are numbered as in the supplement). The claims' verdicts come first; the "
    "evidence for each follows in sections 1-8."
)


def quick_banner(quick_settings: dict) -> str:
    """The banner of a ``--quick`` report: what was reduced, and that its numbers are not for citation."""
    reduced = "; ".join(f"{what}: {how}" for what, how in quick_settings.items())
    return (f"Quick report (--quick): reduced settings ({reduced}). Its numbers are a first look, not for "
            "citation; run python -m reports without --quick for the report.")


def _key_numbers(evidence: str) -> str:
    text = " ".join(str(evidence).split())
    if len(text) <= KEY_NUMBERS_CHARS:
        return text
    cut = text[:KEY_NUMBERS_CHARS].rsplit(" ", 1)[0].rstrip(";,:")
    return cut + " ... (section 7)"


def _read(path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return None


def _run_values(run, key: str, column: str) -> list[str]:
    """``config[key]`` of the run's manifest, else the distinct ``column`` values of its tables."""
    listed = (run.manifest.get("config") or {}).get(key)
    if listed:
        return [str(value) for value in listed]
    seen = {}
    for table in run.tables.values():
        if table is not None and column in table.columns:
            seen.update(dict.fromkeys(table[column].astype(str)))
    return list(seen)


def _describe_run(run, label: str) -> str:
    dataset = run.manifest.get("dataset") or {}
    config = run.manifest.get("config") or {}
    models, methods = _run_values(run, "models", "model"), _run_values(run, "methods", "method")
    images = dataset.get("images", config.get("images", "?"))
    name = dataset.get("name") or dataset.get("source") or "unnamed"
    return (f"{label}: networks {', '.join(models) or 'none'} on {images} images ({name}), {len(methods)} "
            f"attribution methods (profile {run.manifest.get('profile', '?')}, device "
            f"{run.manifest.get('device', '?')})")


def _what_was_run(context) -> str:
    parts = []
    run = context.run
    parts.append(_describe_run(run, "empirical") if run is not None else "no empirical run")
    multilabel = getattr(context, "multilabel", None)
    if multilabel is not None:
        parts.append(_describe_run(multilabel, "multi-label"))
    lite = getattr(context, "lite", None)
    if lite is not None:
        parts.append(_describe_run(lite, "pretrained"))
    parts.append(f"{len(context.simulations)} Monte Carlo simulations")
    parts.append(f"report seed {context.seed}")
    return "What was run: " + "; ".join(parts) + f". Built in {RUN_TIME_MARK} s."


def summary_section(context) -> Section:
    """The summary: citation, claims' verdicts with their key numbers, theorem verdicts, what was run."""
    section = Section("Summary", "summary")
    section.add(Paragraph(_CITATION))
    if getattr(context, "banner", None):
        section.add(Note(context.banner))
    ledger = _read(context.out / "tables" / "claims.csv")
    if ledger is not None and {"claim", "verdict", "evidence"} <= set(ledger.columns):
        shown = pd.DataFrame({"claim of the seed": ledger["claim"], "verdict": ledger["verdict"],
                              "key numbers": ledger["evidence"].map(_key_numbers)})
        counts = ledger["verdict"].value_counts()
        section.add(Table(shown, "Claims: " + ", ".join(f"{n} {v}" for v, n in counts.items()),
                          "tables/claims.csv"))
    else:
        section.add(Note("The claims ledger was not computed (section 7 says why)."))
    theorems = _read(context.out / "tables" / "theorems.csv")
    if theorems is not None and {"result", "verdict"} <= set(theorems.columns):
        counts = theorems["verdict"].fillna("no verdict").value_counts()
        section.add(Paragraph(
            f"Theorem by theorem (section 1): {len(theorems)} results of the seed against Monte Carlo and "
            "the networks; " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."))
    section.add(Paragraph(_what_was_run(context)))
    if context.missing:
        section.add(Note(f"{len(context.missing)} inputs are missing or failed; section 1 lists them."))
    return section
