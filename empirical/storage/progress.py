"""The progress bar of a long loop: one line with the estimated time of the whole loop, from its first unit
of work, then a tqdm bar. The chunked driver (``empirical.run.chunked``), the demo and multi-label training
loops and the benchmarks draw it."""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

__all__ = ["EstimatedBar", "duration_text", "estimate_line", "progress_bar"]


def duration_text(seconds: float) -> str:
    """``seconds`` in the largest unit that fits: "40 s", "12.5 minutes", "86.1 hours", "3.6 days"."""
    for unit, length in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= length:
            return f"{seconds / length:,.1f} {unit}"
    return f"{seconds:.0f} s"


def estimate_line(description: str, *, total: int, done: int, seconds: float, unit: str,
                  resumable: bool = True) -> str:
    """The line printed before an experiment's progress bar: the time its ``total`` units will take at the
    rate of the first ``done`` ones, which took ``seconds``; ``resumable``: whether a rerun resumes."""
    rate = seconds / max(done, 1)
    units = unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")
    ending = "Ctrl-C stops, and a rerun resumes from the finished ones" if resumable else "Ctrl-C stops"
    return (f"{description}: estimated time {duration_text(rate * total)} for {total:,} {units} "
            f"({rate:.2f} s a {unit}, from the first {done}); memory stays bounded by the {unit}; {ending}")


def progress_bar(total: int, *, enabled: bool, description: str, unit: str, initial: int = 0):
    """The bar of an experiment's loop (hidden unless ``enabled``): an :class:`EstimatedBar`, which prints
    the :func:`estimate_line` of the loop as a line before the tqdm bar is drawn."""
    return EstimatedBar(total, enabled=enabled, description=description, unit=unit, initial=initial)


class EstimatedBar:
    """A progress bar that first times the loop's first unit of work, prints the estimated time of all
    ``total`` units as one line on stderr, and only then draws the tqdm bar (starting at the units done).
    ``resumable=False`` for loops whose rerun starts over (the line then does not promise a resume).

    The first unit is real work whose result the loop keeps (a chunk written like any other), so the estimate
    wastes nothing; nothing is drawn before the estimate line. The clock starts when the bar is made: make it
    just before the loop. ``update``/``close`` and use as a context manager, as a tqdm bar.
    """

    def __init__(self, total: int, *, enabled: bool, description: str, unit: str, initial: int = 0,
                 resumable: bool = True):
        self.total, self.enabled, self.description, self.unit = total, enabled, description, unit
        self.resumable = resumable
        self.n, self._bar = initial, None
        self._started = time.perf_counter()

    def update(self, n: int = 1) -> None:
        if self._bar is None:
            seconds = time.perf_counter() - self._started
            if self.enabled:
                print(estimate_line(self.description, total=self.total, done=n, seconds=seconds,
                                    unit=self.unit, resumable=self.resumable), file=sys.stderr, flush=True)
            self._bar = tqdm(total=self.total, initial=self.n + n, disable=not self.enabled,
                             desc=self.description, unit=self.unit)
        else:
            self._bar.update(n)
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        """What the bar shows after its counts (from the first unit on, once the bar is drawn)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
