"""The public calls of ``empirical`` (see its docstring): each test on ``(model, images, targets)``.

Every call validates its arguments, explains ``targets`` (None: each image's top class), runs on the device
of ``model`` and leaves ``model`` as it was. The randomisation and faithfulness calls run the same kernels
(``empirical.experiments``) through the same chunked driver (``empirical.run``) as ``python -m empirical``
runs, on a chunk store in a temporary folder; pass ``out=FOLDER`` to keep the
chunks, so that an interrupted call resumes. Each chunk records the fingerprint of the image values, the
targets (the explained classes, also when found from the model), the network's weights and buffers, the
method and every setting of the call (``empirical.storage.fingerprints``); it is reused only by a call
of the same fingerprint, so a changed input is recomputed, never reused, and the table holds only this
call's chunks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from empirical.attribution import (
    LRP_METHODS,
    attribute,
    conservation_ratios,
    promises_conservation,
)
from empirical.attribution.composites import DEFAULT_EPSILON
from empirical.attribution.relevance_budget import relevance_budget as _relevance_budget
from empirical.experiments._common import explain as _explain_with
from empirical.experiments._common import explained_classes, resolve_methods
from empirical.models import NETWORKS, NetworkSpec, load_model, network_spec

__all__ = ["activation_statistics", "conservation", "efficient_mprt", "explain", "faithfulness", "load",
           "mprt", "noise_injection", "preprocessing", "relevance_budget", "smooth_mprt"]


def load(network, weights=None, *, device="cpu", rng=None) -> nn.Module:
    """A network ready for the audit, in eval mode on ``device``.

    ``network``: a built-in name (``empirical.models.MODEL_NAMES``; ``weights`` as ``load_model`` takes
    them: a path, ``"random"``, or None for the packaged or cached file) or any ``nn.Module`` (returned in
    eval mode, moved to ``device``; ``weights``, if given, a path to its state dict).
    """
    if isinstance(network, str):
        return load_model(network, weights, device=device, rng=rng)
    if not isinstance(network, nn.Module):
        raise ValueError(f"network must be a built-in name or a torch.nn.Module, got "
                         f"{type(network).__name__}")
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        network.load_state_dict(state.get("state_dict", state) if isinstance(state, Mapping) else state)
    return network.eval().to(device)


def preprocessing(network):
    """The torchvision transform (PIL image -> network input) of a built-in network name or model."""
    if isinstance(network, str):
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; known: {', '.join(NETWORKS)}")
        spec = NETWORKS[network]
    else:
        spec = network_spec(network)
    if spec.preprocessing is None:
        raise ValueError(f"network {spec.name!r} has no known preprocessing: pass your own transform")
    return spec.preprocessing.transform()


def _images(images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, C, H, W), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if len(images) == 0:
        raise ValueError("images must hold at least one image, got 0")
    return images


def _targets(model, images, targets) -> torch.Tensor:
    if targets is None:
        return explained_classes(model, images, None)
    if isinstance(targets, int) and not isinstance(targets, bool):
        return torch.full((len(images),), targets, dtype=torch.long, device=images.device)
    targets = torch.as_tensor(targets, device=images.device)
    if targets.shape != (len(images),) or targets.is_floating_point():
        raise ValueError(f"targets must be None, an int or integer class indices of shape ({len(images)},), "
                         f"got {targets.dtype} {tuple(targets.shape)}")
    return targets.long()


def _device(model: nn.Module):
    parameter = next(model.parameters(), None)
    return "cpu" if parameter is None else str(parameter.device)


def _methods(methods):
    if isinstance(methods, str):
        return [methods]
    if not methods:
        raise ValueError(f"methods must name at least one method, got {methods!r}")
    return methods if isinstance(methods, Mapping) else list(methods)


def _model_name(model, spec: NetworkSpec | None) -> str:
    return (spec or network_spec(model)).name


@contextmanager
def _store(out, experiment: str):
    from empirical.storage.chunks import ChunkStore

    if out is not None:
        yield ChunkStore(Path(out), experiment)
        return
    with tempfile.TemporaryDirectory(prefix="sanity-audit-") as folder:
        yield ChunkStore(Path(folder), experiment)


def explain(model: nn.Module, images: torch.Tensor, targets=None, method: str = "gradient",
            **options) -> torch.Tensor:
    """Maps (N, H, W) of ``method`` (``empirical.attribution.available_methods()``) for ``targets``."""
    images = _images(images)
    return attribute(model, images, _targets(model, images, targets), method, **options)


def conservation(model: nn.Module, images: torch.Tensor, targets=None, *, methods=LRP_METHODS,
                 **options) -> pd.DataFrame:
    """How much of the explained logit each LRP map hands to the input (supplement eq. 52, section G): one
    row per method and image with ``logit``, ``sum_ratio`` = sum(R) / logit, ``abs_ratio`` = sum(|R|) /
    logit and ``promised`` (whether the rule promises sum_ratio = 1, ``promises_conservation``). A network
    LRP cannot canonise raises ``empirical.attribution.LRPNotSupportedError``."""
    images = _images(images)
    targets = _targets(model, images, targets)
    with torch.no_grad():
        logits = model(images).gather(1, targets[:, None])[:, 0]
    rows = []
    for method in _methods(methods):
        if method not in LRP_METHODS:
            raise ValueError(f"conservation is defined for LRP methods {LRP_METHODS}, got {method!r}")
        relevance = attribute(model, images, targets, method, **options)
        ratios = conservation_ratios(relevance, logits)
        absolute = relevance.abs().flatten(1).sum(1) / logits
        for image in range(len(images)):
            rows.append({"method": method, "image": image, "logit": float(logits[image]),
                         "sum_ratio": float(ratios[image]), "abs_ratio": float(absolute[image]),
                         "promised": promises_conservation(method, **options)})
    return pd.DataFrame(rows, columns=["method", "image", "logit", "sum_ratio", "abs_ratio", "promised"])


def relevance_budget(model: nn.Module, images: torch.Tensor, targets=None, *,
                     epsilon: float = DEFAULT_EPSILON) -> pd.DataFrame:
    """Where ``lrp-epsilon`` (Zennit's epsilon rule, bias in the denominator) puts the explained logit
    (supplement eq. 52, section G): one row per image with ``logit`` and the shares ``input`` (sum R),
    ``biases``, ``thresholds`` (DenseNet-121's units held at their threshold), ``absorbed`` (epsilon's
    terms), ``conserved`` = input + biases + thresholds and ``accounted`` = conserved + absorbed (1 unless
    relevance leaks)."""
    images = _images(images)
    return _relevance_budget(model, images, _targets(model, images, targets), epsilon=epsilon)


def _with_conservation(table: pd.DataFrame, model, images, targets, methods, attribution_options):
    """``table`` with a column ``conservation``: sum(R) / explained logit of each LRP method's map of each
    image on ``model`` as given (supplement eq. 52; 1 where relevance is conserved), NaN for other methods."""
    options = attribution_options or {}
    lrp = [m for m in table["method"].unique() if m in LRP_METHODS]
    ratios = {}
    if lrp:
        with torch.no_grad():
            logits = model(images).gather(1, targets[:, None])[:, 0]
        for method in lrp:
            relevance = attribute(model, images, targets, method, **options.get(method, {}))
            for image, ratio in enumerate(conservation_ratios(relevance, logits).tolist()):
                ratios[method, image] = ratio
    table = table.copy()
    table["conservation"] = [ratios.get(key, float("nan")) for key in zip(table["method"], table["image"],
                                                                          strict=True)]
    return table


def mprt(model: nn.Module, images: torch.Tensor, targets=None, *, methods, schedule: str = "per-layer",
         blocks: Sequence[str] | None = None, spec: NetworkSpec | None = None, seed: int = 0,
         batch_size: int = 16, attribution_options=None, progress: bool = False, out=None) -> pd.DataFrame:
    """Model-parameter randomisation (supplement A.1): the ``randomization.csv`` table (every step, measure
    and normalisation against the original maps, with noise floors) of ``methods``.

    ``schedule``: ``"per-layer"`` (any network; one parametrised module a step, output first) or
    ``"blocks"`` (the supplement's blocks: a built-in network's rule, or ``blocks``, module-name prefixes
    of any network). ``spec``: the network's ``NetworkSpec`` (default ``network_spec(model, blocks=...)``).
    Column ``conservation``: sum(R) / logit of the trained model's LRP map of each image (NaN for others).
    """
    from empirical.run.randomization import run_randomization

    images = _images(images)
    targets = _targets(model, images, targets)
    spec = spec or network_spec(model, blocks=blocks)
    with _store(out, "randomization") as store:
        table = run_randomization(model, images, targets, model_name=spec.name,
                                 store=store, methods=_methods(methods), batch_size=batch_size, seed=seed,
                                 device=_device(model), progress=progress, spec=spec, schedule=schedule,
                                 attribution_options=attribution_options)
    return _with_conservation(table, model, images, targets, methods, attribution_options)


def faithfulness(model: nn.Module, images: torch.Tensor, targets=None, *, methods, order: str = "morf",
                 patch_sizes=(8, 15), blur_kernel: int = 15, steps: int = 30, seed: int = 0,
                 batch_size: int = 16, score="softmax", attribution_options=None, progress: bool = False,
                 out=None, area: bool = False) -> pd.DataFrame:
    """Region perturbation with a blurred copy (supplement A.1; ``order="lerf"``: least relevant first):
    the ``faithfulness.csv`` table (score after each step), or with ``area=True`` its per-image areas
    (``faithfulness_area.csv``). Defaults: the paper's 15x15 blur, patches 8 and 15, 30 steps. Column
    ``conservation``: sum(R) / logit of each LRP map (supplement eq. 52), NaN for other methods."""
    from empirical.experiments.faithfulness import faithfulness_area
    from empirical.run.faithfulness import run_faithfulness

    images = _images(images)
    targets = _targets(model, images, targets)
    with _store(out, "faithfulness" if order == "morf" else "faithfulness_lerf") as store:
        table = run_faithfulness(model, images, targets,
                                 model_name=_model_name(model, None), store=store, methods=_methods(methods),
                                 batch_size=batch_size, seed=seed, device=_device(model), progress=progress,
                                 patch_sizes=patch_sizes, blur_kernel=blur_kernel, steps=steps, order=order,
                                 score=score, attribution_options=attribution_options)
    table = faithfulness_area(table) if area else table
    return _with_conservation(table, model, images, targets, methods, attribution_options)


def activation_statistics(model: nn.Module, images: torch.Tensor, *, batch_size: int = 16,
                          seed: int = 0, progress: bool = False, out=None) -> pd.DataFrame:
    """Per-level forward statistics (supplement I, J): quantiles, fraction of non-positive values, and K,
    gamma, P(Z >= K) of every (q_high, q_low); the ``activations.csv`` table."""
    from empirical.run.activations import run_activations

    images = _images(images)
    with _store(out, "activations") as store:
        return run_activations(model, images, None, model_name=_model_name(model, None), store=store,
                               batch_size=batch_size, seed=seed, device=_device(model), progress=progress)


def noise_injection(model: nn.Module, images: torch.Tensor, targets=None, *, methods,
                    levels=None, spec: NetworkSpec | None = None, blocks: Sequence[str] | None = None,
                    seed: int = 0, batch_size: int = 16, progress: bool = False, out=None,
                    **settings) -> pd.DataFrame:
    """What each test rewards: every test (MPRT measures, sMPRT, eMPRT, MoRF and LeRF faithfulness) on
    M + noise(s) for each method M and noise level s; the ``rewards.csv`` table, with the closed form of
    ``theory.noise_injection`` beside each MPRT score. MPRT runs to the end of the block schedule (a
    built-in network's, or ``blocks``). ``settings``: further options of the rewards experiment
    (``patch_size``, ``steps``, ``blur_kernel``, ``smprt_samples``...)."""
    from empirical.experiments.noisy import DEFAULT_LEVELS
    from empirical.run.rewards import run_rewards

    images = _images(images)
    spec = spec or network_spec(model, blocks=blocks)
    with _store(out, "rewards") as store:
        return run_rewards(model, images, _targets(model, images, targets), model_name=spec.name,
                           store=store, methods=_methods(methods), batch_size=batch_size, seed=seed,
                           device=_device(model), progress=progress,
                           levels=DEFAULT_LEVELS if levels is None else levels, spec=spec, **settings)


def _bound(method, seed):
    """``method`` as a function ``(model, x, target) -> maps``, its random draws keyed by ``seed``."""
    return lambda model, x, target: _explain_with(method, model, x, target, (seed, 0, 0))


def _method_callables(methods, attribution_options):
    return resolve_methods(_methods(methods), attribution_options)


def smooth_mprt(model: nn.Module, images: torch.Tensor, targets=None, *, methods,
                randomisation="bottom-up", samples: int = 50, noise_magnitude: float = 0.1,
                similarity: str = "spearman", seed: int = 0, rng=0, spec: NetworkSpec | None = None,
                attribution_options=None) -> pd.DataFrame:
    """sMPRT (Hedström et al. 2023, as Quantus 0.6.0 computes it; ``empirical.measures.mprt_variants``):
    one row per method, step and image with the similarity of the smoothed maps to the original model's,
    plus step ``0`` = ``"original"``: two independent smoothings of the original model. ``rng``: the
    smoothing noise's seed or ``torch.Generator``; ``seed``: the re-drawn weights'."""
    from empirical.measures import mprt_variants

    images = _images(images)
    targets = _targets(model, images, targets)
    rows = []
    for name, method in _method_callables(methods, attribution_options).items():
        result = mprt_variants.smooth_mprt(
            model, images, targets, _bound(method, seed),
            randomisation=randomisation, seed=seed, samples=samples, noise_magnitude=noise_magnitude,
            similarity=similarity, rng=rng, spec=spec)
        for step, (layer, scores) in enumerate([("original", result.original),
                                                *zip(result.layers, result.scores, strict=True)]):
            rows += [{"method": name, "step": step, "layers": layer, "image": k, "value": float(v)}
                     for k, v in enumerate(scores.tolist())]
    return pd.DataFrame(rows, columns=["method", "step", "layers", "image", "value"])


def efficient_mprt(model: nn.Module, images: torch.Tensor, targets=None, *, methods,
                   randomisation="bottom-up", bins: int = 100, seed: int = 0, spec: NetworkSpec | None = None,
                   attribution_options=None) -> pd.DataFrame:
    """eMPRT (Hedström et al. 2023, as Quantus 0.6.0 computes it): one row per method and image with the
    relative rise of the maps' histogram entropy from the original to the fully randomised model
    (``value``; higher passes) and both entropies."""
    from empirical.measures import mprt_variants

    images = _images(images)
    targets = _targets(model, images, targets)
    rows = []
    for name, method in _method_callables(methods, attribution_options).items():
        result = mprt_variants.efficient_mprt(
            model, images, targets, _bound(method, seed),
            randomisation=randomisation, seed=seed, bins=bins, spec=spec)
        for k in range(len(images)):
            rows.append({"method": name, "image": k, "value": float(result.score[k]),
                         "entropy_original": float(result.entropy_original[k]),
                         "entropy_randomised": float(result.entropy_randomised[k])})
    return pd.DataFrame(rows, columns=["method", "image", "value", "entropy_original", "entropy_randomised"])
