"""Orchestration of ``python -m reports``: obtain the inputs (reuse or compute), then write the report.

Without a source folder the report runs the simulations and the empirical ``demo`` profile into
``OUT/simulations`` and ``OUT/empirical``. With ``source`` (a report folder or a bare empirical run)
every table found there is reused and only what is missing is computed. The multi-label section (seed A.3)
reads ``multilabel_source`` (a run of ``demo-multilabel``, ``coco`` or ``voc``), else the
``empirical-multilabel`` folder of a report ``source``, else runs ``demo-multilabel`` into
``OUT/empirical-multilabel`` at the report's smaller fine-tuning (``REPORT_DEMO_SETTINGS``); its fine-tuned
network and chunks are kept there, so the next report does not refit.

Every input of ``source`` is read and checked before anything is written. The report is built in
``.OUT.partial`` beside ``OUT`` and moved into ``OUT`` only when complete, so an earlier report in ``OUT``
stays whole whatever happens (an error, a full disk, an interrupt). The partial folder keeps only the
empirical run's finished chunks after a failure, from which the same command resumes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from empirical import results
from empirical.results import EXPERIMENTS, MAX_SEED
from reports import inputs, render, sections, summary
from reports.inputs import WRITE_ERRNOS, EmpiricalRun, ReportInputError, SimulationResult
from reports.lite_section import LITE_REPORT_SETTINGS, obtain_lite
from reports.multilabel import keep_multilabel_cache, multilabel_section, obtain_multilabel
from reports.provenance import RUN_TIME_MARK, write_provenance_report
from reports.staging import (  # noqa: F401 (re-exported: the CLI and tests call them through build)
    REPORT_ENTRIES,
    check_out,
    discard_staging,
    move_into_place,
    prepare_staging,
    staging_folder,
)
from simulations import (
    adaptive_beta,
    cauchy_overtake,
    monotonicity,
    noise_injection,
    positive_dominance,
    quantile_variance,
    similarity_processes,
)
from simulations.results import write_result

#: every simulation the report runs, by its table name (simulations.SIMULATIONS)
SIMULATION_MODULES = {
    "cauchy_overtake": cauchy_overtake,
    "similarity_processes": similarity_processes,
    "quantile_variance": quantile_variance,
    "adaptive_beta": adaptive_beta,
    "monotonicity": monotonicity,
    "positive_dominance": positive_dominance,
    "noise_injection": noise_injection,
}
QUICK_IMAGES = 2
QUICK_METHODS = ("gradient", "lrp-epsilon")


@dataclasses.dataclass
class Context:
    """What the report was built from: inputs, settings, and the gaps it must state."""

    out: Path
    seed: int
    quick: bool
    progress: bool
    source: Path | None = None
    run: EmpiricalRun | None = None
    multilabel: EmpiricalRun | None = None
    lite: EmpiricalRun | None = None  # the Lite0 run and its tables (reports.lite_section)
    lite_tables: dict | None = None
    simulations: dict[str, SimulationResult] = dataclasses.field(default_factory=dict)
    computed: list[str] = dataclasses.field(default_factory=list)
    reused: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    started: str = ""
    elapsed_s: float = 0.0
    #: seconds of each stage of the build (provenance), in the order they ran
    stage_s: dict[str, float] = dataclasses.field(default_factory=dict)
    #: the banner of a --quick report (None for a full one)
    banner: str | None = None
    #: --no-multilabel: the multi-label section is left out
    skip_multilabel: bool = False

    def rng(self, name: str) -> np.random.Generator:
        """An independent stream per named computation, fixed by the report seed."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])


def build_report(
    out: Path, *, source: Path | None = None, seed: int = 0, quick: bool = False, progress: bool = True,
    multilabel_source: Path | None = None, multilabel: bool = True,
) -> Path:
    """Build the report under ``out`` and return the path of ``report.html``.

    Raises ReportInputError (a ValueError) when ``source`` is not a result folder, lacks a table its
    manifest promises or holds an unreadable input, and when ``out`` is no folder or cannot be written; these
    are checked before anything is written. An OSError while writing (a full disk) leaves ``out`` as it was.
    ``multilabel=False`` leaves the multi-label section out (no fine-tuning, nothing read).
    """
    started = time.perf_counter()  # the report's run time counts from here, checks of the inputs included
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be a non-negative integer up to {MAX_SEED}, got {seed!r}")
    out = Path(out).absolute()
    check_out(out)
    source = Path(source) if source is not None else None
    empirical_source = validate_source(source) if source is not None else None
    if not isinstance(multilabel, bool):
        raise ValueError(f"multilabel must be True or False, got {multilabel!r}")
    if not multilabel:
        multilabel_source = None
    elif multilabel_source is None and source is not None and (source / "empirical-multilabel").is_dir():
        multilabel_source = source / "empirical-multilabel"
    if multilabel_source is not None:
        multilabel_source = inputs.empirical_folder(Path(multilabel_source))
        inputs.load_empirical(multilabel_source)
    staging = prepare_staging(out, keep_chunks_of=None if source is not None else out / "empirical")
    if multilabel_source is None and multilabel:
        keep_multilabel_cache(out / "empirical-multilabel", staging / "empirical-multilabel")
    context = Context(
        out=staging,
        seed=seed,
        quick=quick,
        progress=progress,
        source=source,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        banner=summary.quick_banner(quick_settings()) if quick else None,
        skip_multilabel=not multilabel,
    )
    try:
        _build(context, empirical_source, started, multilabel_source)
        move_into_place(staging, out)
    except BaseException:
        discard_staging(staging)
        raise
    return out / "report.html"


def _build(context: Context, empirical_source: Path | None, started: float,
           multilabel_source: Path | None = None) -> None:
    out = context.out
    for folder in ("figures", "tables", "simulations"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    context.stage_s["checks of the inputs"] = time.perf_counter() - started
    with tqdm(total=4, desc="report", unit="stage", disable=not context.progress) as bar:
        bar.set_postfix_str("empirical")
        with _stage(context, "empirical run"):
            context.run = obtain_empirical(context, empirical_source)
        with _stage(context, "EfficientNet-Lite0 run"):
            obtain_lite(context, context.source if empirical_source else None, obtain_empirical)
        with _stage(context, "multi-label run"):
            context.multilabel = obtain_multilabel(context, multilabel_source)
        bar.update()
        bar.set_postfix_str("simulations")
        with _stage(context, "simulations"):
            context.simulations = obtain_simulations(context)
        bar.update()
        bar.set_postfix_str("figures and tables")
        with _stage(context, "figures and tables"):
            report_sections = sections.compose(context)
            report_sections.insert(3, multilabel_section(context))  # after faithfulness (section 3)
        bar.update()
        bar.set_postfix_str("writing")
        clock = time.perf_counter()
        report_sections.append(sections.provenance(context))
        report_sections.insert(0, summary.summary_section(context))
        title = "sanity-audit report: theory, Monte Carlo and real networks side by side"
        markdown = render.to_markdown(title, report_sections, banner=context.banner)
        page = render.to_html(title, report_sections, out, banner=context.banner)
        # the run time on the page and in provenance_report.csv: up to here, the rendering included (writing
        # the two files and renaming the folder into place take milliseconds)
        context.stage_s["writing"] = time.perf_counter() - clock
        context.elapsed_s = time.perf_counter() - started
        total = f"{context.elapsed_s:.1f}"
        markdown, page = (text.replace(RUN_TIME_MARK, total) for text in (markdown, page))
        (out / "report.md").write_text(markdown)
        (out / "report.html").write_text(page)
        write_provenance_report(context)
        bar.update()


class _stage:
    """Time one stage of the build into ``context.stage_s`` (a context manager)."""

    def __init__(self, context: Context, name: str):
        self.context, self.name = context, name

    def __enter__(self):
        self.clock = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.context.stage_s[self.name] = time.perf_counter() - self.clock
        return False


def quick_settings() -> dict:
    """What ``--quick`` reduces, for the banner of every page of a quick report (read from the settings
    themselves, so that the banner cannot drift from them)."""
    from empirical.results import QUICK_DEMO_SETTINGS, REPORT_DEMO_SETTINGS
    from reports.multilabel import _QUICK

    quick, full = QUICK_DEMO_SETTINGS, REPORT_DEMO_SETTINGS
    return {"empirical run": f"{QUICK_IMAGES} images, methods {', '.join(QUICK_METHODS)}",
            "multi-label run": f"{_QUICK[0]} images, methods {', '.join(_QUICK[1])}, fine-tuned "
                               f"{quick['epochs']} epochs on {quick['train_canvases']} canvases (full: "
                               f"{full['epochs']} on {full['train_canvases']})",
            "EfficientNet-Lite0": f"left out (the full report: {LITE_REPORT_SETTINGS['images']} photographs)",
            "simulations": "each simulation's quick draw count (cauchy_overtake: "
                           f"{cauchy_overtake.Config.quick().draws:,} draws)"}


def validate_source(source: Path) -> Path:
    """Read and check every input of ``--from`` (manifest, tables, activation samples, simulation tables);
    returns the empirical run folder inside it. Raises ReportInputError naming the first bad file."""
    empirical_source = inputs.empirical_folder(source)
    inputs.load_empirical(empirical_source)
    folder = inputs.simulations_folder(source)
    if folder.is_dir():
        for name in SIMULATION_MODULES:
            inputs.load_simulation(folder, name)
    return empirical_source


def obtain_empirical(context: Context, source: Path | None, *, profile="demo",
                     folder: str = "empirical", settings: dict | None = None) -> EmpiricalRun | None:
    """Reuse the run at ``source`` (copied into OUT/``folder``) or run ``profile`` with ``settings``."""
    target = context.out / folder
    if source is not None:
        inputs.copy_empirical(source, target)
        context.reused.append(f"empirical run from {source}")
        return inputs.load_empirical(target)
    options = dict(profile=profile, out=target, seed=context.seed, progress=context.progress)
    if settings is not None:
        options.update(settings)
    elif context.quick:
        options.update(quick_empirical_options())
    _discard_other_settings(context, target, options)
    finished, stage_s, profile = [], {}, getattr(profile, "name", profile)
    for experiment in EXPERIMENTS:  # one at a time, so that one failing experiment costs only its sections
        started = time.perf_counter()
        earlier = results.finished_chunks(target, [experiment])
        try:
            results.run([experiment], **options)
        except ValueError:
            raise  # bad settings: the user's to fix, with the runner's message
        except OSError as error:
            if error.errno in WRITE_ERRNOS:
                raise  # a full disk fails every later write too: one message, not a report of gaps
            context.missing.append(f"the empirical {experiment!r} experiment failed: {error!r}")
            continue
        except Exception as error:
            context.missing.append(f"the empirical {experiment!r} experiment failed: {error!r}")
            continue
        finished.append(experiment)
        stage_s[experiment] = time.perf_counter() - started
        now = results.finished_chunks(target, [experiment])
        if earlier and now == earlier:
            context.reused.append(f"empirical {profile} {experiment}: all {now} finished chunks of an "
                                  f"earlier build ({stage_s[experiment]:.1f} s to collect them)")
        else:
            partly = f", {earlier} of {now} chunks reused" if earlier else ""
            context.computed.append(f"empirical {profile} {experiment} ({stage_s[experiment]:.1f} s{partly})")
    if not finished:
        return None
    if len(finished) > 1:  # resumes from the finished chunks: one manifest and table set for them all
        started = time.perf_counter()
        results.run(finished, **options)
        stage_s["tables and manifest of all experiments"] = time.perf_counter() - started
    record_stage_times(target / "manifest.json", stage_s)
    return inputs.load_empirical(target)


def record_stage_times(manifest_path: Path, stage_s: dict[str, float]) -> None:
    """Write the report's per-experiment times into the empirical run's manifest: the report runs them one
    at a time, then once together for one manifest (resuming from their chunks: a fraction of a second).
    ``elapsed_s`` becomes the sum of every call, ``stage_elapsed_s`` names each, and the runner's own figure
    for the last call is kept as ``last_call_elapsed_s``."""
    if not manifest_path.is_file() or not stage_s:
        return
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if "elapsed_s" in manifest:
        manifest["last_call_elapsed_s"] = manifest["elapsed_s"]
    manifest["stage_elapsed_s"] = {name: round(value, 3) for name, value in stage_s.items()}
    manifest["elapsed_s"] = round(sum(stage_s.values()), 3)
    manifest_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")


def _discard_other_settings(context: Context, target: Path, options: dict) -> None:
    # OUT/empirical belongs to the report: chunks left by a run with another seed or image count (a --quick
    # look before the full run) are superseded, not resumed; the empirical runner would refuse to mix them.
    images = options.get("images")
    if images is None:
        images = results.default_images(options.get("profile", "demo"))
    if results.superseded(target, seed=context.seed, images=images):  # damaged settings: superseded too
        results.discard_resume_state(target)
        context.computed.append("discarded OUT/empirical/chunks of an earlier run with other settings")


def quick_empirical_options() -> dict:
    """A couple of images and two cheap methods for ``--quick``: a first look in about a minute."""
    return {"images": QUICK_IMAGES, "methods": list(QUICK_METHODS)}


def obtain_simulations(context: Context) -> dict[str, SimulationResult]:
    """Each simulation table: reused from the source folder or OUT/simulations, else computed."""
    target = context.out / "simulations"
    found = {}
    for name in tqdm(
        SIMULATION_MODULES, desc="simulations", unit="table", leave=False, disable=not context.progress
    ):
        for folder in _simulation_sources(context):
            result = inputs.load_simulation(folder, name)
            if result is not None:
                _copy_simulation(folder, target, name)
                context.reused.append(f"simulations/{name}.csv from {folder}")
                found[name] = inputs.load_simulation(target, name)
                break
        else:
            result = run_simulation(context, name, target)
            if result is not None:
                found[name] = result
    return found


def _simulation_sources(context: Context) -> list[Path]:
    # Without --from every simulation is recomputed, so a changed seed or --quick never reuses stale tables.
    if context.source is None:
        return []
    folder = inputs.simulations_folder(context.source)
    return [folder] if folder.is_dir() else []


def _copy_simulation(source: Path, target: Path, name: str) -> None:
    if source.resolve() == target.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    for suffix in (".csv", ".json", ".png"):
        path = source / f"{name}{suffix}"
        if path.is_file():
            shutil.copy2(path, target / path.name)


def run_simulation(context: Context, name: str, target: Path) -> SimulationResult | None:
    """Run ``simulations.NAME`` at report size (or ``Config.quick()``) and write NAME.csv/.json/.png."""
    module = SIMULATION_MODULES[name]
    config = module.Config.quick() if context.quick else report_config(module.Config)
    started = time.perf_counter()
    try:
        table = module.run(config, rng=context.rng(name))
    except Exception as error:  # a failing simulation must not cost the other sections; the report says so
        context.missing.append(f"simulations.{name} failed: {error!r}")
        return None
    elapsed = time.perf_counter() - started
    try:
        write_result(target, name, table, config=config, seed=[context.seed, zlib.crc32(name.encode())],
                     elapsed_s=elapsed, plot=module.plot, made_by="python -m reports")
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise  # not a broken plot: nothing more can be written
        context.missing.append(f"simulations.{name}.plot failed: {error}")
    except Exception as error:  # a broken plot must not cost the table, written before the figure
        context.missing.append(f"simulations.{name}.plot failed: {error}")
    context.computed.append(f"simulations/{name}.csv ({elapsed:.1f} s)")
    return inputs.load_simulation(target, name)


def report_config(config_type):
    """The simulation's default configuration (its CLI defaults are sized for a report)."""
    return config_type()


__all__ = ["build_report", "Context", "ReportInputError", "staging_folder"]
