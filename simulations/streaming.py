"""Statistics of Monte Carlo draws accumulated block by block: moments and worst errors whose memory does
not grow with the number of draws, and the ``combine`` that :func:`simulations._blocks.reduce_blocks`
folds them with."""

from __future__ import annotations

import numpy as np


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
