"""Monte Carlo draws in blocks sized to memory, one child generator a block, folded as they finish (memory
does not grow with the number of draws), and their progress bar."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from simulations._checks import positive_int

#: Memory a block of draws may take; blocks never change the numbers, only the peak memory.
BLOCK_BYTES = 32 * 2**20
WORKERS = max(1, min(2, os.cpu_count() or 1))


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
    total = positive_int(total, "draws")
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



_SHOWN = [True]  # False inside progress_bars(False): the command line's --no-progress


@contextlib.contextmanager
def progress_bars(shown: bool):
    """Within: the bars of :func:`progress_bar` are drawn (on a terminal) if ``shown``, never otherwise."""
    before, _SHOWN[0] = _SHOWN[0], shown
    try:
        yield
    finally:
        _SHOWN[0] = before


def progress_bar(desc: str, total: int | None = None):
    """A tqdm bar on stderr, silent when stderr is not a terminal (tests, pipes) or within
    ``progress_bars(False)``."""
    return tqdm(total=total, desc=desc, unit="block", disable=None if _SHOWN[0] else True, leave=False)
