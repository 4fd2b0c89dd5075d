"""The one container runtime: every container monkeys starts is made, limited, labelled, timed out
and removed here.

A container's main process is the script it was made for, so a timeout kills the container and
with it the whole process tree. No host environment variable enters a container: only the image's
own ENV and what a caller passes explicitly.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
import time
from dataclasses import dataclass

import docker
import docker.errors
import requests

RUN_LABEL = "monkeys.run"
OWNER_LABEL = "monkeys.owner"  # "<host>:<pid>" of the process that made it, so leftovers can be reaped


@dataclass(frozen=True)
class Limits:
    """Resources of one container (the official harness gives an evaluation 2 CPUs)."""

    cpus: float = 2.0
    memory: str = "4g"
    pids: int = 1024


@dataclass(frozen=True)
class ScriptResult:
    exit_code: int | None
    """None when the script was killed at its timeout."""
    output: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


class ContainerRuntime:
    """Makes containers for one run (a label), and reaps what crashed runs left behind."""

    def __init__(self, client: docker.DockerClient, run: str, limits: Limits = Limits()):
        self.client = client
        self.run = run
        self.limits = limits
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def run_script(
        self,
        image: str,
        script: str,
        files: dict[str, bytes | str] | None = None,
        *,
        timeout: float = 1800.0,
        network: bool = False,
        kind: str = "eval",
    ) -> ScriptResult:
        """Run ``script`` with bash as the main process of a fresh container from ``image``.

        ``files`` land under /monkeys/ before the script starts. The container is removed in every
        case, including a timeout (the script then has exit_code None) and an interrupt.
        """
        started = time.monotonic()
        container = self.client.containers.create(
            image,
            command=["bash", "/monkeys/run.sh"],
            labels={RUN_LABEL: self.run, OWNER_LABEL: self.owner, "monkeys.kind": kind},
            environment={},
            network_disabled=not network,
            nano_cpus=int(self.limits.cpus * 1e9),
            mem_limit=self.limits.memory,
            pids_limit=self.limits.pids,
            detach=True,
        )
        try:
            container.put_archive("/", tar_bytes({"monkeys/run.sh": script, **{f"monkeys/{k}": v for k, v in (files or {}).items()}}))
            container.start()
            try:
                exit_code: int | None = container.wait(timeout=timeout)["StatusCode"]
            except requests.exceptions.RequestException:  # the wait's read timed out
                container.kill()
                exit_code = None
            output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        finally:
            _remove(container)
        return ScriptResult(exit_code, output, time.monotonic() - started)

    def reap(self, *, this_run: bool = False) -> int:
        """Remove containers of this run (``this_run``), or of any monkeys process no longer alive here."""
        removed = 0
        host = socket.gethostname()
        for container in self.client.containers.list(all=True, filters={"label": RUN_LABEL}):
            labels = container.labels
            owner_host, _, pid = labels.get(OWNER_LABEL, ":").partition(":")
            ours = this_run and labels.get(RUN_LABEL) == self.run
            orphan = owner_host == host and pid.isdigit() and not _alive(int(pid))
            if ours or orphan:
                _remove(container)
                removed += 1
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def tar_bytes(files: dict[str, bytes | str]) -> bytes:
    """An uncompressed tar of {path: content}, for build contexts and files put into containers."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in files.items():
            blob = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(blob), 0o755 if path.endswith(".sh") else 0o644, 0
            tar.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()
