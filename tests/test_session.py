"""The persistent shell of an attempt (agent/session.py) against the real engine and a bundled task image.

No timing is asserted: where a bound on seconds appears it only tells a hang from a kill, with room
for a loaded host (as tests/test_containers.py does).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from contextlib import contextmanager

import pytest

from agent.session import REPO_DIR, CommandEnd, CommandResult, SessionError, ShellSession
from harness.containers import ContainerRuntime
from harness.image_names import image_name

pytestmark = pytest.mark.docker

TASK = "monkeys-suite__textkit-3"
VENV = "/opt/miniconda3/envs/testbed"
# Far above any kill: a command killed at its timeout must come back well before this much more.
HANG_GUARD_S = 20.0
# Every process in /proc, counted by shell builtins alone (no fork, so it works under a fork bomb).
COUNT_PROCS = "n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n"
# Every process's command line, one per line.
LIST_PROCS = r"for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f 2>/dev/null; echo; done"
NOTE = re.compile(r"\n\[\.\.\. (\d+) bytes of output omitted \.\.\.\]\n")


@pytest.fixture(scope="module")
def task(built_suite, bundled_tasks):
    return next(t for t in bundled_tasks if t.instance_id == TASK)


@pytest.fixture(scope="module")
def image(task):
    return image_name(task)


@pytest.fixture(scope="module")
def runtime(docker_client):
    return ContainerRuntime(docker_client, "test-session")


@pytest.fixture
def container(runtime, image):
    with runtime.open(image, kind="attempt") as made:
        yield made


@pytest.fixture
def session(container):
    with ShellSession(container) as shell:
        yield shell


def ok(session: ShellSession, command: str, timeout: float = 30) -> str:
    """The output of a command that must exit 0."""
    result = session.run(command, timeout)
    assert (result.end, result.exit_code) == (CommandEnd.EXITED, 0), result
    return result.output


def assert_fresh_shell_works(session: ShellSession) -> None:
    """A shell (new or not) that answers, in the repository, with the task's environment active."""
    assert ok(session, "pwd; which python") == f"{REPO_DIR}\n{VENV}/bin/python\n"


# -- 1. state ---------------------------------------------------------------------------------


def test_starts_in_the_repository_with_the_task_environment_active(session, task):
    assert ok(session, "pwd") == f"{REPO_DIR}\n"
    assert ok(session, "which python").startswith(f"{VENV}/")
    assert ok(session, "python -c 'import sys; print(sys.prefix)'") == f"{VENV}\n"
    assert ok(session, "git rev-parse HEAD") == f"{task.base_commit}\n"
    assert ok(session, "type -t conda") == "function\n"  # the official activation lines ran


def test_the_environment_is_activated_even_off_the_image_path(container):
    # Official images do not put the environment on PATH: the shell's activation must.
    with ShellSession(container, env={"PATH": "/usr/bin:/bin", "VIRTUAL_ENV": ""}) as shell:
        assert ok(shell, "which python").startswith(f"{VENV}/")


def test_cd_export_and_functions_carry_over_between_commands(session):
    assert ok(session, "cd /tmp && export MONKEYS_X=persisted && MONKEYS_Y=shellvar") == ""
    assert ok(session, "pwd; echo $MONKEYS_X $MONKEYS_Y") == "/tmp\npersisted shellvar\n"
    assert ok(session, "python -c 'import os; print(os.environ[\"MONKEYS_X\"])'") == "persisted\n"
    ok(session, "greet() { echo hello \"$1\"; }")
    assert ok(session, "greet there") == "hello there\n"
    assert session.restarts == 0


# -- 2. exit codes, output, malformed commands ------------------------------------------------


@pytest.mark.parametrize("command, code", [("true", 0), ("false", 1), ("(exit 7)", 7), ("exit_status_of_missing_cmd", 127),
                                           ("false | true", 0), ("true | (exit 4)", 4)])
def test_exit_codes(session, command, code):
    result = session.run(command, 30)
    assert (result.end, result.exit_code, result.restarted) == (CommandEnd.EXITED, code, False)


def test_stdout_and_stderr_are_interleaved_in_order(session):
    assert ok(session, "echo a; echo b >&2; echo c; echo d >&2; printf e >&2; printf f") == "a\nb\nc\nd\nef"
    script = ("import sys\nfor i in range(3):\n    print('out', i, flush=True)\n"
              "    print('err', i, file=sys.stderr, flush=True)")
    assert ok(session, f"python -c \"{script}\"") == "out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n"


@pytest.mark.parametrize("command, output", [
    ("printf 'no newline'", "no newline"),
    ("printf ''", ""),
    ("printf 'two\\n\\n'", "two\n\n"),
    ("printf '\\n'", "\n"),
    ("echo", "\n"),
    ("printf '%s\\n' \"a'b\" 'c\"d' '\\x' $'tab\\there' 'é€'", "a'b\nc\"d\n\\x\ntab\there\né€\n"),
    ("cd /tmp\npwd", "/tmp\n"),
])
def test_output_is_kept_exactly(session, command, output):
    assert ok(session, command) == output


@pytest.mark.parametrize("broken", ["echo 'unbalanced", 'echo "unbalanced', "if then fi", "echo $(", "(", "done", "}"])
def test_a_malformed_command_fails_and_the_next_one_works(session, broken):
    ok(session, "cd /tmp")
    result = session.run(broken, 10)
    assert result.end is CommandEnd.EXITED and result.exit_code not in (0, None), result
    assert not result.restarted
    assert ok(session, "echo next; pwd") == "next\n/tmp\n"


# -- 3. stdin ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["read x; echo got=$x", "cat; echo cat-done", "python -c 'input()'",
                                     "python -c 'import sys; print(len(sys.stdin.read()))'", "head -c 1"])
def test_a_command_reading_stdin_gets_end_of_file_at_once(session, command):
    result = session.run(command, 10)
    assert result.end is CommandEnd.EXITED and not result.restarted, result
    assert ok(session, "echo still-here") == "still-here\n"


def test_reading_stdin_sees_nothing(session):
    assert ok(session, "read x; echo \"got=[$x]\"") == "got=[]\n"
    assert ok(session, "cat | wc -c") == "0\n"


# -- 4. timeouts ------------------------------------------------------------------------------


def test_a_hung_command_times_out_and_the_same_shell_goes_on(session):
    ok(session, "cd /tmp && export KEPT=yes")
    result = session.run("echo before; sleep 100", timeout=2)
    assert result.end is CommandEnd.TIMED_OUT and result.exit_code is None, result
    assert result.output.startswith("before\n")
    assert result.seconds < 2 + HANG_GUARD_S
    assert not result.restarted and session.restarts == 0
    assert ok(session, "pwd; echo $KEPT") == "/tmp\nyes\n"


def test_a_busy_shell_times_out_and_is_replaced(session):
    ok(session, "cd /tmp && export GONE=yes")
    result = session.run("while true; do :; done", timeout=2)
    assert result.end is CommandEnd.TIMED_OUT and result.exit_code is None, result
    assert result.restarted and session.restarts == 1
    assert result.seconds < 2 + HANG_GUARD_S
    assert_fresh_shell_works(session)
    assert ok(session, "echo \"[$GONE]\"") == "[]\n"


def test_a_timeout_kills_everything_the_command_started(session):
    hung = "(sleep 1000 &); setsid sleep 1000 & sleep 1000 & echo $! > /tmp/bg.pid; sleep 1000"
    result = session.run(hung, timeout=2)
    assert result.end is CommandEnd.TIMED_OUT and not result.restarted, result
    left = ok(session, LIST_PROCS)
    assert "sleep 1000" not in left, left
    assert ok(session, "test -e /proc/$(cat /tmp/bg.pid) && echo alive || echo gone") == "gone\n"
    # The listing does see such a process when there is one (a command may leave one running).
    ok(session, "sleep 1000 & until grep -q 1000 /proc/$!/cmdline; do sleep 0.05; done")
    assert "sleep 1000" in ok(session, LIST_PROCS)


# -- 5. a command that ends the shell ---------------------------------------------------------


@pytest.mark.parametrize("command", ["exit 3", "kill -9 $$", "exec true"])
def test_ending_the_shell_brings_a_fresh_one_in_the_repository(session, command):
    ok(session, "cd /tmp && export GONE=yes")
    result = session.run(command, timeout=10)
    assert (result.end, result.exit_code, result.restarted) == (CommandEnd.SHELL_DIED, None, True), result
    assert session.restarts == 1
    assert_fresh_shell_works(session)
    assert ok(session, "echo \"[$GONE]\"") == "[]\n"


# -- 6. huge output ---------------------------------------------------------------------------


def split_capped(output: str) -> tuple[str, int, str]:
    match = NOTE.search(output)
    assert match, output[:200]
    return output[:match.start()], int(match.group(1)), output[match.end():]


def test_huge_output_keeps_its_head_and_tail(session):
    limit = session.output_limit
    result = session.run("echo START; yes | head -c 5000000; echo END", timeout=60)
    assert (result.end, result.exit_code) == (CommandEnd.EXITED, 0)
    head, omitted, tail = split_capped(result.output)
    assert head.startswith("START\ny\ny\n") and tail.endswith("y\ny\nEND\n")
    assert omitted == result.truncated_bytes > 0
    assert len(head) + omitted + len(tail) == len("START\n") + 5_000_000 + len("END\n")
    assert limit - 2 <= len(head) + len(tail) <= limit
    assert ok(session, "echo after") == "after\n"


def test_endless_output_is_capped_at_the_timeout(session):
    result = session.run("yes", timeout=2)
    assert result.end is CommandEnd.TIMED_OUT and result.truncated_bytes > 0, result.end
    head, omitted, tail = split_capped(result.output)
    assert omitted == result.truncated_bytes
    assert head.startswith("y\ny\n") and "y\ny\n" in tail
    assert len(head) + len(tail) <= session.output_limit
    assert result.seconds < 2 + HANG_GUARD_S
    assert ok(session, "echo after") == "after\n"


def test_a_command_can_ask_for_a_larger_or_smaller_limit(session):
    head, omitted, tail = split_capped(session.run("seq 1 100000", 30, output_limit=200).output)
    assert head.startswith("1\n2\n3\n") and tail.endswith("99999\n100000\n") and len(head) + len(tail) <= 200
    whole = session.run("seq 1 100000", 30, output_limit=1_000_000)
    assert whole.truncated_bytes == 0 and whole.output == "".join(f"{i}\n" for i in range(1, 100001))


# -- 7. a fork bomb and a memory hog cost at most their attempt -------------------------------


@contextmanager
def another_attempt_keeps_working(runtime, image):
    """Polls a second container of the same runtime with forking commands while the block runs."""
    with runtime.open(image, kind="attempt") as container, ShellSession(container) as other:
        answers: list = []
        stop = threading.Event()

        def poll():
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    answers.append((i, other.run(f"expr {i} \\* 2", timeout=30)))
                except Exception as err:  # reported below
                    answers.append((i, err))
                    return
                stop.wait(0.1)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(60)
        assert not thread.is_alive()
        assert len(answers) >= 3, answers
        for i, answer in answers:
            assert isinstance(answer, CommandResult), answer
            assert (answer.end, answer.exit_code, answer.output) == (CommandEnd.EXITED, 0, f"{2 * i}\n"), answer
        assert ok(other, "python -c 'print(6 * 7)'") == "42\n"


def answers_or_session_error(session: ShellSession, command: str, timeout: float) -> CommandResult | None:
    """The command's result if the session still answers afterwards, None if it raised SessionError."""
    try:
        result = session.run(command, timeout)
        after = session.run("echo still-answering", 30)
    except SessionError:
        return None
    assert after.end is CommandEnd.EXITED and "still-answering\n" in after.output, after
    return result


def test_a_fork_bomb_costs_at_most_its_attempt(runtime, image, session):
    with another_attempt_keeps_working(runtime, image):
        # `exec sleep` needs no fork: the bomb's parent hangs until the timeout kills it.
        result = answers_or_session_error(session, "bash -c ':(){ :|:& };:; exec sleep 100'", timeout=3)
        if result is not None:
            assert result.end in (CommandEnd.TIMED_OUT, CommandEnd.SHELL_DIED), result.end
            assert result.seconds < 3 + 3 * HANG_GUARD_S


# The kill runs as the exec's own process: a wrapper that had to fork failed here once the pid
# limit was full, and nothing was killed.
@pytest.mark.parametrize("command", ["bash -c ':(){ :|:& };:; exec sleep 100'", "while true; do sleep 1000 & done"])
def test_a_timeout_frees_a_full_pid_limit(session, command):
    try:
        result = session.run(command, timeout=3)
        assert result.end is CommandEnd.TIMED_OUT
        time.sleep(1)  # a survivor of the kill would have refilled the pid limit by now
        counted = re.findall(r"procs=(\d+)", session.run(COUNT_PROCS, 30).output)
    except SessionError as err:  # no fresh shell could start: the pids were still all taken
        raise AssertionError(f"the processes outlived the kill: {err}") from err
    # docker-init, the idle sleep, the shell and the session's killer
    assert counted and int(counted[-1]) <= 4, counted


# The session's killer is its other bash (in /, where the shell never starts): a command may kill it.
IS_KILLER = '[ "${d#/proc/}" != $$ ] && [ "$(readlink $d/cwd)" = / ] && grep -qz -- --norc $d/cmdline'
KILL_THE_KILLER = f'for d in /proc/[0-9]*; do {IS_KILLER} && kill -9 "${{d#/proc/}}"; done; true'
COUNT_KILLERS = f"n=0; for d in /proc/[0-9]*; do {IS_KILLER} && n=$((n+1)); done; echo $n"


def test_a_command_that_kills_the_killer_is_still_killed_at_its_timeout(session):
    assert ok(session, COUNT_KILLERS) == "1\n"
    ok(session, KILL_THE_KILLER)
    assert ok(session, COUNT_KILLERS) == "0\n"
    result = session.run("sleep 1000 & sleep 1000", timeout=2)
    assert result.end is CommandEnd.TIMED_OUT and not result.restarted, result
    assert "sleep 1000" not in ok(session, LIST_PROCS)
    assert ok(session, COUNT_KILLERS) == "1\n"  # a new one took over


def test_a_memory_hog_costs_at_most_its_attempt(runtime, image, session):
    hog = "python -c 'x = []\nwhile True: x.append(bytearray(100 * 1024 ** 2))'"
    with another_attempt_keeps_working(runtime, image):
        result = answers_or_session_error(session, hog, timeout=60)
        if result is not None:
            assert result.end is not CommandEnd.EXITED or result.exit_code != 0, result


# -- 8. no host secret ------------------------------------------------------------------------


def test_no_host_secret_enters_the_session(runtime, image, monkeypatch):
    monkeypatch.setenv("MONKEYS_TEST_SECRET", "hunter2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-monkeys-test-host-key")
    with runtime.open(image, kind="attempt") as container, ShellSession(container, env={"GIVEN": "on-purpose"}) as shell:
        env = ok(shell, "env; cat /proc/1/environ | tr '\\0' '\\n'")
    assert "GIVEN=on-purpose" in env and "PAGER=cat" in env
    for leaked in ("MONKEYS_TEST_SECRET", "hunter2", "OPENAI_API_KEY", "sk-monkeys-test-host-key"):
        assert leaked not in env, leaked


# -- 9. round trips ---------------------------------------------------------------------------


def test_a_hundred_round_trips_and_an_exec_answer_alike(container, session):
    # Timings are printed, never asserted (the session's median is far below an exec's here).
    session_s, exec_s = [], []
    for _ in range(100):
        result = session.run("echo hi", 10)
        assert (result.end, result.exit_code, result.output) == (CommandEnd.EXITED, 0, "hi\n")
        session_s.append(result.seconds)
    for _ in range(5):
        result = container.exec("echo hi", timeout=10)
        assert (result.exit_code, result.output) == (0, "hi\n")
        exec_s.append(result.seconds)
    print(f"median echo round trip: session {statistics.median(session_s) * 1e3:.2f} ms, "
          f"docker exec {statistics.median(exec_s) * 1e3:.2f} ms")


# -- 10. network ------------------------------------------------------------------------------


def test_no_network_by_default(session):
    result = session.run("python -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)\"", 30)
    assert result.end is CommandEnd.EXITED and result.exit_code != 0, result
    assert "Error" in result.output
    assert ok(session, "python -c 'import socket; print(socket.gethostname() != \"\")'") == "True\n"


def test_a_function_named_like_the_protocols_builtins_does_not_break_it(session):
    session.run('echo() { builtin echo "[$*]"; }; eval() { :; }', 10)
    result = session.run("pwd; false", 10)
    assert result.end is CommandEnd.EXITED and result.exit_code == 1
    assert result.output == "/testbed\n"
    assert session.run("builtin echo fine", 10).output == "fine\n"
