"""Every simulation's --draws: the estimated time as one line on stderr (from the first block, when the run
will take long), memory bounded by blocks.

Oracles: the wording of the estimate line, and a run of 10**13 draws (far beyond memory: 8e13 bytes a float
array) that prints its estimate and is still running, not failing for memory, when it is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from simulations import (
    _blocks,
    adaptive_beta,
    cauchy_overtake,
    monotonicity,
    noise_injection,
    positive_dominance,
    quantile_variance,
    similarity_processes,
)

# the runs with tiny blocks take 7-90 s for these four: slow
SIMULATIONS = [adaptive_beta, cauchy_overtake, positive_dominance,
               *(pytest.param(module, marks=pytest.mark.slow)
                 for module in (monotonicity, noise_injection, quantile_variance, similarity_processes))]


@pytest.mark.parametrize("module", SIMULATIONS, ids=lambda module: getattr(module, "NAME", None))
def test_the_estimate_is_one_line_before_the_table(module, monkeypatch, capsys):
    monkeypatch.setattr(_blocks, "LONG_RUN_S", 0.0)  # every run counts as long: the line must appear
    # several blocks, so that the first one is timed
    monkeypatch.setattr(_blocks, "_per_block", lambda bytes_per_draw, budget=2**12:
                        max(1, budget // bytes_per_draw))
    assert module.main(["--quick", "--draws", "5000"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "will take about" in line]
    assert len(lines) == 1 and lines[0].startswith(f"python -m simulations.{module.NAME}: warning: "), err
    assert "(memory stays bounded)" in lines[0]
    assert err.index(lines[0]) < err.index("rows,")  # before the closing summary


def test_a_huge_draw_count_starts_with_its_estimate_and_bounded_memory(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "simulations.cauchy_overtake", "--quick", "--draws",
                                str(10**13)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env=env, start_new_session=True)
    try:
        deadline, line = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "will take about" not in line:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
        assert "will take about" in line and "memory stays bounded" in line, line
        assert process.poll() is None  # still running: the draws are not all allocated at once
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
