"""Every simulation command: --help, bad configuration (exit 2, one message), determinism, outputs."""

import importlib
import json

import pandas as pd
import pytest

from simulations.results import RESULT_COLUMNS

MODULES = ["cauchy_overtake", "similarity_processes", "quantile_variance", "adaptive_beta", "monotonicity",
           "positive_dominance", "noise_injection"]
# Tiny runs for the command-line plumbing (the statistics are tested module by module).
TINY = {
    "cauchy_overtake": ["--draws", "500", "--K", "2", "--n-small", "2", "--n-large", "1"],
    "similarity_processes": ["--quick", "--draws", "10", "--size", "24", "24"],
    "quantile_variance": ["--quick", "--draws", "50"],
    "adaptive_beta": ["--quick", "--draws", "400"],
    "monotonicity": ["--quick", "--draws", "50"],
    "positive_dominance": ["--quick", "--draws", "20"],
    "noise_injection": ["--quick", "--draws", "10", "--size", "24", "24"],
}


@pytest.mark.parametrize("name", MODULES)
def test_help_exits_0(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"simulations.{name}").main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--draws" in out and "--seed" in out and "--plot" in out and "--out" in out


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize(("argv", "message"), [
    (["--draws", "-3"], "argument --draws: must be a positive integer, got '-3'"),
    (["--level", "1.5"], "argument --level: must be a confidence level"),
])
def test_bad_configuration_exits_2(name, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"simulations.{name}").main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]  # argparse's usage, then one line
    assert "Traceback" not in err and len(errors) == 1 and message in errors[0]
    assert err.endswith(errors[0] + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_same_seed_same_bytes_and_the_results_format(name, tmp_path, capsys):
    module = importlib.import_module(f"simulations.{name}")
    assert module.main([*TINY[name], "--seed", "3", "--out", str(tmp_path / "a")]) == 0
    assert module.main([*TINY[name], "--seed", "3", "--out", str(tmp_path / "b"), "--plot"]) == 0
    csv = (tmp_path / "a" / f"{name}.csv").read_bytes()
    assert csv == (tmp_path / "b" / f"{name}.csv").read_bytes()
    assert (tmp_path / "b" / f"{name}.png").is_file()
    table = pd.read_csv(tmp_path / "a" / f"{name}.csv")
    assert list(table.columns[-len(RESULT_COLUMNS):]) == list(RESULT_COLUMNS)
    manifest = json.loads((tmp_path / "a" / f"{name}.json").read_text())
    assert {"config", "seed", "draws", "versions", "elapsed_s"} <= set(manifest)
    capsys.readouterr()


@pytest.mark.parametrize("name", MODULES)
def test_config_shape(name):
    module = importlib.import_module(f"simulations.{name}")
    quick = module.Config.quick()
    assert isinstance(quick, module.Config) and module.Config().level == quick.level
    with pytest.raises(AttributeError):
        quick.draws = 1  # frozen
