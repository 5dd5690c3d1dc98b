"""Settings shared by the whole test session (`theory/tests` and `tests`)."""

import os
from pathlib import Path

import matplotlib
import pytest
from hypothesis import settings

# Figures are written to files, never shown: no display exists in CI.
matplotlib.use("Agg")

# Under CI (CI=true) hypothesis draws the same examples every run, so a red build reproduces from its log;
# locally it keeps exploring new examples.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def one_torch_thread():
    """One intra-op torch thread for the session: the suite's tensors are small, and on a 2-core runner two
    spinning threads made a 3-image forward pass of the demo network 25x slower (0.95 s against 0.04 s)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(config, items):
    # every test that may touch torch gets the fixture; the pure `theory` tests never import torch
    theory_tests = Path(__file__).parent / "theory"
    for item in items:
        if theory_tests not in item.path.parents:
            item.add_marker(pytest.mark.usefixtures("one_torch_thread"))
