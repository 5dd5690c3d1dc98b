"""Locate, validate and load the result tables a report is built from (docs/results-format.md).

A report reads an empirical run (``manifest.json`` and its CSV tables) and the simulation tables
(``NAME.csv`` with ``NAME.json``). This module only reads and checks; computing what is missing is
the job of :mod:`reports.build`.
"""

from __future__ import annotations

import errno
import json
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from empirical.results import (
    CORE_EXPERIMENTS,
    EXPERIMENT_TABLES,
    EXPERIMENTS,
    NUMERIC_COLUMNS,
    TABLE_COLUMNS,
)
from simulations.results import NUMERIC_RESULT_COLUMNS, RESULT_COLUMNS

ACTIVATION_SAMPLES = "activation_samples.npz"
#: errors of writing, not of computing: they stop the build instead of costing one section
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


class ReportInputError(ValueError):
    """A result folder the report cannot use; the message names the folder and the table."""


@dataclass
class EmpiricalRun:
    """An empirical run as read from disk: manifest, tables by file name, and its folder."""

    path: Path
    manifest: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    experiments: tuple[str, ...] = CORE_EXPERIMENTS

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)

    def activation_samples(self) -> dict[str, np.ndarray]:
        """The pooled activation subsamples by ``"<model>/<level>"``, empty when the file is absent."""
        path = self.path / ACTIVATION_SAMPLES
        if not path.is_file():
            return {}
        return read_activation_samples(path)


def read_activation_samples(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``activation_samples.npz`` by key; ReportInputError naming the file when it is not
    a readable numpy archive of plain numeric arrays (pickled objects are refused: loading them can run
    code)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise ReportInputError(f"{str(path)!r} holds a single array, not an .npz archive of "
                                       "activation samples by '<model>/<level>'")
            samples = {key: np.asarray(archive[key]) for key in archive.files}
    except ReportInputError:
        raise
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise ReportInputError(f"{str(path)!r} holds pickled Python objects, which are not loaded (they "
                                   "can run code); write the samples as plain numeric arrays") from None
        raise ReportInputError(f"{str(path)!r} is not a readable .npz archive: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ReportInputError(f"{str(path)!r} is not a readable .npz archive (damaged or cut short: "
                               f"{error})") from None
    for key, values in samples.items():
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise ReportInputError(f"{str(path)!r}: array {key!r} holds {values.dtype}, expected numbers")
    return samples


@dataclass
class SimulationResult:
    """One simulation table with its manifest and, when present, its own figure."""

    name: str
    table: pd.DataFrame
    manifest: dict
    figure: Path | None = None


def empirical_folder(folder: Path) -> Path:
    """The empirical run inside ``folder``: the folder itself (a bare run) or ``folder/empirical``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportInputError(f"--from: {str(folder)!r} is not a folder")
    if (folder / "manifest.json").is_file():
        return folder
    if (folder / "empirical" / "manifest.json").is_file():
        return folder / "empirical"
    raise ReportInputError(
        f"--from: {str(folder)!r} holds neither manifest.json (a bare empirical run) nor "
        "empirical/manifest.json (a report folder); point it at the folder that `python -m empirical ... "
        "--out DIR` or `python -m reports --out DIR` wrote"
    )


def simulations_folder(folder: Path) -> Path:
    """Where the simulation tables of a report folder live (they may be absent)."""
    return Path(folder) / "simulations"


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ReportInputError(
            f"{str(path)!r} holds a JSON {type(value).__name__}, expected an object of named fields (see "
            "docs/results-format.md)"
        )
    return value


def _read_table(path: Path, columns: tuple[str, ...], numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReportInputError(f"table {path.name} in {str(path.parent)!r} cannot be read: {error}") from None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ReportInputError(
            f"table {path.name} in {str(path.parent)!r} lacks the column(s) {', '.join(missing)} (see "
            "docs/results-format.md)"
        )
    for column in numeric:
        if column not in table.columns or pd.api.types.is_numeric_dtype(table[column]):
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table[column].notna() & values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ReportInputError(
                f"table {path.name} in {str(path.parent)!r}: column {column!r} must hold numbers, got "
                f"{table[column].iloc[row]!r} in line {row + 2}"
            )
        table[column] = values
    return table


def listed_experiments(manifest: dict) -> tuple[str, ...]:
    """The experiments a manifest says were run (``CORE_EXPERIMENTS`` when it does not say: the manifests
    of the first releases, which had only those; ``"all"`` means the same)."""
    listed = manifest.get("experiments")
    if not listed:
        return CORE_EXPERIMENTS
    if isinstance(listed, str):
        listed = [listed]
    aliases = {"randomisation": "randomization", "activation": "activations"}
    names = {aliases.get(str(name), str(name)) for name in listed}
    if "all" in names:
        return CORE_EXPERIMENTS
    return tuple(name for name in EXPERIMENTS if name in names)


def load_empirical(folder: Path) -> EmpiricalRun:
    """Read an empirical run; a table the manifest promises but the folder lacks is a ReportInputError."""
    folder = Path(folder)
    manifest = _read_json(folder / "manifest.json")
    experiments = listed_experiments(manifest)
    run = EmpiricalRun(path=folder, manifest=manifest, experiments=experiments)
    for experiment in experiments:
        for name in EXPERIMENT_TABLES[experiment]:
            path = folder / name
            if not path.is_file():
                raise ReportInputError(
                    f"table {name} is missing from {str(folder)!r} (its manifest lists the {experiment!r} "
                    f"experiment); copy {name} from the run that made it, or re-run `python -m empirical "
                    f"{experiment} --out {folder}`"
                )
            run.tables[name] = _read_table(path, TABLE_COLUMNS[name], NUMERIC_COLUMNS[name])
    if (folder / ACTIVATION_SAMPLES).is_file():
        run.activation_samples()  # read once now, so that a damaged archive stops the build before it starts
    return run


def load_simulation(folder: Path, name: str) -> SimulationResult | None:
    """Read ``folder/NAME.csv`` (and its manifest and PNG); None when the table is not there."""
    path = Path(folder) / f"{name}.csv"
    if not path.is_file():
        return None
    table = _read_table(path, RESULT_COLUMNS, NUMERIC_RESULT_COLUMNS)
    manifest_path = path.with_suffix(".json")
    manifest = _read_json(manifest_path) if manifest_path.is_file() else {}
    figure = path.with_suffix(".png")
    return SimulationResult(
        name=name, table=table, manifest=manifest, figure=figure if figure.is_file() else None
    )


def copy_empirical(source: Path, target: Path) -> None:
    """Copy an empirical run's manifest and tables (not its resume chunks) into a report folder."""
    source, target = Path(source).resolve(), Path(target).resolve()
    if source == target:
        return
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
