"""The docs' figure of the two adaptive-beta definitions: the per-image computation on the demo
network, and the definitions' identity when no layer has a bias (then P + N = z, so -N/(P+N) = -N/z)."""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmarks.beta_from_agreement import AGREEMENT_FIELDS, agreement_rows, draw, measure, write_csv


def test_demo_network_gives_one_finite_row_per_image_with_pearson_in_range(tmp_path):
    rows = measure((("demo", 32),), images=2, seed=0)
    assert [row["image"] for row in rows] == [0, 1]
    assert all(row["network"] == "demo" for row in rows)
    assert all(math.isfinite(row[column]) for row in rows for column in AGREEMENT_FIELDS[2:])
    assert all(-1.0 <= row["pearson"] <= 1.0 for row in rows)
    write_csv(rows, tmp_path / "agreement.csv")
    draw(rows, tmp_path / "agreement.png")
    assert (tmp_path / "agreement.csv").read_text().splitlines()[0] == ",".join(AGREEMENT_FIELDS)
    assert (tmp_path / "agreement.png").stat().st_size > 0


def test_without_biases_both_betas_give_the_same_map():
    gen = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.ReLU(),
                          nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5, bias=False)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=gen))
    rows = agreement_rows(model, torch.randn(2, 3, 8, 8, generator=gen), "no-bias")
    for row in rows:
        assert row["pearson"] > 1 - 1e-5
        assert math.isclose(row["sum_ratio_inputs"], row["sum_ratio_output"], rel_tol=1e-5)


def test_images_beyond_a_batch_are_drawn_batch_by_batch_after_an_estimate_line(capsys):
    """Oracle: the first batch is what a run of BATCH images computes (same generator order), later batches
    number their images on, and the estimate line comes before the bar, on stderr."""
    from benchmarks.beta_from_agreement import BATCH

    rows = measure((("demo", 32),), images=BATCH + 2, seed=1, progress=True)
    assert [row["image"] for row in rows] == list(range(BATCH + 2))
    first_batch = measure((("demo", 32),), images=BATCH, seed=1)
    assert rows[:BATCH] == first_batch
    err = capsys.readouterr().err
    assert "beta_from_agreement: estimated time" in err and "rerun resumes" not in err
    assert err.index("estimated time") < err.index("100%")  # the line, then the bar
