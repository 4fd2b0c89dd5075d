"""`monkeys audit-flaky`: run each task's gold patch and the empty patch R times and report which
tests change outcome between runs of the same patch (flaky), and which expected tests the gold patch
fails every time (a broken environment, not flakiness).

It reads only the tests' behaviour, never a row's own flaky annotation, so it can check one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.evaluate import Evaluator, Jobs, LocalJobs
from harness.verdict import audit_from_runs
from harness.grading import seen_flaky
from harness.parsers import TestStatus
from harness.tasks import Task


@dataclass
class FlakyAudit:
    instance_id: str
    runs: int
    flaky_tests: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """test -> {"gold" | "empty": [runs passed, runs]}, for tests that varied under that patch."""
    gold_failing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def flaky(self) -> bool:
        return bool(self.flaky_tests)


def audit_task(evaluator: Evaluator, task: Task, runs: int) -> FlakyAudit:
    result = FlakyAudit(task.instance_id, runs)
    for name, patch in (("gold", task.patch), ("empty", "")):
        measured = evaluator.measure(task, patch, lambda _: runs)
        if measured.error:
            result.errors.append(f"{name}: {measured.error}")
            continue
        if not measured.applied or measured.applied.method is None:
            result.errors.append(f"{name}: the patch does not apply")
            continue
        maps = [r.statuses for r in measured.runs[:runs]]
        for test in sorted(seen_flaky(maps, set().union(*maps))):
            passed = sum(m.get(test) is TestStatus.PASSED for m in maps)
            result.flaky_tests.setdefault(test, {})[name] = [passed, len(maps)]
        if name == "gold":
            result.gold_failing = audit_from_runs(task, measured.runs[:runs]).gold_failing
    return result


def audit_tasks(evaluator: Evaluator, tasks: Sequence[Task], runs: int, on_done=None,
                jobs: Jobs | None = None) -> list[FlakyAudit]:
    """Every task's audit, in ``tasks``' order; ``jobs``: where they run (default: ``config.workers``
    threads here; harness/cluster.py's RayJobs for a Ray cluster), closed on return."""
    jobs = jobs or LocalJobs(evaluator)
    audits: list[FlakyAudit | None] = [None] * len(tasks)
    try:
        # Each task's audit reads the cache entries of its gold and empty patches under its plan.
        pending = {jobs.submit(audit_task, task, runs, reads=[(False, task.patch), (False, "")]): n
                   for n, task in enumerate(tasks)}
        while pending:
            for handle in jobs.wait(list(pending)):
                audit = audits[pending.pop(handle)] = jobs.result(handle)
                if on_done:
                    on_done(audit)
    finally:
        jobs.close()
    return audits


def summary(audits: Sequence[FlakyAudit], runs: int) -> dict:
    """Pure: the audit's JSON report."""
    flaky = [a for a in audits if a.flaky]
    judged = [a for a in audits if not a.errors]
    return {
        "runs": runs,
        "tasks": len(audits),
        "flaky_instances": [a.instance_id for a in flaky],
        "flaky_share": round(len(flaky) / len(judged), 4) if judged else None,
        "broken_gold_instances": [a.instance_id for a in audits if a.gold_failing],
        "error_instances": [a.instance_id for a in audits if a.errors],
        "instances": [
            {"instance_id": a.instance_id, "flaky": a.flaky, "flaky_tests": a.flaky_tests,
             "gold_failing": a.gold_failing, "errors": a.errors}
            for a in audits
        ],
    }
