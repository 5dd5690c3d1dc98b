"""Rows of the throughput table, its verdicts, the printed form, and the CSV + JSON manifest on disk.

One row per measurement: a floor, a stage of ours (rate, floor, ratio to the floor, verdict against
the 70% target) or a peer (rate, our speed-up over it, verdict where a target is set).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from empirical.storage.manifest import package_versions

FLOOR_TARGET = 0.70

COLUMNS = (
    "kind", "stage", "backend", "implementation", "unit", "rate_per_s", "floor", "floor_per_s", "of_floor",
    "speedup", "target", "verdict", "status", "detail",
)


@dataclass
class Row:
    """One line of the table; ``rate_per_s`` is in ``unit``s (images, or layer-images) per second."""

    kind: str  # "floor", "stage" or "peer"
    stage: str
    backend: str
    implementation: str
    unit: str = "image"
    rate_per_s: float = math.nan
    floor: str = ""
    floor_per_s: float = math.nan
    of_floor: float = math.nan
    speedup: float = math.nan
    target: str = ""
    verdict: str = ""
    status: str = "ok"
    detail: str = field(default="")


def floor_verdict(ratio: float, target: float = FLOOR_TARGET) -> str:
    """``met`` or by how much the ratio to the floor falls short of ``target``."""
    if not math.isfinite(ratio):
        return ""
    if ratio >= target:
        return "met"
    return f"missed by {100 * (1 - ratio / target):.0f}%"


def speedup_verdict(speedup: float, target: float | None) -> str:
    if target is None or not math.isfinite(speedup):
        return ""
    if speedup >= target:
        return "met"
    return f"missed: {speedup:.1f}x of {target:g}x ({100 * (1 - speedup / target):.0f}% short)"


def to_frame(rows: list[Row], context: dict) -> pd.DataFrame:
    """The tidy table: the rows plus the run's context (model, device, size, batch, image size) as columns."""
    frame = pd.DataFrame([row.__dict__ for row in rows], columns=list(COLUMNS))
    for key, value in reversed(context.items()):
        frame.insert(0, key, value)
    return frame


def _number(value: float, digits: int = 1) -> str:
    if not isinstance(value, float | int) or not math.isfinite(value):
        return ""
    if 0 < abs(value) < 1:
        return f"{value:.{digits + 1}g}" if digits > 1 else f"{value:.2g}"
    return f"{value:,.{digits}f}" if abs(value) < 1e4 else f"{value:,.0f}"


def _shown(frame: pd.DataFrame, width: int) -> pd.DataFrame:
    return pd.DataFrame({
        "stage": frame["stage"],
        "backend": frame["backend"] + " " + frame["implementation"].where(frame["kind"] == "peer", ""),
        "per s": [_number(v) + (" (layer-img)" if u == "layer-image" else "")
                  for v, u in zip(frame["rate_per_s"], frame["unit"], strict=True)],
        "floor per s": [_number(v) for v in frame["floor_per_s"]],
        "of floor": [_number(v, 2) for v in frame["of_floor"]],
        "speed-up": [(_number(v, 1) + "x") if _number(v) else "" for v in frame["speedup"]],
        "target": frame["target"],
        "verdict": frame["verdict"],
        "status": [status if status == "ok" else f"{status}: {detail}"[:width]
                   for status, detail in zip(frame["status"], frame["detail"], strict=True)],
    })

def format_table(frame: pd.DataFrame, *, width: int = 48) -> str:
    """The table as fixed-width text: stage, backend, rate, floor, ratio or speed-up, verdict, status."""
    shown = _shown(frame, width)
    shown["backend"] = shown["backend"].str.strip()
    return shown.to_string(index=False)


def format_markdown(frame: pd.DataFrame, *, width: int = 60) -> str:
    """The same table in Markdown (for the README's Performance section)."""
    shown = _shown(frame, width)
    shown["backend"] = shown["backend"].str.strip()
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |")
    return "\n".join(lines)


def versions() -> dict:
    """Versions of Python and of every library the harness may time."""
    return package_versions(("numpy", "scipy", "torch", "torchvision", "zennit", "captum", "quantus",
                             "scikit-image", "efficientnet-pytorch", "sanity-audit"))


def write(frame: pd.DataFrame, manifest: dict, out: Path) -> tuple[Path, Path]:
    """``out/benchmarks.csv``, ``out/benchmarks.json`` and ``out/benchmarks.md`` (written whole each time: a
    stopped run keeps every row finished so far). Returns the CSV and JSON paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "benchmarks.csv", out / "benchmarks.json"
    frame.to_csv(csv_path, index=False)
    (out / "benchmarks.md").write_text(format_markdown(frame) + "\n")
    json_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return csv_path, json_path
