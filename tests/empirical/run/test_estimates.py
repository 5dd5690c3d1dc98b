"""Every experiment prints its estimated time as one line before its progress bar is drawn.

Oracles: the chunk counts of the runs written out here (3 images in batches of 2: 2 batches; randomisation
counts steps: 2 batches x its schedule's steps), and the order of what reaches stderr: the estimate's line
first, then the bar, which starts at the unit the estimate timed (the first unit's result is kept).
"""

from __future__ import annotations

import time

import pytest

from empirical.storage.chunks import ChunkStore
from empirical.storage.progress import EstimatedBar


def _first_line_is_the_estimate(err: str, description: str, units: str):
    line = err.lstrip("\r").splitlines()[0]
    assert line.startswith(f"{description}: estimated time "), err
    assert f"for {units}" in line, line
    assert "it/s" not in line and "|" not in line  # no bar drawn before the line
    return err[err.index(line) + len(line):]


def test_the_bar_prints_the_estimate_from_the_first_unit_then_draws(capsys):
    with EstimatedBar(4, enabled=True, description="demo loop", unit="chunk") as bar:
        assert capsys.readouterr().err == ""  # nothing before the first unit is done
        time.sleep(0.05)
        bar.update(1)
        rest = _first_line_is_the_estimate(capsys.readouterr().err, "demo loop", "4 chunks")
        assert "1/4" in rest
        bar.update(3)
    assert "4/4" in capsys.readouterr().err
    with EstimatedBar(4, enabled=False, description="quiet", unit="chunk") as bar:
        bar.update(4)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("experiment", ["activations", "faithfulness", "randomization", "rewards"])
def test_each_experiment_prints_the_estimate_before_its_bar(experiment, tmp_path, demo_model, demo_batch,
                                                            capsys):
    from empirical.run import activations, faithfulness, randomization, rewards

    images = demo_batch[:3]
    common = dict(model_name="demo", store=ChunkStore(tmp_path, experiment), batch_size=2, seed=0,
                  progress=True)
    if experiment == "activations":
        activations.run_activations(demo_model, images, None, **common)
        units = "2 batches"
    elif experiment == "faithfulness":
        faithfulness.run_faithfulness(demo_model, images, None, methods=["gradient"], patch_sizes=8,
                                      blur_kernel=3, steps=2, **common)
        units = "2 chunks"
    elif experiment == "randomization":
        table = randomization.run_randomization(demo_model, images, None, methods=["gradient"], **common)
        units = f"{2 * table['step'].nunique():,} steps"
    else:
        rewards.run_rewards(demo_model, images, None, methods=["gradient"], levels=(0.0,), patch_size=4,
                            steps=2, blur_kernel=3, smprt_samples=1, **common)
        units = "2 chunks"
    rest = _first_line_is_the_estimate(capsys.readouterr().err, f"{experiment} demo", units)
    assert "/" in rest  # the bar, after the line


@pytest.mark.slow  # about 5 s: a subprocess imports torch and builds the bench inputs
def test_a_huge_image_count_starts_with_its_estimate_and_bounded_memory(tmp_path):
    """Oracle: 100,000 images in the bench profile's batches of 64 are ceil(100000 / 64) = 1,563 batches;
    the estimate's line arrives after the first batch, while the run goes on (nothing allocated for all
    images at once), and is stopped there."""
    import os
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-m", "empirical", "activations", "--profile", "bench", "--model", "demo",
               "--images", "100000", "--out", str(tmp_path / "run")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        deadline, line = time.monotonic() + 120, ""
        while time.monotonic() < deadline and "estimated time" not in line:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
        assert "estimated time" in line and "for 1,563 batches" in line, line
        assert process.poll() is None  # still running, one batch at a time
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
