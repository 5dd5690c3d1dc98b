"""Model-randomisation sanity checks and faithfulness tests on real networks, yours included.

Binder et al., "Shortcomings of Top-Down Randomization-Based Sanity Checks for Evaluations of Deep Neural
Network Explanations", CVPR 2023, and its supplement: every call below takes ``(model, images, targets)``
(any ``torch.nn.Module`` in eval mode; images (N, C, H, W) as the network takes them; targets the class
indices to explain, None for each image's top class) and returns a pandas table, the same table a run of
``python -m empirical`` writes.

Networks
    ``load(name_or_module, weights)``: a built-in network (``resnet50``, ``densenet121``,
    ``efficientnet-b0``, ``demo``) with its weights, or your module, in eval mode; ``preprocessing(...)``
    its transform. ``network_spec(model, classifier=..., blocks=[...])`` records the few facts the block
    schedule and LRP need about your network (all optional).
Attribution
    ``explain(model, images, targets, method)`` gives (N, H, W) maps; ``available_methods()`` lists the
    methods (gradient, gradient x input, integrated gradients, guided backprop, LRP rules of supplement
    eq. 1-2 and 52, a random control). ``register_method(name, function)`` adds yours: a function
    ``(model, x, target)`` returning (N, C, H, W) or (N, H, W), checked at every call (wrap Captum's or
    pytorch-grad-cam's attributions this way). LRP canonises any network it can read with ``torch.fx``
    (batch-norms merged into the layer before them) and refuses, with ``LRPNotSupportedError`` naming the
    module types, a network it has no rule for; a conserving rule whose maps do not sum to the logit
    (median outside [0.9, 1.1]) warns. ``conservation(...)`` tabulates sum(R) / logit per image;
    ``relevance_budget(...)`` splits lrp-epsilon's logit into input, biases and epsilon's share.
Tests
    ``mprt`` (supplement A.1; ``schedule="per-layer"`` on any network, ``"blocks"`` on the built-in
    networks or with ``blocks=``), ``smooth_mprt`` and ``efficient_mprt`` (sMPRT and eMPRT of Hedström et
    al. 2023, as Quantus 0.6.0 computes them), ``faithfulness`` (region perturbation with a blurred copy,
    ``order="morf"`` or ``"lerf"``), ``activation_statistics`` (supplement I, J), ``noise_injection``
    (what each test rewards: every test on the maps plus noise of level s).

Kept results
    ``mprt``, ``faithfulness``, ``activation_statistics`` and ``noise_injection`` take ``out=FOLDER`` to
    keep their finished chunks there: a call interrupted midway resumes from them. Each chunk records a
    fingerprint (sha256) of what it was computed from: the images' values, the targets, every weight and
    buffer of the network, the method (its options, or the code of your function) and the settings; a later
    call reuses a chunk only under the same fingerprint and computes any other again, so one changed pixel
    or weight never returns an old table.

Example::

    import torch, torchvision, empirical
    model = torchvision.models.vgg11_bn().eval()
    images = torch.randn(4, 3, 64, 64)
    mprt = empirical.mprt(model, images, methods=["gradient", "lrp-alpha1beta0"])
    faith = empirical.faithfulness(model, images, methods=["gradient"], patch_sizes=[8], area=True)
"""

# python -m empirical: thread counts from the CPUs this process may use, passive OpenMP waiting (before torch)
from empirical.storage.threads import configure_threads_for_command  # noqa: E402, I001

configure_threads_for_command()

from empirical.api import (  # noqa: E402
    activation_statistics,
    conservation,
    efficient_mprt,
    explain,
    faithfulness,
    load,
    mprt,
    noise_injection,
    preprocessing,
    relevance_budget,
    smooth_mprt,
)
from empirical.attribution import LRPNotSupportedError, available_methods, register_method  # noqa: E402
from empirical.models import NetworkSpec, network_spec  # noqa: E402

__all__ = ["LRPNotSupportedError", "NetworkSpec", "activation_statistics", "available_methods",
           "conservation", "efficient_mprt", "explain", "faithfulness", "load", "mprt", "network_spec",
           "noise_injection", "preprocessing", "register_method", "relevance_budget", "smooth_mprt"]
