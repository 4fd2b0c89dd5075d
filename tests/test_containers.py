"""The container runtime against the real engine."""

import os
import re
import socket
import time

import docker.errors

import pytest

from harness import containers
from harness.containers import KEPT_CAPABILITIES, OUTPUT_CAP, OWNER_LABEL, RUN_LABEL, ContainerRuntime, Limits
from harness.image_names import BaseSpec

pytestmark = pytest.mark.docker


@pytest.fixture
def image(built_suite):
    return BaseSpec("3.11").name


def test_a_script_runs_and_its_container_is_removed(docker_client, image):
    runtime = ContainerRuntime(docker_client, run="test-run-script")
    result = runtime.run_script(image, "echo hello; cat /monkeys/data.txt; exit 7", {"data.txt": "payload"})
    assert (result.exit_code, result.output) == (7, "hello\npayload")
    assert not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=test-run-script"})


def test_no_host_environment_variable_enters_a_container(docker_client, image, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    result = ContainerRuntime(docker_client, run="test-env").run_script(image, "env")
    assert "sk-host-secret" not in result.output and "OPENAI_API_KEY" not in result.output


def test_a_timeout_kills_the_whole_tree_and_removes_the_container(docker_client, image):
    runtime = ContainerRuntime(docker_client, run="test-timeout")
    started = time.monotonic()
    result = runtime.run_script(image, "(sleep 300 &) ; sleep 300 & echo started; wait", timeout=2)
    assert result.timed_out and "started" in result.output
    assert time.monotonic() - started < 30
    assert not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=test-timeout"})


def test_limits_apply(docker_client, image):
    runtime = ContainerRuntime(docker_client, run="test-limits", limits=Limits(cpus=1, memory="256m", pids=64))
    result = runtime.run_script(image, "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes "
                                       "2>/dev/null || cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max")
    assert result.output.split() == ["64", str(256 * 1024 * 1024)]


def test_reap_removes_containers_of_dead_processes_and_spares_live_ones(docker_client, image):
    dead_pid = 2**22 + 12345  # above the kernel's pid_max default: never alive
    host = socket.gethostname()
    orphan = docker_client.containers.create(image, "true", labels={RUN_LABEL: "crashed", OWNER_LABEL: f"{host}:{dead_pid}"})
    live = docker_client.containers.create(image, "true", labels={RUN_LABEL: "running", OWNER_LABEL: f"{host}:{os.getpid()}"})
    try:
        ContainerRuntime(docker_client, run="reaper").reap()
        remaining = {c.id for c in docker_client.containers.list(all=True, filters={"label": RUN_LABEL})}
        assert orphan.id not in remaining and live.id in remaining
    finally:
        for container in (orphan, live):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:  # already reaped
                pass


def test_a_timed_out_command_costs_that_command_not_the_container(docker_client, image):
    runtime = ContainerRuntime(docker_client, run="test-exec-timeout")
    with runtime.open(image, files={"note.txt": "kept"}) as container:
        started = time.monotonic()
        hung = container.exec("sleep 300 & sleep 300 & echo started; wait", timeout=2)
        assert hung.timed_out and "started" in hung.output and time.monotonic() - started < 20
        # The whole process group went with it; the container still answers.
        after = container.exec("cat /proc/[0-9]*/comm | grep -c '^sleep$'; cat /monkeys/note.txt", timeout=10)
        assert after.exit_code == 0 and after.output.split() == ["1", "kept"]  # only the container's own idle sleep
    assert not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=test-exec-timeout"})


def test_exec_output_interleaves_both_streams_and_keeps_the_exit_code(docker_client, image):
    with ContainerRuntime(docker_client, run="test-exec").open(image) as container:
        result = container.exec("echo out; echo err >&2; exit 3", timeout=10)
    assert (result.exit_code, result.output.split()) == (3, ["out", "err"])


# Capability numbers (linux/capability.h) of Docker's default set.
CAPABILITY_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7,
                   "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27,
                   "AUDIT_WRITE": 29, "SETFCAP": 31}


def test_a_container_keeps_only_the_capabilities_it_needs_and_cannot_gain_any(docker_client, image):
    status = ContainerRuntime(docker_client, run="test-caps").run_script(
        image, "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status; "
               "touch /tmp/f && chown 65534:65534 /tmp/f && echo chown-ok; "
               "mknod /tmp/null c 1 3 2>/dev/null || echo mknod-refused")
    fields = dict(line.split(":\t") for line in status.output.splitlines() if ":\t" in line)
    kept = sum(1 << CAPABILITY_BITS[name] for name in KEPT_CAPABILITIES)
    assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == kept, status.output
    assert fields["NoNewPrivs"] == "1"
    assert "chown-ok" in status.output and "mknod-refused" in status.output  # CHOWN kept, MKNOD dropped


def test_output_past_the_cap_keeps_its_head_and_tail_with_a_note(docker_client, image, monkeypatch):
    monkeypatch.setattr(containers, "OUTPUT_CAP", 1_000_000)
    with ContainerRuntime(docker_client, run="test-output-cap").open(image) as container:
        result = container.exec("echo START; yes | head -c 5000000; echo END", timeout=60)
    assert result.exit_code == 0
    note = re.search(r"\n\[\.\.\. (\d+) bytes of output omitted \.\.\.\]\n", result.output)
    assert note and int(note.group(1)) == result.truncated_bytes > 0
    head, tail = result.output[:note.start()], result.output[note.end():]
    assert head.startswith("START\ny\n") and tail.endswith("y\nEND\n")
    assert len(head) == len(tail) == 500_000
    assert len(head) + result.truncated_bytes + len(tail) == len("START\n") + 5_000_000 + len("END\n")


def test_a_command_printing_gigabytes_costs_the_host_only_the_cap(docker_client, image):
    assert 1 << 20 <= OUTPUT_CAP <= 64 << 20
    with ContainerRuntime(docker_client, run="test-output-flood").open(image) as container:
        # Endless output: the exec's deadline counts from its start, however steadily bytes come.
        result = container.exec_argv(["yes"], deadline=3)
    assert result.exit_code is None and result.truncated_bytes > 0
    assert len(result.output.encode()) <= OUTPUT_CAP + 100


def test_the_host_deadline_ends_a_command_that_prints_nothing(docker_client, image):
    with ContainerRuntime(docker_client, run="test-exec-deadline").open(image) as container:
        started = time.monotonic()
        result = container.exec_argv(["sleep", "300"], deadline=2)
        assert result.exit_code is None and time.monotonic() - started < 20


def test_a_process_that_left_the_timed_out_group_is_killed_too(docker_client, image):
    with ContainerRuntime(docker_client, run="test-exec-escape").open(image) as container:
        # The setsid'd sleep and bash (with a child of its own) leave the group `timeout` kills.
        hung = container.exec("setsid sleep 300 & setsid bash -c 'sleep 301 & wait' & echo started; wait", timeout=2)
        assert hung.timed_out and "started" in hung.output
        after = container.exec("cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo", timeout=10)
        assert after.exit_code == 0 and "sleep 30" not in after.output and "sleep infinity" in after.output


def test_a_container_can_leave_the_network_before_its_tests(docker_client, image):
    runtime = ContainerRuntime(docker_client, run="test-network")
    with runtime.open(image, network=True) as box:
        interfaces = lambda: sorted(box.exec("ls /sys/class/net", timeout=10).output.split())
        assert interfaces() != ["lo"]  # on the bridge: the reinstall step may fetch build requirements
        box.disconnect_network()
        assert interfaces() == ["lo"]  # the tests that follow have no way out
    with runtime.open(image) as box:
        assert box.exec("ls /sys/class/net", timeout=10).output.split() == ["lo"]
