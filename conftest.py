"""Settings shared by the whole test session (`theory/tests` and `tests`)."""

import os

import matplotlib
from hypothesis import settings

# Figures are written to files, never shown: no display exists in CI.
matplotlib.use("Agg")

# Under CI (CI=true) hypothesis draws the same examples every run, so a red build reproduces from its log;
# locally it keeps exploring new examples.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
