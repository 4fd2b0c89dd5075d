"""The sampler: k independent attempts per task, many at once, none lost and none duplicated.

Attempts are scheduled in rounds of sample index (every task's attempt 0, then every task's attempt
1, ...), so a run stopped at any point leaves each task with n or n-1 attempts and its coverage
curve is usable as far as it got. An attempt is committed when its record lands in the run store,
after its trajectory file is written; anything unfinished at a crash is simply absent and is redone
by the next call, as are infrastructure errors. A try that is redone (an infrastructure error) or
given up (an interrupt) stays in the store's attempt history with what it spent, and the run's
budgets count everything spent since its first call, whichever call spent it.

A run keeps a fingerprint of everything that decides what an attempt is (model, scaffold, prompt
templates, sampling parameters, limits, and each task's row). Calling again with a larger k or more
tasks adds only the missing attempts; any other difference is refused, naming the field (a run with
no finished attempt has nothing to mix, so a call stopped before its first attempt refuses nothing).

Before the first attempt of a call, one preflight request with the run's settings finds what every
request would hit (a bad key, an unknown model, a refused parameter) and stops the call; the request
shape the model takes (a reasoning model's ``max_completion_tokens``, parameters dropped) joins the
fingerprint as ``model.request``, and a resume keeps it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from agent.attempt import AttemptLimits, AttemptOutcome, ExitReason, Scaffold, run_attempt
from agent.model import Endpoint, Model, ModelUnavailable
from agent.prompts import Templates
from agent.trajectories import trajectory_path, write_trajectory
from harness.patches import patch_hash
from harness.containers import ContainerRuntime
from harness.scores.prices import Price, Usage, price_dict
from harness.store import NO_IMAGE_META, PARAMETERS_META, TASKS_META, StoredAttempt, AttemptStatus, RunStore
from harness.tasks import Task

FINGERPRINT_KEY = "fingerprint"
TASKS_KEY = TASKS_META
"""Meta key: every task the run was asked to cover (instance_id -> row hash), with or without an image."""
CONFIG_KEY = "config"
NO_IMAGE_KEY = NO_IMAGE_META
"""Meta key: instance_id -> why the latest call could not sample it (its image was not here)."""
PARAMETERS_KEY = PARAMETERS_META
"""Meta key: the served model's parameter count and its source, or why it is unknown (for FLOPs)."""


def _shapeless(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint without the model's request shape, which only the preflight can settle."""
    model = {k: v for k, v in (fingerprint.get("model") or {}).items() if k != "request"}
    return {**fingerprint, "model": model}


class FingerprintMismatch(ValueError):
    """A call that would mix differently made attempts into one run."""


class RunBusy(RuntimeError):
    """Another process is sampling into this run right now."""


@dataclass(frozen=True)
class SampleConfig:
    """One sampling run's settings (the run's trajectory files record all of it)."""

    run: str
    k: int
    """Attempts per task (a later call may raise it)."""
    scaffold: str
    model: dict[str, Any]
    """What identifies the model: its sampling fields, the endpoint kind, and for a managed local
    server what it serves (the GGUF's sha256), never the port it happened to get."""
    limits: AttemptLimits
    templates_digest: str
    seed: int = 0
    """Run seed; attempt i of a task gets a seed derived from it, the instance and i."""
    workers: int = 4
    budget_dollars: float | None = None
    budget_tokens: int | None = None
    price: dict[str, Any] = field(default_factory=dict)
    model_parameters: dict[str, Any] = field(default_factory=dict)
    """The model's parameter count, its source, or why it is unknown (``ParameterCount.as_meta``); a
    fact about the model, derived from what the fingerprint already identifies, so not part of it."""

    def fingerprint(self) -> dict[str, Any]:
        """The fields a resumed run must share (not k, workers, budgets or prices)."""
        return {"scaffold": self.scaffold, "model": self.model, "limits": asdict(self.limits),
                "templates": self.templates_digest, "seed": self.seed}


def mismatches(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields where two fingerprints differ, with both values."""
    found = []
    for key in sorted(set(old) | set(new)):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            found += mismatches(a, b, name + ".")
        elif a != b:
            found.append(f"{name}: run has {json.dumps(a)}, this call {json.dumps(b)}")
    return found


def task_hash(task: Task) -> str:
    """sha256 of a task's row: a resumed run refuses a task whose row changed."""
    return hashlib.sha256(json.dumps(task.to_row(), sort_keys=True).encode()).hexdigest()


def attempt_seed(run_seed: int, instance_id: str, index: int) -> int:
    """A stable 31-bit seed per (run seed, instance, sample index)."""
    digest = hashlib.sha256(f"{run_seed}:{instance_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def schedule(tasks: Sequence[Task], k: int, done: set[tuple[str, int]]) -> list[tuple[int, Task]]:
    """The missing (sample index, task) pairs in rounds of sample index, tasks in their given order."""
    return [(i, t) for i in range(k) for t in tasks if (t.instance_id, i) not in done]


SPEND_DETAILS = ("usage", "dollars", "calls_without_usage")
"""The details of a try that ``spent`` reads (RunStore.every_try picks out only these)."""


def spent(records: Sequence[StoredAttempt]) -> tuple[Usage, float, int]:
    """Tokens and dollars the given tries spent, and how many of them had a model response without
    a usage block (their tokens, and so a token budget, are undercounted)."""
    usage, dollars, gaps = Usage(), 0.0, 0
    for r in records:
        u = r.details.get("usage") or {}
        usage = usage + Usage(int(u.get("input_tokens", 0)), int(u.get("cached_input_tokens", 0)),
                              int(u.get("output_tokens", 0)), int(u.get("reasoning_tokens", 0)))
        dollars += float(r.details.get("dollars") or 0.0)
        gaps += 1 if r.details.get("calls_without_usage") else 0
    return usage, dollars, gaps


@dataclass(frozen=True)
class AttemptJob:
    """One attempt as everything needed to make it, wherever it runs (here, or on a cluster node,
    which brings its own engine and model client)."""

    task: Task
    image: str
    index: int
    seed: int
    scaffold: Scaffold
    templates: Templates
    limits: AttemptLimits
    price: Price
    share: float
    """Of a host's hourly price, the part one running attempt pays (``Attempts.share``)."""

    def run(self, runtime: ContainerRuntime, model: Model, abort: threading.Event) -> AttemptOutcome:
        return run_attempt(runtime=runtime, image=self.image, task=self.task, index=self.index, seed=self.seed,
                           model=model, scaffold=self.scaffold, templates=self.templates, limits=self.limits,
                           price=self.price, share=self.share, abort=abort)

    def infra_error(self, why: str) -> AttemptOutcome:
        """This attempt, not made for a reason outside it (redone by the next call, never scored)."""
        return AttemptOutcome(self.task.instance_id, self.index, self.seed, ExitReason.INFRA_ERROR, None, Usage(),
                              0.0, 0, 0, 0.0, 0.0, 0.0, error=why)


class Attempts(Protocol):
    """Where attempts run: threads on this machine's engine (``LocalAttempts``) or Ray tasks across a
    cluster (agent/cluster.py). The sampler's threads call ``run``, one attempt each at a time, and
    alone record what comes back, so budgets, resume and the run store behave the same either way."""

    slots: int
    """Attempts that run at once (the sampler's threads)."""
    share: float
    """Of a host's hourly price, the part one running attempt pays."""

    def preflight(self, model: Model, endpoint: Endpoint) -> None:
        """``model.preflight`` where the attempts will reach the model (its request shape adapted)."""
        ...

    def run(self, job: AttemptJob, model: Model, abort: threading.Event) -> tuple[AttemptOutcome, int]:
        """The attempt's outcome, and how many of its calls had a response without usage."""
        ...


class LocalAttempts:
    """Attempts on this machine: ``workers`` at once, containers on ``runtime``'s engine."""

    def __init__(self, runtime: ContainerRuntime, workers: int):
        self.runtime = runtime
        self.slots = max(1, workers)
        self.share = 1.0 / self.slots

    def preflight(self, model: Model, endpoint: Endpoint) -> None:
        model.preflight(endpoint)

    def run(self, job: AttemptJob, model: Model, abort: threading.Event) -> tuple[AttemptOutcome, int]:
        with model.watch_usage() as gaps:
            outcome = job.run(self.runtime, model, abort)
        return outcome, gaps.calls


@dataclass
class Progress:
    """Live counts for a progress display; updated under the sampler's lock."""

    total: int = 0
    done: int = 0
    infra_errors: int = 0
    running: int = 0
    usage: Usage = field(default_factory=Usage)
    """Tokens this call spent."""
    dollars: float = 0.0
    """Dollars this call spent."""
    usage_before: Usage = field(default_factory=Usage)
    """Tokens earlier calls of the run spent (failed and abandoned tries included)."""
    dollars_before: float = 0.0
    attempts_without_usage: int = 0
    """Tries (this call's and earlier) with a model response that reported no usage."""
    started: float = field(default_factory=time.monotonic)
    stopped_by_budget: str = ""

    @property
    def queued(self) -> int:
        return max(self.total - self.done - self.infra_errors - self.running, 0)

    def tokens_per_second(self) -> float:
        return self.usage.output_tokens / max(time.monotonic() - self.started, 1e-9)

    def eta_seconds(self) -> float | None:
        finished = self.done + self.infra_errors
        if not finished:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / finished * (self.queued + self.running)


@dataclass
class SampleResult:
    scheduled: int
    done: int
    infra_errors: int
    skipped_existing: int
    usage: Usage
    dollars: float
    stopped_by_budget: str
    interrupted: bool
    run_usage: Usage = field(default_factory=Usage)
    """Tokens the whole run has spent, every call and every try."""
    run_dollars: float = 0.0
    attempts_without_usage: int = 0
    """Tries in the whole run whose tokens are undercounted: a response reported no usage."""


class Sampler:
    """Runs one call of ``monkeys sample``: opens (or resumes) the run, then makes the missing attempts."""

    def __init__(self, config: SampleConfig, tasks: Sequence[Task], images: dict[str, str], *,
                 runtime: ContainerRuntime, model: Model | None, scaffold: Scaffold, templates: Templates,
                 price: Price, store: RunStore, full_config: dict[str, Any] | None = None,
                 attempts: Attempts | None = None):
        self.config = config
        self.tasks = list(tasks)
        self.images = images
        self.runtime = runtime
        self.model = model
        self.scaffold = scaffold
        self.templates = templates
        self.price = price
        self.store = store
        self.full_config = full_config or {}
        self.attempts = attempts
        """Where attempts run (None: ``config.workers`` threads on ``runtime``'s engine)."""
        self.progress = Progress()
        self.stop = threading.Event()
        """Set: no new attempts start (a budget, an interrupt)."""
        self.abort = threading.Event()
        """Set: attempts in flight are abandoned too, unrecorded (an interrupt)."""
        self._lock = threading.Lock()
        self._lock_file = None
        self.fatal: BaseException | None = None

    # -- the run's identity -------------------------------------------------------------------

    def open_run(self) -> None:
        """Take the run's lock and check (or record) its fingerprint and task rows: every task asked
        for, so a report knows its denominator, including tasks no attempt could be made for."""
        lock_path = self.store.dir / "sample.lock"
        self._lock_file = lock_path.open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"another monkeys process is sampling into {self.store.dir} (lock {lock_path})") from None
        new = self.config.fingerprint()
        old = self.store.meta(FINGERPRINT_KEY)
        # A run without a finished attempt has nothing to mix: a call stopped before its first attempt
        # (a refused preflight) must not hold the next call, with the flag it names changed, to itself.
        # The request shape is settled by the preflight (adopt_request_shape), not by the name alone.
        if (old is not None and _shapeless(old) != _shapeless(new) and self.store.count_attempts(AttemptStatus.DONE)):
            diff = mismatches(_shapeless(old), _shapeless(new))
            raise FingerprintMismatch(
                f"run {self.config.run!r} was sampled with other settings; refusing to mix them:\n  "
                + "\n  ".join(diff) + "\n(only -k and --tasks may grow between calls; use a new --run name)")
        hashes = self.store.meta(TASKS_KEY, {}) or {}
        for task in self.tasks:
            h = task_hash(task)
            if hashes.get(task.instance_id, h) != h:
                raise FingerprintMismatch(f"run {self.config.run!r}: task {task.instance_id} ({task.origin}) differs "
                                          f"from the row its attempts were made from; use a new --run name")
            hashes[task.instance_id] = h
        if old is not None and "request" in old.get("model", {}):
            # Until this call's preflight says otherwise, the run goes on with the shape it had.
            self.config = replace(self.config, model={**self.config.model, "request": old["model"]["request"]})
            new = self.config.fingerprint()
            self.full_config = {**self.full_config, "model": self.config.model}
        self.store.set_meta(FINGERPRINT_KEY, new)
        self.store.set_meta(TASKS_KEY, hashes)
        self.store.set_meta(CONFIG_KEY, self.full_config)
        self.store.set_meta("k", max(self.config.k, self.store.meta("k", 0) or 0))
        missing = {**(self.store.meta(NO_IMAGE_KEY, {}) or {}),
                   **{t.instance_id: f"its image was not here when sampling ({self.config.run})"
                      for t in self.tasks if t.instance_id not in self.images}}
        self.store.set_meta(NO_IMAGE_KEY, {i: why for i, why in missing.items() if i not in self.images})
        if self.config.model_parameters:
            self.store.set_meta(PARAMETERS_KEY, self.config.model_parameters)

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- sampling -----------------------------------------------------------------------------

    def run(self, on_event: Callable[[str, Any], None] | None = None) -> SampleResult:
        """Make every missing attempt, ``workers`` at a time; returns when all are done, the budget
        is spent, or ``stop`` is set (in-flight attempts are then abandoned, to be redone)."""
        if self.model is None:
            raise ValueError("Sampler.model must be set before run() (it may wait for a managed server)")
        notify = on_event or (lambda kind, payload: None)
        if self.attempts is None:
            self.attempts = LocalAttempts(self.runtime, self.config.workers)
        done = {(instance_id, index) for instance_id, index, _ in self.store.attempt_versions(AttemptStatus.DONE)}
        # A task without an image is recorded as asked for (open_run) but cannot be sampled.
        jobs = schedule([t for t in self.tasks if t.instance_id in self.images], self.config.k, done)
        wanted = len(self.tasks) * self.config.k
        self.progress.total = len(jobs)
        # Budgets are the whole run's: start from what every earlier call spent, failed tries included.
        usage, dollars, gaps = spent(self.store.every_try(SPEND_DETAILS))
        self.progress.usage_before, self.progress.dollars_before = usage, dollars
        self.progress.attempts_without_usage = gaps
        if jobs and not self._over_budget():
            self._preflight()
        queue = iter(jobs)
        workers = [threading.Thread(target=self._worker, args=(queue, notify), name=f"attempt-{n}", daemon=True)
                   for n in range(max(1, min(self.attempts.slots, len(jobs))))]
        for w in workers:
            w.start()
        for w in workers:
            while w.is_alive():
                w.join(0.2)
        if self.fatal is not None:
            raise self.fatal
        p = self.progress
        return SampleResult(len(jobs), p.done, p.infra_errors, wanted - len(jobs), p.usage, p.dollars,
                            p.stopped_by_budget, self.abort.is_set(), p.usage_before + p.usage,
                            p.dollars_before + p.dollars, p.attempts_without_usage)

    def _preflight(self) -> None:
        """One tiny request with the run's settings before the first attempt: a bad key, an unknown
        model or a refused parameter stops the run here (``ModelConfigError``) with no attempt made.
        The request shape the model took (a reasoning model's) becomes part of the run's identity."""
        endpoint = Endpoint(self.config.model.get("endpoint", Endpoint.CHAT.value))
        if "request" in self.config.model:
            self.model.use_request_record(self.config.model["request"])  # the shape the run was made with
        try:
            self.attempts.preflight(self.model, endpoint)
        except ModelUnavailable:
            # The server did not answer (an outage): not a setting to change. The attempts meet the
            # same outage and are recorded as infrastructure errors, redone on the next call.
            return
        self.adopt_request_shape(self.model.request_record())

    def adopt_request_shape(self, record: dict[str, Any] | None) -> None:
        """Record what the run's requests carry (``model.request`` of the fingerprint and the config;
        absent for the ordinary shape). A run with finished attempts made with another shape refuses."""
        model = {k: v for k, v in self.config.model.items() if k != "request"}
        if record is not None:
            model["request"] = record
        if model == self.config.model:
            return
        adopted = replace(self.config, model=model)
        old = self.store.meta(FINGERPRINT_KEY)
        if old is not None and old != adopted.fingerprint() and self.store.count_attempts(AttemptStatus.DONE):
            raise FingerprintMismatch(
                f"run {self.config.run!r} was sampled with another request shape than {self.config.model['model']} "
                f"takes now:\n  " + "\n  ".join(mismatches(old, adopted.fingerprint()))
                + "\n(the server accepts other parameters than when the run began; use a new --run name)")
        self.config = adopted
        self.full_config = {**self.full_config, "model": model}
        self.store.set_meta(FINGERPRINT_KEY, adopted.fingerprint())
        self.store.set_meta(CONFIG_KEY, self.full_config)

    def _next(self, queue) -> tuple[int, Task] | None:
        with self._lock:
            if self.stop.is_set():
                return None
            reason = self._over_budget()
            if reason:
                self.progress.stopped_by_budget = reason
                self.stop.set()
                return None
            job = next(queue, None)
            if job is not None:
                self.progress.running += 1
            return job

    def _over_budget(self) -> str:
        cfg, p = self.config, self.progress
        dollars, tokens = p.dollars_before + p.dollars, (p.usage_before + p.usage).total
        if cfg.budget_dollars is not None and dollars >= cfg.budget_dollars:
            return f"dollar budget ${cfg.budget_dollars} spent (${dollars:.4f} over the whole run)"
        if cfg.budget_tokens is not None and tokens >= cfg.budget_tokens:
            return f"token budget {cfg.budget_tokens} spent ({tokens} over the whole run)"
        return ""

    def _worker(self, queue, notify) -> None:
        while (job := self._next(queue)) is not None:
            index, task = job
            notify("start", (task.instance_id, index))
            order = AttemptJob(task, self.images[task.instance_id], index,
                               attempt_seed(self.config.seed, task.instance_id, index), self.scaffold, self.templates,
                               self.config.limits, self.price, self.attempts.share)
            try:
                result, calls_without_usage = self.attempts.run(order, self.model, self.abort)
            except Exception as err:  # a bad key, an unknown model, a bug: no attempt can succeed; say why
                with self._lock:
                    self.fatal = self.fatal or err
                    self.progress.running -= 1
                self.stop.set()
                self.abort.set()
                return
            abandoned = self.abort.is_set() and result.infra_error
            if abandoned:
                # Abandoned by an interrupt: redone next time, but what it spent is kept in the history.
                self.store.save_abandoned(StoredAttempt(task.instance_id, result.index, self.model.config.name, None,
                                                        AttemptStatus.ABANDONED.value,
                                                        self._details(result, calls_without_usage)))
            else:
                self._record(task, result, calls_without_usage)
            with self._lock:
                p = self.progress
                p.running -= 1
                if result.infra_error and not abandoned:
                    p.infra_errors += 1
                elif not abandoned:
                    p.done += 1
                p.usage = p.usage + result.usage
                p.dollars += result.dollars
                p.attempts_without_usage += 1 if calls_without_usage else 0
            if not abandoned:
                notify("done", result)

    def _details(self, result: AttemptOutcome, calls_without_usage: int) -> dict[str, Any]:
        details = result.details()
        # A response without usage leaves this try's tokens (and token-priced dollars) undercounted:
        # the report shows the figures it affects as unknown instead of pricing the call at $0.
        # A temperature the model refuses is not sent: the attempt sampled at the server's default.
        sent = None if "temperature" in self.model.shape.dropped else self.model.config.temperature
        details.update(scaffold=self.config.scaffold, temperature=sent,
                       price=price_dict(self.price), calls_without_usage=calls_without_usage)
        return details

    def _record(self, task: Task, result: AttemptOutcome, calls_without_usage: int = 0) -> None:
        """Trajectory file first, then the store row that commits the attempt."""
        details = self._details(result, calls_without_usage)
        details["trajectory"] = str(trajectory_path(task.instance_id, result.index))
        if not result.infra_error:
            # Its normalised hash, once, here: a report matches verdicts to patches by it, and hashing
            # 75,000 patches again at every report took most of its time.
            details["patch_hash"] = patch_hash(result.patch)
        document = {"instance_id": task.instance_id, "index": result.index, "run": self.config.run,
                    "config": self.full_config, "fingerprint": self.config.fingerprint(), "attempt": details,
                    "patch": result.patch, "messages": result.trajectory}
        write_trajectory(self.store.dir, task.instance_id, result.index, document)
        status = AttemptStatus.INFRA_ERROR if result.infra_error else AttemptStatus.DONE
        self.store.save_attempt(StoredAttempt(task.instance_id, result.index, self.model.config.name,
                                              result.patch, status.value, details))
