"""``python -m empirical``: help, one message and exit code 2 for bad input, resumption after a real kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from empirical.__main__ import main

RUN = ["faithfulness", "--images", "6", "--batch-size", "1", "--methods", "gradient", "gradient-x-input",
       "--quiet"]


def test_help_lists_experiments_and_profiles(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("randomization", "faithfulness", "activations", "--profile", "--out", "imagenet", "bench",
                 "resumes"):
        assert word in text


@pytest.mark.parametrize(("argv", "message"), [
    (["faithfulness", "--model", "vgg"], "unknown model 'vgg'"),
    (["faithfulness", "--methods", "saliency"], "unknown method 'saliency'"),
    (["faithfulness", "--profile", "imagenet"], "needs data: pass --data"),
    (["faithfulness", "--profile", "imagenet", "--data", "/nonexistent/val"], "data folder not found"),
    (["faithfulness", "--weights", "/nonexistent/w.pt"], "not found"),
    (["faithfulness", "--weights", "demo=a", "b"], "expected MODEL=PATH"),
])
def test_bad_input_is_one_message_and_exit_code_2(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["faithfulness", "--images", "0"], "argument --images: must be a positive integer, got '0'"),
    (["faithfulness", "--batch-size", "-3"], "argument --batch-size: must be a positive integer, got '-3'"),
    (["faithfulness", "--device", "tpu"], "argument --device: must be cpu, cuda or cuda:N, got 'tpu'"),
    (["faithfulness", "--workers", "-1"], "argument --workers: must be a non-negative integer, got '-1'"),
])
def test_bad_option_value_is_an_argparse_error_naming_it(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "out"), "--quiet"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.endswith(f"python -m empirical: error: {message}\n") and "Traceback" not in error


def test_quiet_is_a_hidden_alias_of_no_progress(capsys):
    from empirical.__main__ import build_parser

    parser = build_parser()
    assert parser.parse_args(["all", "--quiet"]).no_progress is True
    assert parser.parse_args(["all", "--no-progress"]).no_progress is True
    assert parser.parse_args(["all"]).no_progress is False
    assert "--quiet" not in parser.format_help()


def test_unknown_experiment_or_profile_is_an_argparse_error(capsys):
    for argv in (["sanity"], ["faithfulness", "--profile", "fast"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _command(out):
    return [sys.executable, "-m", "empirical", *RUN, "--out", str(out)]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_tables(tmp_path):
    """Oracle: the same command run without interruption. The killed run is stopped by SIGKILL after its
    first finished chunk, then started again with the same arguments."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run(_command(reference), check=True, env=env, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    process = subprocess.Popen(_command(killed), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    chunks = killed / "chunks" / "faithfulness"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if chunks.is_dir() and any(chunks.glob("*.csv")):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not (killed / "faithfulness.csv").exists(), "the run finished before it could be killed"
    finished_before = len(list(chunks.glob("*.csv")))
    assert 1 <= finished_before < 12
    resumed = subprocess.run(_command(killed), check=True, env=env, capture_output=True, text=True,
                             timeout=600)
    assert "wrote" in resumed.stdout
    for name in ("faithfulness.csv", "faithfulness_area.csv"):
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), name
