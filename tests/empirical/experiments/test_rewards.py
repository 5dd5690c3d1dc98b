"""empirical.experiments.rewards: the fresh noise of M+noise(s) (the runs are tested in
tests/empirical/run/test_rewards_run.py).

Oracle: the noise's variance s^2 mean(A^2) by construction.
"""

from __future__ import annotations

import pytest
import torch

from empirical.experiments import rewards
from empirical.experiments._common import resolve_methods
from empirical.models import load_model


@pytest.fixture(scope="module")
def demo_model():
    return load_model("demo")


def test_fresh_noise_draws_a_new_noise_at_every_call_and_keeps_the_clean_map(demo_model, demo_batch):
    targets = torch.zeros(3, dtype=torch.long)
    cache, keys = {}, {id(demo_model): (0, 0, 0)}
    method = resolve_methods(["gradient-mean"])["gradient-mean"]
    batch = (demo_batch, targets)
    clean = rewards._FreshNoise(method, 0.0, seed=0, draw_keys=keys, first_image=0, clean=cache,
                                batch=batch)(demo_model, demo_batch, targets)
    noisy = rewards._FreshNoise(method, 1.0, seed=0, draw_keys=keys, first_image=0, clean=cache, batch=batch)
    first, second = noisy(demo_model, demo_batch, targets), noisy(demo_model, demo_batch, targets)
    assert not torch.allclose(first, second)
    assert len(cache) == 1  # the clean map is computed once for every level
    # the noise has variance s^2 mean(A^2) (s = 1) per image: 3072... pixels of N(0, 1) give a 5% spread
    ratio = (first - clean).flatten(1).square().mean(1) / clean.flatten(1).square().mean(1)
    assert torch.all((ratio > 0.85) & (ratio < 1.15))
