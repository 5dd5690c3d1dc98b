"""Chunked, resumable result tables (docs/results-format.md): the chunk store and atomic file writes.

An experiment writes each finished piece of work as one CSV chunk under ``out/chunks/<experiment>/<key>.csv``
(atomically: temporary file, then rename), skips the keys that already exist when it is started again, and
builds its final table with :meth:`ChunkStore.collect`, which is a pure function of the chunk files: a run
that was killed and resumed ends with the same bytes as one that was not.

The last line of every chunk, ``#chunk rows=N sha256=HEX``, records its row count and the checksum of the
CSV text above it. A chunk whose record is missing or does not match (rows removed, cut mid-row, edited) is
damaged: :meth:`ChunkStore.has` warns, naming it, sets it aside as ``<key>.csv.damaged`` and answers False,
so the experiment computes it again; it is never reused.

A chunk written with a ``fingerprint`` (``empirical.storage.fingerprints``: of the images, labels, weights and
settings it was computed from) records it in that line, ``#chunk rows=N sha256=HEX inputs=FINGERPRINT``.
``has(key, fingerprint)`` answers True only for a chunk of that fingerprint, so a chunk computed from other
inputs is computed again (and replaced), and ``collect(fingerprints={key: fingerprint})`` joins exactly
those chunks, so a stale chunk is never part of a table.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

__all__ = ["ChunkStore", "atomic_write_bytes", "current_umask", "write_table"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")
#: the record that ends every chunk: its data rows and the sha256 of the CSV text before this line
_RECORD = re.compile(r"^#chunk rows=(\d+) sha256=([0-9a-f]{64})(?: inputs=([0-9a-f]{64}))?\n\Z")
_FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class ChunkStore:
    """Finished chunks of one experiment in ``out_dir/chunks/<experiment>/``.

    ``has(key)``, ``write(key, table)``, ``collect()``; ``artifact_path(name)`` is where an experiment puts a
    non-tabular result (such as ``activation_samples.npz``) in the run folder.
    """

    def __init__(self, out_dir, experiment: str):
        if not isinstance(experiment, str) or not _KEY.match(experiment):
            raise ValueError(f"experiment must be a plain name (letters, digits, _.=+-), got {experiment!r}")
        self.out_dir = Path(out_dir)
        self.experiment = experiment
        self.directory = self.out_dir / "chunks" / experiment

    def __repr__(self) -> str:
        return f"ChunkStore({str(self.out_dir)!r}, {self.experiment!r})"

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"chunk key must be a non-empty name of letters, digits and _.=+-, got {key!r}")
        return self.directory / f"{key}.csv"

    def has(self, key: str, fingerprint: str | None = None) -> bool:
        """Whether the chunk ``key`` was finished, by this run or an earlier, interrupted one, and is whole;
        with ``fingerprint``, also whether it was computed from those inputs (False for a chunk of other
        inputs, or of none recorded: it is to be computed again).

        A damaged chunk (see the module docstring) gives a warning naming it, is renamed to
        ``<key>.csv.damaged`` (kept for inspection, out of every later collection) and gives False, so that
        it is computed again.
        """
        path = self._path(key)
        _check_fingerprint(fingerprint)
        if not path.is_file():
            return False
        _, problem, recorded = _chunk_text(path)
        if problem is None:
            return fingerprint is None or recorded == fingerprint
        damaged = path.with_name(path.name + ".damaged")
        os.replace(path, damaged)
        warnings.warn(f"chunk {path} is damaged ({problem}); it is computed again (the damaged file is "
                      f"kept as {damaged.name})", stacklevel=2)
        return False

    def keys(self) -> list[str]:
        """The finished chunk keys, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.csv"))

    def fingerprint(self, key: str) -> str | None:
        """The fingerprint recorded with the whole chunk ``key``; None when it has none or is not whole."""
        path = self._path(key)
        if not path.is_file():
            return None
        _, problem, recorded = _chunk_text(path)
        return recorded if problem is None else None

    def write(self, key: str, table: pd.DataFrame, fingerprint: str | None = None) -> Path:
        """Store ``table`` as chunk ``key``, with the ``fingerprint`` (64 hex digits) of its inputs if given,
        replacing any earlier chunk ``key``; atomic, so a kill leaves either no chunk or the whole chunk.
        Returns the chunk's path."""
        if not isinstance(table, pd.DataFrame):
            raise ValueError(f"table must be a pandas DataFrame, got {type(table).__name__}")
        path = self._path(key)
        _check_fingerprint(fingerprint)
        self.directory.mkdir(parents=True, exist_ok=True)
        text = table.to_csv(index=False, lineterminator="\n")
        _atomic_write_text(path, text + _record_line(text, len(table), fingerprint))
        return path

    def collect(self, columns=None, *, fingerprints: Mapping[str, str] | None = None) -> pd.DataFrame:
        """All chunks as one table: chunk texts joined in sorted key order and parsed once (so dtypes do not
        depend on how work was split), rows sorted by every column left to right (stable).

        ``columns``: the expected column order (from docs/results-format.md); an empty store gives an empty
        table with these columns. ``fingerprints`` (key -> fingerprint): only these chunks, each of which must
        be there with that fingerprint (else ValueError naming it); every other chunk in the folder, such as
        one computed from other inputs, is left out. A chunk whose header differs from the first, or a
        damaged chunk (one that :meth:`has` was not asked about since it was damaged), raises ValueError
        naming it.
        """
        if fingerprints is None:
            keys, expected = self.keys(), {}
        else:
            if not isinstance(fingerprints, Mapping):
                raise ValueError(f"fingerprints must map chunk keys to fingerprints, got "
                                 f"{type(fingerprints).__name__}")
            expected = dict(fingerprints)
            for value in expected.values():
                _check_fingerprint(value)
            keys = sorted(expected)
        header, bodies = None, []
        for key in keys:
            path = self._path(key)
            if fingerprints is not None and not path.is_file():
                raise ValueError(f"chunk {path} is missing: it was not finished by this run; run the same "
                                 "command again to compute it")
            text, problem, recorded = _chunk_text(path)
            if problem is not None:
                raise ValueError(f"chunk {path} is damaged ({problem}); delete it and run the same command "
                                 "again to compute it anew")
            if fingerprints is not None and recorded != expected[key]:
                raise ValueError(f"chunk {path} was computed from other inputs than this run's (fingerprint "
                                 f"{recorded} instead of {expected[key]}): was another run writing to the "
                                 "same folder? Run the same command again to compute it anew")
            first, _, body = text.partition("\n")
            if header is None:
                header = first
            elif first != header:
                raise ValueError(f"chunk {key!r} of {self.directory} has columns {first!r}, "
                                 f"expected {header!r}: the folder mixes runs of different versions; "
                                 "use a fresh --out")
            bodies.append(body)
        if header is None:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in (columns or [])})
        table = pd.read_csv(io.StringIO(header + "\n" + "".join(bodies)))
        if columns is not None:
            if sorted(table.columns) != sorted(columns):
                raise ValueError(f"chunks of {self.directory} have columns {list(table.columns)}, "
                                 f"expected {list(columns)}")
            table = table[list(columns)]
        return table.sort_values(list(table.columns), kind="mergesort", na_position="last",
                                 ignore_index=True)

    def artifact_path(self, name: str) -> Path:
        """``out_dir/name``: where a non-tabular result of the run is saved."""
        if not isinstance(name, str) or "/" in name or not _KEY.match(name):
            raise ValueError(f"artifact name must be a plain file name, got {name!r}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name


def write_table(table: pd.DataFrame, path) -> Path:
    """Write a final tidy table as CSV (atomic, ``\\n`` line ends, no index); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, table.to_csv(index=False, lineterminator="\n"))
    return path


def _record_line(text: str, rows: int, fingerprint: str | None = None) -> str:
    inputs = "" if fingerprint is None else f" inputs={fingerprint}"
    return f"#chunk rows={rows} sha256={hashlib.sha256(text.encode()).hexdigest()}{inputs}\n"


def _check_fingerprint(fingerprint) -> None:
    if fingerprint is not None and not (isinstance(fingerprint, str)
                                        and _FINGERPRINT_PATTERN.match(fingerprint)):
        raise ValueError(f"fingerprint must be None or 64 lowercase hex digits (a sha256), got "
                         f"{fingerprint!r}")


def _chunk_text(path: Path) -> tuple[str, str | None, str | None]:
    """(the CSV text of the chunk at ``path`` without its record, None, the recorded fingerprint or None) if
    it is whole, else ("", what is wrong, None)."""
    data = path.read_bytes()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return "", "it is not UTF-8 text", None
    body, newline, last = text.rstrip("\n").rpartition("\n")
    match = _RECORD.match(last + "\n") if newline else None
    if match is None:
        return "", "its last line is not the '#chunk rows=N sha256=...' record written with it: cut short, " \
                   "edited, or written by an older version", None
    body += "\n"
    if text != body + last + "\n" or hashlib.sha256(body.encode()).hexdigest() != match.group(2):
        return "", "its sha256 differs from the one recorded when it was written", None
    # the record's row count, checked by a CSV parse that knows quoted line breaks (the header is one row)
    rows = sum(1 for _ in csv.reader(io.StringIO(body))) - 1
    if rows != int(match.group(1)):
        return "", f"it holds {rows} rows, {match.group(1)} were written", None
    return body, None, match.group(3)


def current_umask() -> int:
    """The process's file-mode creation mask, read without changing it where Linux allows (``Umask:`` in
    /proc/self/status), else by setting it and putting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in the same folder, fsync, rename), with the
    mode ``open()`` would give a new file: 0666 less the umask. (``tempfile.mkstemp`` creates its file 0600,
    which would leave results unreadable to the other users and tools of a shared machine.)"""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~current_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    # newline="" as before: the text's own line ends, UTF-8 as open()'s default here
    atomic_write_bytes(path, text.encode("utf-8"))
