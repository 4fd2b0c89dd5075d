"""Which image a task's containers start from, and the names of the images monkeys builds.

The judge and the agent both need a task's image name, and nothing else about images: this is that
part, pure. A built image's name is a digest of everything that determines it (the recipe, the
Dockerfile templates in ``images/env``, the parent's name), so a changed recipe gets a new name and
rebuilds, and an unchanged one is reused. The builder (``images/build.py``) makes what these name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache

from harness.config import images_data
from harness.tasks import EnvRecipe, Task

# What a registry-free base image installs (part of its name).
BASE_PACKAGES = ("python3", "python3-venv", "git", "ca-certificates", "patch")


def _digest(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@cache
def template(name: str) -> str:
    """A Dockerfile template or the activation shim, from the ``images`` package's data."""
    return images_data("env", name).read_text()


@dataclass(frozen=True)
class BaseSpec:
    python: str

    @property
    def name(self) -> str:
        return f"monkeys/base:py{self.python}-{_digest(self.python, BASE_PACKAGES, template('base.Dockerfile'))}"


@dataclass(frozen=True)
class EnvSpec:
    base: BaseSpec
    packages: tuple[str, ...]
    dockerfile: str = ""
    """The recipe's own Dockerfile lines, run after the packages are installed."""

    @property
    def name(self) -> str:
        # The fragment enters the digest only when there is one, so existing names stay the same.
        extra = (self.dockerfile,) if self.dockerfile else ()
        digest = _digest(self.base.name, self.packages, template("env.Dockerfile"), template("activate"), *extra)
        return f"monkeys/env:py{self.base.python}-{digest}"


@dataclass(frozen=True)
class InstanceSpec:
    instance_id: str
    repo: str
    commit: str
    env: EnvSpec
    install: str = ""
    alias: str | None = None
    """The row's own image name (an official one, for recipes standing in for official images): the
    built image is tagged with it too, so commands without the recipes find it."""

    @property
    def name(self) -> str:
        digest = _digest(self.env.name, self.repo, self.commit, self.install, template("instance.Dockerfile"))
        return f"monkeys/task.{docker_safe(self.instance_id)}:{digest}"


def docker_safe(instance_id: str) -> str:
    """An instance id as an image repository name, with the official harness' "__" -> "_1776_"."""
    return re.sub(r"[^a-z0-9._-]", "-", instance_id.lower().replace("__", "_1776_"))


def instance_spec(task: Task) -> InstanceSpec:
    """The image recipe of a task that monkeys builds (one without a prebuilt ``image``)."""
    if task.env_recipe is None:
        raise ValueError(f"{task.instance_id} ({task.origin}): row has neither 'image' nor 'env_recipe'")
    recipe: EnvRecipe = task.env_recipe
    env = EnvSpec(base=BaseSpec(recipe.python), packages=recipe.packages, dockerfile=recipe.dockerfile)
    return InstanceSpec(task.instance_id, task.repo, task.base_commit, env, recipe.install, alias=task.image)


def official_image(instance_id: str) -> str:
    """The official SWE-bench prebuilt image of an instance."""
    return f"swebench/sweb.eval.x86_64.{instance_id.lower().replace('__', '_1776_')}:latest"


def builds_here(task: Task) -> bool:
    """Whether monkeys can build this task's image (it has a recipe; a row that also names an image
    gets that name as an alias, unless an image of that name not built by monkeys is here)."""
    return task.env_recipe is not None


def image_name(task: Task) -> str:
    """The image a task's containers start from: the row's ``image``, the one monkeys builds from its
    ``env_recipe``, or else the official SWE-bench image of that instance."""
    if task.image:
        return task.image
    if task.env_recipe is not None:
        return instance_spec(task).name
    return official_image(task.instance_id)
