"""simulations.adaptive_beta: eq. 1's ratio, the cap, conservation and the off fraction 1/2."""

import dataclasses

import numpy as np
import pytest

from simulations import adaptive_beta as ab

# Proportions: |mc - 1/2| <= K_SE * se, false-failure 6e-5 per row at K_SE = 4 (fixed seed).
K_SE = 4.0
SMALL = ab.Config(draws=20_000, inputs=(4, 32), width=8)


@pytest.fixture(scope="module")
def table():
    return ab.run(SMALL, rng=3)


def test_identities_hold_in_every_draw(table):
    identities = table[table["quantity"].str.startswith("max-")]
    assert len(identities) == 8
    assert (identities["estimate"] <= ab.IDENTITY_ATOL).all() and identities["agree"].all()


def test_off_fraction_against_symmetry(table):
    off = table[table["quantity"] == "off-fraction"]
    assert (np.abs(off["estimate"] - 0.5) <= K_SE * off["se"]).all()


def test_capped_fraction_grows_with_inputs(table):
    capped = table[table["quantity"] == "capped-fraction"]["estimate"].to_numpy()
    assert capped[1] > capped[0] > 0


def test_without_cap_no_ratio_is_capped():
    table = ab.run(dataclasses.replace(SMALL, beta_max=1e12, inputs=(8,)), rng=4)
    assert table.loc[table["quantity"] == "capped-fraction", "estimate"].iloc[0] == 0


def test_verdict_fails_when_the_ratio_is_compared_with_the_wrong_cap(monkeypatch):
    # Pretend the cap were beta_max + 1: the realised capped ratios then miss beta/(1+beta).
    original = ab._layer_block

    def wrong_cap(layers, gen, d, width, beta_max):
        return original(layers, gen, d, width, beta_max) | {
            "capped_error": original(layers, gen, d, width, beta_max)["capped_error"] + 0.05}

    monkeypatch.setattr(ab, "_layer_block", wrong_cap)
    table = ab.run(dataclasses.replace(SMALL, inputs=(16,)), rng=5)
    assert not table.loc[table["quantity"] == "max-capped-ratio-minus-cap", "agree"].iloc[0]
