"""Where a report is built before it replaces the old one: a hidden staging folder beside ``--out``, kept
finished empirical chunks of an interrupted build, and the move into place that puts the old report back
when a rename fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from empirical.results import copy_resume_state
from reports.inputs import ReportInputError
from reports.multilabel import KEPT_EMPIRICAL

__all__ = ["REPORT_ENTRIES", "check_out", "discard_staging", "move_into_place", "prepare_staging",
           "staging_folder"]

REPORT_ENTRIES = ("report.html", "report.md", "figures", "tables", "simulations", "empirical",
                  "empirical-multilabel", "empirical-lite0", "lite0")


def staging_folder(out: Path) -> Path:
    """The hidden folder beside ``out`` where its report is built: ``.NAME.partial``."""
    return out.parent / f".{out.name}.partial"


def prepare_staging(out: Path, *, keep_chunks_of: Path | None) -> Path:
    """The staging folder of ``out``, empty but for the empirical chunks of an earlier, interrupted build,
    or else (``keep_chunks_of``) a copy of the earlier report's chunks, so that the demo run resumes."""
    staging = staging_folder(out)
    discard_staging(staging)
    if keep_chunks_of is not None:
        copy_resume_state(keep_chunks_of, staging / "empirical")
        # the Lite0 run resumes too
        copy_resume_state(keep_chunks_of.parent / "empirical-lite0", staging / "empirical-lite0")
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def discard_staging(staging: Path) -> None:
    """Remove everything of a staging folder but the empirical run's finished chunks (the folder too when
    there are none)."""
    if not staging.is_dir():
        return
    for path in staging.iterdir():
        if path.name in KEPT_EMPIRICAL and path.is_dir():
            for inner in path.iterdir():
                if inner.name not in KEPT_EMPIRICAL[path.name]:
                    _remove(inner)
            if not any(path.iterdir()):
                path.rmdir()
        else:
            _remove(path)
    if not any(staging.iterdir()):
        staging.rmdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def move_into_place(staging: Path, out: Path) -> None:
    """Replace the report entries of ``out`` by those built in ``staging`` (renames on one file system,
    which need no space); other files in ``out`` are left alone. A failed rename puts the old ones back."""
    out.mkdir(parents=True, exist_ok=True)
    backup = out.parent / f".{out.name}.previous"
    if backup.exists():
        shutil.rmtree(backup)
    backup.mkdir()
    moved = []
    try:
        for name in REPORT_ENTRIES:
            if not (staging / name).exists():
                continue
            if (out / name).exists():
                os.replace(out / name, backup / name)
            moved.append(name)
            os.replace(staging / name, out / name)
    except BaseException:
        for name in reversed(moved):
            if (out / name).exists() and not (staging / name).exists():
                os.replace(out / name, staging / name)
            if (backup / name).exists():
                os.replace(backup / name, out / name)
        if not any(backup.iterdir()):  # kept when something could not be put back: it holds the old files
            backup.rmdir()
        raise
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def check_out(out: Path) -> None:
    """ReportInputError naming ``--out`` when it is a file or a folder that cannot be written."""
    if out.exists() and not out.is_dir():
        raise ReportInputError(f"--out: {str(out)!r} is a file, not a folder; name a folder for the report")
    existing = next(parent for parent in (out, *out.parents) if parent.exists())
    if not existing.is_dir():
        raise ReportInputError(f"--out: {str(out)!r} lies under the file {str(existing)!r}, not a folder")
    for folder in {existing, out.parent} if out.exists() else {existing}:
        if not _writable(folder):
            raise ReportInputError(f"--out: cannot write in {str(folder)!r} (read-only or not yours); name "
                                   "another folder for the report")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)
