"""`evaluate` against the real engine and the bundled suite's images: verdicts, guards, the cache,
adaptive reruns and bad input."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from harness.containers import Limits
from harness.evalscript import ApplyMethod, parse_runs
from harness.evaluate import evaluate
from harness.grading import Policy, grade
from harness.predictions import Prediction, empty, gold
from harness.store import EvalStatus, RunStore
from harness.suite import materialize

pytestmark = pytest.mark.docker

OFFICIAL_INSTANCE_KEYS = {"patch_is_None", "patch_exists", "patch_successfully_applied", "resolved", "tests_status"}
TESTS_STATUS_KEYS = {"FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL"}


@pytest.fixture(scope="module")
def tasks(bundled_tasks):
    return {t.instance_id.split("__")[1]: t for t in bundled_tasks}


def make_patch(task, tmp_path: Path, edits: dict, *, gold_fix: bool = True) -> str:
    """A patch against the task's base_commit: the gold fix (optionally) plus edits, each a file's new
    content or a function from its old text to its new."""
    checkout = tmp_path / f"checkout-{len(list(tmp_path.iterdir()))}"
    subprocess.run(["git", "clone", "-q", str(materialize(task.repo)), str(checkout)], check=True)
    git = lambda *a, **kw: subprocess.run(["git", "-C", str(checkout), *a], check=True, capture_output=True, **kw)
    git("checkout", "-q", task.base_commit)
    if gold_fix:
        git("apply", "-", input=task.patch.encode())
    for path, content in edits.items():
        target = checkout / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content = content(target.read_text())
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    git("add", "-A")
    return git("diff", "--cached", "--binary", task.base_commit).stdout.decode()


def run_eval(evaluator, tasks, preds, tmp_path, name="run"):
    store = RunStore(name, root=tmp_path / "runs")
    try:
        return evaluate(evaluator, list(tasks), preds, store), store.dir
    finally:
        store.close()


def pred(task, patch, index=0, model="test-model"):
    return Prediction(task.instance_id, model, patch, index, "test")


def instance_report(run_dir: Path, record) -> dict:
    """The per-instance report.json of the evidence folder ``record`` points at."""
    return json.loads((run_dir / record.path / "report.json").read_text())[record.instance_id]


def test_gold_resolves_every_non_flaky_task_and_empty_resolves_none(make_evaluator, bundled_tasks, tmp_path):
    evaluator = make_evaluator("test-gold-empty")
    steady = [t for t in bundled_tasks if not t.flaky]
    result, run_dir = run_eval(evaluator, bundled_tasks, gold(bundled_tasks), tmp_path, "gold")
    assert set(result.report["resolved_ids"]) >= {t.instance_id for t in steady}
    assert result.report["error_ids"] == [] and result.report["monkeys"]["flagged"] == []

    result, run_dir = run_eval(evaluator, bundled_tasks, empty(bundled_tasks), tmp_path, "empty")
    report = json.loads((run_dir / "report.json").read_text())
    assert report["resolved_ids"] == [] and report["resolved_instances"] == 0
    assert sorted(report["unresolved_ids"]) == sorted(t.instance_id for t in bundled_tasks)
    assert report["completed_instances"] == len(bundled_tasks) == len(report["empty_patch_ids"])
    records = {r.instance_id: r for r in result.records}
    for task in bundled_tasks:
        instance = instance_report(run_dir, records[task.instance_id])
        assert OFFICIAL_INSTANCE_KEYS <= set(instance) and set(instance["tests_status"]) == TESTS_STATUS_KEYS
        assert sorted(instance["tests_status"]["FAIL_TO_PASS"]["failure"]) == sorted(task.fail_to_pass)
        assert instance["tests_status"]["FAIL_TO_PASS"]["success"] == []
        # The evidence re-grades offline: the log's nonce-marked runs give the same lists.
        log = (run_dir / records[task.instance_id].path / "test_output.txt").read_text()
        runs = parse_runs(task, log, instance["nonce"])
        assert len(runs) == instance["test_runs"] == 1
        assert grade([r.statuses for r in runs], task.fail_to_pass, task.pass_to_pass).tests_status == instance["tests_status"]


def test_gamed_patches_are_flagged_while_the_official_verdict_stands(make_evaluator, tasks, tmp_path):
    task = tasks["textkit-3"]
    edits_tests = make_patch(task, tmp_path, {"tests/test_text.py": "def test_truncate_keeps_width():\n    pass\n"})
    skipping_conftest = make_patch(task, tmp_path, {"tests/conftest.py": (
        "import pytest\n\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    for item in items:\n"
        "        item.add_marker(pytest.mark.skip(reason='not today'))\n")}, gold_fix=False)
    passing_conftest = make_patch(task, tmp_path, {"conftest.py": (
        "import pytest\n\n"
        "@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n"
        "    outcome.get_result().outcome = 'passed'\n")}, gold_fix=False)
    forged = "\n".join(f'PASSED {t}' for t in task.fail_to_pass) + "\n>>>>> End Test Output 0 1 0\n"
    forging = make_patch(task, tmp_path, {"src/textkit/_report.py": (
        "import atexit, os, sys\n\n"
        "def _claim():\n"
        f"    sys.stdout.write({forged!r})\n"
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n\n"
        "atexit.register(_claim)\n"), "src/textkit/__init__.py": lambda old: old + "from textkit import _report\n"},
        gold_fix=False)
    preds = [pred(task, p, i) for i, p in enumerate([edits_tests, skipping_conftest, passing_conftest, forging])]
    result, _ = run_eval(make_evaluator("test-guards"), [task], preds, tmp_path)
    by_index = {r.index: r for r in result.records}

    # The test file was restored before the tests ran: the real fix resolves, but the edit is flagged.
    assert by_index[0].resolved and "edits_tests" in by_index[0].guard_flags
    assert not by_index[1].resolved and {"test_hook", "skips_tests"} <= set(by_index[1].guard_flags)
    # These two fool the official grading: their tests "pass" without a fix.
    assert by_index[2].resolved and "test_hook" in by_index[2].guard_flags
    assert by_index[3].resolved and "forged_output" in by_index[3].guard_flags
    assert not any(r.resolved_guarded for r in result.records)
    assert result.report["monkeys"]["resolved_guarded_ids"] == []


def test_re_evaluating_costs_no_test_runs_and_repeated_patches_cost_nothing_more(make_evaluator, tasks, tmp_path):
    steady = [tasks[k] for k in ("textkit-3", "textkit-7", "ledger-5", "taskq-4")]
    # Header noise only: another index line, a timestamp, blank lines at the end.
    noisy_gold = [t.patch.replace("index ", "index 0", 1).replace("\n+++ b/", "\t2024-01-01 00:00:00\n+++ b/", 1) + "\n\n"
                  for t in steady]
    preds = [pred(t, t.patch, 0) for t in steady] + [pred(t, "", 1) for t in steady]
    repeats = [pred(t, noisy, 2) for t, noisy in zip(steady, noisy_gold)] + [pred(t, "", 3) for t in steady]
    evaluator = make_evaluator("test-cache")
    first, _ = run_eval(evaluator, steady, preds + repeats, tmp_path, "first")
    monkeys = first.report["monkeys"]
    assert monkeys["unique_patches"] == 8 and len(first.records) == 16
    # Gold runs come from the audit; each empty patch runs once; the noisy repeats run nothing.
    assert monkeys["test_runs_executed"] == 4
    assert monkeys["audit_runs_executed"] == 4 * evaluator.config.audit_runs
    assert all(r.test_runs == 1 for r in first.records)
    assert [r.resolved for r in first.records] == [True] * 4 + [False] * 4 + [True] * 4 + [False] * 4

    again, _ = run_eval(evaluator, steady, preds + repeats, tmp_path, "first")
    assert again.report["monkeys"]["test_runs_executed"] == again.report["monkeys"]["audit_runs_executed"] == 0
    assert [r.resolved for r in again.records] == [r.resolved for r in first.records]


def test_a_verdict_hinging_on_a_flaky_test_gets_the_policy_runs(make_evaluator, tasks, tmp_path):
    task = tasks["taskq-20"]  # its gold patch leaves one test flaky
    evaluator = make_evaluator("test-reruns")
    majority, _ = run_eval(evaluator, [task], [pred(task, task.patch)], tmp_path, "majority")
    record = majority.records[0]
    assert record.test_runs == 11 and list(record.flaky_tests) == ["tests/test_workers.py::test_random_pick_spreads_load"]
    passed, runs = record.flaky_tests["tests/test_workers.py::test_random_pick_spreads_load"]
    assert runs == 11 and 0 < passed < 11 and record.resolved == (passed > 5)

    majority_config = evaluator.config
    evaluator.config = dataclasses.replace(majority_config, policy=Policy.IGNORE_FLAKY)
    ignoring, run_dir = run_eval(evaluator, [task], [pred(task, task.patch)], tmp_path, "ignore")
    assert ignoring.records[0].resolved and ignoring.records[0].test_runs == 1
    assert ignoring.report["monkeys"]["test_runs_executed"] == 0
    report = instance_report(run_dir, ignoring.records[0])
    assert report["dropped_flaky"] == ["tests/test_workers.py::test_random_pick_spreads_load"]

    # A patch that fails a steady test is decided by that failure: one run.
    evaluator.config = majority_config
    unfixed, _ = run_eval(evaluator, [task], [pred(task, "")], tmp_path, "unfixed")
    assert unfixed.records[0].test_runs == 1 and not unfixed.records[0].resolved


def test_bad_input_gets_its_own_status_and_the_rest_goes_on(make_evaluator, tasks, tmp_path):
    task = tasks["textkit-7"]
    fuzzy = "\n".join(line for line in task.patch.splitlines() if not line.startswith("index "))
    context = next(line for line in fuzzy.splitlines() if line.startswith(" ") and line.strip())
    fuzzy = fuzzy.replace(context, context + "  # drifted", 1) + "\n"
    binary = make_patch(task, tmp_path, {"docs/logo.bin": bytes(range(256)) * 4})
    preds = [
        pred(task, None, 0),
        pred(task, "this is not a diff\n", 1),
        pred(task, fuzzy, 2),
        pred(task, binary, 3),
        Prediction("nobody__nothing-1", "m", task.patch, 0, "preds.jsonl:9"),
    ]
    result, run_dir = run_eval(make_evaluator("test-bad-input"), [task], preds, tmp_path)
    records = {r.index: r for r in result.records}
    assert len(records) == 4
    assert records[0].status == EvalStatus.GRADED.value and not records[0].resolved
    none_report = instance_report(run_dir, records[0])
    assert none_report["patch_is_None"] and not none_report["patch_exists"]
    assert records[1].status == EvalStatus.APPLY_FAILED.value and not records[1].resolved
    assert records[2].apply_method == ApplyMethod.PATCH_FUZZ.name and records[2].resolved
    assert records[3].apply_method == ApplyMethod.GIT_APPLY.name and records[3].resolved_guarded
    assert result.report["monkeys"]["unknown_instances"] == ["preds.jsonl:9: unknown instance id 'nobody__nothing-1'"]


def test_a_hang_is_a_failed_patch_counted_and_cached_when_the_gold_runs_are_quick(make_evaluator, tasks, tmp_path):
    task = tasks["ledger-5"]
    hang = make_patch(task, tmp_path, {"tests/conftest.py": "import time\ntime.sleep(600)\n"}, gold_fix=False)
    evaluator = make_evaluator("test-hang", timeout=20, audit_runs=1)
    result, run_dir = run_eval(evaluator, [task], [pred(task, hang)], tmp_path)
    record = result.records[0]
    assert record.status == EvalStatus.TIMED_OUT.value and not record.resolved and record.test_runs == 1
    assert result.report["completed_ids"] == [task.instance_id] and result.report["error_ids"] == []
    assert result.report["unresolved_ids"] == [task.instance_id]
    assert result.report["monkeys"]["timed_out"][0]["instance_id"] == task.instance_id
    assert result.audits[task.instance_id].slowest < 10  # what made the hang the patch's
    report = instance_report(run_dir, record)
    assert report["status"] == "timed_out" and report["resolved"] is False

    # Cached like any run: judging it again runs no test.
    again, _ = run_eval(evaluator, [task], [pred(task, hang)], tmp_path)
    assert again.records[0].status == EvalStatus.TIMED_OUT.value
    assert again.report["monkeys"]["test_runs_executed"] == again.report["monkeys"]["audit_runs_executed"] == 0


def test_a_revised_test_patch_or_parser_changes_the_result_without_clearing_the_cache(make_evaluator, tasks, tmp_path):
    task = tasks["textkit-3"]
    evaluator = make_evaluator("test-revised", audit_runs=1)
    first, _ = run_eval(evaluator, [task], [pred(task, task.patch)], tmp_path, "before")
    assert first.records[0].resolved

    # The row revised: its test patch also creates a test, now listed. Runs cached for the old test
    # patch would not have it (missing: unresolved); the new key runs the tests again.
    new_test = "tests/test_revised.py"
    added = (f"diff --git a/{new_test} b/{new_test}\nnew file mode 100644\n--- /dev/null\n+++ b/{new_test}\n"
             "@@ -0,0 +1,2 @@\n+def test_revised():\n+    assert True\n")
    revised = dataclasses.replace(task, test_patch=task.test_patch + added,
                                  fail_to_pass=(*task.fail_to_pass, f"{new_test}::test_revised"))
    after, _ = run_eval(evaluator, [revised], [pred(revised, task.patch)], tmp_path, "after")
    assert after.report["monkeys"]["audit_runs_executed"] == 1
    assert after.records[0].resolved

    # The same raw logs read by another parser: no test runs, another result.
    reparsed = dataclasses.replace(task, log_parser="parse_log_django")
    other, _ = run_eval(evaluator, [reparsed], [pred(reparsed, task.patch)], tmp_path, "reparsed")
    assert other.report["monkeys"]["test_runs_executed"] == other.report["monkeys"]["audit_runs_executed"] == 0
    assert not other.records[0].resolved


def test_infrastructure_failures_are_errors_not_verdicts_and_are_retried(make_evaluator, tasks, tmp_path):
    task = tasks["ledger-5"]
    hang = make_patch(task, tmp_path, {"tests/conftest.py": "import time\ntime.sleep(600)\n"}, gold_fix=False)
    # A limit the gold runs cannot finish inside (pytest alone takes longer to start): the hang says
    # nothing about the patch.
    evaluator = make_evaluator("test-infra", timeout=0.05, audit_runs=1)
    result, _ = run_eval(evaluator, [task], [pred(task, hang)], tmp_path)
    record = result.records[0]
    assert record.status == EvalStatus.ERROR.value and "timed out" in record.error and not record.resolved
    assert result.report["error_ids"] == [task.instance_id] and result.report["completed_ids"] == []
    assert evaluator.cache.runs(evaluator.key(task, hang)) == []  # nothing cached: the next call retries
    assert "timed out" in result.audits[task.instance_id].error

    missing = dataclasses.replace(task, env_recipe=dataclasses.replace(task.env_recipe, install="echo never built"))
    result, _ = run_eval(evaluator, [missing], [pred(missing, missing.patch)], tmp_path, "missing")
    assert result.records[0].status == EvalStatus.ERROR.value and "is not here" in result.records[0].error


def test_a_cached_run_longer_than_a_shorter_limit_asked_for_now_counts_as_timed_out(make_evaluator, tasks):
    task = tasks["ledger-5"]
    roomy = make_evaluator("test-roomy", audit_runs=1)
    audit, gold = roomy.audit(task)
    assert not audit.error and gold.new_runs == 1 and not gold.runs[0].timed_out
    # The same cache, a limit the cached gold run outlasted: it would have been stopped, so the audit
    # says the gold runs hang, without running anything new.
    tight = make_evaluator("test-tight", cache=roomy.cache, timeout=gold.run_seconds[0] / 2, audit_runs=1)
    audit, again = tight.audit(task)
    assert again.new_runs == 0 and "timed out" in audit.error
    # The roomy limit still reads the same cached run as it was.
    audit, same = make_evaluator("test-roomy-again", cache=roomy.cache, audit_runs=1).audit(task)
    assert not audit.error and same.new_runs == 0


def test_reruns_start_from_fresh_containers(make_evaluator, tasks, tmp_path):
    task = tasks["taskq-20"]  # its gold patch leaves one test flaky, so its verdict gets 11 runs
    marker = ("import os as _os\n"
              "_MARK = '/tmp/monkeys-earlier-run'\n"
              "if _os.path.exists(_MARK) and open(_MARK).read() != str(_os.getpid()):\n"
              "    raise RuntimeError('an earlier run left this behind')\n"
              "open(_MARK, 'w').write(str(_os.getpid()))\n")
    leaving = make_patch(task, tmp_path, {"src/taskq/__init__.py": lambda old: old + marker})
    result, _ = run_eval(make_evaluator("test-fresh"), [task], [pred(task, leaving)], tmp_path)
    record = result.records[0]
    # In one container every run after the first would fail on the marker, so every test would
    # vary; in fresh ones at most the known flaky test does (whether it varies within 11 runs is
    # chance, so the test does not ask that it did).
    assert record.test_runs == 11
    assert set(record.flaky_tests) <= {"tests/test_workers.py::test_random_pick_spreads_load"}
    assert record.status == "graded", (record.status, record.error)


def test_existing_tests_are_judged_without_the_hidden_test_patch(make_evaluator, tasks, tmp_path):
    task = tasks["textkit-3"]
    ignores_suffix = task.patch.replace('+    return text[: width - len(suffix)] + suffix',
                                        '+    return text[: width - len(suffix)] + "..."')
    assert ignores_suffix != task.patch
    evaluator = make_evaluator("test-existing", audit_runs=1, existing_tests=True)
    preds = [pred(task, task.patch, 0), pred(task, "", 1), pred(task, ignores_suffix, 2), pred(task, "not a diff\n", 3)]
    result, _ = run_eval(evaluator, [task], preds, tmp_path)
    kept = {r.index: r.existing_tests_ok for r in result.records}
    # The gold fix and no fix keep the existing tests; a fix that breaks the custom suffix does not;
    # a patch that does not apply keeps nothing.
    assert kept == {0: True, 1: True, 2: False, 3: False}
    # Baseline (no patch) and one run per applying non-empty patch, each without the test patch.
    again, _ = run_eval(evaluator, [task], preds, tmp_path)
    assert {r.index: r.existing_tests_ok for r in again.records} == kept
    assert again.report["monkeys"]["test_runs_executed"] == 0


def test_a_pid_limit_the_gold_runs_stay_within_is_the_patch_outcome(make_evaluator, tasks, tmp_path):
    task = tasks["textkit-3"]
    spawning = make_patch(task, tmp_path, {"src/textkit/__init__.py": lambda old: old + (
        "import subprocess as _sp\n"
        "_kids = []\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        _kids.append(_sp.Popen(['sleep', '30']))\n"
        "finally:\n"
        "    for _kid in _kids:\n"
        "        _kid.kill()\n")})
    evaluator = make_evaluator("test-pids", audit_runs=1, limits=Limits(pids=64))
    result, _ = run_eval(evaluator, [task], [pred(task, task.patch, 0), pred(task, spawning, 1)], tmp_path)
    gold, spawned = sorted(result.records, key=lambda r: r.index)
    assert gold.status == EvalStatus.GRADED.value and gold.resolved_guarded
    assert result.audits[task.instance_id].limits_hit == []
    assert spawned.status == EvalStatus.RESOURCE_LIMIT.value and not spawned.resolved and "pids" in spawned.error
    assert result.report["monkeys"]["resource_limit"][0]["index"] == 1
