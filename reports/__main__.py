"""``python -m reports``: theory, Monte Carlo and the demo network side by side in one report.

Exit status 0 on success, 2 on bad input (one message, no traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reports.build import build_report


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m reports",
        description="Run the theory tables, the simulations and the empirical demo profile (or reuse an "
        "earlier run with --from) and write report.html, report.md, figures/ and tables/ under --out.",
    )
    cli.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        metavar="DIR",
        help="build from an earlier run instead: a report folder or a bare empirical run folder "
        "(manifest.json at its top, e.g. an imagenet run made on a GPU); what is there is reused, missing "
        "simulations are computed",
    )
    cli.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where to write the report (default: results)",
    )
    cli.add_argument("--seed", type=int, default=0, help="seed of every random stream (default: 0)")
    cli.add_argument(
        "--quick",
        action="store_true",
        help="small draws, a couple of images and methods: a first look in about a minute",
    )
    cli.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    return cli


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.seed < 0:
        parser().error(f"--seed must be a non-negative integer, got {arguments.seed}")
    started = time.perf_counter()
    try:
        path = build_report(
            arguments.out,
            source=arguments.source,
            seed=arguments.seed,
            quick=arguments.quick,
            progress=arguments.progress,
        )
    except ValueError as error:
        print(f"python -m reports: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"python -m reports: interrupted; finished chunks and tables are kept under {arguments.out}: "
            "the same command resumes the empirical run from its chunks",
            file=sys.stderr,
        )
        return 130
    print(f"report written to {path} and {path.with_suffix('.md')} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
