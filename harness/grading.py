"""Grading: pure functions from per-run status maps and a task's expected lists to a verdict.

With one run this is exactly the official harness (swebench 5.x): a FAIL_TO_PASS test succeeds when
it PASSED or XFAILed, and fails when FAILED, ERROR, SKIPPED or missing from the log; a PASS_TO_PASS
test succeeds when PASSED, XFAILed or SKIPPED, and fails when FAILED, ERROR or missing. Resolved iff
both success ratios are 1 (an empty list counts as 1).

A run whose test command exited non-zero while its log reports no failure counts as having no
results (``accepted``), as in the official harness.

With several runs, a policy decides each test from its per-run outcomes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.parsers import StatusMap, TestStatus

FAIL_TO_PASS, PASS_TO_PASS, FAIL_TO_FAIL, PASS_TO_FAIL = "FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL"
PAPER_RUNS = 11  # reruns per flaky-dependent verdict, as in the paper


class Policy(str, enum.Enum):
    """How a test's outcomes over several runs become one."""

    STRICT = "strict"  # passed in every run
    MAJORITY = "majority"  # passed in more than half the runs
    IGNORE_FLAKY = "ignore-flaky"  # audited-flaky tests dropped from both lists, one run


class Outcome(str, enum.Enum):
    """One test in one run, as the official grading sorts it (NEITHER: in neither list, e.g. XPASS)."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEITHER = "neither"


def status_of(test: str, statuses: StatusMap) -> TestStatus | None:
    """The status of an expected test. Some published ids (676 in Verified) are cut inside a
    parameter, e.g. ``test_grammar[log(photon``; as in the official grading, such an id takes the
    status of the ids it begins, when those agree on passing or not."""
    if test in statuses or test.count("[") <= test.count("]"):
        return statuses.get(test)
    matches = [t for t in statuses if t.startswith(test)]
    passing = {TestStatus.PASSED, TestStatus.XFAIL}
    if matches and len({statuses[t] in passing for t in matches}) == 1:
        return statuses[matches[0]]
    return None


def outcome(test: str, statuses: StatusMap, *, fail_to_pass: bool) -> Outcome:
    status = status_of(test, statuses)
    good = {TestStatus.PASSED, TestStatus.XFAIL} | (set() if fail_to_pass else {TestStatus.SKIPPED})
    bad = {TestStatus.FAILED, TestStatus.ERROR} | ({TestStatus.SKIPPED} if fail_to_pass else set())
    if status in good:
        return Outcome.SUCCESS
    if status is None or status in bad:
        return Outcome.FAILURE
    return Outcome.NEITHER


def accepted(statuses: StatusMap, exit_code: int | None) -> StatusMap:
    """A run's statuses as the official grading (5.x) accepts them: none at all when the test command
    exited non-zero yet its log shows no failure or error, since then the log does not describe the
    run that happened (a patch printing its own PASSED lines, a crash after the summary)."""
    if exit_code not in (None, 0) and statuses and not any(s in (TestStatus.FAILED, TestStatus.ERROR) for s in statuses.values()):
        return {}
    return statuses


def decide(outcomes: Sequence[Outcome], policy: Policy) -> Outcome:
    """One outcome from several runs' (equal to the only one when there is one run)."""
    successes = outcomes.count(Outcome.SUCCESS)
    failures = outcomes.count(Outcome.FAILURE)
    if policy is Policy.STRICT:
        if successes == len(outcomes):
            return Outcome.SUCCESS
        return Outcome.FAILURE if failures else Outcome.NEITHER
    if successes * 2 > len(outcomes):
        return Outcome.SUCCESS
    return Outcome.FAILURE if failures else Outcome.NEITHER


def seen_flaky(runs: Sequence[StatusMap], tests: Iterable[str]) -> set[str]:
    """Tests whose status is not the same in every run."""
    return {t for t in tests if len({run.get(t) for run in runs}) > 1}


@dataclass(frozen=True)
class Grade:
    """A verdict with the official report's tests_status."""

    resolved: bool
    tests_status: dict[str, dict[str, list[str]]]
    runs: int
    dropped_flaky: tuple[str, ...] = ()
    """Tests left out of both lists under ignore-flaky."""
    pass_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    """(runs it succeeded in, runs) for each expected test whose outcome varied across runs."""
    undecidable: bool = False
    """Under ignore-flaky, every FAIL_TO_PASS test was dropped as flaky: nothing is left that the patch
    had to fix, so there is no verdict (never resolved; scores leave it out)."""


def grade(runs: Sequence[StatusMap], fail_to_pass: Sequence[str], pass_to_pass: Sequence[str],
          policy: Policy = Policy.MAJORITY, audited_flaky: Iterable[str] = ()) -> Grade:
    """The verdict on one patch from its runs' status maps."""
    if not runs:
        raise ValueError("grading needs at least one run")
    dropped = set(audited_flaky) & (set(fail_to_pass) | set(pass_to_pass)) if policy is Policy.IGNORE_FLAKY else set()
    status: dict[str, dict[str, list[str]]] = {}
    counts: dict[str, tuple[int, int]] = {}
    for key, tests, f2p in ((FAIL_TO_PASS, fail_to_pass, True), (PASS_TO_PASS, pass_to_pass, False)):
        lists: dict[str, list[str]] = {"success": [], "failure": []}
        for test in tests:
            if test in dropped:
                continue
            outcomes = [outcome(test, run, fail_to_pass=f2p) for run in runs]
            if len(set(outcomes)) > 1:
                counts[test] = (outcomes.count(Outcome.SUCCESS), len(outcomes))
            decided = decide(outcomes, policy)
            if decided is not Outcome.NEITHER:
                lists[decided.value].append(test)
        status[key] = lists
    status[FAIL_TO_FAIL] = {"success": [], "failure": []}
    status[PASS_TO_FAIL] = {"success": [], "failure": []}
    # Dropping every FAIL_TO_PASS test would leave a verdict that only PASS_TO_PASS decides, which an
    # empty patch passes: a policy may drop evidence, never invent a solve.
    undecidable = bool(fail_to_pass) and set(fail_to_pass) <= dropped
    resolved = not undecidable and all(not status[key]["failure"] for key in (FAIL_TO_PASS, PASS_TO_PASS))
    return Grade(resolved, status, len(runs), tuple(sorted(dropped)), counts, undecidable)


def runs_needed(runs: Sequence[StatusMap], fail_to_pass: Sequence[str], pass_to_pass: Sequence[str],
                policy: Policy, known_flaky: Iterable[str], reruns: int = PAPER_RUNS) -> int:
    """How many runs this patch's verdict needs: one, unless it hinges on a flaky test, then ``reruns``.

    A verdict hinges on flaky tests when every expected test that is not flaky (known from the gold
    audit, or seen to vary in these runs) succeeds, and some expected test is flaky: then the flaky
    tests alone decide it. A deterministic failure elsewhere decides it whatever they do.
    """
    if policy is Policy.IGNORE_FLAKY or not runs:
        return 1
    expected = [(t, True) for t in fail_to_pass] + [(t, False) for t in pass_to_pass]
    flaky = (set(known_flaky) | seen_flaky(runs, (t for t, _ in expected))) & {t for t, _ in expected}
    if not flaky:
        return 1
    steady = [(t, f2p) for t, f2p in expected if t not in flaky]
    if any(decide([outcome(t, run, fail_to_pass=f2p) for run in runs], policy) is Outcome.FAILURE for t, f2p in steady):
        return 1
    return reruns
