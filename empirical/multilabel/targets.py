"""Which label a multi-label experiment explains, and the score it tracks (seed section A.3).

"In contrast to ImageNet, where the unique ground truth label was used to obtain explanations, we chose for
MSCOCO to explain the highest predicted label." The fine-tuned network scores each label independently with a
sigmoid (it was trained with binary cross-entropy), so the faithfulness curves follow the sigmoid of the
explained label in place of the ImageNet softmax; a softmax over independent labels would couple them.

The highest predicted label is the arg-max of the logits (the sigmoid is increasing, so it is also the arg-max
of the sigmoid scores); ties go to the lowest class index (``torch.argmax`` returns the first maximum).
"""

from __future__ import annotations

import torch

__all__ = [
    "SCORE_FUNCTIONS",
    "sigmoid_score",
    "softmax_score",
    "top_predicted_labels",
]


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, classes), got {tuple(logits.shape)}")
    if targets.shape != (logits.shape[0],) or targets.is_floating_point():
        raise ValueError(f"targets must be integer class indices of shape ({logits.shape[0]},), got "
                         f"{targets.dtype} {tuple(targets.shape)}")


def sigmoid_score(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sigmoid(logit of class ``targets[i]``) of each row of ``logits`` (N, classes); returns (N,) float32.

    The multi-label score (seed A.3): each label's own probability, independent of the other labels.
    """
    _check(logits, targets)
    return logits.float().gather(1, targets.to(logits.device)[:, None])[:, 0].sigmoid()


def softmax_score(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """softmax(logits)[i, targets[i]] of each row (the ImageNet score of seed A.1); returns (N,) float32."""
    _check(logits, targets)
    return logits.float().softmax(dim=1).gather(1, targets.to(logits.device)[:, None])[:, 0]


#: the score of each kind of classifier: single-label (ImageNet, demo digits) and multi-label (COCO, VOC)
SCORE_FUNCTIONS = {"softmax": softmax_score, "sigmoid": sigmoid_score}


def top_predicted_labels(model: torch.nn.Module, images: torch.Tensor, *,
                         batch_size: int = 64) -> torch.Tensor:
    """The label each image is explained for in the multi-label experiments: the model's highest predicted
    label (not a ground-truth label), ties to the lowest index. ``images`` (N, C, H, W) on the model's device;
    returns int64 (N,) on that device. The model's mode (train/eval) is left as it is.
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    with torch.no_grad():  # not inference_mode: the labels feed into gradient computations
        return torch.cat([model(batch).argmax(dim=1) for batch in images.split(batch_size)])
