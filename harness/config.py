"""Where monkeys keeps things on this host: caches (replayed repositories, build logs) and runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$MONKEYS_CACHE, else $XDG_CACHE_HOME/monkeys, else ~/.cache/monkeys."""
    if os.environ.get("MONKEYS_CACHE"):
        return Path(os.environ["MONKEYS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "monkeys"


def runs_dir() -> Path:
    """$MONKEYS_RUNS, else ./runs."""
    return Path(os.environ.get("MONKEYS_RUNS") or "runs")
