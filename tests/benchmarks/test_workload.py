"""``python -m benchmarks workload --size tiny``: the whole seed workload runs, set against its floor."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_workload_prints_wall_time_floor_ratio_and_memory(tmp_path):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "benchmarks", "workload", "--size", "tiny", "--threads", "1",
               "--repeats", "1", "--no-progress", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wall/floor" in result.stdout and "peak host memory" in result.stdout
    # the estimate's line comes before the stages' work, even without progress bars
    assert "workload tiny: estimated time at least " in result.stderr, result.stderr[-3000:]
    measured = json.loads((tmp_path / "workload.json").read_text())
    assert set(measured["stages"]) == {"randomization", "faithfulness", "activations"}
    assert len(measured["methods"]) == 12  # every method of the imagenet profile
    for row in measured["stages"].values():
        assert row["wall_s"] > 0 and row["floor_s"] > 0 and math.isfinite(row["ratio_to_floor"])
    assert measured["peak_host_mb"] > 0 and measured["peak_gpu_mb"] is None
    tables = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"randomization.csv", "faithfulness.csv", "activations.csv"} <= tables


def test_workload_refuses_an_unknown_size():
    from benchmarks.workload_bench import main

    with pytest.raises(SystemExit) as stopped:
        main(["--size", "huge"])
    assert stopped.value.code == 2
