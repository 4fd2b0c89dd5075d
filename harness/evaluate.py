"""Evaluation: predictions in, verdicts out, every stage leaving its evidence.

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
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import docker
import docker.errors
import requests

from harness.containers import ContainerRuntime, Limits
from harness.evalcache import Applied, CacheKey, EvalCache, RawRun
from harness.evalscript import (EvalPlan, Limit, PlanError, TestRun, applied_method, eval_files, existing_tests_plan,
                               marked, needs_network, new_nonce, parser_for, patched_test_files, plan, read_run)
from harness.grading import PASS_TO_PASS, PAPER_RUNS, Grade, Policy, accepted, grade, runs_needed, seen_flaky
from harness.guards import patch_flags, run_flags, skipped_tests
from harness.image_names import image_name
from harness.parsers import TestStatus
from harness.patches import PatchParseError, files, is_empty, patch_hash
from harness.predictions import Prediction
from harness.store import EvalRecord, EvalStatus, RunStore
from harness.tasks import Task

DEFAULT_AUDIT_RUNS = 5


class InfraError(RuntimeError):
    """Something outside the patch stopped its evaluation; the message names the task and the cause."""


# A timed-out run is the patch's outcome only when every gold run finished within this share of the limit.
WELL_INSIDE = 0.5


@dataclass(frozen=True)
class EvalConfig:
    policy: Policy = Policy.MAJORITY
    """How a test's outcomes over several runs become one."""
    reruns: int = PAPER_RUNS
    """Runs a verdict gets when it hinges on a flaky test."""
    audit_runs: int = DEFAULT_AUDIT_RUNS
    """Runs of the gold patch in a task's flaky audit."""
    timeout: float = 1800.0
    """Seconds one run of the test command may take."""
    apply_timeout: float = 300.0
    """Seconds applying the patches may take."""
    workers: int = 1
    """Evaluations at once (each gets ``limits``)."""
    limits: Limits = Limits()
    existing_tests: bool = False
    """Also run the repository's existing tests without the hidden test patch, for each patch and for
    no patch: the signal a user really has when choosing among attempts (``existing_tests_ok``)."""


@dataclass
class Measured:
    """What the cache (and this call) hold for one (task, patch, plan)."""

    applied: Applied | None = None
    runs: list[TestRun] = field(default_factory=list)
    used: int = 0
    """How many of ``runs`` (from the first) the verdict rests on; the cache may hold more."""
    new_runs: int = 0
    test_seconds: float = 0.0
    seconds: float = 0.0
    used_container: bool = False
    error: str = ""
    run_seconds: list[float] = field(default_factory=list)
    """How long each of ``runs`` took."""

    @property
    def slowest(self) -> float:
        """Seconds of the slowest run the verdict rests on."""
        return max(self.run_seconds[:self.used], default=0.0)

    @property
    def applies(self) -> bool:
        return self.applied is not None and self.applied.method is not None


@dataclass
class Audit:
    """A task's gold audit: how its tests behave under the gold patch over several runs."""

    instance_id: str
    runs: int
    flaky: dict[str, list[int]] = field(default_factory=dict)
    """Tests whose outcome varied: [runs passed, runs]."""
    gold_failing: list[str] = field(default_factory=list)
    """Expected tests that failed in every gold run (a broken environment, not flakiness)."""
    skipped: list[str] = field(default_factory=list)
    """Expected tests the gold patch's runs skip (so a skip there is not a guard flag)."""
    error: str = ""
    slowest: float = 0.0
    """Seconds of the slowest gold run: a patch's run that outruns a limit the gold runs finish well
    inside hangs by its own doing."""
    limits_hit: list[str] = field(default_factory=list)
    """Container limits (Limit values) that some gold run ran into."""

    def hang_is_verdict(self, timeout: float) -> bool:
        """Whether a patch's run that times out under ``timeout`` is the patch's outcome, not the
        machinery's: the gold runs all finished well inside that limit."""
        return not self.error and self.runs > 0 and self.slowest <= timeout * WELL_INSIDE

    def as_meta(self) -> dict:
        """What the run store keeps of it (``RunStore.meta("audits")``)."""
        return {"runs": self.runs, "flaky": self.flaky, "gold_failing": self.gold_failing, "error": self.error}


def settle(runs: Sequence[TestRun], need: Callable[[list[TestRun]], int]) -> int:
    """The shortest prefix of ``runs`` that meets its own ``need``, so a verdict does not depend on how
    many extra runs the cache happens to hold. A run that timed out ends the prefix: it decides."""
    hung = next((i + 1 for i, r in enumerate(runs) if r.timed_out), len(runs))
    runs = runs[:hung]
    n = min(1, len(runs))
    while n < len(runs):
        want = need(list(runs[:n]))
        if want <= n:
            break
        n = min(want, len(runs))
    return n


def lacking(runs: Sequence[TestRun], need: Callable[[list[TestRun]], int]) -> bool:
    """Whether ``runs`` are too few for the verdict they lead to."""
    n = settle(runs, need)
    if any(r.timed_out for r in runs[:n]):
        return False
    return need(list(runs[:n])) > n


def audit_from_runs(task: Task, runs: Sequence[TestRun], seconds: Sequence[float] = ()) -> Audit:
    """Pure: a task's audit from its gold runs (and how long each took)."""
    maps = [r.statuses for r in runs]
    every = set().union(*maps) if maps else set()
    flaky = {t: [sum(m.get(t) is TestStatus.PASSED for m in maps), len(maps)] for t in sorted(seen_flaky(maps, every))}
    expected = task.fail_to_pass + task.pass_to_pass
    skipped = sorted(set().union(*(skipped_tests(r, expected) for r in runs))) if runs else []
    fine = {TestStatus.PASSED, TestStatus.SKIPPED, TestStatus.XFAIL}
    failing = [t for t in expected if t not in flaky and t not in skipped and maps and all(m.get(t) not in fine for m in maps)]
    limits = sorted({x.value for r in runs for x in r.limits_hit})
    return Audit(task.instance_id, len(maps), flaky, failing, skipped, slowest=max(seconds, default=0.0), limits_hit=limits)


# Read after each test run: how often the kernel OOM-killed a process of the container, and refused a
# fork at its pid limit, over the container's life (cgroup v2 files first, then v1's).
_LIMIT_FILES = {
    Limit.MEMORY: ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    Limit.PIDS: ("/sys/fs/cgroup/pids.events", "/sys/fs/cgroup/pids/pids.events", "max"),
}
# Builtins only: after a run that filled the pid table, nothing can fork, and that is when it matters.
_READ_LIMITS = "\n".join(
    f"{{ f={v2}; [ -r $f ] || f={v1}; while read -r l; do printf '%s\\n' \"$l\"; done < $f; }} 2>/dev/null; printf '#\\n'"
    for v2, v1, _ in _LIMIT_FILES.values())


def with_limits(test: str, sentinel: str) -> str:
    """The test command, then the limit counters after ``sentinel``, in the same exec (a separate one
    costs about as much as the counters are worth); the exit status stays the test command's. Code
    under test could print the sentinel itself, but only the last one counts, and all it could fake
    is a limit hit, which never makes a run pass."""
    return f"{{ {test}\n}}\n__monkeys_rc=$?\nprintf '\\n%s\\n' {sentinel}\n{_READ_LIMITS}\nexit $__monkeys_rc"


def split_limits(output: str, sentinel: str) -> tuple[str, tuple[Limit, ...]]:
    """Pure: (the test command's own output, the limits hit) from a ``with_limits`` run's output; a run
    killed before the counters were read has no sentinel, and nothing is taken off it."""
    mark = f"\n{sentinel}\n"
    cut = output.rfind(mark)
    if cut < 0:
        return output, ()
    return output[:cut], limits_hit(output[cut + len(mark):])


def limits_hit(counters: str) -> tuple[Limit, ...]:
    """Pure: the limits whose event counters (``_READ_LIMITS``' output) are above zero."""
    hit = []
    for (limit, (_, _, field_)), text in zip(_LIMIT_FILES.items(), counters.split("#")):
        for line in text.splitlines():
            name, _, value = line.strip().partition(" ")
            if name == field_ and value.strip().isdigit() and int(value) > 0:
                hit.append(limit)
    return tuple(hit)


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

    def measure(self, task: Task, patch: str | None, need: Callable[[list[TestRun]], int], *,
                steps: EvalPlan | None = None, hang_is_verdict: bool = False) -> Measured:
        """The runs of ``patch`` on ``task`` (under ``steps``, by default the task's evaluation plan):
        the cached ones, plus new ones until ``need`` is met, each in a fresh container.

        A run that outruns the timeout ends the measuring: with ``hang_is_verdict`` it is the patch's
        outcome, cached like any run; without, it is an infrastructure error, not cached.
        """
        started = time.monotonic()
        result = Measured()
        try:
            steps = steps or plan(task)
            key = self.key(task, patch, steps)
            result.applied = self.cache.applied(key)
            raw = self.cache.runs(key)
            if any(r.timed_out and r.timeout < self.config.timeout for r in raw):
                # Timed out under a shorter limit than asked for now: that says nothing; measure again.
                self.cache.drop_runs(key)
                raw = []
            result.runs = [_parsed(task, r) for r in raw]
            result.run_seconds = [r.seconds for r in raw]
            if result.applied is None or (result.applies and lacking(result.runs, need)):
                self._run(task, patch, steps, key, need, result, hang_is_verdict)
            result.used = settle(result.runs, need)
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

    def _run(self, task: Task, patch: str | None, steps: EvalPlan, key: CacheKey, need, result: Measured,
             hang_is_verdict: bool) -> None:
        """New runs until ``need`` is met. Each run gets a fresh container (apply, setup, test), as the
        paper's reruns did, so nothing one run leaves behind can decide the next."""
        result.used_container = True
        first = True
        while first or lacking(result.runs, need):
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
                if not lacking(result.runs, need):
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
                result.runs.append(_parsed(task, raw))
                result.run_seconds.append(ran.seconds)
                result.new_runs += 1
                result.test_seconds += ran.seconds
                if ran.timed_out:
                    return

    def audit(self, task: Task, runs: int | None = None) -> tuple[Audit, Measured]:
        """The task's gold audit, from the cache where it holds enough gold runs."""
        wanted = runs or self.config.audit_runs
        measured = self.measure(task, task.patch, lambda _: wanted)
        if measured.error:
            return Audit(task.instance_id, 0, error=measured.error), measured
        if not measured.applies:
            return Audit(task.instance_id, 0, error=f"{task.instance_id}: the gold patch does not apply"), measured
        return audit_from_runs(task, measured.runs[:measured.used], measured.run_seconds[:measured.used]), measured

    def existing_tests(self, task: Task, patch: str | None, baseline: Measured | None) -> tuple[bool | None, Measured | None]:
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

    def baseline(self, task: Task) -> Measured | None:
        """The existing tests without the hidden test patch, on the unpatched repository."""
        steps = existing_tests_plan(task)
        return None if steps is None else self.measure(task, "", lambda _: 1, steps=steps)

    # -- judging ---------------------------------------------------------------------------------

    def judge(self, task: Task, prediction: Prediction, measured: Measured, audit: Audit | None,
              digest: str | None = None) -> tuple[EvalRecord, dict, Grade | None]:
        """Pure apart from reading the task: a prediction's record and official report from its runs."""
        record = EvalRecord(prediction.instance_id, prediction.index, prediction.model, digest or patch_hash(prediction.patch),
                            EvalStatus.ERROR.value, error=measured.error)
        record.test_seconds = measured.test_seconds
        record.new_test_runs = measured.new_runs
        official = {
            "patch_is_None": prediction.patch is None,
            "patch_exists": prediction.patch is not None,
            "patch_successfully_applied": False,
            "resolved": False,
        }
        if measured.error:
            return record, official, None
        if not measured.applies:
            record.status = EvalStatus.APPLY_FAILED.value
            return record, official, None
        record.apply_method = measured.applied.method.name
        used = measured.runs[:measured.used]
        official["patch_successfully_applied"] = True
        if any(r.timed_out for r in used):
            # The official harness counts a run that outlasts its limit as not resolved.
            record.status = EvalStatus.TIMED_OUT.value
            record.test_runs = len(used)
            record.error = f"the tests ran past the {self.config.timeout:.0f} s limit (the gold runs take at most {audit.slowest:.1f} s)" if audit else ""
            return record, official, None
        flaky = known_flaky(task, audit)
        verdict = grade([accepted(r.statuses, r.exit_code) for r in used], task.fail_to_pass, task.pass_to_pass,
                        self.config.policy, flaky)
        flags = run_flags(used, task.fail_to_pass + task.pass_to_pass, parser_for(task),
                          audit.skipped if audit else ())
        try:
            existing, created = patched_test_files(task)
            flags |= patch_flags(files(prediction.patch), existing + created)
        except PatchParseError:
            pass  # it applied as something else (patch --fuzz is lenient); the runs still judge it
        # An empty patch changes nothing, so it solves nothing, whatever a flaky test does under any policy.
        resolved = verdict.resolved and not is_empty(prediction.patch)
        own_limits = {x.value for r in used for x in r.limits_hit} - set(audit.limits_hit if audit else ())
        record.status = EvalStatus.GRADED.value
        if verdict.undecidable:
            record.status = EvalStatus.UNDECIDABLE.value
            record.error = "every FAIL_TO_PASS test is flaky and was dropped by the ignore-flaky policy: no verdict"
        elif own_limits and not resolved:
            record.status = EvalStatus.RESOURCE_LIMIT.value
            record.error = f"the tests ran into the container's {' and '.join(sorted(own_limits))} limit, which the gold runs stay within"
        record.resolved = resolved
        record.guard_flags = sorted(f.value for f in flags)
        record.resolved_guarded = resolved and not flags
        record.pass_to_pass_ok = not verdict.tests_status[PASS_TO_PASS]["failure"]
        record.test_runs = verdict.runs
        record.flaky_tests = {t: list(c) for t, c in verdict.pass_counts.items()}
        official.update(resolved=resolved, tests_status=verdict.tests_status)
        return record, official, verdict


def _parsed(task: Task, raw: RawRun) -> TestRun:
    """A cached raw run, parsed with today's parser."""
    return replace(read_run(task, raw.output, raw.exit_code), timed_out=raw.timed_out, limits_hit=raw.limits_hit)


def existing_tests_hold(baseline: TestRun, run: TestRun | None) -> bool:
    """Pure: every test that passed with no patch still passes (or xfails) with the patch. A patch that
    does not apply, or whose run timed out, keeps nothing."""
    if run is None or run.timed_out:
        return False
    kept = {TestStatus.PASSED, TestStatus.XFAIL}
    return all(run.statuses.get(t) in kept for t, s in baseline.statuses.items() if s is TestStatus.PASSED)


@dataclass
class RunResult:
    records: list[EvalRecord]
    report: dict
    audits: dict[str, Audit]


def known_flaky(task: Task, audit: Audit | None) -> set[str]:
    """Tests known to flake: seen flaking in the gold audit, or documented as flaky by the row itself
    (a few audit runs can miss a test that fails a third of the time; a row that says so is evidence)."""
    return (set(audit.flaky) if audit else set()) | (set(task.flaky.tests) if task.flaky else set())


def _need(task: Task, config: EvalConfig, audit: Audit | None) -> Callable[[list[TestRun]], int]:
    known = known_flaky(task, audit)
    return lambda runs: max(1, runs_needed([accepted(r.statuses, r.exit_code) for r in runs], task.fail_to_pass, task.pass_to_pass,
                                           config.policy, known, config.reruns))


class RunMismatch(ValueError):
    """Predictions that would mix with other patches' verdicts in the same run."""


def check_run_holds(store: RunStore, predictions: Sequence[Prediction], hashes: Sequence[str], *,
                    from_attempts: bool) -> None:
    """Refuse to judge predictions into a run whose store holds verdicts on other patches at the same
    (instance, index), or holds a sampling run's attempts that these predictions are not: a verdict
    belongs to one patch. Raises RunMismatch naming the run and what differs."""
    attempts = store.attempts()
    if attempts and not from_attempts:
        raise RunMismatch(f"run {store.run!r} ({store.dir}) is a sampling run with {len(attempts)} attempts; its verdicts "
                          f"come from its own attempts (monkeys evaluate --run {store.run}); give these predictions another --run name")
    stored = {(e.instance_id, e.index): e for e in store.evaluations()}
    differ = []
    for p, h in zip(predictions, hashes):
        old = stored.get((p.instance_id, p.index))
        if old is not None and old.patch_hash != h:
            differ.append(f"{p.instance_id} #{p.index}: judged patch {old.patch_hash[:12]} ({old.model}), now {h[:12]} ({p.model})")
    if differ and not from_attempts:
        raise RunMismatch(f"run {store.run!r} ({store.dir}) already holds verdicts on other patches for {len(differ)} "
                          f"prediction(s); give these predictions another --run name:\n  " + "\n  ".join(differ[:20])
                          + (f"\n  ... and {len(differ) - 20} more" if len(differ) > 20 else ""))


def evaluate(evaluator: Evaluator, tasks: Sequence[Task], predictions: Sequence[Prediction], store: RunStore,
             *, problems: Sequence[str] = (), on_done: Callable[[EvalRecord], None] | None = None,
             from_attempts: bool = False) -> RunResult:
    """Evaluate every prediction whose task is in ``tasks``; write the evidence and the reports.

    ``from_attempts``: the predictions are the store's own sampled attempts (a re-made attempt's new
    patch then replaces the verdict on its old one); otherwise predictions that differ from verdicts
    the store already holds are refused (RunMismatch)."""
    config = evaluator.config
    by_id = {t.instance_id: t for t in tasks}
    known = [p for p in predictions if p.instance_id in by_id]
    unknown = sorted({f"{p.source}: unknown instance id {p.instance_id!r}" for p in predictions if p.instance_id not in by_id})
    needed = sorted({p.instance_id for p in known})
    keys = [(p.instance_id, patch_hash(p.patch)) for p in known]  # normalising parses: once each
    check_run_holds(store, known, [h for _, h in keys], from_attempts=from_attempts)
    # One job per unique (task, normalised patch): repeated patches cost nothing more.
    jobs: dict[tuple[str, str], Prediction] = {}
    for key, p in zip(keys, known):
        jobs.setdefault(key, p)

    with ThreadPoolExecutor(max(1, config.workers)) as pool:
        audited = dict(zip(needed, pool.map(lambda i: evaluator.audit(by_id[i]), needed)))
        audits = {i: a for i, (a, _) in audited.items()}
        baselines = dict(zip(needed, pool.map(lambda i: evaluator.baseline(by_id[i]), needed))) if config.existing_tests else {}

        def run_job(job):
            instance_id, _ = job
            task = by_id[instance_id]
            audit = audits[instance_id]
            m = evaluator.measure(task, jobs[job].patch, _need(task, config, audit),
                                  hang_is_verdict=audit.hang_is_verdict(config.timeout))
            kept, extra = (None, None)
            if config.existing_tests and m.applies:
                kept, extra = evaluator.existing_tests(task, jobs[job].patch, baselines.get(instance_id))
            return job, (m, kept, extra)

        measured = dict(pool.map(run_job, list(jobs)))

    records = []
    for key, p in zip(keys, known):
        task = by_id[p.instance_id]
        m, kept, extra = measured[key]
        audit = audits[p.instance_id]
        record, official, verdict = evaluator.judge(task, p, m, audit if not audit.error else None, key[1])
        record.existing_tests_ok = kept if m.applies else (False if m.applied else None)
        if jobs[key] is not p:
            record.new_test_runs = record.test_seconds = 0  # counted once, on the first prediction with this patch
        else:
            if extra is not None:
                record.new_test_runs += extra.new_runs
                record.test_seconds += extra.test_seconds
            spent = m.seconds + (extra.seconds if extra else 0.0)
            record.overhead_seconds = max(0.0, spent - record.test_seconds) if m.used_container else 0.0
        record.path = _write_evidence(store.dir, task, p, m, record, official, verdict, audit, config, new_nonce())
        store.save_evaluation(record)
        records.append(record)
        if on_done:
            on_done(record)
    # The run's audits, merged with those of earlier calls, for reports (gold_failing, reasons).
    store.set_meta("audits", {**(store.meta("audits") or {}), **{i: a.as_meta() for i, a in audits.items()}})
    executed = sum(m.new_runs for _, m in audited.values()) + sum(b.new_runs for b in baselines.values() if b)
    report = run_report(tasks, known, records, audits, config, unknown=unknown, problems=problems,
                        audit_runs_executed=executed)
    (store.dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return RunResult(records, report, audits)


def _write_evidence(run_dir: Path, task: Task, p: Prediction, m: Measured, record: EvalRecord, official: dict,
                    verdict: Grade | None, audit: Audit, config: EvalConfig, nonce: str) -> str:
    """The evaluation's folder: the patch, the commands, the marked test log and report.json."""
    rel = Path("evals") / task.instance_id / str(p.index)
    folder = run_dir / rel
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patch.diff").write_text(p.patch or "")
    steps = plan(task)
    (folder / "eval.sh").write_text(f"# apply\n{steps.apply}\n# setup\n{steps.setup}\n# test (each run)\n{steps.test}\n")
    log = "".join(marked(nonce, i, run.output, run.exit_code) for i, run in enumerate(m.runs[:m.used], 1))
    if m.applied:
        log = f"{m.applied.output}\n{log}"
    (folder / "test_output.txt").write_text(log)
    report = {
        **official,
        "resolved_guarded": record.resolved_guarded,
        "guard_flags": record.guard_flags,
        "status": record.status,
        "apply_method": record.apply_method,
        "policy": config.policy.value,
        "test_runs": record.test_runs,
        "flaky_tests": record.flaky_tests,
        "dropped_flaky": list(verdict.dropped_flaky) if verdict else [],
        "audited_flaky": sorted(audit.flaky),
        "nonce": nonce,
        "model_name_or_path": p.model,
        **({"error": record.error} if record.error else {}),
    }
    (folder / "report.json").write_text(json.dumps({task.instance_id: report}, indent=2) + "\n")
    return str(rel)


def run_report(tasks: Sequence[Task], predictions: Sequence[Prediction], records: Sequence[EvalRecord],
               audits: dict[str, Audit], config: EvalConfig, *, unknown: Iterable[str] = (),
               problems: Iterable[str] = (), audit_runs_executed: int = 0) -> dict:
    """Pure: the official run-level report (schema_version 2), plus monkeys' own fields under "monkeys".

    An instance with several predictions is resolved when any of them is; it is an error instance
    when any of them hit an infrastructure error (a rerun retries it).
    """
    per: dict[str, list[EvalRecord]] = defaultdict(list)
    for r in records:
        per[r.instance_id].append(r)
    patches: dict[str, list[str | None]] = defaultdict(list)
    for p in predictions:
        patches[p.instance_id].append(p.patch)
    submitted = sorted(per)
    completed = sorted(i for i, rs in per.items() if any(r.status != EvalStatus.ERROR.value for r in rs))
    resolved = sorted(i for i, rs in per.items() if any(r.resolved for r in rs))
    errors = sorted(i for i, rs in per.items() if any(r.status == EvalStatus.ERROR.value for r in rs))
    empty = sorted(i for i, ps in patches.items() if all(is_empty(x) for x in ps))
    all_ids = sorted(t.instance_id for t in tasks)
    return {
        "total_instances": len(all_ids),
        "submitted_instances": len(submitted),
        "completed_instances": len(completed),
        "resolved_instances": len(resolved),
        "unresolved_instances": len(set(completed) - set(resolved)),
        "empty_patch_instances": len(empty),
        "error_instances": len(errors),
        "unstopped_instances": 0,
        "completed_ids": completed,
        "incomplete_ids": sorted(set(all_ids) - set(submitted)),
        "empty_patch_ids": empty,
        "submitted_ids": submitted,
        "resolved_ids": resolved,
        "unresolved_ids": sorted(set(completed) - set(resolved)),
        "error_ids": errors,
        "unstopped_containers": [],
        "unremoved_images": [],
        "schema_version": 2,
        "monkeys": {
            "policy": config.policy.value,
            "reruns": config.reruns,
            "audit_runs": config.audit_runs,
            "predictions": len(records),
            "resolved_guarded_ids": sorted(i for i, rs in per.items() if any(r.resolved_guarded for r in rs)),
            "flagged": [{"instance_id": r.instance_id, "index": r.index, "guard_flags": r.guard_flags}
                        for r in records if r.guard_flags],
            "apply_failed": [{"instance_id": r.instance_id, "index": r.index} for r in records
                             if r.status == EvalStatus.APPLY_FAILED.value],
            **{status.value: [{"instance_id": r.instance_id, "index": r.index, "why": r.error} for r in records
                              if r.status == status.value]
               for status in (EvalStatus.TIMED_OUT, EvalStatus.RESOURCE_LIMIT, EvalStatus.UNDECIDABLE)},
            "gold_failing": {i: a.gold_failing for i, a in sorted(audits.items()) if a.gold_failing},
            "errors": [{"instance_id": r.instance_id, "index": r.index, "error": r.error} for r in records
                       if r.status == EvalStatus.ERROR.value],
            "test_runs_executed": sum(r.new_test_runs for r in records),
            "audit_runs_executed": audit_runs_executed,
            "unique_patches": len({(r.instance_id, r.patch_hash) for r in records}),
            "audited_flaky": {i: a.flaky for i, a in sorted(audits.items()) if a.flaky},
            "audit_errors": {i: a.error for i, a in sorted(audits.items()) if a.error},
            "unknown_instances": list(unknown),
            "bad_rows": list(problems),
        },
    }
