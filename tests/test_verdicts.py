"""Verdicts that cannot be invented: statuses for hangs, resource limits and undecidable tasks, the
empty patch under every policy, existing tests as a user sees them, and a run's verdicts belonging to
one patch. Pure: records and runs are built by hand, no engine."""

import pytest

from harness.evalcache import Applied
from harness.evalscript import ApplyMethod, Limit, TestRun
from harness.evaluate import RunMismatch, check_run_holds
from harness.evalscript import limits_hit, split_limits
from harness.verdict import GoldAudit, PatchRuns, existing_tests_hold, judge, runs_counted
from harness.grading import Policy, grade
from harness.parsers import TestStatus as S
from harness.patches import patch_hash
from harness.predictions import Prediction
from harness.store import JUDGED_STATUSES, StoredAttempt, EvalRecord, EvalStatus, RunStore
from harness.tasks import parse_row

PATCH = "diff --git a/w.py b/w.py\n--- a/w.py\n+++ b/w.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
OTHER = PATCH.replace("+a = 2", "+a = 3")
F2P = "tests/test_w.py::test_fixed"
P2P = "tests/test_w.py::test_kept"


def _task(fail_to_pass=(F2P,), pass_to_pass=(P2P,)):
    return parse_row({
        "instance_id": "acme__w-1", "repo": "acme/w", "base_commit": "c" * 40, "patch": PATCH, "test_patch": "",
        "problem_statement": "x", "FAIL_TO_PASS": list(fail_to_pass), "PASS_TO_PASS": list(pass_to_pass),
        "test_cmd": "pytest -rA", "log_parser": "pytest",
    }, "t", 1)


def _judge(patch, runs, policy=Policy.MAJORITY, audit=None, task=None):
    runs_ = PatchRuns(applied=Applied(ApplyMethod.GIT_APPLY, ""), runs=list(runs), used=len(runs))
    record, official, _ = judge(task or _task(), Prediction("acme__w-1", "m", patch), runs_, audit, policy=policy, timeout=60)
    return record, official


def _run(f2p=S.PASSED, p2p=S.PASSED, **kw):
    return TestRun({F2P: f2p, P2P: p2p}, 0 if f2p is p2p is S.PASSED else 1, **kw)


@pytest.mark.parametrize("policy", list(Policy))
def test_an_empty_patch_never_resolves_under_any_policy(policy):
    # Its tests all pass (a flaky FAIL_TO_PASS test that happened to pass every time): still nothing was fixed.
    audit = GoldAudit("acme__w-1", 5, flaky={F2P: [3, 5]})
    for patch in ("", None):
        record, official = _judge(patch, [_run()] * 11, policy, audit)
        assert not record.resolved and not record.resolved_guarded and not official["resolved"]
    record, _ = _judge(PATCH, [_run()], policy)
    assert record.resolved  # the same runs resolve a real patch


def test_ignore_flaky_dropping_every_fail_to_pass_test_is_undecidable():
    audit = GoldAudit("acme__w-1", 5, flaky={F2P: [2, 5]})
    record, official = _judge(PATCH, [_run()], Policy.IGNORE_FLAKY, audit)
    assert record.status == EvalStatus.UNDECIDABLE.value and not record.resolved and not official["resolved"]
    assert EvalStatus.UNDECIDABLE not in JUDGED_STATUSES  # left out of scores
    assert grade([{F2P: S.PASSED, P2P: S.PASSED}], [F2P], [P2P], Policy.IGNORE_FLAKY, [F2P]).undecidable
    # Other policies decide by the runs; ignore-flaky with a steady FAIL_TO_PASS test left decides too.
    assert _judge(PATCH, [_run()], Policy.MAJORITY, audit)[0].status == EvalStatus.GRADED.value
    two = _task(fail_to_pass=(F2P, "tests/test_w.py::test_also"))
    runs = [TestRun({F2P: S.PASSED, P2P: S.PASSED, "tests/test_w.py::test_also": S.PASSED}, 0)]
    record, _ = _judge(PATCH, runs, Policy.IGNORE_FLAKY, audit, two)
    assert record.status == EvalStatus.GRADED.value and record.resolved


def test_a_timed_out_run_is_the_patch_outcome_unresolved_and_judged():
    audit = GoldAudit("acme__w-1", 5, slowest=2.0)
    record, official = _judge(PATCH, [TestRun({}, None, "", timed_out=True)], audit=audit)
    assert record.status == EvalStatus.TIMED_OUT.value and not record.resolved and EvalStatus.TIMED_OUT in JUDGED_STATUSES
    assert official["patch_successfully_applied"] and not official["resolved"]


def test_a_hang_is_the_patch_only_when_the_gold_runs_finish_well_inside_the_limit():
    assert GoldAudit("a", 5, slowest=2.0).hang_is_verdict(60)
    assert not GoldAudit("a", 5, slowest=40.0).hang_is_verdict(60)  # gold itself near the limit: the machine's doing
    assert not GoldAudit("a", 0, error="gold timed out").hang_is_verdict(60)
    assert not GoldAudit("a", 0).hang_is_verdict(60)  # no gold run: nothing known


def test_a_timed_out_run_ends_the_runs_a_verdict_rests_on():
    flaky_need = lambda runs: 11
    runs = [_run(), TestRun({}, None, timed_out=True), _run(), _run()]
    assert runs_counted(runs, flaky_need) == 2


def test_a_resource_limit_the_gold_stayed_within_is_the_patch_outcome():
    hit = _run(f2p=S.FAILED, limits_hit=(Limit.MEMORY,))
    record, _ = _judge(PATCH, [hit], audit=GoldAudit("acme__w-1", 5))
    assert record.status == EvalStatus.RESOURCE_LIMIT.value and not record.resolved and "memory" in record.error
    # The gold runs hit the same limit: an environment trait, graded as usual.
    record, _ = _judge(PATCH, [hit], audit=GoldAudit("acme__w-1", 5, limits_hit=["memory"]))
    assert record.status == EvalStatus.GRADED.value and not record.resolved
    # Tests that pass despite the limit are not contradicted.
    record, _ = _judge(PATCH, [_run(limits_hit=(Limit.PIDS,))], audit=GoldAudit("acme__w-1", 5))
    assert record.status == EvalStatus.GRADED.value and record.resolved


def test_limits_are_read_from_cgroup_counters_of_either_version():
    v2 = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n#\nmax 0\n#\n"
    v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n#\nmax 12\n#\n"
    assert limits_hit(v2) == (Limit.MEMORY,)  # memory's "max" line is not the pid counter
    assert limits_hit(v1) == (Limit.PIDS,)
    assert limits_hit("#\n#\n") == ()


@pytest.mark.parametrize("own", ["collected 3 items\n3 passed\n", "no newline at the end", ""])
def test_the_counters_come_off_the_test_output_exactly(own):
    counters = "oom_kill 2\n#\nmax 0\n#\n"
    assert split_limits(f"{own}\nmonkeys-limits-ab12\n{counters}", "monkeys-limits-ab12") == (own, (Limit.MEMORY,))
    # Only the last sentinel counts; a run killed before the counters keeps all its output.
    forged = f"{own}\nmonkeys-limits-ab12\nmax 9\n#\n"
    assert split_limits(f"{forged}\nmonkeys-limits-ab12\n{counters}", "monkeys-limits-ab12")[0] == forged
    assert split_limits(own, "monkeys-limits-ab12") == (own, ())


def test_existing_tests_hold_where_every_test_that_passed_unpatched_still_passes():
    base = TestRun({"t::a": S.PASSED, "t::b": S.FAILED, "t::c": S.PASSED}, 1)
    assert existing_tests_hold(base, TestRun({"t::a": S.PASSED, "t::b": S.FAILED, "t::c": S.PASSED}, 1))
    assert existing_tests_hold(base, TestRun({"t::a": S.PASSED, "t::b": S.PASSED, "t::c": S.PASSED}, 0))
    assert not existing_tests_hold(base, TestRun({"t::a": S.PASSED, "t::c": S.FAILED}, 1))
    assert not existing_tests_hold(base, TestRun({"t::a": S.PASSED}, 0))  # a test gone missing
    assert not existing_tests_hold(base, TestRun({}, None, timed_out=True))
    assert not existing_tests_hold(base, None)  # did not apply


def _record(index, patch, model="m"):
    return EvalRecord("acme__w-1", index, model, patch_hash(patch), EvalStatus.GRADED.value)


def test_a_run_holding_verdicts_on_other_patches_refuses_new_predictions(tmp_path):
    store = RunStore("preds-a", root=tmp_path)
    try:
        store.save_evaluation(_record(0, PATCH, "model-a"))
        same = [Prediction("acme__w-1", "model-a", PATCH, 0)]
        check_run_holds(store, same, [patch_hash(PATCH)], from_attempts=False)  # the same patch: fine
        other = [Prediction("acme__w-1", "model-b", OTHER, 0)]
        with pytest.raises(RunMismatch) as err:
            check_run_holds(store, other, [patch_hash(OTHER)], from_attempts=False)
        message = str(err.value)
        assert "'preds-a'" in message and "acme__w-1 #0" in message and "model-a" in message and "model-b" in message
        # A sampling run's own re-made attempt replaces its old verdict.
        check_run_holds(store, other, [patch_hash(OTHER)], from_attempts=True)
    finally:
        store.close()


def test_predictions_are_refused_in_a_sampling_run(tmp_path):
    store = RunStore("sampled", root=tmp_path)
    try:
        store.save_attempt(StoredAttempt("acme__w-1", 0, "m", PATCH))
        with pytest.raises(RunMismatch, match="sampling run"):
            check_run_holds(store, [Prediction("acme__w-1", "m", PATCH, 0)], [patch_hash(PATCH)], from_attempts=False)
        check_run_holds(store, [Prediction("acme__w-1", "m", PATCH, 0)], [patch_hash(PATCH)], from_attempts=True)
    finally:
        store.close()
