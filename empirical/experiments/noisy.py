"""Noisy variants ``M+noise(s)`` of any attribution method (theory.noise_injection).

The variant's map is M's map plus s * RMS(map) * Z, Z i.i.d. standard normal per pixel, where RMS is the
root mean square of that one map (eq. 11's normaliser), so the noise has variance s^2 mean(A^2) whatever
the method's scale. Image i's noise comes from a generator seeded by (seed, stream, i) through
``numpy.random.SeedSequence``: the same image gets the same noise in any batch, chunk or device.

``stream`` keeps the noises of different models apart. MPRT compares the original model's noisy map with
the randomised model's noisy map; theory.noise_injection's case (b) assumes independent noises there, so
give every model (every randomisation step) its own stream. With one stream for both, the two maps share
Z and their covariance rises by s^2 RMS(A) RMS(B): the noisy variant would then look *less* randomised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from empirical.attribution import attribute, register_method

__all__ = ["DEFAULT_LEVELS", "NoisyMethod", "noise_for_images", "noisy_name", "noisy_variants",
           "parse_noisy_name", "register_noisy_variants"]

#: The noise levels s of the rewards experiment.
DEFAULT_LEVELS = (0.0, 0.25, 0.5, 1.0, 2.0)


def noisy_name(method: str, level: float) -> str:
    """``gradient+noise(0.5)``: the table name of method ``method`` at noise level ``level``."""
    return f"{method}+noise({level:g})"


_NOISY_NAME = re.compile(r"^(?P<base>.+)\+noise\((?P<level>[^()]+)\)$")


def parse_noisy_name(name) -> tuple[str, float] | None:
    """``("gradient", 0.5)`` for ``"gradient+noise(0.5)"``; None for a name that is not a noisy variant's
    (or whose level is not a finite number >= 0)."""
    match = _NOISY_NAME.match(name) if isinstance(name, str) else None
    if match is None:
        return None
    try:
        level = float(match["level"])
    except ValueError:
        return None
    if not math.isfinite(level) or level < 0:
        return None
    return match["base"], level


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating, np.integer)) \
            or not math.isfinite(level) or level < 0:
        raise ValueError(f"level must be a finite number >= 0, got {level!r}")
    return float(level)


def _check_seed(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _image_indices(n: int, image_indices, first_image) -> list[int]:
    if image_indices is None:
        first = _check_seed(first_image, "first_image")
        return list(range(first, first + n))
    indices = torch.as_tensor(image_indices)
    if indices.is_floating_point() or indices.is_complex() or indices.numel() != n:
        raise ValueError(f"image_indices must hold one integer index per image ({n}), got {image_indices!r}")
    return [_check_seed(int(i), "image_indices") for i in indices.flatten().tolist()]


def _stream_key(stream) -> list[int]:
    parts = list(stream) if isinstance(stream, (tuple, list)) else [stream]
    return [_check_seed(part, "stream") for part in parts]


def noise_for_images(shape: Sequence[int], indices: Sequence[int], *, seed: int, stream=0,
                     dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Standard normal noise of ``(len(indices), *shape)``; row k drawn from (seed, *stream, indices[k]).

    ``stream``: a non-negative int or a tuple of them. Drawn on the CPU (the same numbers on every device)
    and moved to ``device``.
    """
    key = [_check_seed(seed, "seed"), *_stream_key(stream)]
    rows = []
    for index in indices:
        state = np.random.SeedSequence([*key, int(index)]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)
        rows.append(torch.randn(tuple(shape), generator=generator, dtype=torch.float64))
    return torch.stack(rows).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class NoisyMethod:
    """``method`` (a callable ``(model, x, target) -> map`` or a name of ``empirical.attribution``) plus
    noise of level ``level``; ``options`` go to a named method. Call it like any method; the keyword
    options ``image_indices`` (one index per image), or ``first_image`` (indices first_image, ...), and
    ``stream`` (int or tuple of ints) choose the noise (module docstring). ``draw_key=(run seed, first
    image, step)``, the key
    ``empirical.experiments.randomization`` hands its random control, sets ``first_image`` to
    its first image and ``stream`` to (run seed, step): a new noise for every randomisation step.
    Returns a map of the shape the method returns."""

    method: Callable | str
    level: float
    seed: int = 0
    options: Mapping = field(default_factory=dict)
    base_name: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "level", _check_level(self.level))
        object.__setattr__(self, "seed", _check_seed(self.seed, "seed"))
        if not (callable(self.method) or isinstance(self.method, str)):
            raise ValueError(f"method must be a callable or a method name, got {self.method!r}")
        if callable(self.method) and self.options:
            raise ValueError("options are for a named method; bind them into the callable instead")

    @property
    def name(self) -> str:
        base = self.base_name or (self.method if isinstance(self.method, str)
                                  else getattr(self.method, "__name__", type(self.method).__name__))
        return noisy_name(base, self.level)

    def clean_map(self, model, x, target) -> torch.Tensor:
        if isinstance(self.method, str):
            return attribute(model, x, target, self.method, **dict(self.options))
        return self.method(model, x, target)

    def __call__(self, model, x, target, *, image_indices=None, first_image: int = 0, stream=0,
                 draw_key: Sequence[int] | None = None) -> torch.Tensor:
        if draw_key is not None:
            run_seed, first_image, step = (int(k) for k in draw_key)
            stream = (run_seed, step)
        maps = self.clean_map(model, x, target).detach()
        indices = _image_indices(len(maps), image_indices, first_image)
        if self.level == 0:
            return maps
        if not maps.is_floating_point():
            raise ValueError(f"the method returned {maps.dtype} maps; noise needs floating-point maps")
        rms = maps.flatten(1).square().mean(1).sqrt().view(-1, *([1] * (maps.ndim - 1)))
        noise = noise_for_images(maps.shape[1:], indices, seed=self.seed, stream=stream,
                                 dtype=maps.dtype, device=maps.device)
        return maps + self.level * rms * noise


def noisy_variants(method: Callable | str, levels: Sequence[float] = DEFAULT_LEVELS, *, seed: int = 0,
                   name: str | None = None, options: Mapping | None = None) -> dict[str, NoisyMethod]:
    """``{"gradient+noise(0.5)": NoisyMethod, ...}`` for every level (default 0, 0.25, 0.5, 1, 2).

    ``name`` names a callable ``method`` (default: its ``__name__``); every variant shares ``seed``, so
    level s and level s' of one image differ only by the scale of the same Z.
    """
    levels = tuple(levels)
    if not levels:
        raise ValueError("levels must not be empty")
    variants = [NoisyMethod(method, level, seed, dict(options or {}), name) for level in levels]
    result = {variant.name: variant for variant in variants}
    if len(result) != len(variants):
        raise ValueError(f"levels must be distinct, got {levels}")
    return result


def register_noisy_variants(method: str, levels: Sequence[float] = DEFAULT_LEVELS, *, seed: int = 0,
                            options: Mapping | None = None, replace: bool = False) -> tuple[str, ...]:
    """Register every variant of the named method with ``empirical.attribution.register_method`` (as a
    ready map, ``reduction="none"``, taking the noise options) and return their names. The variant calls
    ``attribute(model, x, target, method, **options)``, so it keeps the method's channel reduction."""
    variants = noisy_variants(method, levels, seed=seed, options=options)
    for name, variant in variants.items():
        register_method(name, variant, reduction="none", takes_options=True, replace=replace)
    return tuple(variants)
