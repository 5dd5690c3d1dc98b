"""The command-line convention every entry point of the project follows (standard library only).

- The same option has the same name and the same check everywhere: ``--seed`` (an integer from 0 to
  2**32 - 1), ``--out`` (a path), ``--device`` (cpu, cuda or cuda:N), sizes such as ``--images``,
  ``--batch-size``, ``--epochs``, ``--draws`` (positive integers), ``--no-progress`` (no progress bars).
- A bad value is an argparse error raised by the option's ``type``, so that the message names the option
  and the value: ``prog: error: argument --seed: must be an integer from 0 to 4294967295, got '-1'`` and
  exit status 2, no traceback.
- Every help line of an option that takes a value ends with its default, written ``(default: X)``
  (:func:`default_help`); flags say nothing about a default.

It lives in ``theory`` because that is the one package every command's package may import (simulations
and empirical do not import each other); it is standard library only, like the rest of ``theory`` free of
torch and randomness, and not part of ``theory``'s closed forms (``help(theory)`` does not list it).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = ["add_device", "add_no_progress", "add_out", "add_seed", "default_help", "device", "int_at_least",
           "non_negative_int", "positive_float", "positive_int", "seed"]

_SEED_LIMIT = 2**32 - 1  # the runs derive 64-bit torch seeds from the seed (e.g. seed * 1_000_003 + image)
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def _integer(text: str, minimum: int, maximum: int | None = None) -> int:
    if maximum is not None:
        wanted = f"an integer from {minimum} to {maximum}"
    else:
        names = {0: "a non-negative integer", 1: "a positive integer"}
        wanted = names.get(minimum, f"an integer >= {minimum}")
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


def seed(text: str) -> int:
    """argparse type of ``--seed``: an integer from 0 to 2**32 - 1."""
    return _integer(text, 0, _SEED_LIMIT)


def positive_int(text: str) -> int:
    """argparse type of a size (``--images``, ``--batch-size``, ``--epochs``, ``--draws``, ...)."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type of a count that may be 0 (``--workers``)."""
    return _integer(text, 0)


def int_at_least(minimum: int):
    """argparse type of an integer >= ``minimum``."""

    def check(text: str) -> int:
        return _integer(text, minimum)

    check.__name__ = f"int_at_least_{minimum}"
    return check


def positive_float(text: str) -> float:
    """argparse type of a positive finite number (``--lr``)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def device(text: str) -> str:
    """argparse type of ``--device``: cpu, cuda or cuda:N (CUDA itself is checked where it is used)."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return text


def default_help(text: str, default) -> str:
    """``text (default: default)``: the one way a help line states its default."""
    return f"{text} (default: {default})"


def add_seed(parser: argparse.ArgumentParser, what: str = "seed of every random draw", default: int = 0):
    """``--seed SEED``: an integer from 0 to 2**32 - 1."""
    return parser.add_argument("--seed", type=seed, default=default, metavar="SEED",
                               help=default_help(f"{what}, 0 to {_SEED_LIMIT}", default))


def add_out(parser: argparse.ArgumentParser, what: str, default=None, *, shown=None, required: bool = False,
            metavar: str = "DIR"):
    """``--out DIR`` (a path); ``shown``: how the help writes the default (``default`` itself if None)."""
    help_text = what if required else default_help(what, default if shown is None else shown)
    return parser.add_argument("--out", type=Path, default=default, required=required, metavar=metavar,
                               help=help_text)


def add_device(parser: argparse.ArgumentParser, default: str = "cpu", *, what: str = "where to run"):
    """``--device DEVICE``: cpu, cuda or cuda:N."""
    return parser.add_argument("--device", type=device, default=default, metavar="DEVICE",
                               help=default_help(f"{what}: cpu, cuda or cuda:N", default))


def add_no_progress(parser: argparse.ArgumentParser, *, quiet_alias: bool = False):
    """``--no-progress`` (``args.no_progress``); ``quiet_alias``: ``--quiet`` too, the older spelling,
    left out of the help."""
    parser.add_argument("--no-progress", dest="no_progress", action="store_true",
                        help="hide the progress bars")
    if quiet_alias:
        parser.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)
