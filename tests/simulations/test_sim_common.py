"""Shared machinery of the simulations: intervals against statsmodels, verdicts, blocks, the result writer."""

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from simulations import _blocks, verdicts


@pytest.mark.parametrize(("count", "n"), [(0, 50), (3, 50), (25, 50), (50, 50), (7, 10_000)])
def test_wilson_interval_against_statsmodels(count, n):
    low, high = verdicts.wilson_interval(count, n, 0.99)
    ref_low, ref_high = proportion_confint(count, n, alpha=0.01, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)


def test_verdict_relations_can_fail():
    assert verdicts.verdict(0.1, 0.2, 0.15, "equal") is True
    assert verdicts.verdict(0.1, 0.2, 0.25, "equal") is False
    assert verdicts.verdict(0.1, 0.2, 0.05, "at_most") is False  # the estimate sits above the bound
    assert verdicts.verdict(0.1, 0.2, 0.15, "at_most") is True
    assert verdicts.verdict(0.1, 0.2, 0.0, "greater") is True
    assert verdicts.verdict(-0.1, 0.2, 0.0, "greater") is False
    assert verdicts.verdict(0.1, 0.2, 1.0, "less") is True
    assert verdicts.verdict(0.1, 0.2, np.nan, "equal") is None
    with pytest.raises(ValueError, match="relation"):
        verdicts.verdict(0, 1, 0, "about")


def test_block_layout_covers_all_draws():
    sizes = _blocks.block_sizes(1_000_003, bytes_per_draw=1000, budget=10**6)
    assert sum(sizes) == 1_000_003 and max(sizes) == 1000


def test_map_blocks_same_numbers_whatever_the_threads(monkeypatch):
    def draw(size, gen):
        return gen.standard_normal(size).sum()

    results = []
    for workers in (1, 2):
        monkeypatch.setattr(_blocks, "WORKERS", workers)
        # 10^6 bytes a draw against a 32 MiB budget: 32 draws a block, several blocks.
        results.append(_blocks.map_blocks(draw, 200, np.random.default_rng(5), bytes_per_draw=10**6))
    assert results[0] == results[1] and len(results[0]) > 1


def test_identity_row_fails_beyond_tolerance():
    assert verdicts.identity_row({}, "x", np.array([1e-12, -2e-12]), level=0.99, atol=1e-9)["agree"] is True
    assert verdicts.identity_row({}, "x", np.array([1e-12, -2e-6]), level=0.99, atol=1e-9)["agree"] is False


@given(count=st.integers(0, 500), extra=st.integers(0, 500), level=st.floats(0.5, 0.9999))
def test_wilson_interval_is_a_proper_interval_around_the_estimate(count, extra, level):
    n = count + extra
    if n == 0:
        return
    low, high = verdicts.wilson_interval(count, n, level)
    assert 0 <= low <= count / n <= high <= 1


@settings(deadline=None)  # its first example imports every simulation module: seconds on a loaded runner
@given(draws=st.integers(max_value=0))
def test_every_config_rejects_non_positive_draws(draws):
    from simulations import SIMULATIONS

    for name in SIMULATIONS:
        with pytest.raises(ValueError, match="draws must be a positive integer"):
            importlib.import_module(f"simulations.{name}").Config(draws=draws)


@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=20))
def test_activation_check_accepts_only_finite_non_trivial_arrays(values):
    from simulations.cauchy_overtake import check_activations

    array = np.array(values, dtype=float)
    if array.size >= 4 and np.isfinite(array).all():
        assert check_activations(array).size == array.size
    else:
        with pytest.raises(ValueError, match="activations"):
            check_activations(array)


def test_unwritable_output_is_one_message(tmp_path, capsys):
    from simulations import positive_dominance

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SystemExit) as exit_info:
        positive_dominance.main(["--quick", "--draws", "5", "--out", str(blocker / "out")])
    assert exit_info.value.code == 1
    assert "could not write results" in capsys.readouterr().err
