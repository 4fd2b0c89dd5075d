"""Task records and the one loader for SWE-bench-style rows.

Accepts the legacy 12-field rows (FAIL_TO_PASS / PASS_TO_PASS as JSON-encoded strings, as the 2024
datasets publish them), current rows (real lists, plus ``image``, ``eval_script`` and ``log_parser``)
and the bundled suite's rows, which add what the harness needs to build and run a task without any
per-repo code: ``env_recipe``, ``test_cmd``, ``log_parser``, ``difficulty`` and, on the flaky ones,
``flaky``.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.config import cache_dir, images_data

BUNDLED_NAME = "monkeys-suite"
BUNDLED_ROWS = images_data("suite", "tasks.jsonl")

# Hub datasets known by a short name; any other "owner/name" is passed to `datasets` as it is.
HUB_ALIASES = {
    "swe-bench-lite": "SWE-bench/SWE-bench_Lite",
    "swe-bench-verified": "SWE-bench/SWE-bench_Verified",
    "swe-bench": "SWE-bench/SWE-bench",
}

_SHA = re.compile(r"^[0-9a-f]{40}$")


class TaskLoadError(ValueError):
    """A row that cannot be read, naming where it is and what is wrong."""

    def __init__(self, source: str, line: int | None, problem: str, field: str | None = None):
        self.source, self.line, self.field, self.problem = source, line, field, problem
        where = source if line is None else f"{source}:{line}"
        what = f"field {field!r}: {problem}" if field else problem
        super().__init__(f"{where}: {what}")


class FlakyCause(str, enum.Enum):
    """Why a bundled task's tests are flaky (never wall-clock timing, whose rate drifts with load)."""

    RANDOMNESS = "randomness"
    TEST_ORDER = "test-order"
    SHARED_STATE = "shared-state"
    HASH_ORDER = "hash-order"


class Difficulty(str, enum.Enum):
    """How much of the code a bundled task's fix touches."""

    ONE_LINE = "one-line"
    MULTI_FUNCTION = "multi-function"
    MULTI_FILE = "multi-file"


@dataclass(frozen=True)
class EnvRecipe:
    """How to build a task's environment on top of a Python base image."""

    python: str
    """Python version of the base image, e.g. "3.11"."""
    packages: tuple[str, ...] = ()
    """pip requirement lines installed into the task's venv."""
    first_packages: tuple[str, ...] = ()
    """pip requirement lines installed before ``packages``, in a pip call of their own (an official
    spec's ``packages``, its requirements file or conda packages, came before its pip_packages: the
    later call may then change what the first installed, and an sdist among the later ones builds
    with what the first installed, e.g. astropy 1.3's MarkupSafe 1.0 with setuptools 38)."""
    install: str = ""
    """Shell run in /testbed after checkout (e.g. ``pip install -e .``); empty for none."""
    setup: tuple[str, ...] = ()
    """Shell commands run in /testbed before ``install`` (an official spec's ``pre_install``, e.g.
    sphinx's tox.ini edit); what they change in the repository is committed, so it is part of the
    image's starting tree and never of an attempt's patch."""
    dockerfile: str = ""
    """Dockerfile lines added to the environment image after the packages (system libraries,
    compilers, a conda of one's own); empty for none."""
    best_effort: tuple[str, ...] = ()
    """pip requirement lines installed where PyPI has them and otherwise recorded as skipped (what
    stands in for an official spec's conda packages, some of which exist only on conda)."""
    as_of: str = ""
    """Resolve what the packages and the install step leave unpinned as PyPI was at this UTC time
    (ISO 8601, e.g. "2019-06-11T09:15:00Z"); empty for today's PyPI."""


@dataclass(frozen=True)
class Flaky:
    """A bundled task built to be flaky, documented so audits can be checked against it."""

    rate: float
    """Probability that one run of the flaky tests fails, in the state named by ``under_gold``."""
    cause: FlakyCause
    under_gold: bool
    """True: flaky with the gold patch applied; False: flaky at base_commit (fixed by the gold patch)."""
    tests: tuple[str, ...]
    """The flaky test ids."""


@dataclass(frozen=True)
class Task:
    """One problem: a repository at a commit, an issue, and the tests that judge a fix."""

    instance_id: str
    repo: str
    base_commit: str
    patch: str
    test_patch: str
    problem_statement: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    hints_text: str = ""
    created_at: str = ""
    version: str = ""
    environment_setup_commit: str = ""
    image: str | None = None
    """A prebuilt image name (current official rows); None where monkeys builds the image."""
    eval_script: str | None = None
    log_parser: str | None = None
    test_cmd: str | None = None
    env_recipe: EnvRecipe | None = None
    difficulty: Difficulty | None = None
    flaky: Flaky | None = None
    origin: str = field(default="", compare=False)
    """Where the row was read, as "file:line"."""

    def to_row(self) -> dict[str, Any]:
        """The row in the current SWE-bench shape (lists, not JSON strings), with monkeys' extras."""
        row: dict[str, Any] = {
            "instance_id": self.instance_id,
            "repo": self.repo,
            "base_commit": self.base_commit,
            "patch": self.patch,
            "test_patch": self.test_patch,
            "problem_statement": self.problem_statement,
            "hints_text": self.hints_text,
            "created_at": self.created_at,
            "version": self.version,
            "FAIL_TO_PASS": list(self.fail_to_pass),
            "PASS_TO_PASS": list(self.pass_to_pass),
            "environment_setup_commit": self.environment_setup_commit,
        }
        for key in ("image", "eval_script", "log_parser", "test_cmd"):
            if getattr(self, key) is not None:
                row[key] = getattr(self, key)
        if self.env_recipe is not None:
            recipe = asdict(self.env_recipe)
            recipe["packages"] = list(self.env_recipe.packages)
            recipe["best_effort"] = list(self.env_recipe.best_effort)
            recipe["setup"] = list(self.env_recipe.setup)
            recipe["first_packages"] = list(self.env_recipe.first_packages)
            for key in ("dockerfile", "first_packages", "setup", "best_effort", "as_of"):
                if not recipe[key]:
                    del recipe[key]  # rows without one stay as they were (and hash the same)
            row["env_recipe"] = recipe
        if self.difficulty is not None:
            row["difficulty"] = self.difficulty.value
        if self.flaky is not None:
            row["flaky"] = {
                "rate": self.flaky.rate,
                "cause": self.flaky.cause.value,
                "under_gold": self.flaky.under_gold,
                "tests": list(self.flaky.tests),
            }
        return row


@dataclass
class LoadResult:
    """Tasks read from one source, and the rows that were skipped (only when asked to skip)."""

    source: str
    tasks: list[Task]
    skipped: list[TaskLoadError]


# ---------------------------------------------------------------------------------------------
# Row parsing: pure functions from a decoded JSON object to a Task.


def _text(row: dict, key: str, where: tuple[str, int | None], *, required: bool) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise TaskLoadError(*where, "missing", field=key)
        return ""
    if isinstance(value, (int, float)) and key == "version":
        return str(value)  # some exports write versions such as 3.0 as numbers
    if not isinstance(value, str):
        raise TaskLoadError(*where, f"expected a string, got {type(value).__name__}", field=key)
    return value


def _test_list(row: dict, key: str, where: tuple[str, int | None]) -> tuple[str, ...]:
    value = row.get(key)
    if value is None:
        raise TaskLoadError(*where, "missing", field=key)
    if isinstance(value, str):  # legacy rows: a JSON list inside a string
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise TaskLoadError(*where, f"not a JSON-encoded list ({err.msg})", field=key) from None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise TaskLoadError(*where, "expected a list of test ids (strings)", field=key)
    return tuple(value)


def _optional(row: dict, key: str, where: tuple[str, int | None]) -> str | None:
    if row.get(key) is None:
        return None
    return _text(row, key, where, required=True)


def _env_recipe(value: Any, where: tuple[str, int | None]) -> EnvRecipe | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("python"), str):
        raise TaskLoadError(*where, "expected an object with a string 'python'", field="env_recipe")
    packages = value.get("packages", [])
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise TaskLoadError(*where, "'packages' must be a list of strings", field="env_recipe")
    install = value.get("install") or ""
    if not isinstance(install, str):
        raise TaskLoadError(*where, "'install' must be a string", field="env_recipe")
    dockerfile = value.get("dockerfile") or ""
    if not isinstance(dockerfile, str):
        raise TaskLoadError(*where, "'dockerfile' must be a string of Dockerfile lines", field="env_recipe")
    first_packages = value.get("first_packages", [])
    if not isinstance(first_packages, list) or not all(isinstance(p, str) for p in first_packages):
        raise TaskLoadError(*where, "'first_packages' must be a list of strings", field="env_recipe")
    setup = value.get("setup", [])
    if not isinstance(setup, list) or not all(isinstance(p, str) for p in setup):
        raise TaskLoadError(*where, "'setup' must be a list of shell commands", field="env_recipe")
    best_effort = value.get("best_effort", [])
    if not isinstance(best_effort, list) or not all(isinstance(p, str) for p in best_effort):
        raise TaskLoadError(*where, "'best_effort' must be a list of strings", field="env_recipe")
    as_of = value.get("as_of") or ""
    if not isinstance(as_of, str) or (as_of and not is_utc_time(as_of)):
        raise TaskLoadError(*where, f"'as_of' must be a UTC time like 2019-06-11T09:15:00Z, not {as_of!r}", field="env_recipe")
    return EnvRecipe(python=value["python"], packages=tuple(packages), install=install, dockerfile=dockerfile,
                     first_packages=tuple(first_packages), setup=tuple(setup), best_effort=tuple(best_effort),
                     as_of=as_of)


UTC_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""How ``EnvRecipe.as_of`` writes a time (strftime/strptime)."""
_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def is_utc_time(text: str) -> bool:
    """Whether ``text`` is a time as ``EnvRecipe.as_of`` takes it."""
    return bool(_UTC_TIME.fullmatch(text))


def _flaky(value: Any, where: tuple[str, int | None]) -> Flaky | None:
    if value is None:
        return None
    try:
        rate = float(value["rate"])
        cause = FlakyCause(value["cause"])
        under_gold = value["under_gold"]
        tests = value.get("tests", [])
    except (TypeError, KeyError, ValueError) as err:
        raise TaskLoadError(*where, f"expected {{rate, cause, under_gold, tests}} ({err})", field="flaky") from None
    if not 0.0 < rate < 1.0 or not isinstance(under_gold, bool) or not isinstance(tests, list):
        raise TaskLoadError(*where, "rate must be in (0, 1), under_gold a boolean, tests a list", field="flaky")
    return Flaky(rate=rate, cause=cause, under_gold=under_gold, tests=tuple(tests))


def parse_row(row: Any, source: str, line: int | None) -> Task:
    """One decoded row to a Task; raises TaskLoadError naming the source, line and field."""
    where = (source, line)
    if not isinstance(row, dict):
        raise TaskLoadError(*where, f"expected a JSON object, got {type(row).__name__}")
    instance_id = _text(row, "instance_id", where, required=True)
    if not instance_id:
        raise TaskLoadError(*where, "empty", field="instance_id")
    repo = _text(row, "repo", where, required=True)
    base_commit = _text(row, "base_commit", where, required=True)
    if not _SHA.match(base_commit):
        raise TaskLoadError(*where, f"{instance_id}: not a 40-character hex commit", field="base_commit")
    difficulty = row.get("difficulty")
    try:
        difficulty = None if difficulty is None else Difficulty(difficulty)
    except ValueError:
        allowed = ", ".join(d.value for d in Difficulty)
        raise TaskLoadError(*where, f"{difficulty!r} is not one of {allowed}", field="difficulty") from None
    return Task(
        instance_id=instance_id,
        repo=repo,
        base_commit=base_commit,
        patch=_text(row, "patch", where, required=True),
        test_patch=_text(row, "test_patch", where, required=True),
        problem_statement=_text(row, "problem_statement", where, required=True),
        fail_to_pass=_test_list(row, "FAIL_TO_PASS", where),
        pass_to_pass=_test_list(row, "PASS_TO_PASS", where),
        hints_text=_text(row, "hints_text", where, required=False),
        created_at=_text(row, "created_at", where, required=False),
        version=_text(row, "version", where, required=False),
        environment_setup_commit=_text(row, "environment_setup_commit", where, required=False),
        image=_optional(row, "image", where),
        eval_script=_optional(row, "eval_script", where),
        log_parser=_optional(row, "log_parser", where),
        test_cmd=_optional(row, "test_cmd", where),
        env_recipe=_env_recipe(row.get("env_recipe"), where),
        difficulty=difficulty,
        flaky=_flaky(row.get("flaky"), where),
        origin=source if line is None else f"{source}:{line}",
    )


# ---------------------------------------------------------------------------------------------
# Sources: files (JSONL, JSON), names under MONKEYS_DATA, hub datasets, the bundled suite.


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any, TaskLoadError | None]]:
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text), None
            except json.JSONDecodeError as err:
                truncated = " (the line looks truncated)" if not text.endswith("\n") or "Unterminated" in err.msg else ""
                yield number, None, TaskLoadError(str(path), number, f"not valid JSON: {err.msg} at column {err.colno}{truncated}")


def _json_rows(path: Path) -> Iterator[tuple[int, Any, TaskLoadError | None]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TaskLoadError(str(path), err.lineno, f"not valid JSON: {err.msg} at column {err.colno}") from None
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if not isinstance(data, list):
        raise TaskLoadError(str(path), None, "expected a JSON list of rows")
    # A JSON array has no line per row; report the 1-based row number in its place.
    for number, row in enumerate(data, start=1):
        yield number, row, None


def hub_cache_file(name: str) -> Path:
    """Where the rows of a hub dataset are kept once downloaded, so later loads need no network."""
    dataset, _, split = name.partition(":")
    return cache_dir() / "tasks" / dataset.replace("/", "__") / f"{split or 'test'}.jsonl"


def _hub_rows(name: str) -> Iterator[tuple[int, Any, TaskLoadError | None]]:
    try:
        import datasets  # optional extra: pip install 'monkeys[hub]'
    except ImportError:
        raise TaskLoadError(
            name, None,
            "not downloaded before, and loading a hub dataset needs the 'hub' extra (pip install 'monkeys[hub]'); "
            "or download the rows and pass the file, or set MONKEYS_DATA to a folder holding <name>/test.jsonl",
        ) from None
    dataset, _, split = name.partition(":")
    try:
        rows = [dict(row) for row in datasets.load_dataset(dataset, split=split or "test")]
    except Exception as err:  # the hub client raises many kinds (connection, not found, auth)
        raise TaskLoadError(name, None, f"cannot load from the hub: {type(err).__name__}: {err}") from None
    # Keep a copy for the next load (offline, and the same rows even if the hub's change).
    target = hub_cache_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".part{os.getpid()}")
    with partial.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=str) + "\n")
    os.replace(partial, target)
    for number, row in enumerate(rows, start=1):
        yield number, row, None


def resolve_source(spec: str | None) -> Path | str:
    """Where a task set named on the command line lives: a file path, or a hub dataset name.

    None or "monkeys-suite" is the bundled suite; an existing file or folder (holding test.jsonl)
    is used as it is; a short name is looked up under $MONKEYS_DATA (<name>/test.jsonl or
    <name>.jsonl), then among earlier hub downloads (see ``hub_cache_file``), then on the hub.
    """
    if spec is None or spec == BUNDLED_NAME:
        return BUNDLED_ROWS
    path = Path(spec).expanduser()
    if path.is_dir():
        for candidate in (path / "test.jsonl", path / "tasks.jsonl"):
            if candidate.is_file():
                return candidate
        raise TaskLoadError(str(path), None, "folder holds no test.jsonl or tasks.jsonl")
    if path.is_file():
        return path
    data_dir = os.environ.get("MONKEYS_DATA")
    if data_dir and "/" not in spec:
        for candidate in (Path(data_dir) / spec / "test.jsonl", Path(data_dir) / f"{spec}.jsonl"):
            if candidate.is_file():
                return candidate
    looks_like_hub_name = re.fullmatch(r"[\w.-]+(/[\w.-]+)?(:\w+)?", spec) and not spec.endswith((".json", ".jsonl"))
    if not looks_like_hub_name:
        raise TaskLoadError(spec, None, "no such file")
    name, _, split = spec.partition(":")
    hub_name = HUB_ALIASES.get(name, name) + (f":{split}" if split else "")
    downloaded = hub_cache_file(hub_name)
    return downloaded if downloaded.is_file() else hub_name


def load_tasks(spec: str | Path | None = None, *, skip_bad: bool = False) -> LoadResult:
    """Load a task set. A bad row raises TaskLoadError unless ``skip_bad``, which skips and lists it."""
    source = resolve_source(None if spec is None else str(spec))
    if isinstance(source, Path):
        rows: Iterable = _json_rows(source) if source.suffix == ".json" else _jsonl_rows(source)
        label = str(source)
    else:
        rows, label = _hub_rows(source), source
    tasks: list[Task] = []
    skipped: list[TaskLoadError] = []
    seen: dict[str, str] = {}
    for number, row, error in rows:
        try:
            if error is not None:
                raise error
            task = parse_row(row, label, number)
            if task.instance_id in seen:
                raise TaskLoadError(label, number, f"duplicate of the row at {seen[task.instance_id]}", field="instance_id")
        except TaskLoadError as bad:
            if not skip_bad:
                raise
            skipped.append(bad)
            continue
        seen[task.instance_id] = task.origin
        tasks.append(task)
    return LoadResult(source=label, tasks=tasks, skipped=skipped)
