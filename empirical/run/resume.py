"""The resume state of a run folder: what a run started again reuses, beside the results it writes.

A run keeps its finished chunks under ``OUT/chunks/`` with the settings they were computed under
(``chunks/settings.json``), and a ``demo-multilabel`` run its canvases and fine-tuning under
``OUT/multilabel-demo/``. The runner refuses to resume under other settings (:func:`check_resume`); the
other functions let a caller that owns ``OUT`` (``python -m reports``) count, copy, supersede or discard that
state without knowing its layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from empirical.run.multilabel_inputs import DEMO_FOLDER, recorded_checkpoint

__all__ = ["RESUME_ENTRIES", "check_resume", "copy_finetuning", "copy_resume_state", "discard_resume_state",
           "finished_chunks", "has_finetuned_demo", "reusable_finetuning", "saved_settings", "superseded"]

#: the entries of a run folder that are resume state, not results: finished chunks, the demo's fine-tuning
RESUME_ENTRIES = ("chunks", DEMO_FOLDER)


def _settings_path(out) -> Path:
    return Path(out) / "chunks" / "settings.json"


def saved_settings(out):
    """The settings saved with the finished chunks of the run in ``out``: a dict, None when there are none;
    the exception (or the non-dict value) when the file is damaged."""
    path = _settings_path(out)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return error
    return ValueError("a JSON null") if value is None else value


def check_resume(out: Path, fingerprint: dict) -> None:
    """Refuse (ValueError) to mix chunks of runs with different settings in one ``out`` folder; save
    ``fingerprint`` with the chunks of a fresh folder."""
    path = _settings_path(out)
    earlier = saved_settings(out)
    if earlier is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fingerprint, indent=2, default=str) + "\n")
        return
    if not isinstance(earlier, dict):
        problem = earlier if isinstance(earlier, Exception) else f"a JSON {type(earlier).__name__}"
        raise ValueError(f"the saved settings {path} of the run in --out {out} are damaged ({problem}), "
                         "so its finished chunks cannot be checked against this run; use another --out, "
                         "or delete its chunks/ folder to start afresh")
    differing = {key: (earlier.get(key), value) for key, value in fingerprint.items()
                 if earlier.get(key) != value}
    if differing:
        detail = "; ".join(f"{k}: {a!r} before, {b!r} now" for k, (a, b) in differing.items())
        raise ValueError(f"{out} holds finished chunks of a run with other settings ({detail}); "
                         "use another --out, or delete its chunks/ folder to start afresh")


def superseded(out, **wanted) -> bool:
    """Whether ``out`` holds finished chunks saved under other values of ``wanted`` (settings of the run,
    such as ``seed``, ``images``, ``finetune_settings``) or under damaged settings: a resume the runner would
    refuse. False when it holds none."""
    earlier = saved_settings(out)
    if earlier is None:
        return False
    return not isinstance(earlier, dict) or any(earlier.get(key) != value for key, value in wanted.items())


def discard_resume_state(out) -> None:
    """Remove the resume state (``RESUME_ENTRIES``) of the run in ``out``; its results stay."""
    for name in RESUME_ENTRIES:
        path = Path(out) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def copy_resume_state(source, target) -> list[str]:
    """Copy each entry of the resume state of the run in ``source`` that ``target`` lacks into ``target``
    (a run there then resumes from it); returns the names copied."""
    copied = []
    for name in RESUME_ENTRIES:
        if (Path(source) / name).is_dir() and not (Path(target) / name).exists():
            shutil.copytree(Path(source) / name, Path(target) / name)
            copied.append(name)
    return copied


def finished_chunks(out, experiments) -> int:
    """The number of finished chunks of ``experiments`` (names) in the run folder ``out``."""
    total = 0
    for experiment in experiments:
        folder = Path(out) / "chunks" / experiment
        total += sum(1 for _ in folder.glob("*.csv")) if folder.is_dir() else 0
    return total


def has_finetuned_demo(out) -> bool:
    """Whether the run folder ``out`` holds a finished fine-tuning of the multi-label demo (its best.pt)."""
    return (Path(out) / DEMO_FOLDER / "finetune" / "best.pt").is_file()


def reusable_finetuning(folder, *, seed: int, settings: dict) -> Path | None:
    """The fine-tuned demo of the multi-label run in ``folder`` when its fingerprint matches: the fine-tuning
    ``settings`` and the ``seed`` recorded in the run's manifest, and its ``best.pt`` present. Returns the
    demo's folder (copy it into a run folder to reuse it), else None."""
    demo = Path(folder) / DEMO_FOLDER
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    record = manifest.get("finetune") if isinstance(manifest, dict) else None
    if not isinstance(record, dict) or record.get("settings") != settings or manifest.get("seed") != seed:
        return None
    checkpoint = recorded_checkpoint(record, folder)
    return demo if checkpoint is not None and checkpoint.is_file() and demo.is_dir() else None


def copy_finetuning(source, target, *, seed: int, settings: dict) -> bool:
    """Copy the fine-tuned demo of the multi-label run in ``source`` into the run folder ``target`` when it
    matches (:func:`reusable_finetuning`) and ``target`` has none; returns whether it was copied."""
    demo = reusable_finetuning(source, seed=seed, settings=settings)
    if demo is None or (Path(target) / DEMO_FOLDER).exists():
        return False
    shutil.copytree(demo, Path(target) / DEMO_FOLDER)
    return True
