"""One bad request ends one attempt, never the run; what every request would hit stops the run before
its first attempt; a reasoning model's request shape is adapted once and recorded. The sampler runs
against a scripted OpenAI-compatible server on loopback (real HTTP, the real ``openai`` client) that
answers chosen requests with the errors real servers give; the first test makes real attempts with
the bash scaffold in containers from the bundled images."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import agent.sampler as sampler_module
from agent.attempt import AttemptLimits, AttemptOutcome, ExitReason, run_attempt
from agent.model import Model, ModelConfig, ModelConfigError
from agent.prompts import Templates
from agent.sampler import CONFIG_KEY, FINGERPRINT_KEY, SampleConfig, Sampler, attempt_seed
from agent.scaffolds import BashScaffold
from harness.containers import ContainerRuntime
from harness.image_names import image_name
from harness.scores.prices import TokenPrice, price_dict, token_cost
from harness.store import AttemptStatus, RunStore
from tests.scripted_server import ScriptedServer, bash, refused, turn

PRICE = TokenPrice(input=1.0, output=2.0, source="test")
FILTERED = refused(400, "The response was filtered due to the prompt triggering Azure OpenAI's content management "
                        "policy. Please modify your prompt and retry.", code="content_filter", param="prompt")
TOO_LONG = (400, {"error": {"code": 400, "message": "request (9000 tokens) exceeds the available context size "
                                                    "(8192 tokens), try increasing it",
                            "type": "exceed_context_size_error", "n_prompt_tokens": 9000, "n_ctx": 8192}})
NO_CHOICES = (200, {"id": "x", "object": "chat.completion", "created": 0, "model": "scripted", "choices": [],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10}})


def sampler_for(tmp_path, server, tasks, *, k, scaffold="bash", runtime=None, images=None, model="scripted",
                temperature=0.8, run="errors"):
    store = RunStore(run, root=tmp_path)
    model_config = ModelConfig(model, base_url=server.base_url, backoff_initial=0.01, retries=2,
                               temperature=temperature, max_tokens=256)
    config = SampleConfig(run=run, k=k, scaffold=scaffold, model={**model_config.sampling(), "endpoint": "chat"},
                          limits=AttemptLimits(steps=6), templates_digest="t", workers=2, price=price_dict(PRICE))
    images = {t.instance_id: image_name(t) for t in tasks} if images is None else images
    sampler = Sampler(config, tasks, images, runtime=runtime, model=None, scaffold=BashScaffold(),
                      templates=Templates.load("bash"), price=PRICE, store=store,
                      full_config={"model": config.model, "k": k})
    sampler.open_run()
    sampler.model = Model(model_config)
    return sampler, store


def sample(tmp_path, server, tasks, **kw):
    sampler, store = sampler_for(tmp_path, server, tasks, **kw)
    try:
        return sampler.run()
    finally:
        sampler.close()
        store.close()


@pytest.mark.docker
def test_refused_requests_end_their_attempts_only_and_a_resume_redoes_none(tmp_path, bundled_tasks, built_suite,
                                                                           docker_client):
    a, b = bundled_tasks[:2]
    seeds = {(t.instance_id, i): attempt_seed(0, t.instance_id, i) for t in (a, b) for i in range(2)}
    # Which request of which attempt fails, by the seed the bash scaffold sends (the attempt's seed plus
    # the calls it made): a's attempt 0 runs one command, then its second request is filtered; b's
    # attempt 0 is over the context at once; a's attempt 1 gets an answer without choices.
    script = {seeds[(a.instance_id, 0)] + 1: FILTERED, seeds[(b.instance_id, 0)]: TOO_LONG,
              seeds[(a.instance_id, 1)]: NO_CHOICES}
    steps = ["printf 'work kept\\n' > notes.txt", "submit"]

    with ScriptedServer(lambda body: bash(steps[min(turn(body), 1)]),
                        inject=lambda body, path: script.get(body.get("seed"))) as server:
        runtime = ContainerRuntime(docker_client, "test-model-errors")
        result = sample(tmp_path, server, [a, b], k=2, runtime=runtime)
        assert (result.done, result.infra_errors, result.scheduled) == (4, 0, 4)
        calls = server.calls
        # Resuming finds every attempt finished: none redone, not even a preflight is sent.
        again = sample(tmp_path, server, [a, b], k=2, runtime=runtime)
        assert (again.scheduled, again.skipped_existing, server.calls) == (0, 4, calls)

    store = RunStore("errors", root=tmp_path)
    try:
        rows = {(r.instance_id, r.index): r for r in store.attempts()}
    finally:
        store.close()
    assert {key: (r.status, r.details["exit_reason"]) for key, r in rows.items()} == {
        (a.instance_id, 0): ("done", ExitReason.CONTENT_FILTER.value),
        (b.instance_id, 0): ("done", ExitReason.CONTEXT_LIMIT.value),
        (a.instance_id, 1): ("done", ExitReason.MODEL_ERROR.value),
        (b.instance_id, 1): ("done", ExitReason.SUBMITTED.value),
    }
    filtered = rows[(a.instance_id, 0)]
    assert "content management policy" in filtered.details["error"]
    assert "+work kept" in filtered.patch and "b/notes.txt" in filtered.patch  # judged with the work it made
    assert filtered.details["steps"] == 1
    trajectory = json.loads((tmp_path / "errors" / filtered.details["trajectory"]).read_text())
    assert trajectory["messages"][-1]["role"] == "system"
    assert trajectory["messages"][-1]["content"].startswith("attempt ended: content_filter: ")
    assert "exceeds the available context size" in rows[(b.instance_id, 0)].details["error"]
    assert "without any choice" in rows[(a.instance_id, 1)].details["error"]
    assert rows[(a.instance_id, 1)].details["usage"]["input_tokens"] == 10  # the empty answer's tokens count


def one_call_attempt(*, model, task, index, seed, price, **_) -> AttemptOutcome:
    """An attempt that is only its model call (the container part is what the test above covers)."""
    reply = model.chat([{"role": "user", "content": task.problem_statement[:200]}], seed=seed)
    return AttemptOutcome(task.instance_id, index, seed, ExitReason.ANSWERED, "diff --git a/x b/x\n", reply.usage,
                          token_cost(reply.usage, price), 1, reply.retries, 0.01, reply.seconds, 0.0)


@pytest.fixture
def no_containers(monkeypatch):
    monkeypatch.setattr(sampler_module, "run_attempt", one_call_attempt)


def test_a_bad_key_stops_the_run_before_its_first_attempt_and_a_fixed_call_goes_on(tmp_path, bundled_tasks,
                                                                                    no_containers):
    tasks = bundled_tasks[:2]
    bad_key = refused(401, "Incorrect API key provided: sk-abc. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.", code="invalid_api_key")
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: bad_key) as server:
        with pytest.raises(ModelConfigError) as stopped:
            sample(tmp_path, server, tasks, k=2, images={t.instance_id: "image" for t in tasks})
        assert server.calls == 1 and server.every_request[0]["max_tokens"] == 1
    assert "refused the key in $OPENAI_API_KEY" in str(stopped.value) and "--api-key-env" in str(stopped.value)
    store = RunStore("errors", root=tmp_path)
    try:
        assert store.attempts() == [] and store.attempt_history() == []
    finally:
        store.close()
    # A stopped run holds nothing made: the next call, with a setting changed, is not refused for it.
    with ScriptedServer(lambda body: "ok") as server:
        result = sample(tmp_path, server, tasks, k=2, images={t.instance_id: "image" for t in tasks},
                        temperature=0.5)
        assert result.done == 4 and server.calls == 5


def test_a_model_refusing_temperature_gets_a_run_without_it_recorded_and_kept_on_resume(tmp_path, bundled_tasks,
                                                                                       no_containers):
    tasks = bundled_tasks[:2]
    images = {t.instance_id: "image" for t in tasks}

    def no_temperature(body, path):
        if "temperature" in body:
            return refused(400, "Unsupported parameter: 'temperature' is not supported with this model.",
                           code="unsupported_parameter", param="temperature")
        return None

    with ScriptedServer(lambda body: "ok", model="thinker", inject=no_temperature) as server:
        result = sample(tmp_path, server, tasks, k=1, images=images, model="thinker")
        assert result.done == 2 and server.calls == 2 + 2  # refused preflight, adapted preflight, 2 attempts
        assert all("temperature" not in body for body in server.every_request[1:])
        # A resume starts from the recorded shape: one preflight, nothing refused.
        more = sample(tmp_path, server, tasks, k=2, images=images, model="thinker")
        assert more.done == 2 and server.calls == 4 + 1 + 2
        assert all("temperature" not in body for body in server.every_request[4:])
    store = RunStore("errors", root=tmp_path)
    try:
        request = store.meta(FINGERPRINT_KEY)["model"]["request"]
        config = store.meta(CONFIG_KEY)
        assert [a.status for a in store.attempts()] == [AttemptStatus.DONE.value] * 4
        assert [a.details["temperature"] for a in store.attempts()] == [None] * 4  # not sent, so not recorded
    finally:
        store.close()
    assert request == {"sent": {"top_p": 1.0, "max_tokens": 256}, "dropped": ["temperature"],
                       "why": "the server refused temperature at preflight"}
    assert config["model"]["request"] == request


def test_a_resume_keeps_the_runs_request_shape_and_refuses_a_server_that_forces_another(tmp_path, bundled_tasks,
                                                                                         no_containers):
    tasks = bundled_tasks[:1]
    images = {tasks[0].instance_id: "image"}
    refusing = lambda body, path: (refused(400, "Unsupported parameter: 'temperature' is not supported with "  # noqa: E731
                                                "this model.", param="temperature") if "temperature" in body else None)
    with ScriptedServer(lambda body: "ok", inject=refusing) as server:
        assert sample(tmp_path, server, tasks, k=1, images=images).done == 1
    # A server under the same name that would take temperature: the run goes on as it was made.
    with ScriptedServer(lambda body: "ok") as server:
        assert sample(tmp_path, server, tasks, k=2, images=images).done == 1
        assert server.calls == 2 and all("temperature" not in body for body in server.every_request)
    # A run made with temperature, then a server that refuses it: its attempts would mix; refused.
    with ScriptedServer(lambda body: "ok") as server:
        assert sample(tmp_path, server, tasks, k=1, images=images, run="plain").done == 1
    with ScriptedServer(lambda body: "ok", inject=refusing) as server:
        with pytest.raises(sampler_module.FingerprintMismatch, match="model.request"):
            sample(tmp_path, server, tasks, k=2, images=images, run="plain")
        assert server.calls == 2  # the preflight and its adapted retry, no attempt


@pytest.mark.docker
def test_replies_cut_at_max_tokens_before_a_command_end_the_attempt_as_reply_cut(bundled_tasks, built_suite,
                                                                                docker_client):
    task = bundled_tasks[0]
    cut = {"id": "x", "object": "chat.completion", "created": 0, "model": "scripted",
           "choices": [{"index": 0, "finish_reason": "length",
                        "message": {"role": "assistant", "content": "THOUGHT: first I will look at the\n```bash\ngrep -rn"}}],
           "usage": {"prompt_tokens": 100, "completion_tokens": 256, "total_tokens": 356}}
    with ScriptedServer(lambda body: "unused", inject=lambda body, path: (200, cut)) as server:
        model = Model(ModelConfig("scripted", base_url=server.base_url, backoff_initial=0.01, max_tokens=256))
        result = run_attempt(
            runtime=ContainerRuntime(docker_client, "test-model-errors"), image=image_name(task), task=task, index=0,
            seed=1, model=model, scaffold=BashScaffold(), templates=Templates.load("bash"), limits=AttemptLimits(),
            price=PRICE, share=1.0)
        assert server.calls == AttemptLimits().format_errors
    assert result.exit_reason is ExitReason.REPLY_CUT and not result.infra_error
    assert "cut at max tokens (256)" in result.error and result.patch == ""


@pytest.mark.docker
def test_monkeys_sample_with_a_bad_key_exits_naming_the_flag_with_no_attempt(tmp_path, bundled_tasks, built_suite):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."scripted"]\ninput = 1.0\noutput = 2.0\n')
    env = {**os.environ, "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs"),
           "MONKEYS_TEST_KEY": "sk-wrong"}
    bad_key = refused(401, "Incorrect API key provided: sk-wrong.", code="invalid_api_key")
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: bad_key) as server:
        done = subprocess.run(
            [sys.executable, "-m", "monkeys", "sample", "--base-url", server.base_url, "--model", "scripted",
             "--scaffold", "bash", "--prices", str(prices), "--api-key-env", "MONKEYS_TEST_KEY", "--run", "badkey",
             "-k", "2", "--instances", bundled_tasks[0].instance_id], capture_output=True, text=True, timeout=600,
            env=env)
        assert server.calls == 1
    assert done.returncode == 2, done.stderr
    assert "$MONKEYS_TEST_KEY" in done.stderr and "--api-key-env" in done.stderr
    store = RunStore("badkey", root=tmp_path / "runs")
    try:
        assert store.attempts() == []
    finally:
        store.close()
