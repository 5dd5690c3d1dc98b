"""One command-line convention for every entry point (the rules: ``theory/cli_options.py``).

For each of the project's commands the parser is built in-process and checked: the shared options have
one name (no synonyms such as ``--output`` or a visible ``--quiet``) and one check (``--seed``, sizes,
``--device``, ``--out``), every help line states its default as ``(default: X)``, and ``--no-progress``
exists wherever progress bars are drawn. Bad values go through the real ``main``: exit status 2 and one
line ``prog: error: argument --seed: ...`` naming the option and the value, no traceback. The checks are
run once more on a parser written the wrong way, to show that they catch it.
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIMULATIONS = ("adaptive_beta", "cauchy_overtake", "monotonicity", "noise_injection", "positive_dominance",
               "quantile_variance", "similarity_processes")

#: the name each shared option has everywhere, and the spellings it must not have
SYNONYMS = {
    "--seed": ("--random-seed", "--rng", "--rng-seed", "-s"),
    "--out": ("--output", "--output-dir", "--outdir", "--out-dir", "-o"),
    "--device": ("--gpu", "--cuda", "--accelerator"),
    "--images": ("--n-images", "--num-images", "--nimages"),
    "--batch-size": ("--batch", "--bs", "--batchsize", "--batch_size"),
    "--epochs": ("--n-epochs", "--num-epochs"),
    "--draws": ("--n-draws", "--num-draws", "--samples"),
    "--no-progress": ("--quiet", "--silent", "--no-bar", "--no-progress-bar", "--progress"),
}
#: sizes: positive integers, checked by the option's argparse type
SIZES = ("--images", "--batch-size", "--epochs", "--draws", "--repeats", "--threads", "--busy")


def _simulation_parser(name: str):
    def build():
        from simulations import cli

        module = importlib.import_module(f"simulations.{name}")
        real, cli.cli_main = cli.cli_main, lambda argv, *, parser, **_: parser
        try:
            return module.main([])
        finally:
            cli.cli_main = real

    return build


def _builder(module: str):
    return lambda: importlib.import_module(module).build_parser()


def _main(module: str, *prefix: str):
    return lambda argv: importlib.import_module(module).main([*prefix, *argv])


# prog: (build the parser, run main with argv, arguments that come first, draws progress bars)
ENTRY_POINTS = {
    "python -m reports": (_builder("reports.__main__"), _main("reports.__main__"), [], True),
    "python -m empirical": (_builder("empirical.__main__"), _main("empirical.__main__"), ["all"], True),
    "python -m empirical finetune": (_builder("empirical.multilabel.cli"),
                                     _main("empirical.__main__", "finetune"), [], True),
    "python -m empirical.models.train_demo": (_builder("empirical.models.train_demo"),
                                              _main("empirical.models.train_demo"), [], True),
    "python -m benchmarks": (_builder("benchmarks.__main__"), _main("benchmarks.__main__"), [], True),
    "python -m benchmarks workload": (_builder("benchmarks.workload_bench"),
                                      _main("benchmarks.__main__", "workload"), [], True),
    "python -m benchmarks report-load": (_builder("benchmarks.report_under_load"),
                                         _main("benchmarks.__main__", "report-load"), [], False),
    "python -m benchmarks.beta_from_agreement": (_builder("benchmarks.beta_from_agreement"),
                                                 _main("benchmarks.beta_from_agreement"), [], True),
    **{f"python -m simulations.{name}": (_simulation_parser(name), _main(f"simulations.{name}"), [], True)
       for name in SIMULATIONS},
}
#: the modules that build an argument parser (the simulations' shared one is simulations/cli.py)
PARSER_MODULES = {"reports/__main__.py", "empirical/__main__.py", "empirical/multilabel/cli.py",
                  "empirical/models/train_demo.py", "benchmarks/__main__.py", "benchmarks/workload_bench.py",
                  "benchmarks/report_under_load.py", "benchmarks/beta_from_agreement.py",
                  "simulations/cli.py"}


def _visible(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction)]


def _option(parser: argparse.ArgumentParser, name: str):
    return parser._option_string_actions.get(name)


def _rejects(check, text: str) -> bool:
    try:
        check(text)
    except argparse.ArgumentTypeError:
        return True
    except (TypeError, ValueError):  # argparse turns these into "invalid <type> value", naming the option too
        return True
    return False


def name_problems(parser: argparse.ArgumentParser) -> list[str]:
    """Synonyms of the shared options among the visible ones."""
    problems = []
    for canonical, synonyms in SYNONYMS.items():
        for action in _visible(parser):
            for spelling in set(action.option_strings) & set(synonyms):
                problems.append(f"{spelling}: the shared spelling is {canonical}")
    quiet = _option(parser, "--quiet")
    if quiet is not None and (quiet.help is not argparse.SUPPRESS or quiet.dest != "no_progress"):
        problems.append("--quiet: only a hidden alias of --no-progress")
    return problems


def check_problems(parser: argparse.ArgumentParser) -> list[str]:
    """The shared options whose argparse type does not check what the convention says."""
    problems = []
    seed = _option(parser, "--seed")
    if seed is not None:
        if seed.type is None or seed.type("7") != 7 or seed.type("4294967295") != 4294967295:
            problems.append("--seed: does not take 0 to 2**32 - 1")
        elif not all(_rejects(seed.type, text) for text in ("-1", "x", "1.5", "4294967296")):
            problems.append("--seed: lets a value outside 0 to 2**32 - 1 through")
    for size in SIZES:
        action = _option(parser, size)
        if action is not None and (action.type is None or action.type("3") != 3
                                   or not all(_rejects(action.type, text) for text in ("0", "-1", "x"))):
            problems.append(f"{size}: not checked as a positive integer by its type")
    device = _option(parser, "--device")
    if device is not None and (device.type is None or device.type("cuda:1") != "cuda:1"
                               or not all(_rejects(device.type, t) for t in ("tpu", "cuda:x", "gpu"))):
        problems.append("--device: not checked as cpu, cuda or cuda:N by its type")
    out = _option(parser, "--out")
    if out is not None and out.type is not Path:
        problems.append("--out: not a Path")
    return problems


def help_problems(parser: argparse.ArgumentParser) -> list[str]:
    """Help lines that state a default otherwise than ``(default: X)`` at their end, or not at all."""
    problems = []
    for action in _visible(parser):
        name, text = action.option_strings[-1], action.help or ""
        outside = text.replace("(default: ", "")
        if "%(default)" in text or re.search(r"\bdefault", outside, re.IGNORECASE):
            problems.append(f"{name}: a default written otherwise than '(default: X)': {text!r}")
        elif action.nargs == 0:
            continue  # a flag: off unless given
        elif action.required:
            if "(default: " in text:
                problems.append(f"{name}: required, but its help states a default")
        elif not re.search(r"\(default: .+\)$", text):
            problems.append(f"{name}: its help does not end with '(default: X)': {text!r}")
        elif isinstance(action.default, int | float | str) and f"(default: {action.default}" not in text:
            problems.append(f"{name}: the help's default is not the real one, {action.default!r}")
    return problems


def progress_problems(parser: argparse.ArgumentParser, shows_progress: bool) -> list[str]:
    if not shows_progress:
        return []
    action = _option(parser, "--no-progress")
    if action is None or action.nargs != 0 or action.dest != "no_progress" or action.default is not False:
        return ["--no-progress: missing, or not a flag setting no_progress"]
    return []


def bad_value_problems(main, argv: list[str], option: str, value: str, prog: str, capsys) -> list[str]:
    """``main(argv)`` must exit 2 with argparse's one line naming ``option`` and ``value``, no traceback."""
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    except Exception as error:  # noqa: BLE001 - the problem to report
        return [f"{option} {value}: raised {type(error).__name__}: {error}"]
    else:
        return [f"{option} {value}: did not exit"]
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    problems = [] if code == 2 else [f"{option} {value}: exit status {code}, not 2"]
    if "Traceback" in err or len(errors) != 1 or not err.endswith(errors[0] + "\n"):
        problems.append(f"{option} {value}: not one error line at the end: {err!r}")
    elif not errors[0].startswith(f"{prog}: error: argument {option}: ") or repr(value) not in errors[0]:
        problems.append(f"{option} {value}: the line does not name the option and the value: {errors[0]!r}")
    return problems


@pytest.fixture(scope="module")
def parsers():
    return {prog: entry[0]() for prog, entry in ENTRY_POINTS.items()}


def test_every_parser_of_the_project_is_checked():
    found = {str(path.relative_to(ROOT)) for package in ("theory", "simulations", "empirical", "reports",
                                                         "benchmarks")
             for path in (ROOT / package).rglob("*.py")
             if "tests" not in path.parts and not path.name.startswith("test_")
             and "ArgumentParser(" in path.read_text()}
    assert found == PARSER_MODULES
    driven = {path.stem for path in (ROOT / "simulations").glob("*.py")
              if "cli.cli_main(" in path.read_text()}
    assert driven == set(SIMULATIONS)


@pytest.mark.parametrize("prog", list(ENTRY_POINTS))
def test_parser_keeps_the_convention(prog, parsers):
    parser, shows_progress = parsers[prog], ENTRY_POINTS[prog][3]
    assert parser.prog == prog
    problems = (name_problems(parser) + check_problems(parser) + help_problems(parser)
                + progress_problems(parser, shows_progress))
    assert problems == []


@pytest.mark.parametrize("prog", list(ENTRY_POINTS))
def test_bad_values_exit_2_with_one_line_naming_the_option(prog, parsers, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a command that wrongly ran would write its default outputs here
    parser, (_, main, prefix, _) = parsers[prog], ENTRY_POINTS[prog]
    cases = [(size, "0") for size in SIZES if _option(parser, size) is not None]
    if _option(parser, "--seed") is not None:
        cases += [("--seed", "-1"), ("--seed", "x")]
    if _option(parser, "--device") is not None:
        cases.append(("--device", "tpu"))
    assert len(cases) >= 1
    out = ["--out", str(tmp_path / "out")] if _option(parser, "--out") else []  # never the default outputs
    problems = [p for option, value in cases
                for p in bad_value_problems(main, [*prefix, option, value, *out], option, value, prog,
                                            capsys)]
    assert problems == []


def test_shared_options_are_where_they_are_expected(parsers):
    with_seed = {prog for prog, parser in parsers.items() if _option(parser, "--seed")}
    # the two without one draw nothing at random: the report's timing, and the workload (its run's seed is 0)
    assert with_seed == set(ENTRY_POINTS) - {"python -m benchmarks report-load",
                                             "python -m benchmarks workload"}
    assert all(_option(parser, "--out") for parser in parsers.values())
    assert _option(parsers["python -m empirical"], "--quiet").dest == "no_progress"  # the older spelling


def _wrong_parser() -> argparse.ArgumentParser:
    """Every rule broken once: the older styles this convention replaced."""
    parser = argparse.ArgumentParser(prog="python -m wrong")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=64, help="default %(default)s")
    parser.add_argument("--images", type=int, default=None, help="number of images")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--output", type=str, default="results", help="folder (default: results)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs (default: 10)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def test_the_checks_catch_a_parser_written_the_wrong_way(capsys):
    parser = _wrong_parser()
    names = name_problems(parser)
    assert any(p.startswith("--output:") for p in names) and any(p.startswith("--quiet:") for p in names)
    checks = check_problems(parser)
    assert {p.split(":")[0] for p in checks} == {"--seed", "--batch-size", "--images", "--device", "--epochs"}
    helps = help_problems(parser)
    assert {p.split(":")[0] for p in helps} == {"--seed", "--batch-size", "--images", "--epochs"}
    assert progress_problems(parser, True) and not progress_problems(parser, False)

    def main(argv):
        args = parser.parse_args(argv)
        if args.seed < 0:
            raise ValueError(f"seed must be non-negative, got {args.seed}")
        return 0

    assert bad_value_problems(main, ["--seed", "-1"], "--seed", "-1", "python -m wrong", capsys) == [
        "--seed -1: raised ValueError: seed must be non-negative, got -1"]
    wrong_line = bad_value_problems(main, ["--seed", "x"], "--seed", "x", "python -m wrong", capsys)
    assert wrong_line == []  # argparse's own "invalid int value: 'x'" names the option and the value

    def main_without_option(argv):
        parser.exit(2, "python -m wrong: error: seed x is no number\n")

    assert bad_value_problems(main_without_option, [], "--seed", "x", "python -m wrong", capsys)


def test_no_progress_reaches_the_simulations_bars(monkeypatch):
    from simulations import _blocks, monotonicity

    seen = []
    monkeypatch.setattr(_blocks, "tqdm", lambda **kwargs: seen.append(kwargs["disable"]) or _Bar())

    def run(config, rng):
        _blocks.progress_bar("x").close()
        raise _Stop

    monkeypatch.setattr(monotonicity, "run", run)
    for argv, disable in (([], None), (["--no-progress"], True)):
        with pytest.raises(_Stop):
            monotonicity.main(argv)
        assert seen.pop() is disable  # None: tqdm's own choice, drawn on a terminal only


def test_no_progress_reaches_train_demo(monkeypatch, tmp_path):
    from empirical.models import train_demo

    def train(**kwargs):
        raise _Stop(kwargs)

    monkeypatch.setattr(train_demo, "train", train)
    for argv, progress in (([], True), (["--no-progress"], False)):
        with pytest.raises(_Stop) as stop:
            train_demo.main([*argv, "--out", str(tmp_path / "w.pt")])
        assert stop.value.args[0]["progress"] is progress


class _Stop(Exception):
    pass


class _Bar:
    def close(self):
        return None
