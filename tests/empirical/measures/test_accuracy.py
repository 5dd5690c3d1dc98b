"""Top-k accuracy against scikit-learn's top_k_accuracy_score, and the ReLU6 zero fractions per call
against a hand-written forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import top_k_accuracy_score
from torch import nn

from empirical.measures.accuracy import classify, relu6_zero_fractions, top_k_accuracy


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k_accuracy_matches_sklearn_top_k_accuracy_score(k):
    gen = torch.Generator().manual_seed(k)
    logits = torch.randn(40, 7, generator=gen)
    labels = torch.randint(0, 7, (40,), generator=gen)
    expected = top_k_accuracy_score(labels.numpy(), logits.numpy(), k=k, labels=np.arange(7))
    assert top_k_accuracy(logits, labels, k) == pytest.approx(expected)


@pytest.mark.parametrize("k", [0, 8, True, 1.5])
def test_top_k_accuracy_rejects_bad_k_naming_it(k):
    with pytest.raises(ValueError, match="k must be"):
        top_k_accuracy(torch.zeros(3, 7), torch.zeros(3, dtype=torch.long), k)


class _SharedReLU6(nn.Module):
    """One ReLU6 instance called twice, as in an EfficientNet-Lite block (expansion, depthwise)."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self._swish = nn.ReLU6()

    def forward(self, x):
        return self._swish(self.second(self._swish(self.first(x) * 5))).mean((2, 3))


def test_relu6_zero_fractions_count_each_call_of_a_shared_module_as_its_own_level():
    gen = torch.Generator().manual_seed(0)
    model = _SharedReLU6().eval()
    x = torch.randn(5, 3, 6, 6, generator=gen)
    rows = relu6_zero_fractions(model, x, batch_size=2)
    with torch.no_grad():
        a = torch.clamp(model.first(x) * 5, 0, 6)
        b = torch.clamp(model.second(a), 0, 6)
    assert [(r["module"], r["call"]) for r in rows] == [("_swish", 0), ("_swish", 1)]
    for row, values in zip(rows, (a, b), strict=True):
        assert row["zero_fraction"] == pytest.approx(float((values == 0).float().mean()))
        assert row["six_fraction"] == pytest.approx(float((values == 6).float().mean()))
        assert row["values"] == values.numel()
    assert rows[0]["six_fraction"] > 0


def test_classify_refuses_a_network_in_training_mode():
    with pytest.raises(ValueError, match="training mode"):
        classify(nn.Linear(2, 2).train(), torch.zeros(1, 2))
