"""The EfficientNet-Lite0 section: its tables from the pretrained network on the embedded photographs
(``empirical.results.lite_evidence``, its argument checks in tests/empirical/run/test_lite_evidence.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.mark.slow
def test_lite_section_holds_conservation_zeros_and_accuracy():
    from reports.lite import lite_evidence, lite_markdown

    tables = lite_evidence(3)
    conserving = tables["conservation"][tables["conservation"]["promises conservation"]]
    assert conserving["median sum R / logit"].between(0.95, 1.05).all()
    zeros = tables["relu6_zeros"]
    assert len(zeros) == 33 and set(zeros["step"]) == {"stem", "expand", "depthwise", "head"}
    assert zeros["zero_fraction"].between(0, 1).all()
    text = lite_markdown(tables)
    assert text.startswith("## EfficientNet-Lite0, pretrained, 3 photographs")
