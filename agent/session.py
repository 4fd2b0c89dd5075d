"""A persistent shell in an attempt's container: one ``bash`` attached over the Docker socket, so a
command costs a write and a read (well under a millisecond of overhead) instead of a ``docker exec``
(about 50 ms here), and ``cd`` or ``export`` carry over from one command to the next.

Each command is sent as an ANSI-C quoted string (``$'...'``) and ``eval``-ed by the shell with stdin
from /dev/null, so a syntax error, an unbalanced quote or a command that reads stdin cannot swallow
the protocol. After it, the shell prints a marker carrying a random nonce and the exit status; the
model never sees the nonce, so its commands cannot forge the end of their output.

A command that outlives its timeout is killed, with everything it started (every process in the
container but the init, the idle ``sleep``, the shell itself and the killer below); if the shell is
then still busy (a loop in the shell itself, ``exec`` of something else) or it died (``exit``,
``kill $$``), a fresh shell replaces it in the repository. Either way the command costs only itself,
never the attempt.

The kill must be complete even against a fork bomb, or the survivors refill the pid limit and every
later command of the attempt fails. Two things made it incomplete: one pass of SIGKILL over /proc,
while the processes not reached yet forked new ones behind it (harness.containers.KILL_FUNCTION
now stops them all first, then kills them); and the kill ran in a fresh ``docker exec``, which needs
a free pid, which a fork bomb holding the whole limit does not leave. So the kill runs in a second
bash started with the session, before any command: the killer, which needs no new pid and forks
nothing. Should a command kill the killer, a ``docker exec`` runs the same kill (retried while the
pid limit refuses it) and a new killer starts.
"""

from __future__ import annotations

import enum
import secrets
import select
import socket
import struct
import time
from dataclasses import dataclass

from harness.containers import KILL_FUNCTION, Container, HeadTail

REPO_DIR = "/testbed"
# The official images' environment, as their eval scripts activate it.
ACTIVATE = "source /opt/miniconda3/bin/activate 2>/dev/null && conda activate testbed 2>/dev/null"
# Pagers, editors and colours make no sense to a model reading output.
SHELL_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "MANPAGER": "cat", "TERM": "dumb", "NO_COLOR": "1",
             "PIP_PROGRESS_BAR": "off", "TQDM_DISABLE": "1", "PYTHONDONTWRITEBYTECODE": "1",
             "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": "/root"}
# Seconds a killed command's shell gets to print its marker before it is replaced.
_SETTLE_S = 2.0
# Seconds the killer gets to report; past it, the kill is redone by a `docker exec`.
_KILL_S = 30.0


class CommandEnd(str, enum.Enum):
    """How a command ended."""

    EXITED = "exited"  # it finished; exit_code is its status
    TIMED_OUT = "timed_out"  # killed at its timeout
    SHELL_DIED = "shell_died"  # it ended the shell itself (exit, exec, kill $$); a fresh shell took over


@dataclass(frozen=True)
class CommandResult:
    end: CommandEnd
    exit_code: int | None
    output: str
    """stdout and stderr together; past the size limit, its head and tail with a note between."""
    seconds: float
    truncated_bytes: int = 0
    """Bytes dropped from the middle of the output."""
    restarted: bool = False
    """A fresh shell replaced the old one (working directory and variables are back to the start)."""


class SessionError(RuntimeError):
    """The container stopped answering: an infrastructure failure, not the model's."""


def ansi_c_quote(text: str) -> str:
    """``text`` as a bash ``$'...'`` word: every byte but plain printable ASCII escaped, so nothing in
    it (quotes, newlines, backslashes, non-UTF-8) can end the word early."""
    out = []
    for byte in text.encode("utf-8", errors="surrogateescape"):
        ch = chr(byte)
        if 0x20 <= byte < 0x7F and ch not in "\\'":
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


class _Pipe:
    """One bash attached over the Docker socket: commands go in on its stdin, its stdout and stderr
    come back as one stream, and each reply ends with a marker line, a random nonce and a number."""

    def __init__(self, container: Container, *, workdir: str, env: dict[str, str], setup: str):
        api = container.client.api
        exec_id = api.exec_create(container.id, ["bash", "--noprofile", "--norc"], stdin=True, tty=False,
                                  workdir=workdir, environment=env)["Id"]
        self.sock = api.exec_start(exec_id, socket=True)
        self.raw: socket.socket = getattr(self.sock, "_sock", self.sock)
        self.raw.setblocking(True)
        self.buf = bytearray()  # undecoded frame bytes
        self.nonce = secrets.token_hex(12)
        self.pid = 0
        # Its own stderr goes to its stdout too, so the reply is one ordered stream.
        self.send(f"exec 2>&1\n{setup}\necho {self.nonce} $$\n".encode())

    def started(self, timeout: float) -> bool:
        """Wait for the setup's marker; False if it did not come."""
        try:
            marker = self.read_until_marker(timeout)
        except OSError:
            return False
        if marker is None or marker[0] is None:
            return False
        self.pid = marker[1]
        return True

    def send(self, data: bytes) -> None:
        self.raw.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def read_until_marker(self, timeout: float, out: HeadTail | None = None) -> tuple[int | None, int] | None:
        """Read stdout frames until the marker line. Returns (True-ish, exit status) when it came,
        (None, 0) at the timeout, and None when the shell closed the stream."""
        deadline = time.monotonic() + timeout
        marker = self.nonce.encode() + b" "
        window = bytearray()  # the not-yet-released end of the output, where a marker may be starting
        while True:
            while True:
                frame = self._next_frame()
                if frame is None:
                    break
                window += frame
                at = window.find(marker)
                if at >= 0:
                    end = window.find(b"\n", at)
                    if end < 0:  # the status has not all arrived yet
                        break
                    if out is not None:
                        out.add(bytes(window[:at]))
                    rest = bytes(window[end + 1:])
                    self.buf[:0] = _frame(rest) if rest else b""
                    status = window[at + len(marker):end].strip()
                    return 1, int(status) if status.lstrip(b"-").isdigit() else -1
                # Release all but what could be the start of a marker.
                keep = len(marker) + 16
                if len(window) > keep:
                    if out is not None:
                        out.add(bytes(window[:-keep]))
                    del window[:-keep]
            left = deadline - time.monotonic()
            if left <= 0:
                if out is not None:
                    out.add(bytes(window))
                return None, 0
            ready, _, _ = select.select([self.raw], [], [], left)
            if not ready:
                continue
            chunk = self.raw.recv(65536)
            if not chunk:
                if out is not None:
                    out.add(bytes(window))
                return None
            self.buf += chunk

    def _next_frame(self) -> bytes | None:
        """One payload from Docker's multiplexed stream (8-byte header: stream, 0, 0, 0, size)."""
        if len(self.buf) < 8:
            return None
        (size,) = struct.unpack(">I", self.buf[4:8])
        if len(self.buf) < 8 + size:
            return None
        payload = bytes(self.buf[8:8 + size])
        del self.buf[:8 + size]
        return payload


class ShellSession:
    """One long-lived bash in ``container``, started in the repository with its environment active.

    Not thread-safe: one attempt drives one session.
    """

    def __init__(self, container: Container, *, workdir: str = REPO_DIR, output_limit: int = 10_000,
                 env: dict[str, str] | None = None):
        self.container = container
        self.workdir = workdir
        self.output_limit = output_limit
        self.env = {**SHELL_ENV, **(env or {})}
        self.restarts = 0
        self._shell: _Pipe | None = None
        self._killer: _Pipe | None = None
        self._start()

    # -- lifecycle ----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._killer is None:
            # Before the shell, so that it is there, needing no pid, whenever a command must be killed.
            self._start_killer()
        try:
            self._shell = _Pipe(self.container, workdir=self.workdir, env=self.env,
                                setup=f"cd {self.workdir} 2>/dev/null\n{ACTIVATE}")
        except Exception as err:  # docker.errors.APIError, a closed socket: the container is gone
            raise SessionError(f"cannot start a shell in container {self.container.id[:12]}: {err}") from err
        if not self._shell.started(timeout=30.0):
            raise SessionError(f"the shell in container {self.container.id[:12]} did not start")

    def close(self) -> None:
        for pipe in (self._shell, self._killer):
            if pipe is not None:
                pipe.close()
        self._shell = self._killer = None

    def __enter__(self) -> "ShellSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- commands -----------------------------------------------------------------------------

    def run(self, command: str, timeout: float = 60.0, output_limit: int | None = None) -> CommandResult:
        """Run ``command`` in the shell; past ``timeout`` seconds it is killed with all it started.
        ``output_limit`` overrides the session's for this command (the host reading a whole file)."""
        started = time.monotonic()
        out = HeadTail(output_limit or self.output_limit)
        shell = self._shell
        assert shell is not None, "the session is closed"
        # `builtin`: a function the model defines named echo or eval must not break the protocol.
        line = (f"builtin eval {ansi_c_quote(command)} </dev/null\n"
                f"__monkeys_s=$?; builtin echo; builtin echo {shell.nonce} $__monkeys_s\n")
        try:
            shell.send(line.encode())
            marker = shell.read_until_marker(timeout, out)
        except OSError:
            marker = None
        if marker is None:  # the shell is gone
            return self._after_death(out, started, CommandEnd.SHELL_DIED)
        if marker[0] is None:  # timed out
            self._kill_others()
            try:
                marker = shell.read_until_marker(_SETTLE_S, out)
            except OSError:
                marker = None
            if marker is None or marker[0] is None:
                return self._after_death(out, started, CommandEnd.TIMED_OUT)
            # Reap the killed background jobs here, so that bash's "Killed ..." notices land in
            # this command's output rather than at the start of the next one's (a race otherwise).
            # bash prints a notice when it next reads a line, hence the marker on a line of its own.
            try:
                shell.send(f"builtin wait\nbuiltin echo {shell.nonce} 0\n".encode())
                marker = shell.read_until_marker(_SETTLE_S, out)
            except OSError:
                marker = None
            if marker is None or marker[0] is None:
                return self._after_death(out, started, CommandEnd.TIMED_OUT)
            text, dropped = out.text()
            return CommandResult(CommandEnd.TIMED_OUT, None, _strip_echo(text), time.monotonic() - started, dropped)
        text, dropped = out.text()
        return CommandResult(CommandEnd.EXITED, marker[1], _strip_echo(text), time.monotonic() - started, dropped)

    def _after_death(self, out: HeadTail, started: float, end: CommandEnd) -> CommandResult:
        if self._shell is not None:
            self._shell.close()
        self._kill_others(shell_too=True)
        self.restarts += 1
        self._start()
        text, dropped = out.text()
        return CommandResult(end, None, text, time.monotonic() - started, dropped, restarted=True)

    def _kill_others(self, shell_too: bool = False) -> None:
        """Every process but the container's own (init, the idle command), the killer and, unless
        ``shell_too``, the shell (stopped while the rest dies, then continued)."""
        spare = "" if shell_too or self._shell is None else str(self._shell.pid)
        if self._killer is not None:
            call = f"__monkeys_kill '' '{spare}'; builtin echo; builtin echo {self._killer.nonce} $?\n"
            try:
                self._killer.send(call.encode())
                marker = self._killer.read_until_marker(_KILL_S)
            except OSError:
                marker = None
            if marker is not None and marker[0] is not None:
                if marker[1] == 0 or not shell_too:  # a spared shell may itself be what forks
                    return
            else:  # a command killed or stopped it
                self._killer.close()
                self._killer = None
        try:
            done = self.container.kill_others(str(self._killer.pid) if self._killer else "", spare)
        except Exception as err:  # docker.errors.APIError: the container is gone
            raise SessionError(f"cannot stop a command in container {self.container.id[:12]}: {err}") from err
        if not done and shell_too:
            raise SessionError(f"cannot stop a command in container {self.container.id[:12]}: "
                               "processes outlived the kill")
        if self._killer is None:
            self._start_killer()

    def _start_killer(self) -> None:
        """The killer: a bash that has defined KILL_FUNCTION and waits. If it cannot start, there is
        none, and the kill runs as a `docker exec` until a later start succeeds."""
        try:
            killer = _Pipe(self.container, workdir="/", env={"LC_ALL": "C"}, setup=KILL_FUNCTION)
        except Exception:  # docker.errors.APIError: the container is gone, which the next command reports
            return
        if killer.started(timeout=30.0):
            self._killer = killer
        else:
            killer.close()


def _frame(payload: bytes) -> bytes:
    return b"\x01\x00\x00\x00" + struct.pack(">I", len(payload)) + payload


def _strip_echo(text: str) -> str:
    # The protocol's own `echo` puts one newline before the marker; output that ended without a
    # newline would otherwise run into it.
    return text[:-1] if text.endswith("\n") else text
