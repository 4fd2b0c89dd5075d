"""`monkeys evaluate` and `monkeys audit-flaky` as a user runs them, on the bundled suite's images."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


@pytest.fixture
def env(tmp_path, built_suite):
    """A fresh evaluation cache and runs folder, so the tests below really run tests."""
    return {**os.environ, "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs")}


def monkeys(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monkeys", *args], capture_output=True, text=True, timeout=900, env=env)


def test_evaluate_preds_reports_bad_rows_by_line_and_judges_the_rest(env, bundled_tasks, tmp_path):
    task = next(t for t in bundled_tasks if not t.flaky)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join([
        json.dumps({"instance_id": task.instance_id, "model_name_or_path": "m", "model_patch": task.patch}),
        '{"instance_id": "broken", "model_patch": ',
        json.dumps({"instance_id": task.instance_id, "model_name_or_path": "m", "model_patch": ""}),
        json.dumps({"instance_id": "nobody__nothing-1", "model_name_or_path": "m", "model_patch": "x"}),
    ]) + "\n")
    done = monkeys(env, "evaluate", "--preds", str(preds), "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["resolved_ids"] == [task.instance_id] and report["submitted_ids"] == [task.instance_id]
    assert report["monkeys"]["predictions"] == 2
    assert f"{preds}:2: not valid JSON" in done.stderr
    assert f"{preds}:4: unknown instance id 'nobody__nothing-1'" in done.stderr
    run_dir = Path(env["MONKEYS_RUNS"]) / "preds"
    assert json.loads((run_dir / "report.json").read_text()) == report
    from harness.store import RunStore

    store = RunStore("preds", root=Path(env["MONKEYS_RUNS"]))
    records = store.evaluations()
    store.close()
    assert [r.index for r in records] == [0, 1]
    for record in records:
        instance = json.loads((run_dir / record.path / "report.json").read_text())
        assert instance[task.instance_id]["resolved"] is (record.index == 0)


def test_audit_flaky_finds_exactly_the_flaky_tasks_without_reading_their_annotations(env, bundled_tasks, tmp_path):
    rows = [json.loads(line) for line in Path(bundled_tasks[0].origin.rsplit(":", 1)[0]).read_text().splitlines()]
    built_flaky = {r["instance_id"] for r in rows if "flaky" in r}
    stripped = tmp_path / "suite-without-annotations.jsonl"
    stripped.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "flaky"}) + "\n" for r in rows))
    # The flaky tasks and as many steady ones (every run gets a fresh container: 20 runs x 2 patches each).
    steady = sorted(r["instance_id"] for r in rows if "flaky" not in r)[::5][:len(built_flaky)]
    chosen = sorted(built_flaky) + steady
    done = monkeys(env, "audit-flaky", "--runs", "20", "--tasks", str(stripped), "--instances", *chosen,
                   "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["flaky_instances"]) == built_flaky and len(built_flaky) == 3
    assert report["tasks"] == len(chosen) == 6
    assert report["broken_gold_instances"] == [] and report["error_instances"] == []
    assert report["flaky_share"] == round(3 / 6, 4)
    for instance in report["instances"]:
        for test, counts in instance["flaky_tests"].items():
            assert all(0 < passed < runs == 20 for passed, runs in counts.values()), (test, counts)


def test_evaluate_judges_a_sampling_runs_finished_attempts_into_its_store(env, bundled_tasks):
    from harness.store import StoredAttempt, AttemptStatus, RunStore

    task = next(t for t in bundled_tasks if not t.flaky)
    store = RunStore("sampled", root=Path(env["MONKEYS_RUNS"]))
    store.save_attempt(StoredAttempt(task.instance_id, 0, "m", task.patch))
    store.save_attempt(StoredAttempt(task.instance_id, 1, "m", ""))
    store.save_attempt(StoredAttempt(task.instance_id, 2, "m", None, AttemptStatus.INFRA_ERROR.value))
    store.close()
    done = monkeys(env, "evaluate", "--run", "sampled", "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["monkeys"]["predictions"] == 2  # the infrastructure failure is not judged
    store = RunStore("sampled", root=Path(env["MONKEYS_RUNS"]))
    verdicts = {(r.index, r.resolved_guarded) for r in store.evaluations()}
    store.close()
    assert verdicts == {(0, True), (1, False)}
