"""Local git repositories for instance-image builds: one bare mirror per repository, cloned once and
reused for every task of it (SWE-bench Lite's 114 django tasks share one clone).

``--repo-mirror DIR`` points at existing mirrors (air-gapped sites keep them next to their images);
otherwise a mirror is cloned into the cache on first use. The bundled suite's repositories are
replayed from their patch series instead (harness/suite.py).
"""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.config import cache_dir
from harness.suite import OWNER as SUITE_OWNER, materialize

DEFAULT_CLONE_URL = "https://github.com/{repo}.git"


def layouts(repo: str) -> list[str]:
    """Names a mirror of ``repo`` ("owner/name") may have under a mirror folder, in the order tried."""
    owner, _, name = repo.partition("/")
    return [f"{owner}__{name}.git", f"{owner}/{name}.git", f"{name}.git", f"{owner}__{name}", f"{owner}/{name}"]


def _is_git(path: Path) -> bool:
    if not path.is_dir():
        return False
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "--git-dir"], capture_output=True, text=True)
    return done.returncode == 0


class Mirrors:
    """Maps a task's ``repo`` to a local git repository holding its commits (an ImageBuilder locator)."""

    def __init__(self, dirs: Sequence[Path] = (), *, cache: Path | None = None,
                 clone_url: str | None = DEFAULT_CLONE_URL, suite: Callable[[str], Path] = materialize):
        self.dirs = [Path(d).expanduser() for d in dirs]
        self.cache = cache or cache_dir() / "mirrors"
        self.clone_url = clone_url
        self.suite = suite

    def __call__(self, repo: str) -> Path:
        if repo.startswith(f"{SUITE_OWNER}/"):
            return self.suite(repo)
        if "/" not in repo:
            raise ValueError(f"repo {repo!r} is not owner/name")
        for folder in self.dirs:
            for layout in layouts(repo):
                if _is_git(folder / layout):
                    return folder / layout
        target = self.cache / layouts(repo)[0]
        self.cache.mkdir(parents=True, exist_ok=True)
        # One clone per repository even when several builds (or commands) want it at once.
        with open(self.cache / f".{layouts(repo)[0]}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _is_git(target):
                return target
            searched = ", ".join(str(d) for d in self.dirs) or "no --repo-mirror folders"
            if not self.clone_url:
                raise FileNotFoundError(f"no mirror of {repo} (searched {searched} for {' or '.join(layouts(repo))})")
            url = self.clone_url.format(repo=repo)
            partial = target.with_name(target.name + ".partial")
            subprocess.run(["rm", "-rf", str(partial)], check=False)
            done = subprocess.run(["git", "clone", "-q", "--mirror", url, str(partial)], capture_output=True, text=True)
            if done.returncode != 0:
                subprocess.run(["rm", "-rf", str(partial)], check=False)
                raise FileNotFoundError(f"no mirror of {repo} (searched {searched}), and cloning {url} failed: "
                                        f"{done.stderr.strip()[-300:]}")
            partial.rename(target)
            return target
