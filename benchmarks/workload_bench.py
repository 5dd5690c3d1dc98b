"""``python -m benchmarks workload``: the whole seed workload end to end against the floor of its passes.

The run is ``python -m empirical all`` under a ``bench``-like profile (random weights, random inputs): the
networks, every method of the ``imagenet`` profile, faithfulness at both patch sizes with 30 steps, the
top-down schedules with every measure, both normalisations and their noise floors, and activation
statistics. Its wall time is set beside the **floor**: the network passes that work cannot avoid, counted
from the schedules and methods and priced by timing one pass of each kind on one batch in the same process
(forward; forward + input gradient for gradient-type methods, and for each path image of integrated
gradients at the width of its passes; forward passes of perturbed images at 4 batches a pass; a Zennit
``EpsilonPlusFlat`` attribution for the LRP methods; nothing for the random control):

- randomisation, per network and batch: a forward pass for the explained classes, then for every method one
  map of the original model and one per schedule step;
- faithfulness, per network, batch and method: a forward pass for the classes, one map, and
  ``patch sizes x (steps + 1)`` forward passes, priced at 4 batches a pass as the experiment sends them;
- activation statistics, per network and batch: one forward pass.

Sizes: ``tiny`` (the test: the demo network stands in for the three, 32x32, 2 images, the demo's patches 2
and 4), ``small`` (CPU: the three networks at 96x96, the smallest side holding 30 patches of 15; 2 images),
``full`` (GPU: 224x224, 1000 images a network, batch 64). Integrated gradients in the randomisation stage
takes the size's steps (50 at ``full``); faithfulness always uses the method's default 50.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import shutil
import sys
import time
from pathlib import Path

import torch

from theory.cli_options import add_device, add_no_progress, add_out, default_help, positive_int

__all__ = ["WORKLOAD_SIZES", "main", "run_workload"]

_NETWORKS = ("resnet50", "densenet121", "efficientnet-b0")
WORKLOAD_SIZES = {
    "tiny": dict(models=("demo",), image_size=32, images=2, batch_size=2, ig_steps=4),
    "small": dict(models=_NETWORKS, image_size=96, images=2, batch_size=2, ig_steps=8),
    "full": dict(models=_NETWORKS, image_size=224, images=1000, batch_size=64, ig_steps=50),
}
_GRADIENT_METHODS = ("gradient", "gradient-mean", "gradient-x-input", "guided-backprop")
_DEFAULT_IG_STEPS = 50


def _profile(size: dict):
    from empirical.run.profiles import PROFILES

    options = {"attribution_options": {"integrated-gradients": {"steps": size["ig_steps"]}}}
    return dataclasses.replace(PROFILES["bench"], models=size["models"], allowed_models=size["models"],
                               methods=PROFILES["imagenet"].methods, images=size["images"],
                               batch_size=size["batch_size"], image_size=size["image_size"],
                               randomization=options)


def _unit_seconds(name: str, *, batch_size: int, image_size: int, device: str, repeats: int,
                  ig_steps=(_DEFAULT_IG_STEPS,)) -> dict:
    """Median seconds of one pass of each kind on one batch: forward, forward+input-gradient, Zennit
    EpsilonPlusFlat (benchmarks.floors); and of one image's share of a forward pass of 4 batches."""
    from benchmarks.floors import floor_callable
    from benchmarks.timing import measure
    from benchmarks.workload import make_workload

    workload = make_workload(name, batch_size=batch_size, image_size=image_size, device=device)
    unit = {kind: measure(floor_callable(kind, workload), items_per_call=batch_size, device=device,
                          warmup=1, repeats=repeats).median_s
            for kind in ("forward", "forward+input-gradient")}
    lrp = floor_callable("zennit-epsilon-plus-flat", workload)
    if name == "densenet121":  # Zennit's batch-norm merge breaks DenseNet (it has no canonizer): rules alone
        from zennit.composites import EpsilonPlusFlat

        from benchmarks.floors import zennit_attribution

        lrp = zennit_attribution(workload, lambda canonizers: EpsilonPlusFlat())
    unit["zennit-epsilon-plus-flat"] = measure(lrp, items_per_call=batch_size, device=device, warmup=1,
                                               repeats=repeats).median_s
    # faithfulness sends its perturbed images through the network 4 batches at a time (forward_batch_size)
    wide = make_workload(name, batch_size=4 * batch_size, image_size=image_size, device=device)
    unit["forward a perturbed image"] = measure(floor_callable("forward", wide), items_per_call=1,
                                                device=device, warmup=1, repeats=repeats).median_s / (
        4 * batch_size)
    # integrated gradients runs its N * steps path images in passes of up to 256 (steps_per_pass)
    for steps in sorted(set(ig_steps)):
        width = min(steps, max(1, 256 // batch_size)) * batch_size
        path = make_workload(name, batch_size=width, image_size=image_size, device=device)
        unit[f"input-gradient of a path image, {steps} steps"] = measure(
            floor_callable("forward+input-gradient", path), items_per_call=1, device=device, warmup=1,
            repeats=repeats).median_s / width
    return unit


def _map_seconds(method: str, unit: dict, ig_steps: int) -> float:
    if method == "random-uniform":
        return 0.0
    if method == "integrated-gradients":
        return ig_steps * unit["batch_size"] * unit[f"input-gradient of a path image, {ig_steps} steps"]
    if method in _GRADIENT_METHODS:
        return unit["forward+input-gradient"]
    return unit["zennit-epsilon-plus-flat"]  # the LRP rules and composites


def floor_seconds(profile, name: str, unit: dict, *, steps: int) -> dict:
    """Seconds of the unavoidable passes of each experiment for network ``name`` (``steps``: its
    top-down schedule length), from the per-batch ``unit`` times."""
    batches = math.ceil(profile.images / profile.batch_size)
    ig_steps = profile.randomization["attribution_options"]["integrated-gradients"]["steps"]
    faithfulness = profile.options("faithfulness", name)
    perturbed = (len(faithfulness["patch_sizes"]) * (faithfulness["steps"] + 1) * profile.batch_size
                 * unit["forward a perturbed image"])
    return {
        "randomization": batches * (unit["forward"] + sum(
            (1 + steps) * _map_seconds(m, unit, ig_steps) for m in profile.methods)),
        "faithfulness": batches * sum(unit["forward"] + _map_seconds(m, unit, _DEFAULT_IG_STEPS) + perturbed
                                      for m in profile.methods),
        "activations": batches * unit["forward"],
    }


def _schedule_length(name: str) -> int:
    from empirical.experiments.randomization import block_rule_schedule
    from empirical.models import build_model

    return len(block_rule_schedule(build_model(name), name))


def run_workload(size: str = "tiny", *, device: str = "cpu", out: Path, images: int | None = None,
                 repeats: int = 3, progress: bool = True) -> dict:
    """Run the workload of ``size`` into ``out/run`` (replaced) and return the measurements: per stage the
    wall and floor seconds, their ratio and images per second, the totals, peak host and GPU memory.
    ``out/workload-stages.json`` holds the stages measured so far after each one."""
    from empirical.run.runner import run

    if size not in WORKLOAD_SIZES:
        raise ValueError(f"--size must be one of {', '.join(WORKLOAD_SIZES)}, got {size!r}")
    chosen = dict(WORKLOAD_SIZES[size])
    if images is not None:
        if images < 1:
            raise ValueError(f"--images must be a positive integer, got {images}")
        chosen["images"] = images
        chosen["batch_size"] = min(chosen["batch_size"], images)  # the floor is priced at the batch run
    profile = _profile(chosen)
    folder = Path(out) / "run"
    shutil.rmtree(folder, ignore_errors=True)  # chunks of an earlier run would be skipped, not timed
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    floors = {"randomization": 0.0, "faithfulness": 0.0, "activations": 0.0}
    for name in profile.models:
        unit = _unit_seconds(name, batch_size=profile.batch_size, image_size=profile.image_size,
                             device=device, repeats=repeats, ig_steps=(chosen["ig_steps"], _DEFAULT_IG_STEPS))
        unit["batch_size"] = profile.batch_size
        for stage, seconds in floor_seconds(profile, name, unit, steps=_schedule_length(name)).items():
            floors[stage] += seconds
    # the estimate, as a line before the stages: the floor is the least the run can take (its unavoidable
    # passes at the per-batch times just measured); the stages' bars follow
    from empirical.storage.progress import duration_text

    print(f"workload {size}: estimated time at least {duration_text(sum(floors.values()))} for "
          f"{profile.images:,} images a network on {len(profile.models)} networks (the floor of its passes; "
          "the wall/floor ratio at the end says how far above it the run came); Ctrl-C stops",
          file=sys.stderr, flush=True)
    stages = {}
    for stage in floors:
        started = time.perf_counter()
        run([stage], profile=profile, out=folder, device=device, progress=progress)
        wall = time.perf_counter() - started
        work = profile.images * len(profile.models)
        stages[stage] = {"wall_s": wall, "floor_s": floors[stage],
                         "ratio_to_floor": wall / floors[stage], "images_per_s": work / wall}
        # each stage as it ends, so that an interrupted run keeps what it measured
        (Path(out) / "workload-stages.json").write_text(json.dumps(stages, indent=2) + "\n")
    wall, floor = sum(s["wall_s"] for s in stages.values()), sum(floors.values())
    return {"size": size, "device": device, "models": list(profile.models), "images": profile.images,
            "image_size": profile.image_size, "batch_size": profile.batch_size,
            "methods": list(profile.methods), "stages": stages, "wall_s": wall, "floor_s": floor,
            "ratio_to_floor": wall / floor,
            "peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
                            else None)}


def format_result(result: dict) -> str:
    """The printed table: one line per stage and the total."""
    lines = [f"# workload {result['size']}: {', '.join(result['models'])} on {result['device']}, "
             f"{result['images']} images a network at {result['image_size']}x{result['image_size']}, "
             f"batch {result['batch_size']}, {len(result['methods'])} methods (random weights and inputs)",
             f"{'stage':<15}{'wall s':>10}{'floor s':>10}{'wall/floor':>12}{'images/s':>10}"]
    for stage, row in result["stages"].items():
        lines.append(f"{stage:<15}{row['wall_s']:>10.2f}{row['floor_s']:>10.2f}{row['ratio_to_floor']:>12.2f}"
                     f"{row['images_per_s']:>10.3f}")
    lines.append(f"{'total':<15}{result['wall_s']:>10.2f}{result['floor_s']:>10.2f}"
                 f"{result['ratio_to_floor']:>12.2f}")
    gpu = "n/a" if result["peak_gpu_mb"] is None else f"{result['peak_gpu_mb']:.0f} MB"
    lines.append(f"peak host memory {result['peak_host_mb']:.0f} MB, peak GPU memory {gpu}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks workload``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks workload",
                                     description="The whole seed workload against the floor of its passes.")
    parser.add_argument("--size", choices=tuple(WORKLOAD_SIZES), default="tiny",
                        help=default_help("tiny: the test (seconds); small: the three networks at 96x96 on a "
                                          "CPU; full: 224x224, 1000 images a network, for a GPU", "tiny"))
    add_device(parser)
    parser.add_argument("--images", type=positive_int, default=None, metavar="N",
                        help=default_help("images a network", "the size's"))
    parser.add_argument("--repeats", type=positive_int, default=3, metavar="N",
                        help=default_help("timings of each floor pass", 3))
    add_out(parser, "folder for the run and workload.json", Path("results/workload"))
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help=default_help("torch CPU threads; 1 is steadier on a shared machine, where more "
                                          "threads than idle cores spin and slow small passes a hundredfold",
                                          "torch's own"))
    add_no_progress(parser)
    return parser


def main(argv=None) -> int:
    """``python -m benchmarks workload ...``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        result = run_workload(args.size, device=args.device, out=args.out, images=args.images,
                              repeats=args.repeats, progress=not args.no_progress)
    except ValueError as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished chunks are in {args.out / 'run'}", file=sys.stderr)
        return 130
    print(format_result(result))
    (args.out / "workload.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {args.out / 'workload.json'}")
    return 0
