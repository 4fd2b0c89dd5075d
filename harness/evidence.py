"""The evidence an evaluation leaves: for each prediction, a folder holding the patch, the commands that
ran, the raw test output of each run and its own report.json."""

from __future__ import annotations

import json
from pathlib import Path

from harness.evalconfig import EvalConfig
from harness.evalscript import marked, plan
from harness.grading import Grade
from harness.predictions import Prediction
from harness.store import EvalRecord
from harness.tasks import Task
from harness.verdict import GoldAudit, PatchRuns


def write_evidence(run_dir: Path, task: Task, p: Prediction, m: PatchRuns, record: EvalRecord, official: dict,
                    verdict: Grade | None, audit: GoldAudit, config: EvalConfig, nonce: str) -> str:
    """The evaluation's folder, ``evals/<instance>/<index>`` under ``run_dir``: the patch, the commands,
    the test log (each run between host-written markers carrying ``nonce``) and report.json, so any
    verdict can be re-graded or debugged offline. Returns the folder relative to ``run_dir``."""
    rel = Path("evals") / task.instance_id / str(p.index)
    folder = run_dir / rel
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patch.diff").write_text(p.patch or "")
    steps = plan(task)
    (folder / "eval.sh").write_text(f"# apply\n{steps.apply}\n# setup\n{steps.setup}\n# test (each run)\n{steps.test}\n")
    log = "".join(marked(nonce, i, run.output, run.exit_code) for i, run in enumerate(m.runs[:m.used], 1))
    if m.applied:
        log = f"{m.applied.output}\n{log}"
    (folder / "test_output.txt").write_text(log)
    report = {
        **official,
        "resolved_guarded": record.resolved_guarded,
        "guard_flags": record.guard_flags,
        "status": record.status,
        "apply_method": record.apply_method,
        "policy": config.policy.value,
        "test_runs": record.test_runs,
        "flaky_tests": record.flaky_tests,
        "dropped_flaky": list(verdict.dropped_flaky) if verdict else [],
        "audited_flaky": sorted(audit.flaky),
        "nonce": nonce,
        "model_name_or_path": p.model,
        **({"error": record.error} if record.error else {}),
    }
    (folder / "report.json").write_text(json.dumps({task.instance_id: report}, indent=2) + "\n")
    return str(rel)
