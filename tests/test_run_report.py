"""The run-level report (official schema_version 2 plus monkeys' fields) and the gold audit, both pure."""

import pytest

from harness.evalscript import TestRun
from harness.evalconfig import EvalConfig
from harness.official_report import run_report
from harness.verdict import GoldAudit, audit_from_runs
from harness.grading import Policy
from harness.guards import GuardFlag, run_flags
from harness.parsers import TestStatus as S
from harness.parsers import parse_pytest
from harness.predictions import Prediction
from harness.store import EvalRecord, EvalStatus
from harness.tasks import parse_row

OFFICIAL_KEYS = {
    "total_instances", "submitted_instances", "completed_instances", "resolved_instances", "unresolved_instances",
    "empty_patch_instances", "error_instances", "unstopped_instances", "completed_ids", "incomplete_ids",
    "empty_patch_ids", "submitted_ids", "resolved_ids", "unresolved_ids", "error_ids", "unstopped_containers",
    "unremoved_images", "schema_version",
}
COUNT_OF = {
    "submitted_instances": "submitted_ids",
    "completed_instances": "completed_ids",
    "resolved_instances": "resolved_ids",
    "unresolved_instances": "unresolved_ids",
    "empty_patch_instances": "empty_patch_ids",
    "error_instances": "error_ids",
    "unstopped_instances": "unstopped_containers",
}
PATCH = "diff --git a/w.py b/w.py\n--- a/w.py\n+++ b/w.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
F2P = "tests/test_w.py::test_fixed"
P2P = ["tests/test_w.py::test_kept", "tests/test_w.py::test_other"]


def _task(instance_id: str, fail_to_pass=(F2P,), pass_to_pass=tuple(P2P)):
    return parse_row({
        "instance_id": instance_id, "repo": "acme/w", "base_commit": "c" * 40, "patch": PATCH, "test_patch": "",
        "problem_statement": "x", "FAIL_TO_PASS": list(fail_to_pass), "PASS_TO_PASS": list(pass_to_pass),
        "test_cmd": "pytest -rA", "log_parser": "pytest",
    }, "t", 1)


def _pred(instance_id: str, index: int = 0, patch: str | None = PATCH) -> Prediction:
    return Prediction(instance_id, "gpt-x", patch, index, f"preds.jsonl:{index + 1}")


def _record(instance_id: str, index: int = 0, status: EvalStatus = EvalStatus.GRADED, resolved: bool = False,
            guard_flags=(), error: str = "") -> EvalRecord:
    return EvalRecord(instance_id, index, "gpt-x", f"hash-{instance_id}-{index}", status.value, resolved=resolved,
                      resolved_guarded=resolved and not guard_flags, guard_flags=list(guard_flags), error=error)


@pytest.fixture
def scenario():
    """w-1: two predictions, the second resolves; w-2: unresolved; w-3: infrastructure error;
    w-4: empty patch, graded unresolved; w-5: apply failed; w-6: no prediction."""
    tasks = [_task(f"acme__w-{n}") for n in range(1, 7)]
    predictions = [_pred("acme__w-1", 0), _pred("acme__w-1", 1), _pred("acme__w-2"), _pred("acme__w-3"),
                   _pred("acme__w-4", patch=""), _pred("acme__w-5")]
    records = [
        _record("acme__w-1", 0),
        _record("acme__w-1", 1, resolved=True),
        _record("acme__w-2", guard_flags=[GuardFlag.EDITS_TESTS.value]),
        _record("acme__w-3", status=EvalStatus.ERROR, error="acme__w-3: engine error: boom"),
        _record("acme__w-4"),
        _record("acme__w-5", status=EvalStatus.APPLY_FAILED),
    ]
    return tasks, predictions, records


def _report(tasks, predictions, records, audits=None, **kwargs):
    return run_report(tasks, predictions, records, audits or {}, EvalConfig(), **kwargs)


# -- run_report -------------------------------------------------------------------------------------------

def test_the_report_has_exactly_the_official_keys_plus_monkeys(scenario):
    report = _report(*scenario)
    assert set(report) == OFFICIAL_KEYS | {"monkeys"}
    assert isinstance(report["monkeys"], dict)
    assert report["schema_version"] == 2


def test_every_count_is_the_length_of_its_id_list(scenario):
    report = _report(*scenario)
    for count, ids in COUNT_OF.items():
        assert report[count] == len(report[ids]), count


def test_the_id_lists_sort_the_instances(scenario):
    report = _report(*scenario)
    assert report["total_instances"] == 6
    assert report["submitted_ids"] == [f"acme__w-{n}" for n in range(1, 6)]
    assert report["incomplete_ids"] == ["acme__w-6"]
    assert report["completed_ids"] == ["acme__w-1", "acme__w-2", "acme__w-4", "acme__w-5"]
    assert report["resolved_ids"] == ["acme__w-1"]
    assert report["unresolved_ids"] == ["acme__w-2", "acme__w-4", "acme__w-5"]
    assert report["error_ids"] == ["acme__w-3"]
    assert report["empty_patch_ids"] == ["acme__w-4"]
    assert report["unstopped_containers"] == [] and report["unremoved_images"] == []


def test_id_lists_are_sorted_whatever_the_input_order(scenario):
    tasks, predictions, records = scenario
    report = _report(tasks[::-1], predictions[::-1], records[::-1])
    assert report == _report(tasks, predictions, records)


def test_an_instance_is_resolved_if_any_of_its_predictions_is():
    tasks = [_task("acme__w-1")]
    predictions = [_pred("acme__w-1", i) for i in range(3)]
    for resolving in range(3):
        records = [_record("acme__w-1", i, resolved=i == resolving) for i in range(3)]
        report = _report(tasks, predictions, records)
        assert report["resolved_ids"] == ["acme__w-1"]
        assert report["unresolved_ids"] == []


def test_an_instance_none_of_whose_predictions_resolves_is_unresolved():
    tasks = [_task("acme__w-1")]
    records = [_record("acme__w-1", i) for i in range(3)]
    report = _report(tasks, [_pred("acme__w-1", i) for i in range(3)], records)
    assert report["resolved_ids"] == [] and report["unresolved_ids"] == ["acme__w-1"]


def test_an_errored_prediction_puts_its_instance_in_error_ids():
    tasks = [_task("acme__w-1")]
    records = [_record("acme__w-1", 0, resolved=True),
               _record("acme__w-1", 1, status=EvalStatus.ERROR, error="acme__w-1: image missing")]
    report = _report(tasks, [_pred("acme__w-1", 0), _pred("acme__w-1", 1)], records)
    assert report["error_ids"] == ["acme__w-1"]
    assert report["resolved_ids"] == ["acme__w-1"]


def test_an_instance_with_only_errors_is_not_completed():
    tasks = [_task("acme__w-1")]
    records = [_record("acme__w-1", status=EvalStatus.ERROR, error="acme__w-1: timed out")]
    report = _report(tasks, [_pred("acme__w-1")], records)
    assert report["error_ids"] == ["acme__w-1"]
    assert report["completed_ids"] == [] and report["unresolved_ids"] == [] and report["resolved_ids"] == []
    assert report["submitted_ids"] == ["acme__w-1"]


def test_an_instance_is_empty_only_when_every_prediction_is_empty():
    tasks = [_task("acme__w-1"), _task("acme__w-2")]
    predictions = [_pred("acme__w-1", 0, patch=None), _pred("acme__w-1", 1, patch="  \n"),
                   _pred("acme__w-2", 0, patch=""), _pred("acme__w-2", 1)]
    records = [_record("acme__w-1", 0), _record("acme__w-1", 1), _record("acme__w-2", 0), _record("acme__w-2", 1)]
    assert _report(tasks, predictions, records)["empty_patch_ids"] == ["acme__w-1"]


def test_no_predictions_make_an_all_incomplete_report():
    tasks = [_task("acme__w-1"), _task("acme__w-2")]
    report = _report(tasks, [], [])
    assert report["total_instances"] == 2
    assert report["incomplete_ids"] == ["acme__w-1", "acme__w-2"]
    for count in COUNT_OF:
        assert report[count] == 0


def test_monkeys_fields_summarise_the_records(scenario):
    tasks, predictions, records = scenario
    audits = {"acme__w-1": GoldAudit("acme__w-1", 5, flaky={P2P[1]: [3, 5]}),
              "acme__w-3": GoldAudit("acme__w-3", 0, error="acme__w-3: the gold patch does not apply")}
    report = run_report(tasks, predictions, records, audits, EvalConfig(policy=Policy.STRICT, reruns=7),
                        unknown=["preds.jsonl:9: unknown instance id 'x'"], problems=["preds.jsonl:4: bad"],
                        audit_runs_executed=5)
    m = report["monkeys"]
    assert m["policy"] == "strict" and m["reruns"] == 7
    assert m["predictions"] == 6
    assert m["resolved_guarded_ids"] == ["acme__w-1"]
    assert m["flagged"] == [{"instance_id": "acme__w-2", "index": 0, "guard_flags": ["edits_tests"]}]
    assert m["apply_failed"] == [{"instance_id": "acme__w-5", "index": 0}]
    assert m["errors"] == [{"instance_id": "acme__w-3", "index": 0, "error": "acme__w-3: engine error: boom"}]
    assert m["audited_flaky"] == {"acme__w-1": {P2P[1]: [3, 5]}}
    assert m["audit_errors"] == {"acme__w-3": "acme__w-3: the gold patch does not apply"}
    assert m["unknown_instances"] == ["preds.jsonl:9: unknown instance id 'x'"]
    assert m["bad_rows"] == ["preds.jsonl:4: bad"]
    assert m["audit_runs_executed"] == 5


def test_a_flagged_resolution_is_resolved_but_not_resolved_guarded():
    tasks = [_task("acme__w-1")]
    records = [_record("acme__w-1", resolved=True, guard_flags=[GuardFlag.FORGED_OUTPUT.value])]
    report = _report(tasks, [_pred("acme__w-1")], records)
    assert report["resolved_ids"] == ["acme__w-1"]
    assert report["monkeys"]["resolved_guarded_ids"] == []


# -- audit_from_runs --------------------------------------------------------------------------------------

def _runs(*maps):
    return [TestRun(m, 0 if all(s is S.PASSED for s in m.values()) else 1) for m in maps]


def test_a_steady_gold_patch_has_nothing_to_report():
    steady = {F2P: S.PASSED, P2P[0]: S.PASSED, P2P[1]: S.PASSED}
    audit = audit_from_runs(_task("acme__w-1"), _runs(steady, steady, steady))
    assert audit == GoldAudit("acme__w-1", 3)


def test_a_test_whose_outcome_varies_under_gold_is_flaky_with_its_pass_count():
    runs = _runs(*({F2P: S.PASSED, P2P[0]: S.PASSED, P2P[1]: status}
                   for status in (S.PASSED, S.FAILED, S.PASSED, S.PASSED, S.FAILED)))
    audit = audit_from_runs(_task("acme__w-1"), runs)
    assert audit.runs == 5
    assert audit.flaky == {P2P[1]: [3, 5]}
    assert audit.gold_failing == []


def test_a_test_missing_from_some_gold_runs_is_flaky():
    runs = _runs({F2P: S.PASSED, P2P[0]: S.PASSED, P2P[1]: S.PASSED}, {F2P: S.PASSED, P2P[0]: S.PASSED})
    assert audit_from_runs(_task("acme__w-1"), runs).flaky == {P2P[1]: [1, 2]}


def test_an_expected_test_failing_in_every_gold_run_is_gold_failing_not_flaky():
    runs = _runs(*({F2P: S.FAILED, P2P[0]: S.PASSED, P2P[1]: S.PASSED} for _ in range(3)))
    audit = audit_from_runs(_task("acme__w-1"), runs)
    assert audit.gold_failing == [F2P]
    assert audit.flaky == {}


def test_an_expected_test_missing_from_every_gold_run_is_gold_failing():
    runs = _runs(*({F2P: S.PASSED, P2P[0]: S.PASSED} for _ in range(2)))
    assert audit_from_runs(_task("acme__w-1"), runs).gold_failing == [P2P[1]]


def test_an_expected_test_skipped_under_gold_is_recorded_and_not_failing():
    runs = _runs(*({F2P: S.PASSED, P2P[0]: S.SKIPPED, P2P[1]: S.PASSED} for _ in range(2)))
    audit = audit_from_runs(_task("acme__w-1"), runs)
    assert audit.skipped == [P2P[0]]
    assert audit.gold_failing == []


def test_an_expected_test_xfailing_in_every_gold_run_is_not_gold_failing():
    # The official grading counts XFAIL as a success for both lists, so the gold patch is not broken.
    runs = _runs(*({F2P: S.PASSED, P2P[0]: S.XFAIL, P2P[1]: S.PASSED} for _ in range(3)))
    assert audit_from_runs(_task("acme__w-1"), runs).gold_failing == []


def test_an_audit_from_no_runs_is_empty():
    assert audit_from_runs(_task("acme__w-1"), []) == GoldAudit("acme__w-1", 0)


GOLD_LOG_WITH_XFAIL = """\
============================= test session starts ==============================
collected 3 items

tests/test_w.py ..x                                                      [100%]

==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED tests/test_w.py::test_fixed
PASSED tests/test_w.py::test_kept
XFAIL tests/test_w.py::test_other - known upstream bug
========================= 2 passed, 1 xfailed in 0.05s =========================
"""


def test_the_gold_patchs_own_runs_raise_no_skip_flag_when_an_expected_test_xfails_under_gold():
    # SWE-bench PASS_TO_PASS lists include xfail-marked tests (XFAIL counts as passing); the audit
    # must excuse what the gold patch itself does, or every patch of the task is flagged.
    task = _task("acme__w-1")
    gold_runs = [TestRun(parse_pytest(GOLD_LOG_WITH_XFAIL), 0, GOLD_LOG_WITH_XFAIL) for _ in range(3)]
    audit = audit_from_runs(task, gold_runs)
    flags = run_flags(gold_runs, task.fail_to_pass + task.pass_to_pass, parse_pytest, audit.skipped)
    assert GuardFlag.SKIPS_TESTS not in flags
