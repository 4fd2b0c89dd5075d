"""Run summaries from constructed records: who counts as an attempt, coverage, cost, comparisons, HTML."""

from __future__ import annotations

import pytest

from harness.scores.report import RunData, compare, load, notes, summarize, task_attempts
from harness.scores.report_html import render
from harness.patches import patch_hash
from harness.store import StoredAttempt, EvalRecord, RunStore

TOKEN_PRICE = {"kind": "tokens", "input": 1.0, "output": 2.0}
HOURLY_PRICE = {"kind": "hourly", "dollars_per_hour": 0.09}


def spent(dollars: float, *, price=TOKEN_PRICE, tokens=(90, 10), **more) -> dict:
    """An attempt's details as the sampler records them."""
    return {"dollars": dollars, "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]}, "price": price, **more}


def judged_on(attempts, evaluations):
    """The evaluations, each carrying the hash of the patch at its (instance, index), as evaluate records it."""
    patches = {(a.instance_id, a.index): a.patch for a in attempts}
    for e in evaluations:
        if (e.instance_id, e.index) in patches:
            e.patch_hash = patch_hash(patches[e.instance_id, e.index])
    return evaluations


def run(name: str, outcomes: dict[str, list[bool]], dollars: float, *, extra=(), **fields) -> RunData:
    attempts, evaluations = [], []
    for iid, solved in outcomes.items():
        for i, ok in enumerate(solved):
            attempts.append(StoredAttempt(iid, i, name, f"patch {iid} {i}", "done", spent(dollars)))
            evaluations.append(EvalRecord(iid, i, name, f"h{iid}{i}", "graded", resolved=ok, resolved_guarded=ok,
                                          existing_tests_ok=True))
    for record in extra:
        (attempts if isinstance(record, StoredAttempt) else evaluations).append(record)
    return RunData(name, {"model": {"model": name}, "scaffold": "edit"}, attempts, judged_on(attempts, evaluations),
                   {iid: "one-line" for iid in outcomes}, **fields)


def test_only_judged_finished_attempts_count_and_each_task_keeps_its_own_n():
    data = run("m", {"a": [False, True, False, False], "b": [True, True]}, 0.01, extra=[
        StoredAttempt("a", 4, "m", None, "infra_error", spent(0.01)),  # never scored
        StoredAttempt("b", 2, "m", "x", "done", spent(0.01)), EvalRecord("b", 2, "m", "h", "error"),  # judged nothing
        StoredAttempt("b", 3, "m", "y", "done", spent(0.01)),  # not evaluated yet
    ])
    tasks = {t.instance_id: t for t in task_attempts(data)}
    assert (tasks["a"].n, tasks["a"].c, tasks["b"].n, tasks["b"].c) == (4, 1, 2, 2)
    s = summarize(data, bootstrap=50)
    assert s["max_common_k"] == 2 and s["max_k"] == 4
    assert s["infra_error_attempts"] == 1 and s["unjudged_attempts"] == 2
    by_k = {p["k"]: p for p in s["coverage"]}
    assert by_k[1]["value"] == pytest.approx((0.25 + 1.0) / 2) and by_k[1]["tasks"] == 2
    assert by_k[4]["value"] == pytest.approx(1.0) and by_k[4]["tasks"] == 1  # only a reaches k = 4
    # Every try's dollars: the 6 judged, the 2 not judged and the infrastructure error, over 8 finished.
    assert s["cost"]["dollars"] == pytest.approx(9 * 0.01)
    assert s["cost"]["per_attempt"] == pytest.approx(9 * 0.01 / 8)
    assert s["cost"]["per_solved_issue"] == pytest.approx(9 * 0.01 / 2)
    assert s["solved_by_difficulty"] == {"one-line": {"tasks": 2, "solved": 2}}


def test_comparison_states_k_cheap_attempts_against_one_dear_attempt_and_the_html_shows_both():
    cheap = summarize(run("cheap", {"a": [True, False, False, False, False], "b": [False] * 5}, 0.002), bootstrap=50)
    dear = summarize(run("dear", {"a": [True, True], "b": [False, False]}, 0.01), bootstrap=50)
    lines = compare([cheap, dear])
    assert lines == ["5 attempts of cheap cost $0.0100 per issue and solve 50.0%, vs 1 attempt of dear at $0.0100 and 50.0%"]
    assert dear["cost"]["per_solved_issue"] == pytest.approx(0.04 / 1)
    assert cheap["cost"]["per_solved_issue"] == pytest.approx(0.02 / 1)
    page = render([cheap, dear], lines)
    assert page.count("data:image/png;base64,") == 3 and "cheap" in page and "dear" in page and lines[0] in page


def test_a_run_with_nothing_judged_summarizes_without_failing():
    s = summarize(RunData("empty", {}, [], []))
    assert s["tasks"] == 0 and s["coverage"] == [] and s["coverage_all_tasks"] == []
    assert s["cost"]["dollars"] == 0 and s["cost"]["per_attempt"] is None
    assert s["cost"]["unknown"]["per_attempt"] == "no attempt finished"
    assert "empty" in render([s], [])


def test_a_task_without_judged_attempts_counts_in_coverage_all_tasks_not_in_coverage_and_is_named():
    no_image = "x: image monkeys/task.c:1 is not here (fetch it with `monkeys images pull`); this task is left out"
    data = run("m", {"a": [True, False], "b": [False, False]}, 0.01, extra=[
        StoredAttempt("c", 0, "m", "p", "done", spent(0.01)), EvalRecord("c", 0, "m", "h", "error", error=no_image),
        StoredAttempt("e", 0, "m", None, "infra_error", spent(0.0, error="engine gone")),
        StoredAttempt("f", 0, "m", "p", "done", spent(0.01)),
        StoredAttempt("g", 0, "m", "p", "done", spent(0.01)),
        EvalRecord("g", 0, "m", "h", "undecidable", error="no F2P"),
    ], requested=list("abcdefg"), no_image={"d": "its image was not here when sampling (m)"})
    s = summarize(data, bootstrap=50)
    assert s["requested_tasks"] == 7 and s["tasks"] == 2
    assert {p["k"]: (p["value"], p["tasks"]) for p in s["coverage"]} == {1: (0.25, 2), 2: (0.5, 2)}
    # The paper's denominator: all seven tasks, the five without a verdict unsolved.
    assert {p["k"]: (p["value"], p["tasks"]) for p in s["coverage_all_tasks"]} == {
        1: (pytest.approx(0.5 / 7), 7), 2: (pytest.approx(1 / 7), 7)}
    reasons = {t["instance_id"]: t["reason"] for t in s["tasks_without_verdicts"]}
    assert reasons == {"c": "no_image", "d": "no_image", "e": "infra_errors_only", "f": "not_evaluated",
                       "g": "undecidable"}
    assert "is not here" in next(t["detail"] for t in s["tasks_without_verdicts"] if t["instance_id"] == "c")
    assert s["undecidable"] == [{"instance_id": "g", "index": 0, "detail": "no F2P"}]
    assert "coverage_all_tasks" in s["definitions"] and "unsolved" in s["definitions"]["coverage_all_tasks"]
    page = render([s], [])
    assert "Tasks without verdicts" in page and "infra_errors_only" in page and "all tasks: coverage@max" in page
    text = "\n".join(notes(s))
    assert "no verdict for d: no_image" in text and "no verdict for f: not_evaluated" in text


def test_gold_failing_tasks_from_the_audits_appear_in_json_text_and_html():
    audits = {"a": {"runs": 5, "flaky": {}, "gold_failing": [], "error": ""},
              "z": {"runs": 5, "flaky": {"t::x": [3, 5]}, "gold_failing": ["t::broken"], "error": ""}}
    data = run("m", {"a": [True], "z": [False]}, 0.01, audits=audits, requested=["a", "z", "y"],
               extra=[StoredAttempt("y", 0, "m", "p", "done", spent(0.01))])
    data.audits["y"] = {"runs": 5, "flaky": {}, "gold_failing": ["t::gone", "t::also"], "error": ""}
    s = summarize(data, bootstrap=20)
    assert s["gold_failing"] == [{"instance_id": "y", "tests": ["t::gone", "t::also"], "runs": 5},
                                 {"instance_id": "z", "tests": ["t::broken"], "runs": 5}]
    assert {"instance_id": "y", "reason": "gold_failing"}.items() <= s["tasks_without_verdicts"][0].items()
    assert "z" in s["flaky"]  # flaked in the gold audit
    assert "gold patch fails here: y (2 tests: t::gone, t::also)" in "\n".join(notes(s))
    page = render([s], [])
    assert "Gold patch failing in this environment" in page and "t::broken" in page


def test_flagged_attempts_are_listed_and_unguarded_coverage_is_at_least_guarded():
    data = run("m", {"a": [False, False], "b": [True, False]}, 0.01, extra=[
        StoredAttempt("c", 0, "m", "p", "done", spent(0.01)),
        EvalRecord("c", 0, "m", "hc", "graded", resolved=True, resolved_guarded=False, guard_flags=["edits_tests"]),
        StoredAttempt("c", 1, "m", "q", "done", spent(0.01)),
        EvalRecord("c", 1, "m", "hd", "timed_out"),
        StoredAttempt("a", 2, "m", "r", "done", spent(0.01)), EvalRecord("a", 2, "m", "he", "resource_limit"),
    ])
    data.evaluations[0] = EvalRecord("a", 0, "m", patch_hash("patch a 0"), "graded", resolved=True,
                                     resolved_guarded=False, guard_flags=["forged_output", "test_hook"])
    s = summarize(data, bootstrap=20)
    assert s["flagged"] == [
        {"instance_id": "a", "index": 0, "flags": ["forged_output", "test_hook"], "resolved": True, "status": "graded"},
        {"instance_id": "c", "index": 0, "flags": ["edits_tests"], "resolved": True, "status": "graded"}]
    guarded = {p["k"]: p["value"] for p in s["coverage"]}
    unguarded = {p["k"]: p["value"] for p in s["coverage_unguarded"]}
    assert guarded.keys() == unguarded.keys()
    assert all(unguarded[k] >= guarded[k] for k in guarded) and unguarded[1] > guarded[1]
    assert unguarded[2] == pytest.approx((2 / 3 + 1 + 1) / 3) and guarded[2] == pytest.approx(1 / 3)
    # Timed out and resource limit are judged (unresolved), in n; each counted.
    assert s["timed_out"] == 1 and s["resource_limit"] == 1 and s["judged_attempts"] == 7
    page = render([s], [])
    assert "forged_output, test_hook" in page and "unguarded: coverage@max" in page
    assert "2 flagged attempts" in "\n".join(notes(s))


def test_selection_reads_existing_tests_ok_never_pass_to_pass_ok_and_says_so():
    # Attempt 0 is wrong but passes PASS_TO_PASS with the hidden tests; only attempt 1 keeps the
    # existing tests green: a selection reading pass_to_pass_ok would pick the wrong one.
    attempts = [StoredAttempt("a", i, "m", f"p{i}", "done", spent(0.01)) for i in range(2)]
    evaluations = [EvalRecord("a", 0, "m", "h0", "graded", pass_to_pass_ok=True, existing_tests_ok=False),
                   EvalRecord("a", 1, "m", "h1", "graded", resolved=True, resolved_guarded=True,
                              pass_to_pass_ok=False, existing_tests_ok=True)]
    s = summarize(RunData("m", {}, attempts, judged_on(attempts, evaluations)), bootstrap=0)
    first = {p["k"]: p["value"] for p in s["selection"]["first_p2p"]}
    assert first[2] == pytest.approx(1.0)
    assert "existing_tests_ok" in s["selection_signals"]["first_p2p"]
    assert "measured for 2 of 2 judged attempts" in s["selection_signals"]["majority_p2p"]
    assert "existing_tests_ok" in render([s], [])
    # Not measured (None) counts as breaking them.
    evaluations[1].existing_tests_ok = None
    (task,) = task_attempts(RunData("m", {}, attempts, evaluations))
    assert [a.existing_tests_ok for a in task.attempts] == [False, False]


def test_cost_counts_every_try_infra_failed_redone_abandoned_and_unjudged():
    history = [StoredAttempt("a", 1, "m", None, "infra_error", spent(0.5, error="container died")),
               StoredAttempt("a", 1, "m", None, "infra_error", spent(0.25)),
               StoredAttempt("b", 1, "m", None, "abandoned", spent(0.125))]
    data = run("m", {"a": [True, False], "b": [False]}, 1.0, history=history, extra=[
        StoredAttempt("b", 1, "m", None, "infra_error", spent(0.0625)),
        StoredAttempt("b", 2, "m", "x", "done", spent(2.0)),  # finished, not judged yet
    ])
    cost = summarize(data, bootstrap=0)["cost"]
    assert cost["dollars"] == pytest.approx(3 + 2 + 0.5 + 0.25 + 0.125 + 0.0625)
    assert cost["dollars_by_kind"] == {"judged": 3.0, "not_judged": 2.0, "infra_failed": 0.8125, "abandoned": 0.125}
    assert cost["tries"] == 8 and cost["tries_by_kind"] == {"judged": 3, "not_judged": 1, "infra_failed": 3,
                                                            "abandoned": 1}
    assert cost["per_solved_issue"] == pytest.approx(cost["dollars"] / 1)
    assert cost["per_attempt"] == pytest.approx(cost["dollars"] / 4)
    assert cost["tokens"] == 8 * 100 and cost["unknown"]["parameters"].startswith("the run recorded no parameter")
    assert cost["flops"] is None and cost["unknown"]["flops"] == cost["unknown"]["parameters"]


def test_a_response_without_usage_makes_token_priced_costs_unknown_with_the_reason():
    data = run("m", {"a": [True, False]}, 0.01, extra=[
        StoredAttempt("a", 2, "m", "x", "done", spent(0.0, calls_without_usage=1, tokens=(0, 0)))])
    data.evaluations.append(EvalRecord("a", 2, "m", "hx", "graded"))
    s = summarize(data, bootstrap=0, seed=0)
    cost = s["cost"]
    assert cost["attempts_without_usage"] == 1 and cost["without_usage"] == ["a#2"]
    for name in ("dollars", "per_attempt", "per_solved_issue", "tokens", "tokens_per_attempt", "flops"):
        assert cost[name] is None, name
        assert cost["unknown"][name], name
    assert "a#2" in cost["unknown"]["dollars"] and "without a usage block" in cost["unknown"]["tokens"]
    assert cost["dollars_by_kind"]["judged"] is None
    # Nothing silently priced at $0 anywhere it is shown.
    page = render([s], [])
    assert "$0.00000" not in page and "unknown" in page
    text = "\n".join(notes(s))
    assert "dollars unknown" in text and "1 tries had a model response without token usage" in text
    assert compare([s]) == []


def test_an_hourly_priced_model_keeps_its_dollars_without_usage_but_not_its_flops():
    params = {"parameters": 268_098_176, "source": "GGUF header of model.gguf", "reason": ""}
    data = run("m", {"a": [True]}, 0.001, parameters=params, extra=[
        StoredAttempt("a", 1, "m", "x", "done", spent(0.002, price=HOURLY_PRICE, calls_without_usage=2))])
    cost = summarize(data, bootstrap=0)["cost"]
    assert cost["dollars"] == pytest.approx(0.003) and cost["tokens"] is None and cost["flops"] is None
    assert "tokens" in cost["unknown"] and "dollars" not in cost["unknown"]
    data.attempts.pop()
    cost = summarize(data, bootstrap=0)["cost"]
    assert cost["parameters"] == 268_098_176 and cost["parameters_source"] == "GGUF header of model.gguf"
    assert cost["flops"] == pytest.approx(2 * 268_098_176 * 100) and cost["flops_per_attempt"] == cost["flops"]


def test_load_reads_the_run_store_meta_and_the_history_of_replaced_tries(tmp_path):
    store = RunStore("r", root=tmp_path)
    store.save_attempt(StoredAttempt("a", 0, "m", None, "infra_error", spent(0.5)))
    store.save_attempt(StoredAttempt("a", 0, "m", "p", "done", spent(0.25)))  # the redo replaces it
    store.save_abandoned(StoredAttempt("a", 1, "m", None, "abandoned", spent(0.125)))
    store.save_evaluation(EvalRecord("a", 0, "m", patch_hash("p"), "graded", resolved=True, resolved_guarded=True))
    store.set_meta("task_hashes", {"a": "x", "b": "y"})
    store.set_meta("audits", {"b": {"runs": 5, "flaky": {}, "gold_failing": ["t"], "error": ""}})
    store.set_meta("model_parameters", {"parameters": 1000, "source": "test", "reason": ""})
    assert [(a.status, a.details["dollars"]) for a in store.attempts()] == [("done", 0.25)]
    assert [(a.status, a.details["dollars"]) for a in store.attempt_history()] == [("infra_error", 0.5),
                                                                                   ("abandoned", 0.125)]
    store.close()
    data = load("r", root=tmp_path)
    assert data.requested == ["a", "b"] and data.parameters["parameters"] == 1000
    s = summarize(data, bootstrap=0)
    assert s["cost"]["dollars"] == pytest.approx(0.875) and s["cost"]["flops"] == 2 * 1000 * 300
    assert s["tasks_without_verdicts"] == [{"instance_id": "b", "reason": "not_sampled",
                                            "detail": "no attempt was made for it yet"}]
    assert s["gold_failing"][0]["instance_id"] == "b"


def test_a_verdict_on_another_patch_at_the_same_index_judges_nothing():
    # Attempt 1 was made again after its first patch was judged: that verdict is not this patch's.
    data = run("m", {"a": [True, True]}, 0.01)
    data.evaluations[1].patch_hash = patch_hash("the patch an earlier try of attempt 1 made")
    (task,) = task_attempts(data)
    assert [a.index for a in task.attempts] == [0]


def test_the_hash_stored_with_an_attempt_judges_as_hashing_its_patch_does():
    """The sampler stores each patch's hash with its attempt, so a report need not hash it again. With
    the stored hash, without it, or with one from another version's normalisation, the same verdicts
    count; a verdict on another patch counts with none of them."""
    plain = run("m", {"a": [True, False, True], "b": [False, True, False]}, 0.01)
    plain.evaluations[4].patch_hash = patch_hash("the patch an earlier try of b's attempt 1 made")
    stored = run("m", {"a": [True, False, True], "b": [False, True, False]}, 0.01)
    stored.evaluations[4].patch_hash = plain.evaluations[4].patch_hash
    for n, attempt in enumerate(stored.attempts):
        # Stored as the sampler stores it; attempt 1 of a with another version's hash; attempt 2 of a without.
        if n == 1:
            attempt.details["patch_hash"] = "sha256:another-normalisation"
        elif n != 2:
            attempt.details["patch_hash"] = patch_hash(attempt.patch)
    assert task_attempts(stored) == task_attempts(plain)
    assert [[a.index for a in t.attempts] for t in task_attempts(stored)] == [[0, 1, 2], [0, 2]]
    assert summarize(stored, bootstrap=20) == summarize(plain, bootstrap=20)
