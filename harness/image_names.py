"""Which image a task's containers start from, and the names of the images monkeys builds.

The judge and the agent both need a task's image name, and nothing else about images: this is that
part, pure. A built image's name is a digest of everything that determines it (the recipe, the
Dockerfile templates in ``images/env``, the parent's name), so a changed recipe gets a new name and
rebuilds, and an unchanged one is reused. The builder (``images/build.py``) makes what these name.
"""

from __future__ import annotations

import enum
import hashlib
import json
import platform
import re
from dataclasses import dataclass
from functools import cache

from harness.config import images_data
from harness.tasks import EnvRecipe, Task

# What a registry-free base image installs (part of its name). A C compiler and Python's headers as
# in the official base (build-essential; conda's Python carries its headers): repositories such as
# astropy, matplotlib and scikit-learn build C extensions in their install step, and old pins (psutil
# 5.4) come only as sdists.
BASE_PACKAGES = ("python3", "python3-venv", "python3-dev", "build-essential", "git", "ca-certificates", "patch")


class Distribution(str, enum.Enum):
    """Where a registry-free base's packages come from."""

    DEBIAN = "debian"
    UBUNTU = "ubuntu"

    def default_mirror(self, machine: str | None = None) -> str:
        """The distribution's own archive for this host's architecture: Ubuntu keeps arm64 and the
        other non-x86 architectures on a separate "ports" archive; Debian's mirror has them all."""
        if self is Distribution.DEBIAN:
            return "http://deb.debian.org/debian"
        machine = (machine or platform.machine()).lower()
        if machine in ("x86_64", "amd64", "i386", "i686"):
            return "http://archive.ubuntu.com/ubuntu"
        return "http://ports.ubuntu.com/ubuntu-ports"


@dataclass(frozen=True)
class Release:
    """A release whose ``python3`` is the Python a base needs, and how debootstrap makes it."""

    distribution: Distribution
    release: str
    """The suite's codename, as debootstrap and the archive name it."""
    python: str
    """The major.minor of the release's own ``python3`` (checked against the archive's Packages)."""
    components: tuple[str, ...]
    """Archive components holding BASE_PACKAGES: Ubuntu keeps python3-venv in universe."""
    script: str | None = None
    """debootstrap's script for the release where it is not the codename: debootstrap releases
    older than the release lack its name (bookworm's has no noble), and Ubuntu's script is one for all."""


# One release per Python version, the newest that ships it and is still on its distribution's main
# archive (Debian's buster (3.7) and stretch have moved to archive.debian.org, which few mirrors carry).
RELEASES: tuple[Release, ...] = (
    Release(Distribution.UBUNTU, "xenial", "3.5", ("main", "universe"), "gutsy"),
    Release(Distribution.UBUNTU, "bionic", "3.6", ("main", "universe"), "gutsy"),
    Release(Distribution.UBUNTU, "focal", "3.8", ("main", "universe"), "gutsy"),
    Release(Distribution.DEBIAN, "bullseye", "3.9", ("main",)),
    Release(Distribution.UBUNTU, "jammy", "3.10", ("main", "universe"), "gutsy"),
    Release(Distribution.DEBIAN, "bookworm", "3.11", ("main",)),
    Release(Distribution.UBUNTU, "noble", "3.12", ("main", "universe"), "gutsy"),
    Release(Distribution.DEBIAN, "trixie", "3.13", ("main",)),
)


class NoRelease(LookupError):
    """No release in RELEASES ships a Python version; the message says which do and how to supply a base."""


def release_for(python: str, needed_by: tuple[str, ...] = ()) -> Release:
    """The release whose python3 is ``python``; NoRelease naming the version, the tasks that need it
    (a few of ``needed_by``) and ``--base-image``, the way to give such a base."""
    for release in RELEASES:
        if release.python == python:
            return release
    shipped = ", ".join(f"{r.python} ({r.distribution.value} {r.release})" for r in RELEASES)
    who = ""
    if needed_by:
        more = f" and {len(needed_by) - 3} more" if len(needed_by) > 3 else ""
        who = f", needed by {', '.join(needed_by[:3])}{more}"
    raise NoRelease(
        f"no release ships Python {python}{who}; releases give {shipped}. Supply a base with Python "
        f"{python}, git and venv: monkeys images build --base-image {python}=IMAGE (a local image or a "
        f"registry's, e.g. --base-image {python}=myregistry/python:{python}-slim)"
    )


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
    def release(self) -> Release | None:
        """The release a registry-free build of this base bootstraps, if one ships its Python."""
        return next((r for r in RELEASES if r.python == self.python), None)

    @property
    def name(self) -> str:
        # The release is part of the name, so moving a version to another release rebuilds its base.
        # (A base pulled from a registry or given with --base-image has the same name: its source is
        # in its labels, and every source gives that Python with git and venv.)
        release = self.release
        made_from = (release.distribution.value, release.release, release.components) if release else None
        return f"monkeys/base:py{self.python}-{_digest(self.python, BASE_PACKAGES, template('base.Dockerfile'), made_from)}"


@dataclass(frozen=True)
class EnvSpec:
    base: BaseSpec
    packages: tuple[str, ...]
    dockerfile: str = ""
    """The recipe's own Dockerfile lines, run after the packages are installed."""
    best_effort: tuple[str, ...] = ()
    as_of: str = ""
    first_packages: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        # Optional parts enter the digest only when set, so names without them stay the same.
        extra = [self.dockerfile] if self.dockerfile else []
        if self.best_effort or self.as_of:
            extra += [list(self.best_effort), self.as_of]
        if self.first_packages:
            extra += [list(self.first_packages)]
        digest = _digest(self.base.name, self.packages, template("env.Dockerfile"), template("activate"),
                         template("env-packages.sh"), *extra)
        return f"monkeys/env:py{self.base.python}-{digest}"


@dataclass(frozen=True)
class InstanceSpec:
    instance_id: str
    repo: str
    commit: str
    env: EnvSpec
    install: str = ""
    setup: tuple[str, ...] = ()
    """Commands run in /testbed before ``install``; their edits are committed (the starting tree)."""
    alias: str | None = None
    """The row's own image name (an official one, for recipes standing in for official images): the
    built image is tagged with it too, so commands without the recipes find it."""

    @property
    def name(self) -> str:
        extra = [list(self.setup)] if self.setup else []
        digest = _digest(self.env.name, self.repo, self.commit, self.install, template("instance.Dockerfile"),
                         template("instance-setup.sh"), *extra)
        return f"monkeys/task.{docker_safe(self.instance_id)}:{digest}"


def docker_safe(instance_id: str) -> str:
    """An instance id as an image repository name, with the official harness' "__" -> "_1776_"."""
    return re.sub(r"[^a-z0-9._-]", "-", instance_id.lower().replace("__", "_1776_"))


def instance_spec(task: Task) -> InstanceSpec:
    """The image recipe of a task that monkeys builds (one without a prebuilt ``image``)."""
    if task.env_recipe is None:
        raise ValueError(f"{task.instance_id} ({task.origin}): row has neither 'image' nor 'env_recipe'")
    recipe: EnvRecipe = task.env_recipe
    env = EnvSpec(base=BaseSpec(recipe.python), packages=recipe.packages, dockerfile=recipe.dockerfile,
                  best_effort=recipe.best_effort, as_of=recipe.as_of, first_packages=recipe.first_packages)
    return InstanceSpec(task.instance_id, task.repo, task.base_commit, env, recipe.install, recipe.setup, alias=task.image)


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


class ImageUnavailable(RuntimeError):
    """A task's image could not be had on this machine: not here, not pulled, not built (the message
    says which and why). An infrastructure error: the work that needed it is redone on the next call."""
