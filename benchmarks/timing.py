"""Wall-clock timing for the throughput harness: warm-up, device synchronisation, median of repeats.

On CUDA the clock is read only after ``torch.cuda.synchronize``, once before and once after each
repeat, so that queued kernels are counted and nothing inside the timed callable has to touch the host.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one timed callable: the median and every repeat, plus the work per call."""

    seconds: tuple[float, ...]
    items_per_call: float

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Items (images, or layer-images) per second at the median repeat."""
        median = self.median_s
        return self.items_per_call / median if median > 0 else float("inf")


def synchronize(device: torch.device | str) -> None:
    """Wait for every queued kernel on ``device`` (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    fn: Callable[[], object],
    *,
    items_per_call: float,
    device: torch.device | str = "cpu",
    warmup: int = 1,
    repeats: int = 3,
) -> Timing:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls; return a :class:`Timing`.

    ``items_per_call`` is the work one call does (e.g. the batch size), so ``Timing.rate`` is items
    per second. The result of ``fn`` is dropped; on CUDA each repeat ends with a synchronisation.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup!r}")
    if not items_per_call > 0:
        raise ValueError(f"items_per_call must be > 0, got {items_per_call!r}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return Timing(seconds=tuple(seconds), items_per_call=float(items_per_call))


def measure_interleaved(
    calls: dict[str, tuple[Callable[[], object], float]],
    *,
    device: torch.device | str = "cpu",
    warmup: int = 1,
    repeats: int = 3,
) -> dict[str, Timing]:
    """Time several callables in turn, one call of each per round, so that a change in the machine's load
    (other processes, clock boost) affects them alike; ``calls`` maps a name to (callable, items per call).

    Used to set a stage against its floor: the ratio of the two medians is robust to slow drifts that
    timing them one after the other would turn into a bias.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    for _ in range(warmup):
        for fn, _items in calls.values():
            fn()
    synchronize(device)
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (fn, _items) in calls.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            seconds[name].append(time.perf_counter() - start)
    return {name: Timing(seconds=tuple(seconds[name]), items_per_call=float(items))
            for name, (_fn, items) in calls.items()}
