"""The official SWE-bench run report (schema_version 2) of one evaluation call, with monkeys' own
fields under "monkeys". Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from harness.evalconfig import EvalConfig
from harness.patches import is_empty
from harness.predictions import Prediction
from harness.store import EvalRecord, EvalStatus
from harness.tasks import Task
from harness.verdict import GoldAudit


def run_report(tasks: Sequence[Task], predictions: Iterable[Prediction], records: Sequence[EvalRecord],
               audits: dict[str, GoldAudit], config: EvalConfig, *, unknown: Iterable[str] = (),
               problems: Iterable[str] = (), audit_runs_executed: int = 0) -> dict:
    """Pure: the official run-level report (schema_version 2), plus monkeys' own fields under "monkeys".

    An instance with several predictions is resolved when any of them is; it is an error instance
    when any of them hit an infrastructure error (a rerun retries it).
    """
    per: dict[str, list[EvalRecord]] = defaultdict(list)
    for r in records:
        per[r.instance_id].append(r)
    all_empty: dict[str, bool] = {}  # per instance: every patch submitted for it is empty (patches are not kept)
    for p in predictions:
        all_empty[p.instance_id] = all_empty.get(p.instance_id, True) and is_empty(p.patch)
    submitted = sorted(per)
    completed = sorted(i for i, rs in per.items() if any(r.status != EvalStatus.ERROR.value for r in rs))
    resolved = sorted(i for i, rs in per.items() if any(r.resolved for r in rs))
    errors = sorted(i for i, rs in per.items() if any(r.status == EvalStatus.ERROR.value for r in rs))
    empty = sorted(i for i, e in all_empty.items() if e)
    all_ids = sorted(t.instance_id for t in tasks)
    return {
        "total_instances": len(all_ids),
        "submitted_instances": len(submitted),
        "completed_instances": len(completed),
        "resolved_instances": len(resolved),
        "unresolved_instances": len(set(completed) - set(resolved)),
        "empty_patch_instances": len(empty),
        "error_instances": len(errors),
        "unstopped_instances": 0,
        "completed_ids": completed,
        "incomplete_ids": sorted(set(all_ids) - set(submitted)),
        "empty_patch_ids": empty,
        "submitted_ids": submitted,
        "resolved_ids": resolved,
        "unresolved_ids": sorted(set(completed) - set(resolved)),
        "error_ids": errors,
        "unstopped_containers": [],
        "unremoved_images": [],
        "schema_version": 2,
        "monkeys": {
            "policy": config.policy.value,
            "reruns": config.reruns,
            "audit_runs": config.audit_runs,
            "predictions": len(records),
            "resolved_guarded_ids": sorted(i for i, rs in per.items() if any(r.resolved_guarded for r in rs)),
            "flagged": [{"instance_id": r.instance_id, "index": r.index, "guard_flags": r.guard_flags}
                        for r in records if r.guard_flags],
            "apply_failed": [{"instance_id": r.instance_id, "index": r.index} for r in records
                             if r.status == EvalStatus.APPLY_FAILED.value],
            **{status.value: [{"instance_id": r.instance_id, "index": r.index, "why": r.error} for r in records
                              if r.status == status.value]
               for status in (EvalStatus.TIMED_OUT, EvalStatus.RESOURCE_LIMIT, EvalStatus.UNDECIDABLE)},
            "gold_failing": {i: a.gold_failing for i, a in sorted(audits.items()) if a.gold_failing},
            "errors": [{"instance_id": r.instance_id, "index": r.index, "error": r.error} for r in records
                       if r.status == EvalStatus.ERROR.value],
            "test_runs_executed": sum(r.new_test_runs for r in records),
            "audit_runs_executed": audit_runs_executed,
            "unique_patches": len({(r.instance_id, r.patch_hash) for r in records}),
            "audited_flaky": {i: a.flaky for i, a in sorted(audits.items()) if a.flaky},
            "audit_errors": {i: a.error for i, a in sorted(audits.items()) if a.error},
            "unknown_instances": list(unknown),
            "bad_rows": list(problems),
        },
    }
