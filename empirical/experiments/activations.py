"""The activation-statistics experiment over a data set (seed sections I and J), as kernels over tensors.

:func:`activations_batch` feeds one image batch through ``empirical.measures.activations`` and returns the
means of the per-image statistics of every level (the input of every convolution and linear layer, pooled over
space and channels). From all batches :func:`averaged_table` forms the ``activations.csv`` rows of
docs/results-format.md: the 18 quantiles and the non-positive fraction averaged over images, then K, gamma
and P_gamma(Z >= K) for every (q_high, q_low) pair via ``theory.overtake_from_quantiles``. Neither reads or
writes a file: ``empirical.run.activations`` keeps each batch as a resumable chunk and saves a subsample of
the first image's pooled activations per level (``empirical.measures.activations.activation_samples``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

import theory
from empirical.measures.activations import activation_statistics
from empirical.storage.tables import ACTIVATION_COLUMNS

__all__ = ["BATCH_FIELDS", "SAMPLE_SIZE", "activations_batch", "averaged_table"]

#: pooled values of the first image kept per level (seed section J's histograms)
SAMPLE_SIZE = 4096
#: a batch's rows: the batch means of the quantiles and non-positive fraction, and the batch's image count
BATCH_FIELDS = ("model", "level", "layer", "statistic", "q", "images", "value")


def activations_batch(network, images, *, model_name: str) -> pd.DataFrame:
    """The kernel of the activation-statistics experiment: the quantile and non-positive-fraction rows of
    one batch of ``images`` (the means over its images, columns ``BATCH_FIELDS``), with its size, for
    :func:`averaged_table`. ``network``: in eval mode, on the device of ``images``."""
    x = images
    table = activation_statistics(network, x)
    table = table[table["statistic"].isin(["quantile", "nonpositive_fraction"])]
    return pd.DataFrame({"model": model_name, "level": table["level"].to_numpy(),
                         "layer": table["layer"].to_numpy(), "statistic": table["statistic"].to_numpy(),
                         "q": table["q"].to_numpy(), "images": len(x), "value": table["value"].to_numpy()},
                        columns=list(BATCH_FIELDS))


def averaged_table(totals: pd.DataFrame, count: int, model_name: str) -> pd.DataFrame:
    """Image-weighted means over the batch chunks, then K, gamma and P for every (q_high, q_low) of
    ``theory.HIGH_QUANTILES`` x ``theory.LOW_QUANTILES`` at each level (seed section I)."""
    totals = totals.assign(weighted=totals["value"] * totals["images"])
    grouped = totals.groupby(["level", "layer", "statistic", "q"], dropna=False, sort=True)
    summed = grouped.agg(images=("images", "sum"), weighted=("weighted", "sum")).reset_index()
    if not (summed["images"] == count).all():
        raise ValueError(f"activation chunks of {model_name!r} cover {sorted(set(summed['images']))} images, "
                         f"expected {count}: the folder mixes runs with other images; use a fresh --out")
    summed["value"] = summed["weighted"] / summed["images"]
    summed["q_high"] = summed["q_low"] = np.nan
    frames = [summed[list(ACTIVATION_COLUMNS[1:])]]
    pairs = list(itertools.product(theory.HIGH_QUANTILES, theory.LOW_QUANTILES))
    q_high = np.array([high for high, _ in pairs])
    q_low = np.array([low for _, low in pairs])
    quantiles = summed[summed["statistic"] == "quantile"]
    for (level, layer), rows in quantiles.groupby(["level", "layer"], sort=True):
        by_q = dict(zip(np.round(rows["q"].to_numpy(), 2), rows["value"].to_numpy(), strict=True))
        k, gamma, p = theory.overtake_from_quantiles(q_low, [by_q[round(q, 2)] for q in q_low],
                                                     q_high, [by_q[round(q, 2)] for q in q_high])
        for statistic, values in (("K", k), ("gamma", gamma), ("P", p)):
            frames.append(pd.DataFrame({"level": level, "layer": layer, "statistic": statistic, "q": np.nan,
                                        "q_high": q_high, "q_low": q_low,
                                        "value": np.broadcast_to(np.asarray(values, float), q_high.shape)}))
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "model", model_name)
    return table[list(ACTIVATION_COLUMNS)]
