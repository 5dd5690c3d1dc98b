"""The throughput harness on a tiny size: every stage in the table, the CLI, verdicts and helpers.

No timing is asserted anywhere: these tests check that the harness measures what it says it measures.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.config import make_config
from benchmarks.harness import run_benchmarks
from benchmarks.peers import blurred_padded_copy, replace_from_blurred_copy
from benchmarks.stages import all_stages
from benchmarks.table import COLUMNS, floor_verdict, speedup_verdict
from benchmarks.timing import measure


@pytest.mark.slow
def test_tiny_run_has_every_stage_and_writes_csv(tmp_path):
    config = make_config("tiny")
    frame = run_benchmarks(config, out=tmp_path, progress=False)
    written = pd.read_csv(tmp_path / "benchmarks.csv")
    assert list(written.columns) == ["model", "device", "size", "batch_size", "image_size", *COLUMNS]
    assert len(written) == len(frame)
    stages = frame[frame["kind"] == "stage"]
    assert list(stages["stage"]) == [stage.name for stage in all_stages(config)]
    for expected in ("attribution gradient", "attribution integrated-gradients", "attribution lrp-epsilon",
                     "faithfulness patch 8", "faithfulness patch 15", "randomisation step",
                     "randomisation step ssim+spearman", "activation statistics"):
        assert expected in set(stages["stage"])
    # every stage ran, or says its code is not there; none crashed
    assert set(stages["status"]) <= {"ok", "not available"}, stages[["stage", "status", "detail"]].to_string()
    done = stages[stages["status"] == "ok"]
    np.testing.assert_allclose(done["of_floor"], done["rate_per_s"] / done["floor_per_s"])
    assert (done["rate_per_s"] > 0).all()
    floors = frame[frame["kind"] == "floor"]
    assert set(floors["implementation"]) == {"forward", "forward+input-gradient", "zennit-epsilon-plus-flat",
                                            "zennit-epsilon-alpha2-beta1-flat", "forward+sorted-inputs",
                                            "random-fill"}
    # the rules that weigh both signed parts are held against Zennit's alpha-beta composite, z+ rules not
    for method, floor in (("lrp-adaptive-beta", "zennit-epsilon-alpha2-beta1-flat"),
                          ("epsilon-plus-flat", "zennit-epsilon-plus-flat")):
        assert stages[stages["stage"] == f"attribution {method}"]["floor"].item().startswith(floor)
    # the floor of a perturbation curve is the forward pass, steps + 1 times an image
    faithfulness = stages[stages["stage"] == "faithfulness patch 8"]
    assert faithfulness["floor"].item() == f"forward / {config.faithfulness_steps + 1}"
    integrated = stages[stages["stage"] == "attribution integrated-gradients"]
    assert integrated["floor"].item() == f"forward+input-gradient / {config.ig_steps}"


def test_missing_and_crashing_stages_are_rows_not_failures(tmp_path, monkeypatch):
    import benchmarks.harness as harness
    from benchmarks.stages import Stage, StageUnavailable

    def missing(workload, config, reference):
        raise StageUnavailable("empirical.nothing not importable")

    def crashing(workload, config, reference):
        def run():
            raise RuntimeError("boom")
        return run

    fake = [Stage("stage missing", "forward", 1, missing), Stage("stage crashing", "forward", 1, crashing)]
    monkeypatch.setattr(harness, "all_stages", lambda config: fake)
    frame = harness.run_benchmarks(make_config("tiny"), out=tmp_path, progress=False)
    stages = frame[frame["kind"] == "stage"].set_index("stage")
    assert stages.loc["stage missing", "status"] == "not available"
    assert stages.loc["stage missing", "detail"] == "empirical.nothing not importable"
    assert stages.loc["stage crashing", "status"] == "error"
    assert stages.loc["stage crashing", "detail"].startswith("RuntimeError: boom")
    assert stages["verdict"].eq("").all()  # no rate, no verdict
    assert len(pd.read_csv(tmp_path / "benchmarks.csv")) == len(frame)


def test_cli_bad_batch_size_exits_2_with_one_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--batch-size", "0"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --batch-size: must be a positive integer, got '0'" in error
    assert "Traceback" not in error


def test_cli_cuda_without_gpu_exits_2(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda"])
    assert exit_info.value.code == 2
    assert "cuda" in capsys.readouterr().err


def test_unknown_size_names_the_value():
    with pytest.raises(ValueError, match="size must be one of .* got 'huge'"):
        make_config("huge")


def test_measure_calls_warmup_then_repeats_and_rates_by_items():
    calls = []
    timing = measure(lambda: calls.append(1), items_per_call=8, warmup=0, repeats=3)
    assert len(calls) == 3  # no warm-up to count from: one call a repeat
    assert len(timing.seconds) == 3
    assert timing.rate == pytest.approx(8 / timing.median_s)


def test_measure_loops_short_calls_until_a_repeat_lasts_the_minimum():
    """Oracle: a call that sleeps 10 ms is looped about MIN_REPEAT_S / 10 ms times a repeat, and a repeat's
    seconds are per call; a call longer than the minimum runs once a repeat."""
    import time

    from benchmarks.timing import MIN_REPEAT_S

    calls = []
    timing = measure(lambda: (calls.append(1), time.sleep(0.01)), items_per_call=1, warmup=1, repeats=2)
    per_repeat = (len(calls) - 1) / 2
    assert 2 <= per_repeat <= MIN_REPEAT_S / 0.01 + 1
    assert all(0.01 <= seconds < 0.05 for seconds in timing.seconds)  # per call, not per repeat (>= 0.02)
    long_calls = []
    measure(lambda: (long_calls.append(1), time.sleep(MIN_REPEAT_S)), items_per_call=1, warmup=1, repeats=2)
    assert len(long_calls) == 3


def test_verdicts_by_hand():
    assert floor_verdict(0.70) == "met"
    assert floor_verdict(0.35) == "missed by 50%"
    assert floor_verdict(math.nan) == ""
    assert speedup_verdict(25.0, 20.0) == "met"
    assert speedup_verdict(5.0, 10.0) == "missed: 5.0x of 10x (50% short)"
    assert speedup_verdict(5.0, None) == ""


def test_quantus_blurred_copy_against_suite_blur():
    """The copy Quantus perturbs from is the suite's own blurred image (mirrored borders), only padded."""
    faithfulness = pytest.importorskip("empirical.experiments.faithfulness")
    x = np.random.default_rng(3).standard_normal((2, 3, 40, 40)).astype(np.float32)
    padded = blurred_padded_copy(x, patch_size=15, blur_kernel=15).reshape(2, 3, 45, 45)
    suite = faithfulness.blur(torch.from_numpy(x), 15).numpy()
    np.testing.assert_allclose(padded[:, :, 2:42, 2:42], suite, rtol=1e-5, atol=1e-6)
    # Quantus pads 40 to 45 for patches of 15: 2 rows before, 3 after, by repeating the edge
    np.testing.assert_array_equal(padded[:, :, :2], np.repeat(padded[:, :, 2:3], 2, axis=2))
    np.testing.assert_array_equal(padded[:, :, 42:], np.repeat(padded[:, :, 41:42], 3, axis=2))


def test_replace_from_blurred_copy_touches_only_indices():
    arr = np.zeros((2, 10))
    blurred = np.arange(20.0).reshape(2, 10)
    out = replace_from_blurred_copy(arr, np.array([[1, 3], [0, 9]]), blurred=blurred)
    expected = np.zeros((2, 10))
    expected[0, [1, 3]] = [1, 3]
    expected[1, [0, 9]] = [10, 19]
    np.testing.assert_array_equal(out, expected)
    assert not arr.any()  # the input is left alone


@pytest.mark.slow
def test_device_check_cpu_against_cpu_is_exact():
    """The CUDA check's machinery, run CPU against CPU: every check that ran differs by exactly 0."""
    from benchmarks.cuda_check import check_cuda_against_cpu

    checks = check_cuda_against_cpu("demo", images=2, image_size=48, steps=4, device="cpu")
    ran = checks[checks["status"] != "not available"]
    assert (ran["status"] == "ok").all(), ran.to_string()
    assert (ran["relative_difference"] == 0).all()
    assert {"forward logits", "attribution gradient", "faithfulness patch 15", "similarity ssim"} <= set(
        checks["check"])


def test_cli_unwritable_out_exits_2_with_one_message(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["--size", "tiny", "--out", str(blocker / "sub"), "--no-progress"])
    assert code == 2
    error = capsys.readouterr().err
    assert "cannot write to" in error and "Traceback" not in error


def test_run_prints_the_estimate_before_the_stage_bar(tmp_path, capsys):
    """Oracle: the stage count of the run (the floors, then every stage of ``all_stages``) and the order of
    what reaches stderr: the estimate's line first, then the bar."""
    config = make_config("tiny")
    run_benchmarks(config, out=tmp_path, progress=True)
    err = capsys.readouterr().err
    line = err.lstrip("\r").splitlines()[0]
    assert line.startswith("benchmarks: estimated time "), err
    assert f"for {1 + len(all_stages(config))} stages" in line


def test_config_takes_the_devices_of_the_command_line():
    assert make_config("tiny", device="cuda:1").device == "cuda:1"
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        make_config("tiny", device="gpu")
