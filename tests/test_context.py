"""The context window: fitting a conversation into it (pure), finding it (real HTTP servers on
loopback, the price database, the bundled GGUF's header), and a bash attempt in a real container
whose conversation outgrows it ending with context_limit and its diff kept."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

from agent.attempt import AttemptLimits, ExitReason, run_attempt
from agent.context import (CannotFit, TokenEstimate, context_window, fit_budget, fit_messages,
                           price_database_window, server_context_window, shorten)
from agent.model import Model, ModelConfig
from agent.parameters import gguf_context_length, gguf_metadata
from agent.prompts import Templates
from agent.scaffolds import BashScaffold
from agent.servers import (BUNDLED_MODEL, CPU_CONTEXT_MAX, ServerError, ServerKind, ServerSpec, bundled_gguf,
                           llama_cpp_context)
from harness.containers import ContainerRuntime
from harness.image_names import image_name
from harness.scores.prices import TokenPrice
from tests.conftest import unavailable
from tests.scripted_server import ScriptedServer, bash, turn

NOTE = "removed to fit the context"


def conversation(outputs: list[str]) -> list[dict]:
    """A system prompt, a task, then one assistant reply and its observation per output."""
    messages = [{"role": "system", "content": "S" * 2000}, {"role": "user", "content": "TASK " * 400}]
    for i, output in enumerate(outputs):
        messages += [{"role": "assistant", "content": f"step {i}\n```bash\ncmd {i}\n```"},
                     {"role": "user", "content": output}]
    return messages


# ---------------------------------------------------------------------------------------------
# fitting (pure)


def test_a_conversation_that_fits_is_sent_as_it_is():
    messages = conversation(["a" * 1000, "b" * 1000])
    assert fit_messages(messages, 10_000) == messages


def test_older_observations_are_shortened_first_oldest_first_and_the_rest_is_kept():
    outputs = [f"{i}" * 6000 for i in range(6)]
    messages = conversation(outputs)
    original = [dict(m) for m in messages]
    estimate = TokenEstimate()
    total = estimate.tokens(messages)
    # Room for all but about 1.5 observations: the oldest goes to its minimum, the next is cut a little.
    budget = total - int(7500 / estimate.chars_per_token)
    fitted = fit_messages(messages, budget, estimate)
    assert estimate.tokens(fitted) <= budget
    assert messages == original  # the caller's list (the trajectory's) is untouched
    assert fitted[0] == messages[0] and fitted[1] == messages[1]  # system prompt and task
    assert fitted[-4:] == messages[-4:]  # the last two turns
    assert all(f["content"] == m["content"] for f, m in zip(fitted, messages) if m["role"] == "assistant")
    oldest, second, third = fitted[3]["content"], fitted[5]["content"], fitted[7]["content"]
    assert NOTE in oldest and len(oldest) < 800 and oldest.startswith("0" * 300) and oldest.endswith("0" * 300)
    assert NOTE in second and 800 < len(second) < 6000  # cut only as much as still needed
    assert third == "2" * 6000  # newer older outputs are left whole once it fits
    removed = int(oldest.split("[... ")[1].split(" characters")[0])
    assert removed == 6000 - 600  # the note says how much went


def test_assistant_messages_are_shortened_only_after_every_older_observation():
    messages = conversation(["o" * 700] * 4)
    for m in messages[2:-4:2]:
        m["content"] = "A" * 5000  # long older replies, short older observations
    estimate = TokenEstimate()
    budget = estimate.tokens(messages) - 1000
    fitted = fit_messages(messages, budget, estimate)
    assert all(NOTE in fitted[i]["content"] for i in (3, 5))  # observations first (all that could be)
    assert NOTE in fitted[2]["content"] and fitted[-4:] == messages[-4:]


def test_a_conversation_whose_kept_part_exceeds_the_budget_cannot_fit():
    messages = conversation(["x" * 500, "y" * 20_000, "z" * 20_000])
    with pytest.raises(CannotFit) as raised:
        fit_messages(messages, 5_000)
    assert raised.value.budget == 5_000 and raised.value.needed > 5_000
    assert fit_budget(4096, 4000) <= 0  # a reply as long as the window leaves nothing


def test_the_estimate_is_calibrated_by_what_the_server_counted():
    messages = conversation(["q" * 3000])
    chars = sum(len(m["content"]) for m in messages)
    tokens = chars // 2 + 4 * len(messages)  # a tokenizer at 2 characters a token
    calibrated = TokenEstimate().calibrated(messages, tokens)
    assert calibrated.chars_per_token == pytest.approx(2.0, rel=0.01)
    assert calibrated.tokens(messages) == pytest.approx(tokens, rel=0.01)
    assert TokenEstimate().calibrated(messages, 100).chars_per_token == 6.0  # clamped, never absurd
    assert TokenEstimate().calibrated(messages, 0).chars_per_token == 3.5  # nothing reported: unchanged


def test_shorten_keeps_head_and_tail_and_leaves_short_texts_alone():
    text = "".join(f"{i:05d}\n" for i in range(2000))
    short = shorten(text, 9000)
    assert short.startswith("00000\n") and short.endswith("01999\n") and NOTE in short
    assert shorten("tiny", 100) == "tiny"


# ---------------------------------------------------------------------------------------------
# discovery


def test_the_window_comes_from_llama_cpp_props_and_from_vllm_max_model_len():
    with ScriptedServer(lambda body: "", n_ctx=4096, max_model_len=32768) as server:
        found = server_context_window(server.base_url, "scripted")
        assert found.tokens == 4096 and "/props" in found.source  # what a slot may fill, first
    with ScriptedServer(lambda body: "", max_model_len=32768) as server:
        found = server_context_window(server.base_url, "scripted")
        assert found.tokens == 32768 and "max_model_len" in found.source
        assert server_context_window(server.base_url, "another-model") is None  # not its entry
        assert context_window(explicit=2048, base_url=server.base_url, model="scripted").tokens == 2048


def test_without_a_server_answer_the_price_database_then_unknown():
    with ScriptedServer(lambda body: "", model="gpt-4o-mini") as server:
        assert server_context_window(server.base_url, "gpt-4o-mini") is None
        found = context_window(base_url=server.base_url, model="gpt-4o-mini")
        assert found.tokens == 128_000 and found.source.startswith("genai-prices")
    assert price_database_window("openai/gpt-4o-mini").tokens == 128_000
    with ScriptedServer(lambda body: "") as server:
        gone = server.base_url
        unknown = context_window(base_url=server.base_url, model="scripted")
        assert unknown.tokens is None and unknown.source.startswith("unknown")
    assert server_context_window(gone, "scripted", timeout=2) is None  # a server that is gone says nothing
    with pytest.raises(ValueError, match="--context-window"):
        context_window(explicit=0)


# ---------------------------------------------------------------------------------------------
# the managed llama.cpp server's context


def _gguf(path, metadata: dict[str, int | str]) -> None:
    """A GGUF v3 header with ``metadata`` (strings and uint32s) and no tensors."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata)))
    for key, value in metadata.items():
        out += struct.pack("<Q", len(key)) + key.encode()
        if isinstance(value, str):
            out += struct.pack("<IQ", 8, len(value)) + value.encode()
        else:
            out += struct.pack("<II", 4, value)
    path.write_bytes(bytes(out))


def test_the_managed_llama_cpp_context_is_read_from_the_bundled_gguf():
    try:
        gguf = bundled_gguf()
    except ServerError as err:
        unavailable(str(err))
    assert gguf_metadata(gguf.path)["general.architecture"] == "gemma3"
    assert gguf_context_length(gguf.path) == 32768  # Gemma 3 270M's trained context
    window = llama_cpp_context(gguf.path)
    assert window.tokens == 32768 and gguf.path.name in window.source
    argv = ServerSpec(ServerKind.LLAMA_CPP, str(gguf.path), BUNDLED_MODEL).argv(8000)
    assert argv[argv.index("--n_ctx") + 1] == "32768"
    argv = ServerSpec(ServerKind.LLAMA_CPP, str(gguf.path), BUNDLED_MODEL, context=4096).argv(8000)
    assert argv[argv.index("--n_ctx") + 1] == "4096"  # --context overrides


def test_a_large_models_context_is_capped_for_a_cpu(tmp_path):
    big = tmp_path / "llama-8b.gguf"
    # An 8B Llama: 128k trained, 128 KiB of f16 KV cache a token.
    _gguf(big, {"general.architecture": "llama", "llama.context_length": 131072, "llama.block_count": 32,
                "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8, "llama.embedding_length": 4096})
    window = llama_cpp_context(big)
    assert window.tokens == 16384 and "KV cache" in window.source and window.tokens < CPU_CONTEXT_MAX
    bare = tmp_path / "bare.gguf"
    _gguf(bare, {"general.architecture": "llama"})
    assert llama_cpp_context(bare).tokens == 8192 and "states no context_length" in llama_cpp_context(bare).source


def test_a_managed_vllm_context_is_its_flag_or_the_models_config(tmp_path):
    folder = tmp_path / "coder"
    folder.mkdir()
    (folder / "config.json").write_text('{"max_position_embeddings": 16384}')
    spec = ServerSpec(ServerKind.VLLM, str(folder), "coder")
    assert spec.window().tokens == 16384 and "config.json" in spec.window().source
    assert "--max-model-len" not in spec.argv(8000)  # vLLM derives the same number itself
    assert ServerSpec(ServerKind.VLLM, str(folder), "coder", context=4096).window().tokens == 4096
    assert ServerSpec(ServerKind.VLLM, "org/not-downloaded", "x").window() is None  # unknown before it starts


# ---------------------------------------------------------------------------------------------
# an attempt that outgrows its window


@pytest.mark.docker
def test_a_conversation_that_outgrows_the_context_window_ends_with_context_limit_and_its_diff(
        docker_client, bundled_tasks, built_suite):
    task = next(t for t in bundled_tasks if t.instance_id == "monkeys-suite__textkit-3")
    steps = ["printf '# context test\\n' >> src/textkit/text.py && git diff --stat",
             *[f"python -c \"print('{i}' * 3000)\"" for i in range(1, 4)],
             *[f"python -c \"print('{i}' * 8000)\"" for i in range(4, 12)]]

    def usage(body: dict) -> dict:
        # A tokenizer at 3 characters a token plus the template's few per message, as a server counts.
        chars = sum(len(m.get("content") or "") for m in body["messages"])
        prompt = chars // 3 + 4 * len(body["messages"])
        return {"prompt_tokens": prompt, "completion_tokens": 20, "total_tokens": prompt + 20}

    limits = AttemptLimits(context_window=4096)
    with ScriptedServer(lambda body: bash(steps[turn(body)]), usage=usage) as server:
        model = Model(ModelConfig("scripted", base_url=server.base_url, backoff_initial=0.01, max_tokens=256))
        result = run_attempt(runtime=ContainerRuntime(docker_client, "test-context"), image=image_name(task),
                             task=task, index=0, seed=7, model=model, scaffold=BashScaffold(),
                             templates=Templates.load("bash"), limits=limits,
                             price=TokenPrice(1.0, 2.0, source="test"), share=1.0)
        requests = server.requests
    assert result.exit_reason is ExitReason.CONTEXT_LIMIT, result.error
    assert "+# context test" in result.patch  # the work done before the window filled is kept
    assert "context window 4096" in result.error
    # Before the end, older outputs were shortened and the requests still went out.
    assert any(NOTE in (m.get("content") or "") for r in requests for m in r["messages"])
    assert all(sum(len(m.get("content") or "") for m in r["messages"]) // 3 + 4 * len(r["messages"])
               <= fit_budget(4096, 256) for r in requests)
    assert 4 < len(requests) < len(steps)
    # The trajectory keeps every output whole.
    outputs = [e["content"] for e in result.trajectory if e["role"] == "user"]
    assert any("1" * 3000 in o for o in outputs) and not any(NOTE in o for o in outputs)
    assert result.trajectory[-1]["content"].startswith("attempt ended: context_limit")


@pytest.mark.docker
def test_sample_records_the_window_and_its_source_and_the_flag_wins(tmp_path, built_suite):
    env = {**os.environ, "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs")}
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."scripted"]\ninput = 1.0\noutput = 2.0\n')
    fix = ("src/textkit/text.py\n<<<<<<< SEARCH\n    return text[: width - len(suffix) - 1] + suffix\n"
           "=======\n    return text[: width - len(suffix)] + suffix\n>>>>>>> REPLACE\n")

    def sample(server, run: str, *extra: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "monkeys", "sample", "--base-url", server.base_url, "--model", "scripted",
             "--scaffold", "edit", "--endpoint", "chat", "--prices", str(prices), "--run", run,
             "--instances", "monkeys-suite__textkit-3", *extra], capture_output=True, text=True, timeout=900, env=env)
        assert done.returncode == 0, done.stderr
        (trajectory,) = (tmp_path / "runs" / run / "trajectories").rglob("*.json")
        return json.loads(trajectory.read_text())

    with ScriptedServer(lambda body: fix, n_ctx=6144) as server:
        asked = sample(server, "asked")
        told = sample(server, "told", "--context-window", "3000")
    assert asked["config"]["context_window"]["tokens"] == 6144 and "/props" in asked["config"]["context_window"]["source"]
    assert asked["fingerprint"]["limits"]["context_window"] == 6144
    assert told["config"]["context_window"] == {"tokens": 3000, "source": "--context-window"}


def test_a_reply_budget_that_leaves_no_room_for_the_conversation_is_refused_before_any_attempt(tmp_path):
    # --max-tokens 4096 of a 4096-token window: every bash attempt would end at its first call.
    env = {**os.environ, "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs")}
    with ScriptedServer(lambda body: "```bash\nsubmit\n```") as server:
        done = subprocess.run(
            [sys.executable, "-m", "monkeys", "sample", "--base-url", server.base_url, "--model", "scripted",
             "--scaffold", "bash", "--run", "tight", "--context-window", "4096", "--max-tokens", "4096",
             "--price-per-hour", "0.1",
             "--instances", "monkeys-suite__textkit-3"], capture_output=True, text=True, timeout=300, env=env)
        assert server.calls == 0
    assert done.returncode == 2
    assert "--max-tokens 4096" in done.stderr and "4096-token context window" in done.stderr and "lower --max-tokens" in done.stderr
    assert not (tmp_path / "runs" / "tight" / "trajectories").exists()
