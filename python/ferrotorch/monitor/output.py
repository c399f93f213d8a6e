"""Where the monitor's lines go: stdout, unless ``FLODL_VERBOSITY`` silences them (read at each print)."""

from __future__ import annotations

import os
import sys


def verbosity() -> int:
    """floDl's output level from ``FLODL_VERBOSITY`` (0-4 or quiet/normal/verbose/debug/trace; default 1)."""
    raw = os.environ.get("FLODL_VERBOSITY", "").strip().lower()
    names = {"quiet": 0, "normal": 1, "verbose": 2, "debug": 3, "trace": 4}
    if raw in names:
        return names[raw]
    try:
        return max(0, min(4, int(raw)))
    except ValueError:
        return 1


def emit(line: str) -> None:
    """Prints ``line`` to stdout (floDl's ``msg!``) unless the verbosity is 0."""
    if verbosity() > 0:
        print(line, file=sys.stdout, flush=True)
