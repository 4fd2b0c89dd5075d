"""The one place that knows how a task's tests are run: a pure function from a task and a candidate
patch to the script a container runs, and from that script's output back to per-run status maps.

The script applies the candidate patch, puts the test files back to base_commit and applies the
task's test patch (so a candidate that edits tests cannot tamper with them), then runs the test
command, once or several times. Output is read only between markers carrying a per-evaluation
random nonce, which the code under test cannot guess.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass

from unidiff import PatchSet

from harness.parsers import StatusMap, get_parser
from harness.tasks import Task

CANDIDATE = "candidate.diff"
TEST_PATCH = "test.diff"


@dataclass(frozen=True)
class TestRun:
    """One run of the test command: its statuses and exit code (None if the end marker never came)."""

    __test__ = False

    statuses: StatusMap
    exit_code: int | None


def patched_test_files(task: Task) -> tuple[list[str], list[str]]:
    """(files the test patch changes that exist at base_commit, files it creates)."""
    existing, created = [], []
    for patched in PatchSet(task.test_patch):
        path = patched.path
        (created if patched.is_added_file else existing).append(path)
    return existing, created


def new_nonce() -> str:
    return secrets.token_hex(8)


def build_script(task: Task, *, nonce: str, runs: int = 1, with_candidate: bool = True) -> str:
    """The bash script for one evaluation; the patches travel beside it as files under /monkeys/."""
    if not task.test_cmd:
        raise ValueError(f"{task.instance_id}: row has no test_cmd (eval scripts for legacy rows come with the SWE-bench work)")
    existing, created = patched_test_files(task)
    files = " ".join(shlex.quote(f) for f in existing + created)
    lines = [
        "#!/bin/bash",
        "set -uo pipefail",
        "source /opt/miniconda3/bin/activate && conda activate testbed",
        "cd /testbed",
    ]
    if with_candidate:
        lines += [
            f"if [ -s /monkeys/{CANDIDATE} ]; then",
            f"  git apply -v /monkeys/{CANDIDATE} >/dev/null 2>&1 || {{ echo '>>>>> Patch Apply Failed {nonce}'; exit 3; }}",
            "fi",
        ]
    if existing:
        lines.append(f"git checkout -q {task.base_commit} -- {' '.join(shlex.quote(f) for f in existing)}")
    if created:
        lines.append(f"rm -f {' '.join(shlex.quote(f) for f in created)}")
    lines += [
        f"git apply /monkeys/{TEST_PATCH} || {{ echo '>>>>> Test Patch Failed {nonce}'; exit 4; }}",
        f"for i in $(seq 1 {int(runs)}); do",
        f"  echo \">>>>> Start Test Output {nonce} $i\"",
        f"  {task.test_cmd} {files}",
        f"  echo \">>>>> End Test Output {nonce} $i $?\"",
        "done",
    ]
    return "\n".join(lines) + "\n"


def script_files(task: Task, patch: str | None) -> dict[str, str]:
    """The files an evaluation's script reads."""
    return {CANDIDATE: patch or "", TEST_PATCH: task.test_patch}


def parse_runs(task: Task, output: str, nonce: str) -> list[TestRun]:
    """Per-run status maps from the script's output, reading only between the nonce markers."""
    parse = get_parser(task.log_parser)
    pattern = re.compile(
        rf"^>>>>> Start Test Output {nonce} (\d+)$\n(.*?)^>>>>> End Test Output {nonce} \1 (\d+)$",
        re.MULTILINE | re.DOTALL,
    )
    return [TestRun(parse(m.group(2)), int(m.group(3))) for m in pattern.finditer(output)]
