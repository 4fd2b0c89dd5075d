"""What a model costs: token prices for hosted APIs, host-hours for local models.

A hosted model (OpenAI, DeepSeek, Together, ...) is billed per token, so an attempt costs its
``Usage`` times a ``TokenPrice``. A local model (llama.cpp on a CPU, vLLM on a GPU) is billed by
the host it occupies, so an attempt costs its wall time times an ``HourlyPrice`` times its share
of the host.

Prices come from the user's price file first (so a negotiated or newer price always wins), then
from ``genai-prices``, pydantic's maintained price database, read offline from the data bundled
with the installed package (no auto-update: a run's cost must not depend on the network). A model
that neither knows raises ``UnknownPrice``: a cost report that silently counted it as free would
be worse than none.
"""

from __future__ import annotations

import enum
import json
import math
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# Default host prices for local models, used unless the user passes --price-per-hour. They are
# list prices for on-demand capacity, so a report using them answers "what would this cost to
# rent", not "what did my own machine cost".

CPU_HOST_DOLLARS_PER_HOUR = 0.08925
"""A 2-vCPU cloud VM: AWS c7i.large (2 vCPU, 4 GiB), Linux on-demand in us-east-1, $0.08925/h
(aws.amazon.com/ec2/pricing/on-demand). Enough for llama.cpp serving a small GGUF model."""

GPU_HOST_DOLLARS_PER_HOUR = 2.49
"""One H100 80GB at a typical GPU-cloud on-demand rate: Lambda's 1x H100 lists at $2.49/h, RunPod
Secure Cloud at about $2.69-2.79/h (2025-26 list prices). The hyperscalers charge far more per GPU
(AWS p5.48xlarge: $98.32/h for 8), so this is the cheap end of what renting one really costs."""

_PER_MILLION = 1_000_000


class PriceKind(str, enum.Enum):
    """How a model is billed: per token (a hosted API) or per host-hour (a local model)."""

    TOKENS = "tokens"
    HOURLY = "hourly"


@dataclass(frozen=True)
class Usage:
    """Tokens one or more model calls used.

    ``cached_input_tokens`` is the part of ``input_tokens`` served from a prompt cache (OpenAI's
    ``prompt_tokens_details.cached_tokens``): it is included in ``input_tokens``, not added to it.
    ``reasoning_tokens`` is the part of ``output_tokens`` a reasoning model spent thinking (OpenAI's
    ``completion_tokens_details.reasoning_tokens``): included in ``output_tokens`` and billed as output,
    since the providers bill hidden reasoning at the output price.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        # Reject impossible counts here, where they enter, rather than pricing them into a
        # negative or inflated cost that nobody would notice in an aggregate.
        for name in ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"Usage.{name} must be >= 0, got {getattr(self, name)}")
        if self.cached_input_tokens > self.input_tokens:
            raise ValueError(f"Usage.cached_input_tokens ({self.cached_input_tokens}) is part of input_tokens "
                             f"and cannot exceed it ({self.input_tokens})")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(f"Usage.reasoning_tokens ({self.reasoning_tokens}) is part of output_tokens "
                             f"and cannot exceed it ({self.output_tokens})")

    def __add__(self, other: Usage) -> Usage:
        """The usage of both, field by field (an attempt's total over its calls)."""
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(self.input_tokens + other.input_tokens,
                     self.cached_input_tokens + other.cached_input_tokens,
                     self.output_tokens + other.output_tokens,
                     self.reasoning_tokens + other.reasoning_tokens)

    @property
    def total(self) -> int:
        """Input plus output tokens (cached tokens are already inside input)."""
        return self.input_tokens + self.output_tokens


def _check_dollars(name: str, value: float) -> None:
    # bool is an int subclass; a stray `true` in a price file must not become $1.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class TokenPrice:
    """A hosted model's price in dollars per MILLION tokens.

    ``cached_input`` None means cached input costs the same as input (no cache discount).
    ``source`` says where the numbers came from, so a report can be audited.
    """

    input: float
    output: float
    cached_input: float | None = None
    # Keyword-only so it can follow the defaulted field yet still be required: a price that
    # cannot say where it came from cannot be checked.
    source: str = field(kw_only=True)

    def __post_init__(self) -> None:
        _check_dollars("TokenPrice.input", self.input)
        _check_dollars("TokenPrice.output", self.output)
        if self.cached_input is not None:
            _check_dollars("TokenPrice.cached_input", self.cached_input)

    @property
    def kind(self) -> PriceKind:
        """Always ``PriceKind.TOKENS``."""
        return PriceKind.TOKENS


@dataclass(frozen=True)
class HourlyPrice:
    """A local model's price: what its host costs per hour, in dollars."""

    dollars_per_hour: float
    source: str

    def __post_init__(self) -> None:
        _check_dollars("HourlyPrice.dollars_per_hour", self.dollars_per_hour)

    @property
    def kind(self) -> PriceKind:
        """Always ``PriceKind.HOURLY``."""
        return PriceKind.HOURLY


Price = TokenPrice | HourlyPrice


_ONE_LINE_EXAMPLE = 'models."{model}" = {{ input = 0.27, cached_input = 0.07, output = 1.10 }}'


class UnknownPrice(LookupError):
    """No price is known for a model; the message says how to supply one."""

    def __init__(self, model: str, provider: str | None = None, reason: str | None = None):
        self.model = model
        self.provider = provider
        self.reason = reason
        who = f"model {model!r}" + (f" (provider {provider!r})" if provider else "")
        why = f": {reason}" if reason else ""
        super().__init__(
            f"no price known for {who}{why}. "
            f"For a hosted model, pass a price file (TOML, dollars per million tokens) with a line like\n"
            f"    {_ONE_LINE_EXAMPLE.format(model=model)}\n"
            f"For a local model, pass --price-per-hour DOLLARS (the host's cost per hour).")


class PriceFileError(ValueError):
    """A price file that cannot be used; the message names the file, the entry and the problem."""

    def __init__(self, path: str | Path, problem: str, model: str | None = None):
        self.path = str(path)
        self.model = model
        self.problem = problem
        where = f"{path}: " + (f'models."{model}": ' if model is not None else "")
        super().__init__(where + problem)


_TOKEN_KEYS = frozenset({"input", "cached_input", "output"})
_HOURLY_KEYS = frozenset({"per_hour"})


def _parse_entry(path: Path, model: str, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise PriceFileError(path, f"expected a table of prices, got {type(entry).__name__}", model)
    unknown = set(entry) - _TOKEN_KEYS - _HOURLY_KEYS
    if unknown:
        raise PriceFileError(path, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: input, cached_input, "
                                   f"output (dollars per million tokens) or per_hour (dollars per host-hour)", model)
    for key, value in entry.items():
        try:
            _check_dollars(key, value)
        except ValueError as exc:
            raise PriceFileError(path, str(exc), model) from None
    source = f"price file {path}:{model}"
    has_tokens = bool(set(entry) & _TOKEN_KEYS)
    if "per_hour" in entry:
        if has_tokens:
            raise PriceFileError(path, "give either input/output token prices or per_hour, not both", model)
        return HourlyPrice(float(entry["per_hour"]), source)
    missing = [key for key in ("input", "output") if key not in entry]
    if missing:
        raise PriceFileError(path, f"missing {' and '.join(missing)} (or give per_hour for a local model)", model)
    cached = entry.get("cached_input")
    return TokenPrice(float(entry["input"]), float(entry["output"]),
                      None if cached is None else float(cached), source=source)


def read_price_file(path: str | Path) -> dict[str, Price]:
    """Read a price file: model name -> price.

    TOML (JSON when the suffix is ``.json``, with the same shape)::

        [models."deepseek-chat"]
        input = 0.27          # $ per million input tokens
        cached_input = 0.07   # optional; defaults to input
        output = 1.10
        [models."my-local-model"]
        per_hour = 0.10       # $ per host-hour

    Raises ``PriceFileError`` naming the file (and the model entry) for anything it cannot use.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PriceFileError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise PriceFileError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already carries "(at line N, column M)".
        raise PriceFileError(path, f"invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise PriceFileError(path, f"not UTF-8 text: {exc}") from None
    if not isinstance(data, dict):
        raise PriceFileError(path, "expected a top-level table with a 'models' table")
    extra = set(data) - {"models"}
    if extra:
        raise PriceFileError(path, f"unknown top-level key(s) {', '.join(sorted(extra))}; only 'models' is allowed")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise PriceFileError(path, 'no models: expected entries like [models."deepseek-chat"]')
    return {name: _parse_entry(path, name, entry) for name, entry in models.items()}


def _genai_version() -> str:
    from importlib.metadata import version

    return version("genai-prices")


def _dollars(value: Any) -> float | None:
    """A genai-prices price (Decimal, TieredPrices or None) as dollars per million tokens."""
    if value is None:
        return None
    # Tiered prices (e.g. Gemini 2.5 Pro above 200k prompt tokens) depend on each call's prompt
    # length, which a single per-model price cannot express; agent prompts stay far below the
    # thresholds, so the base tier is the rate actually charged.
    base = getattr(value, "base", value)
    return float(base)


def _token_price_from_genai(model_price: Any, source: str) -> TokenPrice | None:
    """genai-prices' ``ModelPrice`` as a ``TokenPrice``; None when it has no input/output token price."""
    input_ = _dollars(getattr(model_price, "input_mtok", None))
    output = _dollars(getattr(model_price, "output_mtok", None))
    if input_ is None or output is None:
        # Priced per request, per second or per image only: not something tokens can cost.
        return None
    # Cache writes (Anthropic's cache_write_mtok) are not tracked by Usage, so they are charged at
    # the input price: a slight underestimate where a provider charges extra for writing a cache.
    return TokenPrice(input_, output, _dollars(getattr(model_price, "cache_read_mtok", None)), source=source)


def _genai_candidates(model: str, provider: str | None) -> list[tuple[str, str | None]]:
    # As given first; then "provider/model" split, its prefix as the provider (a LiteLLM-style or
    # OpenRouter-style name), and with the caller's provider if that differs. The caller's
    # provider is never dropped for auto-detection: the same model costs different amounts at
    # different providers, and a wrong provider's price is worse than an UnknownPrice.
    candidates: list[tuple[str, str | None]] = [(model, provider)]
    if "/" in model:
        prefix, rest = model.split("/", 1)
        if prefix and rest:
            candidates.append((rest, prefix))
            if provider and provider.lower() != prefix.lower():
                candidates.append((rest, provider))
    return candidates


def _lookup_genai(model: str, provider: str | None, at: datetime | None) -> TokenPrice:
    try:
        import genai_prices
    except ImportError:  # pragma: no cover - it is a dependency; this only explains a broken install
        raise UnknownPrice(model, provider, "genai-prices is not installed") from None
    # calc_price on zero usage is the package's public way to resolve a model to the price in
    # force at a moment (`at`, None = now); only its `.model_price` is used. Note that some prices
    # depend on the time of day (DeepSeek's off-peak discount), so `at` matters.
    zero = genai_prices.Usage(input_tokens=0, output_tokens=0)
    reasons: list[str] = []
    for ref, prov in _genai_candidates(model, provider):
        try:
            calc = genai_prices.calc_price(zero, ref, provider_id=prov, genai_request_timestamp=at)
        except LookupError as exc:
            reasons.append(str(exc))
            continue
        source = f"genai-prices {_genai_version()}: {calc.provider.id}/{calc.model.id}"
        price = _token_price_from_genai(calc.model_price, source)
        if price is None:
            reasons.append(f"{calc.provider.id}/{calc.model.id} has no per-token input and output price")
            continue
        return price
    raise UnknownPrice(model, provider, "not in genai-prices (" + "; ".join(reasons) + ")")


def lookup(model: str, *, provider: str | None = None, price_file: dict[str, Price] | None = None,
           at: datetime | None = None) -> Price:
    """The price of ``model``: the user's price file (exact model name) first, then genai-prices.

    genai-prices is asked with ``provider`` when given, for the name as given and, for a
    ``"provider/model"`` name, for the model under that provider (``openai/gpt-4o-mini`` ->
    provider ``openai``, model ``gpt-4o-mini``). Its price is the one in force at ``at``
    (a naive datetime is UTC; None = now). Raises ``UnknownPrice`` rather than ever returning zero for a
    model it does not know.
    """
    if price_file and model in price_file:
        return price_file[model]
    return _lookup_genai(model, provider, at)


def token_cost(usage: Usage, price: TokenPrice) -> float:
    """Dollars for ``usage``: uncached input at the input price, cached input at the cached price
    (the input price when the model has none), output at the output price. Reasoning tokens are
    output tokens (``output_tokens`` includes them) and cost the output price: no provider bills them
    apart, so they are neither added again nor discounted."""
    cached_rate = price.input if price.cached_input is None else price.cached_input
    uncached = usage.input_tokens - usage.cached_input_tokens
    return (uncached * price.input + usage.cached_input_tokens * cached_rate
            + usage.output_tokens * price.output) / _PER_MILLION


def hourly_cost(seconds: float, price: HourlyPrice, share: float = 1.0) -> float:
    """Dollars for ``seconds`` of host time at ``price``, times ``share``: this attempt's fraction
    of the host (1/workers when that many attempts run on it at once)."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    return seconds / 3600 * price.dollars_per_hour * share


def price_dict(price: Price) -> dict[str, Any]:
    """A price as plain JSON-able data, for a run's fingerprint and its report."""
    if isinstance(price, TokenPrice):
        return {"kind": PriceKind.TOKENS.value, "unit": "USD per million tokens", "input": price.input,
                "cached_input": price.cached_input, "output": price.output, "source": price.source}
    if isinstance(price, HourlyPrice):
        return {"kind": PriceKind.HOURLY.value, "unit": "USD per host-hour",
                "dollars_per_hour": price.dollars_per_hour, "source": price.source}
    raise TypeError(f"not a price: {price!r}")
