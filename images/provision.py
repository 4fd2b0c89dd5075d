"""A task's image on the Docker engine of whichever cluster node a job landed on (``--cluster``).

A node gets an image the way a single machine does: already there, pulled from ``--registry`` (as
``monkeys images pull``), or built from the task's recipe (as ``monkeys images build``). Image names
are content hashes of their recipes, so an image built on one node is the image built on any other,
and a node that pulled it agrees too. Jobs that want the same image on one node wait for a single
pull or build (a file lock per image name) instead of each starting their own.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path

import docker

from harness.config import cache_dir
from harness.image_names import ImageUnavailable, builds_here, image_name
from harness.tasks import Task
from images.build import ImageBuilder, image_exists
from images.mirrors import Mirrors
from images.pull import pull_images


@dataclass(frozen=True)
class NodeImages:
    """Gets a task's image onto this node's engine; picklable, so the driver hands it to every job."""

    registry: str | None = None
    """Pull from this registry (or mirror) first; None: build from the task's recipe."""
    repo_mirrors: tuple[Path, ...] = ()
    """Folders of git mirrors for building tasks of real repositories (``--repo-mirror``)."""

    def __call__(self, client: docker.DockerClient, task: Task) -> str:
        """The image's name, once it is on this node; ``ImageUnavailable`` saying why it is not."""
        name = image_name(task)
        if image_exists(client, name):
            return name
        locks = cache_dir() / "image-locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / name.replace("/", "_").replace(":", "_"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if image_exists(client, name):  # another job on this node got it meanwhile
                return name
            return self._get(client, task, name)

    def _get(self, client: docker.DockerClient, task: Task, name: str) -> str:
        tried = []
        if self.registry:
            pulled = pull_images(client, [name], registry=self.registry)[0]
            if pulled.ok:
                return name
            tried.append(pulled.error)
        if not builds_here(task):
            tried.append(f"{task.instance_id} has no env_recipe to build {name} from")
            raise ImageUnavailable("; ".join(tried))
        report = ImageBuilder(client, Mirrors(self.repo_mirrors), registry=None, workers=1).build([task])
        if report.failed:
            tried.extend(failure.error for failure in report.failed)
            raise ImageUnavailable("; ".join(tried))
        return name
