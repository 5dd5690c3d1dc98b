"""The report's run time idle and under a competing load: ``python -m benchmarks report-load``.

Builds ``python -m reports`` (``--quick`` by default; ``--full`` for the default report) in a fresh folder
first on an otherwise idle machine, then again while ``--busy`` processes (default 2) spin on the CPU, and
prints both times and their ratio; the goal is a ratio of at most 3. ``--policy ACTIVE`` repeats the loaded
build with GNU OpenMP's spinning wait, the setting before thread counts followed the CPUs this process may
use, to show what the passive wait buys. A benchmark, not a test: its times depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from theory.cli_options import add_out, default_help, positive_int

ROOT = Path(__file__).resolve().parents[1]


def _spin() -> None:  # pragma: no cover - the competing load
    while True:
        pass


def build_seconds(*, quick: bool, environ: dict | None = None) -> float:
    """Seconds of one ``python -m reports`` in a fresh folder, start-up included."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "reports", "--out", folder, "--no-progress", *(["--quick"] * quick)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               **(environ or {})}
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def under_load(busy: int, function, *args, **kwargs):
    """``function(*args, **kwargs)`` while ``busy`` processes spin; they are stopped afterwards."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:
        time.sleep(0.5)
        return function(*args, **kwargs)
    finally:
        for process in spinners:
            process.terminate()
            process.join()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks report-load``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks report-load",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="the full report (python -m reports without --quick)")
    parser.add_argument("--busy", type=positive_int, default=2, metavar="N",
                        help=default_help("competing busy processes", 2))
    parser.add_argument("--policy", choices=("ACTIVE",), default=None,
                        help=default_help("also time the loaded build with OMP_WAIT_POLICY=ACTIVE (spinning "
                                          "OpenMP threads)", "no such build"))
    add_out(parser, "JSON file for the times", shown="print them only", metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quick = not args.full
    name = "python -m reports" + (" --quick" if quick else "")
    print(f"{name}: built idle, then beside {args.busy} busy processes, on {os.cpu_count()} CPUs "
          f"({len(os.sched_getaffinity(0))} usable); estimated time: {3 if args.policy else 2} builds, "
          "the loaded ones slower", file=sys.stderr)
    result = {"report": name, "busy": args.busy, "cpus": len(os.sched_getaffinity(0)),
              "load_before": os.getloadavg()[0]}
    result["idle_s"] = build_seconds(quick=quick)
    result["loaded_s"] = under_load(args.busy, build_seconds, quick=quick)
    if args.policy:
        result["loaded_active_wait_s"] = under_load(args.busy, build_seconds, quick=quick,
                                                    environ={"OMP_WAIT_POLICY": args.policy})
    result["ratio"] = result["loaded_s"] / result["idle_s"]
    print(f"{name}: idle {result['idle_s']:.1f} s, beside {args.busy} busy processes "
          f"{result['loaded_s']:.1f} s (ratio {result['ratio']:.2f}; goal <= 3)")
    if "loaded_active_wait_s" in result:
        print(f"  with OMP_WAIT_POLICY=ACTIVE beside them: {result['loaded_active_wait_s']:.1f} s")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
