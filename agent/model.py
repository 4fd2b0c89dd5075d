"""One model client for every backend: the ``openai`` client against any OpenAI-compatible endpoint
(OpenAI, DeepSeek, Together, a vLLM or llama.cpp server), with the one retry policy.

Transient failures (429, 5xx, timeouts, dropped connections) are retried with exponential backoff
and jitter, honouring Retry-After. When the retries run out the call raises ``ModelUnavailable``,
which the sampler records as an infrastructure error and redoes on resume: a server's bad minute is
never scored as the model failing the task. Errors that no retry can fix (a bad key, an unknown
model) raise ``ModelConfigError`` and stop the run.
"""

from __future__ import annotations

import email.utils
import enum
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    max_tokens: int = 1024
    """Output tokens per call."""
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
        a server listens (a port, a restarted vLLM) is how to reach the model, not which model it is."""
        return {"model": self.name, "temperature": self.temperature,
                "top_p": self.top_p, "max_tokens": self.max_tokens, "extra_body": self.extra_body}


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
    """A failure no retry fixes (bad key, unknown model, refused request shape): stops the run."""


class ContextTooLong(RuntimeError):
    """The request no longer fits the model's context: ends the attempt, keeping its work."""


def _transient(err: BaseException) -> bool:
    if isinstance(err, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(err, openai.APIStatusError):
        return err.status_code in (408, 409, 425, 429) or err.status_code >= 500
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
        cfg = self.config
        started = time.monotonic()

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome else None
            return backoff(state.attempt_number, cfg.backoff_initial, cfg.backoff_max, err)

        retrying = Retrying(retry=retry_if_exception(_transient), stop=stop_after_attempt(max(cfg.retries, 1)),
                            wait=wait, reraise=True)
        try:
            response = retrying(send)
        except openai.BadRequestError as err:
            text = str(err).lower()
            if "context" in text or "too long" in text or "maximum" in text and "token" in text:
                raise ContextTooLong(str(err)) from err
            raise ModelConfigError(f"{cfg.name} at {cfg.base_url or 'api.openai.com'} refused the request: {err}") from err
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as err:
            raise ModelConfigError(f"{cfg.name} at {cfg.base_url or 'api.openai.com'}: {err} "
                                   f"(check the model name, --base-url and ${cfg.api_key_env})") from err
        except BaseException as err:
            if _transient(err):
                raise ModelUnavailable(f"{cfg.name}: {type(err).__name__} after {cfg.retries} tries: {err}") from err
            raise
        tries = retrying.statistics.get("attempt_number", 1)
        return response, time.monotonic() - started, tries - 1

    def chat(self, messages: list[dict[str, Any]], *, seed: int | None = None,
             tools: list[dict[str, Any]] | None = None) -> Reply:
        """One chat completion."""
        cfg = self.config
        extra = {"tools": tools} if tools else {}

        def send():
            return self.client.chat.completions.create(
                model=cfg.name, messages=messages, temperature=cfg.temperature, top_p=cfg.top_p,
                max_tokens=cfg.max_tokens, seed=seed, extra_body=cfg.extra_body or None, **extra)

        response, seconds, retries = self._call(send)
        choice = response.choices[0]
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments or "")
                      for c in (choice.message.tool_calls or []) if getattr(c, "function", None))
        return self._reply(choice.message.content or "", response.usage, seconds, choice.finish_reason, calls, retries)

    def complete(self, prompt: str, *, seed: int | None = None, stop: list[str] | None = None,
                 max_tokens: int | None = None) -> Reply:
        """One text completion (for base models, which complete code far better than they chat)."""
        cfg = self.config

        def send():
            return self.client.completions.create(
                model=cfg.name, prompt=prompt, temperature=cfg.temperature, top_p=cfg.top_p,
                max_tokens=max_tokens or cfg.max_tokens, seed=seed, stop=stop or None,
                extra_body=cfg.extra_body or None)

        response, seconds, retries = self._call(send)
        choice = response.choices[0]
        return self._reply(choice.text or "", response.usage, seconds, choice.finish_reason, (), retries)


def _usage(usage) -> tuple[Usage, bool]:
    """The tokens a response reports, and whether it reported them at all."""
    # No block, or one without both counts, says nothing: zeros here must not be read as "free".
    if usage is None or None in (getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)):
        return Usage(), False
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    prompt = usage.prompt_tokens or 0
    # A server reporting more cached tokens than prompt tokens is wrong; never more than all of them.
    return Usage(input_tokens=prompt, cached_input_tokens=min(cached, prompt),
                 output_tokens=usage.completion_tokens or 0), True
