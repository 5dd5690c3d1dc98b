"""Batched SSIM and Spearman (``empirical.measures.similarity``) against scikit-image and scipy on the
same maps.

64 pairs of 224x224 maps, as one randomisation step of one batch produces. These tests time; the only
assertion is that both sides computed the same numbers (so that the timings compare the same work).
torch runs on one thread here, as scikit-image and scipy do, so the comparison is per core.
Run with ``pytest benchmarks`` (not part of the README's test command).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

similarity = pytest.importorskip("empirical.measures.similarity")
skimage_metrics = pytest.importorskip("skimage.metrics")
scipy_stats = pytest.importorskip("scipy.stats")

PAIRS, SIDE = 64, 224




@pytest.fixture(scope="module")
def maps() -> tuple[np.ndarray, np.ndarray]:
    """Two stacks of smooth-ish random maps, the second correlated with the first (float64)."""
    generator = np.random.default_rng(20261126)
    a = generator.standard_normal((PAIRS, SIDE, SIDE)).cumsum(axis=2)
    b = 0.6 * a + generator.standard_normal((PAIRS, SIDE, SIDE)).cumsum(axis=1)
    return a, b


def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # the same definition as similarity.ssim's default: 7x7 uniform window, sample covariance, and a
    # data range of max - min over both maps of the pair
    return np.array([
        skimage_metrics.structural_similarity(x, y, win_size=7, data_range=np.ptp(np.stack([x, y])))
        for x, y in zip(a, b, strict=True)
    ])


def _scipy_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([scipy_stats.spearmanr(x.ravel(), y.ravel()).statistic
                     for x, y in zip(a, b, strict=True)])


@pytest.mark.benchmark(group="ssim 64x224x224")
def test_bench_ssim_batched(benchmark, maps):
    a, b = (torch.from_numpy(m) for m in maps)
    result = benchmark.pedantic(similarity.ssim, args=(a, b), rounds=3, warmup_rounds=1)
    np.testing.assert_allclose(result.numpy()[:4], _skimage_ssim(maps[0][:4], maps[1][:4]), rtol=1e-7)


@pytest.mark.benchmark(group="ssim 64x224x224")
def test_bench_ssim_skimage(benchmark, maps):
    result = benchmark.pedantic(_skimage_ssim, args=maps, rounds=2, warmup_rounds=0)
    assert result.shape == (PAIRS,)


@pytest.mark.benchmark(group="spearman 64x224x224")
def test_bench_spearman_batched(benchmark, maps):
    a, b = (torch.from_numpy(m) for m in maps)
    result = benchmark.pedantic(similarity.spearman, args=(a, b), rounds=3, warmup_rounds=1)
    np.testing.assert_allclose(result.numpy()[:4], _scipy_spearman(maps[0][:4], maps[1][:4]), rtol=1e-9)


@pytest.mark.benchmark(group="spearman 64x224x224")
def test_bench_spearman_scipy(benchmark, maps):
    result = benchmark.pedantic(_scipy_spearman, args=maps, rounds=2, warmup_rounds=0)
    assert result.shape == (PAIRS,)


@pytest.mark.benchmark(group="ssim 64x224x224 float32")
def test_bench_ssim_batched_float32(benchmark, maps):
    a, b = (torch.from_numpy(m).float() for m in maps)
    result = benchmark.pedantic(similarity.ssim, args=(a, b), rounds=3, warmup_rounds=1)
    assert torch.isfinite(result).all()
