"""An attempt's patch is the diff from the tree its container started with, not from base_commit:
images whose tree differs from base_commit (pre_install edits committed on top of it as a
"SWE-bench" commit or left uncommitted, files the install step left untracked) must give a patch
holding the model's edit alone, one that applies to a fresh container of the same image. Real
Docker, the bundled suite's images, a scripted OpenAI-compatible server."""

from __future__ import annotations

import re
import secrets

import pytest

from agent.attempt import AttemptLimits, ExitReason, run_attempt
from agent.model import Model, ModelConfig
from agent.prompts import Templates
from agent.scaffolds import BashScaffold
from harness.containers import ContainerRuntime
from harness.image_names import image_name
from harness.scores.prices import TokenPrice
from tests.scripted_server import ScriptedServer, bash, turn
from tests.temporary_images import temporary_images

pytestmark = pytest.mark.docker

TASK = "monkeys-suite__textkit-3"
# What the image changes on top of base_commit, each marked so a patch that carries it shows it.
COMMITTED = "image-committed = true"  # appended to pyproject.toml and committed, as SWE-bench images do
UNCOMMITTED = "image-uncommitted edit"  # appended to README.md, left in the working tree
UNTRACKED = "src/textkit/_built.py"  # written by "the install step", not gitignored


@pytest.fixture(scope="module")
def task(bundled_tasks, built_suite):
    return next(t for t in bundled_tasks if t.instance_id == TASK)


@pytest.fixture
def runtime(docker_client):
    return ContainerRuntime(docker_client, "test-patch-base")


@pytest.fixture(scope="module")
def images(docker_client, task):
    """(an image whose tree differs from base_commit in all three ways, the same image where the
    starting tree cannot be read: /tmp/monkeys-start.index is a directory, which `rm -f` refuses)."""
    tag = f"monkeys-test/start-tree:{secrets.token_hex(4)}"
    changed = (f"FROM {image_name(task)}\n"
               f"RUN cd /testbed && printf '\\n# {COMMITTED}\\n' >> pyproject.toml "
               "&& git -c user.name=swe -c user.email=swe@example.com commit -qam SWE-bench "
               f"&& printf '\\n{UNCOMMITTED}\\n' >> README.md && printf 'BUILT = True\\n' > {UNTRACKED}\n")
    unreadable = f"FROM {tag}\nRUN mkdir -p /tmp/monkeys-start.index/x\n"
    with temporary_images(docker_client, [(tag, changed), (tag + "-unreadable", unreadable)]):
        yield tag, tag + "-unreadable"


def fixing_attempt(runtime, task, image):
    """An attempt on ``image`` whose scripted model applies the task's fix to src/textkit/text.py."""
    steps = [f"cat > /tmp/fix.diff <<'EOF'\n{task.patch}EOF\ngit apply /tmp/fix.diff && git status --short", "submit"]
    with ScriptedServer(lambda body: bash(steps[turn(body)])) as server:
        model = Model(ModelConfig("scripted", base_url=server.base_url, backoff_initial=0.01, max_tokens=256))
        return run_attempt(runtime=runtime, image=image, task=task, index=0, seed=7, model=model,
                           scaffold=BashScaffold(), templates=Templates.load("bash"), limits=AttemptLimits(),
                           price=TokenPrice(input=1.0, output=2.0, source="test"), share=1.0)


def changed_files(patch: str) -> set[str]:
    return set(re.findall(r"^diff --git a/(\S+) b/", patch, re.MULTILINE))


def test_the_patch_holds_only_the_models_edit_when_the_image_starts_away_from_base_commit(runtime, task, images):
    image, _ = images
    result = fixing_attempt(runtime, task, image)
    assert result.exit_reason is ExitReason.SUBMITTED, result.error
    assert result.error == ""
    assert changed_files(result.patch) == {"src/textkit/text.py"}, result.patch
    assert "+    return text[: width - len(suffix)] + suffix" in result.patch
    for mark in (COMMITTED, UNCOMMITTED, UNTRACKED, "BUILT"):
        assert mark not in result.patch
    assert re.fullmatch(r"[0-9a-f]{40}", result.patch_base) and result.patch_base != task.base_commit

    # A fresh container of the same image: it does start away from base_commit in all three ways,
    # and the patch applies to it with plain `git apply`, leaving the image's own changes in place.
    check = (f"cd /testbed && git rev-parse HEAD && git diff --name-only {task.base_commit} HEAD && echo '--' "
             "&& git status --porcelain && echo '--' && git apply /monkeys/model.diff && git status --porcelain "
             f"&& grep -c '{UNCOMMITTED}' README.md && grep -c 'width - len(suffix)] + suffix' src/textkit/text.py")
    applied = runtime.run_script(image, check, {"model.diff": result.patch}, timeout=60)
    assert applied.exit_code == 0, applied.output
    head, before, after = applied.output.split("--\n")
    assert head.split()[0] != task.base_commit and head.split()[1:] == ["pyproject.toml"]
    assert before.split("\n")[:2] == [" M README.md", f"?? {UNTRACKED}"]
    assert after.splitlines()[:3] == [" M README.md", " M src/textkit/text.py", f"?? {UNTRACKED}"]


def test_the_ordinary_image_diffs_against_base_commits_own_tree(runtime, task, built_suite):
    result = fixing_attempt(runtime, task, image_name(task))
    assert result.exit_reason is ExitReason.SUBMITTED, result.error
    assert changed_files(result.patch) == {"src/textkit/text.py"}
    base_tree = runtime.run_script(image_name(task), f"cd /testbed && git rev-parse {task.base_commit}^{{tree}}",
                                   timeout=30)
    assert result.patch_base == base_tree.output.strip()  # the same diff as against base_commit
    # The task's own fix, hunk for hunk (the index line may differ in abbreviation).
    assert result.patch.split("\n@@")[1:] == task.patch.split("\n@@")[1:]


def test_a_starting_tree_that_cannot_be_read_falls_back_to_base_commit_and_says_so(runtime, task, images):
    _, unreadable = images
    result = fixing_attempt(runtime, task, unreadable)
    assert result.exit_reason is ExitReason.SUBMITTED, result.error
    assert result.patch_base == task.base_commit
    assert "reading the starting tree failed" in result.error and "against base_commit" in result.error
    assert any(m["role"] == "system" and "reading the starting tree failed" in m["content"]
               for m in result.trajectory)
    # Against base_commit the image's own changes come along, as this note warns.
    assert changed_files(result.patch) == {"src/textkit/text.py", "pyproject.toml", "README.md", UNTRACKED}
