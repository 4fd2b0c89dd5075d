"""Where monkeys keeps things on this host: caches (replayed repositories, build logs) and runs."""

from __future__ import annotations

import os
from importlib import resources
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


def images_data(*parts: str) -> Path:
    """A file or folder of the ``images`` package's data: the Dockerfile templates (``env``) and the
    bundled suite (``suite``). Through importlib.resources, because the harness reads images' data,
    never its code."""
    return Path(str(resources.files("images").joinpath(*parts)))
