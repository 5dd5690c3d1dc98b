"""The EfficientNet-Lite0 section of the report (supplement A.1, eq. 52, section J): ``lite_markdown`` renders
the tables of ``empirical.results.lite_evidence`` under the heading "EfficientNet-Lite0, pretrained, N
photographs"."""

from __future__ import annotations

import pandas as pd

from empirical.results import lite_evidence  # noqa: F401 (the tables this section renders)

__all__ = ["lite_evidence", "lite_markdown"]


def lite_markdown(tables: dict[str, pd.DataFrame]) -> str:
    """The Lite0 section as Markdown, from the tables of ``lite_evidence``."""
    count = int(tables["accuracy"]["photographs"].iloc[0])
    parts = [f"## EfficientNet-Lite0, pretrained, {count} photographs", "",
             "Top-1 and top-5 count only the photographs with a true ImageNet class; the others are "
             "explained for the network's own top-1 class.", "",
             _markdown_table(tables["accuracy"], 3), "",
             "Conservation (eq. 52): medians over the photographs, over the explained logit, of the input "
             "relevance, the biases' share (the epsilon rule with the bias in the denominator hands them "
             "one) and what each rule conserves.", "", _markdown_table(tables["conservation"], 4), "",
             "Section J at each ReLU6 call (one module serves a block's expansion and depthwise step, one "
             "the stem and the head).", "", _markdown_table(tables["relu6_zeros"], 3), ""]
    return "\n".join(parts)


def _markdown_table(table: pd.DataFrame, digits: int) -> str:
    def cell(value) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
