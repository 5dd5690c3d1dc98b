"""Shared machinery of the simulations: random blocks, intervals, verdicts, tables and the command line.

Every experiment module builds its rows with :func:`row`, turns them into the tidy table of
docs/results-format.md with :func:`finish_table`, and hands its ``Config``, ``run`` and ``plot`` to
:func:`cli_main`. Nothing here knows about a particular theorem.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

#: Columns every table ends with, in this order (docs/results-format.md); ``relation`` says how the
#: verdict reads ``theory``: ``equal``, ``at_most`` (theory is an upper bound), ``at_least`` or ``greater``.
RESULT_COLUMNS = ("quantity", "estimate", "se", "ci_low", "ci_high", "theory", "agree", "level", "relation")
RELATIONS = ("equal", "at_most", "at_least", "greater", "less")

#: Memory a block of draws may take; blocks never change the numbers, only the peak memory.
BLOCK_BYTES = 32 * 2**20
WORKERS = max(1, min(2, os.cpu_count() or 1))


# --------------------------------------------------------------------------- validation


def as_generator(rng) -> np.random.Generator:
    """A numpy Generator from a Generator, a seed or a SeedSequence (no global state)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("rng must be a numpy Generator or an integer seed, got None")
    return np.random.default_rng(rng)


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive_ints(name: str, values: Sequence) -> tuple[int, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
            raise ValueError(f"{name} must hold positive integers, got {v!r} in {values!r}")
    return tuple(int(v) for v in values)


def check_positive_floats(name: str, values: Sequence) -> tuple[float, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if not isinstance(v, int | float | np.number) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must hold positive finite numbers, got {v!r} in {values!r}")
    return tuple(float(v) for v in values)


def check_probabilities(name: str, values: Sequence, *, closed: bool = False) -> tuple[float, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        ok = isinstance(v, int | float | np.number) and math.isfinite(v)
        ok = ok and ((0 <= v <= 1) if closed else (0 < v < 1))
        if not ok:
            interval = "[0, 1]" if closed else "(0, 1)"
            raise ValueError(f"{name} must hold numbers in {interval}, got {v!r} in {values!r}")
    return tuple(float(v) for v in values)


def check_level(level) -> float:
    if not isinstance(level, int | float) or not 0.5 <= level < 1:
        raise ValueError(f"level must be a confidence level in [0.5, 1), got {level!r}")
    return float(level)


# --------------------------------------------------------------------------- random blocks


#: Memory one draw may need (a block holds at least one draw whatever BLOCK_BYTES says).
MAX_DRAW_BYTES = 4 * 2**30
#: An estimated run time above this many seconds gets a :class:`LongRunWarning` (the run goes on).
LONG_RUN_S = 3600.0
#: Blocks handed to the workers at a time: results are folded in as they come, so memory stays bounded.
_WINDOW_BLOCKS = 8


class LongRunWarning(UserWarning):
    """A Monte Carlo loop will, at the rate measured on its first blocks, take very long."""


def _per_block(bytes_per_draw: int, budget: int = BLOCK_BYTES) -> int:
    return max(1, budget // max(1, bytes_per_draw))


def block_sizes(total: int, bytes_per_draw: int, budget: int = BLOCK_BYTES) -> list[int]:
    """Split ``total`` draws into blocks of at most ``budget`` bytes (layout depends only on sizes).
    A list: for small totals and tests; the loops use :func:`reduce_blocks`, which never builds it."""
    per_block = _per_block(bytes_per_draw, budget)
    full, rest = divmod(total, per_block)
    return [per_block] * full + ([rest] if rest else [])


def _duration(seconds: float) -> str:
    for unit, length in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= length:
            return f"{seconds / length:,.1f} {unit}"
    return f"{seconds:.0f} s"


def reduce_blocks(
    draw_block: Callable[[int, np.random.Generator], object],
    total: int,
    rng: np.random.Generator,
    *,
    bytes_per_draw: int,
    combine: Callable[[object, object], object],
    initial=None,
    progress=None,
):
    """Fold ``combine(acc, draw_block(size, generator))`` over the blocks of ``total`` draws, in block order.

    Blocks hold at most ``BLOCK_BYTES`` (at least one draw); they are handed out a few at a time and folded
    as they finish, so memory does not grow with ``total``. Each block gets its own child generator spawned
    from ``rng`` (in windows: the same children as one spawn of all of them), so the numbers are the same
    whatever the number of threads. ``initial=None`` starts from the first block's result. After the first
    block, an estimated time above ``LONG_RUN_S`` gives a :class:`LongRunWarning`; Ctrl-C stops the loop
    (KeyboardInterrupt) after the blocks in flight.
    """
    total = check_positive_int("draws", total)
    if bytes_per_draw > MAX_DRAW_BYTES:
        raise ValueError(f"one draw of these settings needs {bytes_per_draw / 2**30:,.1f} GiB, more than the "
                         f"{MAX_DRAW_BYTES / 2**30:.0f} GiB one draw may take: choose smaller sizes")
    per_block = _per_block(bytes_per_draw)
    n_blocks = -(-total // per_block)
    if progress is not None:
        progress.total = (progress.total or 0) + n_blocks
        progress.refresh()

    def one(args):
        size, child = args
        result = draw_block(size, child)
        if progress is not None:
            progress.update(1)
        return result

    pool = ThreadPoolExecutor(WORKERS) if WORKERS > 1 and n_blocks > 1 else None
    acc, started = initial, time.perf_counter()
    try:
        for first in range(0, n_blocks, _WINDOW_BLOCKS):
            count = min(_WINDOW_BLOCKS, n_blocks - first)
            sizes = [min(per_block, total - (first + i) * per_block) for i in range(count)]
            jobs = list(zip(sizes, rng.spawn(count), strict=True))
            for i, result in enumerate(pool.map(one, jobs) if pool is not None else map(one, jobs)):
                acc = result if acc is None else combine(acc, result)
                if first == 0 and i == 0 and n_blocks > 1:  # the first block ran beside WORKERS - 1 others
                    parallel = WORKERS if pool is not None else 1
                    estimate = (time.perf_counter() - started) * total / (sizes[0] * parallel)
                    if estimate > LONG_RUN_S:
                        warnings.warn(f"{total:,} draws will take about {_duration(estimate)} at the rate of "
                                      "the first block (memory stays bounded); Ctrl-C stops the run",
                                      LongRunWarning, stacklevel=2)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return acc


def map_blocks(
    draw_block: Callable[[int, np.random.Generator], object],
    total: int,
    rng: np.random.Generator,
    *,
    bytes_per_draw: int,
    desc: str = "",
    progress=None,
) -> list:
    """Run ``draw_block(size, generator)`` over blocks of ``total`` draws; results in block order.

    Keeps every block's result: for small results and totals (benchmarks, tests). The simulations fold
    their blocks with :func:`reduce_blocks` and the accumulators below instead.
    """
    return reduce_blocks(lambda size, gen: [draw_block(size, gen)], total, rng, bytes_per_draw=bytes_per_draw,
                         combine=lambda acc, result: acc + result, progress=progress)


def add(acc, result):
    """``combine`` of :func:`reduce_blocks`: counts (numbers, tuples, arrays) add element-wise,
    :class:`Moments` and :class:`Worst` merge, dicts combine key by key."""
    if isinstance(acc, dict):
        return {k: add(acc[k], result[k]) for k in acc}
    if isinstance(acc, Moments | Worst):
        return acc.merge(result)
    return np.add(acc, result)


class Moments:
    """Streaming count, mean and central moments up to the fourth of i.i.d. values, per column.

    ``add(values)`` takes an array (k,) or (k, d); blocks are merged with the exact pairwise update of
    Chan, Golub and LeVeque (1979) and Pebay (2008), so the statistics equal those of one concatenated
    array up to rounding, in memory that does not grow with the number of values. NaN propagates, as in
    numpy. ``co=True`` also keeps the co-moment matrix of the columns (for :meth:`covariance`).
    """

    def __init__(self, *, co: bool = False):
        self.n = 0
        self.mean = self.m2 = self.m3 = self.m4 = self.co = None
        self._keep_co = co

    @classmethod
    def of(cls, values, *, co: bool = False) -> Moments:
        return cls(co=co).add(values)

    def add(self, values) -> Moments:
        """Add the values of one block (rows: values; columns: quantities); returns self."""
        x = np.asarray(values, float)
        if x.shape[0] == 0:
            return self
        block = Moments(co=self._keep_co)
        block.n, block.mean = x.shape[0], x.mean(axis=0)
        d = x - block.mean
        block.m2, block.m3, block.m4 = (d**2).sum(0), (d**3).sum(0), (d**4).sum(0)
        if self._keep_co:
            block.co = np.einsum("ij,ik->jk", d, d)
        return self.merge(block)

    def merge(self, other: Moments) -> Moments:
        """These moments and ``other``'s, pooled (returns self); the ``combine`` of :func:`reduce_blocks`."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.n, self.mean, self.m2, self.m3, self.m4, self.co = (other.n, other.mean, other.m2, other.m3,
                                                                     other.m4, other.co)
            return self
        na, nb = self.n, other.n
        n = na + nb
        delta = other.mean - self.mean
        m2a, m3a, m2b, m3b = self.m2, self.m3, other.m2, other.m3
        self.m4 = (self.m4 + other.m4 + delta**4 * na * nb * (na * na - na * nb + nb * nb) / n**3
                   + 6 * delta**2 * (na * na * m2b + nb * nb * m2a) / n**2
                   + 4 * delta * (na * m3b - nb * m3a) / n)
        self.m3 = m3a + m3b + delta**3 * na * nb * (na - nb) / n**2 + 3 * delta * (na * m2b - nb * m2a) / n
        self.m2 = m2a + m2b + delta**2 * na * nb / n
        if self._keep_co:
            self.co = self.co + other.co + np.outer(delta, delta) * na * nb / n
        self.mean = self.mean + delta * nb / n
        self.n = n
        return self

    def column(self, j: int) -> Moments:
        """The moments of column ``j`` alone."""
        one = Moments()
        one.n, one.mean, one.m2, one.m3, one.m4 = self.n, self.mean[j], self.m2[j], self.m3[j], self.m4[j]
        return one

    def var(self, ddof: int = 1):
        return self.m2 / (self.n - ddof) if self.n > ddof else np.full_like(np.asarray(self.mean), np.nan)

    def std(self, ddof: int = 1):
        return np.sqrt(self.var(ddof))

    def central4(self):
        """The fourth central sample moment, mean((x - mean)^4)."""
        return self.m4 / self.n

    def covariance(self, ddof: int = 1):
        return self.co / (self.n - ddof)


class Worst:
    """Streaming max |error| and count of the values seen (for :func:`identity_row`)."""

    def __init__(self, values=()):
        values = np.abs(np.asarray(values, float))
        self.n = values.size
        self.worst = float(values.max()) if values.size else -np.inf

    def merge(self, other: Worst) -> Worst:
        self.n += other.n
        self.worst = float(np.max([self.worst, other.worst]))  # NaN propagates, as in one array's max
        return self


def progress_bar(desc: str, total: int | None = None):
    """A tqdm bar on stderr, silent when stderr is not a terminal (tests, pipes)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="block", disable=None, leave=False)


# --------------------------------------------------------------------------- intervals and verdicts


def z_value(level: float) -> float:
    """Two-sided normal quantile for a confidence level."""
    return float(stats.norm.ppf(0.5 + level / 2))


def normal_interval(estimate, se, level: float):
    z = z_value(level)
    estimate, se = np.asarray(estimate, float), np.asarray(se, float)
    return estimate - z * se, estimate + z * se


def wilson_interval(count, n, level: float):
    """Wilson score interval of a binomial proportion; exact endpoints 0 and 1 stay attainable."""
    count, n = np.asarray(count, float), np.asarray(n, float)
    z = z_value(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = count / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    low = np.where(count == 0, 0.0, centre - half)
    high = np.where(count == n, 1.0, centre + half)
    return low, high


def verdict(ci_low, ci_high, theory, relation: str, atol: float = 0.0):
    """Whether the interval is compatible with ``theory`` under ``relation``; None where undefined."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    values = (ci_low, ci_high, theory)
    if any(v is None or not np.isfinite(v) for v in values[:2]) or theory is None or np.isnan(theory):
        return None
    if relation == "equal":
        return bool(ci_low - atol <= theory <= ci_high + atol)
    if relation == "at_most":  # theory bounds the quantity from above
        return bool(ci_low <= theory + atol)
    if relation == "at_least":
        return bool(ci_high >= theory - atol)
    if relation == "greater":  # the quantity is strictly above theory
        return bool(ci_low > theory + atol)
    return bool(ci_high < theory - atol)


def row(
    settings: dict,
    quantity: str,
    *,
    estimate: float,
    se: float,
    theory: float,
    level: float,
    relation: str = "equal",
    ci: tuple[float, float] | None = None,
    atol: float = 0.0,
) -> dict:
    """One table row: normal interval from ``se`` unless ``ci`` is given, and its verdict."""
    estimate, se, theory = float(estimate), float(se), float(theory)
    low, high = ci if ci is not None else normal_interval(estimate, se, level)
    low, high = float(low), float(high)
    return {
        **settings,
        "quantity": quantity,
        "estimate": estimate,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "theory": theory,
        "agree": verdict(low, high, theory, relation, atol),
        "level": float(level),
        "relation": relation,
    }


def proportion_row(settings: dict, quantity: str, *, count: int, n: int, theory: float, level: float,
                   relation: str = "equal") -> dict:
    """A row for a frequency: estimate count/n, binomial se, Wilson interval."""
    if n == 0:
        return row(settings, quantity, estimate=np.nan, se=np.nan, theory=theory, level=level,
                   relation=relation, ci=(np.nan, np.nan))
    p = count / n
    low, high = wilson_interval(count, n, level)
    return row(settings, quantity, estimate=p, se=math.sqrt(p * (1 - p) / n), theory=theory, level=level,
               relation=relation, ci=(float(low), float(high)))


def mean_row(settings: dict, quantity: str, values, *, theory: float, level: float,
             relation: str = "equal", atol: float = 0.0) -> dict:
    """A row for the mean of i.i.d. values (an array, or their streamed :class:`Moments`), se = sd/sqrt(n)."""
    moments = values if isinstance(values, Moments) else Moments.of(np.asarray(values, float).ravel())
    n = moments.n
    if n == 0:
        return row(settings, quantity, estimate=np.nan, se=np.nan, theory=theory, level=level,
                   relation=relation, ci=(np.nan, np.nan))
    se = float(moments.std(ddof=1)) / math.sqrt(n) if n > 1 else np.nan
    return row(settings, quantity, estimate=moments.mean, se=se, theory=theory, level=level,
               relation=relation, atol=atol)


def identity_row(settings: dict, quantity: str, errors, *, level: float, atol: float) -> dict:
    """A row for an identity that must hold in every draw: estimate = max |error|, agree iff <= atol.
    ``errors``: an array, or their streamed :class:`Worst`."""
    worst = errors if isinstance(errors, Worst) else Worst(errors)
    value = worst.worst if worst.n else np.nan
    return row(settings, quantity, estimate=value, se=0.0, theory=0.0, level=level, ci=(value, value),
               atol=atol)


def finish_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Tidy table with the result columns last; ``agree`` is a nullable boolean (NA: no verdict)."""
    table = pd.DataFrame(list(rows))
    settings = [c for c in table.columns if c not in RESULT_COLUMNS]
    table = table[settings + list(RESULT_COLUMNS)]
    table["agree"] = table["agree"].astype("boolean")
    return table


# --------------------------------------------------------------------------- command line


def versions() -> dict:
    import matplotlib
    import scipy

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "matplotlib": matplotlib.__version__,
    }


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


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


def format_table(table: pd.DataFrame) -> str:
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
        return table.to_string(index=False, float_format=lambda v: f"{v:.5g}")


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
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / f"{name}.csv", index=False)
        manifest = {
            "simulation": name,
            "config": _jsonable(config),
            "seed": args.seed,
            "draws": getattr(config, "neuron_draws", getattr(config, "draws", None)),
            "versions": versions(),
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "elapsed_s": round(elapsed, 3),
        }
        (args.out / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if args.plot:
            plot(table, args.out / f"{name}.png")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
