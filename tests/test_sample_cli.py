"""`monkeys sample`, `runs show`, `export` and `evaluate --run` as a user runs them, against a scripted
OpenAI-compatible server on loopback (real HTTP) and the real Docker engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripted_server import ScriptedServer

pytestmark = pytest.mark.docker

FIXED, OTHER = "monkeys-suite__textkit-3", "monkeys-suite__textkit-7"
FIX = ("src/textkit/text.py\n<<<<<<< SEARCH\n    return text[: width - len(suffix) - 1] + suffix\n"
       "=======\n    return text[: width - len(suffix)] + suffix\n>>>>>>> REPLACE\n")


@pytest.fixture
def env(tmp_path, built_suite):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."scripted"]\ninput = 1.0\noutput = 2.0\n')
    return {**os.environ, "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs"),
            "PRICES": str(prices)}


def monkeys(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monkeys", *args], capture_output=True, text=True, timeout=900, env=env)


def sample(env, server, *extra: str) -> subprocess.CompletedProcess:
    return monkeys(env, "sample", "--base-url", server.base_url, "--model", "scripted", "--scaffold", "edit",
                   "--endpoint", "chat", "--prices", env["PRICES"], "--backoff", "0.01", "--run", "scripted",
                   "--instances", FIXED, OTHER, *extra)


def shown(env, run="scripted") -> dict:
    done = monkeys(env, "runs", "show", run, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sample_survives_429_and_500_resumes_extends_exports_and_evaluates(env, tmp_path):
    with ScriptedServer(lambda body: "The fix:\n" + FIX, fail_rate=0.3, seed=1) as server:
        first = sample(env, server, "-k", "3", "--workers", "4")
        assert first.returncode == 0, first.stderr
        assert server.failures[429] + server.failures[500] >= 2  # the failures really happened
        calls_after_first = len(server.requests)

        report = shown(env)
        rows = report["attempt_rows"]
        assert sorted((r["instance_id"], r["index"]) for r in rows) == sorted(
            (i, n) for i in (FIXED, OTHER) for n in range(3))
        # No attempt recorded as failing because of the server's errors.
        assert all(r["status"] == "done" and r["exit_reason"] == "answered" for r in rows if r["instance_id"] == FIXED)
        assert all(r["status"] == "done" for r in rows)
        assert all(r["tokens"] == {"input": 100, "cached_input": 0, "output": 20} for r in rows)
        assert all(r["cost"] == pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6) for r in rows)
        assert len({r["seed"] for r in rows}) == 6

        # Rerunning adds nothing; a larger k adds only the missing attempts.
        again = sample(env, server, "-k", "3")
        assert again.returncode == 0 and len(server.requests) == calls_after_first
        more = sample(env, server, "-k", "5", "--workers", "2")
        assert more.returncode == 0, more.stderr
        assert len(server.requests) == calls_after_first + 1 + 4  # a preflight, then the 4 missing attempts
        assert len(shown(env)["attempt_rows"]) == 10

        # Any other difference is refused, naming the field, before anything runs.
        refused = sample(env, server, "-k", "5", "--temperature", "0.2")
        assert refused.returncode == 2 and "model.temperature: run has 0.8, this call 0.2" in refused.stderr
        assert len(server.requests) == calls_after_first + 1 + 4

    trajectory = json.loads((Path(env["MONKEYS_RUNS"]) / "scripted" / rows[0]["trajectory"]).read_text())
    assert trajectory["config"]["k"] == 3 and trajectory["fingerprint"]["scaffold"] == "edit"
    assert trajectory["messages"][-1]["role"] == "assistant" and FIX in trajectory["messages"][-1]["content"]

    out = tmp_path / "export"
    done = monkeys(env, "export", "scripted", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.glob("preds_s*.jsonl")) == [f"preds_s{i}.jsonl" for i in range(5)]
    preds = [json.loads(line) for line in (out / "preds_s4.jsonl").read_text().splitlines()]
    assert {p["model_name_or_path"] for p in preds} == {"scripted__s4"}
    assert {p["instance_id"] for p in preds} == {FIXED, OTHER}
    assert len(list((out / "trajectories").rglob("*.json"))) == 10

    judged = monkeys(env, "evaluate", "--run", "scripted", "--json", "--workers", "2")
    assert judged.returncode == 0, judged.stderr
    verdicts = {(r["instance_id"], r["index"]): r["resolved_guarded"] for r in shown(env)["attempt_rows"]}
    assert all(verdicts[(FIXED, i)] for i in range(5))
    assert not any(verdicts[(OTHER, i)] for i in range(5))


def test_unknown_price_stops_before_the_first_attempt_naming_the_model(env):
    with ScriptedServer(lambda body: FIX, model="no-such-model-anywhere") as server:
        done = monkeys(env, "sample", "--base-url", server.base_url, "--model", "no-such-model-anywhere",
                       "--scaffold", "edit", "--instances", FIXED, "--run", "priced")
        assert done.returncode == 2
        assert "no-such-model-anywhere" in done.stderr and "price" in done.stderr.lower()
        assert server.calls == 0
    assert not (Path(env["MONKEYS_RUNS"]) / "priced").exists()


def test_a_token_budget_stops_scheduling_without_writing_empty_attempts(env):
    with ScriptedServer(lambda body: FIX) as server:
        done = sample(env, server, "-k", "5", "--workers", "1", "--budget-tokens", "250")
        assert done.returncode == 0, done.stderr
        assert "token budget 250 spent" in done.stdout
        assert server.calls == 1 + 3  # a preflight; 120 tokens per attempt: the third crosses the budget
    rows = shown(env)["attempt_rows"]
    assert len(rows) == 3 and all(r["status"] == "done" for r in rows)
    # Rounds of sample index: index 0 of both tasks before any index 1.
    assert sorted((r["index"], r["instance_id"]) for r in rows)[:2] == [(0, FIXED), (0, OTHER)]


def test_budgets_cover_the_whole_run_across_resumes(env):
    with ScriptedServer(lambda body: FIX) as server:
        first = sample(env, server, "-k", "5", "--workers", "1", "--budget-tokens", "250")
        assert first.returncode == 0, first.stderr
        assert server.calls == 1 + 3  # a preflight; 120 tokens per attempt: the third crosses the budget
        # Resuming with the same budget starts nothing: the run has already spent it.
        again = sample(env, server, "-k", "5", "--workers", "1", "--budget-tokens", "250")
        assert again.returncode == 0, again.stderr
        assert server.calls == 4 and "token budget 250 spent (360 over the whole run)" in again.stdout
        # A larger budget buys only the difference: 360 -> 480 -> 600.
        more = sample(env, server, "-k", "5", "--workers", "1", "--budget-tokens", "600")
        assert more.returncode == 0, more.stderr
        assert server.calls == 4 + 1 + 2 and "the whole run (failed tries included) 600 tokens" in more.stdout
    assert len(shown(env)["attempt_rows"]) == 5


def test_a_response_without_usage_is_flagged_and_reported_as_unknown_cost(env):
    with ScriptedServer(lambda body: FIX, usage=lambda body: None) as server:
        done = sample(env, server, "-k", "1")
        assert done.returncode == 0, done.stderr
        assert "2 tries had a model response without token usage" in done.stdout
    report = monkeys(env, "report", "scripted", "--json", "--bootstrap", "10")
    assert report.returncode == 0, report.stderr
    (run,) = json.loads(report.stdout)["runs"]
    assert run["cost"]["attempts_without_usage"] == 2
    assert run["cost"]["dollars"] is None and "without a usage block" in run["cost"]["unknown"]["tokens"]
    assert [t["reason"] for t in run["tasks_without_verdicts"]] == ["not_evaluated", "not_evaluated"]
    text = monkeys(env, "report", "scripted", "--bootstrap", "10")
    assert text.returncode == 0, text.stderr
    assert "dollars unknown" in text.stdout and "no verdict for" in text.stdout


def test_a_model_server_that_keeps_failing_gives_infra_errors_that_are_redone(env):
    with ScriptedServer(lambda body: FIX, fail_rate=1.0) as server:
        failed = sample(env, server, "-k", "1", "--retries", "2")
        assert failed.returncode == 1, failed.stderr
        assert server.calls == 2 + 4  # the preflight's 2 tries (no answer: the run goes on), 2 attempts x 2 tries
    rows = shown(env)["attempt_rows"]
    assert [r["status"] for r in rows] == ["infra_error", "infra_error"]
    with ScriptedServer(lambda body: FIX) as server:
        redone = sample(env, server, "-k", "1")
        assert redone.returncode == 0, redone.stderr
        assert server.calls == 1 + 2
    assert [r["status"] for r in shown(env)["attempt_rows"]] == ["done", "done"]
    # The failed tries are kept with what they cost, so the report counts every dollar.
    report = monkeys(env, "report", "scripted", "--json", "--bootstrap", "10")
    assert report.returncode == 0, report.stderr
    cost = json.loads(report.stdout)["runs"][0]["cost"]
    assert cost["tries_by_kind"]["infra_failed"] == 2 and cost["tries"] == 4


def test_a_model_the_server_does_not_serve_stops_the_run_naming_it(env):
    prices = Path(env["PRICES"])
    prices.write_text(prices.read_text() + '[models."not-served"]\ninput = 1.0\noutput = 2.0\n')
    with ScriptedServer(lambda body: FIX) as server:
        done = monkeys(env, "sample", "--base-url", server.base_url, "--model", "not-served", "--scaffold", "edit",
                       "--endpoint", "chat", "--prices", env["PRICES"], "-k", "3", "--run", "unserved",
                       "--instances", FIXED, OTHER, "--workers", "1")
        assert done.returncode == 2, done.stderr
        assert "not-served" in done.stderr and "check the model name" in done.stderr
        assert server.calls == 1  # stopped at the first refusal, not retried, not repeated per attempt
    assert shown(env, "unserved")["attempt_rows"] == []


def test_two_models_report_cost_per_solved_issue_side_by_side(env, tmp_path):
    prices = Path(env["PRICES"])
    prices.write_text(prices.read_text() + '[models."dear"]\ninput = 10.0\noutput = 30.0\n')
    broken = FIX.replace("len(suffix)] + suffix", "len(suffix) + 1] + suffix")
    replies = iter([FIX, FIX, broken, broken] * 5)  # workers 1, rounds: textkit-3 gets FIX, broken, FIX, broken
    for model, reply in (("scripted", lambda body: next(replies)), ("dear", lambda body: FIX)):
        with ScriptedServer(reply, model=model) as server:
            done = monkeys(env, "sample", "--base-url", server.base_url, "--model", model, "--scaffold", "edit",
                           "--endpoint", "chat", "--prices", env["PRICES"], "--run", model, "--workers", "1",
                           "-k", "4" if model == "scripted" else "1", "--instances", FIXED, OTHER)
            assert done.returncode == 0, done.stderr
        judged = monkeys(env, "evaluate", "--run", model, "--workers", "2")
        assert judged.returncode == 0, judged.stderr
    html = tmp_path / "both.html"
    done = monkeys(env, "report", "scripted", "dear", "--json", "--out", str(html), "--bootstrap", "100")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    cheap, dear = report["runs"]
    assert (cheap["run"], dear["run"]) == ("scripted", "dear")
    # scripted: 8 attempts at $0.00014, textkit-3 solved by its 1st and 3rd; dear: 2 attempts at $0.0016.
    assert cheap["cost"]["per_solved_issue"] == pytest.approx(8 * 140e-6) and cheap["cost"]["solved_tasks"] == 1
    assert dear["cost"]["per_solved_issue"] == pytest.approx(2 * 1600e-6)
    first = {p["k"]: p["value"] for p in cheap["coverage"]}
    assert first[1] == pytest.approx(0.25) and first[4] == pytest.approx(0.5)
    assert report["comparisons"] == [
        "4 attempts of scripted cost $0.0006 per issue and solve 50.0%, vs 1 attempt of dear at $0.0016 and 50.0%"]
    page = html.read_text()
    assert "scripted" in page and "dear" in page and report["comparisons"][0] in page
