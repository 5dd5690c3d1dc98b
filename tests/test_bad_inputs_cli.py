"""Bad inputs to ``python -m empirical`` and ``python -m reports``: each gives one
message naming the argument or file and the value, exit code 2, and no traceback.

Every case runs the real command in a subprocess on small files the test writes (tiny PNG folders, label
files, run folders), with this checkout first on PYTHONPATH. Before the fixes, the cases marked "before:" in
``CASES`` gave a traceback or a message that named neither the argument nor the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _images(folder: Path, labels: bytes | None = None) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(2):
        Image.new("RGB", (8, 8), (40 * k, 90, 200)).save(folder / f"img{k}.png")
    if labels is not None:
        (folder / "labels.txt").write_bytes(labels)
    return folder


def _run_folder(folder: Path, *, manifest=None, value="0.5", samples: str = "plain") -> Path:
    """A bare empirical run holding only the activations experiment: manifest, activations.csv and
    activation_samples.npz ("plain", "cut" short, "pickled", "text" or "none")."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"profile": "demo", "experiments": ["activations"]} if manifest is None else manifest
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "activations.csv").write_text(
        "model,level,layer,statistic,q,q_high,q_low,value\n"
        f"demo,0,conv1,quantile,0.9,,,0.25\ndemo,0,conv1,nonpositive_fraction,,,,{value}\n")
    path = folder / "activation_samples.npz"
    if samples == "plain":
        np.savez(path, **{"demo/0": np.linspace(0, 1, 16)})
    elif samples == "cut":
        np.savez(path, **{"demo/0": np.linspace(0, 1, 4096)})
        path.write_bytes(path.read_bytes()[:200])
    elif samples == "pickled":
        np.savez(path, **{"demo/0": np.array([{"a": 1}], dtype=object)})
    elif samples == "text":
        path.write_text("not an archive")
    return folder


def _settings(folder: Path, content: bytes) -> Path:
    (folder / "chunks").mkdir(parents=True)
    (folder / "chunks" / "settings.json").write_bytes(content)
    return folder


def _file(path: Path, content: bytes = b"x") -> Path:
    path.write_bytes(content)
    return path


def _read_only(folder: Path) -> Path:
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _simulation_with_text(folder: Path) -> Path:
    _run_folder(folder / "empirical")
    (folder / "simulations").mkdir()
    (folder / "simulations" / "adaptive_beta.csv").write_text(
        "quantity,estimate,se,ci_low,ci_high,theory,agree,level,relation\nbeta,abc,0.1,0.3,0.7,0.5,True,0.99,equal\n")
    return folder


EMPIRICAL = [sys.executable, "-m", "empirical"]
REPORTS = [sys.executable, "-m", "reports", "--no-progress"]
IMAGENET = ["faithfulness", "--profile", "imagenet", "--model", "resnet50", "--weights", "random",
            "--images", "2", "--quiet"]
SMALL = ["--images", "1", "--methods", "gradient", "--quiet"]

# id: (command, setup returning {placeholder: path}, words the message must hold)
CASES = {
    # before: "Overflow when unpacking long long" from torch
    "empirical --seed 10**23": (
        [*EMPIRICAL, "activations", "--seed", "99999999999999999999999", "--out", "{tmp}/out"], None,
        ["--seed", "99999999999999999999999"]),
    "empirical --seed -1": ([*EMPIRICAL, "activations", "--seed", "-1", "--out", "{tmp}/out"], None,
                            ["--seed", "-1"]),
    "empirical --seed abc": ([*EMPIRICAL, "activations", "--seed", "abc", "--out", "{tmp}/out"], None,
                             ["--seed", "abc"]),
    "empirical --images 0": ([*EMPIRICAL, "faithfulness", "--images", "0", "--out", "{tmp}/out"], None,
                             ["images", "0"]),
    "empirical --batch-size -3": ([*EMPIRICAL, "faithfulness", "--batch-size", "-3", "--out", "{tmp}/out"],
                                  None, ["--batch-size", "-3"]),
    "empirical --device tpu": ([*EMPIRICAL, "faithfulness", "--device", "tpu", "--out", "{tmp}/out"], None,
                               ["device", "tpu"]),
    "empirical --model vgg": ([*EMPIRICAL, "faithfulness", "--model", "vgg", "--out", "{tmp}/out"], None,
                              ["model", "vgg"]),
    "empirical --out FILE": ([*EMPIRICAL, "faithfulness", *SMALL, "--out", "{out}"],
                             lambda tmp: {"out": _file(tmp / "out.txt")}, ["out", "out.txt"]),
    "empirical --data FILE": ([*EMPIRICAL, *IMAGENET, "--data", "{data}", "--out", "{tmp}/out"],
                              lambda tmp: {"data": _file(tmp / "val.png")}, ["data", "val.png"]),
    # before: UnicodeDecodeError
    "empirical binary labels.txt": (
        [*EMPIRICAL, *IMAGENET, "--data", "{data}", "--out", "{tmp}/out"],
        lambda tmp: {"data": _images(tmp / "val", bytes(range(128, 256)) * 4)}, ["labels.txt", "not text"]),
    "empirical labels.txt with text": (
        [*EMPIRICAL, *IMAGENET, "--data", "{data}", "--out", "{tmp}/out"],
        lambda tmp: {"data": _images(tmp / "val", b"img0.png 1\nimg1.png one\n")}, ["labels.txt", "'one'"]),
    # before: "RuntimeError: index 5000 is out of bounds" with random-uniform
    "empirical label 5000 random-uniform": (
        [*EMPIRICAL, *IMAGENET, "--methods", "random-uniform", "--data", "{data}", "--out", "{tmp}/out"],
        lambda tmp: {"data": _images(tmp / "val", b"img0.png 0\nimg1.png 5000\n")},
        ["label 5000", "img1.png", "1000 classes"]),
    "empirical label 5000 gradient": (
        [*EMPIRICAL, *IMAGENET, "--methods", "gradient", "--data", "{data}", "--out", "{tmp}/out"],
        lambda tmp: {"data": _images(tmp / "val", b"img0.png 0\nimg1.png 5000\n")},
        ["label 5000", "img1.png", "1000 classes"]),
    # before: "Expecting value: line 1 column 1"
    "empirical corrupt saved settings": (
        [*EMPIRICAL, "faithfulness", *SMALL, "--out", "{out}"],
        lambda tmp: {"out": _settings(tmp / "run", b"\x00garbage")}, ["settings.json", "--out"]),
    "empirical saved settings a JSON list": (
        [*EMPIRICAL, "faithfulness", *SMALL, "--out", "{out}"],
        lambda tmp: {"out": _settings(tmp / "run", b"[1, 2]")}, ["settings.json", "JSON list"]),
    # before: AttributeError traceback
    "reports --from manifest a JSON list": (
        [*REPORTS, "--from", "{source}", "--out", "{tmp}/report"],
        lambda tmp: {"source": _run_folder(tmp / "run", manifest=["activations"])},
        ["manifest.json", "JSON list"]),
    "reports --from manifest not JSON": (
        [*REPORTS, "--from", "{source}", "--out", "{tmp}/report"],
        lambda tmp: {"source": _file(_run_folder(tmp / "run") / "manifest.json", b"{oops").parent},
        ["manifest.json", "not valid JSON"]),
    # before: "could not convert string to float: 'abc'"
    "reports --from text in a numeric column": (
        [*REPORTS, "--from", "{source}", "--out", "{tmp}/report"],
        lambda tmp: {"source": _run_folder(tmp / "run", value="abc")},
        ["activations.csv", "'value'", "'abc'"]),
    "reports --from text in a simulation table": (
        [*REPORTS, "--from", "{source}", "--out", "{tmp}/report"],
        lambda tmp: {"source": _simulation_with_text(tmp / "old")},
        ["adaptive_beta.csv", "'estimate'", "'abc'"]),
    # before: BadZipFile traceback
    "reports --from cut activation_samples.npz": (
        [*REPORTS, "--from", "{source}", "--out", "{tmp}/report"],
        lambda tmp: {"source": _run_folder(tmp / "run", samples="cut")}, ["activation_samples.npz"]),
    "reports --from text activation_samples.npz": (
        [*REPORTS, "--from", "{source}", "--out", "{tmp}/report"],
        lambda tmp: {"source": _run_folder(tmp / "run", samples="text")}, ["activation_samples.npz"]),
    # before: numpy's "Object arrays cannot be loaded...", naming no file
    "reports --from pickled activation_samples.npz": (
        [*REPORTS, "--from", "{source}", "--out", "{tmp}/report"],
        lambda tmp: {"source": _run_folder(tmp / "run", samples="pickled")},
        ["activation_samples.npz", "pickled"]),
    "reports --from a missing folder": ([*REPORTS, "--from", "{tmp}/nowhere", "--out", "{tmp}/report"], None,
                                        ["--from", "nowhere"]),
    # before: NotADirectoryError traceback
    "reports --out FILE": ([*REPORTS, "--from", "{source}", "--out", "{out}"],
                           lambda tmp: {"source": _run_folder(tmp / "run"), "out": _file(tmp / "report.txt")},
                           ["--out", "report.txt"]),
    "reports --out under a FILE": ([*REPORTS, "--from", "{source}", "--out", "{out}/sub"],
                                   lambda tmp: {"source": _run_folder(tmp / "run"),
                                                "out": _file(tmp / "report.txt")},
                                   ["--out", "report.txt"]),
    # before: OSError traceback (as root every folder is writable: see the skip below)
    "reports --out read-only": ([*REPORTS, "--from", "{source}", "--out", "{out}/report"],
                                lambda tmp: {"source": _run_folder(tmp / "run"),
                                             "out": _read_only(tmp / "ro")},
                                ["--out", "ro"]),
    "reports --seed 10**23": ([*REPORTS, "--seed", "99999999999999999999999", "--out", "{tmp}/report"], None,
                              ["--seed", "99999999999999999999999"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_message_and_exit_code_2(tmp_path, case):
    command, setup, words = CASES[case]
    if case == "reports --out read-only" and os.geteuid() == 0:
        pytest.skip("root may write in a read-only folder; tests/reports/test_report_atomic.py checks it")
    paths = {"tmp": tmp_path, **(setup(tmp_path) if setup else {})}
    argv = [part.format(**paths) for part in command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, output  # one message
    for word in words:
        assert word in errors[0], (word, output)


def test_the_pickled_case_really_holds_a_pickle(tmp_path):
    """So that case tests the refusal of a pickle, not a broken file."""
    folder = _run_folder(tmp_path / "run", samples="pickled")
    with np.load(folder / "activation_samples.npz", allow_pickle=True) as archive:
        assert archive["demo/0"][0] == {"a": 1}
