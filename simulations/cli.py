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

from simulations._blocks import LongRunWarning
from simulations.results import format_table, write_result


def _seed_argument(text: str) -> int:
    """argparse type of --seed: numpy's seeds are non-negative integers (argparse names the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def base_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every simulation shares; modules add their own before calling :func:`cli_main`."""
    parser = argparse.ArgumentParser(prog=f"python -m simulations.{name}", description=description)
    parser.add_argument("--draws", type=int, default=None,
                        help="Monte Carlo draws per setting (default: the Config default)")
    parser.add_argument("--seed", type=_seed_argument, default=0,
                        help="seed of the random generator, a non-negative integer (default 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"directory for {name}.csv and {name}.json (and {name}.png with --plot)")
    parser.add_argument("--plot", action="store_true", help=f"also write a seaborn figure {name}.png")
    parser.add_argument("--quick", action="store_true", help="report-sized settings (Config.quick())")
    parser.add_argument("--level", type=float, default=None, help="confidence level of the verdicts")
    return parser


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
