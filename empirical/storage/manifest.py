"""The run manifest, ``manifest.json`` (docs/results-format.md): the settings, versions, device, weights and
data of a run, written atomically beside its tables; and the versions of the packages a result depends on.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from empirical.storage.chunks import atomic_write_bytes

__all__ = ["package_versions", "read_manifest", "versions", "write_manifest"]

_PACKAGES = ("numpy", "scipy", "pandas", "torch", "torchvision", "efficientnet-pytorch", "zennit",
             "scikit-learn", "sanity-audit")


def package_versions(packages) -> dict:
    """{"python": ..., package: installed version or None, ...}, read from package metadata (no imports)."""
    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def versions() -> dict:
    """Python, platform and the versions of the packages a result depends on (None where not installed)."""
    packages = package_versions(_PACKAGES)
    found = {"python": packages.pop("python"), "platform": platform.platform(), **packages}
    try:
        import torch

        found["cuda"] = torch.version.cuda
        found["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return found


def write_manifest(out_dir, *, profile: str, experiments, config: dict, seed: int, device: str, weights: dict,
                   dataset: dict, bench: bool, started: str, finished: str, elapsed_s: float,
                   **extra) -> Path:
    """Write ``out_dir/manifest.json``: the fields of docs/results-format.md plus ``extra``; returns it."""
    manifest = {"profile": profile, "experiments": list(experiments), "config": config, "seed": seed,
                "versions": versions(), "device": device, "weights": weights, "dataset": dataset,
                "bench": bool(bench), "started": started, "finished": finished,
                "elapsed_s": round(float(elapsed_s), 3), "argv": sys.argv[1:], **extra}
    path = Path(out_dir) / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(manifest, indent=2, default=str) + "\n").encode("utf-8"))
    return path


def read_manifest(out_dir) -> dict:
    """The manifest of the run in ``out_dir``; FileNotFoundError naming the folder when there is none."""
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {out_dir}: not the folder of a finished empirical run")
    return json.loads(path.read_text())
