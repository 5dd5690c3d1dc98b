"""``python -m reports``: theory, Monte Carlo and the demo network side by side in one report.

Exit status 0 on success, 2 on bad input (one message, no traceback), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import errno
import sys
import time
from pathlib import Path

from reports.build import build_report, staging_folder
from theory.cli_options import add_no_progress, add_out, add_seed, default_help


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m reports``."""
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
        help=default_help(
            "build from an earlier run: a report folder or a bare empirical run folder (manifest.json at "
            "its top, e.g. an imagenet run made on a GPU); what is there is reused, missing simulations are "
            "computed",
            "run everything",
        ),
    )
    cli.add_argument(
        "--from-multilabel",
        dest="multilabel_source",
        type=Path,
        default=None,
        metavar="DIR",
        help=default_help(
            "the multi-label section from this run of the demo-multilabel, coco or voc profile",
            "the empirical-multilabel folder of a --from report, else the demo-multilabel profile is run",
        ),
    )
    cli.add_argument(
        "--no-multilabel",
        dest="multilabel",
        action="store_false",
        help="leave the multi-label section out: no fine-tuning and no multi-label run (without it, a "
        "fine-tuned demo found in --out or beside the --from run, with the same seed and fine-tuning "
        "settings, is reused rather than refitted)",
    )
    add_out(cli, "where to write the report", Path("results"))
    add_seed(cli, "seed of every random stream")
    cli.add_argument(
        "--quick",
        action="store_true",
        help="small draws, a couple of images and methods: a first look in about a minute",
    )
    add_no_progress(cli)
    return cli


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        path = build_report(
            arguments.out,
            source=arguments.source,
            multilabel_source=arguments.multilabel_source,
            seed=arguments.seed,
            quick=arguments.quick,
            progress=not arguments.no_progress,
            multilabel=arguments.multilabel,
        )
    except ValueError as error:
        print(f"python -m reports: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"python -m reports: error: {_write_failure(error, arguments.out)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"python -m reports: interrupted; {arguments.out} is as it was, and the empirical run's finished "
            f"chunks are kept in {staging_folder(arguments.out.absolute())}: the same command resumes "
            "from them",
            file=sys.stderr,
        )
        return 130
    print(f"report written to {path} and {path.with_suffix('.md')} in {time.perf_counter() - started:.0f} s")
    return 0


def _write_failure(error: OSError, out: Path) -> str:
    """One sentence for an OSError of writing the report: what failed, and that ``--out`` is unchanged."""
    what = "no space left on the device" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    where = f" ({error.filename})" if error.filename else ""
    return (f"--out {out}: writing the report failed: {what}{where}; any earlier report there is unchanged "
            "(the report is moved into place only when complete)")


if __name__ == "__main__":
    sys.exit(main())
