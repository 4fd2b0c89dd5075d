"""The run store: one SQLite file per run under ``runs/<run>/``, holding every attempt a sampler made
and every evaluation's record. Files beside it (patches, logs, reports) are the evidence;
the store is the index that reports are computed from.

Writers from many threads share one connection behind a lock; WAL lets readers in other processes
(a report while a run goes on) see committed rows without waiting for the writer, nor it for them.

Durability: a record is on disk once ``save_*`` returns. Each call is one transaction, and the store
runs with ``synchronous=FULL``, so its commit syncs the write-ahead log: neither a crash of the
process nor one of the machine (power, kernel) loses it. That sync is most of what a record costs
(a few hundred records a second where ``bench/store_scale.py`` ran, against the minutes an attempt
or an evaluation takes); where many records are ready at once (cached verdicts on a resume),
``save_evaluations`` commits them in one transaction and one sync.

At the paper's scale (75,000 attempts and as many evaluations in one store) every query of this
class is served by an index (see ``_SCHEMA``): the primary keys for the per-record writes, the full
reads in (instance_id, idx) order and the meta look-ups; ``attempt_versions`` for
``attempts(status)`` and ``attempt_versions(status)``; ``attempt_history_by_time`` for
``attempt_history()``. A store made before those indexes existed gets them when it is next opened
(``CREATE INDEX IF NOT EXISTS``).
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from harness.config import runs_dir

STORE_FILE = "store.sqlite"

# Meta keys written by the sampler and the evaluation and read by reports (harness cannot import agent).
TASKS_META = "task_hashes"
"""instance_id -> row hash: every task the run was asked to cover."""
NO_IMAGE_META = "tasks_without_image"
"""instance_id -> why the latest sampling call could not make attempts for it."""
PARAMETERS_META = "model_parameters"
"""{"parameters": int | None, "source": str, "reason": str}: the sampled model's size, for FLOPs."""
AUDITS_META = "audits"
"""instance_id -> {"runs", "flaky": {test: [passed, runs]}, "gold_failing": [tests], "error"}: gold audits."""


T = TypeVar("T")


class Database:
    """A SQLite file with a schema, safe to share between threads."""

    def __init__(self, path: Path, schema: str, synchronous: str = "NORMAL"):
        """``synchronous``: SQLite's setting; NORMAL (in WAL mode) keeps every commit through a crash of
        the process but may drop the last ones on a crash of the machine; FULL keeps them through both."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        # The log is reset after each checkpoint but keeps its largest size on disk unless limited.
        self._conn.execute(f"PRAGMA journal_size_limit={64 * 2**20}")
        # Schemas are all IF NOT EXISTS: on an existing file this adds only what is missing (new
        # indexes on a store made by older code), and takes no write lock when nothing is.
        self._conn.executescript(schema)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def each(self, sql: str, params: tuple, make: Callable[[tuple], T]) -> list[T]:
        """``make(row)`` for every row, each row let go once made: a whole table is never held twice,
        as raw rows and as records (at the paper's scale, hundreds of MiB of JSON text)."""
        with self._lock:
            return [make(row) for row in self._conn.execute(sql, params)]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class EvalStatus(str, enum.Enum):
    """What became of one prediction's evaluation."""

    GRADED = "graded"  # the tests ran and gave a verdict
    APPLY_FAILED = "apply_failed"  # no method applied the patch: unresolved, the patch's fault
    TIMED_OUT = "timed_out"  # its tests outran the timeout that the gold runs finish well inside: unresolved
    RESOURCE_LIMIT = "resource_limit"  # killed for memory or pids that the gold runs stayed within: unresolved
    UNDECIDABLE = "undecidable"  # ignore-flaky dropped every FAIL_TO_PASS test: no verdict, left out of scores
    ERROR = "error"  # infrastructure (engine, image, a gold run that itself times out): retried next call


# Statuses that judge the attempt: counted in n, never resolved unless GRADED.
JUDGED_STATUSES = frozenset({EvalStatus.GRADED, EvalStatus.APPLY_FAILED, EvalStatus.TIMED_OUT,
                             EvalStatus.RESOURCE_LIMIT})


@dataclass
class EvalRecord:
    """One prediction's evaluation, as the run store keeps it."""

    instance_id: str
    index: int
    """Its place among this instance's predictions (a sample index for sampling runs)."""
    model: str
    patch_hash: str
    status: str
    """An EvalStatus value."""
    resolved: bool = False
    """The official verdict, never altered by guards."""
    resolved_guarded: bool = False
    pass_to_pass_ok: bool = False
    """Every PASS_TO_PASS test passed, read from the runs with the hidden test patch applied: a user
    cannot know this, so no selection method may use it (see ``existing_tests_ok``)."""
    existing_tests_ok: bool | None = None
    """What a user can check without the hidden tests: the repository's existing tests, run before
    the test patch, all pass with this patch where they passed with no patch. None: not measured."""
    guard_flags: list[str] = field(default_factory=list)
    apply_method: str | None = None
    test_runs: int = 0
    """Runs the verdict was graded from (cached ones included)."""
    new_test_runs: int = 0
    """Of those, runs this call executed."""
    test_seconds: float = 0.0
    """Seconds the test command ran in this call."""
    overhead_seconds: float = 0.0
    """Seconds this call spent on the evaluation outside the tests (container, apply, cleanup)."""
    flaky_tests: dict[str, list[int]] = field(default_factory=dict)
    """Expected tests whose outcome varied: [runs passed, runs]."""
    error: str = ""
    path: str = ""
    """The evaluation's folder, relative to the run's."""


class AttemptStatus(str, enum.Enum):
    DONE = "done"  # the attempt ended with a patch (possibly empty): evaluate it
    INFRA_ERROR = "infra_error"  # it died of something outside the model: redo it, never score it
    ABANDONED = "abandoned"  # stopped unfinished by an interrupt: only in the history, redone, never scored


@dataclass
class StoredAttempt:
    """One sampled attempt, as far as the harness needs it; the sampler keeps its own details beside."""

    instance_id: str
    index: int
    """The sample index within its task."""
    model: str
    patch: str | None
    status: str = AttemptStatus.DONE.value
    details: dict = field(default_factory=dict)
    """What the sampler records (seed, temperature, exit reason, tokens, cost, times, ...)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    instance_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    record TEXT NOT NULL,
    resolved INTEGER NOT NULL,
    resolved_guarded INTEGER NOT NULL,
    status TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (instance_id, idx)
);
CREATE TABLE IF NOT EXISTS attempts (
    instance_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (instance_id, idx)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempt_history (
    instance_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    updated REAL NOT NULL
);
-- attempts(status): the sampler's resume reads the DONE ones in (instance_id, idx) order; with
-- ``updated`` too, attempt_versions() reads nothing but this index. It replaces an index that lacked it.
DROP INDEX IF EXISTS attempts_by_status;
CREATE INDEX IF NOT EXISTS attempt_versions ON attempts (status, instance_id, idx, updated);
-- attempt_history(): ORDER BY updated, rowid (an index entry carries its rowid).
CREATE INDEX IF NOT EXISTS attempt_history_by_time ON attempt_history (updated);
"""


def _with_status(status: AttemptStatus | None) -> tuple[str, tuple]:
    """The WHERE clause and parameters that keep attempts with ``status`` (all of them for None)."""
    return ("", ()) if status is None else (" WHERE status = ?", (status.value,))


class RunStore:
    """``runs/<run>/store.sqlite`` and the folder around it."""

    def __init__(self, run: str, root: Path | None = None):
        self.run = run
        self.dir = (root or runs_dir()) / run
        # FULL: a record is kept once save_* returns, even through a crash of the machine.
        self.db = Database(self.dir / STORE_FILE, _SCHEMA, synchronous="FULL")

    def save_evaluation(self, record: EvalRecord) -> None:
        """Record one evaluation (replacing this prediction's earlier one); on disk when this returns."""
        self.save_evaluations([record])

    def save_evaluations(self, records: Iterable[EvalRecord]) -> None:
        """Record many evaluations in one transaction (one sync): all of them are on disk when this
        returns, none if it raises. For records that arrive together (cached verdicts on a resume)."""
        now = time.time()
        rows = [(r.instance_id, r.index, json.dumps(asdict(r)), int(r.resolved), int(r.resolved_guarded), r.status,
                 now) for r in records]
        with self.db.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def evaluations(self) -> list[EvalRecord]:
        return self.db.each("SELECT record FROM evaluations ORDER BY instance_id, idx", (),
                            lambda row: EvalRecord(**json.loads(row[0])))

    def save_attempt(self, record: StoredAttempt) -> None:
        """Record an attempt; a try it replaces (an infrastructure error being redone) moves to the
        attempt history rather than vanishing, because its tokens and dollars were spent."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO attempt_history SELECT instance_id, idx, record, status, updated FROM attempts "
                         "WHERE instance_id = ? AND idx = ?", (record.instance_id, record.index))
            conn.execute("INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?)",
                         (record.instance_id, record.index, json.dumps(asdict(record)), record.status, time.time()))

    def save_abandoned(self, record: StoredAttempt) -> None:
        """Record a try that was given up unfinished (an interrupt): only in the history, so it is
        redone like a missing attempt while what it spent still counts."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO attempt_history VALUES (?, ?, ?, ?, ?)",
                         (record.instance_id, record.index, json.dumps(asdict(record)), record.status, time.time()))

    def attempt_history(self) -> list[StoredAttempt]:
        """Every try that is no longer an attempt of the run (replaced or abandoned), oldest first:
        what it cost is part of what the run cost."""
        return self.db.each("SELECT record FROM attempt_history ORDER BY updated, rowid", (),
                            lambda row: StoredAttempt(**json.loads(row[0])))

    def attempts(self, status: AttemptStatus | None = None) -> list[StoredAttempt]:
        where, params = _with_status(status)
        return self.db.each(f"SELECT record FROM attempts{where} ORDER BY instance_id, idx", params,
                            lambda row: StoredAttempt(**json.loads(row[0])))

    def count_attempts(self, status: AttemptStatus | None = None) -> int:
        """How many attempts have ``status`` (any, for None), without reading them (75,000 rows are
        hundreds of MiB)."""
        where, params = _with_status(status)
        return self.db.query(f"SELECT COUNT(*) FROM attempts{where}", params)[0][0]

    def attempt_versions(self, status: AttemptStatus) -> list[tuple[str, int, float]]:
        """(instance_id, index, when it was saved) of each attempt with ``status``, in (instance_id,
        index) order, from the status index alone: which attempts there are, and which version of
        each, without reading one record."""
        return self.db.query("SELECT instance_id, idx, updated FROM attempts WHERE status = ? "
                             "ORDER BY instance_id, idx", (status.value,))

    def attempt_patch(self, instance_id: str, index: int, saved: float) -> StoredAttempt | None:
        """That attempt without its details (which judging does not read), if it is still the version
        saved at ``saved`` (``attempt_versions``); None where it has been replaced or removed since."""
        rows = self.db.query("SELECT record FROM attempts WHERE instance_id = ? AND idx = ? AND updated = ?",
                             (instance_id, index, saved))
        if not rows:
            return None
        r = json.loads(rows[0][0])
        return StoredAttempt(r["instance_id"], r["index"], r["model"], r["patch"], r["status"])

    def every_try(self, details: Sequence[str]) -> list[StoredAttempt]:
        """Every try the run has made (its attempts, then its history), without patches and with only
        the named ``details``, which SQLite picks out of the stored JSON: what budgets need of 75,000
        tries is a few numbers each, and their full records are hundreds of MiB."""
        picked = ", ".join(f"'{key}', json_extract(record, '$.details.{key}')" for key in details)
        columns = f"instance_id, idx, json_extract(record, '$.model'), status, json_object({picked})"

        def make(row: tuple) -> StoredAttempt:
            return StoredAttempt(row[0], row[1], row[2], None, row[3], json.loads(row[4]))

        # In the orders attempts() and attempt_history() read them, so that sums come out the same.
        return (self.db.each(f"SELECT {columns} FROM attempts ORDER BY instance_id, idx", (), make)
                + self.db.each(f"SELECT {columns} FROM attempt_history ORDER BY updated, rowid", (), make))

    def set_meta(self, key: str, value) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default=None):
        rows = self.db.query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def close(self) -> None:
        self.db.close()
