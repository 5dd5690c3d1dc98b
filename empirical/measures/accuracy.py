"""Top-1 and top-5 accuracy of a network over labelled images: whether the pretrained network the paper's
experiments explain is the network it should be (Binder et al., CVPR 2023, supplement A.1).

The zeros of ReLU outputs that section J counts are measured here too, per call of each ReLU6 module: a
ReLU6 instance that serves several steps (EfficientNet-Lite's expansion and depthwise step of a block, its
stem and head) gives one level per call.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["classify", "relu6_zero_fractions", "top_accuracies", "top_k_accuracy"]


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """The fraction of rows of ``logits`` (N, C) whose label is among their ``k`` highest classes."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or logits.shape[0] == 0:
        raise ValueError(f"logits must be (N, C) with N >= 1 and labels (N,), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    if k > logits.shape[1]:
        raise ValueError(f"k must be at most the {logits.shape[1]} classes, got {k}")
    top = logits.topk(k, dim=1).indices
    return float((top == labels.view(-1, 1).to(top.device)).any(1).float().mean())


def classify(model: nn.Module, images: torch.Tensor, *, batch_size: int = 16) -> torch.Tensor:
    """Logits (N, C) of ``model`` (in eval mode) over ``images``, in batches of ``batch_size``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if model.training:
        raise ValueError("model is in training mode: call model.eval() first (batch-norm statistics change)")
    with torch.no_grad():
        return torch.cat([model(images[k:k + batch_size]) for k in range(0, len(images), batch_size)])


def top_accuracies(model: nn.Module, stream, batch_size: int, device="cpu", *, only=None) -> dict:
    """``{"top1", "top5", "images"}`` of ``model`` over a labelled image stream
    (``empirical.storage.streaming``), batch by batch on ``device`` (top-5 is None for fewer than 5
    classes). ``only``: a boolean mask (N,) of the images to count (those with a true label, where the
    others are labelled by the network itself); the accuracies are None when it selects none."""
    if stream.labels is None:
        raise ValueError("stream must carry labels to measure accuracy, got an unlabelled stream")
    logits = []
    with torch.no_grad():
        for batch in stream.batches(batch_size, device=device):
            logits.append(model(batch.images).float().cpu())
    logits = torch.cat(logits)
    labels = stream.labels.cpu()
    if only is not None:
        only = torch.as_tensor(only, dtype=torch.bool)
        if only.shape != labels.shape:
            raise ValueError(f"only must be a mask of shape {tuple(labels.shape)}, got {tuple(only.shape)}")
        logits, labels = logits[only], labels[only]
        if not len(labels):
            return {"top1": None, "top5": None, "images": 0}
    top5 = top_k_accuracy(logits, labels, 5) if logits.shape[1] >= 5 else None
    return {"top1": top_k_accuracy(logits, labels, 1), "top5": top5, "images": int(len(labels))}


def relu6_zero_fractions(model: nn.Module, images: torch.Tensor, *, batch_size: int = 8) -> list[dict]:
    """For every call of every ReLU6 module during the forward pass over ``images``, in call order: the
    module's name, the call's number (``call`` 0, 1, ... per module), the fraction of outputs that are
    exactly 0 (section J's sparsity) and the fraction clipped at 6. Rows: ``level``, ``module``, ``call``,
    ``step`` (Lite: stem, expand, depthwise, head), ``zero_fraction``, ``six_fraction``, ``values``."""
    if model.training:
        raise ValueError("model is in training mode: call model.eval() first (batch-norm statistics change)")
    modules = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.ReLU6)]
    if not modules:
        raise ValueError(f"model of type {type(model).__name__} has no nn.ReLU6 module")
    totals: dict[int, list] = {}
    calls: list[int] = []

    def hook(module, _inputs, output, name):
        calls.append(0)
        level = len(calls) - 1
        row = totals.setdefault(level, [name, 0, 0.0, 0.0, 0])
        row[2] += float((output == 0).sum())
        row[3] += float((output == 6).sum())
        row[4] += output.numel()

    handles = [module.register_forward_hook(lambda m, i, o, name=name: hook(m, i, o, name))
               for name, module in modules]
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                calls.clear()
                model(images[start:start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
    per_module: dict[str, int] = {}
    for name, *_ in totals.values():
        per_module[name] = per_module.get(name, 0) + 1
    rows, seen = [], {}
    for level in sorted(totals):
        name, _, zeros, sixes, count = totals[level]
        call = seen[name] = seen.get(name, -1) + 1
        rows.append({"level": level, "module": name or "<root>", "call": call,
                     "step": _step(name, call, per_module[name]), "zero_fraction": zeros / count,
                     "six_fraction": sixes / count, "values": count})
    return rows


def _step(name: str, call: int, calls: int) -> str:
    """EfficientNet-Lite's name for a ReLU6 call: stem/head (the root's), expand/depthwise (a block's)."""
    if name == "_swish" and calls == 2:
        return ("stem", "head")[call]
    if name.startswith("_blocks.") and name.endswith("._swish") and calls in (1, 2):
        return ("expand", "depthwise")[call + 2 - calls]
    return f"call {call}"
