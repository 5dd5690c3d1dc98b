"""The run manifest: the documented fields, read back as written, and the package versions."""

from __future__ import annotations

import json

import pytest

from empirical.storage.manifest import read_manifest, versions, write_manifest


def test_manifest_has_the_documented_fields(tmp_path):
    path = write_manifest(tmp_path, profile="demo", experiments=["faithfulness"], config={"images": 4},
                          seed=3, device="cpu", weights={"demo": {"path": "w.pt", "sha256": "00"}},
                          dataset={"source": "digits", "images": 4, "skipped": 0}, bench=False,
                          started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00",
                          elapsed_s=1.0)
    manifest = json.loads(path.read_text())
    documented = {"profile", "experiments", "config", "seed", "versions", "device", "weights", "dataset",
                  "bench", "started", "finished", "elapsed_s"}
    assert documented <= set(manifest)
    assert read_manifest(tmp_path) == manifest
    assert {"python", "numpy", "torch", "zennit"} <= set(versions())
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        read_manifest(tmp_path / "nowhere")
