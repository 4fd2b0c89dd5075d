"""Predictions to evaluate: SWE-bench preds files (JSONL, a JSON list, or a JSON object keyed by
instance id), any number of rows per instance, a sampling run's finished attempts, or a task set's own
gold or empty patches."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

from harness.store import AttemptStatus, RunStore
from harness.tasks import Task

GOLD_MODEL = "gold"
EMPTY_MODEL = "empty"


@dataclass(frozen=True)
class Prediction:
    instance_id: str
    model: str
    patch: str | None
    """None is the official 'patch_is_None'; "" an empty patch."""
    index: int = 0
    """Its place among this instance's predictions, in input order."""
    source: str = ""
    """Where it came from ("file:line"), for messages."""


@dataclass
class PredsFile:
    predictions: Sequence[Prediction] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One line per row that could not be read, naming file, line and what is wrong."""


def _row_problem(row) -> str | None:
    if not isinstance(row, dict):
        return f"expected an object, got {type(row).__name__}"
    if not isinstance(row.get("instance_id"), str) or not row["instance_id"]:
        return "field 'instance_id': missing or not a string"
    if "model_patch" not in row:
        return "field 'model_patch': missing (use null for no patch)"
    if row["model_patch"] is not None and not isinstance(row["model_patch"], str):
        return f"field 'model_patch': expected a string or null, got {type(row['model_patch']).__name__}"
    return None


def read_preds(path: Path) -> PredsFile:
    """Every readable row of a preds file; unreadable rows are listed in ``problems``, not raised."""
    text = path.read_text(encoding="utf-8")
    result = PredsFile()
    rows: list[tuple[str, object]] = []
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and path.suffix == ".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            result.problems.append(f"{path}:{err.lineno}: not valid JSON ({err.msg})")
            return result
        if isinstance(data, dict):
            data = [{"instance_id": k, **v} if isinstance(v, dict) else v for k, v in data.items()]
        rows = [(f"{path}: row {i + 1}", row) for i, row in enumerate(data)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as err:
                result.problems.append(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno})")
    counts: dict[str, int] = defaultdict(int)
    for where, row in rows:
        problem = _row_problem(row)
        if problem:
            result.problems.append(f"{where}: {problem}")
            continue
        iid = row["instance_id"]
        model = str(row.get("model_name_or_path") or "unknown")
        result.predictions.append(Prediction(iid, model, row["model_patch"], counts[iid], where))
        counts[iid] += 1
    return result


class AttemptChanged(RuntimeError):
    """A sampling run's attempt was replaced after its evaluation began."""


class StoredPredictions(Sequence[Prediction]):
    """A sampling run's finished attempts as predictions (sample indices kept), each read from the run
    store when it is asked for rather than all held: at the paper's scale (75,000 attempts) their
    patches are the largest thing an evaluation would hold, and it needs them one job at a time.

    The attempts are those finished when this is made, each at the version saved then: one replaced
    since (another ``monkeys sample`` writing into the run) raises AttemptChanged when it is read,
    rather than a verdict being recorded for a patch other than the one its job measured."""

    def __init__(self, store: RunStore):
        self.store = store
        self._versions = store.attempt_versions(AttemptStatus.DONE)

    def __len__(self) -> int:
        return len(self._versions)

    @overload
    def __getitem__(self, n: int) -> Prediction: ...

    @overload
    def __getitem__(self, n: slice) -> list[Prediction]: ...

    def __getitem__(self, n):
        if isinstance(n, slice):
            return [self[i] for i in range(*n.indices(len(self)))]
        instance_id, index, saved = self._versions[n]
        a = self.store.attempt_patch(instance_id, index, saved)
        if a is None:
            raise AttemptChanged(f"attempt {instance_id}#{index} of run {self.store.run!r} was replaced after this "
                                 f"evaluation began (is a monkeys sample writing into {self.store.dir}?); what was "
                                 f"judged is kept: evaluate the run again once the sampling ends")
        return Prediction(a.instance_id, a.model, a.patch, a.index, f"attempt {a.instance_id}#{a.index}")

    def __iter__(self) -> Iterator[Prediction]:
        return (self[n] for n in range(len(self)))


def gold(tasks: Iterable[Task]) -> list[Prediction]:
    return [Prediction(t.instance_id, GOLD_MODEL, t.patch, 0, "gold") for t in tasks]


def empty(tasks: Iterable[Task]) -> list[Prediction]:
    return [Prediction(t.instance_id, EMPTY_MODEL, "", 0, "empty") for t in tasks]
