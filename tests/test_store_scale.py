"""The run store at scale (``harness/store.py``) and the trajectory layout (``agent/trajectories.py``):
a store made by older code gets its indexes when opened, the store runs in WAL mode with every commit
synced, a reader in another process sees what a writer has committed while the writer stays open
(and is not held up by its open transaction), a record is kept once ``save_*`` returns even when the
process dies right after, trajectories land one folder per task and are read back from whatever path
an attempt's record names, and a sampling run's finished attempts are read as predictions one at a time. Timings are measured by ``bench/store_scale.py``, never asserted."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.trajectories import read_trajectory, trajectory_file, trajectory_path, write_trajectory
from harness.predictions import AttemptChanged, Prediction, StoredPredictions
from harness.store import STORE_FILE, AttemptStatus, EvalRecord, EvalStatus, RunStore, StoredAttempt

ROOT = Path(__file__).resolve().parent.parent

# The schema as harness/store.py created it before it had indexes beyond the primary keys.
OLD_SCHEMA = """
CREATE TABLE evaluations (instance_id TEXT NOT NULL, idx INTEGER NOT NULL, record TEXT NOT NULL,
    resolved INTEGER NOT NULL, resolved_guarded INTEGER NOT NULL, status TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (instance_id, idx));
CREATE TABLE attempts (instance_id TEXT NOT NULL, idx INTEGER NOT NULL, record TEXT NOT NULL, status TEXT NOT NULL,
    updated REAL NOT NULL, PRIMARY KEY (instance_id, idx));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE attempt_history (instance_id TEXT NOT NULL, idx INTEGER NOT NULL, record TEXT NOT NULL,
    status TEXT NOT NULL, updated REAL NOT NULL);
"""

NEW_INDEXES = {"attempt_versions", "attempt_history_by_time"}


def attempt(instance_id: str, index: int, status: AttemptStatus = AttemptStatus.DONE) -> StoredAttempt:
    return StoredAttempt(instance_id, index, "m", f"diff --git a/{instance_id} b/{instance_id}\n", status.value,
                         {"seed": index})


def evaluation(instance_id: str, index: int, resolved: bool = False) -> EvalRecord:
    return EvalRecord(instance_id, index, "m", f"hash-{instance_id}-{index}", EvalStatus.GRADED.value,
                      resolved=resolved, resolved_guarded=resolved)


def indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def plan(path: Path, sql: str, params: tuple = ()) -> str:
    with sqlite3.connect(path) as conn:
        return " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_a_store_made_by_older_code_gets_its_indexes_and_keeps_its_records(tmp_path):
    path = tmp_path / "old" / STORE_FILE
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:  # the default rollback journal: WAL comes with the first open
        conn.executescript(OLD_SCHEMA)
        conn.execute("INSERT INTO attempts VALUES (?, ?, ?, ?, ?)",
                     ("t1", 0, json.dumps({"instance_id": "t1", "index": 0, "model": "m", "patch": "p",
                                           "status": "done", "details": {}}), "done", 1.0))
        conn.execute("INSERT INTO attempt_history VALUES (?, ?, ?, ?, ?)",
                     ("t1", 0, json.dumps({"instance_id": "t1", "index": 0, "model": "m", "patch": None,
                                           "status": "infra_error", "details": {}}), "infra_error", 0.5))
        # The index an earlier version made, which attempt_versions replaces.
        conn.execute("CREATE INDEX attempts_by_status ON attempts (status, instance_id, idx)")
    assert not indexes(path) & NEW_INDEXES

    store = RunStore("old", root=tmp_path)
    try:
        assert NEW_INDEXES <= indexes(path)
        assert [(a.instance_id, a.index, a.patch) for a in store.attempts(AttemptStatus.DONE)] == [("t1", 0, "p")]
        assert [a.status for a in store.attempt_history()] == ["infra_error"]
        store.save_attempt(attempt("t1", 0))  # the old row moves to the history, as before
        assert len(store.attempt_history()) == 2
    finally:
        store.close()
    # The queries the code runs use them.
    assert "attempt_versions" in plan(path, "SELECT record FROM attempts WHERE status = ? ORDER BY instance_id, idx",
                                      ("done",))
    versions = plan(path, "SELECT instance_id, idx, updated FROM attempts WHERE status = ? ORDER BY instance_id, idx",
                    ("done",))
    assert "COVERING INDEX attempt_versions" in versions and "TEMP B-TREE" not in versions
    history = plan(path, "SELECT record FROM attempt_history ORDER BY updated, rowid")
    assert "attempt_history_by_time" in history and "TEMP B-TREE" not in history
    # Opening it again adds nothing and loses nothing.
    RunStore("old", root=tmp_path).close()
    assert NEW_INDEXES <= indexes(path) and "attempts_by_status" not in indexes(path)


def test_the_store_runs_in_wal_mode_with_every_commit_synced(tmp_path):
    store = RunStore("r", root=tmp_path)
    try:
        assert store.db.query("PRAGMA journal_mode") == [("wal",)]
        assert store.db.query("PRAGMA synchronous") == [(2,)]  # FULL
        with sqlite3.connect(store.dir / STORE_FILE) as other:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # a property of the file
    finally:
        store.close()


READER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from harness.scores import report
    data = report.load(sys.argv[1], Path(sys.argv[2]))
    print(json.dumps({"attempts": [[a.instance_id, a.index] for a in data.attempts],
                      "evaluations": [[e.instance_id, e.index, e.resolved] for e in data.evaluations]}))
""")


def read_in_another_process(root: Path, run: str) -> dict:
    """What ``monkeys report`` reads of the run, from a process of its own."""
    done = subprocess.run([sys.executable, "-c", READER, run, str(root)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout)


def test_a_reader_sees_committed_records_while_the_writer_is_open_and_mid_transaction(tmp_path):
    writer = RunStore("live", root=tmp_path)
    try:
        writer.save_attempt(attempt("t1", 0))
        writer.save_evaluation(evaluation("t1", 0, resolved=True))
        assert read_in_another_process(tmp_path, "live") == {"attempts": [["t1", 0]],
                                                             "evaluations": [["t1", 0, True]]}

        writer.save_attempt(attempt("t1", 1))
        writer.save_evaluations([evaluation("t1", 1), evaluation("t2", 0)])
        # The writer holds a write transaction open: the reader neither waits for it nor sees its row.
        with writer.db.transaction() as conn:
            conn.execute("INSERT INTO meta VALUES ('uncommitted', '1')")
            conn.execute("DELETE FROM attempts WHERE instance_id = 't1' AND idx = 0")
            seen = read_in_another_process(tmp_path, "live")
        assert seen == {"attempts": [["t1", 0], ["t1", 1]],
                        "evaluations": [["t1", 0, True], ["t1", 1, False], ["t2", 0, False]]}
        # A reader connection in this process sees each new commit while the writer stays open.
        reader = RunStore("live", root=tmp_path)
        try:
            assert [a.index for a in reader.attempts()] == [1]
            writer.save_attempt(attempt("t3", 0, AttemptStatus.INFRA_ERROR))
            assert [(a.instance_id, a.status) for a in reader.attempts(AttemptStatus.INFRA_ERROR)] == [
                ("t3", "infra_error")]
            assert reader.meta("uncommitted") == 1
        finally:
            reader.close()
    finally:
        writer.close()


WRITE_THEN_DIE = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from harness.store import EvalRecord, RunStore, StoredAttempt
    store = RunStore("crash", root=Path(sys.argv[1]))
    for i in range(50):
        store.save_attempt(StoredAttempt("t", i, "m", "patch", "done", {}))
    store.save_evaluation(EvalRecord("t", 0, "m", "h", "graded", resolved=True, resolved_guarded=True))
    store.save_evaluations([EvalRecord("t", i, "m", "h", "graded") for i in range(1, 50)])
    os.kill(os.getpid(), 9)  # no close, no checkpoint, no interpreter shutdown
""")


def test_a_record_is_kept_once_save_returns_even_if_the_process_is_killed_then(tmp_path):
    done = subprocess.run([sys.executable, "-c", WRITE_THEN_DIE, str(tmp_path)], cwd=ROOT, timeout=300)
    assert done.returncode == -9
    assert (tmp_path / "crash" / (STORE_FILE + "-wal")).exists()  # the records are in the log, uncheckpointed
    store = RunStore("crash", root=tmp_path)
    try:
        assert [a.index for a in store.attempts()] == list(range(50))
        evaluations = store.evaluations()
        assert [e.index for e in evaluations] == list(range(50))
        assert [e.resolved for e in evaluations[:2]] == [True, False]
    finally:
        store.close()


def test_save_evaluations_replaces_as_save_evaluation_does(tmp_path):
    store = RunStore("batch", root=tmp_path)
    try:
        store.save_evaluation(evaluation("t", 0))
        store.save_evaluations([evaluation("t", 0, resolved=True), evaluation("t", 1)])
        store.save_evaluations([])
        assert [(e.index, e.resolved) for e in store.evaluations()] == [(0, True), (1, False)]
    finally:
        store.close()


def test_stored_predictions_read_each_finished_attempt_when_asked_and_refuse_one_replaced_since(tmp_path):
    store = RunStore("lazy", root=tmp_path)
    try:
        store.save_attempt(attempt("b__c-2", 0))
        store.save_attempt(StoredAttempt("a__b-1", 1, "m", None, AttemptStatus.DONE.value, {"seed": 1}))
        store.save_attempt(attempt("a__b-1", 0, AttemptStatus.INFRA_ERROR))  # not finished: not a prediction
        predictions = StoredPredictions(store)
        assert len(predictions) == 2
        expected = [Prediction("a__b-1", "m", None, 1, "attempt a__b-1#1"),
                    Prediction("b__c-2", "m", "diff --git a/b__c-2 b/b__c-2\n", 0, "attempt b__c-2#0")]
        assert list(predictions) == predictions[:] == expected
        assert predictions[1] == expected[1]
        # Each read without the attempt's details: they are never part of a prediction.
        assert store.attempt_patch("b__c-2", 0, store.attempt_versions(AttemptStatus.DONE)[1][2]) == \
               StoredAttempt("b__c-2", 0, "m", "diff --git a/b__c-2 b/b__c-2\n", AttemptStatus.DONE.value)
        assert store.count_attempts() == 3 and store.count_attempts(AttemptStatus.DONE) == 2
        # Finished after it was made: not one of its predictions. Re-made after it was made: refused by name.
        store.save_attempt(attempt("a__b-1", 0))
        assert len(predictions) == 2 and predictions[0] == expected[0]
        store.save_attempt(StoredAttempt("b__c-2", 0, "m", "another patch", AttemptStatus.DONE.value, {}))
        with pytest.raises(AttemptChanged, match=r"attempt b__c-2#0 of run 'lazy' was replaced"):
            predictions[1]
        assert len(StoredPredictions(store)) == 3
    finally:
        store.close()


def test_every_try_is_each_attempt_and_history_row_with_only_the_named_details(tmp_path):
    store = RunStore("tries", root=tmp_path)
    usage = {"input_tokens": 10, "output_tokens": 2}
    try:
        store.save_attempt(StoredAttempt("b", 0, "m", "p", AttemptStatus.INFRA_ERROR.value,
                                         {"usage": usage, "dollars": 0.5, "trajectory": "t/b/0.json"}))
        store.save_attempt(StoredAttempt("b", 0, "m", "p", AttemptStatus.DONE.value, {"dollars": 0.25, "seed": 3}))
        store.save_attempt(StoredAttempt("a", 1, "n", None, AttemptStatus.DONE.value, {"usage": usage, "seed": 1}))
        store.save_abandoned(StoredAttempt("c", 0, "m", None, AttemptStatus.ABANDONED.value, {"dollars": 1.0}))
        tries = store.every_try(("usage", "dollars"))
        full = store.attempts() + store.attempt_history()
        assert [(t.instance_id, t.index, t.model, t.status) for t in tries] == \
               [(a.instance_id, a.index, a.model, a.status) for a in full]
        assert all(t.patch is None for t in tries)
        assert [t.details for t in tries] == [{"usage": a.details.get("usage"), "dollars": a.details.get("dollars")}
                                              for a in full]
    finally:
        store.close()


def test_trajectories_are_one_folder_per_task_and_read_back(tmp_path):
    run_dir = tmp_path / "run"
    written = {}
    for task in ("a__b-1", "c__d-2"):
        for index in range(3):
            document = {"instance_id": task, "index": index, "messages": [{"role": "user", "content": str(index)}]}
            rel = write_trajectory(run_dir, task, index, document)
            assert rel == trajectory_path(task, index) == Path("trajectories") / task / f"{index}.json"
            written[(task, index)] = (rel, document)
    assert sorted(p.name for p in (run_dir / "trajectories").iterdir()) == ["a__b-1", "c__d-2"]
    assert sorted(p.name for p in (run_dir / "trajectories" / "a__b-1").iterdir()) == ["0.json", "1.json", "2.json"]
    for (task, index), (rel, document) in written.items():
        stored = StoredAttempt(task, index, "m", "p", details={"trajectory": str(rel)})
        assert read_trajectory(run_dir, stored) == document
        # A record that names no file (as none of ours lacks) is looked for where the layout puts it.
        assert read_trajectory(run_dir, StoredAttempt(task, index, "m", "p")) == document
    assert read_trajectory(run_dir, StoredAttempt("a__b-1", 7, "m", "p")) is None
    assert trajectory_file(run_dir, StoredAttempt("a__b-1", 7, "m", "p")) == run_dir / "trajectories/a__b-1/7.json"


def test_a_trajectory_is_read_from_the_path_its_record_names_in_any_layout(tmp_path):
    """A run written in another layout (all files in one folder) keeps being read: readers follow
    ``details["trajectory"]``, never a layout of their own."""
    run_dir = tmp_path / "run"
    flat = run_dir / "trajectories" / "a__b-1_0.json"
    flat.parent.mkdir(parents=True)
    flat.write_text(json.dumps({"instance_id": "a__b-1", "index": 0, "messages": []}))
    stored = StoredAttempt("a__b-1", 0, "m", "p", details={"trajectory": "trajectories/a__b-1_0.json"})
    assert read_trajectory(run_dir, stored) == {"instance_id": "a__b-1", "index": 0, "messages": []}
    assert not (run_dir / "trajectories" / "a__b-1").exists()
    os.remove(flat)
    assert read_trajectory(run_dir, stored) is None


def test_count_attempts_counts_as_reading_them_does(tmp_path):
    store = RunStore("counted", root=tmp_path)
    try:
        store.save_attempt(attempt("b__c-2", 0))
        store.save_attempt(attempt("a__b-1", 1))
        store.save_attempt(attempt("a__b-1", 0, AttemptStatus.INFRA_ERROR))
        for status in (AttemptStatus.DONE, AttemptStatus.INFRA_ERROR, AttemptStatus.ABANDONED):
            assert store.count_attempts(status) == len(store.attempts(status))
        assert store.count_attempts(AttemptStatus.DONE) == 2
    finally:
        store.close()
