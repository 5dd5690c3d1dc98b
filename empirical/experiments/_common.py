"""Plumbing every experiment shares: which methods run, how their random draws are seeded, which class is
explained, how chunks are named, and the progress bar.

One seeding rule for stochastic methods (the random control): the draws of a batch are seeded by a key
``(seed, first image of the batch, step)`` (step 0: the unmodified model), through
``numpy.random.SeedSequence`` into a CPU ``torch.Generator``, so a resumed chunk, or a run on another device,
draws what an uninterrupted CPU run drew.

Chunks are keyed by what they were computed from: :func:`input_fingerprints` gives each batch of images the
fingerprint (``empirical.storage.fingerprints``) of its image content, its labels, the network's weights and
the experiment's settings, and :func:`method_fingerprint` adds the method and its options; a chunk is reused
only under the same fingerprint (``ChunkStore.has(key, fingerprint)``) and collected only with it.

Noisy variants ``M+noise(s)`` (``empirical.experiments.noisy``) of every available method M are
methods like any other here, by name: ``"gradient+noise(0.5)"``. Their noise is keyed by the same draw key
(stream (seed, step), one generator per image), so each randomisation step gets its own noise, as
theory.noise_injection's case (b) assumes. ``attribution_options`` of M apply to its variants.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from empirical.attribution import ConservationWarning, attribute, available_methods, method_definition
from empirical.experiments.noisy import NoisyMethod, parse_noisy_name
from empirical.storage.fingerprints import fingerprint, labels_digest, weights_digest

__all__ = ["STOCHASTIC_METHODS", "EstimatedBar", "NamedMethod", "chunk_key", "draw_generator", "explain",
           "explained_classes", "input_fingerprints", "known_methods", "method_fingerprint", "progress_bar",
           "resolve_methods"]

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


def chunk_key(*parts: str, start: int, stop: int) -> str:
    """The name of the chunk of images ``start:stop`` of one (model, method, ...) combination."""
    raw = "__".join([*parts, f"{start:07d}-{stop:07d}"])
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def input_fingerprints(stream, ranges, *, model, settings) -> dict[int, str]:
    """{start: fingerprint} for each ``(start, stop)`` of ``ranges``: of images ``start``..``stop - 1`` of
    ``stream`` (their content, ``stream.content_digest``) and their labels, the weights of ``model``
    (``weights_digest``: the tensors, not where they were read from) and ``settings`` (a mapping of the
    experiment's options, seed, batch size...)."""
    weights = weights_digest(model)
    labels = stream.labels
    return {start: fingerprint(version=_FINGERPRINT_VERSION, settings=settings, weights=weights,
                               images=stream.content_digest(start, stop),
                               labels=labels_digest(None if labels is None else labels[start:stop]))
            for start, stop in ranges}


def method_fingerprint(inputs: str, name: str, method) -> str:
    """The fingerprint (64 hex digits) of a chunk of method ``name`` on the inputs of fingerprint ``inputs``:
    ``method`` is a resolved method, a :class:`NamedMethod` known by its name, options and the function
    registered under that name (``empirical.attribution.method_definition``), a callable by its code
    (``empirical.storage.fingerprints.callable_description``)."""
    if isinstance(method, NamedMethod):
        noisy = _noisy_base(method.method)
        registered = method_definition(method.method if noisy is None else noisy[0])
        spec = {"method": method.method, "options": method.options, "registered": registered}
    else:
        spec = {"callable": method}
    return fingerprint(version=_FINGERPRINT_VERSION, inputs=inputs, name=name, method=spec)


#: changes when what goes into a chunk's fingerprint changes, so that no older chunk is reused
_FINGERPRINT_VERSION = 2


def duration_text(seconds: float) -> str:
    """``seconds`` in the largest unit that fits: "40 s", "12.5 minutes", "86.1 hours", "3.6 days"."""
    for unit, length in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= length:
            return f"{seconds / length:,.1f} {unit}"
    return f"{seconds:.0f} s"


def estimate_line(description: str, *, total: int, done: int, seconds: float, unit: str) -> str:
    """The line printed before an experiment's progress bar: the time its ``total`` units will take at the
    rate of the first ``done`` ones, which took ``seconds``."""
    rate = seconds / max(done, 1)
    units = unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")
    return (f"{description}: estimated time {duration_text(rate * total)} for {total:,} {units} "
            f"({rate:.2f} s a {unit}, from the first {done}); memory stays bounded by the {unit}; Ctrl-C "
            "stops, and a rerun resumes from the finished ones")


def progress_bar(total: int, *, enabled: bool, description: str, unit: str, initial: int = 0):
    """The bar of an experiment's loop (hidden unless ``enabled``): an :class:`EstimatedBar`, which prints
    the :func:`estimate_line` of the loop as a line before the tqdm bar is drawn."""
    return EstimatedBar(total, enabled=enabled, description=description, unit=unit, initial=initial)


class EstimatedBar:
    """A progress bar that first times the loop's first unit of work, prints the estimated time of all
    ``total`` units as one line on stderr, and only then draws the tqdm bar (starting at the units done).

    The first unit is real work whose result the loop keeps (a chunk written like any other), so the estimate
    wastes nothing; nothing is drawn before the estimate line. The clock starts when the bar is made: make it
    just before the loop. ``update``/``close`` and use as a context manager, as a tqdm bar.
    """

    def __init__(self, total: int, *, enabled: bool, description: str, unit: str, initial: int = 0):
        self.total, self.enabled, self.description, self.unit = total, enabled, description, unit
        self.n, self._bar = initial, None
        self._started = time.perf_counter()

    def update(self, n: int = 1) -> None:
        if self._bar is None:
            seconds = time.perf_counter() - self._started
            if self.enabled:
                print(estimate_line(self.description, total=self.total, done=n, seconds=seconds,
                                    unit=self.unit), file=sys.stderr, flush=True)
            self._bar = tqdm(total=self.total, initial=self.n + n, disable=not self.enabled,
                             desc=self.description, unit=self.unit)
        else:
            self._bar.update(n)
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        """What the bar shows after its counts (from the first unit on, once the bar is drawn)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def conservation_unchecked():
    """Silence the conservation warning for maps of a randomised network: its logits sit near 0, where no
    LRP rule hands them on intact; the original model's maps stay checked."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConservationWarning)
        yield
