"""The multi-label section of the report (seed A.3: figure 2 right and figure 3 faithfulness curves, figure 6
SSIM randomisation curves) from a run of a multi-label profile (``demo-multilabel``, ``coco``, ``voc``).

The same figures, 95% bands and paired tests as the single-label sections (``reports.figures``,
``reports.stats``), labelled by the run's dataset (``manifest.json``: ``dataset.name``). The curves follow the
sigmoid of the explained label, which is the network's highest predicted label, not a ground truth.
"""

from __future__ import annotations

import time
from pathlib import Path

from empirical import results
from empirical.results import (
    MPRT_NORMALIZATIONS,
    QUICK_DEMO_SETTINGS,
    REPORT_DEMO_SETTINGS,
    RESUME_ENTRIES,
    check_finetune_settings,
    recorded_checkpoint,
    relative_to_run,
    reusable_finetuning,
)
from reports import figures, inputs, stats
from reports.inputs import WRITE_ERRNOS, EmpiricalRun
from reports.render import Note, Paragraph, Section, Table
from reports.sections import _figure, _save

__all__ = ["DATASET_TITLES", "KEPT_EMPIRICAL", "MULTILABEL_EXPERIMENTS", "MULTILABEL_IMAGES",
           "MULTILABEL_METHODS", "keep_multilabel_cache", "multilabel_section", "obtain_multilabel",
           "reusable_finetuning"]

DATASET_TITLES = {"digit-canvases": "the embedded multi-digit canvases (demo-multilabel)", "coco": "MSCOCO",
                  "voc": "PASCAL VOC"}
#: the kept parts of a report's empirical folders (the demo's, the multi-label run's and
#: EfficientNet-Lite0's): their resume state (finished chunks, the multi-label demo's fine-tuning), from
#: which the next build resumes
KEPT_EMPIRICAL = {"empirical": RESUME_ENTRIES, "empirical-multilabel": RESUME_ENTRIES,
                  "empirical-lite0": RESUME_ENTRIES}
#: the multi-label section's demo run: held-out canvases and methods (the fine-tuning: REPORT_DEMO_SETTINGS)
MULTILABEL_IMAGES = 16
MULTILABEL_METHODS = ("gradient", "lrp-epsilon", "epsilon-plus-flat", "random-uniform")
MULTILABEL_EXPERIMENTS = ("faithfulness", "randomization")
#: ``--quick``: images and methods of the multi-label run
_QUICK = (2, ("gradient", "lrp-epsilon"))


def multilabel_section(context) -> Section:
    """Section 3b: faithfulness and randomisation of a fine-tuned multi-label network."""
    section = Section("3b. Multi-label: faithfulness and randomisation (seed A.3, figures 2 right, 3, 6)",
                      "multilabel")
    run = getattr(context, "multilabel", None)
    if run is None and getattr(context, "skip_multilabel", False):
        return section.add(Note("Left out by --no-multilabel: no multi-label run was made or read."))
    if run is None:
        problems = [p for p in context.missing if "multi-label" in p]
        return section.add(Note("No multi-label run: " + "; ".join(problems or ["none was given"])))
    manifest = run.manifest
    dataset = (manifest.get("dataset") or {}).get("name", "unknown")
    fitted = _fitted(manifest.get("finetune") or {}, run.path, getattr(context, "out", None))
    images = (manifest.get("dataset") or {}).get("images", "?")
    section.add(Paragraph(
        f"Dataset: {DATASET_TITLES.get(dataset, dataset)}, profile {manifest.get('profile')!r}, "
        f"{images} images.{fitted} Each image is explained for its "
        "highest predicted label (seed A.3), and the faithfulness curves follow the sigmoid of that label's "
        "logit where the ImageNet curves follow the softmax: the labels are scored independently, and a "
        "softmax over them would couple them."))
    curves, area = run.table("faithfulness.csv"), run.table("faithfulness_area.csv")
    if curves is None or area is None:
        section.add(Note(f"The multi-label run at {run.path} has no faithfulness tables."))
    else:
        for patch_size in sorted(curves["patch_size"].unique()):
            section.add(_figure(context, _faithfulness, f"multilabel_faithfulness_patch{patch_size}",
                                f"{dataset}: sigmoid score against alteration step, patch size {patch_size}",
                                curves, int(patch_size)))
        ranking = stats.rank_methods(area)
        caption = (f"{dataset}: methods ranked by mean area (the test counts lower as more faithful; 95% t "
                   "interval)")
        section.add(Table(ranking, caption, _save(context, ranking, "multilabel_faithfulness_ranking")))
        tests = stats.paired_tests(area)
        significant = int(tests["significant"].sum()) if not tests.empty else 0
        section.add(Paragraph(f"Paired Wilcoxon tests, Holm-corrected as in section 3: {significant} of "
                              f"{len(tests)} differences are significant at 5%."))
        caption = (f"{dataset}: paired tests of the area (a minus b; negative: the test counts a as more "
                   "faithful)")
        section.add(Table(tests, caption, _save(context, tests, "multilabel_faithfulness_tests")))
    table = run.table("randomization.csv")
    if table is None:
        section.add(Note(f"The multi-label run at {run.path} has no randomization.csv."))
        return section
    for normalization in MPRT_NORMALIZATIONS:
        section.add(_figure(context, figures.randomization, f"multilabel_randomization_ssim_{normalization}",
                            f"{dataset}: SSIM after {normalization} normalisation (figure 6)", table, "ssim",
                            normalization))
    return section


def _map(value) -> str:
    return "?" if value is None else f"{value:.3f}"


def _fitted(finetune: dict, run_folder: Path, report_folder: Path | None) -> str:
    """The fine-tuning sentences of section 3b: the test mAP (canvases that neither trained nor picked the
    epoch) against the untrained head's as the held-out figure, the validation mAP as the one that picked
    the epoch, and where the checkpoint is (a relative record resolved against the run folder, and shown
    relative to the report folder when inside it: the report is written in a staging folder that is then
    renamed, so an absolute path would name a folder that is gone)."""
    if finetune.get("best_val_map") is None and finetune.get("test_map") is None:
        return ""
    text = " Fine-tuned (sigmoid + binary cross-entropy, AdamW)"
    if finetune.get("test_map") is not None:
        text += (f" to a held-out test mAP of {_map(finetune['test_map'])}, against "
                 f"{_map(finetune.get('untrained_head_test_map'))} for the untrained head on the same test "
                 "images (neither trained on nor used to pick the epoch);")
    else:  # a record from before the demo had a test split
        text += " (no test split recorded: only the validation mAP is known);"
    validation = _map(finetune.get("best_val_map"))
    untrained = _map(finetune.get("untrained_head_val_map"))
    text += (f" the validation mAP, which picked epoch {finetune.get('best_epoch')} and is biased upwards by "
             f"that choice, is {validation} (untrained head {untrained}).")
    checkpoint = recorded_checkpoint(finetune, run_folder)
    if checkpoint is not None:
        shown = checkpoint if report_folder is None else relative_to_run(checkpoint, report_folder)
        if not Path(shown).is_absolute():
            shown = f"{shown} in the report folder"
        kept = "" if checkpoint.is_file() else " (not kept with this copy of the run)"
        text += f" Checkpoint: {shown}{kept}."
    return text


def _faithfulness(table, patch_size, path):
    return figures.faithfulness(table, patch_size, path, score_label="sigmoid score (top predicted label)")


def keep_multilabel_cache(earlier: Path, staging: Path) -> None:
    """Copy the finished chunks and the fine-tuned demo of an earlier report's multi-label run into the
    staging folder (unless an interrupted build left them there), so that the report does not refit."""
    results.copy_resume_state(earlier, staging)


def _reuse_finetuning(context, target: Path, settings: dict) -> None:
    """Copy a matching fine-tuned demo (``empirical.results.reusable_finetuning``) from beside the ``--from``
    run into ``target``, so that the report does not refit it; says so in the provenance."""
    if context.source is None:
        return
    source = Path(context.source)
    for folder in (source / "empirical-multilabel", source.parent / "empirical-multilabel", source):
        if results.copy_finetuning(folder, target, seed=context.seed, settings=settings):
            context.reused.append(f"the fine-tuned multi-label demo network from {folder} (fingerprint: seed "
                                  "and fine-tuning settings match)")
            return


def obtain_multilabel(context, source: Path | None) -> EmpiricalRun | None:
    """Reuse the multi-label run at ``source`` (copied into OUT/empirical-multilabel) or run the
    ``demo-multilabel`` profile there at the report's size; a failure costs only the multi-label section.
    The demo's fine-tuning is reused from an earlier report in OUT or from beside the ``--from`` run when its
    fingerprint matches; ``context.skip_multilabel`` (``--no-multilabel``) leaves the section out."""
    target = context.out / "empirical-multilabel"
    if getattr(context, "skip_multilabel", False):
        return None
    if source is not None:
        inputs.copy_empirical(source, target)
        context.reused.append(f"multi-label run from {source}")
        return inputs.load_empirical(target)
    options = dict(profile="demo-multilabel", out=target, seed=context.seed, progress=context.progress,
                   images=_QUICK[0] if context.quick else MULTILABEL_IMAGES,
                   methods=list(_QUICK[1] if context.quick else MULTILABEL_METHODS),
                   finetune_settings=QUICK_DEMO_SETTINGS if context.quick else REPORT_DEMO_SETTINGS)
    wanted = {key: options[key] for key in ("seed", "images", "finetune_settings")}
    if results.superseded(target, **wanted):  # another seed or size: superseded, not resumed
        results.discard_resume_state(target)
        context.computed.append("discarded OUT/empirical-multilabel of an earlier run with other settings")
    had_finetuning = results.has_finetuned_demo(target)
    if not had_finetuning:
        target.mkdir(parents=True, exist_ok=True)
        _reuse_finetuning(context, target, check_finetune_settings(options["finetune_settings"]))
    elif not any("multi-label demo network" in entry for entry in context.reused):
        context.reused.append("the fine-tuned multi-label demo network of the earlier report in OUT")
    earlier_chunks = results.finished_chunks(target, MULTILABEL_EXPERIMENTS)
    started = time.perf_counter()
    try:
        results.run(list(MULTILABEL_EXPERIMENTS), **options)
    except ValueError:
        raise  # bad settings: the user's to fix, with the runner's message
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise
        context.missing.append(f"the multi-label demo run failed: {error!r}")
        return None
    except Exception as error:
        context.missing.append(f"the multi-label demo run failed: {error!r}")
        return None
    seconds = time.perf_counter() - started
    chunks = results.finished_chunks(target, MULTILABEL_EXPERIMENTS)
    name = "empirical demo-multilabel " + " and ".join(MULTILABEL_EXPERIMENTS)
    if had_finetuning and earlier_chunks and chunks == earlier_chunks:
        context.reused.append(f"{name}: all {chunks} finished chunks of an earlier build ({seconds:.1f} s to "
                              "collect them)")
    else:
        finetuning = "fine-tuning reused" if (had_finetuning or any(
            "multi-label demo network" in entry for entry in context.reused)) else "fine-tuning included"
        partly = f", {earlier_chunks} of {chunks} chunks reused" if earlier_chunks else ""
        context.computed.append(f"{name} ({seconds:.1f} s, {finetuning}{partly})")
    return inputs.load_empirical(target)
