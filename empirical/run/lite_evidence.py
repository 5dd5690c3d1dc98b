"""The EfficientNet-Lite0 evidence, computed on the spot from the pretrained network and the embedded
photographs (Binder et al., CVPR 2023; supplement A.1 for the network and its preprocessing, eq. 52 for
conservation, section J for the zeros of ReLU outputs).

``lite_evidence(n)`` gives three tables: top-1/top-5 over the photographs with a true ImageNet class, the
median sum of input relevance over the explained logit per LRP rule (with the biases' share for the
epsilon rule, which conserves over input and biases together), and the fraction of exact zeros (and
of values clipped at 6) at each call of each ReLU6 — section J counts ReLU outputs, and Lite0's block
outputs carry no activation. Lite0 has ReLU6 where B0 has swish: its zeros are exact, where swish outputs
are never exactly 0, so the sparsity of section J is measured here on the activation itself.
"""

from __future__ import annotations

import pandas as pd
import torch

from empirical.attribution.conservation import relevance_ratios
from empirical.attribution.relevance_budget import relevance_budget
from empirical.measures.accuracy import classify, relu6_zero_fractions, top_k_accuracy
from empirical.models import NETWORKS, load_model
from empirical.run.photographs import embedded_photographs, labelled_by

__all__ = ["LITE_CONSERVATION_METHODS", "lite_evidence"]

#: (label, method, options, what the rule conserves the explained logit over: "input", "input and
#: biases" for the epsilon rule with the bias in the denominator, None for no promise)
LITE_CONSERVATION_METHODS = (
    ("lrp-epsilon (epsilon 1e-3, bias in the denominator)", "lrp-epsilon", {"epsilon": 1e-3},
     "input and biases"),
    ("epsilon-plus-flat", "epsilon-plus-flat", {}, "input"),
    ("lrp-alpha1beta0", "lrp-alpha1beta0", {}, "input"),
    ("lrp-adaptive-beta (eq. 2, inputs)", "lrp-adaptive-beta", {"beta_from": "inputs"}, "input"),
    ("lrp-adaptive-beta (authors' -N/z)", "lrp-adaptive-beta", {"beta_from": "output"}, "input"),
    ("lrp-alpha2beta1", "lrp-alpha2beta1", {}, "input"),
    ("epsilon-gamma-box", "epsilon-gamma-box", {}, "input"),
)


def lite_evidence(n: int | None = None) -> dict[str, pd.DataFrame]:
    """Tables ``accuracy``, ``conservation`` and ``relu6_zeros`` of the pretrained Lite0 over the first
    ``n`` embedded photographs (None: all of them)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    model = load_model("efficientnet-lite0")
    preprocessing = NETWORKS["efficientnet-lite0"].preprocessing
    image_set, sources = labelled_by(model, embedded_photographs(), preprocessing)
    images, labels, sources = image_set.images[:n], image_set.labels[:n], sources[:n]
    known = torch.tensor([source == "true" for source in sources])
    logits = classify(model, images)
    accuracy = pd.DataFrame([{
        "photographs": len(images), "with a true class": int(known.sum()),
        "top1": top_k_accuracy(logits[known], labels[known], 1) if known.any() else float("nan"),
        "top5": top_k_accuracy(logits[known], labels[known], 5) if known.any() else float("nan")}])
    rows = []
    for label, method, options, conserved_over in LITE_CONSERVATION_METHODS:
        if method == "lrp-epsilon":  # its budget's input share is the map's sum R / logit
            budget = relevance_budget(model, images, epsilon=options["epsilon"])
            ratios = torch.from_numpy(budget["input"].to_numpy())
            biases, conserved = float(budget["biases"].median()), float(budget["conserved"].median())
        else:  # the bias-free rules hand the biases nothing
            ratios = relevance_ratios(model, images, method, **options)["sum"]
            biases, conserved = 0.0, ratios.median().item()
        rows.append({"rule": label, "promises conservation": conserved_over is not None,
                     "conserved over": conserved_over or "", "median sum R / logit": ratios.median().item(),
                     "min": ratios.min().item(), "max": ratios.max().item(), "median biases / logit": biases,
                     "median conserved / logit": conserved if conserved_over else float("nan")})
    zeros = pd.DataFrame(relu6_zero_fractions(model, images)).drop(columns=["values"])
    return {"accuracy": accuracy, "conservation": pd.DataFrame(rows), "relu6_zeros": zeros}
