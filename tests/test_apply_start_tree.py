"""The apply step's retries start from the tree the container started with, not from HEAD: an image
may start away from base_commit (edits committed on top of it, edits left uncommitted, files its
install step left untracked, as official SWE-bench images do), a sampled patch is a diff from that
starting tree (agent/attempt.py), and a retry that ran on HEAD would drop the uncommitted edits and
untracked files the patch was made against. Real Docker, an image made from a bundled suite image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets

import pytest

from harness.containers import ContainerRuntime
from harness.evalscript import ApplyMethod, applied_method, eval_files, plan
from harness.image_names import image_name
from harness.parsers import TestStatus
from tests.temporary_images import temporary_images

pytestmark = pytest.mark.docker

TASK = "monkeys-suite__textkit-3"
UNCOMMITTED = "image-uncommitted edit"  # appended to README.md, left in the working tree
UNTRACKED = "src/textkit/_built.py"  # written by "the install step", not gitignored
GONE = "old.txt"  # committed, then deleted without a commit
NOTES = [str(i) for i in range(1, 21)]
# notes.txt goes in with 1..20, then the image's own "SWE-bench" commit turns line 4 into "four":
# a candidate made against the first version, changing line 7, needs a retry to go in.
DRIFTED = [*NOTES[:3], "four", *NOTES[4:]]
# What a container of the changed image shows before anything is applied.
START_STATUS = [" D old.txt", " M README.md", f"?? {UNTRACKED}"]
STATE = (f"cd /testbed && git status --porcelain --untracked-files=all && echo -- && cat notes.txt && echo -- "
         f"&& cat {UNTRACKED} 2>&1; echo -- && tail -n 1 README.md && echo -- && ls {GONE} 2>&1; true")


@pytest.fixture(scope="module")
def task(bundled_tasks, built_suite):
    return next(t for t in bundled_tasks if t.instance_id == TASK)


@pytest.fixture(scope="module")
def runtime(docker_client):
    return ContainerRuntime(docker_client, "test-apply-start-tree")


@pytest.fixture(scope="module")
def images(docker_client, task):
    """(an image whose tree starts away from base_commit in every way, the same image where the
    starting tree cannot be read: the snapshot's temporary index path is a directory)."""
    tag = f"monkeys-test/apply-start-tree:{secrets.token_hex(4)}"
    commit = "git -c user.name=swe -c user.email=swe@example.com commit -q"
    changed = (f"FROM {image_name(task)}\n"
               f"RUN cd /testbed && seq 1 20 > notes.txt && echo old > {GONE} && git add notes.txt {GONE} "
               f"&& {commit} -m notes && sed -i 's/^4$/four/' notes.txt && {commit} -am SWE-bench "
               f"&& printf '\\n{UNCOMMITTED}\\n' >> README.md && printf 'BUILT = True\\n' > {UNTRACKED} && rm {GONE}\n")
    unreadable = f"FROM {tag}\nRUN mkdir -p /tmp/monkeys-apply-start.index/x\n"
    with temporary_images(docker_client, [(tag, changed), (tag + "-unreadable", unreadable)]):
        yield tag, tag + "-unreadable"


def blob(lines: list[str]) -> str:
    """The git blob id of a file holding ``lines``."""
    data = "".join(f"{line}\n" for line in lines).encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def notes_diff() -> str:
    """Line 7 of notes.txt to "seven", against its first version (line 4 still "4")."""
    after = [*NOTES[:6], "seven", *NOTES[7:]]
    return (f"diff --git a/notes.txt b/notes.txt\nindex {blob(NOTES)}..{blob(after)} 100644\n"
            "--- a/notes.txt\n+++ b/notes.txt\n@@ -4,7 +4,7 @@\n 4\n 5\n 6\n-7\n+seven\n 8\n 9\n 10\n")


def built_diff() -> str:
    """The untracked file the image starts with, edited: a patch made against the starting tree."""
    return (f"diff --git a/{UNTRACKED} b/{UNTRACKED}\nindex {blob(['BUILT = True'])}..{blob(['BUILT = False'])} 100644\n"
            f"--- a/{UNTRACKED}\n+++ b/{UNTRACKED}\n@@ -1 +1 @@\n-BUILT = True\n+BUILT = False\n")


def without_index_lines(patch: str) -> str:
    """No blob ids: no 3-way merge possible, so only `patch --fuzz` takes a drifted hunk."""
    return "".join(line for line in patch.splitlines(keepends=True) if not line.startswith("index "))


def apply(runtime, task, image: str, patch: str) -> tuple[ApplyMethod | None, str, list[str]]:
    """(the method that applied ``patch`` in a fresh container of ``image``, the apply step's output,
    the tree after it: status lines, notes.txt, the untracked file, README's last line, old.txt)."""
    with runtime.open(image, files=eval_files(task, patch)) as container:
        result = container.exec(plan(task).apply, timeout=120)
        state = container.exec(STATE, timeout=30)
    assert state.exit_code == 0, state.output
    return applied_method(result.exit_code), result.output, state.output.split("--\n")


def test_the_image_starts_away_from_base_commit_in_every_way(runtime, task, images):
    image, _ = images
    made = runtime.run_script(image, f"cd /testbed && git diff --name-only {task.base_commit} HEAD && echo -- && "
                                     "git status --porcelain --untracked-files=all", timeout=60)
    committed, status = made.output.split("--\n")
    assert committed.split() == ["notes.txt", GONE]
    assert sorted(status.splitlines()) == sorted(START_STATUS)


def test_a_3_way_retry_runs_on_the_starting_tree(runtime, task, images):
    image, _ = images
    method, output, (status, notes, built, readme, gone) = apply(runtime, task, image, notes_diff())
    assert method is ApplyMethod.GIT_APPLY_3WAY, output
    # The merge is staged, as --3way does; the image's own changes are as it started, unstaged.
    assert sorted(status.splitlines()) == sorted(["M  notes.txt", *START_STATUS]), output
    assert notes.splitlines() == [*DRIFTED[:6], "seven", *DRIFTED[7:]]
    assert built == "BUILT = True\n" and readme == f"{UNCOMMITTED}\n"
    assert "No such file" in gone


def test_a_fuzzed_patch_of_a_file_only_the_starting_tree_has_goes_in(runtime, task, images):
    # Were the retries run on HEAD, the untracked file would be gone and `patch` could not edit it.
    patch = without_index_lines(notes_diff() + built_diff())
    method, output, (status, notes, built, readme, gone) = apply(runtime, task, images[0], patch)
    assert method is ApplyMethod.PATCH_FUZZ, output
    assert "Hunk #1 succeeded at 4 with fuzz" in output
    assert sorted(status.splitlines()) == sorted([" M notes.txt", "?? notes.txt.orig", *START_STATUS]), output
    assert notes.splitlines() == [*DRIFTED[:6], "seven", *DRIFTED[7:]]
    assert built == "BUILT = False\n" and readme == f"{UNCOMMITTED}\n"
    assert "No such file" in gone


def test_a_patch_that_applies_to_the_starting_tree_goes_in_as_before(runtime, task, images):
    image, _ = images
    method, output, (status, _, built, readme, _) = apply(runtime, task, image, built_diff())
    assert method is ApplyMethod.GIT_APPLY, output
    assert sorted(status.splitlines()) == sorted(START_STATUS) and built == "BUILT = False\n"
    assert readme == f"{UNCOMMITTED}\n"


def test_on_an_image_that_starts_at_head_a_retry_leaves_the_tree_as_before(runtime, task, built_suite):
    # The task's own fix without blob ids and with its first context line wrong: only `patch` takes it.
    fix = without_index_lines(task.patch).replace("\n         raise ValueError(", "\n         raise OtherError(", 1)
    assert fix != without_index_lines(task.patch)
    with runtime.open(image_name(task), files=eval_files(task, fix)) as container:
        result = container.exec(plan(task).apply, timeout=120)
        status = container.exec("cd /testbed && git status --porcelain --untracked-files=all", timeout=30)
    assert applied_method(result.exit_code) is ApplyMethod.PATCH_FUZZ, result.output
    assert "reading the starting tree failed" not in result.output
    # Exactly what upstream's reset leaves: the fix, and patch's backup of the file it fuzzed.
    assert status.output.splitlines() == [" M src/textkit/text.py", "?? src/textkit/text.py.orig"]


def test_an_unreadable_starting_tree_leaves_the_retries_on_head_as_before(runtime, task, images):
    _, unreadable = images
    method, output, (status, notes, built, readme, gone) = apply(runtime, task, unreadable, notes_diff())
    assert method is ApplyMethod.GIT_APPLY_3WAY, output
    assert "monkeys: reading the starting tree failed; retries start from HEAD" in output
    # Upstream's reset, and nothing after it: the image's uncommitted edit and untracked file are gone.
    assert status.splitlines() == ["M  notes.txt"]
    assert "No such file" in built and readme != f"{UNCOMMITTED}\n" and gone == "old.txt\n"


def test_the_whole_evaluation_of_a_retried_patch_on_such_an_image_resolves_the_task(make_evaluator, task, images):
    # The task's fix, plus edits that only a fuzzed retry on the starting tree can make: then the test
    # files go back to base_commit, the test patch goes in, and the tests run.
    image, _ = images
    on_image = dataclasses.replace(task, image=image)
    patch = without_index_lines(task.patch + notes_diff() + built_diff())
    runs = make_evaluator().measure(on_image, patch, lambda _: 1)
    assert runs.error == "" and runs.applied.method is ApplyMethod.PATCH_FUZZ, runs.applied
    statuses = runs.runs[0].statuses
    assert all(statuses.get(test) is TestStatus.PASSED for test in [*task.fail_to_pass, *task.pass_to_pass]), statuses
