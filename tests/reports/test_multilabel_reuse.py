"""``python -m reports --from RUN`` reuses a fine-tuned multi-label demo found beside RUN when its fingerprint
(seed and fine-tuning settings in the run's manifest) matches, and ``--no-multilabel`` leaves the multi-label
run out.

Oracle: the checkpoint's own bytes, which must be in the report's folder before the runner starts (copied, not
refitted), and a runner that records whether it was called at all.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from empirical.multilabel.demo import REPORT_DEMO_SETTINGS
from empirical.run.multilabel_inputs import DEMO_FOLDER, check_finetune_settings
from reports import multilabel
from reports.__main__ import main

CHECKPOINT = f"{DEMO_FOLDER}/finetune/best.pt"


def _earlier_report(folder, *, seed: int, settings: dict):
    """An earlier report's folder: OUT/empirical (the --from run) and OUT/empirical-multilabel, whose demo
    was fine-tuned with ``settings`` and ``seed``."""
    (folder / "empirical").mkdir(parents=True)
    run = folder / "empirical-multilabel"
    (run / CHECKPOINT).parent.mkdir(parents=True)
    (run / CHECKPOINT).write_bytes(b"fine-tuned weights, seed %d" % seed)
    manifest = {"profile": "demo-multilabel", "seed": seed,
                "finetune": {"settings": settings, "checkpoint": CHECKPOINT}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    return folder / "empirical"


def _context(tmp_path, source, *, skip=False):
    out = tmp_path / "staging"
    out.mkdir()
    return SimpleNamespace(out=out, seed=0, quick=False, progress=False, source=source, reused=[],
                           computed=[], missing=[], skip_multilabel=skip)


class _Runner:
    """Stands in for the empirical runner: notes what the report's folder held when it was called."""

    def __init__(self, context):
        self.context, self.calls, self.checkpoint_then = context, 0, None

    def run(self, experiments, **options):
        self.calls += 1
        checkpoint = options["out"] / CHECKPOINT
        self.checkpoint_then = checkpoint.read_bytes() if checkpoint.is_file() else None
        raise RuntimeError("stopped here: the test needs only what came before the run")


@pytest.mark.parametrize(("seed", "settings", "reused"), [
    (0, check_finetune_settings(REPORT_DEMO_SETTINGS), True),
    (1, check_finetune_settings(REPORT_DEMO_SETTINGS), False),  # another seed: another network
    (0, check_finetune_settings({**REPORT_DEMO_SETTINGS, "epochs": 1}), False),  # other fine-tuning
], ids=["matching", "other-seed", "other-settings"])
def test_a_finetuned_demo_beside_the_from_run_is_copied_only_when_its_fingerprint_matches(
        tmp_path, monkeypatch, seed, settings, reused):
    source = _earlier_report(tmp_path / "earlier", seed=seed, settings=settings)
    context = _context(tmp_path, source)
    runner = _Runner(context)
    monkeypatch.setattr(multilabel.results, "run", runner.run)
    assert multilabel.obtain_multilabel(context, None) is None  # the stand-in runner failed: section missing
    assert runner.calls == 1
    original = (tmp_path / "earlier" / "empirical-multilabel" / CHECKPOINT).read_bytes()
    assert runner.checkpoint_then == (original if reused else None)
    assert any("fine-tuned multi-label demo network" in entry for entry in context.reused) == reused


def test_no_multilabel_never_starts_the_multilabel_run(tmp_path, monkeypatch):
    settings = check_finetune_settings(REPORT_DEMO_SETTINGS)
    context = _context(tmp_path, _earlier_report(tmp_path / "earlier", seed=0, settings=settings), skip=True)
    runner = _Runner(context)
    monkeypatch.setattr(multilabel.results, "run", runner.run)
    assert multilabel.obtain_multilabel(context, None) is None
    assert runner.calls == 0 and not (context.out / "empirical-multilabel").exists()
    notes = [block.text for block in multilabel.multilabel_section(context).blocks]
    assert notes == ["Left out by --no-multilabel: no multi-label run was made or read."]


@pytest.mark.parametrize(("argv", "expected"), [([], True), (["--no-multilabel"], False)])
def test_the_no_multilabel_flag_reaches_build_report(tmp_path, monkeypatch, argv, expected):
    import reports.__main__ as cli

    seen = {}
    monkeypatch.setattr(cli, "build_report", lambda out, **kwargs: seen.update(kwargs) or out / "report.html")
    assert main(["--out", str(tmp_path), "--no-progress", *argv]) == 0
    assert seen["multilabel"] is expected
