"""Evidence for the two places where the seed's printed formula and the verified one differ.

Eq. 20 (quantile variance) is printed without the square on the density; eq. 11 (second-moment
normalisation) prints h^2 where A^2 is meant. Each function returns a small table the report shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from theory import normalize_second_moment, quantile_asymptotic_variance


def quantile_variance_evidence(
    *, rng, p: float = 0.9, n: int = 1000, replications: int = 10_000
) -> pd.DataFrame:
    """Monte Carlo variance of the sample p-quantile of n standard normals against both forms of eq. 20.

    Returns one row per form (``verified``, ``as printed``) with the formula's ``value``, the Monte Carlo
    ``estimate`` and its ``se`` (normal-theory: var * sqrt(2/(R-1))), and ``z`` = |estimate - value| / se.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    if n < 2 or replications < 2:
        raise ValueError(f"n and replications must be at least 2, got n={n!r}, replications={replications!r}")
    rng = np.random.default_rng(rng)
    estimates = []
    block = max(1, 2_000_000 // n)  # about 16 MB of draws at a time
    for start in range(0, replications, block):
        draws = rng.standard_normal((min(block, replications - start), n))
        estimates.append(np.quantile(draws, p, axis=1))
    estimates = np.concatenate(estimates)
    variance = float(estimates.var(ddof=1))
    se = variance * np.sqrt(2.0 / (replications - 1))
    dist = stats.norm()
    verified = float(quantile_asymptotic_variance(p, n, dist))
    printed = float(quantile_asymptotic_variance(p, n, dist, as_printed=True))
    source = "theory.quantile_asymptotic_variance"
    rows = [
        dict(form=f"verified: p(1-p)/(n f(F^-1(p))^2) [{source}]", value=verified),
        dict(form=f"as printed: p(1-p)/(n f(F^-1(p))) [{source}]", value=printed),
    ]
    for row in rows:
        row.update(
            estimate=variance,
            se=se,
            z=abs(variance - row["value"]) / se,
            p=p,
            n=n,
            replications=replications,
            distribution="normal(0, 1)",
        )
    return pd.DataFrame(rows)


def normalization_evidence(
    *, rng, sizes: tuple[int, ...] = (32, 64), scales: tuple[float, ...] = (1.0, 10.0)
) -> pd.DataFrame:
    """Mean square of a normalised map under eq. 11 as verified (A^2 in the sum) and as printed (h^2).

    The seed states that the normalisation makes the mean squared score 1. With A^2 in the sum it is 1
    for every map size and scale; reading the printed h as the row index (the only h in the equation),
    the normaliser ignores the map, so the mean square follows the map's scale and size.
    """
    rng = np.random.default_rng(rng)
    rows = []
    for size in sizes:
        base = rng.standard_normal((size, size)) + 0.5
        rows_index = np.repeat(np.arange(size, dtype=float), size).reshape(size, size)
        for scale in scales:
            attribution = scale * base
            verified = np.asarray(normalize_second_moment(attribution))
            printed = attribution / np.sqrt(np.mean(rows_index**2))
            rows.append(
                dict(
                    map=f"{size}x{size}, scale {scale:g}",
                    mean_square_verified=float(np.mean(verified**2)),
                    mean_square_as_printed=float(np.mean(printed**2)),
                )
            )
    return pd.DataFrame(rows)
