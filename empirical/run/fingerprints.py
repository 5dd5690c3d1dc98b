"""Fingerprints of what a result was computed from: settings, a network's weights, images and labels.

A finished chunk of an experiment records the fingerprint of its inputs (``ChunkStore.write(...,
fingerprint=...)``); it is reused only by a run whose inputs give the same fingerprint, and computed again
otherwise. A fingerprint is the sha256 (64 hex digits) of a canonical description:

- the weights: every tensor of the network's ``state_dict`` (name, dtype, shape and bytes), the network's
  class and its train/eval mode; not the file they came from, so one changed weight changes it;
- images: their content (``ImageStream.content_digest``: file bytes, tensor bytes, or the seed and size of
  random inputs), and the labels explained;
- settings: numbers, strings, lists and mappings (key order does not matter), tensors by their bytes.
  A callable is known by its module and qualified name only (its code is not read): an attribution method
  that is a function of the caller's is known by its table name, so a changed function needs a new name.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["fingerprint", "labels_digest", "tensor_digest", "weights_digest"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


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
    if callable(value) and hasattr(value, "__qualname__"):
        return {"callable": f"{getattr(value, '__module__', '')}.{value.__qualname__}"}
    # anything else by its representation, without memory addresses (they change from run to run)
    return {type(value).__qualname__: _ADDRESS.sub("", repr(value))}


def fingerprint(**parts) -> str:
    """The sha256 (64 hex digits) of the canonical description of ``parts`` (see the module docstring):
    equal descriptions give equal fingerprints, in any process and on any machine."""
    text = json.dumps(_canonical(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
