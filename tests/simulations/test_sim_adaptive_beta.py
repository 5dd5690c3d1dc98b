"""simulations.adaptive_beta: eq. 1's ratio, the cap, conservation and the off fraction 1/2."""

import dataclasses

import numpy as np
import pytest
from scipy import integrate

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


def _capped_fraction_two_inputs(beta_max: float) -> float:
    """P(beta > beta_max | on) for two inputs, by quadrature. The contributions c_i = w_i |z_i| are iid and
    sign-symmetric; a neuron is on and capped iff the signs differ and R = |c_-| / |c_+| lies in
    (beta_max / (1 + beta_max), 1). R = C1 C2 with C1 = |w_2 / w_1|, C2 = |z_2 / z_1| iid half-Cauchy, so
    P(R < r) = int (2/pi) atan(r / c) (2/pi) / (1 + c^2) dc and P(R < 1) = 1/2; P(on) = 1/2."""
    def below(r):
        density = lambda c: (2 / np.pi) * np.arctan(r / c) * (2 / np.pi) / (1 + c * c)  # noqa: E731
        return integrate.quad(density, 0, np.inf)[0]

    return 0.5 - below(beta_max / (1 + beta_max))


def test_capped_fraction_against_quadrature():
    # width 1: every neuron has its own inputs, so the neurons are independent and the binomial se holds
    table = ab.run(dataclasses.replace(SMALL, inputs=(1, 2), width=1), rng=6)
    capped = table[table["quantity"] == "capped-fraction"].set_index("inputs")
    assert capped.loc[1, "estimate"] == 0  # one input: P or N is 0, so beta is 0 or the neuron is off
    expected = _capped_fraction_two_inputs(SMALL.beta_max)
    # the same probability from the density of a product of two half-Cauchy, (4/pi^2) ln r / (r^2 - 1)
    r = SMALL.beta_max / (1 + SMALL.beta_max)
    product = integrate.quad(lambda s: 4 / np.pi**2 * np.log(s) / (s * s - 1), 0, r)[0]
    assert expected == pytest.approx(0.5 - product, abs=1e-8)
    assert abs(capped.loc[2, "estimate"] - expected) <= K_SE * capped.loc[2, "se"]
    assert abs(capped.loc[2, "estimate"] - expected - 0.02) > K_SE * capped.loc[2, "se"]  # it can fail


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
