"""Our trajectory files in other tools' formats, so people can open them in the viewers they know.

The sampler writes one file per attempt, ``runs/<run>/trajectories/<instance_id>/<index>.json``
(``trajectory_path``; one folder per task, so at the paper's scale of 250 attempts x 300 tasks no
folder holds more than 300 entries; readers follow the path each attempt's record names):
``{"instance_id", "index", "run", "config", "fingerprint", "attempt", "patch", "messages"}``, each
message ``{"role", "content", "t", ...}`` with the scaffold's extra keys (``tokens`` and ``tool_calls``
on a reply; ``command``, ``exit_code``, ``end``, ``seconds`` on a command's observation).

mini-swe-agent's format (``trajectory_format`` "mini-swe-agent-1.1", as ``DefaultAgent.serialize``
writes it in src/minisweagent/agents/default.py, SWE-agent/mini-swe-agent at commit
a83fcae82d2a08f0ee0c688f9d137b3566c097f8, version 2.4.6) is ``{"info": {"model_stats": {...}, "config":
{...}, "mini_version", "exit_status", "submission"}, "messages": [...], "trajectory_format"}``; each
message keeps ``role`` and ``content`` and carries everything else under ``extra``: a reply's
``extra.actions`` lists the commands it asked for, and the last message has role ``exit`` with
``extra.exit_status`` and ``extra.submission``. Its batch runs write
``<out>/<instance_id>/<instance_id>.traj.json``, which its inspector (``mini-extra inspector DIR``)
finds by ``rglob("*.traj.json")``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.scaffolds.bash import BASH_TOOL
from harness.store import StoredAttempt

MINI_SWE_AGENT_FORMAT = "mini-swe-agent-1.1"
"""The ``trajectory_format`` value mini-swe-agent 2.x writes (default.py at the commit above)."""

_KEPT = ("role", "content")

TRAJECTORIES_DIR = "trajectories"


def trajectory_path(instance_id: str, index: int) -> Path:
    """Where an attempt's trajectory file lies, relative to its run's folder: sharded by task, so a
    folder holds one task's k attempts and ``trajectories/`` one folder per task, never tens of
    thousands of files at once."""
    return Path(TRAJECTORIES_DIR) / instance_id / f"{index}.json"


def write_trajectory(run_dir: Path, instance_id: str, index: int, document: dict[str, Any]) -> Path:
    """Write one attempt's trajectory document whole (through a temporary file, so a crash never
    leaves half a file under the real name); returns its path relative to ``run_dir``, which the
    attempt's record keeps as ``details["trajectory"]``."""
    rel = trajectory_path(instance_id, index)
    path = run_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str))
    os.replace(tmp, path)
    return rel


def trajectory_file(run_dir: Path, attempt: StoredAttempt) -> Path:
    """An attempt's trajectory file: the path its record names (whatever layout wrote it), else where
    ``trajectory_path`` puts it."""
    return run_dir / attempt.details.get("trajectory", trajectory_path(attempt.instance_id, attempt.index))


def read_trajectory(run_dir: Path, attempt: StoredAttempt) -> dict[str, Any] | None:
    """An attempt's trajectory document, or None when its file is not in the run."""
    path = trajectory_file(run_dir, attempt)
    return json.loads(path.read_text()) if path.is_file() else None


def to_mini_swe_agent(document: dict[str, Any]) -> dict[str, Any]:
    """One of our trajectory documents (as the sampler writes it) in mini-swe-agent's trajectory format.

    Nothing is dropped: our per-message keys move under ``extra`` (with mini-swe-agent's names added
    where it has one: ``actions`` on a reply, ``returncode`` on an observation), and the attempt's
    record, run and sample index go under ``info.monkeys``. The exit status is our exit reason
    (``submitted``, ``step_limit``, ...), the submission the attempt's patch.
    """
    attempt = document.get("attempt") or {}
    exit_status = attempt.get("exit_reason", "")
    patch = document.get("patch") or ""
    ours = document.get("messages") or []
    messages = []
    for i, message in enumerate(ours):
        extra = {k: v for k, v in message.items() if k not in _KEPT and k != "tool_calls"}
        converted: dict[str, Any] = {"role": message.get("role", ""), "content": message.get("content")}
        if message.get("role") == "assistant":
            # The command a reply asked for is recorded on the observation that follows it.
            following = ours[i + 1] if i + 1 < len(ours) else {}
            if "command" in following:
                extra["actions"] = [{"command": following["command"]}]
            if message.get("tool_calls"):
                # Our file keeps each call's arguments; the only tool a scaffold offers is bash.
                converted["tool_calls"] = [{"type": "function", "function": {"name": BASH_TOOL["function"]["name"],
                                                                             "arguments": arguments}}
                                           for arguments in message["tool_calls"]]
        if "exit_code" in message:
            extra["returncode"] = message["exit_code"]
        converted["extra"] = extra
        messages.append(converted)
    messages.append({"role": "exit", "content": exit_status,
                     "extra": {"exit_status": exit_status, "submission": patch}})
    config = document.get("config") or {}
    return {
        "info": {
            "model_stats": {"instance_cost": attempt.get("dollars", 0.0), "api_calls": attempt.get("steps", 0)},
            "config": {**config, "agent_type": f"monkeys.{config.get('scaffold') or attempt.get('scaffold', '')}"},
            # Not written by mini-swe-agent, so no version of it to name; the key stays for readers
            # that index it.
            "mini_version": None,
            "exit_status": exit_status,
            "submission": patch,
            "monkeys": {"run": document.get("run"), "index": document.get("index"), "attempt": attempt,
                        "fingerprint": document.get("fingerprint")},
        },
        "messages": messages,
        "trajectory_format": MINI_SWE_AGENT_FORMAT,
        "instance_id": document.get("instance_id"),
    }


def mini_swe_agent_path(out: Path, index: int, instance_id: str) -> Path:
    """Where an attempt's mini-swe-agent file goes: one folder per sample index, each laid out as a
    mini-swe-agent batch run (``<index>/<instance_id>/<instance_id>.traj.json``), so k attempts at a
    task never collide."""
    return out / str(index) / instance_id / f"{instance_id}.traj.json"


@dataclass
class MiniSweAgentExport:
    """What an export wrote, and the attempts whose trajectory file was not in the run."""

    written: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)


def export_mini_swe_agent(run_dir: Path, attempts: Sequence[StoredAttempt], out: Path) -> MiniSweAgentExport:
    """Each attempt's trajectory (``run_dir`` / its ``details["trajectory"]``) as a mini-swe-agent file
    under ``out`` (see ``mini_swe_agent_path``), and per sample index a ``preds.json`` as
    mini-swe-agent's batch runs write it (``{instance_id: {model_name_or_path, instance_id,
    model_patch}}``), model ``<model>__s<index>`` as in our preds files."""
    result = MiniSweAgentExport()
    preds: dict[int, dict[str, dict]] = {}
    for a in attempts:
        document = read_trajectory(run_dir, a)
        if document is None:
            result.missing.append(trajectory_file(run_dir, a))
            continue
        target = mini_swe_agent_path(out, a.index, a.instance_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(to_mini_swe_agent(document), indent=2, default=str))
        result.written.append(target)
        preds.setdefault(a.index, {})[a.instance_id] = {
            "model_name_or_path": f"{a.model}__s{a.index}", "instance_id": a.instance_id, "model_patch": a.patch or ""}
    for index, rows in sorted(preds.items()):
        (out / str(index) / "preds.json").write_text(json.dumps(rows, indent=2))
    return result
