"""Report section 8: versions, seeds, device, weights checksums, profile and run time of every input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from empirical.results import package_versions
from reports.render import Note, Paragraph, Section, Table

#: stands for the report's run time in the page until it is known (reports.build replaces it)
RUN_TIME_MARK = "\u27e8report run time\u27e9"


def process_age_s() -> float | None:
    """Seconds since this process started (Linux: /proc/self/stat and /proc/uptime), so that the interpreter's
    start-up and imports, which come before any timer of the report, are counted too; None elsewhere."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the command name
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def report_rows(context, *, total: str) -> list[dict]:
    """The rows of provenance_report.csv: settings, the run time (``total``), each stage's time, what was
    computed and what reused."""
    rows = [
        dict(item="report seed", value=str(context.seed)),
        dict(item="quick", value=str(context.quick)),
        dict(item="built from", value=str(context.source) if context.source else "computed by this run"),
        dict(item="started (UTC)", value=context.started),
        dict(item="report run time (s)", value=total),
    ]
    rows += [dict(item=f"time: {name} (s)", value=f"{seconds:.1f}")
             for name, seconds in (getattr(context, "stage_s", None) or {}).items()]
    age = process_age_s()
    if age is not None and total != RUN_TIME_MARK:
        rows.append(dict(item="process run time, start-up and imports included (s)", value=f"{age:.1f}"))
    rows += [
        dict(item="computed", value="; ".join(context.computed) or "nothing"),
        dict(item="reused", value="; ".join(context.reused) or "nothing"),
        dict(item="missing", value="; ".join(context.missing) or "nothing"),
    ]
    rows += [dict(item=f"version: {name}", value="not installed" if value is None else value)
             for name, value in package_versions(VERSIONED_PACKAGES).items()]
    return rows


def write_provenance_report(context) -> pd.DataFrame:
    """Write ``tables/provenance_report.csv`` once the report is rendered: the run time then known."""
    frame = pd.DataFrame(report_rows(context, total=f"{context.elapsed_s:.1f}"))
    frame.to_csv(context.out / "tables" / "provenance_report.csv", index=False)
    return frame

#: the libraries the report's numbers depend on, whose versions the provenance section lists
VERSIONED_PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "seaborn", "torch",
                      "torchvision", "zennit", "sanity-audit")


def _flat(value) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def empirical_rows(manifest: dict) -> list[dict]:
    """The manifest of the empirical run as (item, value) rows, weights one row a model."""
    rows = []
    for key in (
        "profile",
        "experiments",
        "seed",
        "device",
        "device_name",
        "started",
        "finished",
        "elapsed_s",
        "bench",
        "argv",
    ):
        if key in manifest:
            rows.append(dict(item=key, value=_flat(manifest[key])))
    for name, version in sorted((manifest.get("versions") or {}).items()):
        rows.append(dict(item=f"version: {name}", value=_flat(version)))
    for model, weights in sorted((manifest.get("weights") or {}).items()):
        if isinstance(weights, dict):
            text = f"{weights.get('path', '?')} (sha256 {weights.get('sha256', '?')})"
        else:
            text = _flat(weights)
        rows.append(dict(item=f"weights: {model}", value=text))
    if "dataset" in manifest:
        rows.append(dict(item="dataset", value=_flat(manifest["dataset"])))
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    for method, settings in sorted((config.get("lrp_settings") or {}).items()):
        rows.append(dict(item=f"LRP rules: {method}", value=_flat(settings)))
    if "config" in manifest:
        rows.append(dict(item="config", value=_flat(manifest["config"])))
    return rows


def simulation_rows(simulations: dict) -> pd.DataFrame:
    rows = []
    for name, result in sorted(simulations.items()):
        manifest = result.manifest
        rows.append(
            dict(
                simulation=name,
                seed=_flat(manifest.get("seed", "?")),
                draws=_flat(manifest.get("draws", "?")),
                elapsed_s=manifest.get("elapsed_s", "?"),
                rows=len(result.table),
                config=_flat(manifest.get("config", {})),
            )
        )
    return pd.DataFrame(rows, columns=["simulation", "seed", "draws", "elapsed_s", "rows", "config"])


def provenance_section(context) -> Section:
    section = Section("8. Provenance", "provenance")
    manifest = context.run.manifest if context.run is not None else {}
    if manifest.get("bench") or manifest.get("profile") == "bench":
        section.add(
            Note(
                "This empirical run used the bench profile (random weights and inputs): its numbers are for "
                "speed only and say nothing about attribution methods."
            )
        )
    # the run time is known only once the page is rendered: a mark here, replaced by reports.build, which
    # then writes provenance_report.csv (write_provenance_report) with the same figure and the process's age
    frame = pd.DataFrame(report_rows(context, total=RUN_TIME_MARK))
    frame.to_csv(context.out / "tables" / "provenance_report.csv", index=False)
    section.add(
        Paragraph(
            "Every number above comes from a table under this folder: empirical/ (the empirical run and its "
            "manifest.json), simulations/ (one CSV and JSON manifest a simulation) and tables/ (what the "
            "report derived from them)."
        )
    )
    section.add(Table(frame, "This report", "tables/provenance_report.csv"))
    if manifest:
        empirical = pd.DataFrame(empirical_rows(manifest))
        empirical.to_csv(context.out / "tables" / "provenance_empirical.csv", index=False)
        section.add(
            Table(empirical, "The empirical run (empirical/manifest.json)", "tables/provenance_empirical.csv")
        )
    else:
        section.add(Note("No empirical run, so no weights, device or dataset to report."))
    simulations = simulation_rows(context.simulations)
    simulations.to_csv(context.out / "tables" / "provenance_simulations.csv", index=False)
    section.add(
        Table(simulations, "The simulations (simulations/NAME.json)", "tables/provenance_simulations.csv")
    )
    return section
