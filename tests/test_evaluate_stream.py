"""`evaluate` streams, against the real engine and the bundled suite's images: each record is committed
as its job ends, duplicates share one job and one evidence folder, and a run cut short keeps what it
finished and resumes without running it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.evaluate import evaluate
from harness.predictions import Prediction
from harness.store import RunStore

pytestmark = pytest.mark.docker

# Steady tasks (no flaky tests), so every unique patch costs exactly one test run.
STEADY = ("textkit-3", "textkit-7", "ledger-5", "taskq-4")


@pytest.fixture(scope="module")
def steady(bundled_tasks):
    by_name = {t.instance_id.split("__")[1]: t for t in bundled_tasks}
    return [by_name[name] for name in STEADY]


def pred(task, patch, index, model="test-model"):
    return Prediction(task.instance_id, model, patch, index, "test")


def empty_patches(tasks) -> list[Prediction]:
    """Per task, the empty patch twice over (as "" and as None: one normalised patch): 2 predictions, 1 job."""
    return [pred(t, "", 0, "first") for t in tasks] + [pred(t, None, 1, "second") for t in tasks]


def assert_no_errors(result) -> None:
    """Each job ran to a verdict. An error (such as the engine losing a task's image to another test
    session sharing it: test_cluster removes one to see a node rebuild it) would show here by name,
    not as a count of test runs one short."""
    errors = [f"{r.instance_id} #{r.index}: {r.error}" for r in result.records if r.status == "error"]
    assert not errors, errors


class Interrupt(Exception):
    """Stands for a crash or a ^C partway through a run."""


def test_each_record_is_committed_before_on_done_hears_of_it(make_evaluator, steady, tmp_path):
    store = RunStore("live", root=tmp_path / "runs")
    reader = RunStore("live", root=tmp_path / "runs")  # another connection, as `monkeys report` would open
    seen = []
    # One worker, so the run's course is fixed: each task's audit, then its job.
    evaluator = make_evaluator("test-live", audit_runs=1, workers=1)
    tasks = sorted(steady[:2], key=lambda t: t.instance_id)  # the order tasks are taken up in
    later = evaluator.key(tasks[1], "")

    def on_done(record):
        if not seen:
            # The run is still going: the other task's job has not run yet.
            assert record.instance_id == tasks[0].instance_id and evaluator.cache.runs(later) == []
        stored = {(r.instance_id, r.index): r for r in reader.evaluations()}
        assert (record.instance_id, record.index) in stored, "on_done came before the commit"
        assert stored[(record.instance_id, record.index)].path == record.path
        assert (store.dir / record.path / "report.json").is_file(), "on_done came before the evidence"
        seen.append(len(stored))

    preds = empty_patches(tasks)
    try:
        result = evaluate(evaluator, tasks, preds, store, on_done=on_done)
    finally:
        store.close()
        reader.close()
    # One commit per record, each one visible to other readers by the time its on_done runs.
    assert seen == [1, 2, 3, 4]
    assert len(result.records) == 4 and len(evaluator.cache.runs(later)) == 1


def test_duplicates_share_one_job_and_one_evidence_folder(make_evaluator, steady, tmp_path):
    task = steady[0]
    noisy_gold = task.patch.replace("index ", "index 0", 1) + "\n\n"  # header noise: the same normalised patch
    preds = [pred(task, task.patch, 0, "a"), pred(task, "", 1, "b"), pred(task, noisy_gold, 2, "c"),
             pred(task, None, 3, "d"), pred(task, "", 4, "e")]
    store = RunStore("dups", root=tmp_path / "runs")
    try:
        result = evaluate(make_evaluator("test-dups", audit_runs=1), [task], preds, store)
    finally:
        store.close()
    by_index = {r.index: r for r in result.records}
    assert result.report["monkeys"]["unique_patches"] == 2
    # The gold patch's run comes from the audit; the empty patch runs once for its three predictions.
    assert result.report["monkeys"]["test_runs_executed"] == 1
    assert [by_index[i].new_test_runs for i in (1, 3, 4)] == [1, 0, 0]
    assert by_index[0].path == by_index[2].path != by_index[1].path == by_index[3].path == by_index[4].path
    folders = sorted(p.name for p in (store.dir / "evals" / task.instance_id).iterdir())
    assert folders == sorted(Path(by_index[i].path).name for i in (0, 1))
    # What differs between the predictions' reports is kept, in the report they share.
    empty_report = json.loads((store.dir / by_index[1].path / "report.json").read_text())[task.instance_id]
    assert empty_report["predictions"] == [{"index": 1, "model_name_or_path": "b", "patch_is_None": False},
                                           {"index": 3, "model_name_or_path": "d", "patch_is_None": True},
                                           {"index": 4, "model_name_or_path": "e", "patch_is_None": False}]
    assert empty_report["model_name_or_path"] == "b" and not empty_report["resolved"]
    gold_report = json.loads((store.dir / by_index[0].path / "report.json").read_text())[task.instance_id]
    assert [p["index"] for p in gold_report["predictions"]] == [0, 2] and gold_report["resolved"]


def test_an_interrupted_run_keeps_what_it_finished_and_resumes_without_running_it_again(make_evaluator, steady, tmp_path):
    preds = empty_patches(steady)
    # One worker, so the run is cut short with most jobs not yet started.
    evaluator = make_evaluator("test-resume", audit_runs=1, workers=1)
    store = RunStore("cut", root=tmp_path / "runs")

    def crash(record):
        raise Interrupt(f"after {record.instance_id} #{record.index}")

    try:
        with pytest.raises(Interrupt):
            evaluate(evaluator, steady, preds, store, on_done=crash)
        (kept,) = store.evaluations()
        assert not (store.dir / "report.json").exists()
        first = min(t.instance_id for t in steady)  # tasks are prepared in instance id order
        assert (kept.instance_id, kept.index, kept.new_test_runs) == (first, 0, 1)
        nonce = json.loads((store.dir / kept.path / "report.json").read_text())[first]["nonce"]

        resumed = evaluate(evaluator, steady, preds, store)
    finally:
        store.close()
    assert_no_errors(resumed)
    # Only the jobs that never ran run now: the three other tasks' empty patches, one test run each.
    assert resumed.report["monkeys"]["test_runs_executed"] == len(steady) - 1
    again = {(r.instance_id, r.index): r for r in resumed.records}
    assert again[(first, 0)].new_test_runs == 0 and again[(first, 0)].overhead_seconds == 0.0  # no container
    # Its evidence, already in place with the same content, was not written again (a write draws a new nonce).
    assert json.loads((store.dir / kept.path / "report.json").read_text())[first]["nonce"] == nonce

    # The same predictions in one uninterrupted call, on a fresh cache: the same report, only the
    # counts of runs executed by that call differ (the interrupted call ran one of them).
    whole_store = RunStore("whole", root=tmp_path / "runs")
    try:
        whole = evaluate(make_evaluator("test-whole", audit_runs=1, workers=1), steady, preds, whole_store)
    finally:
        whole_store.close()
    assert_no_errors(whole)
    assert whole.report["monkeys"]["test_runs_executed"] == len(steady)

    def without_counts(report: dict) -> dict:
        return {**report, "monkeys": {k: v for k, v in report["monkeys"].items()
                                      if k not in ("test_runs_executed", "audit_runs_executed")}}

    written = json.loads((tmp_path / "runs" / "cut" / "report.json").read_text())
    assert written == resumed.report
    assert without_counts(written) == without_counts(json.loads((whole_store.dir / "report.json").read_text()))
    assert [(r.instance_id, r.index, r.status, r.resolved, r.path) for r in resumed.records] == \
           [(r.instance_id, r.index, r.status, r.resolved, r.path) for r in whole.records]
