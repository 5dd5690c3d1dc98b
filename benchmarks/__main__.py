"""``python -m benchmarks``: throughput of every stage against its floor (and the peers), one table.

Examples::

    python -m benchmarks --size small                       # CPU, under two minutes on two cores
    python -m benchmarks --device cuda --size full --with-peers
    python -m benchmarks --device cuda --check-only         # CUDA against CPU on a few images, no timing
    python -m benchmarks report-load --busy 2               # the report's time idle and under load
    python -m benchmarks workload --size tiny               # the whole seed workload against its floor
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.config import MODELS, SIZES, make_config
from theory.cli_options import add_device, add_no_progress, add_out, add_seed, default_help, positive_int


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Images per second of each stage (attribution methods, faithfulness, one randomisation "
                    "step, activation statistics) against the network passes it cannot avoid, measured in "
                    "the same process; with --with-peers, the same work done by Quantus, Captum and Zennit.")
    add_device(parser)
    parser.add_argument("--model", choices=MODELS, default=None,
                        help=default_help("network, random weights",
                                          "demo for tiny and small, resnet50 for full"))
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                        help=default_help("images a batch", "the size's"))
    parser.add_argument("--size", choices=SIZES, default="small",
                        help=default_help("tiny: seconds (the harness's test); small: CPU, under two "
                                          "minutes; full: 224x224 at batch 128, for a GPU", "small"))
    parser.add_argument("--with-peers", action="store_true", help="also time Quantus, Captum and Zennit")
    add_seed(parser, "seed of the random weights and images")
    add_out(parser, "folder for benchmarks.csv and benchmarks.json", Path("results/benchmarks"))
    parser.add_argument("--check-cuda", action="store_true",
                        help="first compare CUDA results with the CPU on a few images (needs --device cuda)")
    parser.add_argument("--check-only", action="store_true", help="run the CUDA check and stop")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help=default_help("torch CPU threads; 1 is steadier on a shared machine",
                                          "torch's own"))
    add_no_progress(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report-load"]:  # the report's time idle and beside busy processes
        from benchmarks.report_under_load import main as report_load_main

        return report_load_main(argv[1:])
    if argv[:1] == ["workload"]:  # the end-to-end seed workload against its floor (benchmarks.workload_bench)
        from benchmarks.workload_bench import main as workload_main

        return workload_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = make_config(args.size, device=args.device, model=args.model, batch_size=args.batch_size,
                             with_peers=args.with_peers, seed=args.seed)
        if (args.check_cuda or args.check_only) and not args.device.startswith("cuda"):
            raise ValueError("--check-cuda and --check-only need --device cuda")
        if args.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"argument --device: {args.device} given but torch.cuda.is_available() is "
                                 "False on this machine")
    except ValueError as error:
        parser.error(str(error))  # one message, exit code 2

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    # the harness modules load torch and the networks: imported once the arguments are known to be good
    if args.check_cuda or args.check_only:
        from benchmarks.cuda_check import check_cuda_against_cpu, format_checks

        checks = check_cuda_against_cpu(config.model, seed=config.seed, device=config.device)
        print(format_checks(checks))
        failed = checks[checks["status"] == "mismatch"]
        if len(failed) or args.check_only:
            return 1 if len(failed) else 0

    from benchmarks.harness import run_benchmarks
    from benchmarks.table import format_table

    try:
        frame = run_benchmarks(config, out=args.out, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the rows measured so far are in {args.out / 'benchmarks.csv'}",
              file=sys.stderr)
        return 130
    except OSError as error:  # an unwritable or full --out
        print(f"python -m benchmarks: error: cannot write to {args.out}: {error}", file=sys.stderr)
        return 2
    print(f"# {config.model}, {config.device}, size {config.size}: batch {config.batch_size}, "
          f"{config.image_size}x{config.image_size}, median of {config.repeats}")
    print(format_table(frame))
    print(f"\nwritten: {args.out / 'benchmarks.csv'}, benchmarks.json and benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
