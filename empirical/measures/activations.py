"""Forward-pass activation statistics per level (seed sections I and J).

A *level* is the input of one convolution or linear layer, numbered in the order the forward pass
reaches them. For every image the input of each level is pooled over channels and space; its 18
quantiles ``theory.QUANTILE_LEVELS`` (numpy's default linear interpolation) and its fraction of
non-positive values are averaged over images, and K, gamma and P(Z >= K) follow from
``theory.overtake_from_quantiles`` for every (q_high, q_low) of ``theory.HIGH_QUANTILES`` x
``theory.LOW_QUANTILES``.

Data sets are streamed: :class:`ActivationStatistics` keeps only per-level running sums, so
``stats.update(batch)`` may be called for any number of batches before ``stats.table()``.
Hooks live only for the duration of one forward pass and are removed even if it fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from torch import nn

import theory
from empirical._checks import nonfinite_rows
from empirical.rng import torch_generator
from empirical.storage.tables import ACTIVATION_COLUMNS

__all__ = [
    "LAYER_TYPES",
    "ActivationStatistics",
    "activation_samples",
    "activation_statistics",
]

LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _quantile_levels() -> np.ndarray:
    return np.asarray(theory.QUANTILE_LEVELS, dtype=np.float64)


def _captured_inputs(model: nn.Module, x: torch.Tensor, layer_types) -> list[tuple[str, torch.Tensor]]:
    """(module name, input) of every matching layer, in the order the forward pass calls them."""
    captured: list[tuple[str, torch.Tensor]] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, layer_types):

            def hook(_module, inputs, name=name):
                captured.append((name, inputs[0].detach()))

            handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    if not captured:
        raise ValueError(f"model has no layer of the types {[t.__name__ for t in layer_types]}")
    return captured


def pooled_quantiles(values: torch.Tensor, levels) -> torch.Tensor:
    """Quantiles of each row of a (B, n) tensor, numpy's "linear" rule, as float64 (B, len(levels)).

    Works for any n on the tensor's device (``torch.quantile`` stops at 2**24), by one sort of each row:
    on a CPU numpy's vectorised sort, which takes a half to a third of the time of ``numpy.partition`` at
    the 36 order statistics needed (numpy selects them one after another)."""
    return _quantiles_of_sorted(_sorted_rows(values), levels)


def _sorted_rows(values: torch.Tensor) -> torch.Tensor:
    """Each row of (B, n) ``values`` in ascending order (NaN last), on the tensor's device."""
    if values.device.type == "cpu":
        return torch.from_numpy(np.sort(values.detach().numpy(), axis=1))
    return torch.sort(values, dim=1).values


def _quantiles_of_sorted(ordered: torch.Tensor, levels) -> torch.Tensor:
    n = ordered.shape[1]
    position = np.asarray(levels, dtype=np.float64) * (n - 1)
    below = np.minimum(np.floor(position).astype(np.int64), n - 1)
    above = np.minimum(below + 1, n - 1)
    fraction = torch.as_tensor(position - below, device=ordered.device)
    low = ordered[:, below].to(torch.float64)
    high = ordered[:, above].to(torch.float64)
    return low + fraction * (high - low)


def _level_sums(captured_input: tuple[str, torch.Tensor]) -> tuple[np.ndarray, float]:
    """(sum over images of the 18 quantiles, sum over images of the non-positive fraction) of one level.

    One sort per image serves all three: the quantiles, the non-finite check (a NaN or an infinity sorts
    to an end of its row) and the count of values <= 0 (a binary search)."""
    name, inputs = captured_input
    ordered = _sorted_rows(inputs.reshape(inputs.shape[0], -1))
    if not bool(torch.isfinite(ordered[:, [0, -1]]).all()):  # finite images, but the network overflowed
        raise ValueError(f"the input of layer {name!r} has NaN or infinite values for this batch "
                         "(the network overflows on x); nothing of it was added")
    quantiles = _quantiles_of_sorted(ordered, _quantile_levels()).sum(0).cpu().numpy()
    zero = torch.zeros((ordered.shape[0], 1), dtype=ordered.dtype, device=ordered.device)
    nonpositive = torch.searchsorted(ordered, zero, right=True).to(torch.float64) / ordered.shape[1]
    return quantiles, float(nonpositive.sum())


class ActivationStatistics:
    """Running per-level activation statistics of one model over any number of batches.

    ``update(x)`` runs one forward pass (no gradients) and adds each image's quantiles and
    non-positive fraction; ``table()`` returns the tidy table of ``activations.csv`` (seed sections
    I, J) averaged over all images seen so far. The model runs as given: put it in eval mode first, or
    batch-norm layers update their running statistics."""

    def __init__(self, model: nn.Module, *, layer_types=LAYER_TYPES):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.layer_types = tuple(layer_types)
        self.layers: list[str] | None = None
        self.images = 0
        self._quantile_sums: np.ndarray | None = None  # (levels, 18)
        self._nonpositive_sums: np.ndarray | None = None  # (levels,)

    def update(self, x: torch.Tensor) -> ActivationStatistics:
        """Add the images of one batch ``x`` (first dimension: images); returns self."""
        if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"x must be a non-empty batch tensor, got {getattr(x, 'shape', type(x))}")
        if bad := nonfinite_rows(x):
            raise ValueError(f"x must be finite: NaN or infinite values in image(s) {bad[:10]}")
        try:
            captured = _captured_inputs(self.model, x, self.layer_types)
        except RuntimeError as error:  # torch's shape and dtype errors from inside the forward pass
            raise ValueError(f"x of shape {tuple(x.shape)} and dtype {x.dtype} does not fit the model: "
                             f"{str(error).splitlines()[0]}") from None
        layers = [name for name, _ in captured]
        if self.layers is None:
            self.layers = layers
            self._quantile_sums = np.zeros((len(layers), len(_quantile_levels())))
            self._nonpositive_sums = np.zeros(len(layers))
        elif layers != self.layers:
            raise ValueError(
                f"the forward pass reached layers {layers}, an earlier batch reached {self.layers}"
            )
        # the levels are independent and numpy's sort releases the GIL: one thread per usable core
        with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
            sums = list(pool.map(_level_sums, captured))
        # added only once the whole batch is valid, so that a refused batch leaves the sums as they were
        self._quantile_sums += np.stack([quantiles for quantiles, _ in sums])
        self._nonpositive_sums += np.array([nonpositive for _, nonpositive in sums])
        self.images += x.shape[0]
        return self

    @property
    def quantile_sums(self) -> np.ndarray:
        """(levels, 18) float64: per level and quantile level, the sum over images seen so far (chunkable)."""
        return self._quantile_sums.copy()

    @property
    def nonpositive_sums(self) -> np.ndarray:
        """(levels,) float64: per level, the sum over images of the non-positive fraction."""
        return self._nonpositive_sums.copy()

    def table(self) -> pd.DataFrame:
        """The table of :func:`statistics_table` for the averages over all images seen so far."""
        if self.images == 0:
            raise ValueError("no images seen yet: call update(x) first")
        return statistics_table(
            self.layers, self._quantile_sums / self.images, self._nonpositive_sums / self.images
        )


def statistics_table(layers, quantile_means, nonpositive_means) -> pd.DataFrame:
    """Tidy ``activations.csv`` rows (without ``model``) from per-level averages (seed sections I, J).

    ``quantile_means``: (levels, 18) at ``theory.QUANTILE_LEVELS``; ``nonpositive_means``: (levels,).
    Per level: 18 ``quantile`` rows, one ``nonpositive_fraction`` row, then ``K``, ``gamma`` and ``P``
    from ``theory.overtake_from_quantiles`` for every (q_high, q_low); the columns of
    ``empirical.storage.tables.ACTIVATION_COLUMNS`` but ``model``."""
    levels = _quantile_levels()
    means = np.asarray(quantile_means, dtype=np.float64)
    nonpositive = np.asarray(nonpositive_means, dtype=np.float64)
    layers = list(layers)
    if means.shape != (len(layers), len(levels)) or nonpositive.shape != (len(layers),):
        raise ValueError(
            f"quantile_means must have shape ({len(layers)}, {len(levels)}) and nonpositive_means "
            f"({len(layers)},), got {means.shape} and {nonpositive.shape}"
        )
    column = {round(float(q), 2): i for i, q in enumerate(levels)}
    pairs = [(qh, ql) for qh in theory.HIGH_QUANTILES for ql in theory.LOW_QUANTILES]
    q_high = np.array([p[0] for p in pairs], dtype=np.float64)
    q_low = np.array([p[1] for p in pairs], dtype=np.float64)
    high_index = [column[round(float(q), 2)] for q in q_high]
    low_index = [column[round(float(q), 2)] for q in q_low]
    nan = np.nan
    frames = []
    for level, layer in enumerate(layers):
        k, gamma, p = theory.overtake_from_quantiles(
            q_low, means[level, low_index], q_high, means[level, high_index]
        )
        rows = {
            "statistic": ["quantile"] * len(levels) + ["nonpositive_fraction"],
            "q": list(levels) + [nan],
            "q_high": [nan] * (len(levels) + 1),
            "q_low": [nan] * (len(levels) + 1),
            "value": list(means[level]) + [nonpositive[level]],
        }
        for statistic, values in (("K", k), ("gamma", gamma), ("P", p)):
            rows["statistic"] += [statistic] * len(pairs)
            rows["q"] += [nan] * len(pairs)
            rows["q_high"] += list(q_high)
            rows["q_low"] += list(q_low)
            rows["value"] += list(np.broadcast_to(np.asarray(values, dtype=np.float64), q_high.shape))
        frame = pd.DataFrame(rows)
        frame.insert(0, "layer", layer)
        frame.insert(0, "level", level)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)[list(ACTIVATION_COLUMNS[1:])]
    return table.astype(
        {"level": "int64", "q": "float64", "q_high": "float64", "q_low": "float64", "value": "float64"}
    )


def activation_statistics(
    model: nn.Module, x: torch.Tensor | Iterable[torch.Tensor], *, layer_types=LAYER_TYPES
) -> pd.DataFrame:
    """Activation statistics table (see :class:`ActivationStatistics`) of a batch ``x`` or of an
    iterable of batches, streamed so that no more than one batch's activations are held."""
    stats = ActivationStatistics(model, layer_types=layer_types)
    for batch in [x] if isinstance(x, torch.Tensor) else x:
        stats.update(batch)
    return stats.table()


def activation_samples(
    model: nn.Module, x: torch.Tensor, *, max_values: int = 4096, rng, layer_types=LAYER_TYPES
) -> dict[int, np.ndarray]:
    """{level: 1-D float64 array}: up to ``max_values`` of the first image's pooled inputs per level,
    drawn without replacement (``rng``: ``torch.Generator`` or seed), in their original order."""
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 1:
        raise ValueError(f"max_values must be a positive integer, got {max_values!r}")
    generator = torch_generator(rng)
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch tensor, got {getattr(x, 'shape', type(x))}")
    captured = _captured_inputs(model, x[:1], tuple(layer_types))
    samples = {}
    for level, (_, inputs) in enumerate(captured):
        values = inputs[0].reshape(-1)
        if values.numel() > max_values:
            keys = torch.rand(values.numel(), generator=generator, device=generator.device)
            chosen = keys.topk(max_values).indices.sort().values.to(values.device)
            values = values[chosen]
        samples[level] = values.to(torch.float64).cpu().numpy()
    return samples
