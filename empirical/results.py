"""The results of ``python -m empirical`` as other programs produce and read them (docs/results-format.md).

This module and the names in ``empirical.__all__`` are the public interface of ``empirical``; everything
else (``empirical._checks``, the modules of ``empirical.storage``, ``run``, ``experiments``, ``measures``,
...) may change between versions. ``python -m reports`` reads empirical results through these names only.

Running
    ``run(experiments, profile=..., out=...)`` runs experiments of a profile into a run folder and returns
    it; ``default_images(profile)`` its image count; ``MAX_SEED`` the largest seed.
Tables
    ``EXPERIMENTS`` (every experiment, in run order; ``CORE_EXPERIMENTS`` those of the first releases),
    ``EXPERIMENT_TABLES`` (the CSV files each writes), ``TABLE_COLUMNS`` and ``NUMERIC_COLUMNS`` (by file
    name), ``read_manifest(folder)``, ``package_versions(names)``. Column vocabularies: ``MEASURES`` and
    ``MPRT_NORMALIZATIONS`` (randomization.csv, supplement A.1), ``DEFAULT_LEVELS`` and ``TEST_DIRECTIONS``
    (rewards.csv). Derived tables: ``order_gap`` (LeRF - MoRF area), ``relative_to_control``.
Resume state
    A run folder also holds what a run started again reuses (``RESUME_ENTRIES``: finished chunks, the
    multi-label demo's fine-tuning). ``finished_chunks``, ``superseded``, ``discard_resume_state``,
    ``copy_resume_state``, ``has_finetuned_demo``, ``reusable_finetuning`` and ``copy_finetuning`` handle it
    without knowing its layout.
Multi-label (seed A.3)
    ``REPORT_DEMO_SETTINGS``, ``QUICK_DEMO_SETTINGS`` (fine-tuning sizes of ``demo-multilabel``),
    ``check_finetune_settings``, ``recorded_checkpoint`` (the checkpoint a manifest's ``finetune`` record
    names), ``relative_to_run``.
Evidence computed on the spot
    ``lite_evidence(n)``: accuracy, conservation and ReLU6 zeros of the pretrained EfficientNet-Lite0.
Networks, profiles and inputs
    ``NETWORKS`` (one spec per built-in network), ``get_profile(name)``, ``embedded_photographs()``.
"""

from __future__ import annotations

from empirical._checks import MAX_SEED
from empirical.experiments.faithfulness import order_gap, relative_to_control
from empirical.experiments.noisy import DEFAULT_LEVELS
from empirical.experiments.rewards import TEST_DIRECTIONS
from empirical.measures.similarity import MEASURES, MPRT_NORMALIZATIONS
from empirical.models.specs import NETWORKS
from empirical.multilabel.demo import QUICK_DEMO_SETTINGS, REPORT_DEMO_SETTINGS
from empirical.run.lite_evidence import lite_evidence
from empirical.run.multilabel_inputs import check_finetune_settings, recorded_checkpoint, relative_to_run
from empirical.run.photographs import embedded_photographs
from empirical.run.profiles import get_profile
from empirical.run.resume import (
    RESUME_ENTRIES,
    copy_finetuning,
    copy_resume_state,
    discard_resume_state,
    finished_chunks,
    has_finetuned_demo,
    reusable_finetuning,
    superseded,
)
from empirical.run.runner import run
from empirical.storage.manifest import package_versions, read_manifest
from empirical.storage.tables import (
    CORE_EXPERIMENTS,
    EXPERIMENT_TABLES,
    EXPERIMENTS,
    NUMERIC_COLUMNS,
    TABLE_COLUMNS,
)

__all__ = ["CORE_EXPERIMENTS", "DEFAULT_LEVELS", "EXPERIMENTS", "EXPERIMENT_TABLES", "MAX_SEED", "MEASURES",
           "NETWORKS", "embedded_photographs", "get_profile",
           "MPRT_NORMALIZATIONS", "NUMERIC_COLUMNS", "QUICK_DEMO_SETTINGS", "REPORT_DEMO_SETTINGS",
           "RESUME_ENTRIES", "TABLE_COLUMNS", "TEST_DIRECTIONS", "check_finetune_settings", "copy_finetuning",
           "copy_resume_state", "default_images", "discard_resume_state", "finished_chunks",
           "has_finetuned_demo", "lite_evidence", "order_gap", "package_versions", "read_manifest",
           "recorded_checkpoint", "relative_to_control", "relative_to_run", "reusable_finetuning", "run",
           "superseded"]


def default_images(profile: str) -> int:
    """The number of images a run of ``profile`` uses when ``images`` is not given."""
    return get_profile(profile).images
