"""What a run spends, as the sampler records it: budgets over the whole run across resumes, tries
that are redone or abandoned kept with their cost, a response without usage flagged, and the tasks
asked for recorded even without an image. The real model client talks to a scripted
OpenAI-compatible server on loopback; the container part of an attempt is replaced by one model
call (tests/test_sample_cli.py runs the same through Docker)."""

from __future__ import annotations

import sys

import pytest

import agent.sampler as sampler_module
from agent.attempt import AttemptLimits, AttemptOutcome, ExitReason
from agent.model import Model, ModelConfig
from agent.sampler import NO_IMAGE_KEY, PARAMETERS_KEY, TASKS_KEY, SampleConfig, Sampler
from harness.scores.prices import TokenPrice, price_dict, token_cost
from harness.scores.report import load, summarize
from harness.store import AttemptStatus, RunStore
from tests.scripted_server import ScriptedServer

PRICE = TokenPrice(input=1.0, output=2.0, source="test")
PER_ATTEMPT = (100 * 1.0 + 20 * 2.0) / 1e6  # the scripted server's usage: 100 in, 20 out


def one_call_attempt(*, model, task, index, seed, price, **_) -> AttemptOutcome:
    """An attempt that is only its model call: what it spends is what a real one records. With
    ``CONTAINER_DIES`` set, the container fails after the call: an infrastructure error that,
    like a real one, still reports what it spent."""
    reply = model.chat([{"role": "user", "content": task.problem_statement[:200]}], seed=seed)
    reason = ExitReason.INFRA_ERROR if CONTAINER_DIES else ExitReason.ANSWERED
    return AttemptOutcome(task.instance_id, index, seed, reason, None if CONTAINER_DIES else "diff --git a/x b/x\n",
                         reply.usage, token_cost(reply.usage, price), 1, reply.retries, 0.01, reply.seconds, 0.0,
                         "container gone" if CONTAINER_DIES else "")


CONTAINER_DIES = False


@pytest.fixture
def tasks(bundled_tasks):
    return bundled_tasks[:2]


def make(tmp_path, server, tasks, *, k, budget_tokens=None, budget_dollars=None, images=None, parameters=None):
    store = RunStore("spend", root=tmp_path)
    config = SampleConfig(run="spend", k=k, scaffold="edit", model={"model": "scripted"}, limits=AttemptLimits(),
                          templates_digest="t", workers=1, budget_tokens=budget_tokens, budget_dollars=budget_dollars,
                          price=price_dict(PRICE), model_parameters=parameters or {})
    images = {t.instance_id: "image" for t in tasks} if images is None else images
    sampler = Sampler(config, tasks, images, runtime=None, model=None, scaffold=None, templates=None, price=PRICE,
                      store=store)
    sampler.open_run()
    sampler.model = Model(ModelConfig("scripted", base_url=server.base_url, backoff_initial=0.01, retries=2))
    return sampler, store


def sample(tmp_path, server, tasks, **kw):
    sampler, store = make(tmp_path, server, tasks, **kw)
    try:
        return sampler.run()
    finally:
        sampler.close()
        store.close()


@pytest.fixture(autouse=True)
def no_containers(monkeypatch):
    monkeypatch.setattr(sampler_module, "run_attempt", one_call_attempt)


def test_a_token_budget_covers_the_whole_run_across_resumes(tmp_path, tasks):
    with ScriptedServer(lambda body: "ok") as server:
        first = sample(tmp_path, server, tasks, k=5, budget_tokens=250)
        # One preflight request, then 120 tokens per attempt: the third crosses 250.
        assert (first.done, server.calls) == (3, 4)
        assert "token budget 250 spent (360 over the whole run)" in first.stopped_by_budget
        # The same budget again: already spent, so nothing more starts (not even a preflight).
        again = sample(tmp_path, server, tasks, k=5, budget_tokens=250)
        assert again.done == 0 and server.calls == 4 and again.run_usage.total == 360
        # A larger budget adds only what it allows: 360 -> 480 -> 600.
        more = sample(tmp_path, server, tasks, k=5, budget_tokens=600)
        assert more.done == 2 and server.calls == 4 + 1 + 2 and more.run_usage.total == 600


def test_a_dollar_budget_counts_infra_failed_tries_from_earlier_calls(tmp_path, tasks, monkeypatch):
    with ScriptedServer(lambda body: "ok") as server:
        monkeypatch.setattr(sys.modules[__name__], "CONTAINER_DIES", True)
        failed = sample(tmp_path, server, tasks, k=1)
        assert failed.infra_errors == 2 and failed.run_dollars == pytest.approx(2 * PER_ATTEMPT)
        monkeypatch.setattr(sys.modules[__name__], "CONTAINER_DIES", False)
        # 2 x PER_ATTEMPT already spent by the failed tries: one more attempt reaches the budget.
        redo = sample(tmp_path, server, tasks, k=1, budget_dollars=2.5 * PER_ATTEMPT)
        assert redo.done == 1 and server.calls == (1 + 2) + (1 + 1)  # a preflight before each call's attempts
        assert redo.run_dollars == pytest.approx(3 * PER_ATTEMPT) and "dollar budget" in redo.stopped_by_budget
    store = RunStore("spend", root=tmp_path)
    try:
        # The redone try replaced the failed one in the attempts table; the failed one is in the history.
        history = store.attempt_history()
        assert [a.status for a in history] == [AttemptStatus.INFRA_ERROR.value]
        assert history[0].details["dollars"] == pytest.approx(PER_ATTEMPT)
        assert sorted(a.status for a in store.attempts()) == ["done", "infra_error"]
    finally:
        store.close()
    cost = summarize(load("spend", root=tmp_path), bootstrap=0)["cost"]
    assert cost["dollars"] == pytest.approx(3 * PER_ATTEMPT) and cost["tokens"] == 3 * 120
    assert cost["tries_by_kind"] == {"judged": 0, "not_judged": 1, "infra_failed": 2, "abandoned": 0}
    assert cost["per_attempt"] == pytest.approx(3 * PER_ATTEMPT)  # one finished attempt carries all three tries


def test_a_response_without_usage_is_flagged_on_the_attempt_and_its_cost_reported_unknown(tmp_path, tasks):
    with ScriptedServer(lambda body: "ok", usage=lambda body: None) as server:
        result = sample(tmp_path, server, tasks[:1], k=2)
    assert result.done == 2 and result.attempts_without_usage == 2
    store = RunStore("spend", root=tmp_path)
    try:
        assert [a.details["calls_without_usage"] for a in store.attempts()] == [1, 1]
    finally:
        store.close()
    cost = summarize(load("spend", root=tmp_path), bootstrap=0)["cost"]
    assert cost["attempts_without_usage"] == 2
    assert cost["dollars"] is None and cost["per_solved_issue"] is None and cost["tokens"] is None
    assert "without a usage block" in cost["unknown"]["tokens"] and "cannot be priced" in cost["unknown"]["dollars"]


def test_every_task_asked_for_is_recorded_with_why_it_has_no_attempts(tmp_path, tasks):
    first, second = tasks
    params = {"parameters": 268_098_176, "source": "GGUF header of x.gguf", "reason": ""}
    with ScriptedServer(lambda body: "ok") as server:
        sample(tmp_path, server, tasks, k=1, images={first.instance_id: "image"}, parameters=params)
    store = RunStore("spend", root=tmp_path)
    try:
        assert sorted(store.meta(TASKS_KEY)) == sorted(t.instance_id for t in tasks)
        assert list(store.meta(NO_IMAGE_KEY)) == [second.instance_id]
        assert store.meta(PARAMETERS_KEY) == params
    finally:
        store.close()
    s = summarize(load("spend", root=tmp_path), bootstrap=0)
    assert s["requested_tasks"] == 2
    assert s["tasks_without_verdicts"][0]["reason"] == "not_evaluated"  # the first: sampled, not judged yet
    assert {"instance_id": second.instance_id, "reason": "no_image"}.items() <= s["tasks_without_verdicts"][1].items()
    assert s["cost"]["flops"] == pytest.approx(2 * 268_098_176 * 120)
    with ScriptedServer(lambda body: "ok") as server:
        sample(tmp_path, server, tasks, k=1)  # the image is here now
    store = RunStore("spend", root=tmp_path)
    try:
        assert store.meta(NO_IMAGE_KEY) == {}
    finally:
        store.close()
