"""The command line every simulation shares: options, parse-run-print-write, and figures on Agg.

Every experiment module hands its ``Config``, ``run`` and ``plot`` to :func:`cli_main`; the result is written
by :func:`simulations.results.write_result`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import numpy as np

from simulations import _blocks, _checks
from simulations._blocks import LongRunWarning
from simulations.results import format_table, write_result
from theory import cli_options


def config_help(text: str, config_cls, *fields: str, shown: str | None = None) -> str:
    """``text (default: X; --quick: Y)``: the defaults of ``config_cls`` for the option that sets ``fields``
    (several fields: one value each, as the option takes them), the ``--quick`` one where it differs.
    ``shown``: the default as words, for a field whose default is None."""
    def value(config):
        parts = [getattr(config, field) for field in fields]
        flat = [v for part in parts for v in (part if isinstance(part, tuple | list) else (part,))]
        return " ".join(str(v) for v in flat)

    default, quick = value(config_cls()), value(config_cls.quick())
    if shown is not None:
        default = shown
    return cli_options.default_help(text, default if quick == default else f"{default}; --quick: {quick}")


def base_parser(name: str, description: str, config_cls=None, *, draws: str | None = None
                ) -> argparse.ArgumentParser:
    """The options every simulation shares; modules add their own before calling :func:`cli_main`.
    ``config_cls``: the simulation's ``Config``, whose defaults the help states (``draws``: the default of
    ``--draws`` in words, where the Config leaves it None)."""
    parser = argparse.ArgumentParser(prog=f"python -m simulations.{name}", description=description)

    def stated(text, field, shown=None):
        if config_cls is None:
            return cli_options.default_help(text, "the simulation's own")
        return config_help(text, config_cls, field, shown=shown)

    parser.add_argument("--draws", type=cli_options.positive_int, default=None, metavar="N",
                        help=stated("Monte Carlo draws per setting", "draws", draws))
    cli_options.add_seed(parser, "seed of the random generator")
    cli_options.add_out(parser, f"folder for {name}.csv, {name}.json and, with --plot, {name}.png",
                        shown="print the table only")
    parser.add_argument("--plot", action="store_true", help=f"also write a seaborn figure {name}.png")
    parser.add_argument("--quick", action="store_true", help="report-sized settings, a first look")
    parser.add_argument("--level", type=_level, default=None, metavar="P",
                        help=stated("confidence level of the verdicts", "level"))
    cli_options.add_no_progress(parser)
    return parser


def _level(text: str) -> float:
    """argparse type of --level: a confidence level in [0.5, 1)."""
    try:
        return _checks.confidence_level(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a confidence level in [0.5, 1), got {text!r}") from None


def cli_main(
    argv: Sequence[str] | None,
    *,
    name: str,
    parser: argparse.ArgumentParser,
    config_from_args: Callable[[argparse.Namespace], object],
    run: Callable,
    plot: Callable,
) -> int:
    """Parse, run, print, write CSV/manifest/figure. A bad configuration exits with status 2 and one line."""
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        rng = np.random.default_rng(args.seed)
        started = datetime.now(UTC)
        clock = time.perf_counter()
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(parser.prog, warnings.showwarning)
            with _blocks.progress_bars(not args.no_progress):
                table = run(config, rng=rng)
        elapsed = time.perf_counter() - clock
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except MemoryError:
        parser.exit(2, f"{parser.prog}: error: not enough memory for one block of these settings; "
                       "choose smaller sizes\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted before the table was complete; nothing written\n")
    print(format_table(table))
    disagree = int((table["agree"] == False).sum())  # noqa: E712 (nullable boolean)
    print(f"\n{len(table)} rows, {disagree} disagree at their level; {elapsed:.1f} s", file=sys.stderr)
    try:
        _write_outputs(args, name, config, table, plot, started, elapsed)
    except OSError as error:  # the table is on stdout already; say what could not be written
        parser.exit(1, f"{parser.prog}: error: could not write results: {error}\n")
    return 0


def _one_line_warnings(prog: str, fallback):
    """A ``warnings.showwarning`` that prints the first LongRunWarning as one line on stderr (later ones,
    for the other settings of the same run, would only repeat it) and leaves other warnings to
    ``fallback``."""
    shown = []

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, LongRunWarning):
            return fallback(message, category, filename, lineno, file, line)
        if not shown:
            shown.append(message)
            print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)
        return None

    return show


def _write_outputs(args, name, config, table, plot, started, elapsed) -> None:
    if args.out is not None:
        write_result(args.out, name, table, config=config, seed=args.seed, elapsed_s=elapsed,
                     plot=plot if args.plot else None, started=started.isoformat(),
                     finished=datetime.now(UTC).isoformat())
    elif args.plot:
        plot(table, Path(f"{name}.png"))


def config_overrides(args: argparse.Namespace, **extra) -> dict:
    """Keyword overrides for ``dataclasses.replace`` from the shared options (None: keep the default)."""
    values = {"draws": args.draws, "level": args.level, **extra}
    return {k: v for k, v in values.items() if v is not None}


def start_config(config_cls, args: argparse.Namespace, **extra):
    base = config_cls.quick() if args.quick else config_cls()
    return dataclasses.replace(base, **config_overrides(args, **extra))


def pyplot():
    """matplotlib.pyplot on the Agg backend (figures are files; no display is needed)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend is chosen, and only when a figure is drawn

    return plt


def save_figure(fig, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
