"""``empirical.results.lite_evidence``: its argument check (its tables: tests/reports/test_lite_section.py).
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "3"])
def test_lite_evidence_rejects_a_bad_count_naming_it(n):
    from empirical.results import lite_evidence

    with pytest.raises(ValueError, match="n must be"):
        lite_evidence(n)
