"""Reports: theory, Monte Carlo and real networks side by side (``python -m reports``).

``build_report(out, source=None, seed=0, quick=False)`` writes ``report.html`` (self-contained),
``report.md``, ``figures/`` and ``tables/`` under ``out``; see docs/results-format.md for the layout.
"""

from reports.build import build_report
from reports.inputs import ReportInputError

__all__ = ["build_report", "ReportInputError"]
