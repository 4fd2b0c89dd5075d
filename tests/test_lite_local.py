"""A SWE-bench row in the legacy 12-field format, end to end with no registry: its instance image built
from a bare git mirror and a user's recipe, tagged with the official name, then sampled and judged at
/testbed through the spec table's test command, exactly as for a real Lite task.

The repository is a bundled one (textkit) presented as pytest-dev/pytest at a version whose official
test command is ``pytest -rA``, so the legacy path runs for real: spec lookup, directives from the
test patch, test-file reset, tolerant reinstall, official parser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.image_names import official_image
from harness.suite import materialize
from tests.scripted_server import ScriptedServer

pytestmark = pytest.mark.docker

SOURCE = "monkeys-suite__textkit-3"
INSTANCE = "pytest-dev__pytest-90003"
FIX = ("src/textkit/text.py\n<<<<<<< SEARCH\n    return text[: width - len(suffix) - 1] + suffix\n"
       "=======\n    return text[: width - len(suffix)] + suffix\n>>>>>>> REPLACE\n")


def monkeys(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monkeys", *args], capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture
def lite_like(tmp_path, bundled_tasks, docker_client, built_suite):
    source = next(t for t in bundled_tasks if t.instance_id == SOURCE)
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    subprocess.run(["git", "clone", "-q", "--mirror", str(materialize(source.repo)), str(mirrors / "pytest-dev__pytest.git")],
                   check=True)
    row = {  # the 12 legacy fields, test lists as JSON strings, as the 2024 datasets publish them
        "repo": "pytest-dev/pytest", "instance_id": INSTANCE, "base_commit": source.base_commit,
        "patch": source.patch, "test_patch": source.test_patch, "problem_statement": source.problem_statement,
        "hints_text": "", "created_at": "2024-01-01T00:00:00Z", "version": "8.0",
        "FAIL_TO_PASS": json.dumps(list(source.fail_to_pass)), "PASS_TO_PASS": json.dumps(list(source.pass_to_pass)),
        "environment_setup_commit": source.base_commit,
    }
    rows = tmp_path / "lite-like.jsonl"
    rows.write_text(json.dumps(row) + "\n")
    recipes = tmp_path / "recipes.toml"
    recipes.write_text('[repos."pytest-dev/pytest"]\npython = "3.11"\npackages = ["pytest==8.3.4"]\n'
                       '# the bundled repo keeps its code in src/\ndockerfile = "ENV PYTHONPATH=/testbed/src"\n')
    env = {**os.environ, "MONKEYS_CACHE": str(tmp_path / "cache"), "MONKEYS_RUNS": str(tmp_path / "runs")}
    made = official_image(INSTANCE)
    yield env, rows, recipes, mirrors, made
    subprocess.run(["docker", "rmi", "-f", made], capture_output=True)


def test_a_legacy_row_is_built_from_a_mirror_and_a_recipe_then_sampled_and_judged(lite_like, docker_client):
    env, rows, recipes, mirrors, made = lite_like
    # Without an image, the task is named and left out rather than failing the run.
    missing = monkeys(env, "evaluate", "--tasks", str(rows), "--gold", "--run", "before", "--json")
    assert INSTANCE in missing.stdout + missing.stderr and "images pull" in missing.stdout + missing.stderr

    built = monkeys(env, "images", "build", "--tasks", str(rows), "--recipes", str(recipes),
                    "--repo-mirror", str(mirrors), "--registry", "none", "--json")
    assert built.returncode == 0, built.stderr
    image = docker_client.images.get(made)  # tagged with the official name
    assert image.labels["monkeys.instance"] == INSTANCE
    head = docker_client.containers.run(made, ["git", "-C", "/testbed", "rev-parse", "HEAD"], remove=True)
    assert head.decode().strip() == json.loads(rows.read_text())["base_commit"]

    # Building again reuses it; an official image of that name would be used as it is.
    again = monkeys(env, "images", "build", "--tasks", str(rows), "--recipes", str(recipes),
                    "--repo-mirror", str(mirrors), "--registry", "none", "--json")
    assert again.returncode == 0 and "built" not in json.loads(again.stdout)["counts"]

    # Judged with no recipe given: the official name is what every command looks for.
    gold = monkeys(env, "evaluate", "--tasks", str(rows), "--gold", "--run", "gold", "--json")
    assert gold.returncode == 0, gold.stderr
    assert json.loads(gold.stdout)["resolved_ids"] == [INSTANCE]
    empty = monkeys(env, "evaluate", "--tasks", str(rows), "--empty", "--run", "empty", "--json")
    assert json.loads(empty.stdout)["resolved_ids"] == []

    # Sampling in containers from that image, then judging the attempts.
    with ScriptedServer(lambda body: "The fix:\n" + FIX) as server:
        prices = rows.parent / "prices.toml"
        prices.write_text('[models."scripted"]\ninput = 1.0\noutput = 2.0\n')
        sampled = monkeys(env, "sample", "--tasks", str(rows), "--base-url", server.base_url, "--model", "scripted",
                          "--scaffold", "edit", "--endpoint", "chat", "--prices", str(prices), "--run", "lite", "-k", "2")
        assert sampled.returncode == 0, sampled.stderr
    judged = monkeys(env, "evaluate", "--run", "lite", "--json")
    assert judged.returncode == 0, judged.stderr
    assert json.loads(judged.stdout)["resolved_ids"] == [INSTANCE]
