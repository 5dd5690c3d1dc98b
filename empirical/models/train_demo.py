"""Train the demo network on scikit-learn's handwritten digits: ``python -m empirical.models.train_demo``.

Rebuilds ``empirical/models/weights/demo_digits.pt`` (and ``demo_digits.json`` beside it: held-out accuracy,
seed, sha256) deterministically on the CPU and prints the held-out accuracy. Inputs: the digits' 80% training
split, preprocessed as in ``empirical.storage.data.load_digits`` (x/16, bilinear 8x8 -> 32x32, grey to 3
channels, [0, 1]).
Recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4, batch 64, one-cycle learning rate (peak 0.1),
random shifts of up to 2 pixels as augmentation; everything random comes from one seeded ``torch.Generator``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
from torch import nn
from tqdm.auto import tqdm

from empirical.models import DEMO_WEIGHTS_PATH, DemoResNet, weights_checksum
from empirical.storage.data import DIGITS_SPLIT_SEED, load_digits
from empirical.storage.progress import EstimatedBar
from theory.cli_options import add_no_progress, add_out, add_seed, default_help, positive_int

DEFAULT_SEED = 0
DEFAULT_EPOCHS = 8


def initialise(model: nn.Module, *, rng: torch.Generator) -> None:
    """Re-initialise from ``rng``: Kaiming-normal convs, uniform(+-1/sqrt(fan_in)) linear, unit batch-norm."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=rng)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.in_features)
            nn.init.uniform_(module.weight, -bound, bound, generator=rng)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            module.reset_parameters()
            module.reset_running_stats()


def shift(images: torch.Tensor, max_shift: int, *, rng: torch.Generator) -> torch.Tensor:
    """Each image shifted by a random integer offset in [-max_shift, max_shift]^2, zero (background) fill."""
    n, _, h, w = images.shape
    padded = nn.functional.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=rng)
    rows = (offsets[:, 0, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, 3, h, w)
    cols = (offsets[:, 1, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, 3, h, w)
    flat = padded.flatten(2)
    index = rows * padded.shape[-1] + cols
    return flat.gather(2, index.flatten(2)).view(n, 3, h, w)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` whose top class is the label (eval mode, no gradients)."""
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(batch).argmax(1) for batch in images.split(256)])
    return float((predicted == labels).float().mean())


def train(*, seed: int = DEFAULT_SEED, epochs: int = DEFAULT_EPOCHS, batch_size: int = 64,
          train_images: int | None = None, progress: bool = True) -> tuple[nn.Module, float]:
    """Train a fresh ``DemoResNet`` (on the first ``train_images`` of the training split, default all);
    returns (model in eval mode, held-out accuracy)."""
    rng = torch.Generator().manual_seed(seed)
    train_set, test_set = load_digits("train", train_images), load_digits("test")
    model = DemoResNet()
    initialise(model, rng=rng)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(train_set) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=0.1, epochs=epochs,
                                                   steps_per_epoch=steps_per_epoch)
    loss_function = nn.CrossEntropyLoss()
    # the estimate line comes from the first batch (its step kept), before the bar is drawn
    bar = EstimatedBar(epochs * steps_per_epoch, enabled=progress, unit="batch",
                       description=f"train demo ({epochs} epochs)")
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=rng)
        for batch in order.split(batch_size):
            inputs = shift(train_set.images[batch], 2, rng=rng)
            optimiser.zero_grad(set_to_none=True)
            loss = loss_function(model(inputs), train_set.labels[batch])
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.update(1)
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, held-out accuracy "
                       f"{accuracy(model, test_set.images, test_set.labels):.4f}")
    bar.close()
    return model.eval(), accuracy(model, test_set.images, test_set.labels)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m empirical.models.train_demo``."""
    parser = argparse.ArgumentParser(prog="python -m empirical.models.train_demo",
                                     description=__doc__.splitlines()[0].split(": ")[0] + ".")
    add_seed(parser, "training seed", DEFAULT_SEED)
    parser.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS, metavar="N",
                        help=default_help("training epochs", DEFAULT_EPOCHS))
    add_out(parser, "weights file to write (a .json of the same name beside it)", DEMO_WEIGHTS_PATH,
            shown="the packaged demo weights", metavar="FILE")
    add_no_progress(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # determinism: one thread (thread count changes float summation order), deterministic kernels; set here,
    # in the script only, and restored afterwards for callers that import train()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        model, held_out = train(seed=args.seed, epochs=args.epochs, progress=not args.no_progress)
        elapsed, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}
    torch.save(state, args.out)
    record = {"held_out_accuracy": round(held_out, 6), "held_out_images": len(load_digits("test")),
              "seed": args.seed, "epochs": args.epochs, "split_seed": DIGITS_SPLIT_SEED,
              "sha256": weights_checksum(args.out), "torch": torch.__version__,
              "train_seconds": round(elapsed, 1), "train_cpu_seconds": round(cpu_seconds, 1),
              "preprocessing": "x/16, bilinear 8x8->32x32, grey to 3 channels, range [0, 1], no mean/std"}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"held-out accuracy {held_out:.4f} ({record['held_out_images']} images); wrote {args.out} "
          f"(sha256 {record['sha256'][:16]}..., {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
