"""What every experiment's kernel shares: which methods run, how their random draws are seeded, which class
is explained, and what defines a method (for the driver's fingerprints).

One seeding rule for stochastic methods (the random control): the draws of a batch are seeded by a key
``(seed, first image of the batch, step)`` (step 0: the unmodified model), through
``numpy.random.SeedSequence`` into a CPU ``torch.Generator``, so a resumed chunk, or a run on another device,
draws what an uninterrupted CPU run drew.

The kernels read and write no files: the chunked driver (``empirical.run.chunked``) names chunks, keys them
by the fingerprint of what they were computed from (images, labels, weights, settings and
:func:`method_spec`), resumes and collects them.

Noisy variants ``M+noise(s)`` (``empirical.experiments.noisy``) of every available method M are
methods like any other here, by name: ``"gradient+noise(0.5)"``. Their noise is keyed by the same draw key
(stream (seed, step), one generator per image), so each randomisation step gets its own noise, as
theory.noise_injection's case (b) assumes. ``attribution_options`` of M apply to its variants.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import torch

from empirical.attribution import ConservationWarning, attribute, available_methods, method_definition
from empirical.experiments.noisy import NoisyMethod, parse_noisy_name

__all__ = ["STOCHASTIC_METHODS", "NamedMethod", "draw_generator", "explain", "explained_classes",
           "known_methods", "method_spec", "resolve_methods"]

#: methods of ``empirical.attribution`` that draw random numbers; they get a generator seeded by the draw key
STOCHASTIC_METHODS = ("random-uniform",)


def draw_generator(draw_key) -> torch.Generator:
    """The CPU ``torch.Generator`` of the draws keyed by ``draw_key`` (a sequence of non-negative ints)."""
    state = np.random.SeedSequence(list(draw_key)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> np.uint64(1)))


@dataclasses.dataclass(frozen=True)
class NamedMethod:
    """A method of ``empirical.attribution`` by name, with its keyword options."""

    method: str
    options: dict

    def __call__(self, model, x, target, *, draw_key=None):
        noisy = _noisy_base(self.method)
        if noisy is not None:
            base, level = noisy
            clean = NamedMethod(base, self.options)
            variant = NoisyMethod(lambda m, images, t: clean(m, images, t, draw_key=draw_key), level,
                                  base_name=base)
            return variant(model, x, target, draw_key=draw_key)
        options = dict(self.options)
        if self.method in STOCHASTIC_METHODS and draw_key is not None and "rng" not in options:
            options["rng"] = draw_generator(draw_key)
        return attribute(model, x, target, self.method, **options)


def _noisy_base(name) -> tuple[str, float] | None:
    """(base method, level) of a noisy variant of an available (not itself registered) method, else None."""
    if name in available_methods():
        return None
    parsed = parse_noisy_name(name)
    return parsed if parsed is not None and parsed[0] in available_methods() else None


def known_methods(requested=()) -> tuple[str, ...]:
    """``available_methods()`` plus the noisy variants among ``requested`` whose base method is available."""
    requested = [requested] if isinstance(requested, str) else list(requested or ())
    return (*available_methods(), *(name for name in requested if _noisy_base(name) is not None))


def resolve_methods(methods, options: Mapping | None = None) -> dict[str, Callable]:
    """{table name: callable (model, x, target) -> maps} from a list of names and callables (a callable is
    named by its ``__name__``) or a mapping name -> method name or callable. ``options``: method name ->
    keyword options of that method (``{"integrated-gradients": {"steps": 16}}``)."""
    if isinstance(methods, str) or not methods:
        raise ValueError(f"methods must be a non-empty list of method names, got {methods!r}")
    options = dict(options or {})
    if isinstance(methods, Mapping):
        entries = list(methods.items())
    else:
        entries = [(getattr(m, "__name__", type(m).__name__), m) if callable(m) else (m, m) for m in methods]
    resolved, named = {}, set()
    for name, method in entries:
        if not isinstance(name, str) or not name:
            raise ValueError(f"method names must be non-empty strings, got {name!r}")
        if callable(method):
            resolved[name] = method
            continue
        noisy = _noisy_base(method)
        if method not in available_methods() and noisy is None:
            raise ValueError(f"method {method!r} unknown; available: {', '.join(available_methods())} "
                             f"(and M+noise(s) of each)")
        named.add(method)
        method_options = options.get(method, {})
        if noisy is not None and method not in options:
            method_options = options.get(noisy[0], {})
            named.add(noisy[0])
        if not isinstance(method_options, Mapping):
            raise ValueError(f"attribution_options must map method names to option dicts, got "
                             f"{method!r}: {method_options!r}")
        resolved[name] = NamedMethod(method, dict(method_options))
    if len(resolved) != len(entries):
        raise ValueError(f"methods must have distinct names, got {[name for name, _ in entries]}")
    unused = sorted(set(options) - named)
    if unused:
        raise ValueError(f"attribution_options names methods {unused} that are not in methods")
    return resolved


def explain(method, model, x, target, draw_key) -> torch.Tensor:
    """Maps of ``method`` (detached); named methods get ``draw_key`` to seed any random draws."""
    if isinstance(method, NamedMethod):
        return method(model, x, target, draw_key=draw_key).detach()
    return method(model, x, target).detach()


def explained_classes(model, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``labels`` where given, else the model's highest-scoring class of each image; on ``images``' device."""
    if labels is not None:
        return labels.to(images.device)
    with torch.no_grad():  # not inference_mode: the classes feed into gradient computations
        return model(images).argmax(dim=1)


def method_spec(method) -> dict:
    """What defines a resolved method, for the fingerprint of its chunks: a :class:`NamedMethod` by its name,
    options and the function registered under that name (``empirical.attribution.method_definition``), a
    callable by itself (fingerprinted by its code)."""
    if isinstance(method, NamedMethod):
        noisy = _noisy_base(method.method)
        registered = method_definition(method.method if noisy is None else noisy[0])
        return {"method": method.method, "options": method.options, "registered": registered}
    return {"callable": method}


@contextlib.contextmanager
def conservation_unchecked():
    """Silence the conservation warning for maps of a randomised network: its logits sit near 0, where no
    LRP rule hands them on intact; the original model's maps stay checked."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConservationWarning)
        yield
