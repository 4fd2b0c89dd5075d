"""The Docker engine: connecting to it, and installing and starting one where none answers.

monkeys talks to Docker only through the docker SDK. Installing an engine is the one place that
shells out (apt-get, dockerd), because there is no engine yet to talk to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from harness.apt import InstallError, apt_install

DOCKERD_LOG = Path("/var/log/monkeys-dockerd.log")


class EngineUnavailable(RuntimeError):
    """No Docker engine answers; the message says what to do."""


@dataclass(frozen=True)
class EngineInfo:
    """What the engine says about itself."""

    version: str
    api_version: str
    root_dir: str
    storage_driver: str


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (default: the local socket), checked with a ping."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except docker.errors.DockerException as err:
        raise EngineUnavailable(f"no Docker engine answers ({_short(err)}). {fix_advice()}") from None


def info(client: docker.DockerClient) -> EngineInfo:
    """Engine version, API version, data root and storage driver."""
    version = client.version()
    details = client.info()
    return EngineInfo(
        version=version.get("Version", "?"),
        api_version=version.get("ApiVersion", "?"),
        root_dir=details.get("DockerRootDir", "/var/lib/docker"),
        storage_driver=details.get("Driver", "?"),
    )


def fix_advice() -> str:
    """What the user must do to get an engine, for this machine."""
    if _can_install():
        return "Run `monkeys doctor --fix` (as root) to install Debian's docker.io and start dockerd."
    if shutil.which("dockerd") or shutil.which("docker"):
        return (
            "Start the engine: `sudo systemctl start docker` (or `sudo dockerd &` without systemd), and make "
            "sure this user may use it (`sudo usermod -aG docker $USER`, then log in again) or set DOCKER_HOST."
        )
    return (
        "Install Docker Engine (https://docs.docker.com/engine/install/, or `sudo apt-get install docker.io` "
        "on Debian/Ubuntu), start it, and make sure this user may use it or set DOCKER_HOST."
    )


def ensure_engine(say=print, wait_s: float = 60.0) -> docker.DockerClient:
    """Connect; where no engine answers and this is root on Debian/Ubuntu, install and start one.

    The engine is started as a system daemon (systemd where it runs, else dockerd in its own
    session), so it outlives this command by design, like any system service.
    """
    try:
        return connect()
    except EngineUnavailable:
        if not _can_install() and not (_is_root() and shutil.which("dockerd")):
            raise
    if not shutil.which("dockerd"):
        say("Installing Debian's docker.io (apt-get)...")
        try:
            apt_install(["docker.io"], say=say)
        except InstallError as err:
            raise EngineUnavailable(str(err)) from None
    say("Starting dockerd...")
    if _has_systemd():
        _run(["systemctl", "start", "docker"], dict(os.environ))
    else:
        log = DOCKERD_LOG.open("ab")
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return connect()
        except EngineUnavailable:
            if time.monotonic() > deadline:
                raise EngineUnavailable(
                    f"dockerd was started but did not answer within {wait_s:.0f} s; see {DOCKERD_LOG}"
                ) from None
            time.sleep(0.5)


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise EngineUnavailable(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def _is_root() -> bool:
    return os.geteuid() == 0


def _can_install() -> bool:
    return _is_root() and shutil.which("apt-get") is not None


def _has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
