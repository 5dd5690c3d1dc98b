"""Wall-clock timing for the throughput harness: warm-up, device synchronisation, median of repeats.

On CUDA the clock is read only after ``torch.cuda.synchronize``, once before and once after each
repeat, so that queued kernels are counted and nothing inside the timed callable has to touch the host.
A repeat calls the callable as often as it takes to last about :data:`MIN_REPEAT_S` (counted from the
last warm-up call), so that a call of a fraction of a millisecond is not timed by one reading of the clock.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

#: the shortest repeat worth timing: calls shorter than this are looped within a repeat
MIN_REPEAT_S = 0.05
_MAX_CALLS_PER_REPEAT = 10_000


def _warm_up(fn: Callable[[], object], device, warmup: int) -> int:
    """Run ``warmup`` untimed calls; return the calls a repeat needs to last MIN_REPEAT_S (1 without any)."""
    elapsed = 0.0
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        synchronize(device)
        elapsed = time.perf_counter() - start
    if warmup == 0 or elapsed >= MIN_REPEAT_S:
        return 1
    return min(_MAX_CALLS_PER_REPEAT, math.ceil(MIN_REPEAT_S / max(elapsed, 1e-9)))


def _timed_repeat(fn: Callable[[], object], device, calls: int) -> float:
    """Seconds per call over ``calls`` calls, synchronised at the end."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / calls


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
    calls = _warm_up(fn, device, warmup)
    synchronize(device)
    seconds = [_timed_repeat(fn, device, calls) for _ in range(repeats)]
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
    loops = {name: _warm_up(fn, device, warmup) for name, (fn, _items) in calls.items()}
    synchronize(device)
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (fn, _items) in calls.items():
            seconds[name].append(_timed_repeat(fn, device, loops[name]))
    return {name: Timing(seconds=tuple(seconds[name]), items_per_call=float(items))
            for name, (_fn, items) in calls.items()}
