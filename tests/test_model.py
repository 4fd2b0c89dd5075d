"""The one model client against a scripted OpenAI-compatible server on loopback: retries with
backoff for 429/5xx, Retry-After honoured, infrastructure and configuration errors kept apart; one
request's own failures (a content filter, a full context, an empty answer) told from what every
request would hit, which the preflight finds; reasoning models' request shapes and token counts."""

from __future__ import annotations

import time

import pytest

from agent.model import (ContentFiltered, ContextTooLong, Endpoint, Model, ModelConfig, ModelConfigError,
                         ModelUnavailable, RequestRefused, backoff, family_shape)
from harness.scores.prices import Usage
from tests.scripted_server import ScriptedServer, refused


def model(server, **config) -> Model:
    return Model(ModelConfig(server.model, base_url=server.base_url, backoff_initial=0.01, **config))


def test_transient_failures_are_retried_and_counted():
    with ScriptedServer(lambda body: "ok", fail_rate=0.5, seed=3) as server:
        client = model(server)
        replies = [client.chat([{"role": "user", "content": "hi"}]) for _ in range(20)]
    assert all(r.text == "ok" for r in replies)
    assert sum(r.retries for r in replies) == server.failures[429] + server.failures[500] > 0
    assert all(r.usage.input_tokens == 100 and r.usage.output_tokens == 20 for r in replies)


def test_retries_running_out_is_an_infrastructure_error():
    with ScriptedServer(lambda body: "ok", fail_rate=1.0) as server:
        with pytest.raises(ModelUnavailable, match="after 3 tries"):
            model(server, retries=3).complete("x")
        assert server.calls == 3


def test_an_unknown_model_is_a_configuration_error_not_retried():
    with ScriptedServer(lambda body: "ok") as server:
        client = Model(ModelConfig("not-served", base_url=server.base_url, backoff_initial=0.01))
        with pytest.raises(ModelConfigError, match="not-served"):
            client.chat([{"role": "user", "content": "hi"}])
        assert server.calls == 1


class _Err:
    def __init__(self, headers):
        self.response = type("R", (), {"headers": headers})()


def test_backoff_honours_retry_after_and_caps_it():
    assert backoff(1, 1.0, 60.0, _Err({"retry-after": "7"})) == 7.0
    assert backoff(1, 1.0, 60.0, _Err({"retry-after-ms": "250"})) == 0.25
    assert backoff(1, 1.0, 5.0, _Err({"retry-after": "120"})) == 5.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= backoff(1, 1.0, 60.0, _Err({"retry-after": date})) <= 30
    # Without a header: full jitter under an exponentially growing cap.
    draws = [backoff(4, 1.0, 60.0) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in draws) and max(draws) > 4.0


# --- one request's own failures: they end that attempt, never the run ---------------------------

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("answer, refusal", [
    (refused(400, "The response was filtered due to the prompt triggering Azure OpenAI's content management "
                  "policy.", code="content_filter"), ContentFiltered),
    (refused(400, "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                  "130512 tokens.", code="context_length_exceeded", param="messages"), ContextTooLong),
    # llama.cpp's server
    ((400, {"error": {"code": 400, "message": "request (4476 tokens) exceeds the available context size "
                                              "(4096 tokens), try increasing it", "type": "exceed_context_size_error",
                      "n_prompt_tokens": 4476, "n_ctx": 4096}}), ContextTooLong),
    # vLLM's server
    (refused(400, "This model's maximum context length is 4096 tokens. However, you requested 4200 tokens "
                  "(3176 in the messages, 1024 in the completion).", kind="BadRequestError"), ContextTooLong),
    (refused(413, "Request Entity Too Large"), ContextTooLong),
    (refused(422, "messages.3.content: Input should be a valid string"), RequestRefused),
    (refused(400, "Invalid 'messages[2].tool_calls[0].id': string too long."), RequestRefused),
])
def test_a_request_the_server_refuses_ends_with_its_own_kind_and_is_not_retried(answer, refusal):
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: answer) as server:
        with pytest.raises(refusal) as raised:
            model(server).chat(HI)
        assert server.calls == 1
    assert type(raised.value) is refusal and not isinstance(raised.value, ModelConfigError)
    assert answer[1]["error"]["message"][:30] in str(raised.value)


def ok_body(choices, usage=None) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "scripted", "choices": choices,
            "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


def test_an_answer_without_choices_or_withheld_by_the_filter_is_a_refusal_keeping_its_tokens():
    empty = ok_body([])
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: (200, empty)) as server:
        with pytest.raises(RequestRefused, match="without any choice") as raised:
            model(server).chat(HI)
    assert raised.value.kind == "model_error" and raised.value.usage.input_tokens == 7
    withheld = ok_body([{"index": 0, "message": {"role": "assistant", "content": None},
                         "finish_reason": "content_filter"}])
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: (200, withheld)) as server:
        with pytest.raises(ContentFiltered, match="content filter") as raised:
            model(server).chat(HI)
    assert raised.value.kind == "content_filter" and raised.value.usage.output_tokens == 3


def test_a_context_error_answered_as_a_server_error_is_not_retried():
    answer = (500, {"error": {"message": "the request exceeds the available context size, try increasing it"}})
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: answer) as server:
        with pytest.raises(ContextTooLong):
            model(server, retries=4).chat(HI)
        assert server.calls == 1


# --- the preflight: what every request would hit stops the run, naming the flag ----------------

def test_preflight_with_a_bad_key_names_the_key_variable_and_sends_one_token_request():
    answer = refused(401, "Incorrect API key provided: sk-xx.", code="invalid_api_key")
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: answer) as server:
        with pytest.raises(ModelConfigError, match=r"refused the key in \$OPENAI_API_KEY.*--api-key-env"):
            model(server).preflight(Endpoint.CHAT)
        (sent,) = server.every_request
    assert sent["max_tokens"] == 1 and sent["temperature"] == 0.8 and sent["model"] == "scripted"


def test_preflight_on_the_completions_endpoint_uses_it():
    with ScriptedServer(lambda body: "ok") as server:
        model(server).preflight(Endpoint.COMPLETIONS)
        (sent,) = server.every_request
    assert "prompt" in sent and sent["max_tokens"] == 1


def temperature_refused(body, path):
    if "temperature" in body:
        return refused(400, "Unsupported parameter: 'temperature' is not supported with this model.",
                       code="unsupported_parameter", param="temperature")
    return None


def test_preflight_drops_a_refused_parameter_once_and_every_later_call_goes_without_it():
    with ScriptedServer(lambda body: "ok", inject=temperature_refused) as server:
        client = model(server)
        shape = client.preflight(Endpoint.CHAT)
        assert shape.dropped == ("temperature",) and "refused temperature" in shape.why
        assert client.chat(HI).text == "ok"
        assert server.calls == 3 and "temperature" in server.every_request[0]
        assert all("temperature" not in r and r["top_p"] == 1.0 for r in server.every_request[1:])
    assert client.request_record() == {"sent": {"top_p": 1.0, "max_tokens": ModelConfig.max_tokens}, "dropped": ["temperature"],
                                       "why": "the server refused temperature at preflight"}


def test_preflight_renames_max_tokens_when_the_server_asks_for_max_completion_tokens():
    def answer(body, path):
        if "max_tokens" in body:
            return refused(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                "Use 'max_completion_tokens' instead.", code="unsupported_parameter")
        return None
    with ScriptedServer(lambda body: "ok", inject=answer) as server:
        client = model(server)
        assert client.preflight(Endpoint.CHAT).token_field == "max_completion_tokens"
        client.chat(HI)
        assert server.every_request[-1]["max_completion_tokens"] == ModelConfig.max_tokens and "max_tokens" not in server.every_request[-1]


def test_preflight_refusal_no_change_of_shape_fixes_stops_naming_the_flags():
    answer = refused(400, "Invalid value for 'top_p': must be between 0 and 1.", param="top_p")
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: answer) as server:
        with pytest.raises(ModelConfigError, match="--temperature, --top-p, --max-tokens"):
            model(server).preflight(Endpoint.CHAT)
        assert server.calls == 1
    # A parameter refused again after it was adapted is not adapted twice.
    always = refused(400, "Unsupported parameter: 'temperature' is not supported with this model.")
    with ScriptedServer(lambda body: "ok", inject=lambda body, path: always) as server:
        with pytest.raises(ModelConfigError):
            model(server).preflight(Endpoint.CHAT)
        assert server.calls == 2


@pytest.mark.parametrize("name, token_field, dropped", [
    ("o3-mini", "max_completion_tokens", ("temperature", "top_p")),
    ("openai/o1", "max_completion_tokens", ("temperature", "top_p")),
    ("gpt-5-mini", "max_completion_tokens", ("temperature", "top_p")),
    ("gpt-5-chat-latest", "max_tokens", ()),
    ("deepseek-reasoner", "max_tokens", ("temperature", "top_p")),
    ("gpt-4o-mini", "max_tokens", ()),
    ("omni-coder", "max_tokens", ()),
])
def test_reasoning_families_get_their_request_shape_from_the_name(name, token_field, dropped):
    shape = family_shape(name)
    assert (shape.token_field, shape.dropped) == (token_field, dropped)
    sampling = ModelConfig(name, max_tokens=512).sampling()
    assert ("request" in sampling) is (not shape.plain)


def test_a_reasoning_model_is_sent_its_shape_and_its_reasoning_tokens_counted():
    usage = {"prompt_tokens": 50, "completion_tokens": 40, "total_tokens": 90,
             "prompt_tokens_details": {"cached_tokens": 20}, "completion_tokens_details": {"reasoning_tokens": 32}}
    with ScriptedServer(lambda body: "ok", model="o4-mini", usage=lambda body: usage) as server:
        client = Model(ModelConfig("o4-mini", base_url=server.base_url, max_tokens=2048))
        client.preflight(Endpoint.CHAT)
        reply = client.chat(HI)
        sent = server.every_request[-1]
    assert server.calls == 2  # no refusal to learn from: the family table knew
    assert sent["max_completion_tokens"] == 2048 and not {"max_tokens", "temperature", "top_p"} & set(sent)
    assert reply.usage == Usage(input_tokens=50, cached_input_tokens=20, output_tokens=40, reasoning_tokens=32)


def test_usage_without_details_has_no_reasoning_and_overstated_details_are_capped():
    too_many = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9,
                "completion_tokens_details": {"reasoning_tokens": 9}}
    with ScriptedServer(lambda body: "ok", usage=lambda body: too_many) as server:
        assert model(server).chat(HI).usage == Usage(5, 0, 4, reasoning_tokens=4)
    with ScriptedServer(lambda body: "ok") as server:
        assert model(server).chat(HI).usage.reasoning_tokens == 0
