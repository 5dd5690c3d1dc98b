"""LRP canonisation of any network from its module graph (``torch.fx``), and refusal where no rule applies.

LRP's relevance is conserved layer by layer (Binder et al., CVPR 2023, supplement eq. 52 and section G)
only where every operation between two rule-carrying layers either has a rule or passes relevance on
unchanged. :class:`GraphCanonizer` traces a network once, merges each batch-norm that directly follows a
convolution or linear layer (found from the graph's data flow, not from module names), and
:func:`lrp_support` lists what it cannot handle: leaf modules of types without a rule (``Hardswish``,
``SiLU``, a squeeze-excitation gate's ``Hardsigmoid``...), batch-norms that follow no linear layer, and
functional operations that mix tensors (``x + y`` of residual blocks, ``x * gate``), which would copy or
rescale the relevance. ``lrp_composite`` refuses such a network with :class:`LRPNotSupportedError`
rather than return maps that do not add up.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import torch
from torch import fx, nn
from zennit.canonizers import Canonizer
from zennit.types import AvgPool, BatchNorm
from zennit.types import Linear as AnyLinear

from empirical.attribution.merging import ExactNamedMergeBatchNorm

__all__ = ["GraphCanonizer", "LRPNotSupportedError", "lrp_support", "merge_pairs"]

#: leaf modules that carry an LRP rule (linear layers, average pooling) or pass relevance on unchanged
_SUPPORTED_MODULES = (
    AnyLinear, AvgPool, nn.ReLU, nn.ReLU6, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.Identity, nn.Flatten, nn.Unflatten,
)
# functions and tensor methods whose backward hands relevance on with its sum unchanged: reshaping,
# selection, concatenation, ReLU (zero where the relevance is zero anyway), max and average pooling
_PASSING_FUNCTIONS = {
    torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.permute, torch.transpose,
    torch.cat, torch.concat, torch.relu, torch.nn.functional.relu, torch.nn.functional.dropout,
    torch.nn.functional.max_pool1d, torch.nn.functional.max_pool2d, torch.nn.functional.max_pool3d,
    torch.nn.functional.adaptive_max_pool2d, torch.nn.functional.adaptive_avg_pool1d,
    torch.nn.functional.adaptive_avg_pool2d, torch.nn.functional.avg_pool2d, torch.mean, operator.getitem,
    getattr,
}
_PASSING_METHODS = {"flatten", "reshape", "view", "squeeze", "unsqueeze", "permute", "transpose",
                    "contiguous", "relu", "relu_", "mean", "size", "dim", "clone", "detach", "float", "to"}
# methods and functions that give shapes or numbers, not tensors
_NON_TENSOR = {"size", "dim", "numel"}


class LRPNotSupportedError(ValueError):
    """LRP has no rule for some part of a network; the message names the parts and how to proceed."""


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(model)
    except Exception as error:  # tracing fails in many ways (control flow on values, untraceable calls)
        raise LRPNotSupportedError(
            f"LRP cannot read the module graph of {type(model).__name__} (torch.fx: {error}); pass "
            "canonizers= that make it traceable, or explain it with a gradient method"
        ) from error


def _is_tensor(node, tensor_nodes: set) -> bool:
    return isinstance(node, fx.Node) and node in tensor_nodes


def _analyse(model: nn.Module) -> tuple[list[tuple[tuple[str], str]], dict[str, list[str]]]:
    """(batch-norm merge pairs, problems by kind) of ``model``'s traced graph."""
    graph = _trace(model).graph
    modules = dict(model.named_modules())
    tensor_nodes: set = set()
    pairs, problems = [], {"module types": [], "operations": [], "batch-norms": []}
    for node in graph.nodes:
        inputs = [a for a in node.all_input_nodes if a in tensor_nodes]
        if node.op == "placeholder":
            tensor_nodes.add(node)
            continue
        if node.op == "get_attr":
            continue
        if node.op == "call_module":
            tensor_nodes.add(node)
            module = modules[node.target]
            if isinstance(module, BatchNorm):
                source = node.args[0] if node.args else None
                if (isinstance(source, fx.Node) and source.op == "call_module"
                        and isinstance(modules[source.target], AnyLinear) and len(source.users) == 1):
                    pairs.append(((source.target,), node.target))
                else:
                    problems["batch-norms"].append(node.target)
            elif not isinstance(module, _SUPPORTED_MODULES):
                problems["module types"].append(f"{type(module).__name__} ({node.target})")
            continue
        if node.op in ("call_function", "call_method"):
            name = (node.target if node.op == "call_method"
                    else getattr(node.target, "__name__", str(node.target)))
            if not inputs or name in _NON_TENSOR:
                continue  # arithmetic on shapes and constants
            tensor_nodes.add(node)
            passing = (node.target in _PASSING_METHODS if node.op == "call_method"
                       else node.target in _PASSING_FUNCTIONS)
            if node.target is getattr:
                passing = node.args[1] not in ("shape",)
                if not passing:
                    tensor_nodes.discard(node)
                    continue
            if not passing:
                problems["operations"].append(f"{name} (at {node.name})")
    return pairs, {kind: found for kind, found in problems.items() if found}


def merge_pairs(model: nn.Module) -> list[tuple[tuple[str], str]]:
    """((linear layer name,), batch-norm name) for every batch-norm fed only by that layer, from the graph."""
    return _analyse(model)[0]


def lrp_support(model: nn.Module) -> dict[str, list[str]]:
    """What LRP has no rule for in ``model``, by kind ("module types", "operations", "batch-norms"); empty
    when every part of the traced graph has a rule or passes relevance on unchanged."""
    return _analyse(model)[1]


def _summary(found: Iterable[str], most: int = 6) -> str:
    found = list(found)
    more = f" and {len(found) - most} more" if len(found) > most else ""
    return ", ".join(found[:most]) + more


def refusal_message(model: nn.Module, problems: dict[str, list[str]]) -> str:
    """The error of ``lrp_composite`` for a network with ``problems`` (from :func:`lrp_support`)."""
    parts = []
    if "module types" in problems:
        types = sorted({entry.split(" (")[0] for entry in problems["module types"]})
        parts.append(f"module types without an LRP rule: {', '.join(types)} (at "
                     f"{_summary(e.split(' (')[1].rstrip(')') for e in problems['module types'])})")
    if "operations" in problems:
        parts.append(f"operations that would copy or rescale relevance: {_summary(problems['operations'])}")
    if "batch-norms" in problems:
        parts.append(f"batch-norms that follow no convolution or linear layer: "
                     f"{_summary(problems['batch-norms'])}")
    return (f"LRP refuses {type(model).__name__}: " + "; ".join(parts) + ". Its maps would not conserve the "
            "explained logit. To proceed: pass canonizers= (Zennit-style) that route these through modules "
            "with rules, register your own method with empirical.attribution.register_method, or use a "
            "gradient-based method (gradient, gradient-x-input, integrated-gradients).")


class GraphCanonizer(Canonizer):
    """Batch-norms merged into the convolution or linear layer that feeds them, found by tracing the model
    with ``torch.fx``; every change undone by the instances ``apply`` returns (Zennit's contract)."""

    def apply(self, root_module):
        pairs = merge_pairs(root_module)
        return ExactNamedMergeBatchNorm(pairs).apply(root_module) if pairs else []

    def register(self):
        """Nothing to do: the instances returned by ``apply`` hold the changes."""

    def remove(self):
        """Nothing to do: the instances returned by ``apply`` undo the changes."""

    def copy(self):
        return type(self)()
