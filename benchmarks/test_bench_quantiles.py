"""Quantile statistics of pooled activations: ``empirical.measures.activations.pooled_quantiles``
against numpy.

One level of ResNet-50 at 224x224 (64 channels x 56 x 56 values an image) for 16 images, the 18
quantile levels of seed section I. These tests time; the only assertion is that both sides computed
the same quantiles. torch runs on one thread, as numpy does. Run with ``pytest benchmarks``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

activations = pytest.importorskip("empirical.measures.activations")
theory = pytest.importorskip("theory")

IMAGES, VALUES = 16, 64 * 56 * 56
LEVELS = np.asarray(theory.QUANTILE_LEVELS, dtype=np.float64)




@pytest.fixture(scope="module")
def pooled() -> np.ndarray:
    # post-ReLU-like values: a point mass at zero and a skewed positive part, as real activations have
    values = np.random.default_rng(11).standard_normal((IMAGES, VALUES)).astype(np.float32)
    return np.maximum(values, 0.0) ** 1.5


@pytest.mark.benchmark(group="18 quantiles, 16 x 200,704 values")
def test_bench_pooled_quantiles_torch(benchmark, pooled):
    values = torch.from_numpy(pooled)
    result = benchmark.pedantic(activations.pooled_quantiles, args=(values, LEVELS), rounds=3,
                                warmup_rounds=1)
    np.testing.assert_allclose(result.numpy(), np.quantile(pooled, LEVELS, axis=1).T, rtol=1e-6)


@pytest.mark.benchmark(group="18 quantiles, 16 x 200,704 values")
def test_bench_pooled_quantiles_numpy(benchmark, pooled):
    result = benchmark.pedantic(np.quantile, args=(pooled, LEVELS), kwargs={"axis": 1}, rounds=3,
                                warmup_rounds=1)
    assert result.shape == (len(LEVELS), IMAGES)
