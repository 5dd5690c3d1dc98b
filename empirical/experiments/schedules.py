"""Which modules model randomisation re-initialises at each step (Binder et al., CVPR 2023, supplement A.1).

Every schedule is a list of steps, each a list of module names; the steps are applied cumulatively.

- ``"blocks"``: the supplement's top-down block schedule. For a built-in network its ``BlockRule`` (the
  classifier, then each step down to the next boundary module: ResNet-50's ``*.conv1``, DenseNet-121's
  every third ``*.conv1``, EfficientNet-B0's ``*._depthwise_conv``); for any other network the block
  boundaries the user names as module-name prefixes (``NetworkSpec.blocks``).
- ``"per-layer"``: one parametrised module a step from the output back to the input, the order of
  Quantus's MPRT (``layer_order="top_down"``).
- ``"bottom-up"``: the per-layer steps in the opposite order, input first (Quantus's default for sMPRT and
  eMPRT).

Both ``"blocks"`` and ``"per-layer"`` are top-down: they start at the output. "Top-down" names that order
only, never one schedule: the block schedule is ``block_schedule`` (``block_rule_schedule`` for a built-in
network's ``BlockRule``), the per-layer one ``per_layer_schedule``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from empirical.models import NETWORKS, NetworkSpec, network_spec

__all__ = ["SCHEDULES", "block_rule_schedule", "block_schedule", "boundary_count", "bottom_up_schedule",
           "per_layer_schedule", "schedule_steps"]

#: the schedules of model randomisation (module docstring)
SCHEDULES = ("blocks", "per-layer", "bottom-up")


def _parametrised_modules(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters themselves, in registration (forward) order."""
    return [name for name, module in model.named_modules()
            if name and any(True for _ in module.parameters(recurse=False))]


def _spec(model: nn.Module, spec) -> NetworkSpec:
    if isinstance(spec, NetworkSpec):
        return spec
    if isinstance(spec, str):
        if spec not in NETWORKS:
            raise ValueError(f"arch must be one of {sorted(NETWORKS)}, got {spec!r}")
        return NETWORKS[spec]
    if spec is None:
        return network_spec(model)
    raise ValueError(f"spec must be a NetworkSpec, a built-in network name or None, got {spec!r}")


def block_rule_schedule(model: nn.Module, arch) -> list[list[str]]:
    """The block schedule (supplement A.1; top-down: the classifier first) of a built-in network by its
    ``BlockRule``.

    ``arch``: a name of ``NETWORKS`` or a ``NetworkSpec`` with a ``block_rule``. Step 1 is the classifier;
    each further step takes every parametrised module, walking backwards in registration order, down to and
    including the next ``every``-th boundary module (ResNet-50: 16 ``*.conv1`` -> 17 steps; DenseNet-121:
    every third ``*.conv1``, the last step taking the remainder -> 21 steps; EfficientNet-B0: each
    ``*._depthwise_conv`` -> 17 steps; demo: each ``*.conv1``). Modules below the last boundary (the stem)
    are never re-initialised. Returns the list of steps.
    """
    spec = _spec(model, arch)
    if spec.block_rule is None:
        raise ValueError(f"network {spec.name!r} has no block rule: give its block boundaries "
                         "(network_spec(model, blocks=[...])) or use the per-layer schedule")
    rule, classifier = spec.block_rule, spec.classifier
    names = _parametrised_modules(model)[::-1]
    if classifier not in names:
        raise ValueError(f"arch {spec.name!r} expects a classifier module {classifier!r}; the model has none")
    boundaries = [name for name in names if name.endswith(rule.suffix)]
    if rule.most is not None and len(boundaries) < rule.most:
        raise ValueError(f"arch {spec.name!r} expects at least {rule.most} '*{rule.suffix}' modules, the "
                         f"model has {len(boundaries)}")
    boundaries = boundaries[:rule.most]
    if not boundaries:
        return [names[:names.index(classifier) + 1]]
    # every `every`-th boundary ends a step; the last boundary always ends one (the remainder)
    step_ends = set(boundaries[rule.every - 1::rule.every]) | set(boundaries[-1:])
    split = names.index(classifier) + 1
    schedule, current = [names[:split]], []
    for name in names[split:]:
        current.append(name)
        if name in step_ends:
            schedule.append(current)
            current = []
            if name == boundaries[-1]:
                break
    return schedule


def block_schedule(model: nn.Module, spec=None) -> list[list[str]]:
    """The block schedule of any network: ``spec.blocks`` (module-name prefixes, in either order) give one
    step each, output side first, holding every parametrised module at or under that prefix; without
    ``blocks`` the built-in ``BlockRule`` (``block_rule_schedule``). Modules under no prefix are never
    re-initialised. Returns the list of steps; ValueError for a prefix that matches no parametrised module
    or for overlapping prefixes."""
    spec = _spec(model, spec)
    if spec.blocks is None:
        return block_rule_schedule(model, spec)
    names = _parametrised_modules(model)
    position = {name: k for k, name in enumerate(names)}
    steps = []
    for prefix in spec.blocks:
        members = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not members:
            raise ValueError(f"block prefix {prefix!r} matches no module with parameters; modules with "
                             f"parameters begin {names[:3]} and end {names[-3:]}")
        steps.append(members)
    seen = [name for step in steps for name in step]
    if len(seen) != len(set(seen)):
        twice = sorted({n for n in seen if seen.count(n) > 1})
        raise ValueError(f"block prefixes {list(spec.blocks)} overlap: {twice[:3]} fall under two of them")
    # output side first, whatever order the user gave them in
    steps.sort(key=lambda step: -max(position[n] for n in step))
    return [sorted(step, key=lambda n: -position[n]) for step in steps]


def per_layer_schedule(model: nn.Module) -> list[list[str]]:
    """Quantus MPRT's top-down order: one parametrised module a step, from the output back to the input."""
    return [[name] for name in _parametrised_modules(model)[::-1]]


def bottom_up_schedule(model: nn.Module) -> list[list[str]]:
    """One parametrised module a step from the input to the output (Quantus ``layer_order="bottom_up"``)."""
    return per_layer_schedule(model)[::-1]


def schedule_steps(model: nn.Module, schedule: str, spec=None) -> list[list[str]]:
    """The steps of ``schedule`` (one of ``SCHEDULES``) for ``model`` described by ``spec`` (a
    ``NetworkSpec``, a built-in name, or None: ``network_spec(model)``)."""
    if schedule == "blocks":
        spec = _spec(model, spec)
        if not spec.has_block_schedule:
            raise ValueError(f"the block schedule needs the block boundaries of {spec.name!r}: pass "
                             "network_spec(model, blocks=[module-name prefixes]) or use schedule='per-layer'")
        return block_schedule(model, spec)
    if schedule == "per-layer":
        return per_layer_schedule(model)
    if schedule == "bottom-up":
        return bottom_up_schedule(model)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def boundary_count(schedule: Sequence[Sequence[str]], arch) -> int:
    """How many boundary modules of ``arch``'s ``BlockRule`` (``*.conv1``, ``*._depthwise_conv``)
    ``schedule`` re-initialises."""
    if isinstance(arch, str) and arch not in NETWORKS:
        raise ValueError(f"arch must be one of {sorted(NETWORKS)}, got {arch!r}")
    spec = NETWORKS[arch] if isinstance(arch, str) else arch
    if spec.block_rule is None:
        raise ValueError(f"network {spec.name!r} has no block rule")
    return sum(name.endswith(spec.block_rule.suffix) for step in schedule for name in step)
