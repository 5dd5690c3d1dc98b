"""The EfficientNet-Lite0 section: its tables from the pretrained network on the embedded photographs."""

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


def test_lite_evidence_rejects_a_bad_count_naming_it():
    from reports.lite import lite_evidence

    with pytest.raises(ValueError, match="n must be"):
        lite_evidence(0)
