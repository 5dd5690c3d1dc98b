"""The explained label of the multi-label experiments and its score (seed A.3)."""

from __future__ import annotations

import pytest
import torch

from empirical.multilabel.targets import SCORE_FUNCTIONS, sigmoid_score, softmax_score, top_predicted_labels


class FixedLogits(torch.nn.Module):
    """A 'network' returning given logits for images 0..N-1 (the first pixel holds the image index)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits[x[:, 0, 0, 0].long()]


def test_the_highest_predicted_label_is_explained_not_a_ground_truth_label():
    logits = [[0.1, 2.0, -1.0], [3.0, 3.0, 0.0], [-5.0, -4.0, -4.5]]
    images = torch.arange(3.0)[:, None, None, None].expand(3, 3, 4, 4)
    ground_truth = torch.tensor([0, 2, 0])  # e.g. the first positive label: deliberately not the prediction
    explained = top_predicted_labels(FixedLogits(logits), images, batch_size=2)
    assert explained.tolist() == [1, 0, 1]  # ties go to the lowest index; all-negative logits still rank
    assert not torch.equal(explained, ground_truth)


def test_sigmoid_score_is_the_labels_own_probability_softmax_couples_the_labels():
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 1.0, 1.0]])
    targets = torch.tensor([1, 2])
    expected = [1 / (1 + torch.e ** -2), 1 / (1 + torch.e ** -1)]
    assert sigmoid_score(logits, targets).tolist() == pytest.approx(expected)
    assert softmax_score(logits, targets).tolist() == pytest.approx(
        [logits[0].softmax(0)[1].item(), 1 / 3])
    # raising another label's logit leaves the sigmoid score alone and lowers the softmax score
    raised = logits.clone()
    raised[:, 0] += 5
    assert torch.equal(sigmoid_score(raised, targets), sigmoid_score(logits, targets))
    assert (softmax_score(raised, targets) < softmax_score(logits, targets)).all()
    assert SCORE_FUNCTIONS == {"softmax": softmax_score, "sigmoid": sigmoid_score}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sigmoid_score(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long)), "targets must be integer"),
    (lambda: sigmoid_score(torch.zeros(2, 3), torch.zeros(2)), "targets must be integer class indices"),
    (lambda: softmax_score(torch.zeros(3), torch.zeros(3, dtype=torch.long)), "logits must have shape"),
    (lambda: top_predicted_labels(FixedLogits([[0.0]]), torch.zeros(3, 4)), "images must have shape"),
    (lambda: top_predicted_labels(FixedLogits([[0.0]]), torch.zeros(1, 3, 2, 2), batch_size=0), "batch_size"),
])
def test_bad_arguments_name_themselves(call, message):
    with pytest.raises(ValueError, match=message):
        call()
