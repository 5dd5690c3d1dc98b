"""Command line: ``python -m empirical {randomization,faithfulness,activations,all} --profile P ...``, and
``python -m empirical finetune ...`` (the multi-label fine-tuning of seed A.3,
:func:`empirical.multilabel.cli.main`).

A thin wrapper over :func:`empirical.run.runner.run`; a user's mistake prints one message and exits with
code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from empirical.run.profiles import PROFILES
from empirical.storage.tables import EXPERIMENTS
from theory.cli_options import (
    add_device,
    add_no_progress,
    add_out,
    add_seed,
    default_help,
    non_negative_int,
    positive_int,
)

EPILOG = """\
fine-tuning (seed A.3):
  python -m empirical finetune --data coco|voc PATH --model M --out DIR   (its own --help)

profiles:
  demo      the demo network on held-out scikit-learn digits (CPU, minutes; the default)
  imagenet  ResNet-50, DenseNet-121, EfficientNet-B0 on 1000 ImageNet validation images
            (needs --data and pretrained weights)
  bench     random weights and inputs: throughput only, marked so in every output
  demo-multilabel  the demo network fine-tuned on multi-digit canvases (seed A.3, in the run folder; a
            resumed run does not refit), then the experiments on held-out canvases: the highest predicted
            label explained, its sigmoid as the faithfulness score
  coco, voc the three networks fine-tuned by `python -m empirical finetune` (--weights MODEL=best.pt) on the
            validation split of --data (COCO val2017, VOC val); top label, sigmoid score

A run killed midway resumes from its finished chunks when started again with the same arguments and --out.
Several processes: torchrun --nproc_per_node=K -m empirical all ... (gloo on the CPU, nccl with --device cuda,
one GPU a rank); the tables are byte-identical to a run in one process.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m empirical``."""
    main = argparse.ArgumentParser(
        prog="python -m empirical", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Model-randomisation and faithfulness experiments on real networks (seed A.1, H, I, J).")
    main.add_argument("experiment", choices=(*EXPERIMENTS, "all"),
                      help="which experiment to run (faithfulness_lerf: least relevant first; rewards: "
                           "every test on noisy variants of each method; 'all': every one)")
    main.add_argument("--profile", default="demo", choices=tuple(PROFILES),
                      help=default_help("run profile", "demo"))
    main.add_argument("--model", nargs="+", dest="models", metavar="M",
                      help=default_help("networks to use", "the profile's"))
    main.add_argument("--methods", nargs="+", metavar="METHOD",
                      help=default_help("attribution methods (see empirical.attribution)", "the profile's"))
    main.add_argument("--images", type=positive_int, metavar="N",
                      help=default_help("number of images", "the profile's"))
    main.add_argument("--data", type=Path, metavar="DIR",
                      help=default_help("ImageNet validation folder (imagenet profile), COCO or VOC folder "
                                        "(coco, voc)", "none; those profiles need it"))
    main.add_argument("--weights", nargs="+", metavar="W",
                      help=default_help("'random', a weights file (one model), or MODEL=PATH for each model",
                                        "packaged demo weights, or the torch hub cache"))
    add_device(main)
    main.add_argument("--batch-size", type=positive_int, metavar="B",
                      help=default_help("images per batch", "the profile's"))
    add_out(main, "output folder", shown="runs/empirical-<profile>")
    add_seed(main)
    main.add_argument("--workers", type=non_negative_int, metavar="W",
                      help=default_help("processes decoding images, 0: in the main process",
                                        "min(8, CPUs - 1)"))
    add_no_progress(main, quiet_alias=True)
    return main


def _weights(values):
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    pairs = {}
    for value in values:
        model, sep, path = value.partition("=")
        if not sep or not model or not path:
            raise ValueError(f"--weights: expected MODEL=PATH for several models, got {value!r}")
        pairs[model] = path
    return pairs


def main(argv=None) -> int:
    """Parse ``argv``, run, print where the tables are; returns the exit code. ``finetune ...`` goes to
    :func:`empirical.multilabel.cli.main`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["finetune"]:
        # imported only here, as the runner below: --help of the experiments should not wait for torch
        from empirical.multilabel.cli import main as finetune_main

        return finetune_main(argv[1:])
    args = build_parser().parse_args(argv)
    # imported once the arguments are parsed, so that --help and usage errors do not wait for torch
    import torch

    from empirical.run.runner import run

    out = args.out or Path("runs") / f"empirical-{args.profile}"
    try:
        if args.profile == "bench":
            print("bench profile: random weights and inputs; the numbers measure speed only", file=sys.stderr)
        folder = run(args.experiment, profile=args.profile, out=out, models=args.models, methods=args.methods,
                     images=args.images, data=args.data, weights=_weights(args.weights), device=args.device,
                     batch_size=args.batch_size, seed=args.seed, progress=not args.no_progress,
                     workers=args.workers)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as error:
        print(f"python -m empirical: error: {error}", file=sys.stderr)
        return 2
    except torch.cuda.OutOfMemoryError:
        size = args.batch_size or "default"
        print(f"python -m empirical: error: the GPU ran out of memory at --batch-size {size}; run again with "
              f"a smaller --batch-size (finished chunks in {out}/chunks are kept)", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, an unwritable folder: say so, keep the finished chunks
        print(f"python -m empirical: error: {error} (finished chunks are kept in {out}/chunks)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished chunks are kept in {out}/chunks; run the same command to resume",
              file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 wrote the tables and says so
        return 0
    written = sorted(p.name for p in folder.iterdir() if p.suffix in (".csv", ".npz"))
    print(f"wrote {', '.join(written)} and manifest.json to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
