"""One attempt: a fresh container from the task's image, a shell session in it, a scaffold driving
the model, and the patch collected at the end, whatever ended the attempt.

Control flow that ends an attempt early (a limit, the context filling up) is one exception,
``AttemptOver``, raised by the meter or a scaffold and handled here; the diff made so far is still
collected. A request that failed on its own (``RequestRefused``: a content filter, a full context,
an empty answer) ends its attempt the same way, with its own exit reason. Failures outside the
model's control (the model server gone after its retries, the container engine failing) make the
attempt an infrastructure error, which is redone on resume and never scored.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import docker.errors

from agent.model import Model, ModelUnavailable, Reply, RequestRefused
from agent.prompts import Templates
from agent.session import REPO_DIR, SessionError, ShellSession
from harness.containers import ContainerRuntime
from harness.scores.prices import HourlyPrice, Price, TokenPrice, Usage, hourly_cost, token_cost
from harness.tasks import Task

# Files no fix needs and `git add -A` would otherwise sweep into the patch.
_JUNK = ["__pycache__/", "*.py[cod]", ".pytest_cache/", "*.egg-info/", ".mypy_cache/", ".tox/", ".coverage",
         ".hypothesis/", "*.orig", "*.rej"]


class ExitReason(str, enum.Enum):
    """Why an attempt ended."""

    SUBMITTED = "submitted"  # bash: the model said it was done
    ANSWERED = "answered"  # edit: the model's edits were applied
    NO_EDIT = "no_edit"  # edit: the answer held no edit that applied
    STEP_LIMIT = "step_limit"
    TOKEN_LIMIT = "token_limit"
    COST_LIMIT = "cost_limit"
    TIME_LIMIT = "time_limit"
    CONTEXT_LIMIT = "context_limit"  # the conversation outgrew the model's context
    CONTENT_FILTER = "content_filter"  # the provider's content filter refused a request or withheld its answer
    MODEL_ERROR = "model_error"  # one request failed on its own (refused body, empty answer); the run goes on
    REPLY_CUT = "reply_cut"  # replies cut at --max-tokens before they held a command
    FORMAT_ERRORS = "format_errors"  # too many replies in a row without a usable command
    ENVIRONMENT_BROKEN = "environment_broken"  # the model's commands left the container unusable
    INFRA_ERROR = "infra_error"  # model server or container engine failed: redo, never score


@dataclass(frozen=True)
class AttemptLimits:
    """Per-attempt limits; whichever is hit first ends the attempt, keeping its diff."""

    steps: int = 50
    """Model calls (bash: commands)."""
    tokens: int = 400_000
    """Input plus output tokens over all calls."""
    dollars: float = 2.0
    wall_seconds: float = 1800.0
    command_timeout: float = 120.0
    """Seconds one shell command may run before it is killed (the attempt goes on)."""
    output_chars: int = 10_000
    """Output kept from one command: its head and tail, with the middle dropped."""
    format_errors: int = 3
    """Replies in a row without a usable command before the attempt ends."""
    context_window: int | None = None
    """The model's context window in tokens (None: unknown, nothing trimmed); a chat scaffold fits
    each request into it (agent/context.py) and ends the attempt with context_limit when it cannot."""


class AttemptOver(Exception):
    """Ends an attempt early; the diff made so far is kept."""

    def __init__(self, reason: ExitReason, message: str = ""):
        super().__init__(message or reason.value)
        self.reason = reason


class Meter:
    """Tokens, dollars and time of one attempt, checked against its limits after every model call."""

    def __init__(self, limits: AttemptLimits, price: Price, share: float, abort: threading.Event | None = None):
        self.limits = limits
        self.abort = abort
        self.price = price
        self.share = share
        self.started = time.monotonic()
        self.usage = Usage()
        self.token_dollars = 0.0
        self.model_seconds = 0.0
        self.container_seconds = 0.0
        self.calls = 0
        self.retries = 0

    @property
    def wall_seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def dollars(self) -> float:
        if isinstance(self.price, HourlyPrice):
            # A local model is paid by the hour of its host: this attempt's share of that time.
            return hourly_cost(self.wall_seconds, self.price, self.share)
        return self.token_dollars

    def add(self, reply: Reply) -> None:
        self.calls += 1
        self.retries += reply.retries
        self.usage = self.usage + reply.usage
        self.model_seconds += reply.seconds
        if isinstance(self.price, TokenPrice):
            self.token_dollars += token_cost(reply.usage, self.price)
        self.check()

    def check(self) -> None:
        lim = self.limits
        if self.abort is not None and self.abort.is_set():
            # Interrupted: the attempt is abandoned unrecorded, and redone by the next call.
            raise AttemptOver(ExitReason.INFRA_ERROR, "interrupted")
        if self.usage.total >= lim.tokens:
            raise AttemptOver(ExitReason.TOKEN_LIMIT, f"{self.usage.total} tokens (limit {lim.tokens})")
        if self.dollars >= lim.dollars:
            raise AttemptOver(ExitReason.COST_LIMIT, f"${self.dollars:.4f} (limit ${lim.dollars})")
        if self.wall_seconds >= lim.wall_seconds:
            raise AttemptOver(ExitReason.TIME_LIMIT, f"{self.wall_seconds:.0f} s (limit {lim.wall_seconds:.0f} s)")

    def steps_left(self) -> int:
        return self.limits.steps - self.calls


@dataclass
class Context:
    """What a scaffold gets for one attempt."""

    task: Task
    index: int
    seed: int
    model: Model
    session: ShellSession
    templates: Templates
    limits: AttemptLimits
    meter: Meter
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    """Every message and observation, in order, as the trajectory file records them."""
    fit_state: Any = None
    """agent.context's memory between calls (the last request as sent, to calibrate its token estimate)."""

    def log(self, role: str, content: str, **extra) -> None:
        self.trajectory.append({"role": role, "content": content, "t": round(self.meter.wall_seconds, 3), **extra})

    def shell(self, command: str, timeout: float | None = None, output_limit: int | None = None):
        """Run a command in the attempt's shell, timing it as container time."""
        started = time.monotonic()
        try:
            return self.session.run(command, timeout or self.limits.command_timeout, output_limit=output_limit)
        finally:
            self.meter.container_seconds += time.monotonic() - started


class Scaffold(Protocol):
    name: str

    def run(self, ctx: Context) -> ExitReason:
        """Drive the model until it is done; raise AttemptOver to end early."""


@dataclass
class AttemptOutcome:
    """One attempt's outcome, everything the run store and the trajectory file record."""

    instance_id: str
    index: int
    seed: int
    exit_reason: ExitReason
    patch: str | None
    """The diff from the tree the container started with to the tree it ended with (possibly empty);
    None for infrastructure errors."""
    usage: Usage
    dollars: float
    steps: int
    retries: int
    wall_seconds: float
    model_seconds: float
    container_seconds: float
    error: str = ""
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    patch_base: str = ""
    """What the patch is a diff against: the id of the tree the container started with, or
    base_commit when that tree could not be read (the error field says why)."""

    @property
    def infra_error(self) -> bool:
        return self.exit_reason is ExitReason.INFRA_ERROR

    def details(self) -> dict[str, Any]:
        """The fields the run store keeps for this attempt (everything but patch and trajectory)."""
        data = asdict(self)
        data.pop("trajectory")
        data.pop("patch")
        data["exit_reason"] = self.exit_reason.value
        data["usage"] = asdict(self.usage)
        return data


# Infrastructure failures: the engine, the container, the model server after its retries.
_INFRA = (ModelUnavailable, docker.errors.DockerException, ConnectionError)


def run_attempt(*, runtime: ContainerRuntime, image: str, task: Task, index: int, seed: int, model: Model,
                scaffold: Scaffold, templates: Templates, limits: AttemptLimits, price: Price, share: float,
                abort: threading.Event | None = None) -> AttemptOutcome:
    """Make one attempt at ``task`` in a fresh container; never raises for the model's or the
    container's failures (they are in the result), only for configuration errors that stop a run."""
    meter = Meter(limits, price, share, abort)
    ctx: Context | None = None
    reason, patch, error = ExitReason.INFRA_ERROR, None, ""
    patch_base = task.base_commit
    try:
        with runtime.open(image, kind="attempt", labels={"monkeys.attempt": f"{task.instance_id}#{index}"},
                          files={"agent.gitignore": "\n".join(_JUNK) + "\n"}) as container:
            started = time.monotonic()
            # Before the model acts: what the image starts with (pre_install edits committed on top
            # of base_commit or left uncommitted, files its install step left) is not its work.
            start_tree, note = _snapshot_start(container)
            patch_base = start_tree or task.base_commit
            session = ShellSession(container, output_limit=limits.output_chars)
            meter.container_seconds += time.monotonic() - started
            ctx = Context(task, index, seed, model, session, templates, limits, meter)
            if note:
                error = note
                ctx.log("system", note)
            try:
                reason = scaffold.run(ctx)
            except AttemptOver as over:
                reason, error = over.reason, _joined(error, str(over))
                ctx.log("system", f"attempt ended: {reason.value}: {over}")
            except RequestRefused as refused:
                # One request's failure ends this attempt only: it is finished (judged with its diff,
                # not redone), with the error in its trajectory; the run's other attempts go on.
                reason, error = ExitReason(refused.kind), _joined(error, str(refused))
                meter.usage = meter.usage + refused.usage
                if isinstance(price, TokenPrice):
                    meter.token_dollars += token_cost(refused.usage, price)
                ctx.log("system", f"attempt ended: {reason.value}: {refused}")
            except SessionError as broken:
                reason, why = _broken_or_infra(container, broken)
                error = _joined(error, why)
            if reason is not ExitReason.INFRA_ERROR:
                patch, extra = _collect_patch(container, patch_base)
                if patch is None:
                    reason, error = ExitReason.ENVIRONMENT_BROKEN, _joined(error, extra)
                    patch = ""
            session.close()
    except _INFRA as err:
        reason, patch, error = ExitReason.INFRA_ERROR, None, f"{type(err).__name__}: {err}"
    except SessionError as err:
        reason, patch, error = ExitReason.INFRA_ERROR, None, str(err)
    return AttemptOutcome(
        task.instance_id, index, seed, reason, patch, meter.usage, meter.dollars, meter.calls, meter.retries,
        meter.wall_seconds, meter.model_seconds, meter.container_seconds, error,
        ctx.trajectory if ctx else [], patch_base)


def _joined(*notes: str) -> str:
    """The attempt's error field: every note that applies, in the order they arose."""
    return "; ".join(n for n in notes if n)


def _broken_or_infra(container, err: SessionError) -> tuple[ExitReason, str]:
    # A container that still runs but whose shell cannot be restored was broken by what the model
    # ran (a fork bomb holding every pid); one that is gone is the engine's failure.
    try:
        container.handle.reload()
        running = container.handle.status == "running"
    except docker.errors.DockerException:
        running = False
    return (ExitReason.ENVIRONMENT_BROKEN if running else ExitReason.INFRA_ERROR), str(err)


# The start tree is written from a copy of the index, so the repository's own index and HEAD stay
# as the image left them: the model sees the same `git status` and `git diff` the image gives.
_START_INDEX = "/tmp/monkeys-start.index"
_TREE_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _snapshot_start(container) -> tuple[str | None, str]:
    """(The id of the tree the container starts with, ""), or (None, why) when it cannot be read.

    The tree is what ``git add -A`` would stage now, with the excludes `_collect_patch` uses: so an
    image whose tree differs from base_commit (pre_install edits, committed or not; untracked files
    from its install step) gives the model's changes alone, a patch that applies to that image.
    """
    on_copy = f"GIT_INDEX_FILE={_START_INDEX}"
    # A repository with no index yet starts from an empty one: every file is then staged afresh.
    command = (f"cd {REPO_DIR} && {{ index=$(git rev-parse --git-path index) && rm -f {_START_INDEX} "
               f"&& {{ [ ! -e \"$index\" ] || cp \"$index\" {_START_INDEX}; }} "
               f"&& {on_copy} git -c core.excludesFile=/monkeys/agent.gitignore add -A "
               f"&& {on_copy} git write-tree; }} 2>/tmp/monkeys-git.err; status=$?; rm -f {_START_INDEX}; "
               f"exit $status")
    result = container.exec(command, timeout=120)
    tree = result.output.strip()
    if result.exit_code == 0 and _TREE_ID.fullmatch(tree):
        return tree, ""
    why = container.exec("tail -c 500 /tmp/monkeys-git.err", timeout=10).output.strip() or tree[-500:]
    return None, (f"reading the starting tree failed (exit {result.exit_code}): {why}; the patch is a diff "
                  "against base_commit, and holds whatever the image changed on top of it")


def _collect_patch(container, base: str) -> tuple[str | None, str]:
    """``git add -A && git diff --cached --binary <base>``, so new files are kept; ``base`` is a
    tree or a commit."""
    # stderr apart: a git warning must not end up inside the patch.
    command = (f"cd {REPO_DIR} && {{ git -c core.excludesFile=/monkeys/agent.gitignore add -A "
               f"&& git -c core.quotepath=off diff --cached --binary {base}; }} 2>/tmp/monkeys-git.err")
    result = container.exec(command, timeout=120)
    if result.exit_code != 0:
        why = container.exec("tail -c 500 /tmp/monkeys-git.err", timeout=10).output
        return None, f"collecting the patch failed (exit {result.exit_code}): {why.strip()}"
    return result.output, ""
