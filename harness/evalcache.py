"""The evaluation cache: every completed test run, and every patch application, keyed by (image id,
evaluation plan digest, normalised-patch hash), in one SQLite file under the cache folder.

The plan digest covers the commands and the bytes of every file they read besides the candidate (the
test patch, an eval script), so a revised row never reuses runs made for the old one. What is stored
is the raw fact, the test command's output and exit status, never a status map or a verdict: status
maps are parsed again with the current parser on every read and verdicts recomputed from them, so a
parser fix, changed FAIL_TO_PASS/PASS_TO_PASS lists or another policy take effect at once, re-grading
a run costs no test runs, and any run reuses what earlier runs measured.

A run that outran its timeout is stored only when it is the patch's outcome (the gold runs finish well
inside the limit), together with the timeout it ran under; engine errors are never stored, so they
are retried. The gold patch's runs double as the task's flaky audit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from harness.config import cache_dir
from harness.evalscript import ApplyMethod, Limit
from harness.store import Database

# Tables are versioned by name: a cache file written by an older monkeys (which stored parsed status
# maps under a narrower key) stays where it is, unread.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_runs_v2 (
    image_id TEXT NOT NULL, plan TEXT NOT NULL, patch TEXT NOT NULL, seq INTEGER NOT NULL,
    exit_code INTEGER, timed_out INTEGER NOT NULL, timeout REAL NOT NULL, limits_hit TEXT NOT NULL,
    seconds REAL NOT NULL, output BLOB NOT NULL,
    PRIMARY KEY (image_id, plan, patch, seq)
);
CREATE TABLE IF NOT EXISTS applies_v2 (
    image_id TEXT NOT NULL, plan TEXT NOT NULL, patch TEXT NOT NULL,
    method TEXT, output TEXT NOT NULL,
    PRIMARY KEY (image_id, plan, patch)
);
"""


@dataclass(frozen=True)
class CacheKey:
    image_id: str
    plan: str
    """``EvalPlan.digest``: the commands and the files they read."""
    patch: str
    """``patch_hash`` of the candidate."""


@dataclass(frozen=True)
class Applied:
    """How a patch went in (method None: no method applied it) and what the tries printed."""

    method: ApplyMethod | None
    output: str


@dataclass(frozen=True)
class RawRun:
    """One run of the test command as it happened, before any parsing."""

    output: str
    exit_code: int | None
    seconds: float
    timed_out: bool = False
    timeout: float = 0.0
    """The limit it ran under (a timed-out run says nothing about a longer limit)."""
    limits_hit: tuple[Limit, ...] = ()


class EvalCache:
    def __init__(self, path: Path | None = None):
        self.db = Database(path or cache_dir() / "evaluations.sqlite", _SCHEMA)

    def runs(self, key: CacheKey) -> list[RawRun]:
        rows = self.db.query(
            "SELECT output, exit_code, seconds, timed_out, timeout, limits_hit FROM raw_runs_v2 "
            "WHERE image_id=? AND plan=? AND patch=? ORDER BY seq",
            (key.image_id, key.plan, key.patch),
        )
        return [RawRun(zlib.decompress(out).decode(), code, seconds, bool(timed_out), timeout,
                       tuple(Limit(x) for x in limits.split(",") if x))
                for out, code, seconds, timed_out, timeout, limits in rows]

    def add_run(self, key: CacheKey, run: RawRun) -> None:
        with self.db.transaction() as conn:
            (seq,) = conn.execute(
                "SELECT COUNT(*) FROM raw_runs_v2 WHERE image_id=? AND plan=? AND patch=?",
                (key.image_id, key.plan, key.patch),
            ).fetchone()
            conn.execute(
                "INSERT INTO raw_runs_v2 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.image_id, key.plan, key.patch, seq, run.exit_code, int(run.timed_out), run.timeout,
                 ",".join(x.value for x in run.limits_hit), run.seconds, zlib.compress(run.output.encode(), 6)),
            )

    def drop_runs(self, key: CacheKey) -> None:
        """Forget a key's runs (a timed-out run made under a shorter limit than the one asked for now)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM raw_runs_v2 WHERE image_id=? AND plan=? AND patch=?",
                         (key.image_id, key.plan, key.patch))

    def applied(self, key: CacheKey) -> Applied | None:
        rows = self.db.query("SELECT method, output FROM applies_v2 WHERE image_id=? AND plan=? AND patch=?",
                             (key.image_id, key.plan, key.patch))
        if not rows:
            return None
        method, output = rows[0]
        if method and method not in ApplyMethod.__members__:
            return None  # recorded under a method this monkeys no longer has: apply again
        return Applied(ApplyMethod[method] if method else None, output)

    def record_apply(self, key: CacheKey, applied: Applied) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO applies_v2 VALUES (?, ?, ?, ?, ?)",
                         (key.image_id, key.plan, key.patch, applied.method.name if applied.method else None, applied.output))

    def entries(self, plan: str, patch: str) -> dict[CacheKey, tuple[Applied | None, list[RawRun]]]:
        """Everything held for a plan and a patch, under every image id it was measured in: what a job
        that runs elsewhere (harness/cluster.py) needs before it starts, whichever image id its node has."""
        images = self.db.query("SELECT image_id FROM applies_v2 WHERE plan=? AND patch=? "
                               "UNION SELECT image_id FROM raw_runs_v2 WHERE plan=? AND patch=?",
                               (plan, patch, plan, patch))
        keys = [CacheKey(image_id, plan, patch) for (image_id,) in images]
        return {key: (self.applied(key), self.runs(key)) for key in keys}

    def close(self) -> None:
        self.db.close()
