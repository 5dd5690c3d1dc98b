"""Fingerprints of what a result was computed from: settings, a network's weights, images and labels.

A finished chunk of an experiment records the fingerprint of its inputs (``ChunkStore.write(...,
fingerprint=...)``); it is reused only by a run whose inputs give the same fingerprint, and computed again
otherwise. A fingerprint is the sha256 (64 hex digits) of a canonical description:

- the weights: every tensor of the network's ``state_dict`` (name, dtype, shape and bytes), the network's
  class and its train/eval mode; not the file they came from, so one changed weight changes it;
- images: their content (``ImageStream.content_digest``: file bytes, tensor bytes, or the seed and size of
  random inputs), and the labels explained;
- settings: numbers, strings, lists and mappings (key order does not matter), tensors by their bytes;
- a callable (a user's attribution method, a registered one): its module and qualified name, and for a
  Python function its compiled code (bytecode, constants, names, nested functions), default arguments and
  the values its closure holds; a ``functools.partial`` by its function and arguments. The functions it
  calls by global name are not followed: a changed helper of an unchanged function needs a new name or a
  new ``out`` folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import threading
import types
from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["callable_description", "fingerprint", "labels_digest", "tensor_digest", "weights_digest"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: the ids of the callables being described in this thread (a cycle is cut at the second visit)
_DESCRIBING = threading.local()


def _update_tensor(hasher, tensor: torch.Tensor) -> None:
    tensor = tensor.detach()
    hasher.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    if tensor.numel():
        flat = tensor.to("cpu").contiguous().reshape(-1)
        hasher.update(flat.view(torch.uint8).numpy().tobytes() if flat.dtype != torch.bool
                      else flat.numpy().tobytes())


def tensor_digest(tensor: torch.Tensor) -> str:
    """The sha256 (hex) of a tensor's dtype, shape and bytes (on the CPU, in row-major order)."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    hasher = hashlib.sha256()
    _update_tensor(hasher, tensor)
    return hasher.hexdigest()


def weights_digest(model: torch.nn.Module) -> str:
    """The sha256 (hex) of ``model``'s class, train/eval mode and every ``state_dict`` entry (name, dtype,
    shape, bytes; parameters and persistent buffers), in the state dict's order."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    hasher = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__} "
                            f"training={model.training}".encode())
    for name, value in model.state_dict().items():
        hasher.update(f"\n{name}:".encode())
        if isinstance(value, torch.Tensor):
            _update_tensor(hasher, value)
        else:  # extra state a module keeps in its state dict
            hasher.update(repr(_canonical(value)).encode())
    return hasher.hexdigest()


def labels_digest(labels) -> str | None:
    """The sha256 (hex) of a label tensor, or None for None (the network's own top classes are explained)."""
    return None if labels is None else tensor_digest(torch.as_tensor(labels))


def _canonical(value):
    """A JSON-ready, order-independent description of ``value``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, torch.Tensor):
        return {"tensor": tensor_digest(value)}
    if isinstance(value, np.ndarray):
        return {"array": tensor_digest(torch.from_numpy(np.ascontiguousarray(value)))}
    if isinstance(value, Mapping):
        return {"mapping": sorted([json.dumps(_canonical(k), sort_keys=True), _canonical(v)]
                                  for k, v in value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return {"set": sorted(json.dumps(_canonical(item), sort_keys=True) for item in value)}
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.Generator):
        return {"generator": tensor_digest(value.get_state())}
    if callable(value):
        return callable_description(value)
    # anything else by its representation, without memory addresses (they change from run to run)
    return {type(value).__qualname__: _ADDRESS.sub("", repr(value))}


def callable_description(function, _depth: int = 0) -> dict:
    """A JSON-ready description of ``function`` that changes when its code does (see the module docstring):
    name, and for a Python function the digest of its code, its defaults and its closure's values; for a
    ``functools.partial`` its function and arguments; for another callable object its type's ``__call__``
    and its attributes."""
    active = _DESCRIBING.__dict__.setdefault("ids", set())
    # deep chains of closures, or an object met again inside its own description: known by name from here on
    if _depth > 4 or id(function) in active:
        return {"callable": _name(function)}
    active.add(id(function))
    try:
        return _described(function, _depth)
    finally:
        active.discard(id(function))


def _described(function, _depth: int) -> dict:
    if isinstance(function, functools.partial):
        return {"partial": callable_description(function.func, _depth + 1),
                "args": _canonical(list(function.args)), "keywords": _canonical(dict(function.keywords))}
    if isinstance(function, types.MethodType):
        return {"method": callable_description(function.__func__, _depth + 1)}
    if isinstance(function, types.FunctionType):
        cells = []
        for cell in function.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:  # a cell not yet filled
                content = None
            cells.append(callable_description(content, _depth + 1) if callable(content)
                         else _canonical(content))
        return {"callable": _name(function), "code": _code_digest(function.__code__),
                "defaults": _canonical(list(function.__defaults__ or ())),
                "kwdefaults": _canonical(dict(function.__kwdefaults__ or {})), "closure": cells}
    if isinstance(function, (types.BuiltinFunctionType, type)):
        return {"callable": _name(function)}
    if isinstance(function, torch.nn.Module):  # by its structure; the weights are fingerprinted apart
        return {"module": _ADDRESS.sub("", repr(function))}
    call = type(function).__call__
    described = (callable_description(call, _depth + 1) if isinstance(call, types.FunctionType)
                 else {"callable": _name(call)})
    state = {name: callable_description(value, _depth + 1) if callable(value) else _canonical(value)
             for name, value in sorted(getattr(function, "__dict__", {}).items())}
    return {"object": _name(type(function)), "call": described, "state": state}


def _name(value) -> str:
    return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"


def _code_digest(code: types.CodeType) -> str:
    """The sha256 (hex) of a code object's bytecode, names and constants, nested code objects included."""
    hasher = hashlib.sha256(code.co_code)
    hasher.update(json.dumps([list(code.co_names), list(code.co_varnames)]).encode())
    for constant in code.co_consts:
        hasher.update((_code_digest(constant) if isinstance(constant, types.CodeType)
                       else json.dumps(_canonical(constant), sort_keys=True)).encode())
    return hasher.hexdigest()


def fingerprint(**parts) -> str:
    """The sha256 (64 hex digits) of the canonical description of ``parts`` (see the module docstring):
    equal descriptions give equal fingerprints, in any process and on any machine."""
    text = json.dumps(_canonical(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
