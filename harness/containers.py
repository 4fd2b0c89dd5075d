"""The one container runtime: every container monkeys starts is made, limited, labelled, timed out
and removed here.

A container idles (``sleep infinity``) while commands run in it as execs, each under coreutils'
``timeout``, which signals the command's whole process group, then kills whatever left the group
(``kill_others``), and, as a backstop, a host-side deadline that kills the container. Execs cost about 50 ms here, far less than a container, so one
container serves every step of an evaluation. No host environment variable enters a container: only
the image's own ENV, what a caller passes explicitly and, while a container is on the network, the
variables pointing at the host's CA bundle where its image names none (harness/tls.py). Every container drops the capabilities no
test run or attempt needs and may not gain privileges (setuid binaries included), and what a command
prints is read back capped, its head and tail kept.
"""

from __future__ import annotations

import io
import os
import select
import socket
import struct
import tarfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import docker
import docker.errors

from harness.tls import CONTAINER_CA_PATH, ca_environment, host_ca_bundle, image_env

RUN_LABEL = "monkeys.run"
OWNER_LABEL = "monkeys.owner"  # "<host>:<pid>" of the process that made it, so leftovers can be reaped
KIND_LABEL = "monkeys.kind"
# Seconds past a command's own timeout before the host gives up on it and kills the container.
HOST_GRACE_S = 30.0
# GNU timeout's exit status when the command timed out (TERM), and when it had to KILL it.
_TIMEOUT_CODES = (124, 137)
# Seconds a kill (KILL_FUNCTION) may take before the host gives up on it.
KILL_DEADLINE_S = 30.0
# Passes of each phase of a kill: a fork bomb at a full pid limit takes a few; the bound is for
# processes that can neither stop nor die (uninterruptible sleep).
_KILL_PASSES = 50
# `__monkeys_kill KEEP SPARE` kills every process but PID 1 (docker-init), the container's idle
# command (init's oldest child; orphans init adopted came later), the pids in KEEP and itself.
# One pass of SIGKILL over /proc is not enough: processes it has not reached yet fork new ones
# behind it, which a fork bomb does faster than a pass ends. So first SIGSTOP every process, pass
# after pass, until a pass finds none still running (a stopped process cannot fork, so this ends
# however fast they multiply), then SIGKILL them until nothing but zombies (which init or their
# parent reaps) is left. SPARE (a shell that is to go on) is stopped with the rest, so it cannot
# fork either, spared the kill, then continued. Builtins only: it forks nothing, so it works when a
# fork bomb holds every pid. Status 0 when nothing else is left, 1 when something outlived the passes.
KILL_FUNCTION = r"""
__monkeys_kill() {
  local keep=" 1 $$ $1 " spare=" $2 " d p c stat state pass busy=0 idle= oldest=
  local -a f kids
  read -r -a kids 2>/dev/null < /proc/1/task/1/children
  for c in "${kids[@]}"; do
    read -r stat 2>/dev/null < "/proc/$c/stat" || continue
    f=(${stat##*) })
    if [ -z "$oldest" ] || [ "${f[19]}" -lt "$oldest" ]; then oldest=${f[19]} idle=$c; fi
  done
  keep="$keep$idle "
  for pass in {1..PASSES}; do
    busy=0
    for d in /proc/[0-9]*; do
      p=${d#/proc/}
      case $keep in *" $p "*) continue;; esac
      read -r stat 2>/dev/null < "$d/stat" || continue
      state=${stat##*) }; state=${state%% *}
      case $state in T|t|Z|X|x) continue;; esac
      builtin kill -STOP "$p" 2>/dev/null && busy=1
    done
    [ $busy = 0 ] && break
  done
  for pass in {1..PASSES}; do
    busy=0
    for d in /proc/[0-9]*; do
      p=${d#/proc/}
      case $keep$spare in *" $p "*) continue;; esac
      read -r stat 2>/dev/null < "$d/stat" || continue
      state=${stat##*) }; state=${state%% *}
      case $state in Z|X|x) continue;; esac
      builtin kill -KILL "$p" 2>/dev/null && busy=1
    done
    [ $busy = 0 ] && break
  done
  for p in $2; do builtin kill -CONT "$p" 2>/dev/null; done
  return $busy
}
""".replace("PASSES", str(_KILL_PASSES))
# Bytes of a command's output read back: its first and last half, the middle dropped with a note, so
# a patch printing gigabytes cannot exhaust the host's memory. A test log's statuses sit at its end
# (pytest's summary) or spread through it (django, sympy): official Lite logs are far smaller.
OUTPUT_CAP = 32 * 1024 * 1024
# Capabilities a container keeps; Docker's defaults minus MKNOD (device nodes), NET_RAW (raw sockets,
# ping), NET_BIND_SERVICE (ports below 1024), SYS_CHROOT, SETFCAP, SETPCAP (file and process
# capabilities) and AUDIT_WRITE (login records), which no test run or attempt needs. The kept ones
# let root do what the official harness's root (with Docker's defaults) does to files and processes,
# so a test that works there works here:
KEPT_CAPABILITIES = (
    "CHOWN",  # tar, pip and tests (shutil.chown) set files' owners
    "DAC_OVERRIDE",  # root reads and writes files whatever their modes: tests and git on read-only files
    "FOWNER",  # chmod/utime of files root does not own (extracted archives, files tests give away)
    "FSETID",  # setgid bits kept as root sets them (tests of file modes, pip copying modes)
    "SETUID", "SETGID",  # switching users: su/runuser in tests, apt's _apt sandbox, tests that drop root
    "KILL",  # signalling processes of other users: a killed command's children, whoever runs them
)


@dataclass(frozen=True)
class Limits:
    """Resources of one container (the official harness gives an evaluation 2 CPUs)."""

    cpus: float = 2.0
    memory: str = "4g"
    pids: int = 1024


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    """None when the command was killed at its timeout."""
    output: str
    """stdout and stderr together, in the order written; past OUTPUT_CAP, its head and tail with a
    note between."""
    seconds: float
    truncated_bytes: int = 0
    """Bytes dropped from the middle of the output."""

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


class HeadTail:
    """Keeps the first and last ``limit // 2`` bytes of a stream, however long it runs."""

    def __init__(self, limit: int):
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_len = 0
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail.append(data)
        self.tail_len += len(data)
        while self.tail_len - len(self.tail[0]) >= self.half:
            gone = self.tail.popleft()
            self.tail_len -= len(gone)
            self.dropped += len(gone)

    def text(self) -> tuple[str, int]:
        """(the kept text, with a note of the bytes dropped where they were dropped; that count)."""
        tail = b"".join(self.tail)
        if self.tail_len > self.half:
            cut = self.tail_len - self.half
            tail, self.dropped = tail[cut:], self.dropped + cut
            self.tail = deque([tail])
            self.tail_len = self.half
        head = self.head.decode("utf-8", errors="replace")
        rest = tail.decode("utf-8", errors="replace")
        if self.dropped:
            return f"{head}\n[... {self.dropped} bytes of output omitted ...]\n{rest}", self.dropped
        return head + rest, 0


class Container:
    """One running container; made by ``ContainerRuntime.open``, which removes it."""

    def __init__(self, handle, client: docker.DockerClient, network_env: dict[str, str] | None = None):
        self.handle = handle
        self.client = client
        self.network_env = dict(network_env or {})
        """Variables every command gets while the container is on the network (the host's CA bundle
        for an image without its own, harness/tls.py); emptied when it leaves the network."""

    @property
    def id(self) -> str:
        return self.handle.id

    def put_files(self, files: dict[str, bytes | str], root: str = "/monkeys") -> None:
        """Write {relative path: content} under ``root``."""
        rel = root.strip("/")
        self.handle.put_archive("/", tar_bytes({f"{rel}/{k}": v for k, v in files.items()}))

    def disconnect_network(self) -> None:
        """Take the container off every network it is on (a step that needed the network is done)."""
        self.network_env = {}  # what runs offline runs as the image alone has it
        self.handle.reload()
        for name in (self.handle.attrs.get("NetworkSettings") or {}).get("Networks") or {}:
            self.client.api.disconnect_container_from_network(self.handle.id, name, force=True)

    def exec(self, command: str, *, timeout: float, workdir: str | None = None,
             environment: dict[str, str] | None = None) -> ExecResult:
        """Run ``command`` with bash; at ``timeout`` seconds it is killed with everything it started.

        Past the timeout, `timeout` kills the command's process group; what left the group (setsid,
        a daemon) is then killed by ``kill_others``, with every other process but the container's
        own (a shell session open in it too: this is for containers whose commands run one by one).
        """
        # One stream: Docker carries stdout and stderr apart and cannot keep their order between them.
        argv = ["timeout", "-k", "5", f"{max(timeout, 0.1):.1f}", "bash", "-c", f"exec 2>&1\n{command}"]
        result = self.exec_argv(argv, deadline=timeout + HOST_GRACE_S, workdir=workdir, environment=environment)
        if result.exit_code is None:
            # The in-container timeout failed to end it (a process escaped its group): end them all.
            self.handle.kill()
            return result
        if result.exit_code in _TIMEOUT_CODES and result.seconds >= timeout:
            if not self.kill_others():
                self.handle.kill()  # something outlived the kill: end them all
            return replace(result, exit_code=None)
        return result

    def kill_others(self, keep: str = "", spare: str = "") -> bool:
        """Run KILL_FUNCTION: every process but init, the idle command, the pids in ``keep`` (space-
        separated) and, stopped meanwhile, those in ``spare`` is killed. As the exec's own process
        (a wrapper that had to fork would fail under a fork bomb), retried while a full pid limit
        refuses the exec itself, and a few times while what it killed is still dying. True when
        nothing else is left."""
        argv = ["bash", "--noprofile", "--norc", "-c", f"{KILL_FUNCTION}\n__monkeys_kill '{keep}' '{spare}'"]
        for attempt in range(10):
            code = self.exec_argv(argv, deadline=KILL_DEADLINE_S).exit_code
            if code == 0:
                return True
            # 1: it ran, and processes it killed had not yet died by its last pass (a loaded host can
            # take longer than its passes): they are asked again after a pause, and only a few times.
            # Anything else is the exec refused (126) or hung.
            if code == 1 and attempt >= 3:
                return False
            time.sleep(0.2 * (attempt + 1))
        return False

    def exec_argv(self, argv: list[str], *, deadline: float, workdir: str | None = None,
                  environment: dict[str, str] | None = None) -> ExecResult:
        """Run ``argv`` as the exec's own process, nothing wrapped around it (so nothing has to fork);
        exit_code is None when ``deadline`` seconds pass first, and then nothing is killed. The
        output is read as it comes and capped at OUTPUT_CAP (head and tail kept)."""
        started = time.monotonic()
        api = self.client.api
        env = {**self.network_env, **(environment or {})}
        exec_id = api.exec_create(self.handle.id, argv, workdir=workdir, environment=env)["Id"]
        sock = api.exec_start(exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)
        out = HeadTail(OUTPUT_CAP)
        try:
            # The stream is read here, not with docker's frames_iter, whose reads wait without a
            # timeout: a command that printed nothing would hold this call past any deadline.
            raw.settimeout(None)
            buf = bytearray()
            while True:
                left = started + deadline - time.monotonic()
                if left <= 0:
                    text, dropped = out.text()
                    return ExecResult(None, text, time.monotonic() - started, dropped)
                if not select.select([raw], [], [], left)[0]:
                    continue
                chunk = raw.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                # Docker's multiplexed frames: 8-byte header (stream, 0, 0, 0, size), then the payload.
                while len(buf) >= 8 and len(buf) >= 8 + (size := struct.unpack(">I", buf[4:8])[0]):
                    out.add(bytes(buf[8:8 + size]))
                    del buf[:8 + size]
        finally:
            sock.close()
        code = self._exit_code(exec_id, started + deadline)
        text, dropped = out.text()
        return ExecResult(code, text, time.monotonic() - started, dropped)

    def _exit_code(self, exec_id: str, by: float) -> int | None:
        """The exit code of an exec whose output has ended. The engine may still report it running
        for a moment after its stream closes (seen under load), with no exit code yet: that is not a
        hang, so ask again (until ``by``, the exec's deadline, and at least for a few seconds)."""
        by = max(by, time.monotonic() + 5.0)
        while True:
            state = self.client.api.exec_inspect(exec_id)
            if not state.get("Running") or time.monotonic() >= by:
                return state.get("ExitCode")
            time.sleep(0.05)


class ContainerRuntime:
    """Makes containers for one run (a label), and reaps what crashed runs left behind."""

    def __init__(self, client: docker.DockerClient, run: str, limits: Limits = Limits()):
        self.client = client
        self.run = run
        self.limits = limits
        self.owner = self.owner_label()
        self._host_ca: bytes | None = None  # read once, on the first container with the network

    def host_ca(self) -> bytes:
        """The bytes of the host's CA bundle (empty where it has none)."""
        if self._host_ca is None:
            path = host_ca_bundle()
            self._host_ca = path.read_bytes() if path else b""
        return self._host_ca

    @staticmethod
    def owner_label() -> str:
        """This process's ``monkeys.owner`` value."""
        return f"{socket.gethostname()}:{os.getpid()}"

    @contextmanager
    def open(self, image: str, *, files: dict[str, bytes | str] | None = None, network: bool = False,
             kind: str = "eval", labels: dict[str, str] | None = None) -> Iterator[Container]:
        """A fresh running container from ``image``, removed on leaving the block, whatever happens.

        ``files`` land under /monkeys/ before it starts. It keeps only KEPT_CAPABILITIES, and
        no-new-privileges stops setuid binaries and file capabilities from adding any back. With
        ``network``, an image that names no CA bundle of its own (PIP_CERT) gets the host's at
        CONTAINER_CA_PATH, and its commands the variables pointing there while it stays on the
        network, so pip and the rest work behind a TLS-intercepting proxy as in monkeys' own images.
        """
        network_env: dict[str, str] = {}
        if network:
            env = image_env((self.client.images.get(image).attrs.get("Config") or {}).get("Env"))
            ca = self.host_ca()
            network_env = ca_environment(env) if ca else {}
            if network_env:
                files = {**(files or {}), CONTAINER_CA_PATH.removeprefix("/monkeys/"): ca}
        handle = self.client.containers.create(
            image,
            command=["sleep", "infinity"],
            init=True,  # docker-init as PID 1 reaps what a killed command leaves behind
            labels={**(labels or {}), RUN_LABEL: self.run, OWNER_LABEL: self.owner, KIND_LABEL: kind},
            environment={},
            network_disabled=not network,
            nano_cpus=int(self.limits.cpus * 1e9),
            mem_limit=self.limits.memory,
            pids_limit=self.limits.pids,
            cap_drop=["ALL"],
            cap_add=list(KEPT_CAPABILITIES),
            security_opt=["no-new-privileges"],
            detach=True,
        )
        try:
            container = Container(handle, self.client, network_env)
            if files:
                container.put_files(files)
            handle.start()
            yield container
        finally:
            _remove(handle)

    def run_script(self, image: str, script: str, files: dict[str, bytes | str] | None = None, *,
                   timeout: float = 1800.0, network: bool = False, kind: str = "script") -> ExecResult:
        """Run ``script`` in a fresh container, which is removed afterwards."""
        with self.open(image, files={"run.sh": script, **(files or {})}, network=network, kind=kind) as container:
            return container.exec("bash /monkeys/run.sh", timeout=timeout)

    def reap(self, *, this_run: bool = False) -> int:
        """Remove containers of this run (``this_run``), or of any monkeys process no longer alive here."""
        removed = 0
        host = socket.gethostname()
        # Another process may remove its containers while this lists them: not an error.
        for container in self.client.containers.list(all=True, filters={"label": RUN_LABEL}, ignore_removed=True):
            labels = container.labels
            owner_host, _, pid = labels.get(OWNER_LABEL, ":").partition(":")
            ours = this_run and labels.get(RUN_LABEL) == self.run
            orphan = owner_host == host and pid.isdigit() and not alive(int(pid))
            if ours or orphan:
                _remove(container)
                removed += 1
        return removed


def alive(pid: int) -> bool:
    """Whether process ``pid`` on this host still runs."""
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
