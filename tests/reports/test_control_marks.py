"""The figures say whose convention "passing" is and mark every panel where the random-uniform control is what
the test counts best.

Oracle: hand-made tables in which the control is, or is not, best by the test's own direction (lower SSIM,
Spearman and area pass; higher MSE passes), and the text drawn on each saved figure's axes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from reports import figures, stats


def _randomization(last: dict[str, float], measure: str) -> pd.DataFrame:
    rows = [dict(model="m", method=method, step=step, layers=f"l{step}", image=image, measure=measure,
                 normalization="max-abs", value=(1.0 if step == 1 else value) + 0.01 * image, noise_floor=0.0)
            for method, value in last.items() for step in (1, 2) for image in range(3)]
    return pd.DataFrame(rows)


def _marks(monkeypatch) -> list[str]:
    """The texts figures draw on its axes, collected before each figure is closed."""
    drawn, close = [], plt.close

    def collect(figure=None):
        if figure is not None and not isinstance(figure, str):
            drawn.extend(text.get_text() for axis in figure.axes for text in axis.texts)
        close(figure)

    monkeypatch.setattr(figures.plt, "close", collect)
    return drawn


@pytest.mark.parametrize(("measure", "last", "marked"), [
    ("ssim", {"random-uniform": 0.01, "gradient": 0.2, "lrp-epsilon": 0.3}, True),  # lowest SSIM passes
    ("ssim", {"random-uniform": 0.5, "gradient": 0.2, "lrp-epsilon": 0.3}, False),
    ("mse", {"random-uniform": 0.5, "gradient": 1.9, "lrp-epsilon": 1.2}, False),  # highest MSE passes
    ("mse", {"random-uniform": 2.0, "gradient": 1.9, "lrp-epsilon": 1.2}, True),
    ("spearman", {"gradient": 0.0, "lrp-epsilon": 0.3}, False),  # no control in the run
], ids=["ssim-control-lowest", "ssim-control-highest", "mse-control-lowest", "mse-control-highest",
        "no-control"])
def test_randomization_panel_is_marked_where_the_control_passes_best(tmp_path, monkeypatch, measure, last,
                                                                     marked):
    drawn = _marks(monkeypatch)
    figures.randomization(_randomization(last, measure), measure, "max-abs", tmp_path / "r.png")
    assert (figures._CONTROL_MARK in drawn) is marked


@pytest.mark.parametrize(("control_area", "marked"), [(0.1, True), (0.3, True), (0.6, False)],
                         ids=["control-lowest", "control-tied-lowest", "control-not-lowest"])
def test_area_panel_is_marked_where_the_control_has_the_lowest_area(tmp_path, monkeypatch, control_area,
                                                                    marked):
    means = {"random-uniform": control_area, "gradient": 0.5, "lrp-epsilon": 0.3}
    area = pd.DataFrame([dict(model="m", patch_size=8, method=method, image=image, area=mean + 0.01 * image)
                         for method, mean in means.items() for image in range(3)])
    drawn = _marks(monkeypatch)
    figures.faithfulness_area(stats.rank_methods(area), tmp_path / "a.png")
    assert (figures._CONTROL_MARK in drawn) is marked


def test_captions_name_the_tests_convention_not_a_verdict_of_ours():
    for label, direction in figures.MEASURE_LABELS.values():
        assert direction.startswith("the check counts ") and direction.endswith(" as passing"), label
        assert "better" not in label + direction
