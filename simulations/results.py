"""The result contract of the simulations: the columns every table ends with, and the one writer of a result.

:func:`finish_table` puts a simulation's rows into the tidy table of docs/results-format.md;
:func:`write_result` writes NAME.csv, its manifest NAME.json and (with ``plot``) NAME.png. Both the command
line (:mod:`simulations.cli`) and ``python -m reports`` write through it, so every manifest has the same keys.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "NUMERIC_RESULT_COLUMNS", "RELATIONS", "RESULT_COLUMNS", "finish_table", "format_table", "versions",
    "write_result",
]

#: Columns every table ends with, in this order (docs/results-format.md); ``relation`` says how the
#: verdict reads ``theory``: ``equal``, ``at_most`` (theory is an upper bound), ``at_least`` or ``greater``.
RESULT_COLUMNS = ("quantity", "estimate", "se", "ci_low", "ci_high", "theory", "agree", "level", "relation")
#: the result columns that hold numbers
NUMERIC_RESULT_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "theory", "level")
RELATIONS = ("equal", "at_most", "at_least", "greater", "less")
#: The packages a simulation's numbers depend on. Read here rather than through
#: ``empirical.storage.manifest.package_versions``: simulations depend on theory only, not on torch.
_PACKAGES = ("numpy", "scipy", "pandas", "matplotlib", "seaborn", "sanity-audit")


def finish_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Tidy table with the result columns last; ``agree`` is a nullable boolean (NA: no verdict)."""
    table = pd.DataFrame(list(rows))
    settings = [c for c in table.columns if c not in RESULT_COLUMNS]
    table = table[settings + list(RESULT_COLUMNS)]
    table["agree"] = table["agree"].astype("boolean")
    return table


def format_table(table: pd.DataFrame) -> str:
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
        return table.to_string(index=False, float_format=lambda v: f"{v:.5g}")


def versions() -> dict:
    """{"python": ..., package: installed version or None} for ``_PACKAGES``, from package metadata."""
    found = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_result(out, name: str, table: pd.DataFrame, *, config, seed, elapsed_s: float,
                 plot: Callable | None = None, **details) -> Path:
    """Write ``out/NAME.csv``, its manifest ``out/NAME.json`` and, with ``plot``, ``out/NAME.png``.

    The manifest holds the simulation's name, its ``config``, ``seed`` (an int or the entropy list of a
    SeedSequence), the draws, ``versions()``, ``elapsed_s`` and any ``details`` (e.g. start and finish
    times, who made it). The table and manifest are written before the figure, so a failing ``plot`` (its
    exception propagates) costs only the figure. Returns the CSV's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    table.to_csv(path, index=False)
    manifest = {
        "simulation": name,
        "config": _jsonable(config),
        "seed": _jsonable(seed),
        "draws": getattr(config, "neuron_draws", getattr(config, "draws", None)),
        "versions": versions(),
        "elapsed_s": round(elapsed_s, 3),
        **details,
    }
    (out / f"{name}.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    if plot is not None:
        plot(table, out / f"{name}.png")
    return path
