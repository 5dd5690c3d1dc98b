"""Monte Carlo draws in blocks sized to memory, one child generator a block, and their progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

#: Memory a block of draws may take; blocks never change the numbers, only the peak memory.
BLOCK_BYTES = 32 * 2**20
WORKERS = max(1, min(2, os.cpu_count() or 1))


def block_sizes(total: int, bytes_per_draw: int, budget: int = BLOCK_BYTES) -> list[int]:
    """Split ``total`` draws into blocks of at most ``budget`` bytes (layout depends only on sizes)."""
    per_block = max(1, budget // max(1, bytes_per_draw))
    full, rest = divmod(total, per_block)
    return [per_block] * full + ([rest] if rest else [])


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

    Each block gets its own child generator spawned from ``rng``, so the numbers are the same whatever
    the number of threads (numpy's generators release the GIL while they fill arrays).
    """
    sizes = block_sizes(total, bytes_per_draw)
    children = rng.spawn(len(sizes))
    if progress is not None:
        progress.total = (progress.total or 0) + len(sizes)
        progress.refresh()

    def one(args):
        size, child = args
        result = draw_block(size, child)
        if progress is not None:
            progress.update(1)
        return result

    if WORKERS == 1 or len(sizes) == 1:
        return [one(a) for a in zip(sizes, children, strict=True)]
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(one, zip(sizes, children, strict=True)))


def progress_bar(desc: str, total: int | None = None):
    """A tqdm bar on stderr, silent when stderr is not a terminal (tests, pipes)."""
    return tqdm(total=total, desc=desc, unit="block", disable=None, leave=False)
