"""The one place that knows how a task's tests are run: pure functions from a task to the commands an
evaluation runs in its container, and from their output back to per-run status maps.

An evaluation is three steps, each its own exec: apply the candidate patch (``git apply``, then the
official fallbacks, recording which worked); put the test files back to base_commit and apply the
task's test patch (so a candidate that edits tests cannot tamper with them); run the test command,
once or several times.

The host, not the container, writes the markers around each test run's output, with a random nonce
that never enters the container, so code under test can neither guess nor forge them.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from harness.parsers import StatusMap, get_parser, parser_name_for
from harness.patches import Change, files
from harness.specs import UnknownSpec, directives_for, legacy_eval
from harness.tasks import Task

CANDIDATE = "candidate.diff"
TEST_PATCH = "test.diff"
EVAL_SCRIPT = "eval.sh"
ACTIVATE = "source /opt/miniconda3/bin/activate && conda activate testbed && cd /testbed"


class ApplyMethod(str, enum.Enum):
    """How a candidate patch went in. Values are the commands, exactly as swebench 5.0.2's harness runs
    them; names are what the evaluation cache and reports record."""

    EMPTY = "nothing to apply"  # an empty or missing patch: the tests run on the image's starting tree
    GIT_APPLY = "git apply --verbose"
    GIT_APPLY_3WAY = "git apply --verbose --3way"
    # Tried, as upstream does, though it is hardly ever what works: --reject exits non-zero whenever
    # a hunk fails, and a patch whose hunks all apply went in with plain `git apply`. What it did
    # apply is undone before the next try.
    GIT_APPLY_REJECT = "git apply --verbose --reject"
    PATCH_FUZZ = "patch --batch --forward --fuzz=5 -p1 -i"
    # Every try failed but the tree already holds the patch (e.g. `patch --forward` skipped hunks
    # it found applied): upstream's final check, on the tree the last try left.
    ALREADY_APPLIED = "git apply --check --reverse"

    @classmethod
    def tries(cls) -> list["ApplyMethod"]:
        """The commands tried in turn: upstream's GIT_APPLY_CMDS, in its order."""
        return [cls.GIT_APPLY, cls.GIT_APPLY_3WAY, cls.GIT_APPLY_REJECT, cls.PATCH_FUZZ]


class Limit(str, enum.Enum):
    """A container limit that a test run ran into (the kernel killed a process, or refused a fork)."""

    MEMORY = "memory"
    PIDS = "pids"


@dataclass(frozen=True)
class TestRun:
    """One run of the test command: its statuses, exit code and the text they were read from."""

    __test__ = False

    statuses: StatusMap
    exit_code: int | None
    """None when the run was killed at its timeout."""
    output: str = ""
    timed_out: bool = False
    limits_hit: tuple[Limit, ...] = ()
    """Container limits this run ran into (read from the container's cgroup around the run)."""


@dataclass(frozen=True)
class EvalPlan:
    """The commands of one task's evaluation, and the bytes of the files they read besides the
    candidate patch (the test patch, the row's eval script). ``digest`` names all of it in the
    evaluation cache, so a revised row or command never reuses runs made for the old one."""

    apply: str
    setup: str
    test: str
    inputs: tuple[tuple[str, str], ...] = ()
    """(file name under /monkeys/, content) of every file the commands read, the candidate aside."""
    setup_network: bool = False
    """The setup reinstalls the repository, which may fetch build requirements (as in the official
    harness); the container leaves the network before the tests run."""

    @property
    def digest(self) -> str:
        parts = [self.apply, self.setup, self.test, f"setup_network={self.setup_network}",
                 *(f"{name}\0{content}" for name, content in self.inputs)]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def patched_test_files(task: Task) -> tuple[list[str], list[str]]:
    """(files the test patch changes that exist at base_commit, files it creates)."""
    existing, created = [], []
    for diff in files(task.test_patch):
        (created if diff.change is Change.ADDED else existing).append(diff.path)
    return existing, created


# The apply step's exit status names the method that worked (a status, unlike a printed line, cannot
# be split by stdout and stderr interleaving); 1 means none did.
_APPLIED_BASE = 10
# Upstream's reset before each retry is `git checkout -- . ; git clean -fd`. Before it, `git reset`
# empties the index: a failed --3way (which implies --index) leaves unmerged entries there, and the
# checkout then refuses to touch those files, conflict markers and all. After it, what git clean
# spares because it is ignored: files the patch adds (an earlier try may have made them, and
# `patch --forward` would refuse to create them again) and .rej/.orig files.
_PRISTINE = ("git reset -q; git checkout -- . ; git clean -fd; "
             "[ -s /monkeys/added.txt ] && xargs -a /monkeys/added.txt -d '\\n' rm -f --; "
             "git ls-files -z --others --ignored --exclude-standard -- '*.rej' '*.orig' | xargs -0r rm -f --")

# An image's tree may start away from HEAD (pre_install edits left uncommitted, files its install step
# left untracked), and a sampled patch is a diff from that starting tree (agent/attempt.py). The reset
# above goes to HEAD, so each retry would run without them; instead it goes on to the starting tree,
# saved before the first try as agent/attempt.py saves it: written from a copy of the index, so the
# real index and HEAD stay as the image left them. `read-tree --reset -u` also deletes what HEAD has
# and the start had not (uncommitted deletions); `git reset` then puts the index back at HEAD, so the
# restored changes are again unstaged edits and untracked files (so `--3way`, which patches the index
# too, refuses a file the start had changed or added: it does not match the index; `patch` still
# takes it). Without a snapshot, retries start from HEAD, as upstream's do.
_START_INDEX = "/tmp/monkeys-apply-start.index"
_SNAPSHOT = (f"start=$({{ index=$(git rev-parse --git-path index) && rm -f {_START_INDEX} "
             f"&& {{ [ ! -e \"$index\" ] || cp \"$index\" {_START_INDEX}; }} "
             f"&& GIT_INDEX_FILE={_START_INDEX} git add -A && GIT_INDEX_FILE={_START_INDEX} git write-tree; }} 2>/dev/null); "
             f"rm -f {_START_INDEX} 2>/dev/null; "
             "[ -n \"$start\" ] || echo 'monkeys: reading the starting tree failed; retries start from HEAD'")
_TO_START = '[ -z "$start" ] || { git read-tree --reset -u "$start"; git reset -q; }'


def apply_script() -> str:
    """The apply step: swebench 5.0.2's, run in the container. Each of ApplyMethod.tries() in turn on
    the tree the container started with (a retry first undoes what the try before it did, and goes
    back to that tree); if none worked, `git apply --check --reverse` on the tree the last try left
    accepts a patch that is already in. Exits with the status applied_method() reads."""
    patch = f"/monkeys/{CANDIDATE}"
    lines = ["cd /testbed", f"[ -s {patch} ] || exit {_APPLIED_BASE}", _SNAPSHOT]
    for attempt, method in enumerate(ApplyMethod.tries()):
        if attempt:
            lines.append(f"{_PRISTINE}; {_TO_START}")
        lines.append(f"{method.value} {patch} 2>&1 && exit {_exit_status(method)}")
    lines.append(f"{ApplyMethod.ALREADY_APPLIED.value} {patch} 2>&1 && exit {_exit_status(ApplyMethod.ALREADY_APPLIED)}")
    lines.append("exit 1")
    return "\n".join(lines) + "\n"


def _exit_status(method: ApplyMethod) -> int:
    return _APPLIED_BASE + list(ApplyMethod).index(method)


def applied_method(exit_code: int | None) -> ApplyMethod | None:
    """The method an apply step's exit status names, or None if no method applied the patch."""
    methods = list(ApplyMethod)
    if exit_code is None or not _APPLIED_BASE <= exit_code < _APPLIED_BASE + len(methods):
        return None
    return methods[exit_code - _APPLIED_BASE]


class PlanError(ValueError):
    """A task whose tests monkeys cannot run, naming the instance and what is missing."""


class RowKind(str, enum.Enum):
    """Where a task's test command comes from."""

    TEST_CMD = "test_cmd"  # the row names its command (the bundled suite, user rows)
    EVAL_SCRIPT = "eval_script"  # a current official row: its own script resets, patches and runs
    LEGACY = "legacy"  # a 12-field SWE-bench row: derived from the repo and version (harness/specs.py)


def row_kind(task: Task) -> RowKind:
    if task.test_cmd:
        return RowKind.TEST_CMD
    if task.eval_script:
        return RowKind.EVAL_SCRIPT
    return RowKind.LEGACY


# Repositories whose tests call real services, so their evaluations get the network: psf/requests'
# tests (the SWE-bench versions, 0.14 to 2.x) fetch from http://httpbin.org. The other SWE-bench
# repositories' network tests are skipped by default (astropy's remote_data, xarray's @network,
# scikit-learn's fetch_* under SKLEARN_SKIP_NETWORK_TESTS), so they run offline.
NETWORK_REPOS = frozenset({"psf/requests"})


def needs_network(task: Task) -> bool:
    """Whether ``task``'s evaluation gets the network: only rows of NETWORK_REPOS, whose tests need
    it. Everything else runs offline, so code under test reaches nothing outside its container;
    a legacy row's reinstall step that would fetch build requirements from an index then fails,
    which its tolerant wrapper lets pass (the image already has the environment installed)."""
    return task.repo in NETWORK_REPOS


def parser_for(task: Task) -> Callable[[str], StatusMap]:
    """The log parser of a task: the row's ``log_parser``, else its repo's official one, else pytest's."""
    return get_parser(parser_name_for(task.repo, task.log_parser))


def _reset(task: Task, existing: list[str], created: list[str]) -> list[str]:
    # Test files go back to base_commit (a candidate cannot tamper with them); files the test patch
    # creates are removed rather than checked out, since base_commit has none to check out.
    steps = []
    if existing:
        steps.append(f"git checkout -q {task.base_commit} -- {' '.join(shlex.quote(f) for f in existing)}")
    if created:
        steps.append(f"rm -rf -- {' '.join(shlex.quote(f) for f in created)}")
    return steps


def _inputs(task: Task) -> tuple[tuple[str, str], ...]:
    files_ = {TEST_PATCH: task.test_patch}
    if task.eval_script:
        files_[EVAL_SCRIPT] = with_exit_code(task.eval_script)
    return tuple(sorted(files_.items()))


def plan(task: Task) -> EvalPlan:
    """The evaluation commands for ``task``; raises PlanError where none can be made."""
    kind = row_kind(task)
    inputs = _inputs(task)
    if kind is RowKind.TEST_CMD:
        existing, created = patched_test_files(task)
        setup = " && ".join([ACTIVATE, *_reset(task, existing, created), f"git apply /monkeys/{TEST_PATCH}"])
        test = f"{ACTIVATE} && {task.test_cmd} {' '.join(shlex.quote(f) for f in existing + created)}"
        return EvalPlan(apply=apply_script(), setup=setup, test=test, inputs=inputs)
    if kind is RowKind.EVAL_SCRIPT:
        # The script resets the test files and applies the test patch itself, so running it again
        # is a fresh run; stderr joins stdout as in the official harness (its `set -x` trace included).
        return EvalPlan(apply=apply_script(), setup="true", test=f"bash /monkeys/{EVAL_SCRIPT} 2>&1", inputs=inputs)
    legacy = _legacy(task)
    exports = [f"export {name}={shlex.quote(value)}" for name, value in legacy.env]
    setup = "\n".join([ACTIVATE, *exports, *_tolerant(legacy),
                       " && ".join([*_reset(task, legacy.existing, legacy.created), f"git apply /monkeys/{TEST_PATCH}"])])
    test = " && ".join([ACTIVATE, *exports, legacy.test_command])
    return EvalPlan(apply=apply_script(), setup=setup, test=test, inputs=inputs, setup_network=bool(legacy.install))


def existing_tests_plan(task: Task) -> EvalPlan | None:
    """What a user can run without the hidden tests: the same test command over the test files that
    already exist at base_commit, as they stand there (the test patch is not applied, and the files it
    would create are absent). None where there is no such file, or the row's own eval script applies
    the test patch itself (it cannot be run without it)."""
    kind = row_kind(task)
    if kind is RowKind.EVAL_SCRIPT:
        return None
    if kind is RowKind.TEST_CMD:
        existing, created = patched_test_files(task)
        if not existing:
            return None
        setup = " && ".join([ACTIVATE, *_reset(task, existing, created)])
        test = f"{ACTIVATE} && {task.test_cmd} {' '.join(shlex.quote(f) for f in existing)}"
        return EvalPlan(apply=apply_script(), setup=setup, test=test)
    legacy = _legacy(task)
    directives = directives_for(task.repo, legacy.existing)
    if not directives:
        return None
    exports = [f"export {name}={shlex.quote(value)}" for name, value in legacy.env]
    setup = "\n".join([ACTIVATE, *exports, *_tolerant(legacy), " && ".join(["true", *_reset(task, legacy.existing, legacy.created)])])
    command = " ".join([legacy.runner, *(shlex.quote(d) for d in directives)])
    test = " && ".join([ACTIVATE, *exports, command])
    return EvalPlan(apply=apply_script(), setup=setup, test=test, setup_network=bool(legacy.install))


def _legacy(task: Task):
    try:
        return legacy_eval(task)
    except UnknownSpec as err:
        raise PlanError(f"{task.instance_id} ({task.origin}): no test command: the row has no test_cmd or "
                        f"eval_script, and {err}") from None


def _tolerant(legacy) -> list[str]:
    # As in the official eval script (run without `set -e`), a failing preparation or reinstall does
    # not stop the tests; only the test patch must apply.
    optional = [*legacy.prepare, *([legacy.install] if legacy.install else [])]
    return [f"{{ {step} ; }} || echo 'monkeys: a preparation step failed; the tests run anyway'" for step in optional]


def eval_files(task: Task, patch: str | None) -> dict[str, str]:
    """The files an evaluation's commands read, under /monkeys/."""
    try:
        added = [d.path for d in files(patch) if d.change is Change.ADDED]
    except ValueError:  # not a diff: every apply method will say so
        added = []
    files_ = {CANDIDATE: patch or "", TEST_PATCH: task.test_patch, "added.txt": "\n".join(added)}
    if task.eval_script:
        files_[EVAL_SCRIPT] = with_exit_code(task.eval_script)
    return files_


# The official markers inside an eval script's output, and the line our copy of the script adds
# after the end marker with the test command's own exit status (the script's is the final reset's).
OFFICIAL_START = ">>>>> Start Test Output"
OFFICIAL_END = ">>>>> End Test Output"
EXIT_LINE = ">>>>> Test Exit Code:"
_EXIT = re.compile(r"^>>>>> Test Exit Code: (-?\d+)$", re.MULTILINE)


def with_exit_code(script: str) -> str:
    """The eval script, recording the test command's exit status right after it runs (the line
    before the end marker), as swebench 5.x does; a script without the marker is left as it is."""
    lines = script.split("\n")
    for i, line in enumerate(lines):
        if OFFICIAL_END in line:
            return "\n".join([*lines[:i], "__monkeys_exit=$?", line, f'echo "{EXIT_LINE} $__monkeys_exit"', *lines[i + 1:]])
    return script


def read_run(task: Task, output: str, exit_code: int | None) -> TestRun:
    """One test run from the test step's output and exit status.

    For an eval-script row only the part between the official markers is the tests' output (the
    rest is the script's own trace), and the exit status is the one the script recorded.
    """
    if row_kind(task) is RowKind.EVAL_SCRIPT:
        recorded = _EXIT.search(output)
        code = int(recorded.group(1)) if recorded else None
        # Exactly the official slice, and as there, the whole output when the slice yields nothing.
        body = output.split(OFFICIAL_START, 1)[1].split(OFFICIAL_END, 1)[0] if OFFICIAL_START in output else ""
        statuses = parser_for(task)(body) or parser_for(task)(output)
        return TestRun(statuses, code, body or output)
    return TestRun(parser_for(task)(output), exit_code, output)


def new_nonce() -> str:
    return secrets.token_hex(8)


def start_marker(nonce: str, index: int) -> str:
    return f">>>>> Start Test Output {nonce} {index}"


def end_marker(nonce: str, index: int, exit_code: int | None) -> str:
    return f">>>>> End Test Output {nonce} {index} {'timeout' if exit_code is None else exit_code}"


def marked(nonce: str, index: int, output: str, exit_code: int | None) -> str:
    """One test run's output between its markers, as the evaluation's log keeps it."""
    body = output if output.endswith("\n") or not output else output + "\n"
    return f"{start_marker(nonce, index)}\n{body}{end_marker(nonce, index, exit_code)}\n"


def parse_runs(task: Task, log: str, nonce: str) -> list[TestRun]:
    """Per-run status maps from an evaluation's log, reading only between the nonce markers."""
    pattern = re.compile(
        rf"^>>>>> Start Test Output {nonce} (\d+)\n(.*?)^>>>>> End Test Output {nonce} \1 (\d+|timeout)$",
        re.MULTILINE | re.DOTALL,
    )
    return [read_run(task, m.group(2), None if m.group(3) == "timeout" else int(m.group(3)))
            for m in pattern.finditer(log)]


# Read after each test run: how often the kernel OOM-killed a process of the container, and refused a
# fork at its pid limit, over the container's life (cgroup v2 files first, then v1's).
_LIMIT_FILES = {
    Limit.MEMORY: ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    Limit.PIDS: ("/sys/fs/cgroup/pids.events", "/sys/fs/cgroup/pids/pids.events", "max"),
}
# Builtins only: after a run that filled the pid table, nothing can fork, and that is when it matters.
_READ_LIMITS = "\n".join(
    f"{{ f={v2}; [ -r $f ] || f={v1}; while read -r l; do printf '%s\\n' \"$l\"; done < $f; }} 2>/dev/null; printf '#\\n'"
    for v2, v1, _ in _LIMIT_FILES.values())


def with_limits(test: str, sentinel: str) -> str:
    """The test command, then the limit counters after ``sentinel``, in the same exec (a separate one
    costs about as much as the counters are worth); the exit status stays the test command's. Code
    under test could print the sentinel itself, but only the last one counts, and all it could fake
    is a limit hit, which never makes a run pass."""
    return f"{{ {test}\n}}\n__monkeys_rc=$?\nprintf '\\n%s\\n' {sentinel}\n{_READ_LIMITS}\nexit $__monkeys_rc"


def split_limits(output: str, sentinel: str) -> tuple[str, tuple[Limit, ...]]:
    """Pure: (the test command's own output, the limits hit) from a ``with_limits`` run's output; a run
    killed before the counters were read has no sentinel, and nothing is taken off it."""
    mark = f"\n{sentinel}\n"
    cut = output.rfind(mark)
    if cut < 0:
        return output, ()
    return output[:cut], limits_hit(output[cut + len(mark):])


def limits_hit(counters: str) -> tuple[Limit, ...]:
    """Pure: the limits whose event counters (``_READ_LIMITS``' output) are above zero."""
    hit = []
    for (limit, (_, _, field_)), text in zip(_LIMIT_FILES.items(), counters.split("#")):
        for line in text.splitlines():
            name, _, value = line.strip().partition(" ")
            if name == field_ and value.strip().isdigit() and int(value) > 0:
                hit.append(limit)
    return tuple(hit)
