"""The one way monkeys installs Debian packages: the engine's docker.io, and the Makefile's test tools
(``python -m harness.apt PACKAGE...``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

# Seconds an install waits for another apt to finish (a fresh machine's first-boot updates,
# unattended-upgrades) before it fails.
APT_LOCK_WAIT_S = 900
# What apt says when another apt holds one of its locks.
_LOCK_HELD = re.compile(r"Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock")


class InstallError(RuntimeError):
    """Debian packages could not be installed; the message names them and why."""


def can_apt_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(packages: list[str], *, wait_s: float = APT_LOCK_WAIT_S, say=print) -> None:
    """Install Debian packages (root on Debian/Ubuntu), waiting for apt's locks rather than failing
    on them; raises InstallError naming the packages.

    apt waits for dpkg's locks itself (DPkg::Lock::Timeout), but not, as of apt 2.6, for the lists
    lock that `apt-get update` takes nor for the archives lock of the downloads: a command that
    failed because a lock is held is rerun every few seconds until ``wait_s`` have passed.
    """
    names = " ".join(packages)
    if not can_apt_install():
        raise InstallError(f"installing {names} needs root and apt-get; install it by hand")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    deadline = time.monotonic() + wait_s
    apt = ["apt-get", "-o", f"DPkg::Lock::Timeout={int(wait_s)}"]
    for args in (["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", *packages]):
        said = False
        while True:
            done = subprocess.run([*apt, *args], env=env, capture_output=True, text=True)
            if done.returncode == 0:
                break
            if not _LOCK_HELD.search(done.stderr) or time.monotonic() > deadline:
                raise InstallError(f"could not install {names}: `apt-get {' '.join(args)}` failed "
                                   f"({done.returncode}): {done.stderr.strip()[-800:]}")
            if not said:
                say(f"Another apt holds its lock; waiting up to {wait_s:.0f} s to install {names}...")
                said = True
            time.sleep(5)


def main(argv: list[str]) -> int:
    """`python -m harness.apt PACKAGE...`: apt_install, for the Makefile's test tools."""
    if not argv:
        print("usage: python -m harness.apt PACKAGE...", file=sys.stderr)
        return 2
    try:
        apt_install(argv, say=lambda line: print(line, file=sys.stderr))
    except InstallError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
