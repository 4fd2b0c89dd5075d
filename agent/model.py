"""One model client for every backend: the ``openai`` client against any OpenAI-compatible endpoint
(OpenAI, DeepSeek, Together, a vLLM or llama.cpp server), with the one retry policy.

Transient failures (429, 5xx, timeouts, dropped connections) are retried with exponential backoff
and jitter, honouring Retry-After. When the retries run out the call raises ``ModelUnavailable``,
which the sampler records as an infrastructure error and redoes on resume: a server's bad minute is
never scored as the model failing the task.

Errors that every request would hit (a bad key, an unknown model, a refused parameter) are found by
``Model.preflight``, one tiny request with the run's real settings before the first attempt, and
raise ``ModelConfigError``, which stops the run naming the flag to change. Errors that belong to one
request (a content filter, a conversation past the context, a malformed answer) raise
``RequestRefused`` or a subclass: they end that attempt only, with its own exit reason.

Reasoning models take another request shape (``max_completion_tokens``, no ``temperature``):
``RequestShape`` says what is sent, chosen from the model's name and adapted once, at preflight, from
what the server refuses; the run records it.
"""

from __future__ import annotations

import email.utils
import enum
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any


import openai
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from harness.scores.prices import Usage


class Endpoint(str, enum.Enum):
    """Which API a scaffold talks to: chat for instruction-tuned models, completions for base models."""

    CHAT = "chat"
    COMPLETIONS = "completions"


@dataclass(frozen=True)
class ModelConfig:
    """How to reach a model and sample from it; ``sampling()`` gives the fields of a run's fingerprint."""

    name: str
    """The model name the server knows (``gpt-4o-mini``, ``deepseek-chat``, a served alias)."""
    base_url: str | None = None
    """The endpoint's base URL (``.../v1``); None for OpenAI's."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the key; local servers need none."""
    temperature: float = 0.8
    """Sampling temperature: repeated sampling needs diversity (the paper samples at 0.6 to 1.0)."""
    top_p: float = 1.0
    max_tokens: int = 4096
    """Output tokens per call (a cap, not a target): room for a thought plus a long heredoc edit, and
    for a reasoning model's hidden reasoning, which is counted in the same budget; the window
    fitting reserves it, so a small local window may want less."""
    request_timeout: float = 600.0
    """Seconds one call may take before it counts as a timeout (and is retried)."""
    retries: int = 8
    """Tries per call for transient failures, the first included."""
    backoff_initial: float = 1.0
    """Seconds before the first retry; doubles each time, with jitter."""
    backoff_max: float = 60.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Server-specific sampling fields (``top_k``, ``min_p``, ``repeat_penalty``, ...)."""

    def sampling(self) -> dict[str, Any]:
        """The fields that change what the model writes (for the fingerprint). Not the base URL: where
        a server listens (a port, a restarted vLLM) is how to reach the model, not which model it is.
        A model family sent another request shape (a reasoning model) adds ``request``: what is sent."""
        fields = {"model": self.name, "temperature": self.temperature,
                  "top_p": self.top_p, "max_tokens": self.max_tokens, "extra_body": self.extra_body}
        shape = family_shape(self.name)
        return {**fields, "request": shape.record(self)} if not shape.plain else fields


_SAMPLING_PARAMETERS = ("temperature", "top_p")
_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


@dataclass(frozen=True)
class RequestShape:
    """Which sampling parameters a request carries and under which names: what the server accepts."""

    token_field: str = "max_tokens"
    """``max_tokens``, or ``max_completion_tokens`` for OpenAI's reasoning models."""
    dropped: tuple[str, ...] = ()
    """Sampling parameters not sent (the model refuses them; it samples with its own default)."""
    why: str = ""
    """Where the shape came from: the model family table, or what the server refused at preflight."""

    @property
    def plain(self) -> bool:
        """True for the ordinary shape: every parameter sent, under its usual name."""
        return self.token_field == "max_tokens" and not self.dropped

    def params(self, cfg: ModelConfig, max_tokens: int | None = None) -> dict[str, Any]:
        """The sampling fields of one request."""
        sent: dict[str, Any] = {"temperature": cfg.temperature, "top_p": cfg.top_p}
        sent = {name: value for name, value in sent.items() if name not in self.dropped}
        sent[self.token_field] = max_tokens or cfg.max_tokens
        return sent

    def record(self, cfg: ModelConfig) -> dict[str, Any]:
        """What a run records of its requests: the fields sent with their values, and those dropped."""
        return {"sent": self.params(cfg), "dropped": list(self.dropped), "why": self.why}


# Reasoning model families and the request shape their APIs take. Sources: OpenAI's reasoning guide
# (platform.openai.com/docs/guides/reasoning): o1, o3, o4-mini and gpt-5 take max_completion_tokens
# (max_tokens is refused: "Unsupported parameter: 'max_tokens' ... Use 'max_completion_tokens'") and
# refuse temperature and top_p other than the default ("Unsupported value: 'temperature' does not
# support 0.8 with this model. Only the default (1) value is supported."); gpt-5-chat is not a
# reasoning model. DeepSeek's reasoning-model guide (api-docs.deepseek.com/guides/reasoning_model):
# deepseek-reasoner takes max_tokens but ignores temperature and top_p, so sending them would record
# a temperature the model never sampled at. Names are matched after any provider prefix (openai/o3).
_FAMILIES: tuple[tuple[re.Pattern[str], RequestShape], ...] = (
    (re.compile(r"^o\d"), RequestShape("max_completion_tokens", _SAMPLING_PARAMETERS, "OpenAI o-series")),
    (re.compile(r"^gpt-5(?!.*-chat)"), RequestShape("max_completion_tokens", _SAMPLING_PARAMETERS, "OpenAI gpt-5")),
    (re.compile(r"^deepseek-reasoner"), RequestShape("max_tokens", _SAMPLING_PARAMETERS, "DeepSeek reasoner")),
)


def family_shape(name: str) -> RequestShape:
    """The request shape a model's family takes, from its name (the ordinary shape for any other)."""
    base = name.rsplit("/", 1)[-1].lower()
    for pattern, shape in _FAMILIES:
        if pattern.search(base):
            return replace(shape, why=f"model family: {shape.why}")
    return RequestShape()


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """One model call's answer and what it cost."""

    text: str
    usage: Usage
    seconds: float
    """Wall time of the call, retries and their waits included."""
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    retries: int = 0
    usage_reported: bool = True
    """False when the response carried no usage block: ``usage`` is then zeros that mean "unknown",
    and whatever is priced or budgeted from it must say so rather than count the call as free."""


@dataclass
class UsageGaps:
    """Calls without a usage block, counted by ``Model.watch_usage`` for the thread that opened it."""

    calls: int = 0


class ModelUnavailable(RuntimeError):
    """Transient failures outlasted the retries: an infrastructure error, redone on resume."""


class ModelConfigError(RuntimeError):
    """A failure no retry fixes and every request would hit (bad key, unknown model, refused request
    shape): stops the run, naming what to change."""


class RequestRefused(RuntimeError):
    """One request failed in a way that is this request's own (a malformed or empty answer, a refused
    body): ends the attempt that made it, keeping its work, with exit reason ``kind``; the run goes on."""

    kind = "model_error"

    def __init__(self, message: str, usage: Usage | None = None):
        super().__init__(message)
        self.usage = usage or Usage()
        """Tokens the refused call still reported (a filtered answer is billed)."""


class ContextTooLong(RequestRefused):
    """The request no longer fits the model's context: ends the attempt, keeping its work."""

    kind = "context_limit"


class ContentFiltered(RequestRefused):
    """The provider's content filter refused the prompt or the answer: ends the attempt."""

    kind = "content_filter"


# How servers say a request outgrew the context. OpenAI: code context_length_exceeded, "This model's
# maximum context length is N tokens"; vLLM: the same sentence, or "... is longer than the maximum
# model length"; llama.cpp: type exceed_context_size_error, "request (N tokens) exceeds the available
# context size (M tokens)"; Anthropic-compatible servers: "prompt is too long".
_CONTEXT_PHRASES = ("context_length_exceeded", "maximum context length", "context length exceeded",
                    "exceeds the available context size", "exceed_context_size", "too many tokens",
                    "prompt is too long", "input is too long", "longer than the maximum model length",
                    "context window")
# OpenAI and Azure: code content_filter, "... flagged by ... content management policy".
_FILTER_PHRASES = ("content_filter", "content management policy", "content policy")


def _error_text(err: BaseException) -> str:
    body = getattr(err, "body", None)
    return f"{err} {body if body is not None else ''} {getattr(err, 'code', '') or ''}".lower()


def _outgrew_context(err: BaseException) -> bool:
    return any(phrase in _error_text(err) for phrase in _CONTEXT_PHRASES)


def _request_error(err: openai.APIStatusError, cfg: ModelConfig) -> RequestRefused:
    """What a refused request (400, 413, 422) means for the attempt that sent it."""
    text = _error_text(err)
    where = f"{cfg.name} at {cfg.base_url or 'api.openai.com'}"
    if any(phrase in text for phrase in _FILTER_PHRASES):
        return ContentFiltered(f"{where}: the content filter refused the request: {err}")
    if err.status_code == 413 or _outgrew_context(err):
        return ContextTooLong(f"{where}: the conversation no longer fits the model's context: {err}")
    return RequestRefused(f"{where} refused the request ({err.status_code}): {err}")


def _transient(err: BaseException) -> bool:
    if isinstance(err, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(err, openai.APIStatusError):
        # Some servers answer an overfull context with a 5xx; no retry makes it fit.
        return (err.status_code in (408, 409, 425, 429) or err.status_code >= 500) and not _outgrew_context(err)
    return False


def retry_after(err: BaseException | None) -> float | None:
    """Seconds a server asked us to wait (``retry-after-ms`` or ``Retry-After``, seconds or a date)."""
    response = getattr(err, "response", None)
    if response is None:
        return None
    headers = response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(when.timestamp() - time.time(), 0.0) if when else None


def backoff(attempt: int, initial: float, cap: float, err: BaseException | None = None) -> float:
    """Seconds before retry number ``attempt`` (1-based): the server's Retry-After when it gave one,
    else full-jitter exponential backoff, so many workers hit by one outage do not retry in step."""
    asked = retry_after(err)
    if asked is not None:
        return min(asked, cap)
    return random.uniform(0, min(cap, initial * 2 ** (attempt - 1)))


class Model:
    """A thread-safe client for one model; scaffolds call ``chat`` or ``complete``."""

    def __init__(self, config: ModelConfig, client: openai.OpenAI | None = None):
        self.config = config
        key = os.environ.get(config.api_key_env) or "none"  # local servers accept any key
        self.client = client or openai.OpenAI(base_url=config.base_url, api_key=key, max_retries=0,
                                              timeout=config.request_timeout)
        self._watch = threading.local()
        self._shape = family_shape(config.name)

    @contextmanager
    def watch_usage(self) -> Iterator[UsageGaps]:
        """Count this thread's calls whose response lacked a usage block until the block ends. An
        attempt makes all its calls from the thread that runs it, so the sampler learns which
        attempt's tokens (and token-priced dollars) are unknown without every scaffold passing it on."""
        gaps, outer = UsageGaps(), getattr(self._watch, "gaps", None)
        self._watch.gaps = gaps
        try:
            yield gaps
        finally:
            self._watch.gaps = outer

    def _reply(self, text: str, usage, seconds: float, finish: str | None, calls: tuple, retries: int) -> Reply:
        counted, reported = _usage(usage)
        if not reported and (gaps := getattr(self._watch, "gaps", None)) is not None:
            gaps.calls += 1
        return Reply(text, counted, seconds, finish, calls, retries, reported)

    def _call(self, send) -> tuple[Any, float, int]:
        """``send()`` under the retry policy; errors mapped to what they mean for the run."""
        cfg = self.config
        where = f"{cfg.name} at {cfg.base_url or 'api.openai.com'}"
        try:
            return self._retrying(send)
        except openai.AuthenticationError as err:
            raise ModelConfigError(f"{where} refused the key in ${cfg.api_key_env}: {err} (set ${cfg.api_key_env}, "
                                   f"or name the variable that holds the key with --api-key-env)") from err
        except (openai.PermissionDeniedError, openai.NotFoundError) as err:
            raise ModelConfigError(f"{where}: {err} (check the model name, --model, --base-url and the key "
                                   f"in ${cfg.api_key_env}, --api-key-env)") from err
        except openai.APIStatusError as err:
            if err.status_code in (400, 413, 422) or _outgrew_context(err):
                raise _request_error(err, cfg) from err
            raise ModelConfigError(f"{where} answered {err.status_code}: {err} (check --base-url)") from err

    def _retrying(self, send) -> tuple[Any, float, int]:
        """``send()`` retried on transient failures; raises ``ModelUnavailable`` when they outlast the
        retries and the server's own error for anything else."""
        cfg = self.config
        started = time.monotonic()

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome else None
            return backoff(state.attempt_number, cfg.backoff_initial, cfg.backoff_max, err)

        retrying = Retrying(retry=retry_if_exception(_transient), stop=stop_after_attempt(max(cfg.retries, 1)),
                            wait=wait, reraise=True)
        try:
            response = retrying(send)
        except BaseException as err:
            if _transient(err):
                raise ModelUnavailable(f"{cfg.name}: {type(err).__name__} after {cfg.retries} tries: {err}") from err
            raise
        tries = retrying.statistics.get("attempt_number", 1)
        return response, time.monotonic() - started, tries - 1

    def _send_chat(self, messages, *, seed=None, tools=None, max_tokens=None, shape=None):
        cfg = self.config
        extra = {"tools": tools} if tools else {}
        params = (shape or self.shape).params(cfg, max_tokens)
        return self.client.chat.completions.create(model=cfg.name, messages=messages, seed=seed,
                                                   extra_body=cfg.extra_body or None, **params, **extra)

    def _send_completion(self, prompt, *, seed=None, stop=None, max_tokens=None, shape=None):
        cfg = self.config
        params = (shape or self.shape).params(cfg, max_tokens)
        # The completions call has no max_completion_tokens argument: it goes in the body as is.
        body = {**cfg.extra_body, **{k: params.pop(k) for k in list(params) if k == "max_completion_tokens"}}
        return self.client.completions.create(model=cfg.name, prompt=prompt, seed=seed, stop=stop or None,
                                              extra_body=body or None, **params)

    def chat(self, messages: list[dict[str, Any]], *, seed: int | None = None,
             tools: list[dict[str, Any]] | None = None) -> Reply:
        """One chat completion."""
        response, seconds, retries = self._call(lambda: self._send_chat(messages, seed=seed, tools=tools))
        choice = self._choice(response)
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments or "")
                      for c in (choice.message.tool_calls or []) if getattr(c, "function", None))
        self._filtered(response, choice.finish_reason, choice.message.content or calls)
        return self._reply(choice.message.content or "", response.usage, seconds, choice.finish_reason, calls, retries)

    def complete(self, prompt: str, *, seed: int | None = None, stop: list[str] | None = None,
                 max_tokens: int | None = None) -> Reply:
        """One text completion (for base models, which complete code far better than they chat)."""
        response, seconds, retries = self._call(
            lambda: self._send_completion(prompt, seed=seed, stop=stop, max_tokens=max_tokens))
        choice = self._choice(response)
        self._filtered(response, choice.finish_reason, choice.text)
        return self._reply(choice.text or "", response.usage, seconds, choice.finish_reason, (), retries)

    def _choice(self, response):
        choices = getattr(response, "choices", None)
        if not choices:
            # A 200 without an answer: this request's failure, not the configuration's.
            raise RequestRefused(f"{self.config.name} answered without any choice (an empty 'choices' list)",
                                 _usage(getattr(response, "usage", None))[0])
        return choices[0]

    def _filtered(self, response, finish_reason: str | None, content) -> None:
        if finish_reason == "content_filter" and not content:
            raise ContentFiltered(f"{self.config.name}: the content filter withheld the answer "
                                  f"(finish_reason content_filter, no content)", _usage(response.usage)[0])

    # -- the request shape ---------------------------------------------------------------------

    @property
    def shape(self) -> RequestShape:
        """The request shape every call uses: the model family's until ``preflight`` adapts it."""
        return self._shape

    def request_record(self) -> dict[str, Any] | None:
        """What the run's requests carry, for its configuration; None for the ordinary shape."""
        return None if self._shape.plain else self._shape.record(self.config)

    def use_request_record(self, record: dict[str, Any]) -> None:
        """Start from a shape a run recorded (``RequestShape.record``); the preflight then confirms it."""
        sent = record.get("sent") or {}
        token_field = next((f for f in _TOKEN_FIELDS if f in sent), "max_tokens")
        self._shape = RequestShape(token_field, tuple(record.get("dropped") or ()), record.get("why", ""))

    def preflight(self, endpoint: Endpoint) -> RequestShape:
        """One tiny request (one output token) with the run's real settings, before any attempt, so a
        failure every request would hit stops the run instead of every attempt. A server refusing a
        sampling parameter (``temperature``, ``top_p``, ``max_tokens``) as unsupported gets the request
        adapted (the parameter dropped, or renamed ``max_completion_tokens``) and asked again, each
        parameter once; the adapted shape is then used for every call. Raises ``ModelConfigError``
        naming the flag to change; ``ModelUnavailable`` when the server did not answer at all."""
        cfg = self.config
        shape = self._shape
        adapted: set[str] = set()
        while True:
            if endpoint is Endpoint.COMPLETIONS:
                send = lambda: self._send_completion("Hello", max_tokens=1, shape=shape)  # noqa: E731
            else:
                send = lambda: self._send_chat([{"role": "user", "content": "Hello"}], max_tokens=1,  # noqa: E731
                                               shape=shape)
            try:
                self._call(send)
            except RequestRefused as refused:
                err = refused.__cause__
                better = _adapt(shape, err, adapted) if isinstance(err, openai.APIStatusError) else None
                if better is None:
                    raise ModelConfigError(
                        f"{cfg.name} at {cfg.base_url or 'api.openai.com'} refused a one-token request with this "
                        f"run's settings (endpoint {endpoint.value}, {shape.params(cfg, 1)}): {err or refused} "
                        f"(change --temperature, --top-p, --max-tokens, --endpoint or --model)") from refused
                shape = better
                continue
            self._shape = shape
            return shape


# A server naming a sampling parameter it does not take: OpenAI's "Unsupported parameter: 'temperature'
# is not supported with this model." and "Unsupported value: 'temperature' does not support 0.8 ...".
_UNSUPPORTED = re.compile(r"unsupported|not supported|does not support|is not allowed|not permitted")
_PARAMETER = re.compile(r"\b(max_completion_tokens|max_tokens|temperature|top_p)\b")


def _adapt(shape: RequestShape, err: openai.APIStatusError, adapted: set[str]) -> RequestShape | None:
    """The shape without the parameter the server refused as unsupported; None when the error names
    none, or one already adapted (then no change of shape can help)."""
    text = str(err)
    if not _UNSUPPORTED.search(text.lower()):
        return None
    param = getattr(err, "param", None)
    if param not in (*_SAMPLING_PARAMETERS, *_TOKEN_FIELDS):
        found = _PARAMETER.search(text)
        param = found.group(1) if found else None
    if param is None or param in adapted:
        return None
    adapted.add(param)
    why = (shape.why + "; " if shape.why else "") + f"the server refused {param} at preflight"
    if param in _TOKEN_FIELDS:
        if param != shape.token_field:
            return None
        other = "max_completion_tokens" if param == "max_tokens" else "max_tokens"
        return replace(shape, token_field=other, why=why)
    if param in shape.dropped:
        return None
    return replace(shape, dropped=(*shape.dropped, param), why=why)


def _usage(usage) -> tuple[Usage, bool]:
    """The tokens a response reports, and whether it reported them at all."""
    # No block, or one without both counts, says nothing: zeros here must not be read as "free".
    if usage is None or None in (getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)):
        return Usage(), False
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    prompt = usage.prompt_tokens or 0
    completion = usage.completion_tokens or 0
    reasoning = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None) or 0
    # A server reporting more cached (reasoning) tokens than prompt (completion) tokens is wrong;
    # never more than all of them.
    return Usage(input_tokens=prompt, cached_input_tokens=min(cached, prompt), output_tokens=completion,
                 reasoning_tokens=min(reasoning, completion)), True
