"""The bundled task suite: replaying its repositories and deriving its rows.

Each repository is a patch series (``images/suite/repos/<name>/NNNN-*.patch``, as `git format-patch`
writes it) replayed with `git am` under a fixed committer and the patches' own dates, so every
commit hash, and so every task's base_commit, is the same on every machine; its tags
(``repos/<name>/tags.toml``) are made after, annotated ones at their commit's date. ``images/suite/tasks.toml``
says which commit fixes each task; the rows in ``images/suite/tasks.jsonl`` are derived from both
(`python -m harness.suite --write`), and a test checks that deriving again gives the same rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.config import cache_dir, images_data
from harness.parsers import TestStatus, parse_pytest
from harness.tasks import BUNDLED_NAME, parse_row

OWNER = BUNDLED_NAME
REPOS_DIR = images_data("suite", "repos")
DEFINITIONS = images_data("suite", "tasks.toml")
ROWS = images_data("suite", "tasks.jsonl")
ENV_RECIPE = {"python": "3.11", "packages": ["pytest==8.3.4"], "install": ""}
TEST_CMD = "pytest --no-header -rA --tb=no -p no:cacheprovider"
# Fixed identity and an isolated git config: the same commits on every machine.
GIT_ENV = {
    "GIT_COMMITTER_NAME": "Monkeys Suite",
    "GIT_COMMITTER_EMAIL": "suite@monkeys.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class SuiteError(RuntimeError):
    """The suite's own files are inconsistent; the message names the file and task."""


def _git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    if check and done.returncode != 0:
        raise SuiteError(f"git {' '.join(args[:3])} in {repo}: {done.stderr.strip()[-500:]}")
    return done.stdout


def repo_names() -> list[str]:
    """The bundled repositories, as ``monkeys-suite/<name>``."""
    return sorted(f"{OWNER}/{p.name}" for p in REPOS_DIR.iterdir() if p.is_dir())


def _patches(repo: str) -> list[Path]:
    owner, _, name = repo.partition("/")
    folder = REPOS_DIR / name
    if owner != OWNER or not folder.is_dir():
        raise KeyError(f"{repo} is not a bundled repository (have {', '.join(repo_names())})")
    patches = sorted(folder.glob("*.patch"))
    if not patches:
        raise SuiteError(f"{folder}: no patches")
    return patches


def _tags_file(repo: str) -> Path:
    return REPOS_DIR / repo.split("/")[1] / "tags.toml"


def tags(repo: str) -> dict[str, tuple[str, str]]:
    """A bundled repo's tags (``repos/<name>/tags.toml``): name -> (patch stem it marks, message;
    "" for a lightweight tag)."""
    path = _tags_file(repo)
    if not path.is_file():
        return {}
    stems = {p.stem for p in _patches(repo)}
    made = {}
    for name, spec in tomllib.loads(path.read_text()).get("tags", {}).items():
        if spec.get("at") not in stems:
            raise SuiteError(f"{path}: tag {name!r} is at {spec.get('at')!r}, which is not a patch of {repo}")
        made[name] = (spec["at"], spec.get("message", ""))
    return made


def _make_tags(repo: str, path: Path) -> None:
    """Tags made with fixed identities and dates, so an annotated tag's object hash is fixed too."""
    shas = commits_by_patch(repo, path)
    for name, (stem, message) in tags(repo).items():
        commit = shas[stem]
        if not message:
            _git(path, "tag", name, commit)
            continue
        date = _git(path, "show", "-s", "--format=%ct %cz", commit).strip()
        done = subprocess.run(["git", "-C", str(path), "tag", "-a", name, "-m", message, commit], capture_output=True,
                              text=True, env={**os.environ, **GIT_ENV, "GIT_COMMITTER_DATE": date})
        if done.returncode != 0:
            raise SuiteError(f"git tag {name} in {path}: {done.stderr.strip()[-500:]}")


def materialize(repo: str, root: Path | None = None) -> Path:
    """A local git repository for a bundled repo, replayed once per content of its patch series and tags."""
    patches = _patches(repo)
    tags_file = _tags_file(repo)
    tagged = tags_file.read_bytes() if tags_file.is_file() else b""
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in patches) + tagged).hexdigest()[:12]
    target = (root or cache_dir() / "suite-repos") / f"{repo.split('/')[1]}-{digest}"
    if (target / ".git" / "monkeys-complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _git(work, "init", "-q", "-b", "main")
        _git(work, "am", "-q", "--committer-date-is-author-date", *map(str, patches))
        _make_tags(repo, work)
        (work / ".git" / "monkeys-complete").write_text("\n".join(p.name for p in patches) + "\n")
        try:
            work.rename(target)
        except OSError:  # another process finished the same replay first
            if not (target / ".git" / "monkeys-complete").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def commits_by_patch(repo: str, path: Path) -> dict[str, str]:
    """Patch stem -> commit sha in a replayed repository (one commit per patch, in order)."""
    shas = _git(path, "rev-list", "--reverse", "HEAD").split()
    stems = [p.stem for p in _patches(repo)]
    if len(shas) != len(stems):
        raise SuiteError(f"{repo}: {len(stems)} patches replayed into {len(shas)} commits")
    return dict(zip(stems, shas))


# ---------------------------------------------------------------------------------------------
# Deriving the rows (a development step; the result is committed).


@dataclass
class _Runs:
    """Per-test outcomes over repeated pytest runs of one state."""

    passed: Counter
    seen: Counter
    runs: int

    def always_passed(self, test: str) -> bool:
        return self.passed[test] == self.runs

    def never_passed(self, test: str) -> bool:
        return self.passed[test] == 0


def _run_tests(checkout: Path, test_files: list[str], runs: int) -> _Runs:
    passed: Counter = Counter()
    seen: Counter = Counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    for _ in range(runs):
        cmd = [sys.executable, "-m", *TEST_CMD.split(), *test_files]
        done = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, env=env)
        for test, status in parse_pytest(done.stdout).items():
            seen[test] += 1
            passed[test] += status is TestStatus.PASSED
    return _Runs(passed, seen, runs)


def _diff(path: Path, base: str, fix: str, tests: bool) -> str:
    pathspec = ["--", "tests"] if tests else ["--", ".", ":(exclude)tests"]
    return _git(path, "diff", "--no-color", "--no-ext-diff", base, fix, *pathspec)


def _changed_test_files(test_patch: str) -> list[str]:
    return sorted({line[6:] for line in test_patch.splitlines() if line.startswith("+++ b/")})


def derive_rows(runs: int = 3) -> list[dict]:
    """Every task's SWE-bench row, with PASS_TO_PASS measured by running the tests on this host."""
    definitions = tomllib.loads(DEFINITIONS.read_text())["task"]
    repos: dict[str, Path] = {}
    rows = []
    for number, spec in enumerate(definitions, start=1):
        where = f"{DEFINITIONS}: task {number} ({spec.get('instance_id', '?')})"
        repo = spec["repo"]
        path = repos.setdefault(repo, materialize(repo))
        stems = commits_by_patch(repo, path)
        if spec["fix"] not in stems:
            raise SuiteError(f"{where}: fix {spec['fix']!r} is not a patch of {repo}")
        fix = stems[spec["fix"]]
        base = _git(path, "rev-parse", f"{fix}^").strip()
        patch, test_patch = _diff(path, base, fix, tests=False), _diff(path, base, fix, tests=True)
        if not patch or not test_patch:
            raise SuiteError(f"{where}: the fix commit must change both code and tests/")
        test_files = _changed_test_files(test_patch)
        fail_to_pass = list(spec["FAIL_TO_PASS"])
        flaky = spec.get("flaky")
        flaky_tests = set(flaky["tests"]) if flaky else set()
        with tempfile.TemporaryDirectory(prefix="monkeys-derive-") as tmp:
            checkout = Path(tmp) / "repo"
            subprocess.run(["git", "clone", "-q", str(path), str(checkout)], check=True, env={**os.environ, **GIT_ENV})
            _git(checkout, "checkout", "-q", fix)
            after = _run_tests(checkout, test_files, runs)
            _git(checkout, "checkout", "-q", base)
            _git(checkout, "checkout", "-q", fix, "--", "tests")  # base + test_patch
            before = _run_tests(checkout, test_files, runs)
        for test in fail_to_pass:
            if test in flaky_tests:
                continue
            if not before.never_passed(test) or not after.always_passed(test):
                raise SuiteError(
                    f"{where}: FAIL_TO_PASS {test} passed {before.passed[test]}/{runs} before the fix "
                    f"and {after.passed[test]}/{runs} after (want 0 and {runs})"
                )
        if flaky and not flaky["under_gold"] and flaky_tests & set(fail_to_pass):
            raise SuiteError(f"{where}: a test that flakes before the fix cannot be FAIL_TO_PASS")
        gold_flaky = flaky_tests if flaky and flaky["under_gold"] else set()
        pass_to_pass = sorted(
            t for t in after.seen
            if t not in fail_to_pass
            and (t in gold_flaky or (t not in flaky_tests and before.always_passed(t) and after.always_passed(t)))
        )
        created = _git(path, "show", "-s", "--format=%aI", fix).strip()
        row = {
            "instance_id": spec["instance_id"],
            "repo": repo,
            "base_commit": base,
            "patch": patch,
            "test_patch": test_patch,
            "problem_statement": spec["problem_statement"].strip() + "\n",
            "hints_text": spec.get("hints_text", "").strip(),
            "created_at": created,
            "version": spec["version"],
            "FAIL_TO_PASS": fail_to_pass,
            "PASS_TO_PASS": pass_to_pass,
            "environment_setup_commit": base,
            "env_recipe": ENV_RECIPE,
            "test_cmd": TEST_CMD,
            "log_parser": "pytest",
            "difficulty": spec["difficulty"],
        }
        if flaky:
            row["flaky"] = {k: flaky[k] for k in ("rate", "cause", "under_gold", "tests")}
        parse_row(row, str(DEFINITIONS), number)  # the loader must accept what we write
        rows.append(row)
    return rows


def rows_text(rows: list[dict]) -> str:
    """The JSONL text of the rows, byte-stable for the same rows."""
    return "".join(json.dumps(row, sort_keys=False, ensure_ascii=False) + "\n" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="Derive the bundled suite's rows from its repositories.")
    parser.add_argument("--write", action="store_true", help=f"write {ROWS} (default: compare with it)")
    parser.add_argument("--runs", type=int, default=3, help="pytest runs per state when measuring PASS_TO_PASS")
    args = parser.parse_args()
    text = rows_text(derive_rows(args.runs))
    if args.write:
        ROWS.write_text(text)
        print(f"wrote {ROWS}")
    elif ROWS.exists() and ROWS.read_text() == text:
        print(f"{ROWS} is up to date")
    else:
        sys.exit(f"{ROWS} differs from what the suite derives; run python -m harness.suite --write")


if __name__ == "__main__":
    main()
