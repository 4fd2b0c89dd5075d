"""Images a test builds from Dockerfile text, removed whatever happens."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence

import docker.errors


@contextlib.contextmanager
def temporary_images(docker_client, dockerfiles: Sequence[tuple[str, str]]) -> Iterator[list[str]]:
    """Builds each (tag, Dockerfile) in order, offline, and yields the tags; all are removed on leaving."""
    made: list[str] = []
    try:
        for tag, dockerfile in dockerfiles:
            docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True,
                                       network_mode="none")
            made.append(tag)
        yield made
    finally:
        for tag in reversed(made):
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass
