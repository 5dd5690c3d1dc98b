"""An earlier report stays whole whatever happens: bad ``--from`` inputs are refused
before anything is written, a full disk is one message, and the new report replaces the old one only when it
is complete."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from reports import build, staging
from reports.__main__ import main


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def earlier_report(tmp_path) -> Path:
    """A folder holding an earlier report (its entries, with made-up contents) and a file of the user's."""
    out = tmp_path / "report"
    for name in ("report.html", "report.md", "figures/a.png", "tables/t.csv", "simulations/monotonicity.json",
                 "empirical/manifest.json", "empirical/faithfulness.csv"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(f"earlier {name}\n")
    (out / "notes.txt").write_text("the user's own file\n")
    return out


@pytest.fixture
def source(tmp_path, results_writers) -> Path:
    write_empirical_run, write_simulations = results_writers
    folder = tmp_path / "source"
    write_empirical_run(folder / "empirical", images=2, steps=2, levels=2)
    write_empirical_run(folder / "empirical-multilabel", images=2, steps=2, levels=2,
                        profile="demo-multilabel")
    write_simulations(folder / "simulations")
    return folder


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.mark.parametrize("damage", ["cut npz", "pickled npz", "text in a numeric column", "manifest list"])
def test_a_bad_source_is_refused_before_the_earlier_report_is_touched(source, earlier_report, capsys, damage):
    """Before: a cut activation_samples.npz gave a BadZipFile traceback after 24 files of the earlier
    report had been overwritten."""
    run = source / "empirical"
    if damage == "cut npz":
        (run / "activation_samples.npz").write_bytes((run / "activation_samples.npz").read_bytes()[:300])
    elif damage == "pickled npz":
        np.savez(run / "activation_samples.npz", **{"demo/0": np.array([object()], dtype=object)})
    elif damage == "text in a numeric column":
        text = (run / "faithfulness.csv").read_text().splitlines()
        header, row = text[0].split(","), text[5].split(",")
        row[header.index("score")] = "abc"
        (run / "faithfulness.csv").write_text("\n".join([*text[:5], ",".join(row), *text[6:]]) + "\n")
    else:
        (run / "manifest.json").write_text('["randomization"]')
    before = _snapshot(earlier_report)
    assert main(["--from", str(source), "--out", str(earlier_report), "--no-progress"]) == 2
    message = capsys.readouterr().err
    expected = {"cut npz": "activation_samples.npz", "pickled npz": "pickled",
                "text in a numeric column": "column 'score'", "manifest list": "JSON list"}[damage]
    assert expected in message and "Traceback" not in message and message.count("\n") == 1
    assert _snapshot(earlier_report) == before
    assert _leftovers(earlier_report) == []


def _full_disk_copy(real_copy):
    def copy(source, target, *args, **kwargs):
        Path(target).write_bytes(b"")  # the file is created, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    return copy


def test_a_full_disk_is_one_message_and_leaves_the_earlier_report(source, earlier_report, capsys,
                                                                   monkeypatch):
    """Before: three chained OSError tracebacks and 0-byte files in the report folder."""
    monkeypatch.setattr("reports.inputs.shutil.copy2", _full_disk_copy(shutil.copy2))
    before = _snapshot(earlier_report)
    assert main(["--from", str(source), "--out", str(earlier_report), "--no-progress"]) == 2
    message = capsys.readouterr().err
    assert "no space left on the device" in message and "unchanged" in message
    assert "Traceback" not in message and message.count("\n") == 1
    assert _snapshot(earlier_report) == before
    assert _leftovers(earlier_report) == []  # the partial build is removed, freeing its space


@pytest.mark.slow
def test_a_full_disk_while_writing_the_page_leaves_the_earlier_report(source, earlier_report, capsys,
                                                                      monkeypatch):
    real_write = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if self.name == "report.md":
            real_write(self, "")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    before = _snapshot(earlier_report)
    assert main(["--from", str(source), "--out", str(earlier_report), "--no-progress"]) == 2
    assert "no space left" in capsys.readouterr().err
    assert _snapshot(earlier_report) == before and _leftovers(earlier_report) == []


def test_out_that_is_a_file_or_read_only_is_named_before_any_work(source, tmp_path, capsys, monkeypatch):
    """Before: a NotADirectoryError traceback, and an OSError traceback for a read-only folder."""
    target = tmp_path / "report.txt"
    target.write_text("x")
    assert main(["--from", str(source), "--out", str(target), "--no-progress"]) == 2
    assert "--out" in capsys.readouterr().err
    monkeypatch.setattr(staging, "_writable", lambda folder: False)  # root can write anywhere: simulate it
    assert main(["--from", str(source), "--out", str(tmp_path / "ro" / "report"), "--no-progress"]) == 2
    message = capsys.readouterr().err
    assert "--out: cannot write in" in message and "read-only" in message
    assert not (tmp_path / "ro").exists()


def test_the_new_report_replaces_only_the_report_entries(tmp_path, earlier_report):
    staging = build.staging_folder(earlier_report.absolute())
    for name in ("report.html", "figures/b.png", "empirical/chunks/x/k.csv"):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(f"new {name}\n")
    build.move_into_place(staging, earlier_report.absolute())
    found = _snapshot(earlier_report)
    assert found["report.html"] == b"new report.html\n" and found["figures/b.png"] == b"new figures/b.png\n"
    assert "figures/a.png" not in found and "empirical/manifest.json" not in found
    assert found["report.md"] == b"earlier report.md\n"  # not rebuilt this time: left as it was
    assert found["notes.txt"] == b"the user's own file\n"
    assert _leftovers(earlier_report) == []


def test_a_failed_move_puts_the_earlier_report_back(tmp_path, earlier_report, monkeypatch):
    out = earlier_report.absolute()
    staging = build.staging_folder(out)
    for name in ("report.html", "report.md", "figures/b.png"):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(f"new {name}\n")
    before = _snapshot(out)
    real_replace, calls = os.replace, []

    def replace(source, target):
        calls.append(source)
        if len(calls) == 4:  # html swapped, md moved aside: then the rename of the new md fails
            raise OSError(errno.EIO, "input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        build.move_into_place(staging, out)
    monkeypatch.setattr(os, "replace", real_replace)
    assert _snapshot(out) == before


def test_a_failed_build_keeps_only_the_finished_chunks_for_resuming(tmp_path):
    out = (tmp_path / "report").absolute()
    staging = build.prepare_staging(out, keep_chunks_of=None)
    for name in ("report.md", "figures/a.png", "empirical/manifest.json", "empirical/chunks/x/k.csv"):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(name)
    build.discard_staging(staging)
    assert _snapshot(staging) == {"empirical/chunks/x/k.csv": b"empirical/chunks/x/k.csv"}
    assert build.prepare_staging(out, keep_chunks_of=None) == staging
    assert (staging / "empirical" / "chunks" / "x" / "k.csv").is_file()
