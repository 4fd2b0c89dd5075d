"""Turning runs into a verdict, pure: a task's gold audit from its gold runs, how many runs a verdict
needs, which of the runs it rests on, and a prediction's record and official report from them.

Nothing here touches Docker or the cache; ``harness/evaluate.py`` gets the runs, this judges them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.evalcache import Applied
from harness.evalscript import TestRun, parser_for, patched_test_files
from harness.grading import PASS_TO_PASS, Grade, Policy, accepted, grade, runs_needed, seen_flaky
from harness.guards import patch_flags, run_flags, skipped_tests
from harness.parsers import TestStatus
from harness.patches import PatchParseError, files, is_empty, patch_hash
from harness.predictions import Prediction
from harness.store import EvalRecord, EvalStatus
from harness.tasks import Task

# A timed-out run is the patch's outcome only when every gold run finished within this share of the limit.
WELL_INSIDE = 0.5

RunsNeeded = Callable[[list[TestRun]], int]
"""How many runs a verdict needs, given the runs so far (see ``runs_needed_for``)."""


@dataclass
class PatchRuns:
    """The runs of one patch on one task under one plan: what the evaluation cache held, plus what this
    call ran (and what that cost)."""

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
class GoldAudit:
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


def audit_from_runs(task: Task, runs: Sequence[TestRun], seconds: Sequence[float] = ()) -> GoldAudit:
    """Pure: a task's audit from its gold runs (and how long each took)."""
    maps = [r.statuses for r in runs]
    every = set().union(*maps) if maps else set()
    flaky = {t: [sum(m.get(t) is TestStatus.PASSED for m in maps), len(maps)] for t in sorted(seen_flaky(maps, every))}
    expected = task.fail_to_pass + task.pass_to_pass
    skipped = sorted(set().union(*(skipped_tests(r, expected) for r in runs))) if runs else []
    fine = {TestStatus.PASSED, TestStatus.SKIPPED, TestStatus.XFAIL}
    failing = [t for t in expected if t not in flaky and t not in skipped and maps and all(m.get(t) not in fine for m in maps)]
    limits = sorted({x.value for r in runs for x in r.limits_hit})
    return GoldAudit(task.instance_id, len(maps), flaky, failing, skipped, slowest=max(seconds, default=0.0), limits_hit=limits)


def known_flaky(task: Task, audit: GoldAudit | None) -> set[str]:
    """Tests known to flake: seen flaking in the gold audit, or documented as flaky by the row itself
    (a few audit runs can miss a test that fails a third of the time; a row that says so is evidence)."""
    return (set(audit.flaky) if audit else set()) | (set(task.flaky.tests) if task.flaky else set())


def runs_needed_for(task: Task, audit: GoldAudit | None, policy: Policy, reruns: int) -> RunsNeeded:
    """How many runs a verdict on ``task`` needs, given the runs so far: one, or ``reruns`` while it hinges
    on a test known to flake (``known_flaky``)."""
    known = known_flaky(task, audit)
    return lambda runs: max(1, runs_needed([accepted(r.statuses, r.exit_code) for r in runs], task.fail_to_pass, task.pass_to_pass,
                                           policy, known, reruns))



def runs_counted(runs: Sequence[TestRun], need: RunsNeeded) -> int:
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


def needs_more_runs(runs: Sequence[TestRun], need: RunsNeeded) -> bool:
    """Whether ``runs`` are too few for the verdict they lead to."""
    n = runs_counted(runs, need)
    if any(r.timed_out for r in runs[:n]):
        return False
    return need(list(runs[:n])) > n


def judge(task: Task, prediction: Prediction, measured: PatchRuns, audit: GoldAudit | None, *, policy: Policy,
          timeout: float, digest: str | None = None) -> tuple[EvalRecord, dict, Grade | None]:
    """Pure: a prediction's record and official report from its runs. ``audit`` is the task's gold audit
    (None where it failed), ``timeout`` the limit the runs ran under (for the message of a hang), and
    ``digest`` the prediction's normalised patch hash where the caller has it."""
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
        record.error = f"the tests ran past the {timeout:.0f} s limit (the gold runs take at most {audit.slowest:.1f} s)" if audit else ""
        return record, official, None
    flaky = known_flaky(task, audit)
    verdict = grade([accepted(r.statuses, r.exit_code) for r in used], task.fail_to_pass, task.pass_to_pass,
                    policy, flaky)
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


def existing_tests_hold(baseline: TestRun, run: TestRun | None) -> bool:
    """Pure: every test that passed with no patch still passes (or xfails) with the patch. A patch that
    does not apply, or whose run timed out, keeps nothing."""
    if run is None or run.timed_out:
        return False
    kept = {TestStatus.PASSED, TestStatus.XFAIL}
    return all(run.statuses.get(t) in kept for t, s in baseline.statuses.items() if s is TestStatus.PASSED)
