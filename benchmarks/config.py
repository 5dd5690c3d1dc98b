"""Benchmark sizes and the configuration of one harness run.

``tiny`` exists for the harness's own test (seconds), ``small`` for a laptop or CI box (under two
minutes on two CPU cores), ``full`` for a GPU (224x224 at batch 128, the size of the H200 floors).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

MODELS = ("resnet50", "densenet121", "efficientnet-b0", "demo")


@dataclass(frozen=True)
class BenchConfig:
    """Everything a harness run depends on; ``asdict`` of it goes into the manifest."""

    size: str
    model: str
    device: str
    image_size: int
    batch_size: int
    warmup: int
    repeats: int
    ig_steps: int
    faithfulness_steps: int = 30
    patch_sizes: tuple[int, ...] = (8, 15)
    blur_kernel: int = 15
    peer_images: int = 2
    peer_warmup: int = 0
    with_peers: bool = False
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


_SIZES = {
    # tiny: every stage, but 4 perturbation steps (a 48x48 grid holds 9 patches of 15) so it takes seconds
    "tiny": dict(model="demo", image_size=48, batch_size=2, warmup=0, repeats=1, ig_steps=4,
                 faithfulness_steps=4, peer_images=2),
    # small and full: the paper's 30 steps; 96 is the first side >= 6 * 15 whose grid holds 30 patches of 15.
    # small uses the demo network (the suite's CPU profile): ResNet-50 at 96x96 takes about three times longer
    "small": dict(model="demo", image_size=96, batch_size=4, warmup=1, repeats=2, ig_steps=8,
                  peer_images=4),
    "full": dict(model="resnet50", image_size=224, batch_size=128, warmup=2, repeats=5, ig_steps=50,
                 peer_images=16, peer_warmup=1),
}
SIZES = tuple(_SIZES)


def make_config(size: str = "small", *, device: str = "cpu", model: str | None = None,
                batch_size: int | None = None, with_peers: bool = False, seed: int = 0) -> BenchConfig:
    """The :class:`BenchConfig` of a named size, with the command line's overrides applied."""
    if size not in _SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if model is not None and model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    config = BenchConfig(size=size, device=device, with_peers=with_peers, seed=seed, **_SIZES[size])
    if model is not None:
        config = replace(config, model=model)
    if batch_size is not None:
        config = replace(config, batch_size=batch_size)
    return config
