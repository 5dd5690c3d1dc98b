"""Bad inputs to the simulation commands each run as a user runs it: in a subprocess,
``python -m simulations.<name> ...``. Oracle: exit status 2, a message naming the argument or the file, and
no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _files(folder: Path) -> None:
    objects = np.array([{"x": 1}, 2], dtype=object)
    np.savez(folder / "pickled.npz", a=objects)
    np.save(folder / "pickled.npy", objects)
    np.savez(folder / "strings.npz", a=np.array(["1.0", "x"]))
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04" + b"not a zip archive" * 8)
    (folder / "binary.csv").write_bytes(bytes(range(256)) * 4)


# (id, module, arguments ({dir}: a folder holding the files above), what the message must name)
CASES = [
    ("seed-negative", "similarity_processes", ["--seed", "-1"], "argument --seed"),
    ("seed-text", "cauchy_overtake", ["--seed", "abc"], "argument --seed"),
    ("activations-corrupt", "cauchy_overtake", ["--activations", "{dir}/corrupt.npz"], "corrupt.npz"),
    ("activations-pickled-npz", "cauchy_overtake", ["--activations", "{dir}/pickled.npz"], "pickled.npz"),
    ("activations-pickled-npy", "cauchy_overtake", ["--activations", "{dir}/pickled.npy"], "pickled.npy"),
    ("activations-missing", "cauchy_overtake", ["--activations", "{dir}/missing.npz"], "missing.npz"),
    ("activations-binary-csv", "cauchy_overtake", ["--activations", "{dir}/binary.csv"], "binary.csv"),
    ("activations-text-array", "cauchy_overtake", ["--activations", "{dir}/strings.npz"], "strings.npz"),
    ("activations-wrong-key", "cauchy_overtake", ["--activations", "{dir}/pickled.npz", "--key", "b"],
     "key 'b'"),
    ("K-nan", "cauchy_overtake", ["--K", "nan"], "K must hold positive finite numbers"),
    ("draws-zero", "quantile_variance", ["--draws", "0"], "argument --draws: must be"),
    ("beta-max-nan", "adaptive_beta", ["--beta-max", "nan"], "beta_max"),
    ("inputs-too-many", "monotonicity", ["--inputs", "40"], "inputs must lie in 2..16"),
    ("map-too-large", "similarity_processes", ["--size", "100000", "100000", "--draws", "10"], "sizes"),
    ("network-too-large", "positive_dominance", ["--layer-sizes", "200000", "200000", "1"], "sizes"),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("module", "argv", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_naming_it_without_traceback(module, argv, names, tmp_path):
    _files(tmp_path)
    argv = [a.replace("{dir}", str(tmp_path)) for a in argv]
    done = subprocess.run([sys.executable, "-m", f"simulations.{module}", *argv], capture_output=True,
                          text=True, env=ENV, cwd=tmp_path, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert names in output
    assert "Traceback" not in output


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the memory of a process from /proc")
def test_huge_draws_warn_keep_memory_flat_and_stop_on_ctrl_c(tmp_path):
    # 10^13 draws: blocks are folded as they finish, so memory stays flat; the first blocks predict years,
    # which is one warning line; SIGINT (Ctrl-C) ends the run with status 130 and no traceback.
    process = subprocess.Popen(
        [sys.executable, "-m", "simulations.cauchy_overtake", "--draws", "10000000000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a test runner may ignore SIGINT
    try:
        warning = process.stderr.readline()  # the first stderr line: the warning (no bar in a pipe)
        assert "warning:" in warning and "10,000,000,000,000 draws will take about" in warning
        samples = []
        for _ in range(8):
            samples.append(_rss_mib(process.pid))
            time.sleep(1)
        assert process.poll() is None
        # flat: after the first blocks, no growth beyond a block's worth (32 MiB) and thread noise
        assert max(samples) - samples[0] < 64, samples
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert "interrupted" in rest and "Traceback" not in rest
