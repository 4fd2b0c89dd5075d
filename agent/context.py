"""The model's context window: how large it is, and keeping a multi-turn conversation inside it.

Discovery (``context_window``), first answer wins:

1. ``--context-window TOKENS`` on ``monkeys sample`` (the caller passes it as ``explicit``);
2. what monkeys itself gave a managed server (llama.cpp's ``--n_ctx``, vLLM's ``--max-model-len``);
3. what the server says: llama.cpp's own ``llama-server`` answers ``GET /props`` with
   ``default_generation_settings.n_ctx`` (the context of one slot, what a request may fill), vLLM
   lists ``max_model_len`` in its ``/v1/models`` entries, some gateways ``context_length`` or
   ``context_window``; llama.cpp's ``/v1/models`` ``meta.n_ctx_train`` (the training context, an upper
   bound of what the server was started with) is the last resort. llama-cpp-python's server (the
   one monkeys runs) reports none of these, which is why (2) comes first;
4. the ``context_window`` genai-prices (the price database) records for a hosted model;
5. unknown: nothing is trimmed, and a server's "context too long" error ends the attempt with
   ``context_limit`` as before.

Fitting (``fit_messages``, pure): before each chat call the conversation must fit ``window -
max_tokens - margin`` tokens. Older observations (user and tool messages after the task) are
shortened first, oldest first, to their head and tail with a note saying how much was removed; then
older assistant messages. The system prompt, the task (the first user message) and the last
``keep_last`` messages are never touched. When even that cannot fit, ``CannotFit`` is raised and the
scaffold's hook (``fit_for_call``) ends the attempt with ``context_limit``, keeping its diff. Only what
is sent is shortened: the trajectory keeps every message whole.

Token counts are estimated, not tokenised (a tokenizer per model is not at hand for hosted APIs):
characters / 3.5 at first (English prose runs about 4 characters a token, code and logs about 3, so
3.5 errs slightly towards more tokens), then characters / the ratio the server's reported
``prompt_tokens`` showed on the previous call (clamped to 1.5..6), so the estimate follows the
model's own tokenizer and the chat template's overhead. The margin absorbs what the ratio misses.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from typing import Any

from agent.attempt import AttemptOver, Context, ExitReason

CHARS_PER_TOKEN = 3.5
"""The first estimate of characters per token, before the server has reported any prompt size."""
_RATIO_BOUNDS = (1.5, 6.0)
MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat template spends per message on role markers and separators."""
KEEP_LAST = 4
"""Messages at the end never shortened: the last two turns (a reply and the output it got, twice)."""
MIN_KEPT_CHARS = 600
"""What a shortened message keeps at least: its first and last 300 characters."""


class CannotFit(ValueError):
    """Even with every older message shortened, the conversation exceeds the budget."""

    def __init__(self, needed: int, budget: int):
        super().__init__(f"the conversation needs about {needed} tokens even with older outputs shortened; "
                         f"{budget} are available for it")
        self.needed, self.budget = needed, budget


@dataclass(frozen=True)
class ContextWindow:
    """A model's context window in tokens (None: unknown) and where that number came from."""

    tokens: int | None
    source: str
    """``--context-window``, ``managed llama.cpp --n_ctx``, ``GET /props n_ctx``, ``genai-prices``, ..."""

    def as_meta(self) -> dict[str, Any]:
        """The JSON a run's configuration records."""
        return {"tokens": self.tokens, "source": self.source}


# ---------------------------------------------------------------------------------------------
# discovery


def _get_json(url: str, api_key: str | None, timeout: float) -> Any:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        # Not every server has every route (OpenAI has no /props): silence means "not from here".
        return None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def server_context_window(base_url: str, model: str, api_key: str | None = None,
                          timeout: float = 5.0) -> ContextWindow | None:
    """The window an OpenAI-compatible server reports for ``model``, or None when it says nothing.
    ``base_url`` ends in ``/v1``; llama.cpp's ``/props`` lives at the server's root."""
    base = base_url.rstrip("/")
    root = base[:-3] if base.endswith("/v1") else base
    props = _get_json(f"{root}/props", api_key, timeout)
    if isinstance(props, dict):
        settings = props.get("default_generation_settings")
        n_ctx = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
        if n_ctx:
            return ContextWindow(n_ctx, f"GET {root}/props default_generation_settings.n_ctx")
    listing = _get_json(f"{base}/models", api_key, timeout)
    entries = listing.get("data") if isinstance(listing, dict) else None
    entry = next((e for e in entries or [] if isinstance(e, dict) and e.get("id") == model), None)
    if entry is None:
        return None
    for key in ("max_model_len", "context_length", "context_window"):
        if tokens := _positive(entry.get(key)):
            return ContextWindow(tokens, f"GET {base}/models {key}")
    meta = entry.get("meta")
    if isinstance(meta, dict) and (tokens := _positive(meta.get("n_ctx_train"))):
        return ContextWindow(tokens, f"GET {base}/models meta.n_ctx_train")
    return None


def price_database_window(model: str, provider: str | None = None) -> ContextWindow | None:
    """The ``context_window`` genai-prices records for a hosted model (offline, its bundled data)."""
    try:
        import genai_prices
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        return None
    zero = genai_prices.Usage(input_tokens=0, output_tokens=0)
    # The name as given, then "provider/model" split, as the price lookup does.
    candidates = [(model, provider)]
    if "/" in model and all(model.split("/", 1)):
        prefix, rest = model.split("/", 1)
        candidates.append((rest, provider or prefix))
    for ref, prov in candidates:
        try:
            calc = genai_prices.calc_price(zero, ref, provider_id=prov)
        except LookupError:
            continue
        if tokens := _positive(getattr(calc.model, "context_window", None)):
            return ContextWindow(tokens, f"genai-prices {calc.provider.id}/{calc.model.id}")
    return None


def context_window(*, explicit: int | None = None, managed: ContextWindow | None = None,
                   base_url: str | None = None, model: str = "", api_key: str | None = None,
                   provider: str | None = None) -> ContextWindow:
    """The model's window from the first source that knows it (see the module docstring)."""
    if explicit is not None:
        if explicit <= 0:
            raise ValueError(f"--context-window must be a positive number of tokens, not {explicit}")
        return ContextWindow(explicit, "--context-window")
    if managed is not None and managed.tokens:
        return managed
    if base_url and (found := server_context_window(base_url, model, api_key)):
        return found
    if found := price_database_window(model, provider):
        return found
    return ContextWindow(None, "unknown (no --context-window, the server reports none, not in genai-prices)")


# ---------------------------------------------------------------------------------------------
# fitting


@dataclass(frozen=True)
class TokenEstimate:
    """Tokens of a list of chat messages from their characters (see the module docstring)."""

    chars_per_token: float = CHARS_PER_TOKEN

    @staticmethod
    def chars(message: dict[str, Any]) -> int:
        calls = message.get("tool_calls") or []
        return len(message.get("content") or "") + sum(len(json.dumps(c)) for c in calls)

    def tokens(self, messages: list[dict[str, Any]]) -> int:
        chars = sum(self.chars(m) for m in messages)
        return math.ceil(chars / self.chars_per_token) + MESSAGE_OVERHEAD_TOKENS * len(messages)

    def calibrated(self, messages: list[dict[str, Any]], prompt_tokens: int) -> TokenEstimate:
        """The ratio ``messages`` showed when the server counted them as ``prompt_tokens``."""
        content_tokens = prompt_tokens - MESSAGE_OVERHEAD_TOKENS * len(messages)
        chars = sum(self.chars(m) for m in messages)
        if content_tokens <= 0 or chars <= 0:
            return self
        low, high = _RATIO_BOUNDS
        return replace(self, chars_per_token=min(max(chars / content_tokens, low), high))


def shorten(text: str, remove: int) -> str:
    """``text`` without about ``remove`` characters from its middle (keeping at least
    ``MIN_KEPT_CHARS``), the gap marked with how much went; ``text`` itself when that saves nothing."""
    note_len = 80
    keep = max(len(text) - remove - note_len, MIN_KEPT_CHARS)
    if keep + note_len >= len(text):
        return text
    head, tail = keep - keep // 2, keep // 2
    removed = len(text) - head - tail
    return (f"{text[:head]}\n[... {removed} characters of this older output removed to fit the context ...]\n"
            f"{text[len(text) - tail:]}")


def fit_messages(messages: list[dict[str, Any]], budget: int, estimate: TokenEstimate = TokenEstimate(),
                 keep_last: int = KEEP_LAST) -> list[dict[str, Any]]:
    """``messages`` shortened to fit ``budget`` tokens: older observations first (oldest first), then
    older assistant messages; never the system prompt, the task (first user message) or the last
    ``keep_last`` messages. Returns new dicts for what changed, the same ones for the rest (the input
    is not modified). Raises ``CannotFit`` when even all of that is not enough."""
    fitted = list(messages)
    needed = estimate.tokens(fitted)
    if needed <= budget:
        return fitted
    first_user = next((i for i, m in enumerate(fitted) if m.get("role") == "user"), -1)
    older = [i for i in range(len(fitted) - keep_last)
             if i != first_user and fitted[i].get("role") != "system" and fitted[i].get("content")]
    observations = [i for i in older if fitted[i].get("role") in ("user", "tool")]
    replies = [i for i in older if fitted[i].get("role") == "assistant"]
    for i in observations + replies:
        excess_chars = math.ceil((needed - budget) * estimate.chars_per_token)
        short = shorten(fitted[i]["content"], excess_chars)
        if short is fitted[i]["content"]:
            continue
        fitted[i] = {**fitted[i], "content": short}
        needed = estimate.tokens(fitted)
        if needed <= budget:
            return fitted
    raise CannotFit(needed, budget)


def reply_margin(window: int) -> int:
    """Tokens kept free besides the reply's: for the estimate's error and the chat template."""
    return 128 + window // 32


def fit_budget(window: int, max_tokens: int) -> int:
    """Tokens the messages of one call may take in ``window`` with room for a ``max_tokens`` reply."""
    return window - max_tokens - reply_margin(window)


@dataclass
class FitState:
    """What the hook remembers between calls of one attempt, to calibrate the estimate."""

    estimate: TokenEstimate
    sent: list[dict[str, Any]]
    """The messages of the previous call, as sent."""
    input_tokens_before: int
    calls_before: int


def fit_for_call(ctx: Context, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hook a chat scaffold calls before each model call: ``messages`` fitted into the attempt's
    context window (``ctx.limits.context_window``; unchanged when unknown). Ends the attempt with
    ``context_limit`` when they cannot fit."""
    window = ctx.limits.context_window
    if not window:
        return messages
    state: FitState | None = ctx.fit_state
    estimate = state.estimate if state else TokenEstimate()
    meter = ctx.meter
    if state is not None and meter.calls == state.calls_before + 1:
        # The meter counted exactly the previous call since: its input tokens are that request's size.
        # Zero means the server reported no usage; the estimate then stays as it was.
        prompt_tokens = meter.usage.input_tokens - state.input_tokens_before
        if prompt_tokens > 0:
            estimate = estimate.calibrated(state.sent, prompt_tokens)
    budget = fit_budget(window, ctx.model.config.max_tokens)
    try:
        if budget <= 0:
            raise CannotFit(estimate.tokens(messages), budget)
        sent = fit_messages(messages, budget, estimate)
    except CannotFit as full:
        raise AttemptOver(ExitReason.CONTEXT_LIMIT,
                          f"context window {window} tokens, {ctx.model.config.max_tokens} kept for the reply: "
                          f"{full}") from None
    ctx.fit_state = FitState(estimate, sent, meter.usage.input_tokens, meter.calls)
    return sent
