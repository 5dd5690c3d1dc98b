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

from empirical._checks import MAX_SEED
from empirical.run.profiles import PROFILES
from empirical.storage.tables import EXPERIMENTS

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


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m empirical``."""
    main = argparse.ArgumentParser(
        prog="python -m empirical", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Model-randomisation and faithfulness experiments on real networks (seed A.1, H, I, J).")
    main.add_argument("experiment", choices=(*EXPERIMENTS, "all"),
                      help="which experiment to run (faithfulness_lerf: least relevant first; rewards: "
                           "every test on noisy variants of each method; 'all': every one)")
    main.add_argument("--profile", default="demo", choices=tuple(PROFILES),
                      help="run profile (default: demo)")
    main.add_argument("--model", nargs="+", dest="models", metavar="M",
                      help="networks to use (default: the profile's)")
    main.add_argument("--methods", nargs="+", metavar="METHOD",
                      help="attribution methods (default: the profile's; see empirical.attribution)")
    main.add_argument("--images", type=int, metavar="N", help="number of images (default: the profile's)")
    main.add_argument("--data", type=Path, metavar="DIR",
                      help="ImageNet validation folder (imagenet profile), COCO or VOC folder (coco, voc)")
    main.add_argument("--weights", nargs="+", metavar="W",
                      help="'random', a weights file (one model), or MODEL=PATH for each model "
                           "(default: packaged demo weights, or the torch hub cache)")
    main.add_argument("--device", default="cpu", help="cpu or cuda[:index] (default: cpu)")
    main.add_argument("--batch-size", type=int, metavar="B", help="images per batch (default: the profile's)")
    main.add_argument("--out", type=Path, help="output folder (default: runs/empirical-<profile>)")
    main.add_argument("--seed", type=_seed, default=0, metavar="SEED",
                      help=f"seed of every random draw, 0 to {MAX_SEED} (default: 0)")
    main.add_argument("--workers", type=int, metavar="W",
                      help="processes decoding images (default: min(8, CPUs - 1); 0: in the main process)")
    main.add_argument("--quiet", action="store_true", help="no progress bars")
    return main


def _seed(text: str) -> int:
    """``--seed``: an integer 0..MAX_SEED, else an argparse error naming the value (exit code 2)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED} (2**32 - 1), got {text}")
    return seed


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
    args = parser().parse_args(argv)
    # imported once the arguments are parsed, so that --help and usage errors do not wait for torch
    import torch

    from empirical.run.runner import run

    out = args.out or Path("runs") / f"empirical-{args.profile}"
    try:
        if args.profile == "bench":
            print("bench profile: random weights and inputs; the numbers measure speed only", file=sys.stderr)
        folder = run(args.experiment, profile=args.profile, out=out, models=args.models, methods=args.methods,
                     images=args.images, data=args.data, weights=_weights(args.weights), device=args.device,
                     batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
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
