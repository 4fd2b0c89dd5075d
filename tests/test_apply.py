"""The apply step (harness/evalscript.py): swebench 5.0.2's commands in its order, checked against the
installed package, then run for real (git and patch in a container of a bundled image) on a patch
that each method in turn is the first to take, and on ones whose failed tries must leave no trace.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from harness.containers import ContainerRuntime
from harness.evalscript import ApplyMethod, apply_script, applied_method
from harness.image_names import BaseSpec
from harness.patches import Change, files
from tests.conftest import unavailable

# -- the commands, against the installed swebench -------------------------------------------


def upstream_run_evaluation() -> ast.Module:
    """swebench's harness/run_evaluation.py, parsed, not imported: installed with --no-deps, its
    imports (datasets, modal) are missing."""
    spec = importlib.util.find_spec("swebench")
    if spec is None or not spec.submodule_search_locations:
        unavailable("swebench is not installed (pip install --no-deps swebench==5.0.2)")
    path = Path(list(spec.submodule_search_locations)[0]) / "harness" / "run_evaluation.py"
    return ast.parse(path.read_text(), str(path))


def strings_in(tree: ast.AST) -> list[str]:
    """Every string literal, and every f-string's literal parts joined with {} for the values."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            found.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
    return found


def test_the_tries_are_swebench_s_commands_in_its_order():
    tree = upstream_run_evaluation()
    upstream = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                    and any(getattr(target, "id", None) == "GIT_APPLY_CMDS" for target in node.targets))
    assert [method.value for method in ApplyMethod.tries()] == upstream


def test_the_reset_between_tries_and_the_final_check_are_swebench_s():
    literals = strings_in(upstream_run_evaluation())
    # Its reset before a retry, which ours runs whole (and adds to), and its already-applied check.
    assert "git checkout -- . ; git clean -fd" in literals
    assert f"{ApplyMethod.ALREADY_APPLIED.value} {{}}" in literals
    script = apply_script()
    assert script.count("git checkout -- . ; git clean -fd") == len(ApplyMethod.tries()) - 1


def test_the_script_resets_before_each_retry_only_and_its_exit_status_names_the_method():
    lines = apply_script().splitlines()
    tried = [line for line in lines if "/monkeys/candidate.diff 2>&1 && exit" in line]
    order = [*ApplyMethod.tries(), ApplyMethod.ALREADY_APPLIED]
    assert [line.split(" /monkeys/")[0] for line in tried] == [m.value for m in order]
    # A reset right before each try but the first, none before the already-applied check, which
    # looks at the tree the last try left, as upstream's does.
    before = [lines[lines.index(line) - 1] for line in tried]
    assert [("git clean -fd" in line) for line in before] == [False, True, True, True, False]
    for line in tried:
        method = ApplyMethod(line.split(" /monkeys/")[0])
        assert applied_method(int(re.search(r"exit (\d+)$", line).group(1))) is method
    assert lines[-1] == "exit 1" and applied_method(1) is None and applied_method(None) is None
    assert applied_method(int(re.search(r"\|\| exit (\d+)", apply_script()).group(1))) is ApplyMethod.EMPTY


# -- for real ---------------------------------------------------------------------------------

# A repository at /testbed: f.txt holds 1..20, a.txt "a", and *.log is ignored. The candidate is
# made from `base` by CANDIDATE edits; then `main` moves on by HEAD edits, which the candidate does
# not know about (as a model's patch against a drifted file).
REPO = r"""
set -e
rm -rf /testbed && mkdir -p /testbed /monkeys && cd /testbed
git init -q -b main && git config user.email t@example.com && git config user.name t
seq 1 20 > f.txt && echo a > a.txt && echo '*.log' > .gitignore
git add -A && git commit -qm base && git tag base
git checkout -q --detach base
{candidate}
git add -A && for f in *.log; do if [ -e "$f" ]; then git add -f "$f"; fi; done
git diff --cached --binary base > /monkeys/candidate.diff
git reset -q --hard base && git clean -fdxq
git checkout -q main
{head}
git commit -qam head || true
{strip}
"""
SEVEN = "sed -i 's/^7$/seven/' f.txt"
FOUR = "sed -i 's/^4$/four/' f.txt"
FIVE = "sed -i 's/^5$/five/' f.txt"  # next to line 4: a 3-way merge with FOUR conflicts
MORE = "echo b > a.txt && echo new > new.txt && echo out > out.log"  # a change, a file, an ignored file
STRIP = "sed -i '/^index /d' /monkeys/candidate.diff"  # no blob ids: no 3-way merge possible
STATUS = "cd /testbed && git status --porcelain --ignored --untracked-files=all && git ls-files -u && cat f.txt a.txt"


@pytest.fixture(scope="module")
def container(docker_client, built_suite):
    with ContainerRuntime(docker_client, run="test-apply").open(BaseSpec("3.11").name) as made:
        yield made


def apply(container, candidate: str, head: str = "", *, strip: bool = False) -> tuple[ApplyMethod | None, str, str]:
    """(the method that applied the candidate, the apply step's output, the tree's state after)."""
    made = container.exec(REPO.format(candidate=candidate, head=head, strip=STRIP if strip else ""), timeout=60)
    assert made.exit_code == 0, made.output
    patch = container.exec("cat /monkeys/candidate.diff", timeout=10).output
    added = [d.path for d in files(patch) if d.change is Change.ADDED]
    container.put_files({"added.txt": "\n".join(added)})
    result = container.exec(apply_script(), timeout=60)
    state = container.exec(STATUS, timeout=10)
    assert state.exit_code == 0, state.output
    return applied_method(result.exit_code), result.output, state.output


def lines_of_f(*changes: tuple[int, str]) -> str:
    text = [str(i) for i in range(1, 21)]
    for number, line in changes:
        text[number - 1] = line
    return "\n".join(text) + "\n"


def test_a_patch_that_applies_as_it_is_goes_in_with_plain_git_apply(container):
    method, output, state = apply(container, SEVEN)
    assert method is ApplyMethod.GIT_APPLY, output
    assert state == " M f.txt\n" + lines_of_f((7, "seven")) + "a\n"


def test_a_patch_against_a_drifted_file_goes_in_with_a_3_way_merge(container):
    method, output, state = apply(container, SEVEN, FOUR)
    assert method is ApplyMethod.GIT_APPLY_3WAY, output
    assert state == "M  f.txt\n" + lines_of_f((4, "four"), (7, "seven")) + "a\n"  # --3way stages it


def test_a_patch_that_only_fuzz_takes_goes_in_after_a_reject_s_partial_work_is_undone(container):
    # --reject writes a.txt, new.txt and the ignored out.log, and f.txt.rej; were any of it left,
    # `patch --forward` would refuse (a.txt looks applied, the new files exist) or apply it twice.
    method, output, state = apply(container, f"{SEVEN} && {MORE}", FOUR, strip=True)
    assert method is ApplyMethod.PATCH_FUZZ, output
    assert "f.txt.rej" in output  # --reject did run, and left that behind
    status, rest = state.split("1\n2\n", 1)
    # f.txt.orig is patch's own backup of the file it fuzzed, as upstream leaves it.
    assert sorted(status.splitlines()) == [" M a.txt", " M f.txt", "!! out.log", "?? f.txt.orig", "?? new.txt"]
    assert "1\n2\n" + rest == lines_of_f((4, "four"), (7, "seven")) + "b\n"


def test_a_failed_3_way_merge_leaves_no_conflict_for_the_next_try(container):
    # The 3-way merge conflicts (lines 4 and 5 both changed): markers in f.txt and unmerged entries
    # in the index, on which `git checkout -- .` alone gives up.
    method, output, state = apply(container, FIVE, FOUR)
    assert "with conflicts" in output
    assert method is ApplyMethod.PATCH_FUZZ, output
    assert "<<<<<<<" not in state
    assert state == " M f.txt\n?? f.txt.orig\n" + lines_of_f((4, "four"), (5, "five")) + "a\n"


def test_a_patch_already_in_the_tree_is_accepted_and_left_as_it_is(container):
    method, output, state = apply(container, SEVEN, SEVEN, strip=True)
    assert method is ApplyMethod.ALREADY_APPLIED, output
    assert "previously applied" in output
    # The tree is HEAD's (the patch's), plus the .rej `patch --forward` wrote when it skipped the hunk.
    assert state == "?? f.txt.rej\n" + lines_of_f((7, "seven")) + "a\n"


def test_a_patch_nothing_takes_is_refused_and_an_empty_one_is_nothing_to_apply(container):
    method, output, _ = apply(container, SEVEN, "seq 101 120 > f.txt")  # no line of it is left to match
    assert method is None, output
    container.put_files({"candidate.diff": ""})
    assert applied_method(container.exec(apply_script(), timeout=60).exit_code) is ApplyMethod.EMPTY
