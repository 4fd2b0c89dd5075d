"""Prices: token and hourly arithmetic, price files, and lookup through genai-prices' bundled data."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from genai_prices.types import ModelPrice, Tier, TieredPrices

from harness.scores.prices import (
    CPU_HOST_DOLLARS_PER_HOUR,
    GPU_HOST_DOLLARS_PER_HOUR,
    HourlyPrice,
    PriceFileError,
    PriceKind,
    TokenPrice,
    UnknownPrice,
    Usage,
    _token_price_from_genai,
    hourly_cost,
    lookup,
    price_dict,
    read_price_file,
    token_cost,
)

TOML = """
[models."deepseek-chat"]
input = 0.27          # $ per million input tokens
cached_input = 0.07
output = 1.10
[models."my-local-model"]
per_hour = 0.10
[models."no-cache-discount"]
input = 1
output = 2
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- Usage -------------------------------------------------------------------------------------

def test_usage_adds_field_by_field_and_totals_input_plus_output():
    total = Usage(100, 40, 10) + Usage(50, 0, 5)
    assert total == Usage(input_tokens=150, cached_input_tokens=40, output_tokens=15)
    assert total.total == 165  # cached tokens are inside input, not added again


def test_usage_keeps_reasoning_tokens_through_addition_inside_output():
    total = Usage(100, 0, 50, reasoning_tokens=30) + Usage(10, 0, 20, reasoning_tokens=20)
    assert total == Usage(input_tokens=110, output_tokens=70, reasoning_tokens=50)
    assert total.total == 180  # reasoning tokens are inside output, not added again


@pytest.mark.parametrize("kwargs", [{"input_tokens": -1}, {"output_tokens": -1},
                                    {"input_tokens": 10, "cached_input_tokens": 11},
                                    {"output_tokens": 5, "reasoning_tokens": 6}, {"reasoning_tokens": -1}])
def test_usage_rejects_impossible_counts(kwargs):
    with pytest.raises(ValueError):
        Usage(**kwargs)


# --- arithmetic --------------------------------------------------------------------------------

def test_token_cost_prices_cached_input_separately():
    price = TokenPrice(input=2.0, output=10.0, cached_input=0.5, source="test")
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=100_000)
    # 600k uncached * $2/M + 400k cached * $0.5/M + 100k out * $10/M
    assert token_cost(usage, price) == pytest.approx(1.2 + 0.2 + 1.0)


def test_token_cost_without_cached_price_charges_cached_input_at_input_price():
    price = TokenPrice(1.0, 4.0, source="test")
    usage = Usage(input_tokens=3000, cached_input_tokens=1000, output_tokens=500)
    assert token_cost(usage, price) == pytest.approx((3000 * 1.0 + 500 * 4.0) / 1e6)


def test_reasoning_tokens_cost_the_output_price_once():
    price = TokenPrice(input=1.0, output=8.0, cached_input=0.25, source="test")
    thinking = Usage(input_tokens=2000, cached_input_tokens=1000, output_tokens=900, reasoning_tokens=600)
    # 1000 uncached * $1/M + 1000 cached * $0.25/M + 900 out (600 of them reasoning) * $8/M
    assert token_cost(thinking, price) == pytest.approx((1000 * 1.0 + 1000 * 0.25 + 900 * 8.0) / 1e6)
    assert token_cost(thinking, price) == token_cost(Usage(2000, 1000, 900), price)


def test_token_cost_of_no_usage_is_zero():
    assert token_cost(Usage(), TokenPrice(1.0, 1.0, source="test")) == 0


def test_hourly_cost_scales_with_time_and_share():
    price = HourlyPrice(dollars_per_hour=3.0, source="test")
    assert hourly_cost(3600, price) == pytest.approx(3.0)
    assert hourly_cost(1800, price, share=0.25) == pytest.approx(0.375)
    assert hourly_cost(0, price) == 0


@pytest.mark.parametrize("seconds, share", [(-1, 1.0), (10, 0.0), (10, 1.5)])
def test_hourly_cost_rejects_bad_arguments(seconds, share):
    with pytest.raises(ValueError):
        hourly_cost(seconds, HourlyPrice(1.0, "test"), share)


def test_prices_reject_negative_dollars():
    with pytest.raises(ValueError):
        TokenPrice(-0.1, 1.0, source="test")
    with pytest.raises(ValueError):
        HourlyPrice(-1.0, "test")


def test_default_host_prices_are_realistic():
    assert 0.02 < CPU_HOST_DOLLARS_PER_HOUR < 0.5
    assert 1.0 < GPU_HOST_DOLLARS_PER_HOUR < 6.0


# --- price files -------------------------------------------------------------------------------

def test_read_toml_price_file(tmp_path):
    path = write(tmp_path, "prices.toml", TOML)
    prices = read_price_file(path)
    assert prices["deepseek-chat"] == TokenPrice(0.27, 1.10, 0.07, source=f"price file {path}:deepseek-chat")
    assert prices["my-local-model"] == HourlyPrice(0.10, f"price file {path}:my-local-model")
    assert prices["no-cache-discount"].cached_input is None
    assert isinstance(prices["no-cache-discount"].input, float)


def test_read_json_price_file(tmp_path):
    path = write(tmp_path, "prices.json", json.dumps(
        {"models": {"m": {"input": 1.5, "output": 3}, "local": {"per_hour": 0.5}}}))
    prices = read_price_file(path)
    assert prices["m"] == TokenPrice(1.5, 3.0, source=f"price file {path}:m")
    assert prices["local"] == HourlyPrice(0.5, f"price file {path}:local")


@pytest.mark.parametrize("entry, problem", [
    ("input = -1\noutput = 1", "input must be a finite number >= 0"),
    ('input = "cheap"\noutput = 1', "input must be a finite number >= 0"),
    ("input = true\noutput = 1", "input must be a finite number >= 0"),
    ("input = 1", "missing output"),
    ("cached_input = 1", "missing input and output"),
    ("input = 1\noutput = 1\nper_hour = 2", "not both"),
    ("input = 1\noutput = 1\nouptut = 2", "unknown key(s) ouptut"),
    ("per_hour = nan", "per_hour must be a finite number >= 0"),
])
def test_toml_price_file_errors_name_file_and_model(tmp_path, entry, problem):
    path = write(tmp_path, "bad.toml", f'[models."gpt-x"]\n{entry}\n')
    with pytest.raises(PriceFileError) as err:
        read_price_file(path)
    message = str(err.value)
    assert str(path) in message
    assert 'models."gpt-x"' in message
    assert problem in message
    assert err.value.model == "gpt-x"


def test_json_price_file_errors_name_file_and_model(tmp_path):
    path = write(tmp_path, "bad.json", json.dumps({"models": {"gpt-y": {"input": 1, "output": -2}}}))
    with pytest.raises(PriceFileError, match=r'bad\.json: models\."gpt-y": output must be'):
        read_price_file(path)


@pytest.mark.parametrize("name, text, problem", [
    ("syntax.toml", '[models."a"\ninput = 1', "invalid TOML"),
    ("syntax.json", '{"models": {', "invalid JSON at line 1"),
    ("top.toml", 'price = 1\n[models."a"]\ninput = 1\noutput = 1', "unknown top-level key(s) price"),
    ("empty.toml", "", "no models"),
    ("list.json", "[1, 2]", "top-level table"),
    ("entry.toml", 'models = { a = 1 }', "expected a table of prices"),
])
def test_malformed_price_files_name_the_file(tmp_path, name, text, problem):
    path = write(tmp_path, name, text)
    with pytest.raises(PriceFileError) as err:
        read_price_file(path)
    assert str(err.value).startswith(f"{path}: ")
    assert problem in str(err.value)


def test_missing_price_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(PriceFileError, match="nowhere.toml: cannot read"):
        read_price_file(path)


# --- lookup ------------------------------------------------------------------------------------

def test_lookup_known_model_in_genai_prices():
    price = lookup("gpt-4o-mini")
    assert isinstance(price, TokenPrice)
    assert price.input > 0 and price.output > 0
    assert price.cached_input is not None and price.cached_input < price.input
    assert price.source.startswith("genai-prices ")
    assert price.source.endswith(": openai/gpt-4o-mini")


def test_lookup_with_provider_and_with_provider_prefix_agree():
    plain = lookup("gpt-4o-mini", provider="openai")
    assert lookup("openai/gpt-4o-mini") == plain  # prefix stripped and used as the provider
    deepseek = lookup("deepseek/deepseek-chat", at=datetime(2025, 6, 2, 12, tzinfo=timezone.utc))
    assert deepseek.input > 0 and "deepseek/deepseek-chat" in deepseek.source


def test_price_file_wins_over_genai_prices(tmp_path):
    path = write(tmp_path, "prices.toml", '[models."gpt-4o-mini"]\ninput = 9\noutput = 99\n')
    price = lookup("gpt-4o-mini", provider="openai", price_file=read_price_file(path))
    assert price == TokenPrice(9.0, 99.0, source=f"price file {path}:gpt-4o-mini")
    # Other models still come from genai-prices.
    assert lookup("deepseek-chat", price_file=read_price_file(path)).source.startswith("genai-prices ")


def test_price_file_gives_local_models_an_hourly_price(tmp_path):
    prices = read_price_file(write(tmp_path, "prices.toml", TOML))
    assert lookup("my-local-model", price_file=prices) == prices["my-local-model"]


def test_unknown_model_raises_with_a_fix():
    with pytest.raises(UnknownPrice) as err:
        lookup("gemma-3-270m-it-local-xyz")
    message = str(err.value)
    assert "gemma-3-270m-it-local-xyz" in message
    assert 'models."gemma-3-270m-it-local-xyz" = { input =' in message
    assert "--price-per-hour" in message
    assert isinstance(err.value, LookupError)


def test_unknown_model_at_a_named_provider_names_the_provider():
    with pytest.raises(UnknownPrice, match=r"'no-such-model' \(provider 'openai'\)"):
        lookup("no-such-model", provider="openai")


def test_named_provider_is_not_swapped_for_another():
    # deepseek-chat exists at DeepSeek, but the caller said OpenAI: a different provider's price
    # must not be returned silently.
    with pytest.raises(UnknownPrice):
        lookup("deepseek-chat", provider="openai")


def test_tiered_genai_price_uses_the_base_tier():
    model_price = ModelPrice(
        input_mtok=TieredPrices(base=Decimal("1.25"), tiers=[Tier(start=200_000, price=Decimal("2.5"))]),
        cache_read_mtok=TieredPrices(base=Decimal("0.125"), tiers=[Tier(start=200_000, price=Decimal("0.25"))]),
        output_mtok=Decimal("10"))
    assert _token_price_from_genai(model_price, "s") == TokenPrice(1.25, 10.0, 0.125, source="s")


def test_genai_price_without_token_prices_is_not_a_token_price():
    assert _token_price_from_genai(ModelPrice(requests_kcount=Decimal("5")), "s") is None


# --- recording ---------------------------------------------------------------------------------

def test_price_dict_is_json_able():
    token = price_dict(TokenPrice(0.27, 1.1, 0.07, source="src"))
    assert token == {"kind": "tokens", "unit": "USD per million tokens", "input": 0.27, "cached_input": 0.07,
                     "output": 1.1, "source": "src"}
    hourly = price_dict(HourlyPrice(2.49, "default"))
    assert hourly == {"kind": "hourly", "unit": "USD per host-hour", "dollars_per_hour": 2.49, "source": "default"}
    assert json.loads(json.dumps([token, hourly])) == [token, hourly]


def test_price_kinds():
    assert TokenPrice(1, 1, source="s").kind is PriceKind.TOKENS
    assert HourlyPrice(1, "s").kind is PriceKind.HOURLY
