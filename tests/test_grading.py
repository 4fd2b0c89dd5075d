"""Grading: one run is the official swebench 5.x verdict; several runs are decided by a policy."""

import pytest

from harness.grading import (
    FAIL_TO_FAIL,
    FAIL_TO_PASS,
    PAPER_RUNS,
    PASS_TO_FAIL,
    PASS_TO_PASS,
    Policy,
    grade,
    runs_needed,
)
from harness.parsers import TestStatus as S

F = "tests/test_fix.py::test_fixed"
P = "tests/test_core.py::test_kept"
Q = "tests/test_core.py::test_other"
FLAKY = "tests/test_core.py::test_random"


def _where(result, key: str, test: str) -> str:
    """'success', 'failure' or 'neither': the list of tests_status[key] that holds ``test``."""
    lists = result.tests_status[key]
    found = [name for name in ("success", "failure") if test in lists[name]]
    assert len(found) <= 1, f"{test} is in both lists of {key}"
    return found[0] if found else "neither"


# -- one run: the official semantics ---------------------------------------------------------------

@pytest.mark.parametrize("status, expected", [
    (S.PASSED, "success"),
    (S.XFAIL, "success"),
    (S.FAILED, "failure"),
    (S.ERROR, "failure"),
    (S.SKIPPED, "failure"),
    (None, "failure"),
    (S.XPASS, "neither"),
])
def test_a_fail_to_pass_test_is_sorted_as_the_official_harness_does(status, expected):
    run = {} if status is None else {F: status}
    result = grade([run], [F], [])
    assert _where(result, FAIL_TO_PASS, F) == expected
    assert result.resolved is (expected != "failure")


@pytest.mark.parametrize("status, expected", [
    (S.PASSED, "success"),
    (S.XFAIL, "success"),
    (S.SKIPPED, "success"),
    (S.FAILED, "failure"),
    (S.ERROR, "failure"),
    (None, "failure"),
    (S.XPASS, "neither"),
])
def test_a_pass_to_pass_test_is_sorted_as_the_official_harness_does(status, expected):
    run = {} if status is None else {P: status}
    result = grade([run], [], [P])
    assert _where(result, PASS_TO_PASS, P) == expected
    assert result.resolved is (expected != "failure")


def test_resolved_when_every_expected_test_succeeds():
    result = grade([{F: S.PASSED, P: S.PASSED, Q: S.SKIPPED}], [F], [P, Q])
    assert result.resolved
    assert result.tests_status[FAIL_TO_PASS] == {"success": [F], "failure": []}
    assert result.tests_status[PASS_TO_PASS] == {"success": [P, Q], "failure": []}


def test_one_failing_pass_to_pass_test_unresolves_a_fixed_bug():
    result = grade([{F: S.PASSED, P: S.PASSED, Q: S.FAILED}], [F], [P, Q])
    assert not result.resolved
    assert result.tests_status[PASS_TO_PASS] == {"success": [P], "failure": [Q]}


def test_one_failing_fail_to_pass_test_unresolves():
    result = grade([{F: S.FAILED, P: S.PASSED}], [F], [P])
    assert not result.resolved
    assert result.tests_status[FAIL_TO_PASS] == {"success": [], "failure": [F]}


def test_empty_expected_lists_resolve():
    result = grade([{}], [], [])
    assert result.resolved
    assert result.tests_status[FAIL_TO_PASS] == {"success": [], "failure": []}
    assert result.tests_status[PASS_TO_PASS] == {"success": [], "failure": []}


def test_tests_outside_the_expected_lists_do_not_matter():
    result = grade([{F: S.PASSED, "tests/test_core.py::test_unlisted": S.FAILED}], [F], [])
    assert result.resolved


def test_tests_status_has_the_four_official_keys_with_empty_to_fail_lists():
    result = grade([{F: S.PASSED}], [F], [])
    assert set(result.tests_status) == {FAIL_TO_PASS, PASS_TO_PASS, FAIL_TO_FAIL, PASS_TO_FAIL}
    assert result.tests_status[FAIL_TO_FAIL] == {"success": [], "failure": []}
    assert result.tests_status[PASS_TO_FAIL] == {"success": [], "failure": []}


def test_one_run_reports_one_run_and_no_flakiness():
    result = grade([{F: S.PASSED}], [F], [])
    assert result.runs == 1
    assert result.pass_counts == {}
    assert result.dropped_flaky == ()


def test_grading_without_runs_is_an_error():
    with pytest.raises(ValueError):
        grade([], [F], [P])


# -- several runs: policies -------------------------------------------------------------------------

def test_strict_needs_success_in_every_run():
    runs = [{F: S.PASSED}, {F: S.PASSED}, {F: S.FAILED}]
    result = grade(runs, [F], [], Policy.STRICT)
    assert not result.resolved
    assert result.tests_status[FAIL_TO_PASS]["failure"] == [F]


def test_strict_resolves_when_every_run_succeeds():
    runs = [{F: S.PASSED, P: S.PASSED}, {F: S.XFAIL, P: S.SKIPPED}, {F: S.PASSED, P: S.PASSED}]
    assert grade(runs, [F], [P], Policy.STRICT).resolved


def test_majority_accepts_a_test_that_succeeds_in_more_than_half_the_runs():
    runs = [{F: S.PASSED}, {F: S.FAILED}, {F: S.PASSED}]
    result = grade(runs, [F], [], Policy.MAJORITY)
    assert result.resolved
    assert result.tests_status[FAIL_TO_PASS]["success"] == [F]


def test_majority_rejects_a_test_that_succeeds_in_exactly_half_the_runs():
    runs = [{P: S.PASSED}, {P: S.FAILED}, {P: S.PASSED}, {P: S.ERROR}]
    result = grade(runs, [], [P], Policy.MAJORITY)
    assert not result.resolved
    assert result.tests_status[PASS_TO_PASS]["failure"] == [P]


def test_majority_rejects_a_test_that_succeeds_in_a_minority_of_runs():
    runs = [{F: S.FAILED}, {F: S.PASSED}, {}]
    assert not grade(runs, [F], [], Policy.MAJORITY).resolved


def test_majority_is_the_default_policy():
    runs = [{F: S.PASSED}, {F: S.FAILED}, {F: S.PASSED}]
    assert grade(runs, [F], []).resolved
    assert not grade(runs, [F], [], Policy.STRICT).resolved


def test_pass_counts_name_the_expected_tests_whose_outcome_varied():
    runs = [
        {F: S.PASSED, P: S.PASSED, Q: S.PASSED},
        {F: S.FAILED, P: S.PASSED, Q: S.FAILED},
        {F: S.PASSED, P: S.PASSED, Q: S.FAILED},
    ]
    result = grade(runs, [F], [P, Q])
    assert result.pass_counts == {F: (2, 3), Q: (1, 3)}
    assert result.runs == 3


def test_a_status_change_that_keeps_the_outcome_is_not_variation():
    runs = [{P: S.PASSED}, {P: S.SKIPPED}, {P: S.XFAIL}]
    result = grade(runs, [], [P])
    assert result.pass_counts == {}
    assert result.resolved


def test_unexpected_tests_that_vary_are_not_counted():
    runs = [{F: S.PASSED, "tests/test_x.py::test_noise": S.PASSED},
            {F: S.PASSED, "tests/test_x.py::test_noise": S.FAILED}]
    assert grade(runs, [F], []).pass_counts == {}


def test_ignore_flaky_drops_audited_flaky_tests_from_both_lists():
    run = {F: S.PASSED, FLAKY: S.FAILED, P: S.PASSED}
    result = grade([run], [F], [P, FLAKY], Policy.IGNORE_FLAKY, audited_flaky=[FLAKY])
    assert result.resolved
    assert result.dropped_flaky == (FLAKY,)
    for key in (FAIL_TO_PASS, PASS_TO_PASS):
        assert FLAKY not in result.tests_status[key]["success"] + result.tests_status[key]["failure"]
    assert result.tests_status[PASS_TO_PASS] == {"success": [P], "failure": []}


def test_ignore_flaky_dropping_every_fail_to_pass_test_leaves_no_verdict():
    # Only PASS_TO_PASS would be left, which an empty patch passes: no solve may come of that.
    run = {F: S.FAILED, P: S.PASSED}
    result = grade([run], [F], [P], Policy.IGNORE_FLAKY, audited_flaky=[F])
    assert result.undecidable and not result.resolved
    assert result.dropped_flaky == (F,)
    assert result.tests_status[FAIL_TO_PASS] == {"success": [], "failure": []}


def test_ignore_flaky_reports_only_expected_tests_as_dropped():
    run = {F: S.PASSED, P: S.PASSED}
    result = grade([run], [F], [P], Policy.IGNORE_FLAKY,
                   audited_flaky=[P, "tests/test_elsewhere.py::test_unrelated"])
    assert result.dropped_flaky == (P,)


def test_ignore_flaky_still_fails_on_a_non_flaky_failure():
    run = {F: S.PASSED, P: S.FAILED, FLAKY: S.FAILED}
    result = grade([run], [F], [P, FLAKY], Policy.IGNORE_FLAKY, audited_flaky=[FLAKY])
    assert not result.resolved
    assert result.tests_status[PASS_TO_PASS]["failure"] == [P]


@pytest.mark.parametrize("policy", [Policy.STRICT, Policy.MAJORITY])
def test_other_policies_keep_audited_flaky_tests(policy):
    run = {F: S.PASSED, FLAKY: S.FAILED}
    result = grade([run], [F], [FLAKY], policy, audited_flaky=[FLAKY])
    assert not result.resolved
    assert result.dropped_flaky == ()
    assert result.tests_status[PASS_TO_PASS]["failure"] == [FLAKY]


# -- runs_needed ------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", [Policy.STRICT, Policy.MAJORITY])
def test_a_deterministic_pass_needs_one_run(policy):
    assert runs_needed([{F: S.PASSED, P: S.PASSED}], [F], [P], policy, known_flaky=[]) == 1


@pytest.mark.parametrize("policy", [Policy.STRICT, Policy.MAJORITY])
def test_a_deterministic_failure_needs_one_run(policy):
    assert runs_needed([{F: S.FAILED, P: S.PASSED}], [F], [P], policy, known_flaky=[]) == 1


@pytest.mark.parametrize("flaky_status", [S.PASSED, S.FAILED])
@pytest.mark.parametrize("policy", [Policy.STRICT, Policy.MAJORITY])
def test_a_verdict_hinging_on_a_known_flaky_expected_test_needs_reruns(policy, flaky_status):
    run = {F: S.PASSED, P: S.PASSED, FLAKY: flaky_status}
    assert runs_needed([run], [F], [P, FLAKY], policy, known_flaky=[FLAKY]) == PAPER_RUNS
    assert runs_needed([run], [F], [P, FLAKY], policy, known_flaky=[FLAKY], reruns=5) == 5


def test_a_known_flaky_fail_to_pass_test_needs_reruns():
    run = {FLAKY: S.FAILED, P: S.PASSED}
    assert runs_needed([run], [FLAKY], [P], Policy.MAJORITY, known_flaky=[FLAKY], reruns=7) == 7


@pytest.mark.parametrize("policy", [Policy.STRICT, Policy.MAJORITY])
def test_a_deterministic_failure_of_a_non_flaky_test_needs_one_run_even_with_flaky_tests(policy):
    run = {F: S.FAILED, P: S.PASSED, FLAKY: S.PASSED}
    assert runs_needed([run], [F], [P, FLAKY], policy, known_flaky=[FLAKY]) == 1


def test_a_missing_non_flaky_test_is_a_deterministic_failure():
    run = {F: S.PASSED, FLAKY: S.PASSED}
    assert runs_needed([run], [F], [P, FLAKY], Policy.MAJORITY, known_flaky=[FLAKY]) == 1


def test_a_test_seen_varying_across_the_given_runs_counts_as_flaky():
    runs = [{F: S.PASSED, P: S.PASSED}, {F: S.FAILED, P: S.PASSED}]
    assert runs_needed(runs, [F], [P], Policy.MAJORITY, known_flaky=[], reruns=9) == 9


def test_a_test_seen_varying_does_not_excuse_a_steady_failure_elsewhere():
    runs = [{F: S.PASSED, P: S.FAILED}, {F: S.FAILED, P: S.FAILED}]
    assert runs_needed(runs, [F], [P], Policy.MAJORITY, known_flaky=[], reruns=9) == 1


def test_ignore_flaky_needs_one_run():
    run = {F: S.PASSED, P: S.PASSED, FLAKY: S.FAILED}
    assert runs_needed([run], [F], [P, FLAKY], Policy.IGNORE_FLAKY, known_flaky=[FLAKY]) == 1
    varying = [{F: S.PASSED}, {F: S.FAILED}]
    assert runs_needed(varying, [F], [], Policy.IGNORE_FLAKY, known_flaky=[]) == 1


def test_flaky_tests_that_are_not_expected_do_not_matter():
    run = {F: S.PASSED, P: S.PASSED, FLAKY: S.FAILED}
    assert runs_needed([run], [F], [P], Policy.MAJORITY, known_flaky=[FLAKY]) == 1
    runs = [{F: S.PASSED, FLAKY: S.PASSED}, {F: S.PASSED, FLAKY: S.FAILED}]
    assert runs_needed(runs, [F], [], Policy.MAJORITY, known_flaky=[]) == 1


def test_a_run_that_exits_non_zero_without_a_failure_has_no_results():
    from harness.grading import accepted
    passed = {"t::a": S.PASSED}
    assert accepted(passed, 1) == {} and accepted(passed, 0) == passed and accepted(passed, None) == passed
    failed = {"t::a": S.PASSED, "t::b": S.FAILED}
    assert accepted(failed, 1) == failed
    # So a patch whose conftest prints PASSED lines while the run fails resolves nothing.
    assert not grade([accepted(passed, 2)], ["t::a"], []).resolved
    assert grade([accepted(passed, 0)], ["t::a"], []).resolved


def test_an_id_cut_inside_its_parameter_matches_the_ids_it_begins_when_they_agree():
    statuses = {"t.py::test_g[log(photon cm-2)]": S.PASSED, "t.py::test_g[log(photon s)]": S.XFAIL,
                "t.py::test_h[a(1]": S.PASSED, "t.py::test_h[a(2]": S.FAILED}
    assert grade([statuses], ["t.py::test_g[log(photon"], []).resolved
    # Candidates that disagree on passing decide nothing: the test is missing, so failed.
    assert not grade([statuses], ["t.py::test_h[a("], []).resolved
    # A complete id never prefix-matches.
    assert not grade([statuses], ["t.py::test_g[log]"], []).resolved
