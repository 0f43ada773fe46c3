"""What the command lines share: one-line argument errors (exit 2) and the parsers of seeds, counts and seconds."""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Callable


class BadArgument(Exception):
    """A command-line argument that cannot be used: one line, exit status 2, before anything runs."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors raise BadArgument (the caller prints one line) instead of printing usage and exiting."""

    def error(self, message):
        raise BadArgument(message)


def _number(cast: Callable, ok: Callable, need: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            x = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {need}") from None
        if not ok(x):
            raise argparse.ArgumentTypeError(f"{text} is out of range: {need}")
        return x
    return parse


nonnegative_int = _number(int, lambda x: x >= 0, "an integer >= 0")
positive_int = _number(int, lambda x: x >= 1, "an integer >= 1")
positive_seconds = _number(float, lambda x: x > 0 and math.isfinite(x), "a finite number of seconds > 0")


def seed_list(text: str) -> list[int]:
    """'0-9', '3' or '0,2,5-7' -> sorted distinct seeds >= 0."""
    seeds: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(lo), int(lo))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a seed list (e.g. 0-9 or 0,3,5)") from None
        if a < 0 or b < a:
            raise argparse.ArgumentTypeError(f"{text!r}: seeds are integers >= 0 and ranges go upward")
        seeds.update(range(a, b + 1))
    return sorted(seeds)


def check_out(out: Path) -> None:
    """The --out folder exists or can be made, and a file can be written there (else BadArgument)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise BadArgument(f"argument --out: cannot write to {str(out)!r} ({exc.strerror or exc})") from None
