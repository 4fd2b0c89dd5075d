"""Our trajectories in mini-swe-agent's format (``agent/trajectories.py``, ``monkeys export --format
mini-swe-agent``): the conversion keeps every message and fact, the files land where mini-swe-agent's
inspector finds them without k attempts colliding, and they read as that inspector reads them.

What the inspector reads is taken from SWE-agent/mini-swe-agent at commit
a83fcae82d2a08f0ee0c688f9d137b3566c097f8 (version 2.4.6): src/minisweagent/run/utilities/inspector.py
(``main``: ``rglob("*.traj.json")``; ``_load_current_trajectory``: a JSON object with ``messages``;
``_messages_to_steps``: a step starts at each ``assistant`` message or one with ``extra.actions``;
``update_content``: each message's ``role`` and its text through ``get_content_string``) and
src/minisweagent/models/utils/content_string.py (``content`` as a string, or ``tool_calls`` with
``function.arguments``). The top-level keys are those of ``DefaultAgent.serialize`` in
src/minisweagent/agents/default.py. ``read_as_the_inspector_does`` below restates those reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.trajectories import MINI_SWE_AGENT_FORMAT, export_mini_swe_agent, mini_swe_agent_path, to_mini_swe_agent
from harness.store import AttemptStatus, RunStore, StoredAttempt
from tests.scripted_server import ScriptedServer, bash, turn

TASK = "monkeys-suite__textkit-3"
PATCH = "diff --git a/src/textkit/text.py b/src/textkit/text.py\n--- a/src/textkit/text.py\n+++ b/src/textkit/text.py\n"


def document(index: int = 0, *, tools: bool = False) -> dict:
    """A trajectory document as ``Sampler._record`` writes it for a bash-scaffold attempt that ran one
    command, got one format error and submitted."""
    reply = ({"role": "assistant", "content": None, "t": 1.0, "tokens": 120, "tool_calls": ['{"command": "ls"}']}
             if tools else {"role": "assistant", "content": "THOUGHT: look.\n\n```bash\nls\n```\n", "t": 1.0,
                            "tokens": 120})
    return {
        "instance_id": TASK, "index": index, "run": "r1",
        "config": {"run": "r1", "k": 2, "scaffold": "bash", "model": {"name": "scripted"}},
        "fingerprint": {"scaffold": "bash"},
        "attempt": {"instance_id": TASK, "index": index, "seed": 7, "exit_reason": "submitted", "steps": 3,
                    "dollars": 0.00042, "usage": {"input_tokens": 300}, "error": "", "scaffold": "bash",
                    "trajectory": f"trajectories/{TASK}/{index}.json"},
        "patch": PATCH,
        "messages": [
            {"role": "system", "content": "You are a software engineer.", "t": 0.0},
            {"role": "user", "content": "Fix the issue.", "t": 0.0},
            reply,
            {"role": "user", "content": "<output>\nsrc\n</output>\n<exit_code>0</exit_code>", "t": 1.2,
             "command": "ls", "exit_code": 0, "end": "exited", "seconds": 0.05},
            {"role": "assistant", "content": "I think so.", "t": 2.0, "tokens": 130},
            {"role": "user", "content": "Your reply must contain exactly one fenced ```bash block", "t": 2.0},
            {"role": "assistant", "content": "```bash\nsubmit\n```", "t": 3.0, "tokens": 125},
        ],
    }


def read_as_the_inspector_does(out: Path) -> list[tuple[str, list[list[tuple[str, str]]]]]:
    """Each file the inspector would list under ``out``, with its steps as (ROLE, text) pairs: a
    restatement of inspector.py's and content_string.py's reads at the commit named above."""
    found = []
    for path in sorted(out.rglob("*.traj.json")):
        data = json.loads(path.read_text())
        assert isinstance(data, dict) and "messages" in data, path  # else "Unrecognized trajectory format"
        steps, current = [], []
        for message in data["messages"]:
            if message.get("extra", {}).get("actions") or message.get("role") == "assistant":
                steps.append(current)
                current = [message]
            else:
                current.append(message)
        if current:
            steps.append(current)
        shown = []
        for step in steps:
            page = []
            for message in step:
                texts = [message["content"]] if isinstance(message.get("content"), str) else []
                for call in message.get("tool_calls") or []:
                    arguments = json.loads(call["function"]["arguments"])
                    texts.append(f"```\n{arguments['command']}\n```")
                role = message.get("role") or message.get("type") or "unknown"
                page.append((role.upper(), "\n\n".join(t for t in texts if t)))
            shown.append(page)
        found.append((str(path.relative_to(out)), shown))
    return found


def test_every_message_is_kept_with_our_keys_under_extra_and_the_reply_names_its_command():
    converted = to_mini_swe_agent(document())
    assert converted["trajectory_format"] == MINI_SWE_AGENT_FORMAT == "mini-swe-agent-1.1"
    messages = converted["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user",
                                             "assistant", "exit"]
    assert [m["content"] for m in messages[:-1]] == [m["content"] for m in document()["messages"]]
    assert messages[2]["extra"] == {"t": 1.0, "tokens": 120, "actions": [{"command": "ls"}]}
    assert messages[3]["extra"] == {"t": 1.2, "command": "ls", "exit_code": 0, "returncode": 0, "end": "exited",
                                    "seconds": 0.05}
    assert "actions" not in messages[4]["extra"]  # the format error ran nothing
    # "submit" ends the attempt without an observation, so it names no command either.
    assert "actions" not in messages[6]["extra"]
    assert messages[-1] == {"role": "exit", "content": "submitted",
                            "extra": {"exit_status": "submitted", "submission": PATCH}}


def test_info_holds_mini_swe_agents_keys_and_the_attempts_record():
    info = to_mini_swe_agent(document(1))["info"]
    assert info["exit_status"] == "submitted" and info["submission"] == PATCH
    assert info["model_stats"] == {"instance_cost": 0.00042, "api_calls": 3}
    assert info["config"]["agent_type"] == "monkeys.bash" and info["config"]["k"] == 2
    assert "mini_version" in info
    assert info["monkeys"]["index"] == 1 and info["monkeys"]["attempt"]["seed"] == 7


def test_a_tool_call_reply_shows_its_command_in_the_inspector(tmp_path):
    converted = to_mini_swe_agent(document(tools=True))
    reply = converted["messages"][2]
    assert reply["tool_calls"] == [{"type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]
    assert "tool_calls" not in reply["extra"]
    path = mini_swe_agent_path(tmp_path, 0, TASK)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(converted))
    (_, steps), = read_as_the_inspector_does(tmp_path)
    assert steps[1][0] == ("ASSISTANT", "```\nls\n```")


def test_an_attempt_that_ended_without_a_patch_exits_with_an_empty_submission():
    doc = document()
    doc["patch"], doc["attempt"]["exit_reason"] = None, "step_limit"
    converted = to_mini_swe_agent(doc)
    assert converted["info"]["submission"] == "" and converted["info"]["exit_status"] == "step_limit"
    assert converted["messages"][-1]["extra"] == {"exit_status": "step_limit", "submission": ""}


def _run_with_two_attempts(root: Path, *, drop: int | None = None) -> RunStore:
    store = RunStore("r1", root=root)
    for index in (0, 1):
        rel = f"trajectories/{TASK}/{index}.json"
        if index != drop:
            (store.dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (store.dir / rel).write_text(json.dumps(document(index)))
        store.save_attempt(StoredAttempt(TASK, index, "scripted", PATCH, AttemptStatus.DONE.value,
                                         {"trajectory": rel, "exit_reason": "submitted"}))
    return store


def test_k_attempts_at_a_task_land_in_one_folder_per_sample_index_and_the_inspector_lists_each(tmp_path):
    store = _run_with_two_attempts(tmp_path / "runs")
    out = tmp_path / "out"
    exported = export_mini_swe_agent(store.dir, store.attempts(AttemptStatus.DONE), out)
    store.close()
    assert exported.missing == []
    assert sorted(str(p.relative_to(out)) for p in exported.written) == [
        f"0/{TASK}/{TASK}.traj.json", f"1/{TASK}/{TASK}.traj.json"]
    for index in (0, 1):
        preds = json.loads((out / str(index) / "preds.json").read_text())
        assert preds == {TASK: {"model_name_or_path": f"scripted__s{index}", "instance_id": TASK, "model_patch": PATCH}}
    listed = read_as_the_inspector_does(out)
    assert [name for name, _ in listed] == [f"0/{TASK}/{TASK}.traj.json", f"1/{TASK}/{TASK}.traj.json"]
    steps = listed[0][1]
    # The prompt is the first page; each reply starts one, its observation beside it; the exit last.
    assert [[role for role, _ in page] for page in steps] == [
        ["SYSTEM", "USER"], ["ASSISTANT", "USER"], ["ASSISTANT", "USER"], ["ASSISTANT", "EXIT"]]
    assert steps[1][1][1].startswith("<output>\nsrc") and steps[3][1] == ("EXIT", "submitted")


def test_a_missing_trajectory_file_is_named_and_the_others_still_written(tmp_path):
    store = _run_with_two_attempts(tmp_path / "runs", drop=1)
    exported = export_mini_swe_agent(store.dir, store.attempts(AttemptStatus.DONE), tmp_path / "out")
    store.close()
    assert exported.missing == [store.dir / f"trajectories/{TASK}/1.json"]
    assert [p.parent.parent.name for p in exported.written] == ["0"]


@pytest.mark.docker
def test_monkeys_export_writes_a_bash_runs_attempts_for_the_inspector_and_preds_stay_the_default(tmp_path,
                                                                                                 built_suite):
    env = {**os.environ, "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs")}
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."scripted"]\ninput = 1.0\noutput = 2.0\n')
    steps = [bash("echo hi > src/textkit/extra.txt && echo OK"), bash("submit")]

    def monkeys(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monkeys", *args], capture_output=True, text=True, timeout=600,
                              env=env)

    with ScriptedServer(lambda body: steps[turn(body)]) as server:
        sampled = monkeys("sample", "--base-url", server.base_url, "--model", "scripted", "--scaffold", "bash",
                          "--endpoint", "chat", "--prices", str(prices), "--backoff", "0.01", "--run", "r",
                          "--instances", TASK, "-k", "2", "--workers", "2")
    assert sampled.returncode == 0, sampled.stderr

    out = tmp_path / "mini"
    done = monkeys("export", "r", "--out", str(out), "--format", "mini-swe-agent")
    assert done.returncode == 0, done.stderr
    listed = read_as_the_inspector_does(out)
    assert [name for name, _ in listed] == [f"{i}/{TASK}/{TASK}.traj.json" for i in (0, 1)]
    for name, steps_shown in listed:
        data = json.loads((out / name).read_text())
        assert data["info"]["exit_status"] == "submitted" and "b/src/textkit/extra.txt" in data["info"]["submission"]
        assert data["messages"][2]["extra"]["actions"] == [{"command": "echo hi > src/textkit/extra.txt && echo OK"}]
        assert steps_shown[1][1][0] == "USER" and "OK" in steps_shown[1][1][1]
    assert not list(out.glob("preds_s*.jsonl"))

    preds = tmp_path / "preds"
    done = monkeys("export", "r", "--out", str(preds))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in preds.glob("preds_s*.jsonl")) == ["preds_s0.jsonl", "preds_s1.jsonl"]
    assert not list(preds.rglob("*.traj.json"))
