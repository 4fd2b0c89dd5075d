"""The evaluation pipeline: predictions in, verdicts out, every stage leaving its evidence.

This module decides which runs each prediction needs and gets them (from the evaluation cache, or
new runs, each in a fresh container); ``verdict.py`` turns runs into a record (pure),
``evidence.py`` writes each unique patch's folder, ``official_report.py`` the run's report.json.
It streams: records are committed as jobs end, and only the jobs in flight hold their logs. The jobs
run on threads here (LocalJobs) or as Ray tasks across a cluster (harness/cluster.py); either way
this module's caller alone judges and commits.

For each task with predictions, a gold audit first (the gold patch run ``audit_runs`` times, cached
per image so it is paid once): it names the tests that flake under the gold patch, and how long its
runs take. Then each unique (task, normalised patch) is run: apply the patch, restore and patch the
tests, run them, and run again only while the verdict hinges on a flaky test, each run in a fresh
container. Every run's raw output goes to the evaluation cache; status maps, verdicts, guards and
reports are computed from it, never stored as the truth.

A patch whose tests outrun the timeout, where the gold runs finish well inside it, is TIMED_OUT: the
patch's outcome, unresolved, cached and counted, as the official harness counts it. Infrastructure
failures (engine errors, a missing image, a gold run that itself hangs) are EvalStatus.ERROR, never a
model failure; nothing about them is cached, so the next call retries them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, Protocol

import docker
import docker.errors
import requests

from harness.containers import ContainerRuntime
from harness.evalcache import Applied, CacheKey, EvalCache, RawRun
from harness.evalconfig import EvalConfig
from harness.evalscript import (EvalPlan, PlanError, TestRun, applied_method, eval_files, existing_tests_plan, needs_network,
                               new_nonce, plan, read_run, split_limits, with_limits)
from harness.evidence import write_evidence
from harness.image_names import image_name
from harness.official_report import run_report
from harness.patches import patch_hash
from harness.predictions import Prediction
from harness.store import AUDITS_META, EvalRecord, RunStore
from harness.tasks import Task
from harness.verdict import (WELL_INSIDE, GoldAudit, PatchRuns, RunsNeeded, audit_from_runs, existing_tests_hold, judge,
                             needs_more_runs, runs_counted, runs_needed_for)


# Jobs in flight per worker: enough queued that no worker waits while the driver judges and writes,
# few enough that what is in memory stays bounded by the workers, not by the run.
JOBS_PER_WORKER = 4


class InfraError(RuntimeError):
    """Something outside the patch stopped its evaluation; the message names the task and the cause."""



class Evaluator:
    """Runs evaluations for one run against one engine and one cache."""

    def __init__(self, client: docker.DockerClient, cache: EvalCache, config: EvalConfig, run: str):
        self.client = client
        self.cache = cache
        self.config = config
        self.runtime = ContainerRuntime(client, run=run, limits=config.limits)
        self._image_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- measuring -------------------------------------------------------------------------------

    def image_id(self, task: Task) -> str:
        name = image_name(task)
        with self._lock:
            if name not in self._image_ids:
                try:
                    self._image_ids[name] = self.client.images.get(name).id
                except docker.errors.ImageNotFound:
                    raise InfraError(f"{task.instance_id}: image {name} is not here (fetch it with `monkeys images "
                                     f"pull`, or build it with `monkeys images build`); this task is left out") from None
            return self._image_ids[name]

    def key(self, task: Task, patch: str | None, steps: EvalPlan | None = None) -> CacheKey:
        return CacheKey(self.image_id(task), (steps or plan(task)).digest, patch_hash(patch))

    def measure(self, task: Task, patch: str | None, need: RunsNeeded, *,
                steps: EvalPlan | None = None, hang_is_verdict: bool = False) -> PatchRuns:
        """The runs of ``patch`` on ``task`` (under ``steps``, by default the task's evaluation plan):
        the cached ones, plus new ones until ``need`` is met, each in a fresh container.

        A run that outruns the timeout ends the measuring: with ``hang_is_verdict`` it is the patch's
        outcome, cached like any run; without, it is an infrastructure error, not cached.
        """
        started = time.monotonic()
        result = PatchRuns()
        try:
            steps = steps or plan(task)
            key = self.key(task, patch, steps)
            result.applied = self.cache.applied(key)
            raw = self.cache.runs(key)
            if any(r.timed_out and r.timeout < self.config.timeout for r in raw):
                # Timed out under a shorter limit than asked for now: that says nothing; measure again.
                self.cache.drop_runs(key)
                raw = []
            # A cached run made under a longer limit that took longer than the limit asked for now would
            # have been stopped by it. (A run made under this very limit is never re-read as timed out:
            # its verdict must not change between calls.)
            limit = self.config.timeout
            raw = [replace(r, timed_out=True) if not r.timed_out and r.timeout > limit and r.seconds > limit else r
                   for r in raw]
            result.runs = [_parse_cached(task, r) for r in raw]
            result.run_seconds = [r.seconds for r in raw]
            if result.applied is None or (result.applies and needs_more_runs(result.runs, need)):
                self._new_runs(task, patch, steps, key, need, result, hang_is_verdict)
            result.used = runs_counted(result.runs, need)
            used = result.runs[:result.used]
            if any(r.timed_out for r in used) and not hang_is_verdict:
                raise self._hang_error(task)
        except (InfraError, PlanError) as err:
            result.error = str(err)
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as err:
            result.error = f"{task.instance_id}: engine error: {type(err).__name__}: {err}"
        finally:
            result.seconds = time.monotonic() - started
        return result

    def _hang_error(self, task: Task) -> InfraError:
        return InfraError(f"{task.instance_id}: the tests timed out after {self.config.timeout:.0f} s, and the gold "
                          f"runs do not finish well inside that limit, so the hang is not the patch's")

    def _new_runs(self, task: Task, patch: str | None, steps: EvalPlan, key: CacheKey, need: RunsNeeded, result: PatchRuns,
             hang_is_verdict: bool) -> None:
        """New runs until ``need`` is met. Each run gets a fresh container (apply, setup, test), as the
        paper's reruns did, so nothing one run leaves behind can decide the next."""
        result.used_container = True
        first = True
        while first or needs_more_runs(result.runs, need):
            tests_network = needs_network(task)
            with self.runtime.open(image_name(task), files=eval_files(task, patch),
                                   network=tests_network or steps.setup_network) as container:
                applied = container.exec(steps.apply, timeout=self.config.apply_timeout)
                if applied.timed_out:
                    raise InfraError(f"{task.instance_id}: applying the patch timed out after {self.config.apply_timeout:.0f} s")
                method = applied_method(applied.exit_code)
                if result.applied is None:
                    result.applied = Applied(method, applied.output)
                    self.cache.record_apply(key, result.applied)
                elif method is not result.applied.method:
                    raise InfraError(f"{task.instance_id}: the patch applied by {getattr(result.applied.method, 'value', None)} "
                                     f"before and by {getattr(method, 'value', None)} now, in the same image")
                if method is None:
                    return
                first = False
                if not needs_more_runs(result.runs, need):
                    return  # the cache held every run needed; only the apply outcome was missing
                setup = container.exec(steps.setup, timeout=self.config.apply_timeout)
                if setup.exit_code != 0:
                    raise InfraError(f"{task.instance_id}: restoring the test files and applying the test patch failed "
                                     f"(exit {setup.exit_code}): {setup.output.strip()[-400:]}")
                if steps.setup_network and not tests_network:
                    container.disconnect_network()
                sentinel = f"monkeys-limits-{new_nonce()}"
                ran = container.exec(with_limits(steps.test, sentinel), timeout=self.config.timeout)
                if ran.timed_out and not hang_is_verdict:
                    raise self._hang_error(task)
                output, hits = split_limits(ran.output, sentinel)
                raw = RawRun(output, ran.exit_code, ran.seconds, ran.timed_out, self.config.timeout, hits)
                self.cache.add_run(key, raw)
                result.runs.append(_parse_cached(task, raw))
                result.run_seconds.append(ran.seconds)
                result.new_runs += 1
                result.test_seconds += ran.seconds
                if ran.timed_out:
                    return

    def audit(self, task: Task, runs: int | None = None) -> tuple[GoldAudit, PatchRuns]:
        """The task's gold audit, from the cache where it holds enough gold runs."""
        wanted = runs or self.config.audit_runs
        measured = self.measure(task, task.patch, lambda _: wanted)
        if measured.error:
            return GoldAudit(task.instance_id, 0, error=measured.error), measured
        if not measured.applies:
            return GoldAudit(task.instance_id, 0, error=f"{task.instance_id}: the gold patch does not apply"), measured
        return audit_from_runs(task, measured.runs[:measured.used], measured.run_seconds[:measured.used]), measured

    def existing_tests(self, task: Task, patch: str | None, baseline: PatchRuns | None) -> tuple[bool | None, PatchRuns | None]:
        """Whether the repository's existing tests, run without the hidden test patch, still pass with
        ``patch`` wherever they pass with no patch (``baseline``, this same measure of the empty patch).
        None where it cannot be told (no existing test files, an error, the baseline missing)."""
        steps = existing_tests_plan(task)
        if steps is None or baseline is None or baseline.error or not baseline.runs:
            return None, None
        hang = baseline.slowest <= self.config.timeout * WELL_INSIDE
        measured = self.measure(task, patch, lambda _: 1, steps=steps, hang_is_verdict=hang)
        if measured.error:
            return None, measured
        return existing_tests_hold(baseline.runs[0], measured.runs[0] if measured.applies else None), measured

    def baseline(self, task: Task) -> PatchRuns | None:
        """The existing tests without the hidden test patch, on the unpatched repository."""
        steps = existing_tests_plan(task)
        return None if steps is None else self.measure(task, "", lambda _: 1, steps=steps)

def _parse_cached(task: Task, raw: RawRun) -> TestRun:
    """A cached raw run, parsed with today's parser."""
    return replace(read_run(task, raw.output, raw.exit_code), timed_out=raw.timed_out, limits_hit=raw.limits_hit)


# -- the work of one evaluation job -------------------------------------------------------------
# Module-level functions of an Evaluator and plain values, so that they can run wherever the
# evaluator's engine is: a thread here, or a Ray worker on another node (harness/cluster.py).

Prepared = tuple[GoldAudit, int, PatchRuns | None]
"""A task's gold audit, the test runs that preparing it executed, and its baseline (or None)."""

Measured = tuple[PatchRuns, bool | None, PatchRuns | None]
"""A job's runs, whether the existing tests still hold, and the runs that told."""


def prepare_task(evaluator: Evaluator, task: Task) -> Prepared:
    """What a task's jobs need first: its gold audit and, with ``existing_tests``, its baseline."""
    audit, gold = evaluator.audit(task)
    baseline = evaluator.baseline(task) if evaluator.config.existing_tests else None
    return audit, gold.new_runs + (baseline.new_runs if baseline else 0), baseline


def run_job(evaluator: Evaluator, task: Task, patch: str | None, audit: GoldAudit,
            baseline: PatchRuns | None) -> Measured:
    """One unique (task, patch): its runs under the audit's needs, and the existing tests where asked."""
    config = evaluator.config
    runs = evaluator.measure(task, patch, runs_needed_for(task, audit, config.policy, config.reruns),
                             hang_is_verdict=audit.hang_is_verdict(config.timeout))
    kept, existing_runs = (None, None)
    if config.existing_tests and runs.applies:
        kept, existing_runs = evaluator.existing_tests(task, patch, baseline)
    return runs, kept, existing_runs


Work = Callable[..., Any]
"""What a job runs: a module-level function of (evaluator, task, *args), such as ``prepare_task``,
``run_job`` or audit_flaky's ``audit_task`` (module-level, so a cluster can send it by name)."""

Reads = Sequence[tuple[bool, str | None]]
"""The cache entries a job's work reads, as (existing-tests plan?, patch) pairs: a cluster job gets a
snapshot of exactly these (harness/cluster.py); here, where the cache is shared, they are not needed."""


class Jobs(Protocol):
    """Where a run's jobs execute. The caller submits within a bounded window and takes results as
    they finish, on its own thread. By the time ``result`` returns, the job's runs are in the
    evaluation cache (written by the worker thread here; on a cluster, by this thread from what the job
    sent back). Handles are opaque: futures here, Ray ObjectRefs in harness/cluster.py."""

    slots: int
    """Jobs that can run at once: the window of jobs in flight is a multiple of it."""

    def submit(self, work: Work, task: Task, *args: Any, reads: Reads) -> Hashable: ...

    def wait(self, pending: Collection[Hashable]) -> Iterable[Hashable]:
        """Block until at least one of ``pending`` has finished; those that have."""
        ...

    def result(self, handle: Hashable) -> Any: ...

    def close(self) -> None:
        """Start nothing more; let what is running end (or stop it, where it cannot be waited for)."""
        ...


class LocalJobs:
    """Jobs on this machine's engine: ``config.workers`` threads sharing one Evaluator."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.slots = max(1, evaluator.config.workers)
        self.pool = ThreadPoolExecutor(self.slots)

    def submit(self, work: Work, task: Task, *args: Any, reads: Reads) -> Hashable:
        return self.pool.submit(work, self.evaluator, task, *args)

    def wait(self, pending: Collection[Hashable]) -> Iterable[Hashable]:
        return wait(pending, return_when=FIRST_COMPLETED)[0]

    def result(self, handle: Hashable) -> Any:
        return handle.result()

    def close(self) -> None:
        # The jobs already running end (their runs reach the cache; their containers are removed).
        self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class RunResult:
    records: list[EvalRecord]
    report: dict
    audits: dict[str, GoldAudit]


class RunMismatch(ValueError):
    """Predictions that would mix with other patches' verdicts in the same run."""


def check_run_holds(store: RunStore, predictions: Sequence[Prediction], hashes: Sequence[str], *,
                    from_attempts: bool) -> None:
    """Refuse to judge predictions into a run whose store holds verdicts on other patches at the same
    (instance, index), or holds a sampling run's attempts that these predictions are not: a verdict
    belongs to one patch. Raises RunMismatch naming the run and what differs."""
    if from_attempts:
        return  # the predictions are the run's own attempts: a re-made attempt's verdict is replaced
    attempts = store.count_attempts()
    if attempts:
        raise RunMismatch(f"run {store.run!r} ({store.dir}) is a sampling run with {attempts} attempts; its verdicts "
                          f"come from its own attempts (monkeys evaluate --run {store.run}); give these predictions another --run name")
    stored = {(e.instance_id, e.index): e for e in store.evaluations()}
    differ = []
    for p, h in zip(predictions, hashes):
        old = stored.get((p.instance_id, p.index))
        if old is not None and old.patch_hash != h:
            differ.append(f"{p.instance_id} #{p.index}: judged patch {old.patch_hash[:12]} ({old.model}), now {h[:12]} ({p.model})")
    if differ:
        raise RunMismatch(f"run {store.run!r} ({store.dir}) already holds verdicts on other patches for {len(differ)} "
                          f"prediction(s); give these predictions another --run name:\n  " + "\n  ".join(differ[:20])
                          + (f"\n  ... and {len(differ) - 20} more" if len(differ) > 20 else ""))


def evaluate(evaluator: Evaluator, tasks: Sequence[Task], predictions: Sequence[Prediction], store: RunStore,
             *, problems: Sequence[str] = (), on_done: Callable[[EvalRecord], None] | None = None,
             from_attempts: bool = False, jobs: Jobs | None = None) -> RunResult:
    """Evaluate every prediction whose task is in ``tasks``; write the evidence and the reports.

    Streamed, so a run of any size holds no more logs than its workers have jobs in flight: each task's
    gold audit (and baseline) comes first, then that task's jobs, one per unique (task, normalised
    patch); as each job ends, every prediction with that patch is judged, its record committed to
    ``store`` and ``on_done`` called, and the job's runs are let go. A crash or an interrupt loses only
    the jobs in flight; the next call finds every finished run in the evaluation cache and every
    unchanged evidence folder in place, so it only judges again.

    ``predictions`` is read one at a time, by place, and never held whole: a sampling run's attempts
    (StoredPredictions) are read from its store as each is needed.

    ``from_attempts``: the predictions are the store's own sampled attempts (a re-made attempt's new
    patch then replaces the verdict on its old one); otherwise predictions that differ from verdicts
    the store already holds are refused (RunMismatch).

    ``jobs``: where the measuring runs (default: ``config.workers`` threads here; harness/cluster.py's
    RayJobs for a Ray cluster). Judging, evidence and commits stay on this thread either way, and
    ``jobs`` is closed on return."""
    config = evaluator.config
    by_id = {t.instance_id: t for t in tasks}
    # One pass over the predictions, holding no patch: ``predictions`` may read each from a store when
    # asked (StoredPredictions), and the patches are what would grow with the run.
    known: list[int] = []  # the places in ``predictions`` of those whose task is in ``tasks``
    keys: list[tuple[str, str]] = []  # and their (task, normalised patch hash): normalising parses, once each
    unknown: set[str] = set()
    for n, p in enumerate(predictions):
        if p.instance_id in by_id:
            known.append(n)
            keys.append((p.instance_id, patch_hash(p.patch)))
        else:
            unknown.add(f"{p.source}: unknown instance id {p.instance_id!r}")
    if not from_attempts:
        check_run_holds(store, [predictions[n] for n in known], [h for _, h in keys], from_attempts=False)
    # One job per unique (task, normalised patch): repeated patches cost nothing more. A job's group is
    # its predictions' places in ``known``, the first being the one its runs are counted on.
    groups: dict[tuple[str, str], list[int]] = {}
    for n, key in enumerate(keys):
        groups.setdefault(key, []).append(n)
    jobs_of: dict[str, list[tuple[str, str]]] = {}
    for key in groups:
        jobs_of.setdefault(key[0], []).append(key)
    needed = sorted(jobs_of)
    jobs_left = {i: len(jobs_of[i]) for i in needed}

    records: list[EvalRecord | None] = [None] * len(known)
    audits: dict[str, GoldAudit] = {}
    baselines: dict[str, PatchRuns | None] = {}  # a task's, kept only while its jobs run
    executed = 0

    def finish(job: tuple[str, str], runs: PatchRuns, kept: bool | None, existing_runs: PatchRuns | None) -> None:
        """Judge, record and report every prediction of ``job``, one commit each; the evidence once."""
        task, audit = by_id[job[0]], audits[job[0]]
        group = groups.pop(job)
        given = [predictions[known[n]] for n in group]
        path = None
        for n, p in zip(group, given):
            record, official, verdict = judge(task, p, runs, audit if not audit.error else None, policy=config.policy,
                                              timeout=config.timeout, digest=job[1])
            record.existing_tests_ok = kept if runs.applies else (False if runs.applied else None)
            if n != group[0]:
                record.new_test_runs = record.test_seconds = 0  # counted once, on the first prediction with this patch
            else:
                if existing_runs is not None:
                    record.new_test_runs += existing_runs.new_runs
                    record.test_seconds += existing_runs.test_seconds
                spent = runs.seconds + (existing_runs.seconds if existing_runs else 0.0)
                record.overhead_seconds = max(0.0, spent - record.test_seconds) if runs.used_container else 0.0
                path = write_evidence(store.dir, task, given, runs, record, official, verdict, audit, config)
            record.path = path
            store.save_evaluation(record)
            records[n] = record
            if on_done:
                on_done(record)

    # The driver (this thread) alone judges, writes evidence and commits; workers only measure. Task
    # preparations are capped at one per worker so that a prepared task's jobs start at once rather
    # than queueing behind every other task's audit.
    jobs = jobs or LocalJobs(evaluator)
    workers = jobs.slots
    window = workers * JOBS_PER_WORKER
    to_prepare, ready = deque(needed), deque()
    in_flight: dict[Hashable, tuple[str, str] | str] = {}
    try:
        while to_prepare or ready or in_flight:
            while len(in_flight) < window:
                preparing = sum(isinstance(what, str) for what in in_flight.values())
                if ready:
                    job = ready.popleft()
                    # Workers get what they need as arguments: the driver alone touches the shared state.
                    task, patch = by_id[job[0]], predictions[known[groups[job][0]]].patch
                    reads = [(False, patch)] + ([(True, patch)] if config.existing_tests else [])
                    in_flight[jobs.submit(run_job, task, patch, audits[job[0]], baselines[job[0]], reads=reads)] = job
                elif to_prepare and preparing < workers:
                    instance_id = to_prepare.popleft()
                    task = by_id[instance_id]
                    reads = [(False, task.patch)] + ([(True, "")] if config.existing_tests else [])
                    in_flight[jobs.submit(prepare_task, task, reads=reads)] = instance_id
                else:
                    break
            for handle in jobs.wait(list(in_flight)):
                what = in_flight.pop(handle)
                if isinstance(what, str):
                    audit, new_runs, baseline = jobs.result(handle)
                    audits[what], baselines[what] = audit, baseline
                    executed += new_runs
                    # The run's audits, merged with those of earlier calls, for reports (gold_failing, reasons).
                    store.set_meta(AUDITS_META, {**(store.meta(AUDITS_META) or {}), what: audit.as_meta()})
                    ready.extend(jobs_of[what])
                else:
                    finish(what, *jobs.result(handle))
                    jobs_left[what[0]] -= 1
                    if not jobs_left[what[0]]:
                        del baselines[what[0]]
    finally:
        # On an error or an interrupt: start nothing more, and let the jobs already running end (their
        # runs reach the cache; their containers are removed) before the error goes on.
        jobs.close()

    audits = {i: audits[i] for i in needed}
    done = [r for r in records if r is not None]
    report = run_report(tasks, (predictions[n] for n in known), done, audits, config, unknown=sorted(unknown),
                        problems=problems, audit_runs_executed=executed)
    (store.dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return RunResult(done, report, audits)
