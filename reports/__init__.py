"""Reports: theory, Monte Carlo and real networks side by side (``python -m reports``).

``build_report(out, source=None, seed=0, quick=False)`` writes ``report.html`` (self-contained),
``report.md``, ``figures/`` and ``tables/`` under ``out``; see docs/results-format.md for the layout.
"""

# python -m reports: importing empirical first sets thread counts from the CPUs this process may use and
# passive OpenMP waiting, before numpy and torch load
import empirical  # noqa: F401, I001

from reports.build import build_report  # noqa: E402
from reports.inputs import ReportInputError  # noqa: E402

__all__ = ["build_report", "ReportInputError"]
