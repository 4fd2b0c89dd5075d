"""The evidence an evaluation leaves: for each unique (task, normalised patch), one folder holding the
patch, the commands that ran, the raw test output of each run and its report.json. Every prediction
with that patch (a repeated patch costs no runs, so it costs no evidence either) points at the folder
through its record's ``path``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from harness.evalconfig import EvalConfig
from harness.evalscript import marked, new_nonce, plan
from harness.grading import Grade
from harness.predictions import Prediction
from harness.store import EvalRecord
from harness.tasks import Task
from harness.verdict import GoldAudit, PatchRuns

# Hex digits of the normalised-patch hash naming a folder: 64 bits, so two patches of one task never
# share a folder, in a path a person can still read.
FOLDER_DIGITS = 16


def evidence_folder(instance_id: str, patch_digest: str) -> Path:
    """Where the evidence of one (task, normalised patch) lives, relative to the run's folder."""
    return Path("evals") / instance_id / patch_digest[:FOLDER_DIGITS]


def write_evidence(run_dir: Path, task: Task, group: Sequence[Prediction], m: PatchRuns, record: EvalRecord,
                   official: dict, verdict: Grade | None, audit: GoldAudit, config: EvalConfig) -> str:
    """The folder of one unique (task, normalised patch), ``evals/<instance>/<digest>`` under
    ``run_dir``: the patch, the commands, the test log (each run between host-written markers carrying
    a nonce) and report.json, so any verdict can be re-graded or debugged offline. ``group`` is every
    prediction judged from these runs, the first being the one ``record``, ``official`` and
    ``verdict`` belong to; report.json lists them all ("predictions": index, model, whether the patch
    was None), which is all that differs between their reports.

    Content-addressed, the folder is never rewritten with the same content: report.json keeps a digest
    of everything written (the nonce aside) and is written last, so a folder that holds it whole is
    left alone, and one a crash cut short is written again. Returns the folder relative to ``run_dir``."""
    rel = evidence_folder(task.instance_id, record.patch_hash)
    folder = run_dir / rel
    first = group[0]
    steps = plan(task)
    script = f"# apply\n{steps.apply}\n# setup\n{steps.setup}\n# test (each run)\n{steps.test}\n"
    used = m.runs[:m.used]
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
        "model_name_or_path": first.model,
        "predictions": [{"index": p.index, "model_name_or_path": p.model, "patch_is_None": p.patch is None}
                        for p in group],
        **({"error": record.error} if record.error else {}),
    }
    digest = _content_digest(first.patch or "", script, m.applied.output if m.applied else None,
                             [(run.output, run.exit_code) for run in used], report)
    if _holds(folder / "report.json", task.instance_id, digest):
        return str(rel)
    folder.mkdir(parents=True, exist_ok=True)
    nonce = new_nonce()
    (folder / "patch.diff").write_text(first.patch or "")
    (folder / "eval.sh").write_text(script)
    log = "".join(marked(nonce, i, run.output, run.exit_code) for i, run in enumerate(used, 1))
    if m.applied:
        log = f"{m.applied.output}\n{log}"
    (folder / "test_output.txt").write_text(log)
    report.update(nonce=nonce, evidence_digest=digest)
    (folder / "report.json").write_text(json.dumps({task.instance_id: report}, indent=2) + "\n")
    return str(rel)


def _content_digest(patch: str, script: str, applied: str | None, runs: list[tuple[str, int | None]], report: dict) -> str:
    """Pure: a digest of what a folder holds, without the nonce (new on every write, so it would make
    every call's evidence look new)."""
    h = hashlib.sha256()
    for part in (patch, script, json.dumps(applied), json.dumps(report, sort_keys=True)):
        h.update(part.encode())
        h.update(b"\0")
    for output, exit_code in runs:
        h.update(f"{exit_code}\0".encode())
        h.update(output.encode())
        h.update(b"\0")
    return h.hexdigest()


def _holds(report_file: Path, instance_id: str, digest: str) -> bool:
    """Whether ``report_file`` is the report of evidence whose digest is ``digest``."""
    try:
        old = json.loads(report_file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(old, dict) and (old.get(instance_id) or {}).get("evidence_digest") == digest
