"""The Monte Carlo kernels of ``simulations`` against a plain numpy draw of the same size.

The plain draw is the least any kernel must do (the random numbers themselves); the ratio of the two
timings says how much the kernel adds on top. Each kernel is timed through ``map_blocks``, as the
experiments call it. These tests time; they assert only that the kernels returned their counts.
Run with ``pytest benchmarks``.
"""

from __future__ import annotations

import numpy as np
import pytest

common = pytest.importorskip("simulations._blocks")  # the block runner every simulation uses
cauchy_overtake = pytest.importorskip("simulations.cauchy_overtake")
quantile_variance = pytest.importorskip("simulations.quantile_variance")

NEURONS = 200_000  # random neurons per overtaking setting in one timing
N_SMALL, N_LARGE = 8, 4
QUANTILE_DRAWS, QUANTILE_N = 4_000, 1_000


def _kernel(module, name):
    kernel = getattr(module, name, None)
    if kernel is None:
        pytest.skip(f"{module.__name__}.{name} is not there (renamed?)")
    return kernel


@pytest.fixture(scope="module")
def activation_sets():
    generator = np.random.default_rng(7)
    x_small = generator.uniform(0.1, 1.0, N_SMALL).astype(np.float32)
    x_large = (1.0 + generator.exponential(1.0, N_LARGE)).astype(np.float32)
    return x_small, x_large


@pytest.mark.benchmark(group="overtaking: 200k neurons, 12 weights each")
def test_bench_overtake_count_kernel(benchmark, activation_sets):
    count_block = _kernel(cauchy_overtake, "_count_block")
    x_small, x_large = activation_sets

    def run():
        return common.map_blocks(lambda size, gen: count_block(size, gen, x_small, x_large, N_SMALL, N_LARGE),
                                 NEURONS, np.random.default_rng(0), bytes_per_draw=4 * (N_SMALL + N_LARGE))
    blocks = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert sum(block[0] for block in blocks) > 0


@pytest.mark.benchmark(group="overtaking: 200k neurons, 12 weights each")
def test_bench_overtake_plain_numpy_draw(benchmark):
    def run():
        return np.random.default_rng(0).standard_normal((NEURONS, N_SMALL + N_LARGE), dtype=np.float32)
    assert benchmark.pedantic(run, rounds=5, warmup_rounds=1).shape == (NEURONS, N_SMALL + N_LARGE)


@pytest.mark.benchmark(group="cauchy ratio: 1M pairs, 3 thresholds")
def test_bench_ratio_kernel(benchmark):
    ratio_block = _kernel(cauchy_overtake, "_ratio_block")

    def run():
        return common.map_blocks(lambda size, gen: ratio_block(size, gen, (1.0, 2.0, 4.0), 0.5),
                                 1_000_000, np.random.default_rng(0), bytes_per_draw=8)
    blocks = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert sum(int(np.sum(block)) for block in blocks) > 0


@pytest.mark.benchmark(group="cauchy ratio: 1M pairs, 3 thresholds")
def test_bench_ratio_plain_numpy_draw(benchmark):
    def run():
        return np.random.default_rng(0).standard_normal((2, 1_000_000), dtype=np.float32)
    assert benchmark.pedantic(run, rounds=5, warmup_rounds=1).shape == (2, 1_000_000)


@pytest.mark.benchmark(group="sample quantiles: 4000 x 1000 normal draws")
def test_bench_quantile_kernel(benchmark):
    quantile_block = _kernel(quantile_variance, "_quantile_block")
    from scipy import stats

    def run():
        return common.map_blocks(lambda size, gen: quantile_block(size, gen, stats.norm(), QUANTILE_N,
                                                                  (0.5, 0.75, 0.9, 0.99)),
                                 QUANTILE_DRAWS, np.random.default_rng(0), bytes_per_draw=16 * QUANTILE_N)
    blocks = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    assert np.concatenate(blocks).shape == (QUANTILE_DRAWS, 4)


@pytest.mark.benchmark(group="sample quantiles: 4000 x 1000 normal draws")
def test_bench_quantile_plain_numpy_draw(benchmark):
    def run():
        return np.random.default_rng(0).standard_normal((QUANTILE_DRAWS, QUANTILE_N))
    assert benchmark.pedantic(run, rounds=3, warmup_rounds=1).shape == (QUANTILE_DRAWS, QUANTILE_N)
