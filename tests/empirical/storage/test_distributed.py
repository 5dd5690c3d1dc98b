"""Several processes through torchrun (gloo on the CPU): the merged tables are the bytes of a run in one
process, also after one rank was killed and the run resumed (empirical.storage.distributed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from empirical.storage.distributed import KILL_HOOK, Shard

ROOT = Path(__file__).resolve().parents[3]
TABLES = ("randomization.csv", "faithfulness.csv", "faithfulness_area.csv", "activations.csv",
          "activation_samples.npz")
# small enough for two cores: 4 digits in batches of 2 -> 2 batches x 2 methods, 4 chunks an experiment
ARGUMENTS = ["all", "--profile", "demo", "--images", "4", "--batch-size", "2", "--methods", "gradient",
             "random-uniform", "--quiet", "--workers", "0"]


def _environment(**extra) -> dict:
    torchrun_variables = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", KILL_HOOK)
    environment = {key: value for key, value in os.environ.items() if key not in torchrun_variables}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
    environment["OMP_NUM_THREADS"] = "1"
    return {**environment, **extra}


def _single(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "empirical", *ARGUMENTS, "--out", str(out)], cwd=ROOT,
                          env=_environment(), capture_output=True, text=True, timeout=600)


def _torchrun(out: Path, processes: int, **extra) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               "--rdzv-backend=c10d", "--rdzv-endpoint=localhost:0", "-m", "empirical", *ARGUMENTS,
               "--out", str(out)]
    return subprocess.run(command, cwd=ROOT, env=_environment(**extra), capture_output=True, text=True,
                          timeout=600)


def _assert_same_tables(first: Path, second: Path) -> None:
    for name in TABLES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.fixture(scope="module")
def single_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    result = _single(out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_one_process_assigns_everything_without_torch_distributed():
    shard = Shard()
    assert shard.assign(["a", "b", "c"]) == ["a", "b", "c"] and shard.is_main
    shard.barrier()  # nothing to wait for


@pytest.mark.slow
def test_two_ranks_write_the_tables_of_one_process(single_run, tmp_path):
    out = tmp_path / "two"
    result = _torchrun(out, 2)
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_same_tables(single_run, out)
    import json

    assert json.loads((out / "manifest.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_a_killed_rank_resumes_to_the_same_tables(single_run, tmp_path):
    out = tmp_path / "killed"
    killed = _torchrun(out, 2, **{KILL_HOOK: "1:1"})  # rank 1 dies by SIGKILL after its first chunk
    assert killed.returncode != 0
    assert not (out / "manifest.json").exists()
    finished = list((out / "chunks").rglob("*.csv"))
    assert finished, "rank 1 should have written one chunk before it was killed"
    resumed = _torchrun(out, 2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_tables(single_run, out)
