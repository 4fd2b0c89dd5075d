"""Environment recipes a user supplies per repository and version, for building instance images
where no prebuilt one can be pulled (air-gapped sites, arm64 hosts, patched environments).

Rows of the official SWE-bench repositories need none: their environments are derived from the
official spec table (images/official_env.py). A recipes file overrides what it names, value by
value, and gives the environments of repositories the table does not know. It is TOML:

    [repos."django/django"]                 # every version of the repo, unless overridden
    python = "3.11"
    packages = ["asgiref>=3.2", "pytz", "sqlparse"]     # pip requirement lines, or
    requirements = "django-reqs.txt"                     # a requirements file, relative to this file
    setup = ["sed -i 's/pytest/pytest -rA/' tox.ini"]    # run in /testbed first; edits are committed
    install = "python -m pip install -e ."               # run in /testbed after checkout
    as_of = "2020-01-31T00:00:00Z"                       # resolve as PyPI was then ("" for today's)
    dockerfile = "RUN apt-get update && apt-get install -y --no-install-recommends locales"

    [repos."django/django".versions."3.0"]  # a version's own values replace the repo's
    python = "3.9"

A task gets a recipe only when its row names no prebuilt image and carries none of its own. The image
built from it is laid out like the official ones (the repo at /testbed, `conda activate testbed`
working) and tagged with the official name, so every command finds it as it would a pulled one; an
official image already here is used as it is, never built over.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.image_names import official_image
from harness.tasks import EnvRecipe, Task, is_utc_time
from images.official_env import Derived

_KEYS = {"python", "packages", "requirements", "install", "setup", "as_of", "dockerfile", "versions"}


class RecipeError(ValueError):
    """A recipes file that cannot be used, naming the file, the table and what is wrong."""


@dataclass(frozen=True)
class Recipes:
    source: str
    repos: dict[str, dict[str, Any]]
    """repo -> its table (with ``versions`` -> version -> table), as read and checked."""

    def recipe_for(self, repo: str, version: str, derived: EnvRecipe | None = None) -> EnvRecipe | None:
        """The file's recipe for ``repo`` at ``version``: its values over ``derived`` (what the official
        spec table gives, where it covers the task), or on their own; None where neither has one."""
        table = self.repos.get(repo)
        if table is None:
            return derived
        merged = {k: v for k, v in table.items() if k != "versions"}
        merged.update(table.get("versions", {}).get(version, {}))
        where = f"{self.source}: repos.{repo!r}" + (f".versions.{version!r}" if version in table.get("versions", {}) else "")
        if derived is None and "python" not in merged:
            raise RecipeError(f"{where}: no 'python' for version {version!r}")
        base = derived or EnvRecipe(python=merged["python"])
        given = {key: tuple(value) if isinstance(value, list) else value for key, value in merged.items()}
        if "packages" in given:
            given["first_packages"] = ()  # the file's packages replace all the derived ones
        return dataclasses.replace(base, **given)


def _check_table(table: Any, where: str, base: Path, *, top: bool) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise RecipeError(f"{where}: expected a table")
    allowed = _KEYS if top else _KEYS - {"versions"}
    unknown = set(table) - allowed
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(allowed))})")
    checked = dict(table)
    for key in ("python", "install", "dockerfile", "requirements", "as_of"):
        if key in checked and not isinstance(checked[key], str):
            raise RecipeError(f"{where}: {key!r} must be a string")
    if checked.get("as_of") and not is_utc_time(checked["as_of"]):
        raise RecipeError(f"{where}: 'as_of' must be a UTC time like 2019-06-11T09:15:00Z, or \"\" for today's PyPI")
    if "setup" in checked and (not isinstance(checked["setup"], list) or not all(isinstance(c, str) for c in checked["setup"])):
        raise RecipeError(f"{where}: 'setup' must be a list of shell commands")
    if "packages" in checked and "requirements" in checked:
        raise RecipeError(f"{where}: give 'packages' or 'requirements', not both")
    if "packages" in checked:
        if not isinstance(checked["packages"], list) or not all(isinstance(p, str) for p in checked["packages"]):
            raise RecipeError(f"{where}: 'packages' must be a list of pip requirement strings")
    if "requirements" in checked:
        path = (base / checked.pop("requirements")).resolve()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise RecipeError(f"{where}: cannot read requirements file {path}: {err.strerror or err}") from None
        checked["packages"] = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return checked


def read_recipes(path: Path) -> Recipes:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RecipeError(f"{path}: cannot read: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path}: not valid TOML: {err}") from None
    repos = data.get("repos")
    if not isinstance(repos, dict) or not repos or set(data) - {"repos"}:
        raise RecipeError(f"{path}: expected [repos.\"owner/name\"] tables and nothing else")
    checked: dict[str, dict[str, Any]] = {}
    for repo, table in repos.items():
        where = f"{path}: repos.{repo!r}"
        entry = _check_table(table, where, path.parent, top=True)
        versions = entry.get("versions", {})
        if not isinstance(versions, dict):
            raise RecipeError(f"{where}.versions: expected a table of versions")
        entry["versions"] = {str(v): _check_table(t, f"{where}.versions.{v!r}", path.parent, top=False)
                             for v, t in versions.items()}
        checked[repo] = entry
    return Recipes(str(path), checked)


def with_recipes(tasks: Sequence[Task], recipes: Recipes | None, derived: Mapping[str, Derived] | None = None) -> list[Task]:
    """The tasks, those without an image or recipe of their own given their environment: derived from
    the official spec table (``derived``, by instance id) with the file's values over it, or the
    file's recipe alone. Tasks neither covers are left as they are."""
    derived = derived or {}
    out = []
    for task in tasks:
        recipe = None
        if not (task.image or task.env_recipe):
            base = derived[task.instance_id].recipe if task.instance_id in derived else None
            recipe = recipes.recipe_for(task.repo, task.version, base) if recipes else base
        # The image is built under monkeys' recipe-digest name and also tagged with the official
        # name, which every later command (sample, evaluate) looks for when given no recipes.
        out.append(dataclasses.replace(task, env_recipe=recipe, image=official_image(task.instance_id)) if recipe else task)
    return out
