"""Attempts end to end against a scripted OpenAI-compatible server on loopback and the real Docker
engine: the scaffolds fix a bundled task and the harness resolves their patches; a hanging, forking
or memory-filling command costs only itself or its attempt; no host secret enters a container."""

from __future__ import annotations

import re
import threading

import pytest

from agent.attempt import AttemptLimits, ExitReason, run_attempt
from agent.model import Endpoint, Model, ModelConfig
from agent.prompts import Templates
from agent.scaffolds import BashScaffold, EditScaffold
from harness.containers import ContainerRuntime
from harness.evaluate import evaluate
from harness.image_names import image_name
from harness.predictions import Prediction
from harness.scores.prices import TokenPrice
from harness.store import RunStore
from tests.scripted_server import ScriptedServer, bash, last_user_text, turn

pytestmark = pytest.mark.docker

TASK = "monkeys-suite__textkit-3"
PRICE = TokenPrice(input=1.0, output=2.0, source="test")


@pytest.fixture
def task(bundled_tasks, built_suite):
    return next(t for t in bundled_tasks if t.instance_id == TASK)


@pytest.fixture
def runtime(docker_client):
    return ContainerRuntime(docker_client, "test-agent")


def attempt(runtime, task, server, scaffold, limits=AttemptLimits(), index=0):
    model = Model(ModelConfig("scripted", base_url=server.base_url, backoff_initial=0.01, max_tokens=256))
    return run_attempt(runtime=runtime, image=image_name(task), task=task, index=index, seed=7, model=model,
                       scaffold=scaffold, templates=Templates.load(scaffold.name), limits=limits, price=PRICE,
                       share=1.0)


def resolved(make_evaluator, task, patch, tmp_path) -> bool:
    store = RunStore("agent-check", root=tmp_path)
    result = evaluate(make_evaluator(), [task], [Prediction(task.instance_id, "scripted", patch)], store)
    store.close()
    (record,) = result.records
    return record.resolved_guarded


def test_bash_agent_fixes_a_task_and_its_patch_resolves(runtime, task, make_evaluator, tmp_path):
    steps = [
        "grep -n 'len(suffix) - 1' src/textkit/text.py",
        f"cat > /tmp/fix.diff <<'EOF'\n{task.patch}EOF\ngit apply /tmp/fix.diff && git diff --stat",
        "cd src && python -c \"from textkit import truncate; print(repr(truncate('The quick brown fox', 10)))\"",
        "pwd && printf 'EXTRA = 1\\n' > textkit/extra.py && mkdir -p __pycache__ && touch __pycache__/x.pyc",
        "submit",
    ]
    with ScriptedServer(lambda body: bash(steps[turn(body)])) as server:
        result = attempt(runtime, task, server, BashScaffold())
        observations = [last_user_text(r) for r in server.requests[1:]]
    assert result.exit_reason is ExitReason.SUBMITTED, result.error
    assert result.steps == 5 and result.usage.output_tokens == 100
    assert "return text[: width - len(suffix) - 1] + suffix" in observations[0]
    assert "'The qui...'" in observations[2]
    assert "/testbed/src" in observations[3]  # the shell kept the directory
    assert "+EXTRA = 1" in result.patch and "b/src/textkit/extra.py" in result.patch  # new files are kept
    assert "__pycache__" not in result.patch
    assert result.dollars == pytest.approx((5 * 100 * 1.0 + 5 * 20 * 2.0) / 1e6)
    assert resolved(make_evaluator, task, result.patch, tmp_path)


def test_edit_scaffold_fixes_a_task_with_chat_and_with_completions(runtime, task, make_evaluator, tmp_path):
    block = ("src/textkit/text.py\n<<<<<<< SEARCH\n    return text[: width - len(suffix) - 1] + suffix\n"
             "=======\n    return text[: width - len(suffix)] + suffix\n>>>>>>> REPLACE\n")
    with ScriptedServer(lambda body: "Here is the fix:\n\n" + block) as server:
        chat = attempt(runtime, task, server, EditScaffold(endpoint=Endpoint.CHAT))
        prompt = server.requests[0]["messages"][0]["content"]
    assert "def truncate" in prompt and "src/textkit/text.py" in prompt  # localised from the issue
    assert chat.exit_reason is ExitReason.ANSWERED and chat.steps == 1

    body = ('    """Shorten *text* to at most *width* characters, ending with *suffix*."""\n'
            '    if width < len(suffix):\n        raise ValueError("width must be at least len(suffix)")\n'
            '    if len(text) <= width:\n        return text\n    return text[: width - len(suffix)] + suffix\n'
            '\n\ndef unrelated():\n    pass\n')
    with ScriptedServer(lambda request: body) as server:
        completion = attempt(runtime, task, server, EditScaffold(endpoint=Endpoint.COMPLETIONS))
        prompt = server.requests[0]["prompt"]
    assert prompt.rstrip().endswith('def truncate(text: str, width: int, suffix: str = "...") -> str:')
    assert "# Buggy version:" in prompt and "return text[: width - len(suffix) - 1] + suffix" in prompt
    assert completion.exit_reason is ExitReason.ANSWERED
    assert "unrelated" not in completion.patch  # the completion is cut where the body ends
    assert resolved(make_evaluator, task, chat.patch, tmp_path / "chat")
    assert resolved(make_evaluator, task, completion.patch, tmp_path / "completion")


def test_a_command_that_never_ends_times_out_the_model_is_told_and_the_attempt_goes_on(runtime, task):
    steps = ["sleep 1000", "cat; read x; echo alive", "submit"]
    with ScriptedServer(lambda body: bash(steps[turn(body)])) as server:
        result = attempt(runtime, task, server, BashScaffold(), AttemptLimits(command_timeout=2))
        observations = [last_user_text(r) for r in server.requests[1:]]
    assert result.exit_reason is ExitReason.SUBMITTED
    assert "stopped after 2 seconds" in observations[0]
    assert "alive" in observations[1] and "<exit_code>0</exit_code>" in observations[1]
    assert result.wall_seconds < 60


def test_env_in_an_attempts_container_shows_no_host_secret(runtime, task, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret-123")
    monkeypatch.setenv("MONKEYS_TEST_TOKEN", "hunter2-host")
    steps = ["env; cat /proc/1/environ | tr '\\0' '\\n'", "submit"]
    with ScriptedServer(lambda body: bash(steps[turn(body)])) as server:
        result = attempt(runtime, task, server, BashScaffold())
        shown = last_user_text(server.requests[1])
    assert result.exit_reason is ExitReason.SUBMITTED
    assert "PATH=" in shown  # the command did run
    for secret in ("sk-host-secret-123", "OPENAI_API_KEY", "hunter2-host", "MONKEYS_TEST_TOKEN"):
        assert secret not in shown


def test_fork_bomb_and_memory_hog_end_only_their_own_attempt(runtime, task, docker_client):
    scripts = {
        "fork": ["bash -c ':(){ :|:& };:'", "echo after-fork", "submit"],
        "memory": ["python -c \"x = [bytearray(1 << 30) for _ in range(64)]\"", "echo after-memory", "submit"],
        "normal": ["sleep 3; echo normal-1", "sleep 3; echo normal-2", "submit"],
    }

    def reply(body):
        first = body["messages"][1]["content"]
        name = re.search(r"ATTEMPT=(\w+)", first).group(1)
        return bash(scripts[name][turn(body)])

    results = {}
    with ScriptedServer(reply) as server:
        def one(name):
            tagged = type(task)(**{**task.__dict__, "problem_statement": task.problem_statement + f"\nATTEMPT={name}"})
            results[name] = attempt(runtime, tagged, server, BashScaffold(), AttemptLimits(command_timeout=8))

        threads = [threading.Thread(target=one, args=(n,)) for n in scripts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    assert results["normal"].exit_reason is ExitReason.SUBMITTED
    for name in ("fork", "memory"):
        # Its command was stopped and the attempt went on, or its container broke and only it ended;
        # never an infrastructure error, which would be redone forever.
        assert results[name].exit_reason in (ExitReason.SUBMITTED, ExitReason.ENVIRONMENT_BROKEN), results[name]
        assert results[name].patch is not None
    mine = [c for c in docker_client.containers.list(all=True, filters={"label": f"monkeys.owner={runtime.owner}"})]
    assert mine == []


def test_bash_agent_with_tool_calls_and_edit_with_a_rewritten_function(runtime, task, make_evaluator, tmp_path):
    steps = [f"cat > /tmp/fix.diff <<'EOF'\n{task.patch}EOF\ngit apply /tmp/fix.diff && echo applied", "submit"]

    def tool_reply(body):
        return {"name": "bash", "arguments": {"command": steps[turn(body)]}}

    with ScriptedServer(lambda body: "unused", tool_reply=tool_reply) as server:
        tools = attempt(runtime, task, server, BashScaffold(tools=True))
        second = server.requests[1]
    assert tools.exit_reason is ExitReason.SUBMITTED
    assert second["tools"][0]["function"]["name"] == "bash"
    answer = second["messages"][-1]
    assert answer["role"] == "tool" and answer["tool_call_id"] == "call_1" and "applied" in answer["content"]

    rewritten = ('I rewrote it:\n```python\ndef truncate(text: str, width: int, suffix: str = "...") -> str:\n'
                 '    if width < len(suffix):\n        raise ValueError("width must be at least len(suffix)")\n'
                 '    if len(text) <= width:\n        return text\n    return text[: width - len(suffix)] + suffix\n```\n')
    with ScriptedServer(lambda body: rewritten) as server:
        edit = attempt(runtime, task, server, EditScaffold(endpoint=Endpoint.CHAT))
    assert edit.exit_reason is ExitReason.ANSWERED
    assert resolved(make_evaluator, task, tools.patch, tmp_path / "tools")
    assert resolved(make_evaluator, task, edit.patch, tmp_path / "rewritten")
